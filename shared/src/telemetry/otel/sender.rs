//! The export request: one POST of OTLP protobuf per flush, through opentelemetry-http's
//! hyper client on the invocation's runtime, and what a refusal or an unreachable endpoint
//! becomes ([`OtelError::Export`], which [`flush`](super::flush) logs).

use opentelemetry_http::hyper::HyperClient;
use opentelemetry_http::{Bytes, HttpClient as _, Request};

use super::settings::HTTP_PROTOBUF;
use super::{ExportConfig, OtelError};

/// Sends spans where the settings say.
pub(super) struct Sender {
    client: HyperClient,
    /// Where, with which headers, how long.
    config: ExportConfig,
}

impl Sender {
    pub(super) fn new(config: &ExportConfig) -> Self {
        Self {
            client: HyperClient::with_default_connector(config.timeout, None),
            config: config.clone(),
        }
    }

    /// Sends `body`, an OTLP export request, and waits for the endpoint's answer (at most
    /// the export timeout). Only a 2xx answer is success.
    pub(super) async fn send(&self, body: Vec<u8>) -> Result<(), OtelError> {
        let failed = |reason: String| OtelError::Export {
            endpoint: self.config.endpoint.clone(),
            reason,
        };
        let request =
            request(&self.config, Bytes::from(body)).map_err(|error| failed(error.to_string()))?;
        let response = self
            .client
            .send_bytes(request)
            .await
            .map_err(|error| failed(error.to_string()))?;
        if response.status().is_success() {
            return Ok(());
        }
        let answer = String::from_utf8_lossy(response.body());
        Err(failed(format!(
            "answered {}: {}",
            response.status(),
            answer.chars().take(200).collect::<String>()
        )))
    }
}

/// Whether `config` asks for what this exporter does, with an endpoint and headers a
/// request can carry.
pub(super) fn check(config: &ExportConfig) -> Result<(), OtelError> {
    if config.protocol != HTTP_PROTOBUF {
        return Err(OtelError::Setting {
            variable: "OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL",
            reason: format!(
                "{:?} is not supported: spans are sent as {}",
                config.protocol, HTTP_PROTOBUF
            ),
        });
    }
    if let Some(compression) = &config.compression {
        return Err(OtelError::Setting {
            variable: "OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION",
            reason: format!("{compression:?} is not supported: set none or leave it unset"),
        });
    }
    request(config, Bytes::new())
        .map(drop)
        .map_err(|error| OtelError::Setting {
            variable: "OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT or _HEADERS",
            reason: format!("no request can be made to {:?}: {error}", config.endpoint),
        })
}

/// The export request carrying `body`.
fn request(
    config: &ExportConfig,
    body: Bytes,
) -> Result<Request<Bytes>, opentelemetry_http::HttpError> {
    let mut request = Request::post(config.endpoint.as_str())
        .header("content-type", "application/x-protobuf")
        .header(
            "user-agent",
            concat!("eventkit/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in &config.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    Ok(request.body(body)?)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(variables: &[(&str, &str)]) -> ExportConfig {
        let mut variables: HashMap<String, String> = variables
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        variables
            .entry("OTEL_SERVICE_NAME".to_string())
            .or_insert_with(|| "orders".to_string());
        ExportConfig::from_lookup(|name| variables.get(name).cloned()).expect("export is on")
    }

    #[test]
    fn export_refuses_to_start_with_what_it_cannot_send() {
        let refused = |variables: &[(&str, &str)]| match check(&config(variables)) {
            Err(OtelError::Setting { variable, reason }) => format!("{variable}: {reason}"),
            other => panic!("{variables:?} was not refused: {other:?}"),
        };
        assert!(refused(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])
            .contains("\"grpc\" is not supported"));
        assert!(refused(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")]).contains("\"gzip\""));
        let endpoint = refused(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://bad host:4318")]);
        assert!(endpoint.contains("http://bad host:4318"), "{endpoint}");
        let header = refused(&[("OTEL_EXPORTER_OTLP_HEADERS", "bad name=1")]);
        assert!(header.contains("HEADERS"), "{header}");
        assert!(check(&config(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")])).is_ok());
    }

    #[test]
    fn an_export_request_posts_protobuf_with_the_configured_headers() {
        let config = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s%20cret"),
        ]);
        let request = request(&config, Bytes::from_static(b"spans")).expect("a request");
        assert_eq!(request.method(), "POST");
        assert_eq!(request.uri(), "http://collector:4318/v1/traces");
        let header = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
        assert_eq!(header("content-type"), Some("application/x-protobuf"));
        assert_eq!(header("x-api-key"), Some("s cret"));
        assert_eq!(request.body().as_ref(), b"spans");
    }

    /// A one-request HTTP server on a free port: it answers `status` with `answer` and
    /// hands back the request it read (head and body).
    async fn answering(
        status: &str,
        answer: &str,
    ) -> (String, tokio::task::JoinHandle<(String, Vec<u8>)>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let reply = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        );
        let served = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut read = Vec::new();
            let mut chunk = [0_u8; 4096];
            let (head, body_at, length) = loop {
                let n = socket.read(&mut chunk).await.unwrap();
                read.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&read).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let head = text[..end].to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .and_then(|value| value.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (head, end + 4, length);
                }
            };
            while read.len() < body_at + length {
                let n = socket.read(&mut chunk).await.unwrap();
                read.extend_from_slice(&chunk[..n]);
            }
            socket.write_all(reply.as_bytes()).await.unwrap();
            (head, read[body_at..body_at + length].to_vec())
        });
        (endpoint, served)
    }

    /// The export request of spans named `names`, ended as the exporter's processor sees
    /// them.
    fn ended(names: &[&'static str]) -> Vec<u8> {
        use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
        let pending = super::super::Pending::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_span_processor(pending.clone())
            .build();
        for name in names {
            provider.tracer("eventkit").start(*name).end();
        }
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name("orders")
            .build();
        let resource = super::super::EncodedResource::new(&resource);
        pending.take_request(&resource).0.expect("spans ended")
    }

    fn sender_to(endpoint: &str) -> Sender {
        let config = config(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k1"),
        ]);
        Sender::new(&config)
    }

    #[tokio::test]
    async fn spans_are_posted_as_otlp_protobuf_with_the_headers() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use prost::Message;
        let (endpoint, served) = answering("200 OK", "").await;
        let sent = sender_to(&endpoint)
            .send(ended(&["process orders", "handle OrderPlaced"]))
            .await;
        assert!(sent.is_ok(), "{sent:?}");
        let (head, body) = served.await.unwrap();
        assert!(head.starts_with("post /v1/traces http/1.1"), "{head}");
        assert!(
            head.contains("content-type: application/x-protobuf"),
            "{head}"
        );
        assert!(head.contains("x-api-key: k1"), "{head}");
        let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        let names: Vec<&str> = request.resource_spans[0].scope_spans[0]
            .spans
            .iter()
            .map(|span| span.name.as_str())
            .collect();
        assert_eq!(names, ["process orders", "handle OrderPlaced"]);
    }

    #[tokio::test]
    async fn a_refusal_and_an_unreachable_endpoint_are_errors_that_say_where_and_why() {
        let (endpoint, served) = answering("503 Service Unavailable", "collector overloaded").await;
        let refused = sender_to(&endpoint).send(ended(&["record"])).await;
        let _ = served.await;
        match refused {
            Err(OtelError::Export {
                endpoint: to,
                reason,
            }) => {
                assert_eq!(to, endpoint);
                assert!(reason.contains("503"), "{reason}");
                assert!(reason.contains("collector overloaded"), "{reason}");
            }
            other => panic!("not refused: {other:?}"),
        }
        // A port nothing listens on.
        let closed = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let endpoint = format!("http://{}/v1/traces", closed.local_addr().unwrap());
        drop(closed);
        let unreachable = sender_to(&endpoint).send(ended(&["record"])).await;
        assert!(
            matches!(&unreachable, Err(OtelError::Export { endpoint: to, .. }) if *to == endpoint),
            "{unreachable:?}"
        );
    }
}
