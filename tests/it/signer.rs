//! `Signer` (feature `test-util`) against DT's real tokens and against `DtSignatureLayer`.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use tower::Layer;

use tower_dt_signature::consts::X_DT_SIGNATURE;
use tower_dt_signature::events::{EventType, Payload};
use tower_dt_signature::testing::{SignOptions, Signer};
use tower_dt_signature::{ConfigError, DtSignature, DtSignatureLayer, ErrorKind, Verifier};

use crate::support::{at, call, outcome, token_parts, Recorder, Vector, NOW};

fn claims_json(token: &str) -> serde_json::Value {
    serde_json::from_str(&token_parts(token).1).unwrap()
}

#[test]
fn reproduces_dts_real_token_byte_for_byte() {
    let v = Vector::sha256();
    let options = SignOptions::new().iat(1_644_496_933);
    let token = Signer::new(&v.secret).sign_with(&v.body, &options.jti("c82gg99hga35jc2afkeg"));
    assert_eq!(token, v.token);
    assert!(token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
}

#[test]
fn reproduces_dts_legacy_sha1_only_token_byte_for_byte() {
    let v = Vector::sha1_only();
    let options = SignOptions::new().iat(1_641_980_472).sha1_only(true);
    let token = Signer::new(&v.secret).sign_with(&v.body, &options.jti("c7fa4e77gf87eif6j3tg"));
    assert_eq!(token, v.token);
}

#[test]
fn header_and_claims_have_dts_exact_layout() {
    let token = Signer::new("s").sign_with(
        b"{}",
        &SignOptions::new()
            .iat(1_700_000_000)
            .jti("c82gg99hga35jc2afkeg"),
    );
    let (header, claims) = token_parts(&token);
    assert_eq!(header, r#"{"alg":"HS256","typ":"JWT"}"#);
    // SHA-1 and SHA-256 of "{}", exp = iat + 3600, in DT's key order.
    assert_eq!(
        claims,
        r#"{"checksum":"bf21a9e8fbc5a3846fb05b4fa0859e0917b2202f","checksum_sha256":"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","exp":1700003600,"iat":1700000000,"jti":"c82gg99hga35jc2afkeg"}"#
    );
}

#[test]
fn defaults_are_now_an_hour_and_a_fresh_id() {
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signer = Signer::new("s");
    let (a, b) = (signer.sign(b"x"), signer.sign(b"x"));
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (ca, cb) = (claims_json(&a), claims_json(&b));
    let iat = ca["iat"].as_u64().unwrap();
    assert!((before..=after).contains(&iat));
    assert_eq!(ca["exp"].as_u64().unwrap(), iat + 3600);
    let (ja, jb) = (ca["jti"].as_str().unwrap(), cb["jti"].as_str().unwrap());
    assert_ne!(ja, jb);
    for jti in [ja, jb] {
        assert_eq!(jti.len(), 20);
        assert!(
            jti.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'v').contains(&c)),
            "{jti}"
        );
    }
}

#[test]
fn exp_option_is_used_as_is() {
    let token = Signer::new("s").sign_with(b"x", &SignOptions::new().iat(100).exp(150));
    let claims = claims_json(&token);
    assert_eq!(
        (claims["iat"].as_u64(), claims["exp"].as_u64()),
        (Some(100), Some(150))
    );
}

#[test]
fn empty_secret_is_refused() {
    assert_eq!(Signer::try_new("").unwrap_err(), ConfigError::EmptySecret);
    assert!(std::panic::catch_unwind(|| Signer::new(b"")).is_err());
}

#[test]
fn debug_does_not_show_the_secret() {
    let shown = format!("{:?}", Signer::new("hunter2-secret"));
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("redacted"));
}

/// `layer` as strict as it goes (SHA-256 required, no leeway) over a fresh recorder.
fn strict(layer: DtSignatureLayer) -> (Recorder, DtSignature<Recorder>) {
    let recorder = Recorder::default();
    let layer = layer.require_sha256(true).leeway(std::time::Duration::ZERO);
    (recorder.clone(), layer.layer(recorder))
}

#[tokio::test]
async fn signed_requests_pass_the_layer_for_every_event_type() {
    let signer = Signer::new("test-secret");
    let (recorder, service) = strict(DtSignatureLayer::new("test-secret"));
    for event_type in EventType::ALL {
        let body =
            serde_json::to_vec(&Payload::sample(&event_type, SystemTime::now()).unwrap()).unwrap();
        let request = signer.request::<Full<Bytes>>("/dt", body.clone()).unwrap();
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(request.uri(), "/dt");
        assert_eq!(request.headers()["content-type"], "application/json");
        assert_eq!(
            request.headers()["content-length"],
            body.len().to_string().as_str()
        );
        assert!(request.headers().contains_key(X_DT_SIGNATURE));
        let (status, kind, _) = outcome(call(&service, request).await).await;
        assert_eq!((status, kind), (http::StatusCode::OK, None), "{event_type}");
        let seen = recorder.take();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].body, body);
    }
}

#[tokio::test]
async fn layer_refuses_what_the_signer_was_told_to_get_wrong() {
    let signer = Signer::new("test-secret");
    let (recorder, service) = strict(DtSignatureLayer::new("test-secret").clock(at(NOW)));
    let body = Bytes::from_static(br#"{"event":{}}"#);
    let ok = SignOptions::new().iat(NOW);
    let cases = [
        ("valid", Signer::new("test-secret"), ok.clone(), None),
        (
            "other secret",
            Signer::new("other"),
            ok.clone(),
            Some(ErrorKind::InvalidSignature),
        ),
        (
            "expired",
            signer.clone(),
            SignOptions::new().iat(NOW - 3600),
            Some(ErrorKind::Expired),
        ),
        (
            "from the future",
            signer.clone(),
            SignOptions::new().iat(NOW + 600),
            Some(ErrorKind::IssuedInFuture),
        ),
        (
            "sha1 only",
            signer.clone(),
            ok.clone().sha1_only(true),
            Some(ErrorKind::MissingSha256),
        ),
    ];
    for (what, signer, options, expected) in cases {
        let request = signer
            .request_with::<Full<Bytes>>("/", body.clone(), &options)
            .unwrap();
        let (_, kind, _) = outcome(call(&service, request).await).await;
        assert_eq!(kind, expected, "{what}");
        assert_eq!(
            recorder.take().len(),
            usize::from(expected.is_none()),
            "{what}"
        );
    }
}

#[test]
fn legacy_tokens_verify_without_require_sha256() {
    let body = b"{}";
    let token = Signer::new("k").sign_with(body, &SignOptions::new().iat(NOW).sha1_only(true));
    let claims = Verifier::new("k")
        .clock(at(NOW))
        .verify_token(&token, body)
        .unwrap();
    assert!(claims.sha1_verified());
    assert!(!claims.sha256_verified());
}

#[test]
fn invalid_uri_is_an_error() {
    assert!(Signer::new("k")
        .request::<Full<Bytes>>("not a uri", "x")
        .is_err());
}
