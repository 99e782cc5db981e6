//! An OTLP/HTTP trace receiver (`POST /v1/traces`, protobuf or JSON bodies), so that the
//! functions `run` starts export their spans to eventkit-local itself: no collector, no
//! Jaeger, no Docker. It listens on a port of its own choosing on the loopback interface;
//! [`Receiver::endpoint`] is what the functions get as `OTEL_EXPORTER_OTLP_ENDPOINT` (their
//! exporter appends `/v1/traces`). Each request's spans are appended to the application's
//! span file ([`SpanStore`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio_util::sync::CancellationToken;

use super::store::{spans_of, SpanStore};

/// The largest request accepted: an exporter's batch (512 spans by default) with room.
const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// The receiver, serving until it is dropped.
#[derive(Debug)]
pub struct Receiver {
    address: SocketAddr,
    store: Arc<SpanStore>,
    stopped: CancellationToken,
}

impl Receiver {
    /// Starts serving on a free loopback port, keeping spans in `store`.
    pub async fn start(store: SpanStore) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let store = Arc::new(store);
        let router = Router::new()
            .route("/v1/traces", post(receive))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(store.clone());
        let stopped = CancellationToken::new();
        let stop = stopped.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Ok(Self {
            address,
            store,
            stopped,
        })
    }

    /// The base URL exporters are given (`http://127.0.0.1:<port>`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Where the spans go.
    pub fn store(&self) -> &SpanStore {
        &self.store
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stopped.cancel();
    }
}

/// The body's encoding, from its content type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

fn encoding_of(headers: &HeaderMap) -> Option<Encoding> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("application/x-protobuf");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    match essence.to_ascii_lowercase().as_str() {
        "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
        "application/json" => Some(Encoding::Json),
        _ => None,
    }
}

/// Decodes an export request from a body in `encoding`.
fn decode(encoding: Encoding, body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    match encoding {
        Encoding::Protobuf => {
            ExportTraceServiceRequest::decode(body).map_err(|error| error.to_string())
        }
        Encoding::Json => serde_json::from_slice(body).map_err(|error| error.to_string()),
    }
}

async fn receive(State(store): State<Arc<SpanStore>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(encoding) = encoding_of(&headers) else {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "OTLP/HTTP bodies are application/x-protobuf or application/json",
        )
            .into_response();
    };
    if headers
        .get(header::CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| !value.eq_ignore_ascii_case("identity"))
    {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "compressed bodies are not accepted: unset OTEL_EXPORTER_OTLP_COMPRESSION",
        )
            .into_response();
    }
    let request = match decode(encoding, &body) {
        Ok(request) => request,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not an OTLP trace export: {error}"),
            )
                .into_response()
        }
    };
    let spans = spans_of(&request);
    let written = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.append(&spans)).await
    };
    if let Err(error) = written
        .map_err(|error| error.to_string())
        .and_then(|written| written.map_err(|error| error.to_string()))
    {
        return (StatusCode::SERVICE_UNAVAILABLE, error).into_response();
    }
    let response = ExportTraceServiceResponse::default();
    match encoding {
        Encoding::Protobuf => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            response.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&response).unwrap_or_else(|_| "{}".to_string()),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn both_otlp_encodings_decode_to_the_same_spans() {
        // OTLP/JSON as the specification writes it: ids in hex, enums as numbers, 64-bit
        // integers as strings.
        let json = r#"{"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "orders"}}]},
            "scopeSpans": [{"scope": {"name": "eventkit"}, "spans": [{
                "traceId": "5b8efff798038103d269b633813fc60c",
                "spanId": "eee19b7ec3c1b174",
                "parentSpanId": "eee19b7ec3c1b173",
                "name": "OrderPlaced", "kind": 5,
                "startTimeUnixNano": "1544712660000000000",
                "endTimeUnixNano": "1544712661000000000",
                "attributes": [{"key": "event_id", "value": {"stringValue": "e-1"}},
                               {"key": "eventkit.receive_count", "value": {"intValue": "2"}}],
                "status": {"code": 2, "message": "not ok"}
            }]}]
        }]}"#;
        let from_json = decode(Encoding::Json, json.as_bytes()).unwrap();
        let protobuf = from_json.encode_to_vec();
        let from_protobuf = decode(Encoding::Protobuf, &protobuf).unwrap();
        assert_eq!(from_json, from_protobuf);
        let spans = spans_of(&from_json);
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(spans[0].parent_span_id.as_deref(), Some("eee19b7ec3c1b173"));
        assert_eq!(spans[0].service, "orders");
        assert_eq!(spans[0].duration_nano(), 1_000_000_000);
        assert_eq!(spans[0].attributes["eventkit.receive_count"], 2);
        assert_eq!(spans[0].status, "error");
    }

    #[test]
    fn the_encoding_follows_the_content_type() {
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            headers
        };
        assert_eq!(
            encoding_of(&headers("application/x-protobuf")),
            Some(Encoding::Protobuf)
        );
        assert_eq!(
            encoding_of(&headers("application/json; charset=utf-8")),
            Some(Encoding::Json)
        );
        assert_eq!(encoding_of(&headers("text/plain")), None);
        assert!(decode(Encoding::Protobuf, b"\xff\xff\xff").is_err());
    }
}
