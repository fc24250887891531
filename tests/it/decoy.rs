//! The gateway's decoy (#24) through the public API: a `StaticSecrets` gateway with no
//! `.decoy(...)` line, whose tenants read `DT-Asymmetric-Signature`, under a key outage.
//! DT's keys are discovered through a `FetchJwks` of the test's own (no network) under
//! tokio's paused clock. For `asymmetric`, `either` and `both` tenants, before the first
//! fetch (it hangs until its 5 s budget) and after a failed refresh, a known tenant and an
//! unknown one answer each token shape a prober can send with the same status, text and
//! headers: `503 signing keys unavailable` where a known tenant cannot check the token,
//! `400 invalid token signature` elsewhere. The unknown tenant never waits (the paused
//! clock does not move for it), and the inner service is never called.
//!
//! The equal work of known and unknown tenants (the verifications counted) is tested in
//! `src/layer/decoy_tests.rs`, where the crate's counter is in reach.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::Layer;

use tower_dt_signature::gateway::StaticSecrets;
use tower_dt_signature::keys::{DtKeys, FetchError, FetchFuture, FetchJwks, Fetched};
use tower_dt_signature::testing::{AsymmetricSigner, Signer};
use tower_dt_signature::verify::Policy;
use tower_dt_signature::{DtSignatureError, DtSignatureLayer, ErrorKind, Scheme, Verifier};

use crate::support::{call, Recorder};

const DISCOVERY: &str = "https://identity.example/dc/.well-known/openid-configuration";
const ISSUER: &str = "https://identity.example/dc";
const JWKS_URI: &str = "https://identity.example/dc/jwks";
const ORG: &str = "c0rg1d0000000000000a";
const BODY: &[u8] = br#"{"event":{"eventId":"c82gg9catj3vmh4248og","eventType":"touch"}}"#;

/// How the scripted identity service answers.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    /// Never: each refresh ends at its 5 s budget.
    Hang,
    /// The discovery document and the key set.
    Serve,
    /// An error at once.
    Fail,
}

/// A `FetchJwks` that answers as its mode says, counting its GETs.
#[derive(Clone)]
struct Scripted(Arc<Script>);

struct Script {
    mode: Mutex<Mode>,
    jwks: String,
    fetches: AtomicUsize,
}

impl Scripted {
    fn new(mode: Mode, dt: &AsymmetricSigner) -> Self {
        Self(Arc::new(Script {
            mode: Mutex::new(mode),
            jwks: dt.jwks(),
            fetches: AtomicUsize::new(0),
        }))
    }

    fn set(&self, mode: Mode) {
        *self.0.mode.lock().unwrap() = mode;
    }

    fn fetches(&self) -> usize {
        self.0.fetches.load(Ordering::SeqCst)
    }
}

impl FetchJwks for Scripted {
    fn fetch<'a>(&'a self, url: &'a str) -> FetchFuture<'a> {
        Box::pin(async move {
            self.0.fetches.fetch_add(1, Ordering::SeqCst);
            let mode = *self.0.mode.lock().unwrap();
            match mode {
                Mode::Hang => std::future::pending().await,
                Mode::Fail => Err(FetchError::new("the identity service is down")),
                Mode::Serve if url == DISCOVERY => Ok(Fetched::new(
                    format!(
                        r#"{{"issuer":"{ISSUER}","jwks_uri":"{JWKS_URI}","id_token_signing_alg_values_supported":["ES256"]}}"#
                    ),
                    None,
                )),
                Mode::Serve => Ok(Fetched::new(self.0.jwks.clone(), None)),
            }
        })
    }
}

/// DT's key (in the key set) and the keys discovered through `script`.
fn dt() -> AsymmetricSigner {
    AsymmetricSigner::generate()
        .with_issuer(ISSUER)
        .with_org_id(ORG)
}

fn verifier(policy: Policy, keys: &DtKeys, secret: &str) -> Verifier {
    match policy {
        Policy::Asymmetric => Verifier::asymmetric(keys.clone(), ORG),
        Policy::Both => Verifier::both(secret, keys.clone(), ORG),
        Policy::Either => Verifier::either(secret, keys.clone(), ORG),
        _ => unreachable!("the policies that read DT-Asymmetric-Signature"),
    }
}

/// The token shapes a prober can send without a secret, to `path`: (name, request).
fn shapes(dt: &AsymmetricSigner, path: &str) -> Vec<(&'static str, Request<Full<Bytes>>)> {
    let forged = AsymmetricSigner::generate()
        .with_issuer(ISSUER)
        .with_org_id(ORG)
        .with_kid(dt.kid());
    let made_up = AsymmetricSigner::generate()
        .with_issuer(ISSUER)
        .with_org_id(ORG)
        .with_kid("made-up-kid");
    let hmac = Signer::new("a secret of no tenant");
    vec![
        ("dt_kid", forged.request(path, BODY).unwrap()),
        ("made_up_kid", made_up.request(path, BODY).unwrap()),
        ("hmac_only", hmac.request(path, BODY).unwrap()),
        ("both", forged.request_with_hmac(&hmac, path, BODY).unwrap()),
        (
            "both_made_up_kid",
            made_up.request_with_hmac(&hmac, path, BODY).unwrap(),
        ),
    ]
}

/// What a client sees of an answer, and the error in its extensions.
#[derive(Debug, PartialEq)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// `request` through `service`: the answer, the error, and the paused clock's advance
/// while it was decided (the time a refresh was waited for).
async fn answer<S>(
    service: &S,
    request: Request<Full<Bytes>>,
) -> (Answer, DtSignatureError, Duration)
where
    S: tower::Service<Request<Full<Bytes>>, Response = http::Response<Full<Bytes>>> + Clone,
    S::Error: std::fmt::Debug,
{
    let started = tokio::time::Instant::now();
    let response = call(service, request).await;
    let waited = started.elapsed();
    let error = response
        .extensions()
        .get::<DtSignatureError>()
        .cloned()
        .expect("a refusal carries its error");
    let (parts, body) = response.into_parts();
    let answer = Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    };
    (answer, error, waited)
}

/// For each shape, the unknown tenant, then the known one: the same answer, and `503
/// signing keys unavailable` for exactly the shapes in `unavailable`. The unknown tenant
/// never waits; its error keeps `UnknownTenant`, with the 503 in `status()`.
async fn same_answers(
    policy: Policy,
    dt: &AsymmetricSigner,
    keys: &DtKeys,
    unavailable: &[&str],
    when: &str,
) {
    let recorder = Recorder::default();
    let secrets = StaticSecrets::by_path_segment(1)
        .tenant("known", verifier(policy, keys, "secret of known"))
        .tenant("other", verifier(policy, keys, "secret of other"));
    let service = DtSignatureLayer::gateway(secrets).layer(recorder.clone());
    let unknown_shapes = shapes(dt, "/dt/nobody");
    let known_shapes = shapes(dt, "/dt/known");
    for ((shape, to_unknown), (_, to_known)) in unknown_shapes.into_iter().zip(known_shapes) {
        let case = format!("{policy} {shape} {when}");
        let (unknown, unknown_error, unknown_waited) = answer(&service, to_unknown).await;
        let (known, known_error, _) = answer(&service, to_known).await;
        assert_eq!(unknown, known, "{case}: known vs unknown tenant");
        assert_eq!(
            unknown_waited,
            Duration::ZERO,
            "{case}: the unknown tenant waited"
        );
        assert_eq!(unknown_error.kind(), ErrorKind::UnknownTenant, "{case}");
        assert_eq!(unknown_error.status(), known.status, "{case}");
        if unavailable.contains(&shape) {
            assert_eq!(known.status, StatusCode::SERVICE_UNAVAILABLE, "{case}");
            assert_eq!(&known.body[..], b"signing keys unavailable", "{case}");
            assert_eq!(known_error.kind(), ErrorKind::KeysUnavailable, "{case}");
            assert_eq!(
                unknown_error.to_string(),
                "signing keys unavailable",
                "{case}"
            );
            assert_eq!(unknown_error.scheme(), Some(Scheme::Asymmetric), "{case}");
        } else {
            assert_eq!(known.status, StatusCode::BAD_REQUEST, "{case}");
            assert_eq!(&known.body[..], b"invalid token signature", "{case}");
            assert_eq!(unknown_error.scheme(), None, "{case}");
        }
    }
    assert_eq!(
        recorder.calls(),
        0,
        "{policy} {when}: the inner service was called"
    );
}

/// The policies, each with the shapes a known tenant of it cannot check with no key set.
const BEFORE_THE_FIRST_FETCH: [(Policy, &[&str]); 3] = [
    (
        Policy::Asymmetric,
        &["dt_kid", "made_up_kid", "both", "both_made_up_kid"],
    ),
    // The HMAC token decides first where it is present (forged: 400).
    (Policy::Either, &["dt_kid", "made_up_kid"]),
    // No HMAC token, or a forged one: 400 before the asymmetric token counts.
    (Policy::Both, &[]),
];

#[tokio::test(start_paused = true)]
async fn known_and_unknown_tenants_answer_alike_before_the_first_fetch() {
    for (policy, unavailable) in BEFORE_THE_FIRST_FETCH {
        let dt = dt();
        let script = Scripted::new(Mode::Hang, &dt);
        let keys = DtKeys::discovery(DISCOVERY)
            .fetcher(script.clone())
            .build()
            .unwrap();
        assert!(keys.status().last_refresh.is_none());
        same_answers(policy, &dt, &keys, unavailable, "before the first fetch").await;
        assert!(!keys.ready(), "{policy}: no key set was ever had");
        // The known tenants that could not check a token waited for a fetch (a `both`
        // tenant refused every shape on its HMAC token first, and waited for none).
        assert_eq!(script.fetches() > 0, !unavailable.is_empty(), "{policy}");
    }
}

#[tokio::test(start_paused = true)]
async fn known_and_unknown_tenants_answer_alike_after_a_failed_refresh() {
    // With a key set that is no longer current, only a `kid` not in it is uncheckable.
    let after: [(Policy, &[&str]); 3] = [
        (Policy::Asymmetric, &["made_up_kid", "both_made_up_kid"]),
        (Policy::Either, &["made_up_kid"]),
        (Policy::Both, &[]),
    ];
    for (policy, unavailable) in after {
        let dt = dt();
        let script = Scripted::new(Mode::Serve, &dt);
        let keys = DtKeys::discovery(DISCOVERY)
            .fetcher(script.clone())
            .build()
            .unwrap();
        while !keys.ready() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The service goes down; past the 30 s limit, a made-up kid asks for a refresh,
        // which fails.
        script.set(Mode::Fail);
        tokio::time::sleep(Duration::from_secs(31)).await;
        let made_up = AsymmetricSigner::generate()
            .with_issuer(ISSUER)
            .with_org_id(ORG)
            .with_kid("made-up-kid");
        let verifier = Verifier::asymmetric(keys.clone(), ORG);
        let error = verifier
            .verify_async(
                made_up.request::<Full<Bytes>>("/", BODY).unwrap().headers(),
                BODY,
            )
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::KeysUnavailable, "{policy}");
        let status = keys.status();
        assert!(status.loaded && status.last_failure.is_some(), "{status:?}");
        assert_eq!(
            status.kids,
            [dt.kid()],
            "{policy}: the last good set is kept"
        );
        same_answers(policy, &dt, &keys, unavailable, "after a failed refresh").await;
    }
}

/// The metric of an unknown tenant's 503 (#24): `dt_signature_requests_total` counts it
/// as `outcome="rejected", kind="unknown_tenant", scheme="asymmetric"`, beside the known
/// tenant's `kind="keys_unavailable"`; every other unknown tenant has `scheme="none"`.
#[cfg(feature = "metrics")]
#[test]
fn the_metric_of_an_unknown_tenants_503() {
    use metrics_util::debugging::DebugValue;

    let snapshotter = crate::metrics_facade::with_recorder(|| async {
        let dt = dt();
        let keys = DtKeys::discovery(DISCOVERY)
            .fetcher(Scripted::new(Mode::Fail, &dt))
            .build()
            .unwrap();
        let recorder = Recorder::default();
        let secrets = StaticSecrets::by_path_segment(1)
            .tenant("known", verifier(Policy::Asymmetric, &keys, "unused"));
        let service = DtSignatureLayer::gateway(secrets).layer(recorder.clone());
        for path in ["/dt/nobody", "/dt/known"] {
            let (_, request) = shapes(&dt, path).swap_remove(0);
            let response = call(&service, request).await;
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        }
        let (_, hmac_only) = shapes(&dt, "/dt/nobody").swap_remove(2);
        let response = call(&service, hmac_only).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(recorder.calls(), 0, "the inner service was called");
    });
    let mut rows = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        if let ("dt_signature_requests_total", DebugValue::Counter(count)) = (key.name(), value) {
            let labels: Vec<String> = key
                .labels()
                .map(|label| format!("{}={}", label.key(), label.value()))
                .collect();
            rows.push((labels.join(","), count));
        }
    }
    rows.sort();
    assert_eq!(
        rows,
        [
            (
                "outcome=rejected,kind=keys_unavailable,scheme=asymmetric".to_owned(),
                1
            ),
            (
                "outcome=rejected,kind=unknown_tenant,scheme=asymmetric".to_owned(),
                1
            ),
            (
                "outcome=rejected,kind=unknown_tenant,scheme=none".to_owned(),
                1
            ),
        ]
    );
}
