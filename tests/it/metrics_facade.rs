//! Feature `metrics`: outcomes, body sizes and verification times through the `metrics`
//! facade, read back with metrics-util's DebuggingRecorder.

use std::collections::HashMap;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tower::Layer;

use tower_dt_signature::gateway::StaticSecrets;
use tower_dt_signature::{DtSignatureLayer, Verifier};

use crate::support::*;

const BODY: &[u8] = br#"{"event":{"eventId":"c82gg9catj3vmh4248og","eventType":"touch"}}"#;

fn request(uri: &str, token: &str, body: &[u8]) -> Request<Full<Bytes>> {
    Request::post(uri)
        .header("x-dt-signature", token)
        .header("content-length", body.len())
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap()
}

/// Run `test` on a current-thread runtime with `recorder` as this thread's recorder, so
/// tests running in parallel do not see each other's metrics.
pub(crate) fn with_recorder<F: std::future::Future<Output = ()>>(
    test: impl FnOnce() -> F,
) -> Snapshotter {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || runtime.block_on(test()));
    snapshotter
}

struct Seen {
    /// `(outcome, kind)` -> count.
    requests: HashMap<(String, String), u64>,
    body_bytes: Vec<f64>,
    verification_seconds: Vec<f64>,
}

fn read(snapshotter: &Snapshotter) -> Seen {
    let mut seen = Seen {
        requests: HashMap::new(),
        body_bytes: Vec::new(),
        verification_seconds: Vec::new(),
    };
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let label = |name: &str| {
            key.labels()
                .find(|label| label.key() == name)
                .map(|label| label.value().to_owned())
                .unwrap_or_default()
        };
        match (key.name(), value) {
            ("dt_signature_requests_total", DebugValue::Counter(count)) => {
                seen.requests
                    .insert((label("outcome"), label("kind")), count);
            }
            ("dt_signature_body_bytes", DebugValue::Histogram(values)) => {
                seen.body_bytes = values.into_iter().map(|v| v.0).collect();
            }
            ("dt_signature_verification_seconds", DebugValue::Histogram(values)) => {
                seen.verification_seconds = values.into_iter().map(|v| v.0).collect();
            }
            (name, value) => panic!("unexpected metric {name}: {value:?}"),
        }
    }
    seen
}

/// `(outcome, kind, count)` rows as [`Seen::requests`] holds them.
fn counts(rows: &[(&str, &str, u64)]) -> HashMap<(String, String), u64> {
    rows.iter()
        .map(|(outcome, kind, n)| ((outcome.to_string(), kind.to_string()), *n))
        .collect()
}

#[test]
fn outcomes_by_kind_body_sizes_and_verification_times() {
    let tampered = br#"{"event":{"eventId":"c82gg9catj3vmh4248og","eventType":"tauch"}}"#;
    let snapshotter = with_recorder(|| async move {
        let recorder = Recorder::default();
        let enforce = DtSignatureLayer::new(SECRET)
            .clock(at(NOW))
            .max_body_size(256)
            .layer(recorder.clone());
        let report = DtSignatureLayer::new(SECRET)
            .clock(at(NOW))
            .report_only(true)
            .layer(recorder.clone());
        let good = sign(BODY, SECRET);

        for _ in 0..2 {
            let response = call(&enforce, request("/", &good, BODY)).await;
            assert_eq!(response.status(), StatusCode::OK);
        }
        let refused = [
            request("/", &sign(BODY, "forged"), BODY),
            request("/", &good, tampered),
            request("/", &sign(&[b'x'; 300], SECRET), &[b'x'; 300]),
        ];
        for request in refused {
            let response = call(&enforce, request).await;
            assert!(response.status().is_client_error());
        }
        let response = call(&report, request("/", &good, tampered)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(recorder.calls(), 3);
    });

    let seen = read(&snapshotter);
    let expected = counts(&[
        ("accepted", "none", 2),
        ("rejected", "invalid_signature", 1),
        ("rejected", "checksum_mismatch", 1),
        ("rejected", "body_too_large", 1),
        ("reported", "checksum_mismatch", 1),
    ]);
    assert_eq!(seen.requests, expected);
    // Only bodies read to their end: two accepted, the tampered one refused and the one
    // reported; not the forged token's (refused before its body) nor the one over the limit.
    let len = BODY.len() as f64;
    assert_eq!(seen.body_bytes, vec![len; 4]);
    // Every request whose token was checked: five; the one whose declared length is over
    // the limit is refused before its token is read.
    assert_eq!(seen.verification_seconds.len(), 5);
    assert!(seen.verification_seconds.iter().all(|s| *s >= 0.0));
}

#[test]
fn the_gateway_counts_unknown_tenants() {
    let snapshotter = with_recorder(|| async move {
        let recorder = Recorder::default();
        let secrets =
            StaticSecrets::by_path_segment(1).tenant("a", Verifier::new(SECRET).clock(at(NOW)));
        let gateway = DtSignatureLayer::gateway(secrets).layer(recorder.clone());
        let good = sign(BODY, SECRET);
        let ok = call(&gateway, request("/dt/a", &good, BODY)).await;
        assert_eq!(ok.status(), StatusCode::OK);
        for uri in ["/dt/b", "/dt/c"] {
            let response = call(&gateway, request(uri, &good, BODY)).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        }
        assert_eq!(recorder.calls(), 1);
    });
    let seen = read(&snapshotter);
    let expected = counts(&[("accepted", "none", 1), ("rejected", "unknown_tenant", 2)]);
    assert_eq!(seen.requests, expected);
    assert_eq!(seen.body_bytes, vec![BODY.len() as f64]);
}

/// Issue 23: the signing lag of an accepted `DT-Asymmetric-Signature` request is the
/// layer's clock minus the token's `iat` in whole seconds; an `iat` ahead within the
/// leeway gives 0; a refused token and an HMAC-only request record none.
#[cfg(feature = "asymmetric")]
#[test]
fn the_signing_lag_is_read_on_the_layers_clock() {
    use std::time::{Duration, UNIX_EPOCH};
    use tower_dt_signature::testing::{AsymmetricSignOptions, AsymmetricSigner};

    let signer = AsymmetricSigner::generate();
    let snapshotter = with_recorder(|| async {
        let verifier = Verifier::asymmetric(signer.dt_keys(), signer.org_id());
        let layer = DtSignatureLayer::from(verifier)
            .clock(|| UNIX_EPOCH + Duration::from_millis(NOW * 1000 + 900));
        let service = layer.layer(Recorder::default());
        for (iat, status) in [
            (NOW - 42, StatusCode::OK),
            (NOW + 30, StatusCode::OK),
            (NOW - 3600, StatusCode::BAD_REQUEST),
        ] {
            let token = signer.sign_with(BODY, &AsymmetricSignOptions::new().iat(iat));
            let request = Request::post("/")
                .header("dt-asymmetric-signature", token)
                .body(Full::new(Bytes::from_static(BODY)))
                .unwrap();
            assert_eq!(call(&service, request).await.status(), status, "iat {iat}");
        }
    });
    let mut lags = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        if let ("dt_signature_signing_lag_seconds", DebugValue::Histogram(values)) =
            (key.key().name(), value)
        {
            lags = values.into_iter().map(|v| v.0).collect();
        }
    }
    assert_eq!(lags, [42.0, 0.0]);
}
