//! The store's counters through the `metrics` facade, with a debugging recorder, on a real
//! SQLite file.

mod common;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tower::Layer;
use tower_dt_store::{DtStore, SqliteStore, StoreOutcome};

use common::*;

#[test]
fn outcomes_and_differing_copies_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open(dir.path().join("events.db"))
                .await
                .unwrap();
            let service = stack(DtStore::new(store));
            let first = event("evt-m", "dev1", "touch", "2024-01-01T00:00:01Z");
            let other = event("evt-m", "dev2", "touch", "2024-01-01T00:00:01Z");
            let older = event("evt-o", "dev1", "touch", "2024-01-01T00:00:00Z");
            assert_eq!(
                send(&service, signed(&first)).await.outcome(),
                Some(StoreOutcome::Stored)
            );
            assert_eq!(
                send(&service, signed(&first)).await.outcome(),
                Some(StoreOutcome::Duplicate)
            );
            assert_eq!(
                send(&service, signed(&other)).await.outcome(),
                Some(StoreOutcome::Duplicate)
            );
            assert_eq!(
                send(&service, signed(&older)).await.outcome(),
                Some(StoreOutcome::StoredNotLatest)
            );
        })
    });
    let mut counts = std::collections::BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let DebugValue::Counter(count) = value else {
            continue;
        };
        // The store's own (a workspace build also turns on the layer's metrics).
        if !key.key().name().starts_with("dt_store_") {
            continue;
        }
        let labels: Vec<String> = key
            .key()
            .labels()
            .map(|label| format!("{}={}", label.key(), label.value()))
            .collect();
        counts.insert(format!("{}{:?}", key.key().name(), labels), count);
    }
    let expected: std::collections::BTreeMap<String, u64> = [
        ("dt_store_duplicates_with_other_bytes_total[]", 1),
        (r#"dt_store_requests_total["outcome=duplicate"]"#, 2),
        (r#"dt_store_requests_total["outcome=stored"]"#, 1),
        (r#"dt_store_requests_total["outcome=stored_not_latest"]"#, 1),
    ]
    .into_iter()
    .map(|(name, count)| (name.to_owned(), count))
    .collect();
    assert_eq!(counts, expected);
}

/// Every metric of a snapshot: `name{labels}` -> its value.
fn values(snapshotter: &metrics_util::debugging::Snapshotter) -> Vec<(String, DebugValue)> {
    let mut values: Vec<(String, DebugValue)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let labels: Vec<String> = key
                .key()
                .labels()
                .map(|label| format!("{}={}", label.key(), label.value()))
                .collect();
            (format!("{}{labels:?}", key.key().name()), value)
        })
        .collect();
    values.sort_by(|a, b| a.0.cmp(&b.0));
    values
}

fn histogram(values: &[(String, DebugValue)], name: &str) -> Vec<f64> {
    match values.iter().find(|(key, _)| key == name) {
        Some((_, DebugValue::Histogram(values))) => values.iter().map(|v| v.0).collect(),
        other => panic!("{name}: {other:?}"),
    }
}

fn gauge(values: &[(String, DebugValue)], name: &str) -> f64 {
    match values.iter().find(|(key, _)| key == name) {
        Some((_, DebugValue::Gauge(value))) => value.0,
        other => panic!("{name}: {other:?}"),
    }
}

fn run(test: impl std::future::Future<Output = ()>) -> Vec<(String, DebugValue)> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || runtime.block_on(test));
    values(&snapshotter)
}

/// 2024-01-01T00:01:00.250Z, the store's clock in these tests.
fn store_now() -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_704_067_260_250)
}

/// Issue 23: the event age is the store's clock minus `event.timestamp`, for every
/// durable answer; an event from the future is recorded as 0 and counted; a refused
/// request and a body that is no event record no age. The last accepted time is the
/// store's clock, per tenant.
#[test]
fn event_ages_and_the_last_accepted_time_read_the_stores_clock() {
    use tower_dt_signature::gateway::StaticSecrets;
    use tower_dt_signature::testing::Signer;
    use tower_dt_signature::Verifier;

    let values = run(async {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("events.db"))
            .await
            .unwrap();
        let secrets = StaticSecrets::by_path_segment(1)
            .tenant("warehouse", Verifier::new("warehouse secret"))
            .tenant("office", Verifier::new("office secret"));
        let service = tower_dt_signature::DtSignatureLayer::gateway(secrets)
            .layer(DtStore::new(store).clock(store_now));
        let sends = [
            (
                "warehouse",
                "evt-1",
                "2024-01-01T00:00:00Z",
                Some(StoreOutcome::Stored),
            ),
            (
                "warehouse",
                "evt-1",
                "2024-01-01T00:00:00Z",
                Some(StoreOutcome::Duplicate),
            ),
            (
                "office",
                "evt-2",
                "2024-01-01T00:01:00Z",
                Some(StoreOutcome::Stored),
            ),
            // The sender's clock 10 s ahead of the store's.
            (
                "office",
                "evt-3",
                "2024-01-01T00:01:10Z",
                Some(StoreOutcome::Stored),
            ),
        ];
        for (tenant, id, timestamp, outcome) in sends {
            let body = event(id, "dev1", "touch", timestamp);
            let request = Signer::new(format!("{tenant} secret"))
                .request::<http_body_util::Full<bytes::Bytes>>(&format!("/dt/{tenant}"), body)
                .unwrap();
            assert_eq!(send(&service, request).await.outcome(), outcome, "{id}");
        }
        // Not an event: stored, no age. Refused: neither.
        let request = Signer::new("office secret")
            .request::<http_body_util::Full<bytes::Bytes>>(
                "/dt/office",
                bytes::Bytes::from_static(b"not json"),
            )
            .unwrap();
        assert_eq!(
            send(&service, request).await.outcome(),
            Some(StoreOutcome::NotAnEvent)
        );
        let request = Signer::new("forged")
            .request::<http_body_util::Full<bytes::Bytes>>(
                "/dt/office",
                event("evt-4", "dev1", "touch", "2023-01-01T00:00:00Z"),
            )
            .unwrap();
        assert_eq!(send(&service, request).await.outcome(), None);
    });
    assert_eq!(
        histogram(&values, "dt_store_event_age_seconds[]"),
        [60.25, 60.25, 0.25, 0.0]
    );
    let ahead = values
        .iter()
        .find(|(key, _)| key == "dt_store_event_from_future_total[]");
    assert!(
        matches!(ahead, Some((_, DebugValue::Counter(1)))),
        "{ahead:?}"
    );
    let now = 1_704_067_260.25;
    for tenant in ["office", "warehouse"] {
        let name = format!(r#"dt_store_last_accepted_timestamp_seconds["tenant={tenant}"]"#);
        assert_eq!(gauge(&values, &name), now, "{tenant}");
    }
    let gauges: Vec<&String> = values
        .iter()
        .filter(|(key, _)| key.starts_with("dt_store_last_accepted"))
        .map(|(key, _)| key)
        .collect();
    assert_eq!(gauges.len(), 2, "{gauges:?}");
}

/// Without the tenant label, one series for all tenants, under `-`.
#[test]
fn the_tenant_label_can_be_one_fixed_value() {
    let values = run(async {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("events.db"))
            .await
            .unwrap();
        let service = stack(DtStore::new(store).clock(store_now).tenant_label(false));
        let body = event("evt-1", "dev1", "touch", "2024-01-01T00:01:00Z");
        assert_eq!(
            send(&service, signed(&body)).await.outcome(),
            Some(StoreOutcome::Stored)
        );
    });
    let gauges: Vec<&String> = values
        .iter()
        .filter(|(key, _)| key.starts_with("dt_store_last_accepted"))
        .map(|(key, _)| key)
        .collect();
    assert_eq!(
        gauges,
        [r#"dt_store_last_accepted_timestamp_seconds["tenant=-"]"#]
    );
}
