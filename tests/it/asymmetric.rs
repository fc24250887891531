//! `DT-Asymmetric-Signature` through the public API: every cell of the policy table
//! (hmac / asymmetric / both / either x each token absent, valid, invalid before the body,
//! invalid at the body) through `DtSignatureLayer::from(Verifier::...)` and through a
//! gateway with one tenant per policy; and the test identity server of `testing`.
//!
//! The cells where the asymmetric token is *uncheckable* (no usable key set, 503) need a
//! discovered key set whose fetch fails: `the_uncheckable_cells_with_a_body_invalid_hmac_token`
//! (feature `jwks`) covers them with every HMAC state.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt};
use tower_dt_signature::consts::{DT_ASYMMETRIC_SIGNATURE, X_DT_SIGNATURE};
use tower_dt_signature::gateway::{StaticSecrets, TenantId};
use tower_dt_signature::keys::DtKeys;
use tower_dt_signature::testing::{
    AsymmetricSignOptions, AsymmetricSigner, Behavior, Endpoint, IdentityServer, Signer,
};
use tower_dt_signature::{
    verify::Policy, DtBody, DtClaims, DtSignatureError, DtSignatureLayer, ErrorKind, Scheme,
    Verifier,
};

use crate::support::call;

const SECRET: &str = "connector secret";
const ORG: &str = "c0rg1d0000000000000a";
const BODY: &[u8] = br#"{"event":{"eventId":"c82gg9catj3vmh4248og","targetName":"projects/p/devices/d","eventType":"touch","data":{"touch":{"updateTime":"2024-10-31T13:44:44.000000Z"}},"timestamp":"2024-10-31T13:44:44.000000Z"},"labels":{},"metadata":{}}"#;
const OTHER_BODY: &[u8] = br#"{"event":{"eventId":"c82gg9catj3vmh4248oh"}}"#;

// ---------------------------------------------------------------------------------------
// An inner service that records, and a body that counts its polls.

/// What the inner service saw of one request.
struct Seen {
    parts: Parts,
    body: Bytes,
}

/// An inner service that records each request and answers 200 "inner".
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    fn service<B>(
        &self,
    ) -> impl tower::Service<
        Request<B>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future = impl Send + 'static,
    > + Clone
           + Send
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

/// A body that counts how often it is polled: a refusal before the body must leave it 0.
struct Counted {
    inner: Full<Bytes>,
    polls: Arc<AtomicUsize>,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

// ---------------------------------------------------------------------------------------
// The policy table.

/// The state of one token in a request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tok {
    /// No header.
    A,
    /// Valid for the body.
    V,
    /// Invalid before the body (HMAC: another secret; ES256: another key under DT's kid).
    I,
    /// Valid but for another body: a checksum mismatch, found once the body is read.
    X,
}

/// What must happen to a request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    /// Forwarded, with the verified schemes.
    Accept(&'static [Scheme]),
    /// Refused with this kind, about the token of this scheme.
    Refuse(ErrorKind, Scheme),
    /// Refused with this kind (not a checksum mismatch) once the body was read.
    RefuseAtBody(ErrorKind, Scheme),
}

const H: Scheme = Scheme::Hmac;
const E: Scheme = Scheme::Asymmetric;
const HMAC_ONLY: Want = Want::Accept(&[Scheme::Hmac]);
const ES_ONLY: Want = Want::Accept(&[Scheme::Asymmetric]);
const BOTH: Want = Want::Accept(&[Scheme::Hmac, Scheme::Asymmetric]);
const fn refuse(kind: ErrorKind, scheme: Scheme) -> Want {
    Want::Refuse(kind, scheme)
}

/// Every cell: (policy, HMAC token, ES256 token, outcome), written out from the table in
/// `Policy`'s docs (a policy ignores a header it does not name; a 400 reports the first
/// refusal in the order HMAC, ES256; "valid" includes the checksum), not derived from the
/// code.
#[rustfmt::skip]
fn table() -> Vec<(Policy, Tok, Tok, Want)> {
    use ErrorKind::*;
    use Policy::{Asymmetric, Both, Either, Hmac};
    use Tok::*;
    let missing_h = refuse(MissingHeader, H);
    let missing_e = refuse(MissingAsymmetricHeader, E);
    let invalid_h = refuse(InvalidSignature, H);
    let invalid_e = refuse(InvalidSignature, E);
    let mismatch_h = refuse(ChecksumMismatch, H);
    let mismatch_e = refuse(ChecksumMismatch, E);
    vec![
        (Hmac, A, A, missing_h), (Hmac, A, V, missing_h), (Hmac, A, I, missing_h), (Hmac, A, X, missing_h),
        (Hmac, V, A, HMAC_ONLY), (Hmac, V, V, HMAC_ONLY), (Hmac, V, I, HMAC_ONLY), (Hmac, V, X, HMAC_ONLY),
        (Hmac, I, A, invalid_h), (Hmac, I, V, invalid_h), (Hmac, I, I, invalid_h), (Hmac, I, X, invalid_h),
        (Hmac, X, A, mismatch_h), (Hmac, X, V, mismatch_h), (Hmac, X, I, mismatch_h), (Hmac, X, X, mismatch_h),

        (Asymmetric, A, A, missing_e), (Asymmetric, V, A, missing_e), (Asymmetric, I, A, missing_e), (Asymmetric, X, A, missing_e),
        (Asymmetric, A, V, ES_ONLY), (Asymmetric, V, V, ES_ONLY), (Asymmetric, I, V, ES_ONLY), (Asymmetric, X, V, ES_ONLY),
        (Asymmetric, A, I, invalid_e), (Asymmetric, V, I, invalid_e), (Asymmetric, I, I, invalid_e), (Asymmetric, X, I, invalid_e),
        (Asymmetric, A, X, mismatch_e), (Asymmetric, V, X, mismatch_e), (Asymmetric, I, X, mismatch_e), (Asymmetric, X, X, mismatch_e),

        (Both, V, V, BOTH),
        (Both, V, A, missing_e), (Both, V, I, invalid_e), (Both, V, X, mismatch_e),
        (Both, A, A, missing_h), (Both, A, V, missing_h), (Both, A, I, missing_h), (Both, A, X, missing_h),
        (Both, I, A, invalid_h), (Both, I, V, invalid_h), (Both, I, I, invalid_h), (Both, I, X, invalid_h),
        // An HMAC token valid until its checksum: the ES256 token decides first, unless
        // it too is valid until the body.
        (Both, X, A, missing_e), (Both, X, I, invalid_e), (Both, X, V, mismatch_h), (Both, X, X, mismatch_h),

        (Either, V, V, BOTH), (Either, V, A, HMAC_ONLY), (Either, A, V, ES_ONLY),
        (Either, A, A, missing_h),
        (Either, V, I, invalid_e), (Either, A, I, invalid_e),
        (Either, I, A, invalid_h), (Either, I, V, invalid_h), (Either, I, I, invalid_h), (Either, I, X, invalid_h),
        (Either, V, X, mismatch_e), (Either, A, X, mismatch_e),
        (Either, X, A, mismatch_h), (Either, X, V, mismatch_h), (Either, X, X, mismatch_h),
        (Either, X, I, invalid_e),
    ]
}

/// DT's key and a key that is not DT's.
struct Keys {
    dt: AsymmetricSigner,
    attacker: AsymmetricSigner,
}

impl Keys {
    fn new() -> Self {
        let dt = AsymmetricSigner::generate()
            .with_issuer("https://identity.example/data-connector")
            .with_org_id(ORG);
        let attacker = AsymmetricSigner::generate()
            .with_issuer(dt.issuer())
            .with_org_id(ORG)
            .with_kid(dt.kid());
        Self { dt, attacker }
    }

    fn verifier(&self, policy: Policy) -> Verifier {
        verifier_with(
            policy,
            DtKeys::from_jwks(self.dt.issuer(), &self.dt.jwks()).unwrap(),
        )
    }

    /// A request to `uri` with BODY and the two tokens in these states, and its poll
    /// counter.
    fn request(&self, uri: &str, hmac: Tok, es: Tok) -> (Request<Counted>, Arc<AtomicUsize>) {
        let mut builder = Request::post(uri)
            .header("content-type", "application/json")
            .header("content-length", BODY.len());
        let hmac_token = match hmac {
            Tok::A => None,
            Tok::V => Some(Signer::new(SECRET).sign(BODY)),
            Tok::I => Some(Signer::new("another secret").sign(BODY)),
            Tok::X => Some(Signer::new(SECRET).sign(OTHER_BODY)),
        };
        let es_token = match es {
            Tok::A => None,
            Tok::V => Some(self.dt.sign(BODY)),
            Tok::I => Some(self.attacker.sign(BODY)),
            Tok::X => Some(self.dt.sign(OTHER_BODY)),
        };
        if let Some(token) = hmac_token {
            builder = builder.header(X_DT_SIGNATURE, token);
        }
        if let Some(token) = es_token {
            builder = builder.header(DT_ASYMMETRIC_SIGNATURE, token);
        }
        let polls = Arc::new(AtomicUsize::new(0));
        let body = Counted {
            inner: Full::new(Bytes::from_static(BODY)),
            polls: polls.clone(),
        };
        (builder.body(body).unwrap(), polls)
    }
}

/// A verifier of `policy` with [`SECRET`] and `keys`.
fn verifier_with(policy: Policy, keys: DtKeys) -> Verifier {
    match policy {
        Policy::Hmac => Verifier::new(SECRET),
        Policy::Asymmetric => Verifier::asymmetric(keys, ORG),
        Policy::Both => Verifier::both(SECRET, keys, ORG),
        Policy::Either => Verifier::either(SECRET, keys, ORG),
        _ => unreachable!("the four policies"),
    }
}

/// The tenant of each policy in the gateway.
fn tenant_of(policy: Policy) -> &'static str {
    match policy {
        Policy::Hmac => "hmac",
        Policy::Asymmetric => "asymmetric",
        Policy::Both => "both",
        Policy::Either => "either",
        _ => unreachable!("the four policies"),
    }
}

/// The recording inner service, boxed so that `run` can name it.
type Inner = tower::util::BoxCloneService<Request<DtBody>, Response<Full<Bytes>>, Infallible>;

/// One request through `layer`: check the answer, the inner service and the body polls
/// against `want`. `gateway`: every 400 must read `invalid token signature`.
async fn run<L>(
    name: &str,
    layer: &L,
    request: Request<Counted>,
    polls: Arc<AtomicUsize>,
    want: Want,
    gateway: bool,
) where
    L: Layer<Inner>,
    L::Service:
        tower::Service<Request<Counted>, Response = Response<Full<Bytes>>, Error = Infallible>,
{
    let recorder = Recorder::default();
    let inner = tower::util::BoxCloneService::new(recorder.service());
    let response = layer.layer(inner).oneshot(request).await.unwrap();
    let status = response.status();
    let error = response.extensions().get::<DtSignatureError>().cloned();
    let text = response.into_body().collect().await.unwrap().to_bytes();
    let seen = recorder.take();
    let polls = polls.load(Ordering::SeqCst);
    match want {
        Want::Accept(schemes) => {
            assert_eq!(status, StatusCode::OK, "{name}: {error:?}");
            assert!(error.is_none(), "{name}");
            assert_eq!(
                seen.len(),
                1,
                "{name}: the inner service was not called once"
            );
            let Seen { parts, body } = &seen[0];
            assert_eq!(&body[..], BODY, "{name}: the inner service got other bytes");
            assert_eq!(
                parts.headers["content-length"],
                BODY.len().to_string().as_str()
            );
            let claims = parts.extensions.get::<DtClaims>().expect("claims");
            assert_eq!(claims.schemes(), schemes, "{name}");
            assert!(claims.sha256_verified(), "{name}");
            if schemes.contains(&Scheme::Asymmetric) {
                assert_eq!(claims.org_id(), Some(ORG), "{name}");
                assert_eq!(
                    claims.issuer(),
                    Some("https://identity.example/data-connector")
                );
                assert_eq!(
                    claims.exp(),
                    claims.asymmetric_iat().unwrap() + 300,
                    "{name}: the earliest exp"
                );
            } else {
                assert_eq!((claims.org_id(), claims.kid()), (None, None), "{name}");
                assert_eq!(claims.exp(), claims.hmac_iat().unwrap() + 3600, "{name}");
            }
            assert_eq!(
                claims.secret_index().is_some(),
                schemes.contains(&Scheme::Hmac)
            );
            if gateway {
                assert!(parts.extensions.get::<TenantId>().is_some(), "{name}");
            }
        }
        Want::Refuse(kind, scheme) | Want::RefuseAtBody(kind, scheme) => {
            let error = error.unwrap_or_else(|| panic!("{name}: no error attached"));
            assert_eq!(
                (error.kind(), error.scheme()),
                (kind, Some(scheme)),
                "{name}"
            );
            assert_eq!(status, kind.status(), "{name}");
            assert!(seen.is_empty(), "{name}: the inner service was called");
            // A gateway answers each 400 with one text; a 503 keeps its own.
            let public = if gateway && status == StatusCode::BAD_REQUEST {
                "invalid token signature"
            } else {
                kind.public_str()
            };
            assert_eq!(text, public, "{name}");
            if kind == ErrorKind::ChecksumMismatch || matches!(want, Want::RefuseAtBody(..)) {
                assert!(
                    polls > 0,
                    "{name}: refused at the body, which was never read"
                );
            } else {
                assert_eq!(
                    polls, 0,
                    "{name}: the body was read for a refusal before it"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_cell_of_the_policy_table_through_the_layer() {
    let keys = Keys::new();
    let table = table();
    assert_eq!(table.len(), 64, "4 policies x 4 x 4 token states");
    for (policy, hmac, es, want) in table {
        let layer = DtSignatureLayer::from(keys.verifier(policy));
        let (request, polls) = keys.request("/", hmac, es);
        let name = format!("{policy} hmac={hmac:?} es={es:?}");
        run(&name, &layer, request, polls, want, false).await;
    }
}

#[tokio::test]
async fn every_cell_of_the_policy_table_through_a_gateway() {
    let keys = Keys::new();
    let secrets = [
        Policy::Asymmetric,
        Policy::Hmac,
        Policy::Both,
        Policy::Either,
    ]
    .into_iter()
    .fold(StaticSecrets::by_path_segment(1), |secrets, policy| {
        secrets.tenant(tenant_of(policy), keys.verifier(policy))
    });
    let layer = DtSignatureLayer::gateway(secrets);
    for (policy, hmac, es, want) in table() {
        let (request, polls) = keys.request(&format!("/dt/{}", tenant_of(policy)), hmac, es);
        let name = format!("gateway {policy} hmac={hmac:?} es={es:?}");
        // No signature header at all is refused before the resolver, for every tenant and
        // policy alike: the first refusal in the order HMAC, then ES256.
        let want = match (hmac, es) {
            (Tok::A, Tok::A) => Want::Refuse(ErrorKind::MissingHeader, Scheme::Hmac),
            _ => want,
        };
        run(&name, &layer, request, polls, want, true).await;
    }

    // An unknown tenant: the same public text, refused before the body.
    for (hmac, es) in [(Tok::V, Tok::V), (Tok::A, Tok::V), (Tok::A, Tok::A)] {
        let recorder = Recorder::default();
        let (request, polls) = keys.request("/dt/nobody", hmac, es);
        let response = call(&layer.layer(recorder.service()), request).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let error = response.extensions().get::<DtSignatureError>().unwrap();
        let expected = match (hmac, es) {
            (Tok::A, Tok::A) => ErrorKind::MissingHeader,
            _ => ErrorKind::UnknownTenant,
        };
        assert_eq!(error.kind(), expected);
        let text = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(text, "invalid token signature");
        assert_eq!(polls.load(Ordering::SeqCst), 0);
        assert!(recorder.take().is_empty());
    }
}

/// The other refusals of the asymmetric token through the layer: each a 400 before the
/// body, with its kind in the extensions and the inner service untouched.
#[tokio::test]
async fn asymmetric_refusals_before_the_body() {
    let keys = Keys::new();
    let dt = &keys.dt;
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let rows: Vec<(&str, String, ErrorKind)> = vec![
        (
            "another organization",
            dt.sign_with(BODY, &AsymmetricSignOptions::new().org_id("someone else")),
            ErrorKind::WrongOrganization,
        ),
        (
            "another issuer",
            dt.sign_with(
                BODY,
                &AsymmetricSignOptions::new()
                    .issuer("https://identity.disruptive-technologies.com/data-connector"),
            ),
            ErrorKind::WrongIssuer,
        ),
        (
            "unknown kid",
            dt.sign_with(
                BODY,
                &AsymmetricSignOptions::new().kid("cp65gdon1e4bhb5icbmg"),
            ),
            ErrorKind::UnknownKey,
        ),
        (
            "expired",
            dt.sign_with(BODY, &AsymmetricSignOptions::new().iat(now() - 400)),
            ErrorKind::Expired,
        ),
        (
            "HS256 keyed with the public key",
            Signer::new(dt.public_key()).sign_parts(
                format!(r#"{{"alg":"HS256","kid":"{}","typ":"JWT"}}"#, dt.kid()).as_bytes(),
                format!(
                    r#"{{"exp":{},"iss":"{}","sub":"{ORG}"}}"#,
                    now() + 300,
                    dt.issuer()
                )
                .as_bytes(),
            ),
            ErrorKind::UnsupportedAlgorithm,
        ),
    ];
    let layer = DtSignatureLayer::from(keys.verifier(Policy::Asymmetric));
    for (name, token, kind) in rows {
        let recorder = Recorder::default();
        let polls = Arc::new(AtomicUsize::new(0));
        let request = Request::post("/")
            .header(DT_ASYMMETRIC_SIGNATURE, token)
            .header("content-length", BODY.len())
            .body(Counted {
                inner: Full::new(Bytes::from_static(BODY)),
                polls: polls.clone(),
            })
            .unwrap();
        let response = call(&layer.layer(recorder.service()), request).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{name}");
        let error = response.extensions().get::<DtSignatureError>().unwrap();
        assert_eq!(error.kind(), kind, "{name}");
        assert_eq!(polls.load(Ordering::SeqCst), 0, "{name}");
        assert!(recorder.take().is_empty(), "{name}");
    }
}

type Schemes = &'static [Scheme];

/// The signer's request helpers make requests each policy accepts.
#[tokio::test]
async fn signer_requests_pass_their_policies() {
    let keys = Keys::new();
    let hmac = Signer::new(SECRET);
    let cases: Vec<(Policy, Request<Full<Bytes>>, Schemes)> = vec![
        (
            Policy::Asymmetric,
            keys.dt.request("/", BODY).unwrap(),
            &[Scheme::Asymmetric],
        ),
        (
            Policy::Both,
            keys.dt.request_with_hmac(&hmac, "/", BODY).unwrap(),
            &[Scheme::Hmac, Scheme::Asymmetric],
        ),
        (
            Policy::Either,
            keys.dt.request_with_hmac(&hmac, "/", BODY).unwrap(),
            &[Scheme::Hmac, Scheme::Asymmetric],
        ),
        (
            Policy::Either,
            keys.dt.request("/", BODY).unwrap(),
            &[Scheme::Asymmetric],
        ),
    ];
    for (policy, request, schemes) in cases {
        let recorder = Recorder::default();
        let layer = DtSignatureLayer::from(keys.verifier(policy));
        let response = call(&layer.layer(recorder.service()), request).await;
        assert_eq!(response.status(), StatusCode::OK, "{policy}");
        let seen = recorder.take();
        assert_eq!(&seen[0].body[..], BODY);
        let claims = seen[0].parts.extensions.get::<DtClaims>().unwrap();
        assert_eq!(claims.schemes(), schemes, "{policy}");
        assert_eq!(claims.kid(), Some(keys.dt.kid()));
    }
}

#[test]
fn signer_keys_survive_a_round_trip_through_pkcs8() {
    let dir = std::env::temp_dir().join(format!("dt-signer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("key.p8");
    let _ = std::fs::remove_file(&path);
    let first = AsymmetricSigner::load_or_generate(&path).unwrap();
    let second = AsymmetricSigner::load_or_generate(&path).unwrap();
    assert_eq!(first.kid(), second.kid(), "the kid is stable across runs");
    assert_eq!(first.public_key(), second.public_key());
    assert_eq!(first.kid().len(), 20);
    assert!(first
        .kid()
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b)));
    let copy = AsymmetricSigner::from_pkcs8(first.to_pkcs8()).unwrap();
    assert_eq!(copy.jwk(), first.jwk());
    // A token of one verifies under the other's key set.
    let token = second.sign(BODY);
    let mut headers = http::HeaderMap::new();
    headers.insert(DT_ASYMMETRIC_SIGNATURE, token.parse().unwrap());
    let claims = Verifier::asymmetric(first.dt_keys(), first.org_id())
        .verify(&headers, BODY)
        .unwrap();
    assert_eq!(claims.kid(), Some(first.kid()));
    assert!(AsymmetricSigner::from_pkcs8(b"not a key").is_err());
    assert!(!format!("{first:?}").contains(&format!("{:?}", first.to_pkcs8())));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------
// The identity server.

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Empty<Bytes>,
>;

/// An identity server with one key of [`ORG`], a client, and the server's JWK Set URL.
async fn serving_a_key() -> (IdentityServer, Client, String) {
    let server = IdentityServer::start().await;
    server.new_signer(ORG);
    let url = server.jwks_url().to_owned();
    (server, client(), url)
}

fn client() -> Client {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// GET `url`: status, Cache-Control, Content-Length, body.
async fn get(client: &Client, url: &str) -> (StatusCode, Option<String>, Option<String>, Bytes) {
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
    };
    let (cache, length) = (header("cache-control"), header("content-length"));
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, cache, length, body)
}

#[tokio::test]
async fn identity_server_serves_discovery_and_keys() {
    let server = IdentityServer::start().await;
    let client = client();
    let signer = server.new_signer(ORG);

    let (status, _, _, body) = get(&client, &server.discovery_url()).await;
    assert_eq!(status, StatusCode::OK);
    let discovery: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(discovery["issuer"], server.issuer());
    assert_eq!(discovery["jwks_uri"], server.jwks_url());
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256"])
    );
    assert_eq!(
        server.discovery_url(),
        format!("{}/.well-known/openid-configuration", server.issuer())
    );

    let (status, cache, _, body) = get(&client, server.jwks_url()).await;
    assert_eq!((status, cache), (StatusCode::OK, None));
    let keys = DtKeys::from_jwks(server.issuer(), std::str::from_utf8(&body).unwrap()).unwrap();
    assert_eq!(keys.kids(), [signer.kid()]);
    // A token of the server's signer verifies under the key set it served.
    let mut headers = http::HeaderMap::new();
    headers.insert(DT_ASYMMETRIC_SIGNATURE, signer.sign(BODY).parse().unwrap());
    let claims = Verifier::asymmetric(keys, ORG)
        .verify(&headers, BODY)
        .unwrap();
    assert_eq!(claims.issuer(), Some(server.issuer()));

    server.set_max_age(Some(30));
    let (_, cache, _, _) = get(&client, server.jwks_url()).await;
    assert_eq!(cache.as_deref(), Some("max-age=30"));
    server.set_cache_control(Endpoint::Discovery, Some("no-store"));
    let (_, cache, _, _) = get(&client, &server.discovery_url()).await;
    assert_eq!(cache.as_deref(), Some("no-store"));

    assert_eq!(server.fetch_count(), 2);
    assert_eq!(server.discovery_count(), 2);
    let (status, _, _, _) = get(&client, &server.url("/elsewhere")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(server.request_count("/elsewhere"), 1);
    server.reset_counts();
    assert_eq!((server.fetch_count(), server.discovery_count()), (0, 0));
}

#[tokio::test]
async fn identity_server_rotates_keys() {
    let server = IdentityServer::start().await;
    let client = client();
    let jwks_kids = |body: Bytes| -> Vec<String> {
        let set: serde_json::Value = serde_json::from_slice(&body).unwrap();
        set["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let old = server.new_signer(ORG);
    let new = AsymmetricSigner::generate().with_issuer(server.issuer());
    server.add_signer(&new);
    assert_eq!(server.kids(), [old.kid(), new.kid()]);
    server.add_signer(&new);
    assert_eq!(server.kids().len(), 2, "adding a kid again replaces it");
    assert!(server.remove_key(old.kid()));
    assert!(!server.remove_key(old.kid()));
    assert_eq!(
        jwks_kids(get(&client, server.jwks_url()).await.3),
        [new.kid()]
    );
    server.set_signers(&[&old]);
    assert_eq!(
        jwks_kids(get(&client, server.jwks_url()).await.3),
        [old.kid()]
    );
    server.add_jwk(serde_json::json!({"kty": "RSA", "kid": old.kid(), "n": "AQAB", "e": "AQAB"}));
    assert_eq!(server.kids(), [old.kid(), old.kid()]);
    assert!(
        DtKeys::from_jwks(server.issuer(), &server.jwks()).is_err(),
        "a duplicate kid refuses the set"
    );
    server.clear_keys();
    assert_eq!(server.jwks(), r#"{"keys":[]}"#);
}

#[tokio::test]
async fn identity_server_fails_on_demand() {
    let (server, client, url) = serving_a_key().await;

    server.set_behavior(
        Endpoint::Jwks,
        Behavior::Status(StatusCode::INTERNAL_SERVER_ERROR),
    );
    assert_eq!(
        get(&client, &url).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    // The other endpoint is unaffected.
    assert_eq!(
        get(&client, &server.discovery_url()).await.0,
        StatusCode::OK
    );

    server.set_behavior(Endpoint::Jwks, Behavior::Garbage);
    let (status, _, _, body) = get(&client, &url).await;
    assert_eq!(status, StatusCode::OK);
    assert!(serde_json::from_slice::<serde_json::Value>(&body).is_err());

    let limit = 64 * 1024;
    server.set_behavior(Endpoint::Jwks, Behavior::Oversized(limit + 1));
    let (status, _, length, body) = get(&client, &url).await;
    assert_eq!(
        (status, length),
        (StatusCode::OK, Some((limit + 1).to_string()))
    );
    assert_eq!(body.len(), limit + 1);
    assert!(DtKeys::from_jwks(server.issuer(), std::str::from_utf8(&body).unwrap()).is_ok());

    server.set_behavior(Endpoint::Jwks, Behavior::OversizedChunked(limit + 1));
    let (status, _, length, body) = get(&client, &url).await;
    assert_eq!(
        (status, length, body.len()),
        (StatusCode::OK, None, limit + 1)
    );

    server.set_behavior(Endpoint::Jwks, Behavior::Redirect(server.url("/elsewhere")));
    let response = client.get(url.parse().unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        response.headers()["location"],
        server.url("/elsewhere").as_str()
    );

    let mut document = server.discovery_document();
    document["issuer"] = format!("{}/", server.issuer()).into();
    server.set_behavior(
        Endpoint::Discovery,
        Behavior::Body(document.to_string().into()),
    );
    let (_, _, _, body) = get(&client, &server.discovery_url()).await;
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        document
    );

    // A stall: no answer (the client gives up); a delay and a slow body: an answer later.
    // Paused time would not help here (real sockets), so the waits are short.
    server.set_behavior(Endpoint::Jwks, Behavior::Stall);
    let stalled = tokio::time::timeout(Duration::from_millis(200), get(&client, &url)).await;
    assert!(stalled.is_err(), "a stalled endpoint answered");
    server.set_behavior(Endpoint::Jwks, Behavior::Delay(Duration::from_millis(50)));
    assert_eq!(get(&client, &url).await.0, StatusCode::OK);
    server.set_behavior(
        Endpoint::Jwks,
        Behavior::SlowBody(Duration::from_millis(50)),
    );
    let (status, _, length, body) = get(&client, &url).await;
    assert_eq!((status, length), (StatusCode::OK, None));
    assert!(DtKeys::from_jwks(server.issuer(), std::str::from_utf8(&body).unwrap()).is_ok());

    server.set_behavior(Endpoint::Jwks, Behavior::Normal);
    assert_eq!(get(&client, &url).await.0, StatusCode::OK);
    // Every request was counted, the stalled one included.
    assert_eq!(server.fetch_count(), 9);
}

#[tokio::test]
async fn identity_server_goes_down_and_comes_back_on_the_same_port() {
    let (server, client, url) = serving_a_key().await;
    // A pooled keep-alive connection, and a request stalled on another one.
    assert_eq!(get(&client, &url).await.0, StatusCode::OK);
    server.set_behavior(Endpoint::Jwks, Behavior::Stall);
    let stalled = tokio::spawn({
        let client = client.clone();
        let url = url.clone();
        async move { client.get(url.parse().unwrap()).await.map(|r| r.status()) }
    });
    server.wait_for_fetches(2).await;

    server.go_down().await;
    assert!(!server.is_up());
    // The stalled request fails: its connection was closed.
    assert!(stalled.await.unwrap().is_err());
    // New connections are refused.
    assert!(tokio::net::TcpStream::connect(server.addr()).await.is_err());
    assert!(client.get(url.parse().unwrap()).await.is_err());

    server.set_behavior(Endpoint::Jwks, Behavior::Normal);
    server.come_up().await.unwrap();
    assert!(server.is_up());
    assert_eq!(get(&client, &url).await.0, StatusCode::OK);
    assert!(url.starts_with(&format!("http://{}", server.addr())));

    // Dropped: the port is free and nothing answers.
    let addr = server.addr();
    server.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn identity_server_counts_for_waiters() {
    let server = IdentityServer::start().await;
    let client = client();
    let waiter = tokio::spawn({
        let url = server.jwks_url().to_owned();
        let client = client.clone();
        async move {
            for _ in 0..3 {
                let _ = client.get(url.parse().unwrap()).await;
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), server.wait_for_fetches(3))
        .await
        .expect("three fetches");
    waiter.await.unwrap();
    assert_eq!(server.fetch_count(), 3);
}

/// A token that names key URLs (`jku`, `x5u`) and embeds a key (`jwk`): the URLs are never
/// fetched and the embedded key never used, even when the URL serves the attacker's key.
#[tokio::test]
async fn key_urls_in_a_token_are_never_fetched() {
    let server = IdentityServer::start().await;
    let attacker = server.new_signer(ORG);
    let keys = Keys::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "checksum_sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(BODY)),
        "exp": now + 300,
        "iat": now,
        "iss": keys.dt.issuer(),
        "sub": ORG,
    })
    .to_string();
    let header = |kid: &str| {
        serde_json::json!({
            "alg": "ES256",
            "kid": kid,
            "typ": "JWT",
            "jku": server.jwks_url(),
            "x5u": server.url("/cert.pem"),
            "jwk": attacker.jwk(),
        })
        .to_string()
    };
    let layer = DtSignatureLayer::from(keys.verifier(Policy::Asymmetric));
    let rows = [
        (
            attacker.kid().to_owned(),
            &attacker,
            Some(ErrorKind::UnknownKey),
        ),
        (
            keys.dt.kid().to_owned(),
            &attacker,
            Some(ErrorKind::InvalidSignature),
        ),
        // DT's own token with the URLs: accepted, the URLs ignored.
        (keys.dt.kid().to_owned(), &keys.dt, None),
    ];
    for (kid, signer, want) in rows {
        let token = signer.sign_parts(header(&kid).as_bytes(), claims.as_bytes());
        let recorder = Recorder::default();
        let request = Request::post("/")
            .header(DT_ASYMMETRIC_SIGNATURE, token)
            .body(Full::new(Bytes::from_static(BODY)))
            .unwrap();
        let response = call(&layer.layer(recorder.service()), request).await;
        let got = response
            .extensions()
            .get::<DtSignatureError>()
            .map(DtSignatureError::kind);
        assert_eq!(got, want, "kid {kid}");
        assert_eq!(recorder.take().len(), usize::from(want.is_none()));
    }
    assert_eq!(server.fetch_count(), 0);
    assert_eq!(server.request_count("/cert.pem"), 0);
    assert_eq!(server.discovery_count(), 0);
}

/// DT's real dev token through the layer with a pinned set that lacks its kid: a 400
/// `unknown signing key`, no panic, nothing fetched, the inner service untouched.
#[tokio::test]
async fn dt_dev_token_is_an_unknown_key_through_the_layer() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/dt-vectors/asymmetric-dev-2024-10-31.json"
    );
    let vector: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let issuer = vector["issuer"].as_str().unwrap();
    let org = vector["org_id"].as_str().unwrap();
    let body = vector["body"].as_str().unwrap().to_owned();
    let ours = AsymmetricSigner::generate().with_issuer(issuer);
    let keys = DtKeys::from_jwks(issuer, &ours.jwks()).unwrap();
    let iat = vector["claims"]["iat"].as_u64().unwrap();
    for verifier in [
        Verifier::asymmetric(keys.clone(), org),
        Verifier::either(vector["secret"].as_str().unwrap(), keys.clone(), org),
    ] {
        let policy = verifier.policy();
        let layer = DtSignatureLayer::from(
            verifier.clock(move || std::time::UNIX_EPOCH + Duration::from_secs(iat)),
        );
        let mut request = Request::post("/");
        for (name, value) in vector["headers"].as_object().unwrap() {
            request = request.header(name.as_str(), value.as_str().unwrap());
        }
        let request = request.body(Full::new(Bytes::from(body.clone())));
        let recorder = Recorder::default();
        let response = call(&layer.layer(recorder.service()), request.unwrap()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{policy}");
        let error = response.extensions().get::<DtSignatureError>().unwrap();
        // Under `either`, the HMAC token (expired in 2022) is invalid: it is reported first.
        let want = match policy {
            Policy::Either => (ErrorKind::Expired, Some(Scheme::Hmac)),
            _ => (ErrorKind::UnknownKey, Some(Scheme::Asymmetric)),
        };
        assert_eq!((error.kind(), error.scheme()), want, "{policy}");
        assert!(recorder.take().is_empty());
    }
}

// ---------------------------------------------------------------------------------------
// Issue 17, §2: the policy table with uncheckable keys, the entry points, `crit`.

/// The cells where the asymmetric token is uncheckable (keys discovered from a server
/// that is down), with every HMAC state, a body-invalid token (`X`) included: a 400 beats
/// a 503, and "valid" includes the body. Before: `both X/U` answered 503 without reading
/// the body, where `either X/U` answered 400.
#[cfg(feature = "jwks")]
#[tokio::test]
async fn the_uncheckable_cells_with_a_body_invalid_hmac_token() {
    use ErrorKind::{ChecksumMismatch, InvalidSignature, KeysUnavailable, MissingHeader};
    use Policy::{Asymmetric, Both, Either, Hmac};
    use Tok::{A, I, V, X};

    let server = IdentityServer::start().await;
    server.go_down().await;
    let discovered = DtKeys::discover(server.discovery_url()).unwrap();
    let keys = Keys::new();
    let unavailable = refuse(KeysUnavailable, E);
    #[rustfmt::skip]
    let cells = [
        (Hmac, A, refuse(MissingHeader, H)), (Hmac, V, HMAC_ONLY),
        (Hmac, I, refuse(InvalidSignature, H)), (Hmac, X, refuse(ChecksumMismatch, H)),
        (Asymmetric, A, unavailable), (Asymmetric, V, unavailable),
        (Asymmetric, I, unavailable), (Asymmetric, X, unavailable),
        // The HMAC token valid until the body: the body decides between 400 and 503.
        (Both, V, Want::RefuseAtBody(KeysUnavailable, E)), (Both, X, refuse(ChecksumMismatch, H)),
        (Both, A, refuse(MissingHeader, H)), (Both, I, refuse(InvalidSignature, H)),
        (Either, V, HMAC_ONLY), (Either, X, refuse(ChecksumMismatch, H)),
        (Either, A, unavailable), (Either, I, refuse(InvalidSignature, H)),
    ];
    // The same cells through a gateway with a tenant of each policy on those keys.
    let gateway = DtSignatureLayer::gateway([Hmac, Asymmetric, Both, Either].into_iter().fold(
        StaticSecrets::by_path_segment(1),
        |secrets, policy| {
            secrets.tenant(tenant_of(policy), verifier_with(policy, discovered.clone()))
        },
    ));
    for (policy, hmac, want) in cells {
        let layer = DtSignatureLayer::from(verifier_with(policy, discovered.clone()));
        // A token of DT's key: uncheckable, since no key set could be had.
        let (request, polls) = keys.request("/", hmac, Tok::V);
        let name = format!("{policy} hmac={hmac:?} es=U");
        run(&name, &layer, request, polls, want, false).await;
        let uri = format!("/dt/{}", tenant_of(policy));
        let (request, polls) = keys.request(&uri, hmac, Tok::V);
        run(
            &format!("gateway {name}"),
            &gateway,
            request,
            polls,
            want,
            true,
        )
        .await;
    }

    // Without the layer: `verify` decides the same, `begin` leaves the 503 to the body.
    let verifier = verifier_with(Both, discovered);
    let (request, _) = keys.request("/", X, Tok::V);
    let error = verifier.verify(request.headers(), BODY).unwrap_err();
    assert_eq!((error.kind(), error.scheme()), (ChecksumMismatch, Some(H)));
    let (request, _) = keys.request("/", V, Tok::V);
    let error = verifier.verify(request.headers(), BODY).unwrap_err();
    assert_eq!((error.kind(), error.scheme()), (KeysUnavailable, Some(E)));
}

/// Every entry point applies the policy: `verify_token` reads the token of an `hmac` or
/// `asymmetric` verifier's one header, and refuses for `both` and `either`, which read two;
/// an asymmetric verifier takes no secret. Before: every `verify_token` checked an HMAC
/// token, so `both` accepted a lone HMAC token, and `asymmetric(..).add_secret(..)` one too.
#[test]
fn every_entry_point_applies_the_policy() {
    use tower_dt_signature::ConfigError;

    let keys = Keys::new();
    let hmac_token = Signer::new(SECRET).sign(BODY);
    let es_token = keys.dt.sign(BODY);
    let outcome = |verifier: &Verifier, token: &str| {
        verifier
            .verify_token(token, BODY)
            .map(|claims| claims.schemes().to_vec())
            .map_err(|error| (error.kind(), error.scheme()))
    };

    let hmac = keys.verifier(Policy::Hmac);
    assert_eq!(outcome(&hmac, &hmac_token), Ok(vec![H]));
    assert_eq!(
        outcome(&hmac, &es_token),
        Err((ErrorKind::UnsupportedAlgorithm, Some(H)))
    );

    let asymmetric = keys.verifier(Policy::Asymmetric);
    assert_eq!(outcome(&asymmetric, &es_token), Ok(vec![E]));
    assert_eq!(
        outcome(&asymmetric, &hmac_token),
        Err((ErrorKind::UnsupportedAlgorithm, Some(E)))
    );
    // The header rules apply to the token as to the header's value.
    assert_eq!(
        outcome(&asymmetric, "é"),
        Err((ErrorKind::InvalidAsymmetricHeader, Some(E)))
    );
    let mut tampered = BODY.to_vec();
    tampered[3] ^= 1;
    let error = asymmetric.verify_token(&es_token, &tampered).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ChecksumMismatch);
    assert_eq!(
        asymmetric.clone().try_add_secret(SECRET).unwrap_err(),
        ConfigError::SecretWithoutHmac
    );
    let added = std::panic::catch_unwind(|| keys.verifier(Policy::Asymmetric).add_secret(SECRET));
    assert!(
        added.is_err(),
        "add_secret on an asymmetric verifier panics"
    );

    for policy in [Policy::Both, Policy::Either] {
        let verifier = keys.verifier(policy);
        for token in [&hmac_token, &es_token] {
            assert_eq!(
                outcome(&verifier, token),
                Err((ErrorKind::PolicyNeedsHeaders, None)),
                "{policy}"
            );
            let error = verifier.begin_token(token).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::PolicyNeedsHeaders);
            assert!(error.reason().contains("verify(headers, body)"));
        }
        // Secrets can still be added (rotation), and `verify` reads both headers.
        let verifier = verifier.add_secret("next secret");
        let (request, _) = keys.request("/", Tok::V, Tok::V);
        assert_eq!(
            verifier.verify(request.headers(), BODY).unwrap().schemes(),
            [H, E]
        );
    }
}

/// Any `crit` member is refused in both schemes, `null` included (RFC 7515, 4.1.11: when
/// present, a non-empty array; none is implemented here), whatever its value or spelling,
/// before the body and without the inner service. Before: `Option<IgnoredAny>` read
/// `"crit": null` as absent, and accepted the token.
#[tokio::test]
async fn any_crit_member_is_refused_in_both_schemes() {
    let keys = Keys::new();
    let claims = |es: bool| {
        let token = if es {
            keys.dt.sign(BODY)
        } else {
            Signer::new(SECRET).sign(BODY)
        };
        base64_decode(token.split('.').nth(1).unwrap())
    };
    let (hmac_claims, es_claims) = (claims(false), claims(true));
    // The tokens with these members after `alg` (and `kid`), signed with the right key.
    let tokens = |members: &str| {
        let hmac = format!(r#"{{"alg":"HS256","typ":"JWT"{members}}}"#);
        let es = format!(
            r#"{{"alg":"ES256","kid":"{}","typ":"JWT"{members}}}"#,
            keys.dt.kid()
        );
        [
            (
                Policy::Hmac,
                H,
                Signer::new(SECRET).sign_parts(hmac.as_bytes(), &hmac_claims),
            ),
            (
                Policy::Asymmetric,
                E,
                keys.dt.sign_parts(es.as_bytes(), &es_claims),
            ),
        ]
    };
    let request = |scheme: Scheme, token: &str| {
        let polls = Arc::new(AtomicUsize::new(0));
        let name = if scheme == H {
            X_DT_SIGNATURE
        } else {
            DT_ASYMMETRIC_SIGNATURE
        };
        let request = Request::post("/")
            .header(name, token)
            .header("content-length", BODY.len())
            .body(Counted {
                inner: Full::new(Bytes::from_static(BODY)),
                polls: polls.clone(),
            })
            .unwrap();
        (request, polls)
    };

    let forms = [
        r#","crit":null"#,
        r#","crit":["exp"]"#,
        r#","crit":["b64"],"b64":false"#,
        r#","crit":[]"#,
        r#","crit":"exp""#,
        r#","crit":{}"#,
        r#","crit":0"#,
        r#","crit":false"#,
        // The member's name escaped: JSON reads it as `crit`.
        r#","cr\u0069t":null"#,
    ];
    for members in forms {
        for (policy, scheme, token) in tokens(members) {
            let name = format!("{policy} {members}");
            let error = keys
                .verifier(policy)
                .verify_token(&token, BODY)
                .unwrap_err();
            assert_eq!(error.kind(), ErrorKind::UnsupportedAlgorithm, "{name}");
            let layer = DtSignatureLayer::from(keys.verifier(policy));
            let (request, polls) = request(scheme, &token);
            let want = refuse(ErrorKind::UnsupportedAlgorithm, scheme);
            run(&name, &layer, request, polls, want, false).await;
        }
    }
    // Twice: refused too (a JSON object names a member once).
    for (policy, _, token) in tokens(r#","crit":["exp"],"crit":null"#) {
        assert!(
            keys.verifier(policy).verify_token(&token, BODY).is_err(),
            "{policy} crit twice"
        );
    }
    // The same tokens without `crit` pass, and with a member of another name: only `crit`
    // refuses them.
    for members in ["", r#","critical":null"#, r#","crit ":null"#] {
        for (policy, scheme, token) in tokens(members) {
            let layer = DtSignatureLayer::from(keys.verifier(policy));
            let (request, polls) = request(scheme, &token);
            let name = format!("{policy} {members}");
            let want = if scheme == H { HMAC_ONLY } else { ES_ONLY };
            run(&name, &layer, request, polls, want, false).await;
        }
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

/// A refusal before the body beats a checksum mismatch that only the body would show,
/// whichever token each belongs to: an HMAC token for another body and two
/// `DT-Asymmetric-Signature` headers are refused for the headers, unread. Found by the
/// `service_policies` fuzz target, whose oracle read `Policy`'s docs ("the first refusal
/// in the order HMAC, then ES256") as the HMAC mismatch; the docs now say the order.
#[tokio::test]
async fn a_refusal_before_the_body_beats_a_mismatch_at_the_body() {
    let keys = Keys::new();
    for policy in [Policy::Both, Policy::Either] {
        let layer = DtSignatureLayer::from(keys.verifier(policy));
        let (mut request, polls) = keys.request("/", Tok::X, Tok::V);
        let second = keys.dt.sign(BODY).parse().unwrap();
        request
            .headers_mut()
            .append(DT_ASYMMETRIC_SIGNATURE, second);
        let want = refuse(ErrorKind::DuplicateAsymmetricHeader, E);
        let name = format!("{policy} hmac=X es=twice");
        run(&name, &layer, request, polls, want, false).await;
    }
}
