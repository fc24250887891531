//! What several targets share: the fixed keys and the "sign what the fuzzer wrote" trick,
//! and a request built from fuzzer bytes, served once on a no-op waker.
#![allow(dead_code)] // each target uses its part

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::{Full, StreamBody};
use tower::Service;
use tower_dt_signature::keys::DtKeys;
use tower_dt_signature::testing::{AsymmetricSigner, Signer};
use tower_dt_signature::{DtBody, DtClaims};

/// The HMAC secret of the targets (DT's test vectors use it).
pub const SECRET: &str = "test-secret";
/// The issuer and organization of DT's dev token (the asymmetric seeds carry its claims).
pub const ISSUER: &str = "https://identity.dev.disruptive-technologies.com/data-connector";
pub const ORG: &str = "test-org-id";
/// The clock of the asymmetric targets: the dev token's `iat`.
pub const NOW_ES: u64 = 1_730_382_284;
/// DT's HMAC header, the default of a signed HMAC token without a header of its own.
const HS256_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

pub fn at(secs: u64) -> impl Fn() -> SystemTime + Send + Sync + 'static {
    move || UNIX_EPOCH + Duration::from_secs(secs)
}

/// Three fixed P-256 keys (`fuzz/keys/`, test keys of the fuzz targets only): `fuzz-a` and
/// `fuzz-b` are in the key set, `fuzz-outsider` is not.
pub fn signers() -> &'static [AsymmetricSigner; 3] {
    static SIGNERS: OnceLock<[AsymmetricSigner; 3]> = OnceLock::new();
    SIGNERS.get_or_init(|| {
        let load = |pkcs8: &[u8], kid: &str| {
            AsymmetricSigner::from_pkcs8(pkcs8)
                .expect("a P-256 PKCS#8 key")
                .with_kid(kid)
                .with_issuer(ISSUER)
                .with_org_id(ORG)
        };
        [
            load(include_bytes!("../../keys/es256-a.pk8"), "fuzz-a"),
            load(include_bytes!("../../keys/es256-b.pk8"), "fuzz-b"),
            load(
                include_bytes!("../../keys/es256-outsider.pk8"),
                "fuzz-outsider",
            ),
        ]
    })
}

/// The pinned key set: `fuzz-a` and `fuzz-b`.
pub fn keys() -> DtKeys {
    static KEYS: OnceLock<DtKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let [a, b, _] = signers();
        DtKeys::from_jwks(ISSUER, &AsymmetricSigner::jwks_of(&[a, b])).expect("the fixed set")
    })
    .clone()
}

/// `header-json \t claims-json` (or the claims alone, under `default_header`).
fn parts<'a>(text: &'a str, default_header: &'a str) -> (&'a str, &'a str) {
    text.split_once('\t').unwrap_or((default_header, text))
}

/// An HMAC token over the fuzzer's header and claims, under [`SECRET`].
pub fn sign_hmac(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let (header, claims) = parts(&text, HS256_HEADER);
    Signer::new(SECRET).sign_parts(header.as_bytes(), claims.as_bytes())
}

/// An ES256 token over the fuzzer's header and claims, under `signer`'s key; the default
/// header is DT's with the signer's `kid`.
pub fn sign_es(signer: &AsymmetricSigner, text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let default_header = format!(r#"{{"alg":"ES256","kid":"{}","typ":"JWT"}}"#, signer.kid());
    let (header, claims) = parts(&text, &default_header);
    signer.sign_parts(header.as_bytes(), claims.as_bytes())
}

pub type FuzzBody =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// A header line's name and value, as bytes, unparsed.
pub type Line<'a> = (&'a [u8], &'a [u8]);

/// `name: value` lines, a blank line, the body: the header lines and the body.
pub fn split_request(data: &[u8]) -> (Vec<Line<'_>>, &[u8]) {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let lines = head
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            Some((&line[..colon], line[colon + 1..].trim_ascii()))
        })
        .collect();
    (lines, body)
}

/// A `POST /` with the `headers` that are valid and `body` in frames of `chunk` bytes.
pub fn request(
    headers: &[(&[u8], Vec<u8>)],
    body: &[u8],
    chunk: usize,
) -> Option<Request<FuzzBody>> {
    let mut request = Request::post("/");
    for (name, value) in headers {
        let name = http::HeaderName::from_bytes(name);
        let value = http::HeaderValue::from_bytes(value);
        if let (Ok(name), Ok(value)) = (name, value) {
            request = request.header(name, value);
        }
    }
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = body
        .chunks(chunk.max(1))
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    request
        .body(StreamBody::new(futures_util::stream::iter(frames)))
        .ok()
}

/// Poll `future` once: every body frame and the inner service are ready at once, so it
/// must be done without a wakeup.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match std::pin::pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("pending on a ready body and a ready service"),
    }
}

/// One mode byte, then `token \n body`.
pub fn mode_token_body(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&mode, rest) = data.split_first()?;
    Some(match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (mode, &rest[..i], &rest[i + 1..]),
        None => (mode, rest, &[][..]),
    })
}

/// What the inner service got, if it was called: the body and the verified claims.
pub type Forwarded = Arc<Mutex<Option<(Bytes, Option<DtClaims>)>>>;

/// The inner service: records what it got, answers 200 with an empty body.
#[allow(clippy::type_complexity)] // the bounds the layer needs
pub fn inner() -> (
    Forwarded,
    impl Service<
            Request<DtBody>,
            Response = Response<Full<Bytes>>,
            Error = Infallible,
            Future = std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>,
        > + Clone
        + Send
        + 'static,
) {
    let seen = Forwarded::default();
    let inner_seen = seen.clone();
    let service = tower::service_fn(move |request: Request<DtBody>| {
        let claims = request.extensions().get::<DtClaims>().cloned();
        *inner_seen.lock().unwrap() = Some((request.into_body().into_bytes(), claims));
        std::future::ready(Ok(Response::new(Full::new(Bytes::new()))))
    });
    (seen, service)
}

/// `request` through `service`, polled ready first, all without a wakeup.
pub fn serve<S>(service: &mut S, request: Request<FuzzBody>) -> S::Response
where
    S: Service<Request<FuzzBody>, Error = Infallible>,
{
    let Ok(()) = ready(std::future::poll_fn(|cx| service.poll_ready(cx)));
    let Ok(response) = ready(service.call(request));
    response
}
