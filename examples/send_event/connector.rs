//! The engine of the local Data Connector: build, sign, send, retry, count. `main.rs` wraps
//! it in a command line; `tests/send_event.rs` runs it against an in-process receiver.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_dt_signature::consts::X_DT_SIGNATURE;
use tower_dt_signature::events::{EventType, Payload};
use tower_dt_signature::testing::{SignOptions, Signer};

/// What to send, where, and how to retry.
#[derive(Clone)]
pub struct Config {
    /// The receiver (`http://` only).
    pub url: Uri,
    /// The connector's signature secret.
    pub secret: String,
    /// The event types to send, each `count` times.
    pub types: Vec<EventType>,
    /// Events per type.
    pub count: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Tries per event, the first included (DT retries for up to 12 hours; this is
    /// bounded). Tampered requests are sent once.
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles each time, up to `max_backoff`.
    pub backoff: Duration,
    /// The longest wait between two tries.
    pub max_backoff: Duration,
    /// How long to wait for an answer; DT gives up after 10 s.
    pub timeout: Duration,
    /// Send mutated requests, which a verifying receiver must refuse.
    pub tamper: bool,
}

impl Config {
    /// DT's behaviour, bounded: every type once, 4 at a time, 3 tries 0.5 s / 1 s apart,
    /// 10 s timeout.
    pub fn new(url: Uri, secret: impl Into<String>) -> Self {
        Self {
            url,
            secret: secret.into(),
            types: EventType::ALL.to_vec(),
            count: 1,
            concurrency: 4,
            max_attempts: 3,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            tamper: false,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("types", &self.types)
            .field("count", &self.count)
            .field("concurrency", &self.concurrency)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("max_backoff", &self.max_backoff)
            .field("timeout", &self.timeout)
            .field("tamper", &self.tamper)
            .finish()
    }
}

/// `--type` values: event type names, or `all`; none means all. Each type once, in the
/// order first named. `Err` holds the first name that is not an event type.
pub fn parse_types(names: &[String]) -> Result<Vec<EventType>, String> {
    let mut types: Vec<EventType> = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let named = if name == "all" {
            EventType::ALL.to_vec()
        } else {
            match EventType::from(name) {
                EventType::Unknown(_) => return Err(name.to_owned()),
                known => vec![known],
            }
        };
        for event_type in named {
            if !types.contains(&event_type) {
                types.push(event_type);
            }
        }
    }
    if types.is_empty() {
        types.extend(EventType::ALL);
    }
    Ok(types)
}

/// The ways `--tamper` breaks a request, used in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// One body byte changed after signing.
    BodyByte,
    /// One character of the token's signature changed.
    Signature,
    /// Signed with another secret.
    OtherSecret,
    /// Signed two hours ago: expired.
    Expired,
    /// No `X-Dt-Signature` header.
    NoSignature,
    /// The token of another body.
    OtherBody,
}

impl Tamper {
    /// Every kind, in the order they are used.
    pub const ALL: [Tamper; 6] = [
        Tamper::BodyByte,
        Tamper::Signature,
        Tamper::OtherSecret,
        Tamper::Expired,
        Tamper::NoSignature,
        Tamper::OtherBody,
    ];
}

/// DT Studio's view of a run, and more.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Events (or tampered requests) sent.
    pub events: usize,
    /// Events answered 2xx, after retries (DT Studio's "Success").
    pub delivered: usize,
    /// Events that never got a 2xx (DT Studio's "Error").
    pub failed: usize,
    /// HTTP requests made, retries included.
    pub requests: usize,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, usize>,
    /// Requests that got no answer (connection refused, timeout, ...).
    pub transport_errors: usize,
    /// Time to the whole answer, for each answered request.
    pub latencies: Vec<Duration>,
    /// Tampered requests refused (non-2xx), in `--tamper` mode.
    pub tamper_refused: usize,
    /// Tampered requests the receiver accepted: each one is a hole.
    pub tamper_accepted: Vec<String>,
}

impl Report {
    /// The latency below which `percent` % of answers came (nearest rank).
    pub fn percentile(&self, percent: f64) -> Option<Duration> {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return None;
        }
        let rank = ((percent / 100.0) * sorted.len() as f64).ceil() as usize;
        Some(sorted[rank.clamp(1, sorted.len()) - 1])
    }

    /// Whether the run went as it should: every event delivered, or, with `--tamper`,
    /// every tampered request answered and refused.
    pub fn ok(&self, tamper: bool) -> bool {
        if tamper {
            self.tamper_accepted.is_empty()
                && self.transport_errors == 0
                && self.tamper_refused == self.events
        } else {
            self.failed == 0 && self.delivered == self.events
        }
    }
}

/// What happened to one event.
struct Outcome {
    delivered: bool,
    requests: usize,
    statuses: Vec<u16>,
    transport_errors: usize,
    latencies: Vec<Duration>,
    tamper: Option<(Tamper, EventType)>,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Sends everything `config` asks for and counts the answers.
pub async fn run(config: &Config) -> Report {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let signer = Signer::new(&config.secret);
    let jobs: Vec<(usize, EventType)> = (0..config.count)
        .flat_map(|_| config.types.iter().cloned())
        .enumerate()
        .collect();
    let outcomes: Vec<Outcome> = stream::iter(jobs)
        .map(|(n, event_type)| {
            let (client, signer) = (client.clone(), signer.clone());
            async move {
                if config.tamper {
                    let tamper = Tamper::ALL[n % Tamper::ALL.len()];
                    send_tampered(config, &client, &signer, event_type, tamper).await
                } else {
                    send_event(config, &client, &signer, event_type).await
                }
            }
        })
        .buffer_unordered(config.concurrency.max(1))
        .collect()
        .await;

    let mut report = Report {
        events: outcomes.len(),
        ..Report::default()
    };
    for outcome in outcomes {
        report.requests += outcome.requests;
        report.transport_errors += outcome.transport_errors;
        report.latencies.extend(outcome.latencies);
        for status in &outcome.statuses {
            *report.statuses.entry(*status).or_default() += 1;
        }
        match (outcome.tamper, outcome.delivered) {
            (None, true) => report.delivered += 1,
            (None, false) => report.failed += 1,
            (Some((tamper, event_type)), true) => report
                .tamper_accepted
                .push(format!("{tamper:?} ({event_type})")),
            (Some(_), false) if !outcome.statuses.is_empty() => report.tamper_refused += 1,
            (Some(_), false) => {}
        }
    }
    report
}

/// A fresh signed event, retried like DT retries: on any non-2xx answer or no answer,
/// with a doubling backoff, at most `max_attempts` times. Every try sends the same bytes.
async fn send_event(
    config: &Config,
    client: &HttpClient,
    signer: &Signer,
    event_type: EventType,
) -> Outcome {
    let payload = Payload::sample(&event_type, SystemTime::now()).expect("a known type");
    let body = Bytes::from(serde_json::to_vec(&payload).expect("payloads serialize"));
    // DT: iat is the event's timestamp, in whole seconds.
    let iat = payload.event.timestamp.timestamp().max(0) as u64;
    let request = signer
        .request_with::<Full<Bytes>>(&config.url.to_string(), body, &SignOptions::new().iat(iat))
        .expect("a valid URL");

    let mut outcome = Outcome::new(None);
    let mut backoff = config.backoff;
    for attempt in 1..=config.max_attempts.max(1) {
        if attempt > 1 {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(config.max_backoff);
        }
        if let Some(status) = outcome.send(config, client, copy(&request)).await {
            if status.is_success() {
                outcome.delivered = true;
                break;
            }
        }
    }
    outcome
}

/// A request broken in one way, sent once.
async fn send_tampered(
    config: &Config,
    client: &HttpClient,
    signer: &Signer,
    event_type: EventType,
    tamper: Tamper,
) -> Outcome {
    let now = SystemTime::now();
    let payload = Payload::sample(&event_type, now).expect("a known type");
    let body = serde_json::to_vec(&payload).expect("payloads serialize");
    let iat = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let options = SignOptions::new().iat(iat);
    let uri = config.url.to_string();

    let (token, body) = match tamper {
        Tamper::BodyByte => {
            let token = signer.sign_with(&body, &options);
            let mut body = body;
            // A digit of the event id: still valid JSON, another event.
            let at = find(&body, b"\"eventId\":\"") + 11;
            body[at] = if body[at] == b'0' { b'1' } else { b'0' };
            (Some(token), body)
        }
        Tamper::Signature => {
            let mut token = signer.sign_with(&body, &options).into_bytes();
            let last = token.len() - 2; // not the last char: it carries padding bits
            token[last] = if token[last] == b'A' { b'B' } else { b'A' };
            (Some(String::from_utf8(token).expect("ASCII")), body)
        }
        Tamper::OtherSecret => {
            let other = Signer::new(format!("{}-not", config.secret));
            (Some(other.sign_with(&body, &options)), body)
        }
        Tamper::Expired => {
            let old = SignOptions::new().iat(iat.saturating_sub(2 * 3600));
            (Some(signer.sign_with(&body, &old)), body)
        }
        Tamper::NoSignature => (None, body),
        Tamper::OtherBody => {
            let other = Payload::sample(&event_type, now).expect("a known type");
            let other = serde_json::to_vec(&other).expect("payloads serialize");
            (Some(signer.sign_with(&other, &options)), body)
        }
    };
    let mut request = Request::post(uri)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(Full::new(Bytes::from(body)))
        .expect("a valid URL");
    if let Some(token) = token {
        request.headers_mut().insert(
            X_DT_SIGNATURE,
            token.parse().expect("tokens are header-safe"),
        );
    }
    let mut outcome = Outcome::new(Some((tamper, event_type)));
    if let Some(status) = outcome.send(config, client, request).await {
        outcome.delivered = status.is_success();
    }
    outcome
}

impl Outcome {
    fn new(tamper: Option<(Tamper, EventType)>) -> Self {
        Self {
            delivered: false,
            requests: 0,
            statuses: Vec::new(),
            transport_errors: 0,
            latencies: Vec::new(),
            tamper,
        }
    }

    /// One HTTP exchange; `None` if no whole answer came in time.
    async fn send(
        &mut self,
        config: &Config,
        client: &HttpClient,
        request: Request<Full<Bytes>>,
    ) -> Option<StatusCode> {
        self.requests += 1;
        let started = Instant::now();
        let exchange = async {
            let response = client.request(request).await.ok()?;
            let status = response.status();
            response.into_body().collect().await.ok()?;
            Some(status)
        };
        match tokio::time::timeout(config.timeout, exchange).await {
            Ok(Some(status)) => {
                self.latencies.push(started.elapsed());
                self.statuses.push(status.as_u16());
                Some(status)
            }
            _ => {
                self.transport_errors += 1;
                None
            }
        }
    }
}

fn copy(request: &Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
        .expect("the needle is in the body")
}
