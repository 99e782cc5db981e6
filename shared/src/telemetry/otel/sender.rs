//! The export request: one POST of OTLP protobuf per flush, over one HTTP/1.1 connection
//! to the endpoint kept from flush to flush, driven by the flush itself on the invocation's
//! task; and what a refusal or an unreachable endpoint becomes ([`OtelError::Export`],
//! which [`flush`](super::flush) logs).
//!
//! Why hyper's connection rather than a pooled client (#34): opentelemetry-http's client
//! (hyper-util's pool) adds to every request what one endpoint does not need: a pool looked
//! up and returned to, a task of its own per connection woken through channels, the URI
//! parsed and the headers built again each time. Here the request head is built once, and
//! the connection is polled by the flush that uses it: about 14,000 instructions less a
//! request (of some 60,000; the rest is hyper's own encoding and parsing, and the socket).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::settings::HTTP_PROTOBUF;
use super::{ExportConfig, OtelError};

/// More of an answer than this is not read: a collector answers an export in a few bytes.
const MAX_ANSWER: usize = 64 * 1024;

/// Sends spans where the settings say.
pub(super) struct Sender {
    /// Where, with which headers, how long.
    config: ExportConfig,
    /// `host:port` of the endpoint.
    address: String,
    /// Every request's head: method, path, `Host`, content type and the configured headers.
    head: Request<()>,
    /// The connection of the last flush, while the endpoint keeps it open.
    connection: tokio::sync::Mutex<Option<Connection>>,
}

impl Sender {
    /// A sender as `config` says, or why it cannot send there.
    pub(super) fn new(config: &ExportConfig) -> Result<Self, OtelError> {
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
        let (address, head) = head(config).map_err(|reason| OtelError::Setting {
            variable: "OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT or _HEADERS",
            reason: format!("no request can be made to {:?}: {reason}", config.endpoint),
        })?;
        Ok(Self {
            config: config.clone(),
            address,
            head,
            connection: tokio::sync::Mutex::new(None),
        })
    }

    /// Sends `body`, an OTLP export request, and waits for the endpoint's answer (at most
    /// the export timeout). Only a 2xx answer is success.
    pub(super) async fn send(&self, body: Vec<u8>) -> Result<(), OtelError> {
        let failed = |reason: String| OtelError::Export {
            endpoint: self.config.endpoint.clone(),
            reason,
        };
        let body = Bytes::from(body);
        let exchange = async {
            // Concurrent flushes (a runtime running invocations side by side) do not wait
            // for each other: the one that finds the connection busy opens its own.
            let mut kept = self.connection.try_lock().ok();
            let mut connection = kept.as_deref_mut().and_then(Option::take);
            if let Some(open) = &mut connection {
                if open.is_closed() {
                    connection = None;
                }
            }
            let reused = connection.is_some();
            let mut connection = match connection {
                Some(open) => open,
                None => Connection::open(&self.address).await?,
            };
            let mut answer = connection.exchange(self.request(body.clone())).await;
            if answer.is_err() && reused {
                // The endpoint closed the kept connection while the request was on its way
                // (an idle timeout): once more, on a new one.
                connection = Connection::open(&self.address).await?;
                answer = connection.exchange(self.request(body)).await;
            }
            if let (Ok(_), Some(slot)) = (&answer, kept.as_deref_mut()) {
                *slot = Some(connection);
            }
            answer
        };
        let (status, answer) = tokio::time::timeout(self.config.timeout, exchange)
            .await
            .map_err(|_| failed(format!("no answer within {:?}", self.config.timeout)))?
            .map_err(failed)?;
        if status.is_success() {
            return Ok(());
        }
        let answer = String::from_utf8_lossy(&answer);
        Err(failed(format!(
            "answered {status}: {}",
            answer.chars().take(200).collect::<String>()
        )))
    }

    /// The export request carrying `body`.
    fn request(&self, body: Bytes) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = self.head.method().clone();
        *request.uri_mut() = self.head.uri().clone();
        *request.headers_mut() = self.head.headers().clone();
        request
    }
}

/// The endpoint's `host:port`, and the head of every request to it.
fn head(config: &ExportConfig) -> Result<(String, Request<()>), String> {
    let endpoint: Uri = config
        .endpoint
        .parse()
        .map_err(|error| format!("{error}"))?;
    if endpoint.scheme_str() != Some("http") {
        // On Lambda the collector is on the same host (the ADOT layer's): plain HTTP.
        return Err("only http:// endpoints are supported (a collector on this host)".into());
    }
    let authority = endpoint.authority().ok_or("the endpoint has no host")?;
    let address = format!(
        "{}:{}",
        authority.host(),
        authority.port_u16().unwrap_or(80)
    );
    let path = endpoint.path_and_query().map_or("/", |path| path.as_str());
    let mut head = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::HOST, authority.as_str())
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .header(
            header::USER_AGENT,
            concat!("eventkit/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in &config.headers {
        head = head.header(name.as_str(), value.as_str());
    }
    // A header name or value that cannot be sent fails here, once, not at every flush.
    let head = head.body(()).map_err(|error| error.to_string())?;
    Ok((address, head))
}

/// One HTTP/1.1 connection to the endpoint: the side requests go in, and the connection
/// itself, polled while a request is out.
struct Connection {
    requests: http1::SendRequest<Full<Bytes>>,
    io: Pin<Box<http1::Connection<TokioIo<TcpStream>, Full<Bytes>>>>,
}

impl Connection {
    async fn open(address: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(address)
            .await
            .map_err(|error| format!("connecting to {address}: {error}"))?;
        // The request goes out in one write; waiting to fill a packet only delays it.
        let _ = stream.set_nodelay(true);
        let (requests, io) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| error.to_string())?;
        Ok(Self {
            requests,
            io: Box::pin(io),
        })
    }

    /// Whether the endpoint has closed the connection since it was last used: polled once,
    /// it reads the end of the stream.
    fn is_closed(&mut self) -> bool {
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        self.io.as_mut().poll(&mut context).is_ready() || self.requests.is_closed()
    }

    /// Sends `request` and reads the whole answer, the connection polled meanwhile.
    async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), String> {
        let requests = &mut self.requests;
        let answered = async move {
            requests.ready().await.map_err(|error| error.to_string())?;
            let response = requests
                .send_request(request)
                .await
                .map_err(|error| error.to_string())?;
            let status = response.status();
            let answer = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|error| format!("reading the answer: {error}"))?;
            Ok((status, answer.to_bytes()))
        };
        let mut answered = std::pin::pin!(answered);
        let io = &mut self.io;
        let mut ended: Option<String> = None;
        std::future::poll_fn(|context| {
            // The connection first: what it reads reaches the answer, polled next.
            if ended.is_none() {
                match io.as_mut().poll(context) {
                    Poll::Ready(Ok(())) => {
                        ended = Some("the endpoint closed the connection".into())
                    }
                    Poll::Ready(Err(error)) => ended = Some(error.to_string()),
                    Poll::Pending => {}
                }
            }
            if let Poll::Ready(answer) = answered.as_mut().poll(context) {
                return Poll::Ready(answer);
            }
            // Closed with the answer incomplete: nothing more will come.
            match ended.take() {
                Some(reason) => Poll::Ready(Err(reason)),
                None => Poll::Pending,
            }
        })
        .await
    }
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
        let refused = |variables: &[(&str, &str)]| match Sender::new(&config(variables)) {
            Err(OtelError::Setting { variable, reason }) => format!("{variable}: {reason}"),
            Ok(_) => panic!("{variables:?} was not refused"),
            Err(other) => panic!("{variables:?}: {other:?}"),
        };
        assert!(refused(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])
            .contains("\"grpc\" is not supported"));
        assert!(refused(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")]).contains("\"gzip\""));
        let endpoint = refused(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://bad host:4318")]);
        assert!(endpoint.contains("http://bad host:4318"), "{endpoint}");
        let tls = refused(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318")]);
        assert!(tls.contains("only http://"), "{tls}");
        let header = refused(&[("OTEL_EXPORTER_OTLP_HEADERS", "bad name=1")]);
        assert!(header.contains("HEADERS"), "{header}");
        assert!(Sender::new(&config(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")])).is_ok());
    }

    #[test]
    fn an_export_request_posts_protobuf_with_the_configured_headers() {
        let config = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s%20cret"),
        ]);
        let sender = Sender::new(&config).expect("a sender");
        assert_eq!(sender.address, "collector:4318");
        let request = sender.request(Bytes::from_static(b"spans"));
        assert_eq!(request.method(), "POST");
        assert_eq!(request.uri(), "/v1/traces");
        let header = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
        assert_eq!(header("host"), Some("collector:4318"));
        assert_eq!(header("content-type"), Some("application/x-protobuf"));
        assert_eq!(header("x-api-key"), Some("s cret"));
    }

    /// A request as the test server read it: the number of the connection it came on (in
    /// the order they were accepted), its head in lower case, and its body.
    type Received = (usize, String, Vec<u8>);

    /// An HTTP server on a free port answering every request `status` with `answer`, and
    /// closing each connection after its first answer when `close` is set (else keeping it
    /// open for more). Hands back the endpoint and what it reads.
    async fn serving(
        status: &'static str,
        answer: &'static str,
        close: bool,
    ) -> (String, tokio::sync::mpsc::UnboundedReceiver<Received>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let connection_header = if close { "close" } else { "keep-alive" };
        let reply = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: {connection_header}\r\n\r\n{answer}",
            answer.len()
        );
        let (received, requests) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for number in 0.. {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (received, reply) = (received.clone(), reply.clone());
                tokio::spawn(async move {
                    let mut read = Vec::new();
                    let mut chunk = [0_u8; 4096];
                    loop {
                        let request = loop {
                            let text = String::from_utf8_lossy(&read).to_string();
                            if let Some(end) = text.find("\r\n\r\n") {
                                let head = text[..end].to_ascii_lowercase();
                                let length = head
                                    .lines()
                                    .find_map(|line| line.strip_prefix("content-length:"))
                                    .and_then(|value| value.trim().parse::<usize>().ok())
                                    .unwrap_or(0);
                                if read.len() >= end + 4 + length {
                                    let body = read[end + 4..end + 4 + length].to_vec();
                                    read.drain(..end + 4 + length);
                                    break (head, body);
                                }
                            }
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => read.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let _ = received.send((number, request.0, request.1));
                        if socket.write_all(reply.as_bytes()).await.is_err() || close {
                            return;
                        }
                    }
                });
            }
        });
        (endpoint, requests)
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

    fn sender_to(endpoint: &str, more: &[(&str, &str)]) -> Sender {
        let mut variables = vec![
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k1"),
        ];
        variables.extend_from_slice(more);
        Sender::new(&config(&variables)).expect("a sender")
    }

    #[tokio::test]
    async fn spans_are_posted_as_otlp_protobuf_with_the_headers() {
        let (endpoint, mut received) = serving("200 OK", "", true).await;
        let sent = sender_to(&endpoint, &[])
            .send(ended(&["process orders", "handle OrderPlaced"]))
            .await;
        assert!(sent.is_ok(), "{sent:?}");
        let (_, head, body) = received.recv().await.unwrap();
        assert!(head.starts_with("post /v1/traces http/1.1"), "{head}");
        assert!(head.contains("host: 127.0.0.1:"), "{head}");
        assert!(
            head.contains("content-type: application/x-protobuf"),
            "{head}"
        );
        assert!(head.contains("x-api-key: k1"), "{head}");
        assert_eq!(
            super::super::tests::names_in(&body),
            ["process orders", "handle OrderPlaced"]
        );
    }

    #[tokio::test]
    async fn one_connection_carries_every_flush_and_one_the_endpoint_closed_is_replaced() {
        let (endpoint, mut received) = serving("200 OK", "", false).await;
        let sender = sender_to(&endpoint, &[]);
        for name in ["first", "second", "third"] {
            let sent = sender.send(ended(&[name])).await;
            assert!(sent.is_ok(), "{name}: {sent:?}");
        }
        let connections: Vec<usize> = (0..3)
            .map(|_| received.try_recv().expect("a request").0)
            .collect();
        assert_eq!(connections, [0, 0, 0]);

        let (endpoint, mut received) = serving("200 OK", "", true).await;
        let sender = sender_to(&endpoint, &[]);
        for name in ["first", "second"] {
            let sent = sender.send(ended(&[name])).await;
            assert!(sent.is_ok(), "{name}: {sent:?}");
        }
        let mut seen = Vec::new();
        while let Ok((connection, _, body)) = received.try_recv() {
            seen.push((connection, super::super::tests::names_in(&body)));
        }
        assert_eq!(
            seen,
            [
                (0, vec!["first".to_string()]),
                (1, vec!["second".to_string()])
            ]
        );
    }

    #[tokio::test]
    async fn a_refusal_a_silence_and_an_unreachable_endpoint_are_errors_that_say_where_and_why() {
        let (endpoint, _received) =
            serving("503 Service Unavailable", "collector overloaded", true).await;
        let refused = sender_to(&endpoint, &[]).send(ended(&["record"])).await;
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

        // A listener that never answers: the export gives up after its timeout.
        let silent = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let endpoint = format!("http://{}/v1/traces", silent.local_addr().unwrap());
        let sender = sender_to(&endpoint, &[("OTEL_EXPORTER_OTLP_TIMEOUT", "200")]);
        let timed_out = sender.send(ended(&["record"])).await;
        assert!(
            matches!(&timed_out, Err(OtelError::Export { reason, .. }) if reason.contains("no answer within 200ms")),
            "{timed_out:?}"
        );
        drop(silent);

        // A port nothing listens on.
        let closed = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let endpoint = format!("http://{}/v1/traces", closed.local_addr().unwrap());
        drop(closed);
        let unreachable = sender_to(&endpoint, &[]).send(ended(&["record"])).await;
        assert!(
            matches!(&unreachable, Err(OtelError::Export { endpoint: to, .. }) if *to == endpoint),
            "{unreachable:?}"
        );
    }
}
