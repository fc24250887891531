//! `DtSignatureLayer::gateway`: per-tenant secrets picked by a resolver, through the public
//! API.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderName, Request, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt};

use tower_dt_signature::gateway::{ResolveError, StaticSecrets, Tenant, TenantId};
use tower_dt_signature::{DtClaims, DtSignatureError, DtSignatureLayer, ErrorKind, Verifier};

use crate::support::*;

const BODY: &[u8] = br#"{"event":{"eventId":"c82gg9catj3vmh4248og","eventType":"touch"}}"#;
const SECRET_A: &str = "secret of connector a";
const SECRET_B: &str = "secret of connector b";

fn verifier(secret: &str) -> Verifier {
    Verifier::new(secret).clock(at(NOW))
}

fn by_path() -> StaticSecrets {
    StaticSecrets::by_path_segment(1)
        .tenant("a", verifier(SECRET_A))
        .tenant("b", verifier(SECRET_B))
}

fn post(uri: &str, token: Option<&str>) -> Request<Full<Bytes>> {
    let mut builder = Request::post(uri).header("content-length", BODY.len());
    if let Some(token) = token {
        builder = builder.header("x-dt-signature", token);
    }
    builder.body(Full::new(Bytes::from_static(BODY))).unwrap()
}

#[tokio::test]
async fn each_tenant_is_verified_with_its_own_secret() {
    let recorder = Recorder::default();
    let service = DtSignatureLayer::gateway(by_path()).layer(recorder.clone());

    for (uri, secret, tenant) in [("/dt/a", SECRET_A, "a"), ("/dt/b/", SECRET_B, "b")] {
        let response = call(&service, post(uri, Some(&sign(BODY, secret)))).await;
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        let seen = recorder.take();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].body, BODY, "the inner service got other bytes");
        let extensions = &seen[0].parts.extensions;
        assert_eq!(extensions.get::<TenantId>().unwrap().as_str(), tenant);
        assert!(extensions.get::<DtClaims>().unwrap().sha256_verified());
    }

    // A's event signed with B's secret, and B's with A's: refused, never forwarded.
    for (uri, secret) in [("/dt/a", SECRET_B), ("/dt/b", SECRET_A)] {
        let response = call(&service, post(uri, Some(&sign(BODY, secret)))).await;
        let (status, kind, text) = outcome(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(kind, Some(ErrorKind::InvalidSignature));
        assert_eq!(text, "invalid token signature");
    }
    assert_eq!(
        recorder.calls(),
        0,
        "a refused request reached the inner service"
    );
}

#[tokio::test]
async fn an_unknown_tenant_is_refused_before_the_body_and_looks_like_a_wrong_secret() {
    let recorder = Recorder::default();
    let service = DtSignatureLayer::gateway(by_path()).layer(recorder.clone());

    // What a known tenant answers to a token signed with someone else's secret ...
    let known = outcome(call(&service, post("/dt/a", Some(&sign(BODY, "guess")))).await).await;
    assert_eq!(known.1, Some(ErrorKind::InvalidSignature));

    // ... is what an unknown tenant answers, with any token, before a body byte is read.
    for (uri, secret) in [("/dt/c", "guess"), ("/dt/c", SECRET_A), ("/", SECRET_A)] {
        let (body, polls) = Counted::new(Full::new(Bytes::from_static(BODY)));
        let request = Request::post(uri)
            .header("x-dt-signature", sign(BODY, secret))
            .body(body)
            .unwrap();
        let response = call(&service, request).await;
        let (status, kind, text) = outcome(response).await;
        assert_eq!(kind, Some(ErrorKind::UnknownTenant), "{uri}");
        assert_eq!(
            (status, text.as_str()),
            (known.0, known.2.as_str()),
            "{uri}"
        );
        assert_eq!(polls.load(Ordering::SeqCst), 0, "the body was read");
    }

    // Without a header, known and unknown tenants give the same answer too, which reads
    // like a wrong secret; the precise reason stays in the extensions.
    let missing_known = outcome(call(&service, post("/dt/a", None)).await).await;
    let missing_unknown = outcome(call(&service, post("/dt/zz", None)).await).await;
    // No signature header at all is refused before the resolver, for every tenant.
    assert_eq!(missing_known.1, Some(ErrorKind::MissingHeader));
    assert_eq!(missing_known, missing_unknown);
    assert_eq!(missing_known.2, "invalid token signature");
    assert_eq!(recorder.calls(), 0);
}

#[tokio::test]
async fn tenants_by_header_and_by_key() {
    let name = HeaderName::from_static("x-connector");
    let by_header = StaticSecrets::by_header(name.clone()).tenant("a", verifier(SECRET_A));
    let by_key = StaticSecrets::by_key(|parts: &Parts| {
        parts.uri.query()?.strip_prefix("c=").map(str::to_owned)
    })
    .tenant("a", verifier(SECRET_A));
    assert_eq!(by_key.len(), 1);
    assert!(!format!("{by_header:?}").contains(SECRET_A));

    let token = sign(BODY, SECRET_A);
    let with_header = |values: &[&str]| {
        let mut request = post("/", Some(&token));
        for value in values {
            request
                .headers_mut()
                .append(name.clone(), value.parse().unwrap());
        }
        request
    };

    let recorder = Recorder::default();
    let service = DtSignatureLayer::gateway(by_header).layer(recorder.clone());
    let ok = call(&service, with_header(&["a"])).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(recorder.take()[0].body, BODY);
    for values in [&[][..], &["b"], &["a", "a"]] {
        let response = call(&service, with_header(values)).await;
        assert_eq!(
            outcome(response).await.1,
            Some(ErrorKind::UnknownTenant),
            "{values:?}"
        );
    }

    let service = DtSignatureLayer::gateway(by_key).layer(recorder.clone());
    let ok = call(&service, post("/any?c=a", Some(&token))).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let unknown = service
        .oneshot(post("/any?c=b", Some(&token)))
        .await
        .unwrap();
    assert_eq!(outcome(unknown).await.1, Some(ErrorKind::UnknownTenant));
    assert_eq!(recorder.take().len(), 1);
}

#[derive(Debug)]
struct StoreDown;

impl std::fmt::Display for StoreDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("store down")
    }
}

impl std::error::Error for StoreDown {}

#[tokio::test]
async fn an_async_closure_resolver_and_its_errors() {
    // A resolver that looks the connector up in an (async) store; "down" fails.
    let (lookups, resolver) = counting(|parts: &Parts| {
        let connector = parts.uri.path().trim_start_matches("/dt/").to_owned();
        async move {
            tokio::task::yield_now().await;
            match connector.as_str() {
                "a" => Ok(Some(Tenant::new("a", verifier(SECRET_A)))),
                "down" => Err(ResolveError::new(StoreDown)),
                _ => Ok(None),
            }
        }
    });
    let recorder = Recorder::default();
    let service = DtSignatureLayer::gateway(resolver.clone()).layer(recorder.clone());
    let token = sign(BODY, SECRET_A);

    let ok = call(&service, post("/dt/a", Some(&token))).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let seen = recorder.take();
    assert_eq!(seen[0].body, BODY);
    assert_eq!(
        seen[0].parts.extensions.get::<TenantId>().unwrap().as_str(),
        "a"
    );

    let (body, polls) = Counted::new(Full::new(Bytes::from_static(BODY)));
    let request = Request::post("/dt/down")
        .header("x-dt-signature", &token)
        .body(body)
        .unwrap();
    let response = call(&service, request).await;
    let error = response
        .extensions()
        .get::<DtSignatureError>()
        .unwrap()
        .clone();
    let (status, kind, text) = outcome(response).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(kind, Some(ErrorKind::ResolverFailed));
    assert_eq!(text, "secret lookup failed");
    // The store's error is kept as the source, for logs; never in the response.
    let source = std::error::Error::source(&error).unwrap();
    assert!(source.downcast_ref::<ResolveError>().is_some());
    assert_eq!(polls.load(Ordering::SeqCst), 0, "the body was read");

    let unknown = call(&service, post("/dt/x", Some(&token))).await;
    assert_eq!(outcome(unknown).await.1, Some(ErrorKind::UnknownTenant));
    assert_eq!(recorder.calls(), 0);
    assert_eq!(lookups.load(Ordering::SeqCst), 3);

    // A declared length over the limit holds for every tenant and policy: refused without
    // asking the resolver, whatever the token.
    let small = DtSignatureLayer::gateway(resolver.clone())
        .max_body_size(8)
        .layer(recorder.clone());
    for token in [token.as_str(), "not.a-token"] {
        let response = call(&small, post("/dt/a", Some(token))).await;
        assert_eq!(outcome(response).await.1, Some(ErrorKind::BodyTooLarge));
    }
    assert_eq!(lookups.load(Ordering::SeqCst), 3, "the resolver was asked");
    // Token checks depend on the tenant's policy: they come after the resolver, and in a
    // gateway every such refusal reads like a wrong secret.
    let response = call(&service, post("/dt/a", Some("not.a-token"))).await;
    let (status, kind, text) = outcome(response).await;
    assert_eq!(kind, Some(ErrorKind::MalformedToken));
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::BAD_REQUEST, "invalid token signature")
    );
    assert_eq!(lookups.load(Ordering::SeqCst), 4);
    assert_eq!(recorder.calls(), 0);
}
