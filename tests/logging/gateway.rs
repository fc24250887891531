//! What the gateway and report-only mode log: the reason, at the right level, and never
//! the secret, the token or a digest.

use bytes::Bytes;
use http::request::Parts;
use http::Request;
use http_body_util::Full;
use tower::{Layer, ServiceExt};

use tower_dt_signature::gateway::{ResolveError, Tenant};
use tower_dt_signature::{DtSignatureLayer, Verifier};

use crate::support::*;

const BODY: &[u8] = br#"{"event":{"eventId":"c82gg9catj3vmh4248og"}}"#;
const SECRET_VALUE: &str = "gateway-log-secret";

fn request(uri: &str, token: &str) -> Request<Full<Bytes>> {
    Request::post(uri)
        .header("x-dt-signature", token)
        .body(Full::new(Bytes::from_static(BODY)))
        .unwrap()
}

#[test]
fn report_only_unknown_tenants_and_resolver_failures_are_logged_without_secrets() {
    let forged = sign(BODY, "another-secret-value");
    let valid = sign(BODY, SECRET_VALUE);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let ((), log) = capture_logs(|| {
        runtime.block_on(async {
            let recorder = Recorder::default();
            let report = DtSignatureLayer::new(SECRET_VALUE)
                .clock(at(NOW))
                .report_only(true)
                .layer(recorder.clone());
            let response = report.oneshot(request("/", &forged)).await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(recorder.calls(), 1);

            let resolver = |parts: &Parts| {
                let path = parts.uri.path().to_owned();
                async move {
                    match path.as_str() {
                        "/dt/a" => Ok(Some(Tenant::new(
                            "a",
                            Verifier::new(SECRET_VALUE).clock(at(NOW)),
                        ))),
                        "/dt/down" => Err(ResolveError::new("connection refused by store")),
                        _ => Ok(None),
                    }
                }
            };
            let gateway = DtSignatureLayer::gateway(resolver).layer(recorder.clone());
            for (uri, status) in [("/dt/zz", 400), ("/dt/down", 503)] {
                let response = call(&gateway, request(uri, &valid)).await;
                assert_eq!(response.status(), status, "{uri}");
            }
            assert_eq!(recorder.calls(), 1);
        })
    });

    let line = |needle: &str| {
        log.lines()
            .find(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle}: {log}"))
    };
    let reported = line("forwarded (report-only)");
    assert!(reported.contains("DEBUG") && reported.contains("invalid token signature"));
    let unknown = line("reason=\"unknown tenant\"");
    assert!(
        unknown.contains("DEBUG") && unknown.contains("refused"),
        "{log}"
    );
    // Logged by kind: the resolver's own error text may hold anything (a connection
    // string, a secret), so it is never printed.
    let failed = line("secret resolver failed");
    assert!(
        failed.contains("WARN") && failed.contains("secret lookup failed"),
        "{log}"
    );
    assert!(!log.contains("connection refused by store"), "{log}");

    let secrets = [SECRET_VALUE, "another-secret-value"];
    assert_nothing_secret(&log, &secrets, &[&valid, &forged], BODY);
}
