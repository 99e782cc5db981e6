//! A small HTTP/1.1 proxy in front of DynamoDB Local or LocalStack (any service whose
//! requests name their operation in `X-Amz-Target`: DynamoDB, SQS, EventBridge). It counts
//! the requests that pass by operation, and can give every round trip a fixed latency: a
//! request goes upstream at once, and its response is released no earlier than `delay` after
//! the request's first byte arrived. So a round trip costs what a call to DynamoDB in the
//! same region does, its service time included, and DynamoDB Local's own time only shows
//! where it exceeds the delay. The bench uses it that way.
//!
//! It is also a fault proxy for tests: [`Proxy::inject`] makes it answer the next requests
//! of one operation itself (throttling, or a batch whose entries all failed) instead of
//! forwarding them, so a test sees the real SDK client parse a real error response.
//!
//! For reliability runs (`cargo xtask chaos`) it also injects faults at random: a share of
//! requests answered with an error ([`Proxy::fail_share`]), a share whose request reaches the
//! service but whose response is lost on the way back (the write happened, the client never
//! hears of it: [`Proxy::lose_share`]), a share dropped before the service sees them
//! ([`Proxy::drop_share`]), a share answered late ([`Proxy::slow_share`]), and outages during which every request is answered
//! with an error ([`Proxy::set_outage`]). [`Proxy::injected`] counts what it did.
//!
//! Only the request direction is parsed (request line, headers, a `Content-Length` body);
//! responses are copied through untouched. Holding responses relies on the clients not
//! pipelining (none of the SDKs does): on a connection, the response that starts after a
//! request was forwarded is that request's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

mod capacity;
pub use capacity::Capacity;

/// Requests seen per operation (`PutItem`, `UpdateItem`, ...).
pub type Counts = BTreeMap<String, u64>;

/// The operation recorded for a request the proxy could not parse; its presence makes the
/// counts unusable.
pub const UNPARSED: &str = "!unparsed";

/// A response the proxy gives itself instead of forwarding the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canned {
    /// The HTTP status (`400`, `200`, ...).
    pub status: u16,
    /// The `Content-Type` (`application/x-amz-json-1.0`, ...).
    pub content_type: String,
    /// The body.
    pub body: String,
}

/// Builds the canned response from the request's body.
pub type Respond = Arc<dyn Fn(&[u8]) -> Canned + Send + Sync>;

/// Faults injected per operation: how many more requests to answer, and how.
type Faults = Arc<Mutex<BTreeMap<String, (usize, Respond)>>>;

/// What the proxy decides for a request, besides forwarding it.
enum Fate {
    /// Forwarded, and its response relayed this much later than the others.
    Forward(Duration),
    /// Not forwarded: the connection is closed before the service sees it.
    Drop,
    /// Answered by the proxy.
    Answer(Respond),
    /// Forwarded, and its response dropped with the connection.
    LoseResponse,
}

/// Faults injected at random, and the outage switch.
#[derive(Default)]
struct Random {
    /// Share of requests answered with an error, and the error (per request).
    fail: Option<(f64, Respond)>,
    /// Share of requests whose response is lost.
    lose: f64,
    /// Share of requests dropped before the service sees them.
    drop: f64,
    /// Share of requests answered late, and how late.
    slow: (f64, Duration),
    /// While set, every request is answered with this.
    outage: Option<Respond>,
    /// The operations the outage answers (all when empty).
    outage_only: Vec<String>,
    /// Faults given, by kind (`outage`, `failed`, `response lost`, `scripted`).
    injected: Counts,
}

/// A request forwarded, as its response side needs to know it.
struct Arrival {
    /// When its first byte arrived.
    at: Instant,
    /// Whether its response is to be lost.
    lose: bool,
    /// How much later than the others its response is released.
    extra_delay: Duration,
}

/// The proxy's fault state, shared with every connection.
#[derive(Clone, Default)]
struct FaultState {
    scripted: Faults,
    /// Per operation, how many more requests to forward and then lose the response of.
    lost: Arc<Mutex<BTreeMap<String, usize>>>,
    random: Arc<Mutex<Random>>,
}

/// A running proxy; dropping it stops it and every connection it relays.
pub struct Proxy {
    addr: SocketAddr,
    counts: Arc<Mutex<Counts>>,
    capacity: Arc<Mutex<Capacity>>,
    faults: FaultState,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`, releasing each response
    /// no earlier than `delay` after its request arrived.
    pub async fn start(upstream: SocketAddr, delay: Duration) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(Mutex::new(Counts::new()));
        let capacity = Arc::new(Mutex::new(Capacity::default()));
        let faults = FaultState::default();
        let task = tokio::spawn(accept(
            listener,
            upstream,
            delay,
            Tally {
                counts: counts.clone(),
                capacity: capacity.clone(),
            },
            faults.clone(),
        ));
        Ok(Self {
            addr,
            counts,
            capacity,
            faults,
            task,
        })
    }

    /// Answers the next `times` requests of `operation` (`PutItem`, `SendMessageBatch`) with
    /// what `respond` makes of each request's body, instead of forwarding them. They are
    /// counted like the others.
    pub fn inject(
        &self,
        operation: &str,
        times: usize,
        respond: impl Fn(&[u8]) -> Canned + Send + Sync + 'static,
    ) {
        if let Ok(mut faults) = self.faults.scripted.lock() {
            faults.insert(operation.to_string(), (times, Arc::new(respond)));
        }
    }

    /// Forwards the next `times` requests of `operation` and loses their responses (the
    /// connection is closed instead): the service did the work, the client sees a broken
    /// connection and its SDK tries again. Counted as `scripted`.
    pub fn lose_responses(&self, operation: &str, times: usize) {
        if let Ok(mut lost) = self.faults.lost.lock() {
            lost.insert(operation.to_string(), times);
        }
    }

    /// Answers a random `share` (0 to 1) of all requests with what `respond` makes of each
    /// request's body, instead of forwarding them; `share` 0 stops it.
    pub fn fail_share(
        &self,
        share: f64,
        respond: impl Fn(&[u8]) -> Canned + Send + Sync + 'static,
    ) {
        if let Ok(mut random) = self.faults.random.lock() {
            random.fail = (share > 0.0).then(|| (share, Arc::new(respond) as Respond));
        }
    }

    /// Forwards a random `share` of requests and drops their responses, closing the
    /// connection: the service did the work, the client sees a broken connection.
    pub fn lose_share(&self, share: f64) {
        if let Ok(mut random) = self.faults.random.lock() {
            random.lose = share;
        }
    }

    /// Closes the connection on a random `share` of requests before they are forwarded:
    /// the service never sees them, the client sees a broken connection.
    pub fn drop_share(&self, share: f64) {
        if let Ok(mut random) = self.faults.random.lock() {
            random.drop = share;
        }
    }

    /// Releases the responses of a random `share` of requests `extra` later than the
    /// others: a slow service, which a client's timeout may give up on.
    pub fn slow_share(&self, share: f64, extra: Duration) {
        if let Ok(mut random) = self.faults.random.lock() {
            random.slow = (share, extra);
        }
    }

    /// While `respond` is set, every request is answered with it (the service is down);
    /// `None` ends the outage.
    pub fn set_outage(&self, respond: Option<Respond>) {
        self.set_outage_of(&[], respond);
    }

    /// An outage of some operations only (`PutEvents`: the bus, not the queues the same
    /// endpoint serves); every operation when `operations` is empty.
    pub fn set_outage_of(&self, operations: &[&str], respond: Option<Respond>) {
        if let Ok(mut random) = self.faults.random.lock() {
            random.outage = respond;
            random.outage_only = operations.iter().map(|op| op.to_string()).collect();
        }
    }

    /// The faults given so far, by kind: `outage`, `failed`, `dropped`, `response lost`,
    /// `slow`, `scripted`.
    pub fn injected(&self) -> Counts {
        self.faults
            .random
            .lock()
            .map(|random| random.injected.clone())
            .unwrap_or_default()
    }

    /// The endpoint URL for the SDKs (`AWS_ENDPOINT_URL_DYNAMODB`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests counted so far.
    pub fn counts(&self) -> Counts {
        self.counts
            .lock()
            .map(|counts| counts.clone())
            .unwrap_or_default()
    }

    /// The capacity units DynamoDB billed the DynamoDB requests forwarded so far, counted
    /// from their bodies by DynamoDB's rules (see [`Capacity`]).
    pub fn capacity(&self) -> Capacity {
        self.capacity
            .lock()
            .map(|capacity| *capacity)
            .unwrap_or_default()
    }
}

/// What the connections count into.
#[derive(Clone)]
struct Tally {
    counts: Arc<Mutex<Counts>>,
    capacity: Arc<Mutex<Capacity>>,
}

impl Tally {
    /// Adds what the DynamoDB request of `operation` with `body` is billed.
    fn bill(&self, operation: &str, body: &[u8]) {
        let billed = capacity::of_request(operation, body);
        if let Ok(mut capacity) = self.capacity.lock() {
            *capacity = *capacity + billed;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    delay: Duration,
    tally: Tally,
    faults: FaultState,
) {
    // Owned here, so that aborting this task drops (and aborts) every connection task.
    let mut connections = JoinSet::new();
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        connections.spawn(relay(
            client,
            upstream,
            delay,
            tally.clone(),
            faults.clone(),
        ));
        while connections.try_join_next().is_some() {}
    }
}

async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    delay: Duration,
    tally: Tally,
    faults: FaultState,
) -> Result<()> {
    let server = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (client_read, client_write) = client.into_split();
    // Shared: canned responses are written from the request side. Clients do not pipeline,
    // so a canned response never lands inside an upstream one.
    let client_write = tokio::sync::Mutex::new(client_write);
    let (mut server_read, server_write) = server.into_split();
    let (arrivals_tx, mut arrivals) = tokio::sync::mpsc::unbounded_channel();
    let responses = async {
        let released =
            release_responses(&mut server_read, &client_write, &mut arrivals, delay).await;
        let _ = client_write.lock().await.shutdown().await;
        released
    };
    let requests = forward_requests(
        BufReader::new(client_read),
        server_write,
        &client_write,
        arrivals_tx,
        &tally,
        &faults,
    );
    let (requests, responses) = tokio::join!(requests, responses);
    if let Err(error) = requests {
        record(&tally.counts, UNPARSED);
        return Err(error);
    }
    responses?;
    Ok(())
}

/// Copies responses to the client, holding the first bytes of each until `delay` after its
/// request arrived; a response to be lost ends the connection instead.
async fn release_responses<R, W>(
    server: &mut R,
    client: &tokio::sync::Mutex<W>,
    arrivals: &mut tokio::sync::mpsc::UnboundedReceiver<Arrival>,
    delay: Duration,
) -> Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let read = server.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        // A request forwarded and not yet answered: these bytes start its response.
        if let Ok(arrival) = arrivals.try_recv() {
            if arrival.lose {
                return Ok(());
            }
            tokio::time::sleep_until(arrival.at + delay + arrival.extra_delay).await;
        }
        client.lock().await.write_all(&buffer[..read]).await?;
    }
}

/// Forwards requests one by one as they come, counting each and telling the response side
/// when it arrived; answers those of an operation with an injected fault itself.
async fn forward_requests<R, W, C>(
    mut client: BufReader<R>,
    mut server: W,
    client_write: &tokio::sync::Mutex<C>,
    arrivals: tokio::sync::mpsc::UnboundedSender<Arrival>,
    tally: &Tally,
    faults: &FaultState,
) -> Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    C: AsyncWrite + Unpin,
{
    loop {
        let mut head = Vec::new();
        if client.read_until(b'\n', &mut head).await? == 0 {
            let _ = server.shutdown().await;
            return Ok(());
        }
        let arrived = Instant::now();
        let (mut body_length, mut operation) = (0u64, String::from("(none)"));
        let mut dynamodb = false;
        loop {
            let start = head.len();
            if client.read_until(b'\n', &mut head).await? == 0 {
                bail!("the connection closed inside a request's headers");
            }
            let line = String::from_utf8_lossy(&head[start..]);
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => body_length = value.parse().context("Content-Length")?,
                "x-amz-target" => {
                    operation = value.rsplit('.').next().unwrap_or(value).to_string();
                    dynamodb = value.starts_with("DynamoDB_");
                }
                "transfer-encoding" => bail!("chunked request bodies are not supported"),
                _ => {}
            }
        }
        record(&tally.counts, &operation);
        let (lose, extra_delay) = match decide(faults, &operation) {
            Fate::Forward(extra) => (false, extra),
            Fate::LoseResponse => (true, Duration::ZERO),
            Fate::Drop => {
                let _ = server.shutdown().await;
                return Ok(());
            }
            Fate::Answer(respond) => {
                let mut body = Vec::new();
                (&mut client)
                    .take(body_length)
                    .read_to_end(&mut body)
                    .await?;
                let canned = respond(&body);
                let response = format!(
                    "HTTP/1.1 {} Canned\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n{}",
                    canned.status,
                    canned.content_type,
                    canned.body.len(),
                    canned.body
                );
                client_write
                    .lock()
                    .await
                    .write_all(response.as_bytes())
                    .await?;
                continue;
            }
        };
        // Sent before the request goes upstream, so it is there before its response.
        let _ = arrivals.send(Arrival {
            at: arrived,
            lose,
            extra_delay,
        });
        server.write_all(&head).await?;
        // The body is streamed, so a client that waits for `100 Continue` is not stuck; a
        // DynamoDB request's is kept as it passes and its capacity tallied before its last
        // byte goes upstream, so the tally includes a request whose response is out.
        let mut kept = Vec::new();
        let mut body = (&mut client).take(body_length);
        let mut chunk = vec![0; 16 * 1024];
        let mut copied = 0;
        loop {
            let read = body.read(&mut chunk).await?;
            if read == 0 {
                break;
            }
            copied += read as u64;
            if dynamodb {
                kept.extend_from_slice(&chunk[..read]);
                if copied == body_length {
                    tally.bill(&operation, &kept);
                }
            }
            server.write_all(&chunk[..read]).await?;
        }
        if copied != body_length {
            bail!("the connection closed inside a request's body");
        }
        if dynamodb && body_length == 0 {
            tally.bill(&operation, &kept);
        }
    }
}

/// What happens to a request of `operation`: a scripted fault first, then an outage, then
/// the random shares.
fn decide(faults: &FaultState, operation: &str) -> Fate {
    if let Some(respond) = take_fault(&faults.scripted, operation) {
        count_injected(faults, "scripted");
        return Fate::Answer(respond);
    }
    if take_lost(&faults.lost, operation) {
        count_injected(faults, "scripted");
        return Fate::LoseResponse;
    }
    let Ok(mut random) = faults.random.lock() else {
        return Fate::Forward(Duration::ZERO);
    };
    let down = random.outage_only.is_empty() || random.outage_only.iter().any(|op| op == operation);
    let fate = if let Some(respond) = random.outage.as_ref().filter(|_| down) {
        Some(("outage", Fate::Answer(respond.clone())))
    } else if let Some((_, respond)) = random
        .fail
        .as_ref()
        .filter(|(share, _)| fastrand::f64() < *share)
    {
        Some(("failed", Fate::Answer(respond.clone())))
    } else if random.drop > 0.0 && fastrand::f64() < random.drop {
        Some(("dropped", Fate::Drop))
    } else if random.lose > 0.0 && fastrand::f64() < random.lose {
        Some(("response lost", Fate::LoseResponse))
    } else if random.slow.0 > 0.0 && fastrand::f64() < random.slow.0 {
        Some(("slow", Fate::Forward(random.slow.1)))
    } else {
        None
    };
    match fate {
        Some((kind, fate)) => {
            *random.injected.entry(kind.to_string()).or_default() += 1;
            fate
        }
        None => Fate::Forward(Duration::ZERO),
    }
}

fn count_injected(faults: &FaultState, kind: &str) {
    if let Ok(mut random) = faults.random.lock() {
        *random.injected.entry(kind.to_string()).or_default() += 1;
    }
}

/// Whether a request of `operation` is to lose its response (one of those left is taken).
fn take_lost(lost: &Mutex<BTreeMap<String, usize>>, operation: &str) -> bool {
    let Ok(mut lost) = lost.lock() else {
        return false;
    };
    match lost.get_mut(operation) {
        Some(remaining) if *remaining > 0 => {
            *remaining -= 1;
            true
        }
        _ => false,
    }
}

/// The fault to answer a request of `operation` with, if one is left.
fn take_fault(faults: &Faults, operation: &str) -> Option<Respond> {
    let mut faults = faults.lock().ok()?;
    let (remaining, respond) = faults.get_mut(operation)?;
    if *remaining == 0 {
        return None;
    }
    *remaining -= 1;
    Some(respond.clone())
}

fn record(counts: &Mutex<Counts>, operation: &str) {
    if let Ok(mut counts) = counts.lock() {
        *counts.entry(operation.to_string()).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn requests_are_counted_by_operation_and_forwarded_whole() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_addr = upstream.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = upstream.accept().await.unwrap();
            let mut received = vec![0; 2048];
            let mut total = 0;
            while !String::from_utf8_lossy(&received[..total]).ends_with("{\"b\":2}") {
                total += stream.read(&mut received[total..]).await.unwrap();
            }
            stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
            String::from_utf8_lossy(&received[..total]).into_owned()
        });
        let proxy = Proxy::start(upstream_addr, Duration::from_millis(5))
            .await
            .unwrap();
        let mut client = TcpStream::connect(proxy.addr).await.unwrap();
        let request = |target: &str, body: &str| {
            format!(
                "POST / HTTP/1.1\r\nX-Amz-Target: DynamoDB_20120810.{target}\r\n\
                 content-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let started = std::time::Instant::now();
        let both = request("PutItem", "{\"a\":1}") + &request("UpdateItem", "{\"b\":2}");
        client.write_all(both.as_bytes()).await.unwrap();
        let forwarded = server.await.unwrap();
        assert_eq!(forwarded, both);
        let mut response = vec![0; 19];
        client.read_exact(&mut response).await.unwrap();
        assert_eq!(response, b"HTTP/1.1 200 OK\r\n\r\n");
        // The request went upstream at once; its response was held until the round trip
        // had cost the delay.
        assert!(started.elapsed() >= Duration::from_millis(5));
        assert_eq!(
            proxy.counts(),
            Counts::from([("PutItem".into(), 1), ("UpdateItem".into(), 1)])
        );
        // Each a write of one unit (neither names an item bigger than a kilobyte).
        assert_eq!(
            proxy.capacity(),
            Capacity {
                write_units: 2.0,
                read_units: 0.0
            }
        );
    }

    /// An upstream that answers every request with `200 OK` and an empty body, counting them.
    async fn counting_upstream() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = seen.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut reader = BufReader::new(stream);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            let response = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                            if reader.get_mut().write_all(response).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, seen)
    }

    /// Sends one bodiless request; returns the response's first line, or `None` when the
    /// connection closed without one.
    async fn ask(proxy: &Proxy) -> Option<String> {
        let mut client = TcpStream::connect(proxy.addr).await.unwrap();
        client
            .write_all(b"POST / HTTP/1.1\r\nX-Amz-Target: DynamoDB_20120810.PutItem\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        let mut reader = BufReader::new(client);
        let mut line = String::new();
        let read = reader.read_line(&mut line).await.unwrap_or(0);
        (read > 0).then(|| line.trim_end().to_string())
    }

    fn unavailable(_: &[u8]) -> Canned {
        Canned {
            status: 503,
            content_type: "application/x-amz-json-1.0".into(),
            body: "{}".into(),
        }
    }

    #[tokio::test]
    async fn outages_failures_and_lost_responses_are_given_and_counted() {
        let (upstream, seen) = counting_upstream().await;
        let proxy = Proxy::start(upstream, Duration::ZERO).await.unwrap();
        let forwarded = || seen.load(std::sync::atomic::Ordering::SeqCst);

        assert_eq!(ask(&proxy).await.as_deref(), Some("HTTP/1.1 200 OK"));
        assert_eq!(forwarded(), 1);

        proxy.set_outage(Some(Arc::new(unavailable)));
        assert_eq!(ask(&proxy).await.as_deref(), Some("HTTP/1.1 503 Canned"));
        proxy.set_outage(None);
        proxy.fail_share(1.0, unavailable);
        assert_eq!(ask(&proxy).await.as_deref(), Some("HTTP/1.1 503 Canned"));
        // Neither reached the service.
        assert_eq!(forwarded(), 1);

        proxy.fail_share(0.0, unavailable);
        proxy.lose_share(1.0);
        // The service did the work; the client never hears of it.
        assert_eq!(ask(&proxy).await, None);
        assert_eq!(forwarded(), 2);

        proxy.lose_share(0.0);
        proxy.drop_share(1.0);
        // Closed before the service saw it.
        assert_eq!(ask(&proxy).await, None);
        assert_eq!(forwarded(), 2);

        proxy.drop_share(0.0);
        proxy.slow_share(1.0, Duration::from_millis(300));
        let asked = std::time::Instant::now();
        assert_eq!(ask(&proxy).await.as_deref(), Some("HTTP/1.1 200 OK"));
        assert!(asked.elapsed() >= Duration::from_millis(300));

        proxy.slow_share(0.0, Duration::ZERO);
        assert_eq!(ask(&proxy).await.as_deref(), Some("HTTP/1.1 200 OK"));
        assert_eq!(
            proxy.injected(),
            Counts::from([
                ("outage".into(), 1),
                ("failed".into(), 1),
                ("response lost".into(), 1),
                ("dropped".into(), 1),
                ("slow".into(), 1)
            ])
        );
    }
}
