//! Report-only mode: every request is verified and forwarded with its verdict; only a body
//! that cannot be forwarded intact is refused.

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt};

use tower_dt_signature::gateway::{StaticSecrets, TenantId};
use tower_dt_signature::{DtClaims, DtSignature, DtSignatureLayer, ErrorKind, Verdict, Verifier};

use crate::support::*;

const BODY: &[u8] = br#"{"event":{"eventId":"c82gg9catj3vmh4248og","eventType":"touch"}}"#;

fn request(token: Option<&str>, body: &[u8]) -> Request<Full<Bytes>> {
    let mut builder = Request::post("/dt/a").header("content-type", "application/json");
    if let Some(token) = token {
        builder = builder.header("x-dt-signature", token);
    }
    builder
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap()
}

/// `layer`, its clock at [`NOW`], over a fresh recorder.
fn layer(layer: DtSignatureLayer) -> (Recorder, DtSignature<Recorder>) {
    let recorder = Recorder::default();
    (recorder.clone(), layer.clock(at(NOW)).layer(recorder))
}

fn verdict_kind(verdict: &Verdict) -> Option<ErrorKind> {
    verdict.error().map(|error| error.kind())
}

#[tokio::test]
async fn forwards_forged_requests_with_the_verdict_and_the_exact_bytes() {
    let (recorder, service) = layer(DtSignatureLayer::new(SECRET).report_only(true));

    let tampered = br#"{"event":{"eventId":"c82gg9catj3vmh4248og","eventType":"tauch"}}"#;
    let good = sign(BODY, SECRET);
    // (name, request, the bytes sent, the failure the verdict names)
    type Case<'a> = (&'a str, Request<Full<Bytes>>, &'a [u8], Option<ErrorKind>);
    let cases: Vec<Case<'_>> = vec![
        ("verified", request(Some(&good), BODY), BODY, None),
        (
            "tampered body",
            request(Some(&good), tampered),
            tampered,
            Some(ErrorKind::ChecksumMismatch),
        ),
        (
            "wrong secret",
            request(Some(&sign(BODY, "forged")), BODY),
            BODY,
            Some(ErrorKind::InvalidSignature),
        ),
        (
            "no header",
            request(None, BODY),
            BODY,
            Some(ErrorKind::MissingHeader),
        ),
    ];
    for (name, request, sent, expected) in cases {
        let response = call(&service, request).await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        let (_, kind, text) = outcome(response).await;
        assert_eq!((kind, text.as_str()), (None, "inner"), "{name}");

        let seen = recorder.take();
        assert_eq!(seen.len(), 1, "{name}: not forwarded");
        assert_eq!(
            seen[0].body, sent,
            "{name}: the inner service got other bytes"
        );
        let parts = &seen[0].parts;
        assert_eq!(
            parts.headers["content-length"],
            sent.len().to_string().as_str()
        );
        let verdict = parts.extensions.get::<Verdict>().expect("a verdict");
        assert_eq!(verdict_kind(verdict), expected, "{name}");
        assert_eq!(verdict.is_verified(), expected.is_none(), "{name}");
        // Claims only for a verified request, so strict consumers still refuse the rest.
        let claims = parts.extensions.get::<DtClaims>();
        assert_eq!(claims.is_some(), expected.is_none(), "{name}");
        assert_eq!(verdict.claims(), claims, "{name}");
    }
}

#[tokio::test]
async fn a_body_that_cannot_be_forwarded_intact_is_still_refused() {
    let (recorder, service) = layer(
        DtSignatureLayer::new(SECRET)
            .max_body_size(16)
            .report_only(true),
    );

    // Over the limit, by Content-Length and by counting a body without one.
    let mut declared = request(Some(&sign(BODY, SECRET)), BODY);
    declared
        .headers_mut()
        .insert("content-length", BODY.len().into());
    let response = call(&service, declared).await;
    assert_eq!(
        outcome(response).await.1,
        Some(ErrorKind::BodyTooLarge),
        "declared"
    );
    let streamed = Request::post("/")
        .body(chunked(vec![Bytes::from_static(BODY)], None))
        .unwrap();
    // A body that breaks off.
    let broken = Request::post("/")
        .body(chunked(
            vec![Bytes::from_static(b"{")],
            Some(std::io::Error::other("reset")),
        ))
        .unwrap();
    for (request, status, kind) in [
        (
            streamed,
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::BodyTooLarge,
        ),
        (broken, StatusCode::BAD_REQUEST, ErrorKind::BodyRead),
    ] {
        let (got_status, got_kind, _) = outcome(call(&service, request).await).await;
        assert_eq!((got_status, got_kind), (status, Some(kind)));
    }
    assert_eq!(
        recorder.calls(),
        0,
        "a refused request reached the inner service"
    );
}

#[tokio::test]
async fn without_report_only_the_same_requests_are_refused() {
    // The control for the test above: the layer is not simply letting everything through.
    let (recorder, service) = layer(DtSignatureLayer::new(SECRET).report_only(false));
    let response = call(&service, request(Some(&sign(BODY, "forged")), BODY)).await;
    assert_eq!(outcome(response).await.1, Some(ErrorKind::InvalidSignature));
    let response = service.oneshot(request(None, BODY)).await.unwrap();
    assert_eq!(outcome(response).await.1, Some(ErrorKind::MissingHeader));
    assert_eq!(recorder.calls(), 0);
}

#[tokio::test]
async fn the_gateway_reports_unknown_tenants_and_forwards_them() {
    let recorder = Recorder::default();
    let secrets =
        StaticSecrets::by_path_segment(1).tenant("a", Verifier::new(SECRET).clock(at(NOW)));
    let service = DtSignatureLayer::gateway(secrets)
        .report_only(true)
        .layer(recorder.clone());

    let cases = [
        ("/dt/a", Some(sign(BODY, SECRET)), None, Some("a")),
        (
            "/dt/a",
            Some(sign(BODY, "forged")),
            Some(ErrorKind::InvalidSignature),
            Some("a"),
        ),
        // No signature header at all: refused for every tenant, so the resolver is not
        // asked and there is no tenant.
        ("/dt/a", None, Some(ErrorKind::MissingHeader), None),
        (
            "/dt/zz",
            Some(sign(BODY, SECRET)),
            Some(ErrorKind::UnknownTenant),
            None,
        ),
    ];
    for (uri, token, expected, tenant) in cases {
        let mut request = request(token.as_deref(), BODY);
        *request.uri_mut() = uri.parse().unwrap();
        let response = call(&service, request).await;
        assert_eq!(response.status(), StatusCode::OK, "{uri} {expected:?}");
        let seen = recorder.take();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].body, BODY);
        let extensions = &seen[0].parts.extensions;
        assert_eq!(verdict_kind(extensions.get::<Verdict>().unwrap()), expected);
        assert_eq!(extensions.get::<TenantId>().map(TenantId::as_str), tenant);
    }
}
