//! DtSignatureLayer through the public API, called the way users call it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::Layer;

use tower_dt_signature::testing::{SignOptions, Signer};
use tower_dt_signature::{DtClaims, DtSignatureError, DtSignatureLayer, ErrorKind};

use crate::support::*;

#[derive(Clone, Debug, PartialEq)]
struct Marker(&'static str);

#[tokio::test]
async fn real_dt_requests_pass_with_exact_bytes() {
    for (vector, sha256) in [(Vector::sha256(), true), (Vector::sha1_only(), false)] {
        let recorder = Recorder::default();
        let verify_at = vector.verify_at;
        let layer = DtSignatureLayer::new(&vector.secret).clock(move || verify_at);
        let mut request = vector.request();
        request.extensions_mut().insert(Marker("kept"));
        *request.uri_mut() = "/dt/push?x=1".parse().unwrap();
        *request.version_mut() = http::Version::HTTP_11;

        let response = call(&layer.layer(recorder.clone()), request).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.extensions().get::<DtSignatureError>().is_none());

        let seen = recorder.take();
        assert_eq!(seen.len(), 1);
        let Seen { parts, body } = &seen[0];
        assert_eq!(body, &vector.body, "the inner service got other bytes");
        assert_eq!(parts.method, http::Method::POST);
        assert_eq!(parts.uri, "/dt/push?x=1");
        assert_eq!(parts.version, http::Version::HTTP_11);
        assert_eq!(parts.headers["content-type"], "application/json");
        assert_eq!(parts.headers["x-dt-signature"], vector.token.as_str());
        assert_eq!(
            parts.headers["content-length"],
            vector.body.len().to_string().as_str()
        );
        assert_eq!(parts.extensions.get::<Marker>(), Some(&Marker("kept")));
        let claims = parts.extensions.get::<DtClaims>().expect("claims inserted");
        assert!(claims.sha1_verified());
        assert_eq!(claims.sha256_verified(), sha256);
        assert_eq!(claims.exp(), claims.hmac_iat().unwrap() + 3600);
        assert_eq!(claims.jti().map(str::len), Some(20));
    }
}

#[tokio::test]
async fn real_dt_requests_are_refused_when_anything_changes() {
    for vector in [Vector::sha256(), Vector::sha1_only()] {
        let verify_at = vector.verify_at;
        let exp = verify_at + Duration::from_secs(3600);
        let mut tampered_body = vector.body.to_vec();
        tampered_body[100] ^= 0x20;
        let mut tampered_token = vector.token.clone().into_bytes();
        let middle = tampered_token.len() / 2;
        tampered_token[middle] = if tampered_token[middle] == b'x' {
            b'y'
        } else {
            b'x'
        };
        let tampered_token = String::from_utf8(tampered_token).unwrap();

        let cases: Vec<(&str, DtSignatureLayer, Request<Full<Bytes>>, ErrorKind)> = vec![
            (
                "at exp, no leeway",
                DtSignatureLayer::new(&vector.secret)
                    .leeway(Duration::ZERO)
                    .clock(move || exp),
                vector.request(),
                ErrorKind::Expired,
            ),
            (
                "at exp + default leeway",
                DtSignatureLayer::new(&vector.secret).clock(move || exp + Duration::from_secs(60)),
                vector.request(),
                ErrorKind::Expired,
            ),
            (
                "wrong secret",
                DtSignatureLayer::new("not-the-secret").clock(move || verify_at),
                vector.request(),
                ErrorKind::InvalidSignature,
            ),
            (
                "one body byte changed",
                DtSignatureLayer::new(&vector.secret).clock(move || verify_at),
                vector.request_with(&vector.token, Bytes::from(tampered_body)),
                ErrorKind::ChecksumMismatch,
            ),
            (
                "one token byte changed",
                DtSignatureLayer::new(&vector.secret).clock(move || verify_at),
                vector.request_with(&tampered_token, vector.body.clone()),
                ErrorKind::InvalidSignature,
            ),
        ];
        for (name, layer, request, kind) in cases {
            let recorder = Recorder::default();
            let response = call(&layer.layer(recorder.clone()), request).await;
            let (status, got, _) = outcome(response).await;
            assert_eq!(
                (status, got),
                (StatusCode::BAD_REQUEST, Some(kind)),
                "{name}"
            );
            assert_eq!(recorder.calls(), 0, "{name}: inner service called");
        }
    }

    // The legacy SHA-1-only token under require_sha256(true).
    let vector = Vector::sha1_only();
    let verify_at = vector.verify_at;
    let recorder = Recorder::default();
    let layer = DtSignatureLayer::new(&vector.secret)
        .clock(move || verify_at)
        .require_sha256(true);
    let response = call(&layer.layer(recorder.clone()), vector.request()).await;
    let (status, kind, text) = outcome(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(kind, Some(ErrorKind::MissingSha256));
    assert_eq!(text, "token has no checksum_sha256 claim");
    assert_eq!(recorder.calls(), 0);
}

fn post(token: Option<&str>, body: &'static [u8]) -> Request<Full<Bytes>> {
    let mut builder = Request::post("/").header("content-length", body.len());
    if let Some(token) = token {
        builder = builder.header("X-Dt-Signature", token);
    }
    builder.body(Full::new(Bytes::from_static(body))).unwrap()
}

/// `BODY` signed with `SECRET` through `Signer`, with `options`.
fn sign_with(options: SignOptions) -> String {
    Signer::new(SECRET).sign_with(BODY, &options)
}

/// `BODY`'s claims as DT signs them, changed by `edit`, minted raw: for what `Signer`
/// cannot make.
fn with_claims(edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> String {
    let mut claims = dt_claims(BODY, NOW);
    edit(claims.as_object_mut().unwrap());
    mint_raw(DT_HEADER, &claims.to_string(), SECRET)
}

const BODY: &[u8] =
    br#"{"event":{"eventId":"c82gg9catj3vmh4248og","eventType":"touch"},"labels":{}}"#;

/// At least 30 hostile requests, each refused with its kind and status before the inner
/// service sees anything: one row per request.
#[tokio::test]
async fn hostile_inputs_never_reach_the_inner_service() {
    let good = sign(BODY, SECRET);
    let claims = dt_claims(BODY, NOW).to_string();
    let (head, rest) = good.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let other_token = sign(b"another body", SECRET);
    let other_signature = other_token.rsplit_once('.').unwrap().1;
    let huge: &'static [u8] = Box::leak(vec![b' '; 5000].into_boxed_slice());
    let bad = StatusCode::BAD_REQUEST;

    let two_headers = {
        let mut request = post(Some(&good), BODY);
        request
            .headers_mut()
            .append("x-dt-signature", good.parse().unwrap());
        request
    };
    let non_ascii = {
        let mut request = post(None, BODY);
        let mut value = good.clone().into_bytes();
        value[10] = 0xe9;
        request.headers_mut().insert(
            "x-dt-signature",
            http::HeaderValue::from_bytes(&value).unwrap(),
        );
        request
    };

    #[rustfmt::skip]
    let rows: Vec<(&str, Request<Full<Bytes>>, ErrorKind, StatusCode)> = vec![
        ("no header", post(None, BODY), ErrorKind::MissingHeader, bad),
        ("two headers", two_headers, ErrorKind::DuplicateHeader, bad),
        ("huge header", post(Some(&"a".repeat(9000)), BODY), ErrorKind::HeaderTooLarge, bad),
        ("non-ascii header", non_ascii, ErrorKind::InvalidHeader, bad),
        ("empty header", post(Some(""), BODY), ErrorKind::InvalidHeader, bad),
        ("bearer prefix", post(Some(&format!("Bearer {good}")), BODY), ErrorKind::InvalidHeader, bad),
        ("two parts", post(Some(&format!("{head}.{payload}")), BODY), ErrorKind::MalformedToken, bad),
        ("four parts", post(Some(&format!("{good}.{signature}")), BODY), ErrorKind::MalformedToken, bad),
        ("header not base64", post(Some(&format!("!!.{payload}.{signature}")), BODY), ErrorKind::MalformedToken, bad),
        ("header not an object", post(Some(&mint_raw("\"HS256\"", &claims, SECRET)), BODY), ErrorKind::MalformedToken, bad),
        ("alg none, no signature", post(Some(&format!("{}.{payload}.", b64(r#"{"alg":"none","typ":"JWT"}"#))), BODY), ErrorKind::UnsupportedAlgorithm, bad),
        ("alg none, signed", post(Some(&mint_raw(r#"{"alg":"none"}"#, &claims, SECRET)), BODY), ErrorKind::UnsupportedAlgorithm, bad),
        ("alg HS384", post(Some(&mint_raw(r#"{"alg":"HS384","typ":"JWT"}"#, &claims, SECRET)), BODY), ErrorKind::UnsupportedAlgorithm, bad),
        ("alg HS512", post(Some(&mint_raw(r#"{"alg":"HS512","typ":"JWT"}"#, &claims, SECRET)), BODY), ErrorKind::UnsupportedAlgorithm, bad),
        ("alg RS256", post(Some(&mint_raw(r#"{"alg":"RS256","typ":"JWT"}"#, &claims, SECRET)), BODY), ErrorKind::UnsupportedAlgorithm, bad),
        ("alg with a space", post(Some(&mint_raw(r#"{"alg":"HS256 "}"#, &claims, SECRET)), BODY), ErrorKind::UnsupportedAlgorithm, bad),
        ("alg swapped, HS256 signature kept", post(Some(&format!("{}.{payload}.{signature}", b64(r#"{"alg":"HS512","typ":"JWT"}"#))), BODY), ErrorKind::UnsupportedAlgorithm, bad),
        ("crit extension", post(Some(&mint_raw(r#"{"alg":"HS256","crit":["exp"]}"#, &claims, SECRET)), BODY), ErrorKind::UnsupportedAlgorithm, bad),
        ("wrong secret", post(Some(&sign(BODY, "guess")), BODY), ErrorKind::InvalidSignature, bad),
        ("signature of another token", post(Some(&format!("{head}.{payload}.{other_signature}")), BODY), ErrorKind::InvalidSignature, bad),
        ("empty signature", post(Some(&format!("{head}.{payload}.")), BODY), ErrorKind::InvalidSignature, bad),
        ("claims not JSON", post(Some(&mint_raw(DT_HEADER, "{not json", SECRET)), BODY), ErrorKind::MalformedClaims, bad),
        ("claims an array", post(Some(&mint_raw(DT_HEADER, "[]", SECRET)), BODY), ErrorKind::MalformedClaims, bad),
        ("exp as a string", post(Some(&with_claims(|c| { c.insert("exp".into(), "1700003600".into()); })), BODY), ErrorKind::MalformedClaims, bad),
        ("exp twice", post(Some(&mint_raw(DT_HEADER, &claims.replacen('{', &format!("{{\"exp\":{},", NOW + 3600), 1), SECRET)), BODY), ErrorKind::MalformedClaims, bad),
        ("no exp", post(Some(&with_claims(|c| { c.remove("exp"); })), BODY), ErrorKind::MissingExpiry, bad),
        ("expired", post(Some(&sign_with(dt_options().exp(NOW - 61))), BODY), ErrorKind::Expired, bad),
        ("issued in the future", post(Some(&sign_with(dt_options().iat(NOW + 3600).exp(NOW + 3600))), BODY), ErrorKind::IssuedInFuture, bad),
        ("no checksum", post(Some(&with_claims(|c| { c.remove("checksum"); c.remove("checksum_sha256"); })), BODY), ErrorKind::MissingChecksum, bad),
        ("checksum not hex", post(Some(&with_claims(|c| { c.insert("checksum_sha256".into(), "x".repeat(64).into()); })), BODY), ErrorKind::MalformedChecksum, bad),
        ("checksum of another body", post(Some(&other_token), BODY), ErrorKind::ChecksumMismatch, bad),
        ("right sha1, wrong sha256", post(Some(&with_claims(|c| { c.insert("checksum_sha256".into(), hex::encode([0u8; 32]).into()); })), BODY), ErrorKind::ChecksumMismatch, bad),
        ("body with a byte appended", post(Some(&good), br#"{"event":{"eventId":"c82gg9catj3vmh4248og","eventType":"touch"},"labels":{}} "#), ErrorKind::ChecksumMismatch, bad),
        ("empty body", post(Some(&good), b""), ErrorKind::ChecksumMismatch, bad),
        ("content-length over the limit", post(Some(&good), huge), ErrorKind::BodyTooLarge, StatusCode::PAYLOAD_TOO_LARGE),
    ];
    assert!(rows.len() >= 30, "only {} rows", rows.len());

    for (name, request, kind, status) in rows {
        let (recorder, layer) = limited(4096);
        let response = call(&layer.layer(recorder.clone()), request).await;
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; charset=utf-8",
            "{name}"
        );
        let (got_status, got_kind, text) = outcome(response).await;
        assert_eq!(got_kind, Some(kind), "{name}");
        assert_eq!(got_status, status, "{name}");
        assert_eq!(text, kind.as_str(), "{name}");
        assert_eq!(recorder.calls(), 0, "{name}: the inner service was called");
    }
}

#[tokio::test]
async fn rejection_texts_name_the_reason() {
    let expected = [
        (post(None, BODY), "missing X-Dt-Signature header"),
        (post(Some(&sign(b"x", SECRET)), BODY), "checksum mismatch"),
        (
            post(Some(&sign_with(dt_options().exp(NOW - 60))), BODY),
            "token expired",
        ),
        (
            post(Some(&sign(BODY, "nope")), BODY),
            "invalid token signature",
        ),
    ];
    for (request, text) in expected {
        let recorder = Recorder::default();
        let layer = DtSignatureLayer::new(SECRET).clock(at(NOW));
        let response = call(&layer.layer(recorder.clone()), request).await;
        let (status, _, body) = outcome(response).await;
        assert_eq!((status, body.as_str()), (StatusCode::BAD_REQUEST, text));
        assert_eq!(recorder.calls(), 0);
    }
}

#[tokio::test]
async fn chunked_body_without_content_length_is_forwarded_exactly() {
    let recorder = Recorder::default();
    let layer = DtSignatureLayer::new(SECRET).clock(at(NOW));
    let chunks = BODY.chunks(10).map(Bytes::copy_from_slice).collect();
    let request = Request::post("/")
        .header("x-dt-signature", sign(BODY, SECRET))
        .header("transfer-encoding", "chunked")
        .body(chunked(chunks, None))
        .unwrap();
    let response = call(&layer.layer(recorder.clone()), request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = recorder.take();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, BODY);
    assert_eq!(
        seen[0].parts.headers["content-length"],
        BODY.len().to_string().as_str()
    );
    assert!(seen[0].parts.headers.get("transfer-encoding").is_none());
}

/// A recorder, and a layer for [`SECRET`] at [`NOW`] that takes bodies of `max` bytes at
/// most.
fn limited(max: usize) -> (Recorder, DtSignatureLayer) {
    let layer = DtSignatureLayer::new(SECRET)
        .clock(at(NOW))
        .max_body_size(max);
    (Recorder::default(), layer)
}

#[tokio::test]
async fn over_limit_body_without_content_length_is_refused_as_it_streams() {
    let (recorder, layer) = limited(64);
    let big = vec![b'a'; 1000];
    let chunks: Vec<Bytes> = big.chunks(32).map(Bytes::copy_from_slice).collect();
    let (body, polls) = Counted::new(chunked(chunks, None));
    let request = Request::post("/")
        .header("x-dt-signature", sign(&big, SECRET))
        .body(body)
        .unwrap();
    let response = call(&layer.layer(recorder.clone()), request).await;
    let (status, kind, text) = outcome(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(kind, Some(ErrorKind::BodyTooLarge));
    assert_eq!(text, "request body too large");
    assert_eq!(recorder.calls(), 0);
    // 32 + 32 fits, the third chunk passes the limit: refused there, not at the end.
    assert_eq!(polls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn over_limit_content_length_is_refused_before_the_body_is_read() {
    let (recorder, layer) = limited(100);
    let big = Bytes::from(vec![b'a'; 101]);
    let (body, polls) = Counted::new(Full::new(big.clone()));
    let request = Request::post("/")
        .header("x-dt-signature", sign(&big, SECRET))
        .header("content-length", "101")
        .body(body)
        .unwrap();
    let response = call(&layer.layer(recorder.clone()), request).await;
    let (status, kind, _) = outcome(response).await;
    assert_eq!(
        (status, kind),
        (StatusCode::PAYLOAD_TOO_LARGE, Some(ErrorKind::BodyTooLarge))
    );
    assert_eq!(polls.load(Ordering::SeqCst), 0);
    assert_eq!(recorder.calls(), 0);

    // Exactly at the limit passes.
    let exact = Bytes::from(vec![b'a'; 100]);
    let request = Request::post("/")
        .header("x-dt-signature", sign(&exact, SECRET))
        .body(Full::new(exact.clone()))
        .unwrap();
    let response = call(&layer.layer(recorder.clone()), request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(recorder.take()[0].body, exact);
}

#[tokio::test]
async fn forged_or_expired_token_is_refused_without_polling_a_1mib_body() {
    let body = Bytes::from(vec![b'x'; 1024 * 1024]);
    let forged = sign(&body, "attacker");
    let expired = Signer::new(SECRET).sign_with(&body, &dt_options().iat(NOW - 7200));
    for (token, kind) in [
        (forged, ErrorKind::InvalidSignature),
        (expired, ErrorKind::Expired),
    ] {
        let recorder = Recorder::default();
        let layer = DtSignatureLayer::new(SECRET).clock(at(NOW));
        let (counted, polls) = Counted::new(chunked(vec![body.clone()], None));
        let request = Request::post("/")
            .header("x-dt-signature", token)
            .body(counted)
            .unwrap();
        let response = call(&layer.layer(recorder.clone()), request).await;
        let (status, got, _) = outcome(response).await;
        assert_eq!((status, got), (StatusCode::BAD_REQUEST, Some(kind)));
        assert_eq!(polls.load(Ordering::SeqCst), 0, "the body was polled");
        assert_eq!(recorder.calls(), 0);
    }
}

#[tokio::test]
async fn body_read_error_is_a_400_not_a_service_error() {
    let recorder = Recorder::default();
    let layer = DtSignatureLayer::new(SECRET).clock(at(NOW));
    let error = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away");
    let request = Request::post("/")
        .header("x-dt-signature", sign(BODY, SECRET))
        .body(chunked(vec![Bytes::from_static(&BODY[..10])], Some(error)))
        .unwrap();
    let response = call(&layer.layer(recorder.clone()), request).await;
    let source_kept = response
        .extensions()
        .get::<DtSignatureError>()
        .and_then(|e| std::error::Error::source(e).map(|s| s.to_string()));
    assert_eq!(source_kept.as_deref(), Some("client went away"));
    let (status, kind, text) = outcome(response).await;
    assert_eq!(
        (status, kind),
        (StatusCode::BAD_REQUEST, Some(ErrorKind::BodyRead))
    );
    assert_eq!(text, "failed to read request body");
    assert_eq!(recorder.calls(), 0);
}

#[tokio::test]
async fn secret_rotation_accepts_old_and_new_but_not_a_third() {
    let layer = DtSignatureLayer::new("old secret")
        .add_secret("new secret")
        .clock(at(NOW));
    for (secret, index) in [
        ("old secret", Some(0)),
        ("new secret", Some(1)),
        ("third secret", None),
    ] {
        let recorder = Recorder::default();
        let request = post(Some(&sign(BODY, secret)), BODY);
        let response = call(&layer.layer(recorder.clone()), request).await;
        match index {
            Some(index) => {
                assert_eq!(response.status(), StatusCode::OK, "{secret}");
                let seen = recorder.take();
                assert_eq!(seen[0].body, BODY);
                assert_eq!(
                    seen[0]
                        .parts
                        .extensions
                        .get::<DtClaims>()
                        .unwrap()
                        .secret_index(),
                    Some(index)
                );
            }
            None => {
                let (status, kind, _) = outcome(response).await;
                assert_eq!(
                    (status, kind),
                    (StatusCode::BAD_REQUEST, Some(ErrorKind::InvalidSignature))
                );
                assert_eq!(recorder.calls(), 0);
            }
        }
    }
}

#[tokio::test]
async fn custom_rejection_replaces_the_response_and_keeps_the_error() {
    let recorder = Recorder::default();
    let layer =
        DtSignatureLayer::new(SECRET)
            .clock(at(NOW))
            .with_rejection(|error: &DtSignatureError| {
                Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .body(Full::new(Bytes::from(format!("nope: {error}"))))
                    .unwrap()
            });
    let response = call(
        &layer.layer(recorder.clone()),
        post(Some(&sign(BODY, "wrong")), BODY),
    )
    .await;
    let (status, kind, text) = outcome(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(kind, Some(ErrorKind::InvalidSignature));
    assert_eq!(text, "nope: invalid token signature");
    assert_eq!(recorder.calls(), 0);
}

#[test]
fn empty_secret_is_refused() {
    assert!(DtSignatureLayer::try_new("").is_err());
    assert!(DtSignatureLayer::try_new(b"".as_slice()).is_err());
    assert!(DtSignatureLayer::new("x")
        .try_add_secret(String::new())
        .is_err());
    assert!(std::panic::catch_unwind(|| DtSignatureLayer::new(String::new())).is_err());
    assert!(DtSignatureLayer::try_new(vec![1u8, 2, 3]).is_ok());
}

#[test]
fn layer_debug_redacts_the_secret() {
    let layer = DtSignatureLayer::new("super-secret-value");
    let debug = format!("{layer:?}");
    assert!(!debug.contains("super-secret-value"), "{debug}");
    assert!(debug.contains("redacted"), "{debug}");
}
