//! The store's counters through the `metrics` facade, with a debugging recorder, on a real
//! SQLite file.

mod common;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
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
