//! The engine of the local Data Connector: build, sign, send, retry, count. `mod.rs` wraps
//! it in a command line (`dt-signature send`); `cli/tests/send.rs` runs it against
//! in-process receivers.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{future, stream, StreamExt};
use http::{HeaderName, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use tower_dt_signature::events::{EventType, Payload};
use tower_dt_signature::testing::AsymmetricSigner;

pub use super::client::Tls;
use super::client::{self, HttpClient};
pub use super::report::{Answer, Report, TamperResult};
use super::tamper::{tampered, Signers};
pub use super::tamper::{tampered_request, Tamper};

/// Which signature headers a request carries (`--scheme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scheme {
    /// `X-Dt-Signature` alone: HS256 under the connector's secret.
    Hmac,
    /// `DT-Asymmetric-Signature` alone: ES256 under the connector's key, as DT sends for a
    /// connector without a secret.
    Asymmetric,
    /// Both headers, as DT sends them for a connector with a secret.
    Both,
}

impl Scheme {
    /// The name `--scheme` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hmac => "hmac",
            Self::Asymmetric => "asymmetric",
            Self::Both => "both",
        }
    }

    /// Whether requests carry `X-Dt-Signature` (so a secret is needed).
    pub fn uses_hmac(self) -> bool {
        matches!(self, Self::Hmac | Self::Both)
    }

    /// Whether requests carry `DT-Asymmetric-Signature` (so a key and keys served).
    pub fn uses_asymmetric(self) -> bool {
        matches!(self, Self::Asymmetric | Self::Both)
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the connector signs: with its secret, its ES256 key, or both.
#[derive(Clone)]
pub enum Signing {
    /// `X-Dt-Signature` with this secret.
    Hmac {
        /// The connector's signature secret.
        secret: String,
    },
    /// `DT-Asymmetric-Signature` from this signer (its `kid`, `iss` and `sub`).
    Asymmetric {
        /// The connector's key, issuer and organization.
        signer: AsymmetricSigner,
    },
    /// Both tokens.
    Both {
        /// The connector's signature secret.
        secret: String,
        /// The connector's key, issuer and organization.
        signer: AsymmetricSigner,
    },
}

impl Signing {
    /// The scheme these signers make.
    pub fn scheme(&self) -> Scheme {
        match self {
            Self::Hmac { .. } => Scheme::Hmac,
            Self::Asymmetric { .. } => Scheme::Asymmetric,
            Self::Both { .. } => Scheme::Both,
        }
    }

    /// The secret, if `X-Dt-Signature` is sent.
    pub fn secret(&self) -> Option<&str> {
        match self {
            Self::Hmac { secret } => Some(secret),
            Self::Both { secret, .. } => Some(secret),
            Self::Asymmetric { .. } => None,
        }
    }

    /// The ES256 signer, if `DT-Asymmetric-Signature` is sent.
    pub fn es256(&self) -> Option<&AsymmetricSigner> {
        match self {
            Self::Hmac { .. } => None,
            Self::Asymmetric { signer } | Self::Both { signer, .. } => Some(signer),
        }
    }
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct(self.scheme().as_str());
        if self.secret().is_some() {
            debug.field("secret", &"<redacted>");
        }
        if let Some(signer) = self.es256() {
            // AsymmetricSigner's Debug redacts its private key.
            debug.field("signer", signer);
        }
        debug.finish()
    }
}

/// The connector's ES256 key, read from the PKCS#8 file at `path`, or made and saved there
/// (parent folders too) if there is none: the same `kid` from run to run. It signs for
/// `issuer` with `sub` = `org_id`. The `bool` says whether the key is new.
pub fn load_key(
    path: &Path,
    issuer: &str,
    org_id: &str,
) -> Result<(AsymmetricSigner, bool), String> {
    let new = !path.exists();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|error| format!("cannot create {}: {error}", parent.display()))?;
    }
    let signer = AsymmetricSigner::load_or_generate(path).map_err(|error| error.to_string())?;
    Ok((signer.with_issuer(issuer).with_org_id(org_id), new))
}

/// What to send, where, and how to retry.
#[derive(Clone)]
pub struct Config {
    /// The receiver: `http://`, or `https://` (checked as [`tls`](Self::tls) says).
    pub url: Uri,
    /// The connector's secret, key, or both.
    pub signing: Signing,
    /// The event types to send, each `count` times.
    pub types: Vec<EventType>,
    /// Events per type (with `tamper`: ignored, each kind runs once per type).
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
    /// Send every tamper kind of the scheme once for each type, which a verifying
    /// receiver must refuse (`count` is ignored).
    pub tamper: bool,
    /// A body of one's own (`--body FILE`), sent `count` times instead of samples, each
    /// time signed as DT signs (issued now).
    pub body: Option<Bytes>,
    /// Copies of each event (`--duplicates N`), the same bytes and tokens: half of them
    /// (at least 2) at once, the others one after another. 1 by default.
    pub duplicates: usize,
    /// `--out-of-order`: for each type, `count` events (at least 2) of one device, their
    /// timestamps one second apart, sent one after another in a shuffled order (never
    /// oldest first to newest last, and the newest never last).
    pub out_of_order: bool,
    /// The roots an `https://` receiver's certificate is checked against: the platform's,
    /// plus any `--ca-cert`.
    pub tls: Tls,
}

impl Config {
    /// DT's behaviour, bounded: every type once, 4 at a time, 3 tries 0.5 s / 1 s apart,
    /// 10 s timeout; `X-Dt-Signature` with `secret`.
    pub fn new(url: Uri, secret: impl Into<String>) -> Self {
        Self::signed(
            url,
            Signing::Hmac {
                secret: secret.into(),
            },
        )
    }

    /// Like [`new`](Self::new), signed as `signing` says.
    pub fn signed(url: Uri, signing: Signing) -> Self {
        Self {
            url,
            signing,
            types: EventType::ALL.to_vec(),
            count: 1,
            concurrency: 4,
            max_attempts: 3,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            tamper: false,
            body: None,
            duplicates: 1,
            out_of_order: false,
            tls: Tls::default(),
        }
    }

    /// The requests a run makes, as the header line counts them: (events, their unit).
    pub fn planned(&self) -> usize {
        if self.tamper {
            return self.types.len() * Tamper::of(self.signing.scheme()).len();
        }
        if self.body.is_some() {
            return self.count;
        }
        if self.out_of_order {
            return self.types.len() * self.count.max(2);
        }
        self.types.len() * self.count
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.url)
            .field("signing", &self.signing)
            .field("types", &self.types)
            .field("count", &self.count)
            .field("concurrency", &self.concurrency)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("max_backoff", &self.max_backoff)
            .field("timeout", &self.timeout)
            .field("tamper", &self.tamper)
            .field("body", &self.body.as_ref().map(Bytes::len))
            .field("duplicates", &self.duplicates)
            .field("out_of_order", &self.out_of_order)
            .field("tls", &self.tls)
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

/// What happened to one event (all its copies).
#[derive(Default)]
struct Outcome {
    delivered: bool,
    requests: usize,
    answers: Vec<(u16, String)>,
    no_answer: Vec<String>,
    latencies: Vec<Duration>,
    tamper: Option<(Tamper, EventType)>,
}

/// One job of a run.
enum Job {
    /// A fresh sample of this type.
    Event(EventType),
    /// The `--body` bytes.
    Body(Bytes),
    /// Samples of one type and device, sent one after another in this order of their
    /// timestamps' ages (seconds before now).
    OutOfOrder(EventType, Vec<u64>),
    /// A tampered request.
    Tampered(EventType, Tamper),
}

/// Sends everything `config` asks for and counts the answers.
pub async fn run(config: &Config) -> Report {
    let client = match HttpClient::new(&config.url, &config.tls) {
        Ok(client) => client,
        Err(error) => {
            // No request can be made: each event is one request without an answer.
            let events = config.planned();
            return Report {
                events,
                failed: if config.tamper { 0 } else { events },
                requests: events,
                transport_errors: events,
                no_answer: BTreeMap::from([(error, events)]),
                ..Report::default()
            };
        }
    };
    let signers = Signers::new(&config.signing);
    let jobs = jobs(config);
    let outcomes: Vec<Vec<Outcome>> = stream::iter(jobs)
        .map(|job| {
            let (client, signers) = (client.clone(), &signers);
            async move {
                match job {
                    Job::Event(event_type) => {
                        let payload =
                            Payload::sample(&event_type, SystemTime::now()).expect("a known type");
                        vec![send_payload(config, &client, signers, &payload).await]
                    }
                    Job::Body(body) => {
                        let iat = unix_now();
                        let tokens = signers.tokens(&body, iat);
                        let request = post(config, tokens, body.to_vec());
                        vec![deliver(config, &client, &request).await]
                    }
                    Job::OutOfOrder(event_type, ages) => {
                        send_out_of_order(config, &client, signers, &event_type, &ages).await
                    }
                    Job::Tampered(event_type, tamper) => {
                        vec![send_tampered(config, &client, signers, event_type, tamper).await]
                    }
                }
            }
        })
        .buffered(config.concurrency.max(1))
        .collect()
        .await;

    let mut report = Report::default();
    for outcome in outcomes.into_iter().flatten() {
        report.events += 1;
        report.requests += outcome.requests;
        report.transport_errors += outcome.no_answer.len();
        report.latencies.extend(outcome.latencies);
        for (status, text) in &outcome.answers {
            *report.statuses.entry(*status).or_default() += 1;
            if !(200..300).contains(status) {
                report
                    .reasons
                    .entry(*status)
                    .or_insert_with(|| text.clone());
            }
        }
        for error in &outcome.no_answer {
            *report.no_answer.entry(error.clone()).or_default() += 1;
        }
        match (outcome.tamper, outcome.delivered) {
            (None, true) => report.delivered += 1,
            (None, false) => report.failed += 1,
            (Some((tamper, event_type)), accepted) => {
                let answer = match (outcome.answers.first(), outcome.no_answer.first()) {
                    (Some((status, text)), _) => Answer::Status(*status, text.clone()),
                    (None, Some(error)) => Answer::None(error.clone()),
                    (None, None) => Answer::None("not sent".to_owned()),
                };
                if accepted {
                    report
                        .tamper_accepted
                        .push(format!("{tamper:?} ({event_type})"));
                } else if !outcome.answers.is_empty() {
                    report.tamper_refused += 1;
                }
                report.tampered.push(TamperResult {
                    kind: tamper,
                    event_type,
                    answer,
                });
            }
        }
    }
    report
}

/// The jobs of a run, in the order they start.
fn jobs(config: &Config) -> Vec<Job> {
    if config.tamper {
        let kinds = Tamper::of(config.signing.scheme());
        return config
            .types
            .iter()
            .flat_map(|event_type| {
                kinds
                    .iter()
                    .map(|kind| Job::Tampered(event_type.clone(), *kind))
            })
            .collect();
    }
    if let Some(body) = &config.body {
        return (0..config.count).map(|_| Job::Body(body.clone())).collect();
    }
    if config.out_of_order {
        let n = config.count.max(2);
        return config
            .types
            .iter()
            .map(|event_type| Job::OutOfOrder(event_type.clone(), shuffled_ages(n)))
            .collect();
    }
    (0..config.count)
        .flat_map(|_| config.types.iter().cloned())
        .map(Job::Event)
        .collect()
}

/// The ages in seconds (0 is the newest) of `n >= 2` events, in a shuffled order of
/// sending: never oldest to newest, and the newest never last, so that a receiver that
/// keeps "the last one received" as the latest gets it wrong.
pub fn shuffled_ages(n: usize) -> Vec<u64> {
    let mut ages: Vec<u64> = (0..n as u64).collect();
    // A small xorshift, seeded by the clock: a different order each run.
    let mut state = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0x9e37_79b9, |d| d.subsec_nanos() as u64)
        | 1;
    for i in (1..ages.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ages.swap(i, (state % (i as u64 + 1)) as usize);
    }
    if ages.last() == Some(&0) {
        // The newest goes first instead.
        let last = ages.len() - 1;
        ages.swap(0, last);
    }
    ages
}

/// The `--out-of-order` events of one type: samples of one device (DT's sample device of
/// the type), `ages` seconds old, sent one after another in that order, each retried
/// like DT and copied as `--duplicates` says.
async fn send_out_of_order(
    config: &Config,
    client: &HttpClient,
    signers: &Signers,
    event_type: &EventType,
    ages: &[u64],
) -> Vec<Outcome> {
    let now = SystemTime::now();
    let mut outcomes = Vec::with_capacity(ages.len());
    for age in ages {
        let at = now - Duration::from_secs(*age);
        let payload = Payload::sample(event_type, at).expect("a known type");
        outcomes.push(send_payload(config, client, signers, &payload).await);
    }
    outcomes
}

/// A signed event, delivered as [`deliver`] says.
async fn send_payload(
    config: &Config,
    client: &HttpClient,
    signers: &Signers,
    payload: &Payload,
) -> Outcome {
    let body = serde_json::to_vec(payload).expect("payloads serialize");
    // DT: iat is the event's timestamp, in whole seconds.
    let iat = payload.event.timestamp.timestamp().max(0) as u64;
    let tokens = signers.tokens(&body, iat);
    let request = post(config, tokens, body);
    deliver(config, client, &request).await
}

/// `request` delivered `duplicates` times: the first half of the copies (at least 2) at
/// once, the others one after another. Each copy is retried like DT retries; the event
/// is delivered when every copy got a 2xx.
async fn deliver(config: &Config, client: &HttpClient, request: &Request<Full<Bytes>>) -> Outcome {
    let copies = config.duplicates.max(1);
    let at_once = if copies == 1 { 1 } else { (copies / 2).max(2) };
    let first = future::join_all((0..at_once).map(|_| retried(config, client, request))).await;
    let mut outcome = Outcome {
        delivered: true,
        ..Outcome::default()
    };
    for copy in first {
        outcome.merge(copy);
    }
    for _ in at_once..copies {
        let copy = retried(config, client, request).await;
        outcome.merge(copy);
    }
    outcome
}

/// One copy, retried like DT retries: on any non-2xx answer or no answer, with a doubling
/// backoff, at most `max_attempts` times. Every try sends the same bytes.
async fn retried(config: &Config, client: &HttpClient, request: &Request<Full<Bytes>>) -> Outcome {
    let mut outcome = Outcome::default();
    let mut backoff = config.backoff;
    for attempt in 1..=config.max_attempts.max(1) {
        if attempt > 1 {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(config.max_backoff);
        }
        if let Some(status) = outcome.send(config, client, copy(request)).await {
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
    signers: &Signers,
    event_type: EventType,
    tamper: Tamper,
) -> Outcome {
    let (tokens, body) = tampered(signers, &event_type, tamper, SystemTime::now());
    let request = post(config, tokens, body);
    let mut outcome = Outcome {
        tamper: Some((tamper, event_type)),
        ..Outcome::default()
    };
    if let Some(status) = outcome.send(config, client, request).await {
        outcome.delivered = status.is_success();
    }
    outcome
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A `POST` of `body` (JSON) to the receiver with these signature headers.
fn post(config: &Config, tokens: Vec<(HeaderName, String)>, body: Vec<u8>) -> Request<Full<Bytes>> {
    let mut request = Request::post(config.url.to_string())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(Full::new(Bytes::from(body)))
        .expect("a valid URL");
    for (name, token) in tokens {
        let value = token.parse().expect("tokens are header-safe");
        request.headers_mut().insert(name, value);
    }
    request
}

/// The most of an answer's body kept as its reason.
const REASON_BYTES: usize = 200;

impl Outcome {
    /// Adds a copy's counts; the event stays delivered only if the copy was.
    fn merge(&mut self, copy: Outcome) {
        self.delivered &= copy.delivered;
        self.requests += copy.requests;
        self.answers.extend(copy.answers);
        self.no_answer.extend(copy.no_answer);
        self.latencies.extend(copy.latencies);
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
            let response = client.request(request).await?;
            let status = response.status();
            let body = Limited::new(response.into_body(), 64 * 1024)
                .collect()
                .await
                .map_err(|error| format!("the answer's body was cut: {error}"))?
                .to_bytes();
            Ok::<_, String>((status, reason(&body)))
        };
        match tokio::time::timeout(config.timeout, exchange).await {
            Ok(Ok((status, text))) => {
                self.latencies.push(started.elapsed());
                self.answers.push((status.as_u16(), text));
                Some(status)
            }
            Ok(Err(error)) => {
                self.no_answer.push(error);
                None
            }
            Err(_) => {
                self.no_answer
                    .push(client::no_answer_within(config.timeout));
                None
            }
        }
    }
}

/// An answer's body as a reason: its text on one line (control characters as spaces),
/// at most [`REASON_BYTES`] bytes.
fn reason(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(REASON_BYTES)]);
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.len() > REASON_BYTES {
        line.push_str(" ...");
    }
    line
}

fn copy(request: &Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy
}
