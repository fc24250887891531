//! Each refusal is logged at debug level with its reason, and never with the secret, the
//! token or a digest.

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tower::Layer;

use tower_dt_signature::DtSignatureLayer;

use crate::support::*;

#[test]
fn refusals_are_logged_at_debug_without_secrets() {
    let body: &[u8] = br#"{"event":{"eventId":"c82gg9catj3vmh4248og"}}"#;
    let secret = "log-secret-value";
    let valid = sign(body, secret);
    let forged = sign(body, "another-secret-value");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let ((), log) = capture_logs(|| {
        runtime.block_on(async {
            for (token, payload) in [
                (forged.as_str(), body),
                (valid.as_str(), b"tampered body".as_slice()),
            ] {
                let recorder = Recorder::default();
                let layer = DtSignatureLayer::new(secret).clock(at(NOW));
                let request = Request::post("/")
                    .header("x-dt-signature", token)
                    .body(Full::new(Bytes::copy_from_slice(payload)))
                    .unwrap();
                let response = call(&layer.layer(recorder.clone()), request).await;
                assert_eq!(response.status(), 400);
                assert_eq!(recorder.calls(), 0);
            }
        })
    });

    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("refused Data Connector request"))
        .collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(lines.iter().all(|l| l.contains("DEBUG")), "{log}");
    assert!(lines[0].contains("invalid token signature"), "{log}");
    assert!(lines[1].contains("checksum mismatch"), "{log}");
    let secrets = [secret, "another-secret-value"];
    assert_nothing_secret(&log, &secrets, &[&valid, &forged], body);
}
