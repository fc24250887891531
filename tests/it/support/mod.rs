//! What the integration tests share, each piece once: DT's real requests, tokens signed
//! through `Signer` (and a raw minter for hostile ones), the recording inner service,
//! bodies that count or break off, and log capture. The duplicate guard's helpers are in
//! [`dedup`]. Also compiled into the `logging` and `soak` binaries, which use a part of it.
#![allow(dead_code, unused_imports)]

mod recorder;

pub mod dedup;
#[cfg(feature = "redis")]
pub mod redis_server;

pub use recorder::{Recorder, Seen};

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tower::{Service, ServiceExt};

use tower_dt_signature::testing::{SignOptions, Signer};
use tower_dt_signature::{DtSignatureError, ErrorKind};

/// A real signed request from `tests/data/dt-vectors/` (copied from DT's own test suite).
pub struct Vector {
    pub secret: String,
    pub header_name: String,
    pub token: String,
    pub body: Bytes,
    pub verify_at: SystemTime,
}

impl Vector {
    pub fn load(name: &str) -> Self {
        let path = format!(
            "{}/tests/data/dt-vectors/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let (header_name, token) = json["headers"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("x-dt-signature"))
            .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
            .unwrap();
        Self {
            secret: json["secret"].as_str().unwrap().to_owned(),
            header_name,
            token,
            body: Bytes::from(json["body"].as_str().unwrap().to_owned()),
            verify_at: UNIX_EPOCH + Duration::from_secs(json["verify_at_unix"].as_u64().unwrap()),
        }
    }

    /// The SHA-256 one (both checksums).
    pub fn sha256() -> Self {
        Self::load("touch-2022-02-10-sha256-valid.json")
    }

    /// The legacy one (SHA-1 checksum only).
    pub fn sha1_only() -> Self {
        Self::load("touch-2022-01-12-sha1-only-with-metadata.json")
    }

    pub fn request(&self) -> Request<Full<Bytes>> {
        self.request_with(&self.token, self.body.clone())
    }

    pub fn request_with(&self, token: &str, body: Bytes) -> Request<Full<Bytes>> {
        Request::post("/")
            .header(&self.header_name, token)
            .header("content-type", "application/json")
            .header("content-length", body.len())
            .body(Full::new(body))
            .unwrap()
    }
}

pub const SECRET: &str = "test-secret";
pub const NOW: u64 = 1_700_000_000;
/// The `jti` of every token [`sign`] mints: DT's own, so that tokens are reproducible.
pub const JTI: &str = "c82gg99hga35jc2afkeg";

pub fn at(secs: u64) -> impl Fn() -> SystemTime + Send + Sync + Clone + 'static {
    move || UNIX_EPOCH + Duration::from_secs(secs)
}

/// DT's signing, issued at [`NOW`], with the id [`JTI`].
pub fn dt_options() -> SignOptions {
    SignOptions::new().iat(NOW).jti(JTI)
}

/// A token as DT signs it for `body`, issued at [`NOW`] (through `Signer`).
pub fn sign(body: &[u8], secret: impl AsRef<[u8]>) -> String {
    Signer::new(secret).sign_with(body, &dt_options())
}

/// `body` as DT posts it to `uri`, signed with [`SECRET`] at [`NOW`]: `X-Dt-Signature`,
/// `Content-Type` and `Content-Length` (through `Signer`).
pub fn signed_request<B: From<Bytes>>(uri: &str, body: impl Into<Bytes>) -> Request<B> {
    Signer::new(SECRET)
        .request_with(uri, body, &dt_options())
        .unwrap()
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.claims.signature`, HS256 with `secret`, with exactly these JSON texts: for the
/// hostile tokens `Signer` cannot make (other algorithms, odd headers, broken claims).
pub fn mint_raw(header: &str, claims: &str, secret: impl AsRef<[u8]>) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_ref()).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(mac.finalize().into_bytes()))
}

pub const DT_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// The `(header, claims)` JSON texts of a compact JWS.
pub fn token_parts(token: &str) -> (String, String) {
    let mut parts = token.split('.');
    let mut text = || String::from_utf8(URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap());
    (text().unwrap(), text().unwrap())
}

/// The claims `Signer` puts in a token for `body`, issued at `iat`: the start of a
/// hostile token that changes one of them.
pub fn dt_claims(body: &[u8], iat: u64) -> serde_json::Value {
    let token = Signer::new("any").sign_with(body, &SignOptions::new().iat(iat).jti(JTI));
    serde_json::from_str(&token_parts(&token).1).unwrap()
}

/// `request` through a clone of `service`, as a server calls it per connection.
pub async fn call<S, R>(service: &S, request: R) -> S::Response
where
    S: Service<R> + Clone,
    S::Error: std::fmt::Debug,
{
    send_owned(service.clone(), request).await
}

/// `request` through `service` itself: for a spawned task, which must own it.
pub async fn send_owned<S, R>(service: S, request: R) -> S::Response
where
    S: Service<R>,
    S::Error: std::fmt::Debug,
{
    service.oneshot(request).await.unwrap()
}

/// The resolver `resolve`, counting its lookups: the count and the counting resolver.
pub fn counting<F, Fut>(
    resolve: F,
) -> (
    Arc<std::sync::atomic::AtomicUsize>,
    impl Fn(&http::request::Parts) -> Fut + Clone + Send + Sync + 'static,
)
where
    F: Fn(&http::request::Parts) -> Fut + Clone + Send + Sync + 'static,
{
    let lookups = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = lookups.clone();
    let counted = move |parts: &http::request::Parts| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        resolve(parts)
    };
    (lookups, counted)
}

/// The status, the error kind attached to the response, and the body text.
pub async fn outcome<B>(response: Response<B>) -> (http::StatusCode, Option<ErrorKind>, String)
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let status = response.status();
    let kind = response
        .extensions()
        .get::<DtSignatureError>()
        .map(|error| error.kind());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, kind, String::from_utf8(body.to_vec()).unwrap())
}

/// A body that counts how often it is polled, to prove a refused request's body was never
/// read.
pub struct Counted<B> {
    pub inner: B,
    pub polls: Arc<std::sync::atomic::AtomicUsize>,
}

impl<B> Counted<B> {
    pub fn new(inner: B) -> (Self, Arc<std::sync::atomic::AtomicUsize>) {
        let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        (
            Self {
                inner,
                polls: polls.clone(),
            },
            polls,
        )
    }
}

impl<B: http_body::Body + Unpin> http_body::Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

type FrameResult = Result<http_body::Frame<Bytes>, std::io::Error>;

/// A body that yields `chunks` one frame each, with no size hint (like a chunked upload
/// without Content-Length), then `error` if given.
pub fn chunked(
    chunks: Vec<Bytes>,
    error: Option<std::io::Error>,
) -> http_body_util::StreamBody<futures_util::stream::Iter<std::vec::IntoIter<FrameResult>>> {
    let mut frames: Vec<_> = chunks
        .into_iter()
        .map(|c| Ok(http_body::Frame::data(c)))
        .collect();
    frames.extend(error.map(Err));
    http_body_util::StreamBody::new(futures_util::stream::iter(frames))
}

/// Assert that `log` shows none of `secrets`, none of `tokens` nor their signatures, and
/// neither digest (SHA-1, SHA-256) of `body`.
pub fn assert_nothing_secret(log: &str, secrets: &[&str], tokens: &[&str], body: &[u8]) {
    let mut needles: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
    for token in tokens {
        needles.push(token.to_string());
        needles.push(token.rsplit('.').next().unwrap().to_owned());
    }
    needles.push(hex::encode(Sha1::digest(body)));
    needles.push(hex::encode(Sha256::digest(body)));
    for needle in needles {
        assert!(!log.contains(&needle), "the log leaks {needle}: {log}");
    }
}

/// Run `f` with every tracing event (TRACE and up) written as text, and return that text.
/// The subscriber is this thread's only: see `tests/logging/main.rs` for why the tests
/// that read logs have a binary of their own.
pub fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let value = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    (value, text)
}
