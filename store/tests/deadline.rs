//! DT's deadline, under tokio's paused clock: a `503` is never a late `200`, and no event
//! is lost or stored twice wherever the deadline falls. The one stand-in of the store's
//! tests is `Stall`, a backend that wraps the real `SqliteStore` and stalls on command
//! before or after its write: it tests the deadline, not a database.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use rusqlite::Connection;
use tokio::sync::Notify;
use tower::{ServiceBuilder, ServiceExt};
use tower_dt_signature::DtSignatureLayer;
use tower_dt_store::{
    Backend, BoxFuture, DeadlineLayer, DtStore, EventRecord, Put, SqliteStore, StoreError,
    StoreOutcome,
};

use common::*;

#[derive(Clone, Copy, PartialEq, Eq)]
enum When {
    Never,
    BeforeTheWrite,
    AfterTheCommit,
}

/// The real store, stalled on command.
struct Stall {
    inner: SqliteStore,
    when: std::sync::Mutex<When>,
    reached: Notify,
    release: Notify,
}

impl Stall {
    fn set(&self, when: When) {
        *self.when.lock().unwrap() = when;
    }
}

impl Backend for Stall {
    fn put(&self, record: EventRecord) -> BoxFuture<'_, Result<Put, StoreError>> {
        Box::pin(async move {
            let when = *self.when.lock().unwrap();
            if when == When::BeforeTheWrite {
                self.reached.notify_one();
                self.release.notified().await;
            }
            let put = self.inner.put(record).await;
            if when == When::AfterTheCommit {
                self.reached.notify_one();
                self.release.notified().await;
            }
            put
        })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.ready()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

async fn stalled(path: &Path) -> Arc<Stall> {
    Arc::new(Stall {
        inner: SqliteStore::open(path).await.unwrap(),
        when: std::sync::Mutex::new(When::Never),
        reached: Notify::new(),
        release: Notify::new(),
    })
}

fn keys(path: &Path) -> Vec<String> {
    let conn = Connection::open(path).unwrap();
    let mut statement = conn
        .prepare("SELECT event_key FROM dt_event ORDER BY id")
        .unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    (dir, path)
}

#[tokio::test]
async fn a_deadline_before_the_write_stores_nothing_and_the_retry_is_stored() {
    let (_dir, path) = temp();
    let backend = stalled(&path).await;
    backend.set(When::BeforeTheWrite);
    let service = stack(DtStore::from_arc(backend.clone()).deadline(Duration::from_secs(8)));
    let body = event("evt-before", "dev1", "touch", "2024-01-01T00:00:00Z");

    let request = signed(&body);
    let call = tokio::spawn({
        let service = service.clone();
        async move { send(&service, request).await }
    });
    backend.reached.notified().await;
    // The write has not started: the clock jumps to the deadline.
    tokio::time::pause();
    let answer = call.await.unwrap();
    tokio::time::resume();
    assert_eq!(
        (answer.status, answer.text.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "deadline passed")
    );
    assert_eq!(answer.outcome(), Some(StoreOutcome::Deadline));
    backend.release.notify_one();
    backend.ready().await.unwrap();
    assert!(
        keys(&path).is_empty(),
        "the put was dropped before it wrote"
    );

    backend.set(When::Never);
    let retry = send(&service, signed(&body)).await;
    assert_eq!(retry.outcome(), Some(StoreOutcome::Stored));
    assert_eq!(keys(&path), ["evt-before"]);
}

#[tokio::test]
async fn a_deadline_after_the_commit_answers_503_and_the_retry_is_a_duplicate() {
    let (_dir, path) = temp();
    let backend = stalled(&path).await;
    backend.set(When::AfterTheCommit);
    let service = stack(DtStore::from_arc(backend.clone()));
    let body = event("evt-after", "dev1", "touch", "2024-01-01T00:00:00Z");

    let request = signed(&body);
    let call = tokio::spawn({
        let service = service.clone();
        async move { send(&service, request).await }
    });
    backend.reached.notified().await;
    assert_eq!(keys(&path), ["evt-after"], "committed");
    tokio::time::pause();
    let answer = call.await.unwrap();
    tokio::time::resume();
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "never a late 200"
    );
    assert_eq!(answer.outcome(), Some(StoreOutcome::Deadline));
    backend.release.notify_one();

    backend.set(When::Never);
    let retry = send(&service, signed(&body)).await;
    assert_eq!(
        (retry.status, retry.outcome()),
        (StatusCode::OK, Some(StoreOutcome::Duplicate))
    );
    assert_eq!(keys(&path), ["evt-after"], "stored once");
}

#[tokio::test]
async fn a_deadline_during_the_write_commits_later_and_the_retry_is_a_duplicate() {
    let (_dir, path) = temp();
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let service = stack(DtStore::from_arc(store.clone()));
    let body = event("evt-during", "dev1", "touch", "2024-01-01T00:00:00Z");

    // Another connection holds the write lock: the writer's batch waits inside SQLite.
    let blocker = Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    tokio::time::pause();
    let answer = send(&service, signed(&body)).await;
    tokio::time::resume();
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.outcome(), Some(StoreOutcome::Deadline));
    assert!(keys(&path).is_empty() || keys(&path) == ["evt-during"]);
    blocker.execute_batch("COMMIT").unwrap();

    // The queued write goes through once the lock is free.
    store.ready().await.unwrap();
    assert_eq!(keys(&path), ["evt-during"]);
    let retry = send(&service, signed(&body)).await;
    assert_eq!(
        (retry.status, retry.outcome()),
        (StatusCode::OK, Some(StoreOutcome::Duplicate))
    );
    assert_eq!(keys(&path), ["evt-during"]);
}

#[tokio::test]
async fn the_deadline_counts_from_the_head_so_a_trickled_body_gets_503() {
    let (_dir, path) = temp();
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let service = ServiceBuilder::new()
        .layer(DeadlineLayer::new(Duration::from_secs(8)))
        .layer(DtSignatureLayer::new(SECRET))
        .service(DtStore::from_arc(store.clone()));
    let body = event("evt-slow", "dev1", "touch", "2024-01-01T00:00:00Z");
    let token = tower_dt_signature::testing::Signer::new(SECRET).sign(&body);

    // Half the body, then nothing: the client trickles.
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
    sender
        .send(Ok(Frame::data(body.slice(..body.len() / 2))))
        .await
        .unwrap();
    let request = Request::post("/")
        .header("x-dt-signature", token)
        .body(StreamBody::new(tokio_stream_of(receiver)))
        .unwrap();
    tokio::time::pause();
    let started = tokio::time::Instant::now();
    let response = service.oneshot(request).await.unwrap();
    let waited = started.elapsed();
    tokio::time::resume();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(text, "deadline passed");
    // On the paused clock: at the deadline (tokio's timers round up to the millisecond).
    assert!(
        waited >= Duration::from_secs(8) && waited <= Duration::from_millis(8_002),
        "{waited:?}"
    );
    drop(sender);
    store.ready().await.unwrap();
    assert!(keys(&path).is_empty());
}

#[tokio::test]
async fn a_full_queue_waits_within_the_deadline_then_answers_503() {
    let (_dir, path) = temp();
    let store = Arc::new(
        SqliteStore::builder(&path)
            .queue(1)
            .max_batch(1)
            .open()
            .await
            .unwrap(),
    );
    let service = stack(DtStore::from_arc(store.clone()));
    let blocker = Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    // The first request's batch waits on the lock; the second fills the queue; the third
    // waits for room until its deadline.
    let mut calls = Vec::new();
    for index in 0..3 {
        let body = event(
            &format!("evt-{index}"),
            "dev1",
            "touch",
            "2024-01-01T00:00:00Z",
        );
        let request = signed(&body);
        let service = service.clone();
        calls.push(tokio::spawn(async move { send(&service, request).await }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::pause();
    for call in calls {
        let answer = call.await.unwrap();
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.outcome(), Some(StoreOutcome::Deadline));
    }
    tokio::time::resume();
    blocker.execute_batch("COMMIT").unwrap();
    store.ready().await.unwrap();
    // What was queued before the deadline is written (its retry will be a duplicate);
    // what never got into the queue is not: no event is half-kept.
    let stored = keys(&path);
    assert!(stored.len() <= 2, "{stored:?}");
    assert!(stored
        .iter()
        .all(|key| key == "evt-0" || key == "evt-1" || key == "evt-2"));
}

/// A body stream from a channel of frames.
fn tokio_stream_of(
    mut receiver: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Frame<Bytes>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}
