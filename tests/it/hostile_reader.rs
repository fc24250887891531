//! The findings of a hostile read of the gateway, report-only mode and the duplicate guard
//! (issue "close the holes a hostile reader finds"): each test failed before its fix.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{Request, StatusCode};
use http_body_util::Full;
use proptest::prelude::*;
use tower::{Layer, Service, ServiceExt};

use tower_dt_signature::dedup::{DedupLayer, DedupRefusal, DedupStore, MemoryStore, Reserve};
use tower_dt_signature::gateway::{ResolveError, StaticSecrets, Tenant, TenantId};
use tower_dt_signature::{DtClaims, DtSignatureLayer, ErrorKind, Verdict, Verifier};

use crate::support::dedup::{
    answer, answer_to, body, hold_in_flight, in_flight, ok, signed, stack, Answer, Flaky,
};
use crate::support::*;

const SECRET_A: &str = "secret-of-tenant-a";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

fn gateway() -> StaticSecrets {
    StaticSecrets::by_path_segment(1).tenant("a", Verifier::new(SECRET_A).clock(at(NOW)))
}

/// What `store` answers to a reservation of `key` now (for a second).
async fn reserve_now(store: &impl DedupStore, key: &str) -> Reserve {
    store.reserve(key, Duration::from_secs(1)).await.unwrap()
}

fn post(uri: &str, header: Option<&[u8]>, body: &'static [u8]) -> Request<Full<Bytes>> {
    let mut request = Request::post(uri)
        .body(Full::new(Bytes::from_static(body)))
        .unwrap();
    if let Some(value) = header.and_then(|v| http::HeaderValue::from_bytes(v).ok()) {
        request.headers_mut().insert("x-dt-signature", value);
    }
    request
}

/// A token-shaped header value: random parts, dots, a real DT header, a forged signature,
/// an `alg` of `none`, a claim set of the wrong type... or no header at all.
fn token_shape() -> impl Strategy<Value = Option<Vec<u8>>> {
    let part = prop_oneof![
        Just(b64(DT_HEADER)),
        Just(b64(r#"{"alg":"none"}"#)),
        Just(b64(r#"{"alg":"HS256","crit":["x"]}"#)),
        Just(b64(r#"{"exp":"soon"}"#)),
        Just(b64("[1,2]")),
        "[A-Za-z0-9_-]{0,40}",
        "[ -~]{0,12}",
    ];
    prop_oneof![
        1 => Just(None),
        6 => prop::collection::vec(part, 1..5).prop_map(|parts| Some(parts.join(".").into_bytes())),
        1 => Just(Some(sign(b"{}", "someone-else").into_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Finding 1: no tenant oracle. Whatever the token looks like, a known tenant and an
    /// unknown one answer with the same status and text; the precise reason stays in the
    /// extensions. (Before: `malformed token` at a known tenant, `invalid token signature`
    /// at an unknown one.)
    #[test]
    fn known_and_unknown_tenants_answer_alike(header in token_shape()) {
        let recorder = Recorder::default();
        let service = DtSignatureLayer::gateway(gateway()).layer(recorder.clone());
        let (known, unknown) = runtime().block_on(async {
            let known = outcome(call(&service, post("/dt/a", header.as_deref(), b"{}")).await).await;
            let unknown = outcome(call(&service, post("/dt/zz", header.as_deref(), b"{}")).await).await;
            (known, unknown)
        });
        prop_assert_eq!((known.0, &known.2), (unknown.0, &unknown.2));
        prop_assert!(known.0 == StatusCode::BAD_REQUEST);
        prop_assert!(known.1.is_some() && unknown.1.is_some());
        prop_assert_eq!(recorder.calls(), 0);
    }
}

/// Finding 1, the other side: a single-secret layer has no tenants to reveal and keeps
/// its precise public texts.
#[tokio::test]
async fn a_single_secret_layer_keeps_its_precise_texts() {
    let service = DtSignatureLayer::new(SECRET_A)
        .clock(at(NOW))
        .layer(Recorder::default());
    let (_, kind, text) = outcome(call(&service, post("/", Some(b"a.b"), b"{}")).await).await;
    assert_eq!(kind, Some(ErrorKind::MalformedToken));
    assert_eq!(text, "malformed token");
}

/// Finding 2: `Display` is the public text, so the `with_rejection` example that sends
/// `{error}` to the client cannot leak that a tenant does not exist.
#[tokio::test]
async fn display_is_the_public_text_and_reason_the_precise_one() {
    let service = DtSignatureLayer::gateway(gateway())
        .with_rejection(|error: &tower_dt_signature::DtSignatureError| {
            http::Response::builder()
                .status(error.status())
                .body(Full::new(Bytes::from(format!(
                    "{error}|{}",
                    error.reason()
                ))))
                .unwrap()
        })
        .layer(Recorder::default());
    let token = sign(b"{}", SECRET_A);
    let response = call(&service, post("/dt/zz", Some(token.as_bytes()), b"{}")).await;
    let (_, kind, text) = outcome(response).await;
    assert_eq!(kind, Some(ErrorKind::UnknownTenant));
    assert_eq!(text, "invalid token signature|unknown tenant");
}

/// Finding 3: report-only with a failing resolver reports the request's own refusal (no
/// token at all), and the resolver is not even asked; enforcing mode answers 400, not 503.
#[tokio::test]
async fn a_request_without_any_token_is_refused_before_the_resolver() {
    let (lookups, failing) = counting(|_: &Parts| {
        std::future::ready(Err::<Option<Tenant>, _>(ResolveError::new("store down")))
    });
    let recorder = Recorder::default();
    let report = DtSignatureLayer::gateway(failing.clone())
        .report_only(true)
        .layer(recorder.clone());
    let response = call(&report, post("/dt/a", None, b"{}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = recorder.take();
    let verdict = seen[0].parts.extensions.get::<Verdict>().unwrap();
    assert_eq!(
        verdict.error().map(|e| e.kind()),
        Some(ErrorKind::MissingHeader)
    );

    let enforce = DtSignatureLayer::gateway(failing).layer(recorder.clone());
    let (status, kind, _) = outcome(call(&enforce, post("/dt/a", None, b"{}")).await).await;
    assert_eq!(
        (status, kind),
        (StatusCode::BAD_REQUEST, Some(ErrorKind::MissingHeader))
    );
    assert_eq!(lookups.load(Ordering::SeqCst), 0, "the resolver was asked");

    // With a token, the failing lookup is what decides: 503.
    let token = sign(b"{}", SECRET_A);
    let (status, kind, _) =
        outcome(call(&enforce, post("/dt/a", Some(token.as_bytes()), b"{}")).await).await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some(ErrorKind::ResolverFailed)
        )
    );
    assert_eq!(lookups.load(Ordering::SeqCst), 1);
    assert_eq!(recorder.calls(), 0);
}

/// Finding 4: `Verdict` is in the extensions in enforcing mode too, so a handler that
/// takes `Extension<Verdict>` does not answer 500 once enforcing is switched on.
#[tokio::test]
async fn the_verdict_is_inserted_in_enforcing_mode_too() {
    let recorder = Recorder::default();
    let service = DtSignatureLayer::new(SECRET)
        .clock(at(NOW))
        .layer(recorder.clone());
    let response = call(&service, signed_request::<Full<Bytes>>("/", &b"{}"[..])).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = recorder.take();
    let verdict = seen[0]
        .parts
        .extensions
        .get::<Verdict>()
        .expect("a Verdict");
    assert!(verdict.is_verified());
    assert_eq!(verdict.claims(), seen[0].parts.extensions.get::<DtClaims>());
}

/// Finding 5: a report-only refusal removes the `DtClaims` an outer layer inserted, so
/// nothing downstream mistakes the request for a verified one.
#[tokio::test]
async fn a_report_only_refusal_removes_an_outer_layers_claims() {
    let recorder = Recorder::default();
    let inner = DtSignatureLayer::new("another secret")
        .clock(at(NOW))
        .report_only(true)
        .layer(recorder.clone());
    let outer = DtSignatureLayer::new(SECRET).clock(at(NOW)).layer(inner);
    let response = call(&outer, signed_request::<Full<Bytes>>("/", &b"{}"[..])).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = recorder.take();
    let extensions = &seen[0].parts.extensions;
    assert!(
        extensions.get::<DtClaims>().is_none(),
        "the outer layer's claims vouch for it"
    );
    assert_eq!(
        extensions
            .get::<Verdict>()
            .and_then(Verdict::error)
            .map(|e| e.kind()),
        Some(ErrorKind::InvalidSignature)
    );
}

/// Finding 6: behind a gateway, one tenant's event never answers another tenant's event
/// with the same id, and the Redis/memory keys of a single-secret layer are unchanged.
#[tokio::test]
async fn duplicate_keys_are_scoped_by_tenant() {
    let store = MemoryStore::new(100);
    let guard = DedupLayer::with_store(store.clone());
    let recorder = Recorder::default();
    let secrets = StaticSecrets::by_path_segment(1)
        .tenant("a", Verifier::new(SECRET_A).clock(at(NOW)))
        .tenant("b", Verifier::new(SECRET).clock(at(NOW)));
    let service = DtSignatureLayer::gateway(secrets).layer(guard.layer(recorder.clone()));
    let signed = |uri: &str, secret: &str| {
        let body = body("evt-same-id");
        let mut request = tower_dt_signature::testing::Signer::new(secret)
            .request_with::<Full<Bytes>>(uri, body, &dt_options())
            .unwrap();
        *request.uri_mut() = uri.parse().unwrap();
        request
    };
    assert_eq!(
        answer(call(&service, signed("/dt/a", SECRET_A)).await).await,
        ok()
    );
    assert_eq!(
        answer(call(&service, signed("/dt/b", SECRET)).await).await,
        ok()
    );
    assert_eq!(
        recorder.calls(),
        2,
        "tenant b's event was answered by tenant a's"
    );
    let tenants: Vec<String> = recorder
        .take()
        .iter()
        .map(|seen| seen.parts.extensions.get::<TenantId>().unwrap().to_string())
        .collect();
    assert_eq!(tenants, ["a", "b"]);

    // The scoped keys, and a single-secret layer's bare one.
    assert_eq!(reserve_now(&store, "t1:a:evt-same-id").await, Reserve::Done);
    assert_eq!(reserve_now(&store, "t1:b:evt-same-id").await, Reserve::Done);
    let single = DtSignatureLayer::new(SECRET)
        .clock(at(NOW))
        .layer(guard.layer(recorder.clone()));
    assert_eq!(answer(call(&single, signed("/", SECRET)).await).await, ok());
    assert_eq!(reserve_now(&store, "evt-same-id").await, Reserve::Done);
}

/// Finding 7: a report-only refusal passes the guard unguarded, with its `Verdict`
/// (before: 500, undoing report-only); without any `Verdict` it is still a 500.
#[tokio::test]
async fn the_guard_forwards_report_only_refusals_unguarded() {
    let store = MemoryStore::new(100);
    let recorder = Recorder::default();
    let service = DtSignatureLayer::new(SECRET)
        .clock(at(NOW))
        .report_only(true)
        .layer(DedupLayer::with_store(store.clone()).layer(recorder.clone()));
    let forged = post("/", Some(sign(&body("evt-1"), "forged").as_bytes()), b"");
    let mut forged = forged;
    *forged.body_mut() = Full::new(body("evt-1"));
    let response = call(&service, forged).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = recorder.take();
    assert_eq!(seen[0].body, body("evt-1"));
    assert!(seen[0]
        .parts
        .extensions
        .get::<Verdict>()
        .unwrap()
        .error()
        .is_some());
    // Not marked: the real event is still handled when it comes.
    assert!(matches!(
        reserve_now(&store, "evt-1").await,
        Reserve::Reserved(_)
    ));

    let bare = DedupLayer::new().layer(recorder.clone());
    let response = bare
        .oneshot(signed_request::<Full<Bytes>>("/", body("evt-2")))
        .await
        .unwrap();
    assert_eq!(
        answer(response).await,
        Answer::Refused(
            DedupRefusal::Unverified,
            StatusCode::INTERNAL_SERVER_ERROR,
            "dedup guard used without DtSignatureLayer".into()
        )
    );
    assert_eq!(recorder.calls(), 0);
}

/// Finding 8: a flood of new ids never evicts a reservation in flight, so its duplicate
/// is not forwarded again; when the store holds nothing but reservations the guard
/// answers 503 with `Retry-After`; evictions are counted.
#[tokio::test]
async fn a_flood_of_new_ids_never_evicts_an_event_in_flight() {
    let guard = DedupLayer::with_store(MemoryStore::new(2));
    let (recorder, service) = stack(&guard);
    let held = hold_in_flight(&service, &recorder, "evt-held").await;

    // A flood of new ids: one slot is left, then the store is full of reservations.
    recorder.unhold();
    assert_eq!(answer_to(&service, "evt-new-1").await, ok());
    for i in 2..6 {
        let response = call(&service, signed(&format!("evt-new-{i}"))).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert!(guard.stats().evictions() >= 1, "{:?}", guard.stats());
    // The held event was never evicted: its duplicate is still refused as in flight.
    assert_eq!(answer_to(&service, "evt-held").await, in_flight());
    held.abort();

    // A store full of reservations: 503 with Retry-After, nothing forwarded.
    let full = DedupLayer::with_store(MemoryStore::new(1));
    let (recorder, service) = stack(&full);
    let _held = hold_in_flight(&service, &recorder, "evt-a").await;
    let response = call(&service, signed("evt-b")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(
        response.extensions().get::<DedupRefusal>(),
        Some(&DedupRefusal::StoreFull)
    );
    assert_eq!(full.stats().full(), 1);
    assert_eq!(recorder.calls(), 1, "only the held one");
}

/// Finding 9: a response future dropped after the inner service answered 2xx, while the
/// store's commit is still pending, commits in the background (before: released, and
/// the duplicate was handled again).
#[tokio::test]
async fn a_future_dropped_after_a_2xx_commits_instead_of_releasing() {
    let store = Flaky::commit_hangs();
    let recorder = Recorder::default();
    let mut service = DtSignatureLayer::new(SECRET)
        .clock(at(NOW))
        .layer(DedupLayer::with_store(store.clone()).layer(recorder.clone()));
    ServiceExt::<Request<Full<Bytes>>>::ready(&mut service)
        .await
        .unwrap();
    let future = service.call(signed_request::<Full<Bytes>>("/", body("evt-1")));
    // Poll until the handler has answered and the commit hangs, then drop.
    let dropped = tokio::time::timeout(Duration::from_millis(200), future).await;
    assert!(
        dropped.is_err(),
        "the hanging commit should keep the future pending"
    );
    assert_eq!(recorder.calls(), 1);
    assert_eq!(
        reserve_now(store.memory(), "evt-1").await,
        Reserve::Done,
        "released instead of committed"
    );
}

/// Finding 11: the TTL setters clamp: `Duration::MAX` no longer panics on every request,
/// `ZERO` no longer turns protection off.
#[tokio::test]
async fn extreme_ttls_are_clamped() {
    for (in_flight, done) in [
        (Duration::MAX, Duration::MAX),
        (Duration::ZERO, Duration::ZERO),
    ] {
        let guard = DedupLayer::new().in_flight_ttl(in_flight).done_ttl(done);
        let (recorder, service) = stack(&guard);
        assert_eq!(answer_to(&service, "evt-1").await, ok());
        // Still guarded: the duplicate is absorbed.
        let second = answer_to(&service, "evt-1").await;
        assert_eq!(second, crate::support::dedup::done(), "{in_flight:?}");
        assert_eq!(recorder.calls(), 1);
    }
}
