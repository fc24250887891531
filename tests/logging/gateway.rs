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

/// A gateway whose decoy does an `hmac` tenant's work (a resolver of its own that names
/// none) warns once, at its first request for a tenant that reads
/// `DT-Asymmetric-Signature`, naming the fix (#24); an `hmac` tenant's requests and a
/// gateway whose resolver names a fitting decoy say nothing. No token in the log.
#[cfg(feature = "asymmetric")]
#[test]
fn an_hmac_decoy_before_an_es256_tenant_warns_once_naming_the_fix() {
    use tower_dt_signature::gateway::StaticSecrets;
    use tower_dt_signature::testing::AsymmetricSigner;

    const ORG: &str = "c0rg1d0000000000000a";
    let dt = AsymmetricSigner::generate().with_org_id(ORG);
    let keys = dt.dt_keys();
    let es_token = dt.sign(BODY);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let es_request = |uri: &str| {
        Request::post(uri)
            .header("dt-asymmetric-signature", &es_token)
            .body(Full::new(Bytes::from_static(BODY)))
            .unwrap()
    };
    let ((), log) = capture_logs(|| {
        runtime.block_on(async {
            let recorder = Recorder::default();
            let resolver_keys = keys.clone();
            let resolver = move |parts: &Parts| {
                let path = parts.uri.path().to_owned();
                let keys = resolver_keys.clone();
                async move {
                    Ok::<_, ResolveError>(match path.as_str() {
                        "/dt/es" => Some(Tenant::new("es", Verifier::asymmetric(keys, ORG))),
                        "/dt/hmac" => Some(Tenant::new(
                            "hmac",
                            Verifier::new(SECRET_VALUE).clock(at(NOW)),
                        )),
                        _ => None,
                    })
                }
            };
            let gateway = DtSignatureLayer::gateway(resolver).layer(recorder.clone());
            let hmac = sign(BODY, SECRET_VALUE);
            let response = call(&gateway, request("/dt/hmac", &hmac)).await;
            assert_eq!(response.status(), 200);
            for _ in 0..3 {
                let response = call(&gateway, es_request("/dt/es")).await;
                assert_eq!(response.status(), 200);
            }
            assert_eq!(recorder.calls(), 4);
            assert_eq!(&recorder.take()[1].body[..], BODY);
            // A `StaticSecrets` of ES256 tenants names its own decoy: no warning.
            let secrets =
                StaticSecrets::by_path_segment(1).tenant("es", Verifier::asymmetric(keys, ORG));
            let gateway = DtSignatureLayer::gateway(secrets).layer(recorder.clone());
            let response = call(&gateway, es_request("/dt/es")).await;
            assert_eq!(response.status(), 200);
        })
    });
    let warnings: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("unknown tenants do an hmac tenant's work"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains("WARN")
            && warnings[0].contains("ResolveSecrets::decoy")
            && warnings[0].contains("DtSignatureLayer::decoy")
            && warnings[0].contains("tenant_policy=asymmetric"),
        "{}",
        warnings[0]
    );
    assert_nothing_secret(&log, &[SECRET_VALUE], &[&es_token], BODY);
}
