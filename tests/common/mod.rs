//! Helpers shared by the integration tests: DT's real requests, a token minter and an
//! inner service that records what it receives.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use jsonwebtoken::{Algorithm, EncodingKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};

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

pub fn at(secs: u64) -> impl Fn() -> SystemTime + Send + Sync + Clone + 'static {
    move || UNIX_EPOCH + Duration::from_secs(secs)
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.claims.signature`, HS256 with `secret`, with exactly these JSON texts.
pub fn mint_raw(header: &str, claims: &str, secret: impl AsRef<[u8]>) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(
        input.as_bytes(),
        &EncodingKey::from_secret(secret.as_ref()),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{input}.{signature}")
}

pub const DT_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// The claims DT puts in a token for `body`, issued at `iat`.
pub fn dt_claims(body: &[u8], iat: u64) -> serde_json::Value {
    serde_json::json!({
        "checksum": hex::encode(Sha1::digest(body)),
        "checksum_sha256": hex::encode(Sha256::digest(body)),
        "exp": iat + 3600,
        "iat": iat,
        "jti": "c82gg99hga35jc2afkeg",
    })
}

/// A token as DT would sign it for `body`, issued at [`NOW`].
pub fn sign(body: &[u8], secret: impl AsRef<[u8]>) -> String {
    mint_raw(DT_HEADER, &dt_claims(body, NOW).to_string(), secret)
}

/// What the inner service saw of one request.
pub struct Seen {
    pub parts: Parts,
    pub body: Bytes,
}

/// An inner service that records each request and answers 200 "inner".
#[derive(Clone, Default)]
pub struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    pub fn calls(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    pub fn service<B>(
        &self,
    ) -> impl tower::Service<
        Request<B>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future = impl Send,
    > + Clone
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Debug,
    {
        let seen = self.seen.clone();
        tower::service_fn(move |request: Request<B>| {
            let seen = seen.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = body.collect().await.unwrap().to_bytes();
                seen.lock().unwrap().push(Seen { parts, body });
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"inner"))))
            }
        })
    }
}

/// The status, the error kind attached to the response, and the body text.
pub async fn outcome<B>(
    response: Response<B>,
) -> (
    http::StatusCode,
    Option<tower_dt_signature::ErrorKind>,
    String,
)
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let status = response.status();
    let kind = response
        .extensions()
        .get::<tower_dt_signature::DtSignatureError>()
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

/// Run `f` with every tracing event (TRACE and up) written as text, and return that text.
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
