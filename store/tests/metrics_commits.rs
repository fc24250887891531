//! The store's commit times and batch sizes, recorded by SQLite's writer thread: a global
//! debugging recorder (a thread-local one does not reach that thread), so this binary
//! holds one test. Also the `failed` and `deadline` outcomes through a real store.

mod common;

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tower_dt_store::{AnswerBy, DtStore, SqliteStore, StoreOutcome};

use common::*;

#[tokio::test]
async fn commits_batches_failures_and_deadlines_are_recorded() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = std::sync::Arc::new(SqliteStore::open(&path).await.unwrap());
    let service = stack(DtStore::from_arc(store.clone()));
    // 40 requests at once, 20 events twice: the writer groups them in batches.
    let sends = (0..40).map(|n| {
        let (id, device) = (format!("evt-{}", n % 20), format!("dev{}", n % 20));
        let body = event(&id, &device, "touch", "2024-01-01T00:00:00Z");
        let service = service.clone();
        async move { send(&service, signed(&body)).await.outcome() }
    });
    let outcomes = futures_util::future::join_all(sends).await;
    assert!(outcomes
        .iter()
        .all(|outcome| outcome.is_some_and(StoreOutcome::is_durable)));
    // A deadline already passed when the write is queued: 503, `deadline`.
    let body = event("evt-late", "dev-late", "touch", "2024-01-01T00:00:00Z");
    let mut request = signed(&body);
    let past = tokio::time::Instant::now() - Duration::from_secs(1);
    request.extensions_mut().insert(AnswerBy(past));
    assert_eq!(
        send(&service, request).await.outcome(),
        Some(StoreOutcome::Deadline)
    );
    // Its write still commits: wait until a copy finds it.
    while send(&service, signed(&body)).await.outcome() != Some(StoreOutcome::Duplicate) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The file gone: `failed`, nothing committed.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let body = event("evt-gone", "dev-gone", "touch", "2024-01-01T00:00:00Z");
    assert!(matches!(
        send(&service, signed(&body)).await.outcome(),
        Some(StoreOutcome::Failed(_))
    ));

    let mut commits = Vec::new();
    let mut sizes = Vec::new();
    let mut counts = std::collections::BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let backend = key
            .labels()
            .find(|label| label.key() == "backend")
            .map(|label| label.value().to_owned());
        match (key.name(), value) {
            ("dt_store_commit_seconds", DebugValue::Histogram(values)) => {
                assert_eq!(backend.as_deref(), Some("sqlite"));
                commits = values;
            }
            ("dt_store_batch_size", DebugValue::Histogram(values)) => {
                assert_eq!(backend.as_deref(), Some("sqlite"));
                sizes = values.into_iter().map(|v| v.0).collect();
            }
            ("dt_store_requests_total", DebugValue::Counter(count)) => {
                let outcome = key.labels().next().unwrap().value().to_owned();
                counts.insert(outcome, count);
            }
            _ => {}
        }
    }
    // Every request written is in exactly one committed batch: the 40, the late one and
    // the copies that looked for it; the one whose file was gone in none.
    let written = 40 + 1 + (counts["duplicate"] - 20);
    assert_eq!(sizes.iter().sum::<f64>(), written as f64, "{sizes:?}");
    assert!(
        sizes.iter().all(|size| (1.0..=256.0).contains(size)),
        "{sizes:?}"
    );
    assert_eq!(commits.len(), sizes.len());
    assert_eq!(counts["stored"], 20);
    assert_eq!(counts["deadline"], 1);
    assert_eq!(counts["failed"], 1);
}
