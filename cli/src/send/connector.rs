//! The engine of the local Data Connector: build, sign, send, retry, count. `mod.rs` wraps
//! it in a command line (`dt-signature send`); `cli/tests/send.rs` runs it against
//! in-process receivers.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use http::{HeaderName, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_dt_signature::consts::DT_ASYMMETRIC_SIGNATURE;
use tower_dt_signature::consts::X_DT_SIGNATURE;
use tower_dt_signature::events::{EventType, Payload};
use tower_dt_signature::testing::{AsymmetricSignOptions, AsymmetricSigner};
use tower_dt_signature::testing::{SignOptions, Signer};

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
    /// The receiver (`http://` only).
    pub url: Uri,
    /// The connector's secret, key, or both.
    pub signing: Signing,
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
        }
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

/// The ways `--tamper` breaks a request, one token at a time: [`Tamper::of`] lists those
/// of a scheme, used in turn. Under `both` every kind but [`BodyByte`](Self::BodyByte)
/// breaks one token and leaves the other valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// One body byte changed after signing (every token then disagrees with the body).
    BodyByte,
    /// `X-Dt-Signature`: one character of the signature changed.
    Signature,
    /// `X-Dt-Signature`: signed with another secret.
    OtherSecret,
    /// `X-Dt-Signature`: signed two hours ago, expired.
    Expired,
    /// No `X-Dt-Signature` header.
    NoSignature,
    /// `X-Dt-Signature`: the token of another body.
    OtherBody,
    /// `DT-Asymmetric-Signature`: one character of the signature changed.
    Es256Signature,
    /// `DT-Asymmetric-Signature`: signed with a key the identity server does not serve,
    /// under the connector's `kid`.
    UnknownKeySameKid,
    /// `DT-Asymmetric-Signature`: signed with a key the identity server does not serve,
    /// under that key's own `kid`.
    UnknownKey,
    /// `DT-Asymmetric-Signature`: `sub` is another organization (DT's keys sign every
    /// organization's events: only `sub` says they are yours).
    OtherOrg,
    /// `DT-Asymmetric-Signature`: `iss` is another issuer.
    OtherIssuer,
    /// `DT-Asymmetric-Signature`: signed two hours ago, expired (it lives 5 minutes).
    Es256Expired,
    /// No `DT-Asymmetric-Signature` header.
    NoEs256Signature,
    /// `DT-Asymmetric-Signature`: the token of another body.
    Es256OtherBody,
}

impl Tamper {
    /// With `--scheme hmac`, in the order they are used (as before the asymmetric scheme).
    pub const HMAC: [Tamper; 6] = [
        Tamper::BodyByte,
        Tamper::Signature,
        Tamper::OtherSecret,
        Tamper::Expired,
        Tamper::NoSignature,
        Tamper::OtherBody,
    ];

    /// With `--scheme asymmetric`, in the order they are used.
    pub const ASYMMETRIC: [Tamper; 9] = [
        Tamper::BodyByte,
        Tamper::Es256Signature,
        Tamper::UnknownKeySameKid,
        Tamper::UnknownKey,
        Tamper::OtherOrg,
        Tamper::OtherIssuer,
        Tamper::Es256Expired,
        Tamper::NoEs256Signature,
        Tamper::Es256OtherBody,
    ];

    /// With `--scheme both`, in the order they are used: the changed body, then each
    /// token broken in turn while the other stays valid.
    pub const BOTH: [Tamper; 14] = [
        Tamper::BodyByte,
        Tamper::Signature,
        Tamper::OtherSecret,
        Tamper::Expired,
        Tamper::NoSignature,
        Tamper::OtherBody,
        Tamper::Es256Signature,
        Tamper::UnknownKeySameKid,
        Tamper::UnknownKey,
        Tamper::OtherOrg,
        Tamper::OtherIssuer,
        Tamper::Es256Expired,
        Tamper::NoEs256Signature,
        Tamper::Es256OtherBody,
    ];

    /// The kinds used with `scheme`.
    pub fn of(scheme: Scheme) -> &'static [Tamper] {
        match scheme {
            Scheme::Hmac => &Self::HMAC,
            Scheme::Asymmetric => &Self::ASYMMETRIC,
            Scheme::Both => &Self::BOTH,
        }
    }
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

/// Everything a run signs with, made once.
struct Signers {
    /// The connector's secret, if `X-Dt-Signature` is sent.
    hmac: Option<Signer>,
    /// Another secret, for [`Tamper::OtherSecret`].
    other_hmac: Option<Signer>,
    es256: Option<Es256Signers>,
}

/// The connector's key and two keys the identity server does not serve.
struct Es256Signers {
    signer: AsymmetricSigner,
    /// A stranger's key under the connector's `kid` ([`Tamper::UnknownKeySameKid`]).
    same_kid: AsymmetricSigner,
    /// A stranger's key under its own `kid` ([`Tamper::UnknownKey`]).
    stranger: AsymmetricSigner,
}

impl Signers {
    fn new(signing: &Signing) -> Self {
        let secret = signing.secret();
        Self {
            hmac: secret.map(Signer::new),
            other_hmac: secret.map(|secret| Signer::new(format!("{secret}-not"))),
            es256: signing.es256().map(|signer| {
                // Fresh keys, never served: right issuer and organization, wrong key.
                let unknown = || {
                    AsymmetricSigner::generate()
                        .with_issuer(signer.issuer())
                        .with_org_id(signer.org_id())
                };
                Es256Signers {
                    signer: signer.clone(),
                    same_kid: unknown().with_kid(signer.kid()),
                    stranger: unknown(),
                }
            }),
        }
    }

    /// The signature headers for `body`, issued at `iat`, each token valid.
    fn tokens(&self, body: &[u8], iat: u64) -> Vec<(HeaderName, String)> {
        let mut tokens = Vec::new();
        if let Some(hmac) = &self.hmac {
            let token = hmac.sign_with(body, &SignOptions::new().iat(iat));
            tokens.push((X_DT_SIGNATURE, token));
        }
        if let Some(es) = &self.es256 {
            let token = es
                .signer
                .sign_with(body, &AsymmetricSignOptions::new().iat(iat));
            tokens.push((DT_ASYMMETRIC_SIGNATURE, token));
        }
        tokens
    }

    /// The signature headers for `body` with the token `tamper` names broken (and any
    /// other valid); `other_body` is another event's body.
    fn tampered_tokens(
        &self,
        tamper: Tamper,
        body: &[u8],
        other_body: &[u8],
        iat: u64,
    ) -> Vec<(HeaderName, String)> {
        let mut tokens = Vec::new();
        if let (Some(hmac), Some(other)) = (&self.hmac, &self.other_hmac) {
            let options = SignOptions::new().iat(iat);
            let token = match tamper {
                Tamper::Signature => Some(flip_signature(hmac.sign_with(body, &options))),
                Tamper::OtherSecret => Some(other.sign_with(body, &options)),
                Tamper::Expired => {
                    let old = SignOptions::new().iat(iat.saturating_sub(2 * 3600));
                    Some(hmac.sign_with(body, &old))
                }
                Tamper::NoSignature => None,
                Tamper::OtherBody => Some(hmac.sign_with(other_body, &options)),
                _ => Some(hmac.sign_with(body, &options)),
            };
            tokens.extend(token.map(|token| (X_DT_SIGNATURE, token)));
        }
        if let Some(es) = &self.es256 {
            let options = AsymmetricSignOptions::new().iat(iat);
            let signer = &es.signer;
            let token = match tamper {
                Tamper::Es256Signature => Some(flip_signature(signer.sign_with(body, &options))),
                Tamper::UnknownKeySameKid => Some(es.same_kid.sign_with(body, &options)),
                Tamper::UnknownKey => Some(es.stranger.sign_with(body, &options)),
                Tamper::OtherOrg => {
                    let other = options.org_id(format!("{}-not", signer.org_id()));
                    Some(signer.sign_with(body, &other))
                }
                Tamper::OtherIssuer => {
                    let other = options.issuer(format!("{}-not", signer.issuer()));
                    Some(signer.sign_with(body, &other))
                }
                Tamper::Es256Expired => {
                    let old = AsymmetricSignOptions::new().iat(iat.saturating_sub(2 * 3600));
                    Some(signer.sign_with(body, &old))
                }
                Tamper::NoEs256Signature => None,
                Tamper::Es256OtherBody => Some(signer.sign_with(other_body, &options)),
                _ => Some(signer.sign_with(body, &options)),
            };
            tokens.extend(token.map(|token| (DT_ASYMMETRIC_SIGNATURE, token)));
        }
        tokens
    }
}

/// Sends everything `config` asks for and counts the answers.
pub async fn run(config: &Config) -> Report {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let signers = Signers::new(&config.signing);
    let kinds = Tamper::of(config.signing.scheme());
    let jobs: Vec<(usize, EventType)> = (0..config.count)
        .flat_map(|_| config.types.iter().cloned())
        .enumerate()
        .collect();
    let outcomes: Vec<Outcome> = stream::iter(jobs)
        .map(|(n, event_type)| {
            let (client, signers) = (client.clone(), &signers);
            async move {
                if config.tamper {
                    let tamper = kinds[n % kinds.len()];
                    send_tampered(config, &client, signers, event_type, tamper).await
                } else {
                    send_event(config, &client, signers, event_type).await
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
    signers: &Signers,
    event_type: EventType,
) -> Outcome {
    let payload = Payload::sample(&event_type, SystemTime::now()).expect("a known type");
    let body = serde_json::to_vec(&payload).expect("payloads serialize");
    // DT: iat is the event's timestamp, in whole seconds.
    let iat = payload.event.timestamp.timestamp().max(0) as u64;
    let tokens = signers.tokens(&body, iat);
    let request = post(config, tokens, body);

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
    signers: &Signers,
    event_type: EventType,
    tamper: Tamper,
) -> Outcome {
    let (tokens, body) = tampered(signers, &event_type, tamper, SystemTime::now());
    let request = post(config, tokens, body);
    let mut outcome = Outcome::new(Some((tamper, event_type)));
    if let Some(status) = outcome.send(config, client, request).await {
        outcome.delivered = status.is_success();
    }
    outcome
}

/// The request `send --tamper` sends for `event_type` broken as `tamper` says, signed
/// as `signing` says at `now`: its signature headers and its body. For the tests that
/// compare what the library says of each kind.
pub fn tampered_request(
    signing: &Signing,
    event_type: &EventType,
    tamper: Tamper,
    now: SystemTime,
) -> (Vec<(HeaderName, String)>, Vec<u8>) {
    tampered(&Signers::new(signing), event_type, tamper, now)
}

/// [`tampered_request`] with the run's signers.
fn tampered(
    signers: &Signers,
    event_type: &EventType,
    tamper: Tamper,
    now: SystemTime,
) -> (Vec<(HeaderName, String)>, Vec<u8>) {
    let payload = Payload::sample(event_type, now).expect("a known type");
    let mut body = serde_json::to_vec(&payload).expect("payloads serialize");
    let other = Payload::sample(event_type, now).expect("a known type");
    let other = serde_json::to_vec(&other).expect("payloads serialize");
    let iat = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());

    let tokens = signers.tampered_tokens(tamper, &body, &other, iat);
    if tamper == Tamper::BodyByte {
        // A digit of the event id: still valid JSON, another event.
        let at = find(&body, b"\"eventId\":\"") + 11;
        body[at] = if body[at] == b'0' { b'1' } else { b'0' };
    }
    (tokens, body)
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

/// `token` with one character of its signature changed.
fn flip_signature(token: String) -> String {
    let mut token = token.into_bytes();
    let last = token.len() - 2; // not the last char: it carries padding bits
    token[last] = if token[last] == b'A' { b'B' } else { b'A' };
    String::from_utf8(token).expect("ASCII")
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
