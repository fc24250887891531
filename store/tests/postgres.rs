//! The PostgreSQL store through the public API, behind the real `DtSignatureLayer`, on a
//! real PostgreSQL server started for the test (`support/postgres.rs`): every assertion
//! on what was stored reads the database back with SQL.

mod common;
#[path = "support/postgres.rs"]
mod pg;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use tower_dt_store::schema::SCHEMA_VERSION;
use tower_dt_store::{
    Backend, DtStore, PostgresStore, StoreErrorKind, StoreOutcome, BODY_KEY_PREFIX, DEFAULT_TENANT,
};

use common::*;
use pg::{rows, PgCluster, PASSWORD};

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// The `event_id` that `dt_latest` holds for a device and type.
async fn latest(client: &tokio_postgres::Client, device: &str, event_type: &str) -> Option<String> {
    client
        .query_opt(
            "SELECT event_id FROM dt_latest WHERE tenant = $1 AND device = $2 AND event_type = $3",
            &[&DEFAULT_TENANT, &device, &event_type],
        )
        .await
        .unwrap()
        .map(|row| row.get(0))
}

/// Sends `copies` copies of `request` at once, spread over `services`.
async fn concurrently<S>(services: &[S], body: &Bytes, copies: usize) -> Vec<Answer>
where
    S: tower::Service<
            Request<Full<Bytes>>,
            Response = http::Response<Full<Bytes>>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(copies));
    let mut tasks = JoinSet::new();
    for copy in 0..copies {
        let service = services[copy % services.len()].clone();
        let request = signed(body);
        let barrier = barrier.clone();
        tasks.spawn(async move {
            barrier.wait().await;
            send(&service, request).await
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_is_stored_with_its_exact_bytes() {
    let cluster = PgCluster::start();
    let url = cluster.database("dt").await;
    let service = stack(DtStore::new(PostgresStore::connect(url).await.unwrap()));
    let events = dt_events();
    assert_eq!(events.len(), 19, "one body per DT event type");
    for (name, body) in &events {
        let answer = send(&service, signed(body)).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.text);
        assert_eq!(answer.outcome(), Some(StoreOutcome::Stored), "{name}");
    }

    let client = cluster.client("dt").await;
    let stored = client
        .query(
            "SELECT tenant, event_key, is_event, event_type, target_name, device, project, \
             event_time, body, body_sha256, schemes, asymmetric_token, event_time_ns \
             FROM dt_event ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), 19);
    for ((name, body), row) in events.iter().zip(&stored) {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        let event = &json["event"];
        let target = event["targetName"].as_str().unwrap();
        assert_eq!(row.get::<_, String>(0), DEFAULT_TENANT, "{name}");
        assert_eq!(
            row.get::<_, String>(1),
            event["eventId"].as_str().unwrap(),
            "{name}"
        );
        assert!(row.get::<_, bool>(2), "{name}: is_event");
        assert_eq!(
            row.get::<_, String>(3),
            event["eventType"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(row.get::<_, String>(4), target, "{name}");
        assert_eq!(
            row.get::<_, Option<String>>(5).as_deref(),
            target.rsplit_once("/devices/").map(|(_, device)| device),
            "{name}"
        );
        assert_eq!(
            row.get::<_, String>(6),
            target.split('/').nth(1).unwrap(),
            "{name}"
        );
        assert_eq!(
            row.get::<_, String>(7),
            event["timestamp"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            row.get::<_, Vec<u8>>(8),
            body.to_vec(),
            "{name}: exact bytes"
        );
        assert_eq!(
            row.get::<_, Vec<u8>>(9),
            Sha256::digest(body).to_vec(),
            "{name}"
        );
        assert_eq!(row.get::<_, String>(10), "hmac", "{name}");
        assert_eq!(row.get::<_, Option<String>>(11), None, "{name}");
        let ns = chrono::DateTime::parse_from_rfc3339(event["timestamp"].as_str().unwrap())
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap();
        assert_eq!(row.get::<_, i64>(12), ns, "{name}");
    }
    assert_eq!(count(&client, "SELECT count(*) FROM dt_latest").await, 19);
    let summary = service.get_ref().backend().summary().await.unwrap();
    assert_eq!(summary.events(), 19);
    assert_eq!(summary.not_events, 0);
    assert_eq!(summary.events_by_type.len(), 19);
    assert!(summary.events_by_type.iter().all(|count| count.count == 1));
    assert_eq!(summary.latest.len(), 19);
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM dt_latest l JOIN dt_event e ON e.id = l.event_row \
             WHERE l.body = e.body AND l.event_id = e.event_id"
        )
        .await,
        19
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_in_sequence_and_100_at_once_leave_one_row_and_every_copy_gets_200() {
    let cluster = PgCluster::start();
    let url = cluster.database("dt").await;
    let service = stack(DtStore::new(PostgresStore::connect(url).await.unwrap()));
    let client = cluster.client("dt").await;

    let body = event("dup-seq", "d1", "touch", "2024-05-01T10:00:00Z");
    let first = send(&service, signed(&body)).await;
    assert_eq!(first.outcome(), Some(StoreOutcome::Stored));
    for _ in 0..3 {
        let again = send(&service, signed(&body)).await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.text, "duplicate");
        assert_eq!(again.outcome(), Some(StoreOutcome::Duplicate));
        assert!(!again.report.unwrap().bytes_differ);
    }
    // Other bytes under the same id: the first copy is kept, the difference reported.
    let other = event("dup-seq", "d1", "touch", "2024-05-01T10:00:01Z");
    let differ = send(&service, signed(&other)).await;
    assert_eq!(differ.status, StatusCode::OK);
    assert!(differ.report.unwrap().bytes_differ);
    assert_eq!(rows(&client).await, vec![("dup-seq".into(), body.to_vec())]);

    let body = event("dup-burst", "d2", "touch", "2024-05-01T10:00:00Z");
    let answers = concurrently(std::slice::from_ref(&service), &body, 100).await;
    assert!(
        answers.iter().all(|answer| answer.status == StatusCode::OK),
        "{answers:?}"
    );
    let stored = answers
        .iter()
        .filter(|answer| answer.outcome() == Some(StoreOutcome::Stored))
        .count();
    assert_eq!(stored, 1, "one copy stored, 99 duplicates: {answers:?}");
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM dt_event WHERE event_key = 'dup-burst'"
        )
        .await,
        1
    );
    assert_eq!(count(&client, "SELECT count(*) FROM dt_event").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_event_after_a_newer_one_leaves_latest_on_the_newer() {
    let cluster = PgCluster::start();
    let url = cluster.database("dt").await;
    let service = stack(DtStore::new(PostgresStore::connect(url).await.unwrap()));
    let client = cluster.client("dt").await;

    let newer = event("new", "d1", "temperature", "2024-05-01T12:00:00Z");
    // Earlier as an instant, though its text sorts later.
    let older = event("old", "d1", "temperature", "2024-05-01T13:30:00+02:00");
    assert_eq!(
        send(&service, signed(&newer)).await.outcome(),
        Some(StoreOutcome::Stored)
    );
    let answer = send(&service, signed(&older)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.outcome(), Some(StoreOutcome::StoredNotLatest));
    assert_eq!(
        latest(&client, "d1", "temperature").await.as_deref(),
        Some("new")
    );
    assert_eq!(count(&client, "SELECT count(*) FROM dt_event").await, 2);
    let body: Vec<u8> = client
        .query_one("SELECT body FROM dt_latest WHERE device = 'd1'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(body, newer.to_vec());

    // At the same instant the greater id wins, whatever the order.
    let a = event("tie-a", "d2", "touch", "2024-05-01T12:00:00Z");
    let b = event("tie-b", "d2", "touch", "2024-05-01T14:00:00+02:00");
    assert_eq!(
        send(&service, signed(&b)).await.outcome(),
        Some(StoreOutcome::Stored)
    );
    assert_eq!(
        send(&service, signed(&a)).await.outcome(),
        Some(StoreOutcome::StoredNotLatest)
    );
    assert_eq!(
        latest(&client, "d2", "touch").await.as_deref(),
        Some("tie-b")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_event_body_is_kept_under_its_sha256_and_no_claims_stores_nothing() {
    let cluster = PgCluster::start();
    let url = cluster.database("dt").await;
    let store = std::sync::Arc::new(PostgresStore::connect(url).await.unwrap());
    let service = stack(DtStore::from_arc(store.clone()));
    let client = cluster.client("dt").await;

    // Mounted without the layer: 500, nothing stored.
    let body = event("no-claims", "d1", "touch", "2024-05-01T10:00:00Z");
    let bare = DtStore::from_arc(store.clone());
    let answer = send(&bare, signed(&body)).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.report, None);
    assert_eq!(count(&client, "SELECT count(*) FROM dt_event").await, 0);

    let body = Bytes::from_static(b"\x00not json, but signed by DT\xff");
    let answer = send(&service, signed(&body)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.outcome(), Some(StoreOutcome::NotAnEvent));
    let key = format!("{BODY_KEY_PREFIX}{}", hex::encode(Sha256::digest(&body)));
    let row = client
        .query_one(
            "SELECT event_key, is_event, body, event_id, device, event_time_ns FROM dt_event",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), key);
    assert!(!row.get::<_, bool>(1));
    assert_eq!(row.get::<_, Vec<u8>>(2), body.to_vec());
    assert_eq!(row.get::<_, Option<String>>(3), None);
    assert_eq!(row.get::<_, Option<String>>(4), None);
    assert_eq!(row.get::<_, Option<i64>>(5), None);
    assert_eq!(count(&client, "SELECT count(*) FROM dt_latest").await, 0);
    // Its copy is a duplicate.
    let again = send(&service, signed(&body)).await;
    assert_eq!(again.outcome(), Some(StoreOutcome::Duplicate));
    assert_eq!(count(&client, "SELECT count(*) FROM dt_event").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_is_503_and_ready_names_it_then_the_store_recovers() {
    let mut cluster = PgCluster::start();
    let url = cluster.database("dt").await;
    let store = std::sync::Arc::new(PostgresStore::connect(url).await.unwrap());
    let service = stack(DtStore::from_arc(store.clone()));
    let before = event("before", "d1", "touch", "2024-05-01T10:00:00Z");
    assert_eq!(send(&service, signed(&before)).await.status, StatusCode::OK);
    store.ready().await.unwrap();

    cluster.stop();
    let during = event("during", "d1", "touch", "2024-05-01T10:00:01Z");
    let answer = send(&service, signed(&during)).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.text
    );
    assert_eq!(
        answer.outcome(),
        Some(StoreOutcome::Failed(StoreErrorKind::Unavailable))
    );
    let error = store.ready().await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error}");
    let at = format!("127.0.0.1:{}", cluster.port());
    assert!(error.message().contains(&at), "{error}");
    assert!(!error.message().contains(PASSWORD), "{error}");

    cluster.start_again();
    // The pool drops the connections the server closed and opens new ones.
    let mut ready = store.ready().await;
    for _ in 0..100 {
        if ready.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = store.ready().await;
    }
    ready.unwrap();
    let retry = send(&service, signed(&during)).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text);
    assert_eq!(retry.outcome(), Some(StoreOutcome::Stored));
    let client = cluster.client("dt").await;
    let keys: Vec<String> = rows(&client)
        .await
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(keys, ["before", "during"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_at_connect_is_not_an_error_and_the_schema_comes_with_it() {
    let mut cluster = PgCluster::start();
    let url = cluster.database("dt").await;
    cluster.stop();

    let store = PostgresStore::connect(&url).await.unwrap();
    assert_eq!(
        store.describe(),
        format!("postgres://postgres@127.0.0.1:{}/dt", cluster.port())
    );
    let error = store.ready().await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error}");
    assert!(
        error
            .message()
            .contains(&format!("127.0.0.1:{}", cluster.port())),
        "{error}"
    );
    let service = stack(DtStore::new(store.clone()));
    let body = event("late", "d1", "touch", "2024-05-01T10:00:00Z");
    let answer = send(&service, signed(&body)).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);

    cluster.start_again();
    let answer = send(&service, signed(&body)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    store.ready().await.unwrap();
    let client = cluster.client("dt").await;
    assert_eq!(
        count(&client, "SELECT max(version) FROM dt_schema").await,
        SCHEMA_VERSION
    );
    assert_eq!(rows(&client).await, vec![("late".into(), body.to_vec())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_and_a_missing_database_are_config_errors_without_the_password() {
    let cluster = PgCluster::start();
    let wrong = format!(
        "postgres://postgres:not-the-{PASSWORD}@127.0.0.1:{}/postgres",
        cluster.port()
    );
    let error = PostgresStore::connect(&wrong).await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Config, "{error}");
    assert!(
        error.message().contains("28P01") || error.message().contains("password"),
        "{error}"
    );
    assert!(
        error
            .message()
            .contains(&format!("127.0.0.1:{}", cluster.port())),
        "{error}"
    );
    assert!(!error.message().contains(PASSWORD), "{error}");

    let error = PostgresStore::connect(cluster.url("no_such_db"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Config, "{error}");
    assert!(error.message().contains("no_such_db"), "{error}");

    let error = PostgresStore::connect("postgres://[broken")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Config, "{error}");

    let store = PostgresStore::connect(cluster.url("postgres"))
        .await
        .unwrap();
    assert!(!format!("{store:?}").contains(PASSWORD));
    assert!(!store.describe().contains(PASSWORD));
}

/// The full disk is a real one: the store's tables live in a tablespace on a 1 MiB tmpfs
/// (mounted by the harness, so the test needs root with CAP_SYS_ADMIN, as CI and
/// `./scripts/test` as root have), and PostgreSQL fails the extension of a table with
/// ENOSPC, SQLSTATE 53100. The WAL stays on the real disk: a full WAL disk makes the server
/// PANIC, which is the "database going away" test. A file-size limit (`ulimit -f`) is no
/// substitute: it also caps the 16 MiB WAL segments, and PostgreSQL reports its EFBIG as an
/// internal error (XX000), not as a full disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_503_and_nothing_half_done_then_the_retry_is_stored() {
    let mut cluster = PgCluster::start();
    let url = cluster.database("dt").await;
    // The store's tables on a 1 MiB tmpfs; the WAL stays on the real disk, so the server
    // keeps running and refuses the write (53100) instead of stopping.
    cluster.tiny_tablespace("dt", "1m").await;
    let store = PostgresStore::connect(url).await.unwrap();
    let service = stack(DtStore::new(store));
    let client = cluster.client("dt").await;
    let tablespace: String = client
        .query_one(
            "SELECT t.spcname::text FROM pg_class c JOIN pg_tablespace t ON t.oid = c.reltablespace \
             WHERE c.relname = 'dt_event'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tablespace, "tiny");

    // Events of 64 KiB that do not compress, until the disk is full.
    let padded = |n: usize| {
        let mut pad = String::new();
        let mut state = Sha256::digest(n.to_le_bytes()).to_vec();
        while pad.len() < 64 * 1024 {
            state = Sha256::digest(&state).to_vec();
            pad.push_str(&hex::encode(&state));
        }
        let body = event(
            &format!("fill-{n}"),
            "d1",
            "touch",
            &format!("2024-05-01T10:{:02}:{:02}Z", n / 60, n % 60),
        );
        let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        json["labels"]["pad"] = serde_json::Value::String(pad);
        Bytes::from(serde_json::to_vec(&json).unwrap())
    };
    let mut stored = Vec::new();
    let mut refused = None;
    for n in 0..200 {
        let body = padded(n);
        let answer = send(&service, signed(&body)).await;
        match answer.status {
            StatusCode::OK => {
                assert_eq!(answer.outcome(), Some(StoreOutcome::Stored));
                stored.push(format!("fill-{n}"));
            }
            _ => {
                assert_eq!(
                    answer.status,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "{}",
                    answer.text
                );
                assert_eq!(
                    answer.outcome(),
                    Some(StoreOutcome::Failed(StoreErrorKind::Full)),
                    "{}",
                    cluster.log()
                );
                refused = Some((n, body));
                break;
            }
        }
    }
    let (n, body) = refused.expect("the 1 MiB tablespace filled up");
    eprintln!(
        "full disk: {} events of 64 KiB stored, event {n} refused",
        stored.len()
    );
    assert!(
        !stored.is_empty(),
        "some events fit before the disk was full"
    );
    assert!(
        cluster.log().contains("No space left on device"),
        "{}",
        cluster.log()
    );

    // Nothing of the refused event: not in dt_event, and dt_latest still on the last stored.
    let keys: Vec<String> = rows(&client)
        .await
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(keys, stored);
    assert_eq!(
        latest(&client, "d1", "touch").await.as_deref(),
        stored.last().map(String::as_str)
    );
    let latest_row: i64 = client
        .query_one(
            "SELECT count(*) FROM dt_latest l JOIN dt_event e ON e.id = l.event_row \
             WHERE l.event_id = e.event_id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(latest_row, 1);

    // Space again: DT's retry is stored.
    cluster.resize_tiny("16m");
    let retry = send(&service, signed(&body)).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text);
    assert_eq!(retry.outcome(), Some(StoreOutcome::Stored));
    let key = format!("fill-{n}");
    assert_eq!(
        latest(&client, "d1", "touch").await.as_deref(),
        Some(key.as_str())
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM dt_event").await,
        stored.len() as i64 + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_database_take_100_copies_at_once_and_keep_one_row() {
    let cluster = PgCluster::start();
    let url = cluster.database("dt").await;
    let (one, two) = tokio::join!(
        PostgresStore::connect(url.clone()),
        PostgresStore::connect(url.clone())
    );
    let services = [
        stack(DtStore::new(one.unwrap())),
        stack(DtStore::new(two.unwrap())),
    ];
    let body = event("replicated", "d1", "touch", "2024-05-01T10:00:00Z");
    let answers = concurrently(&services, &body, 100).await;
    assert!(
        answers.iter().all(|answer| answer.status == StatusCode::OK),
        "{answers:?}"
    );
    assert_eq!(
        answers
            .iter()
            .filter(|answer| answer.outcome() == Some(StoreOutcome::Stored))
            .count(),
        1
    );
    let client = cluster.client("dt").await;
    assert_eq!(
        rows(&client).await,
        vec![("replicated".into(), body.to_vec())]
    );
    assert_eq!(count(&client, "SELECT count(*) FROM dt_latest").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_creating_the_schema_at_once_do_not_fail_and_a_newer_schema_is_refused() {
    let cluster = PgCluster::start();
    let url = cluster.database("dt").await;
    let mut connects = JoinSet::new();
    for _ in 0..8 {
        let url = url.clone();
        connects.spawn(async move { PostgresStore::connect(url).await });
    }
    let mut stores = Vec::new();
    while let Some(store) = connects.join_next().await {
        stores.push(store.unwrap().unwrap());
    }
    let client = cluster.client("dt").await;
    assert_eq!(count(&client, "SELECT count(*) FROM dt_schema").await, 1);
    assert_eq!(
        count(&client, "SELECT max(version) FROM dt_schema").await,
        SCHEMA_VERSION
    );
    for store in &stores {
        store.ready().await.unwrap();
    }

    let newer = SCHEMA_VERSION + 1;
    client
        .execute("UPDATE dt_schema SET version = $1", &[&newer])
        .await
        .unwrap();
    let error = PostgresStore::connect(url.clone()).await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::SchemaTooNew, "{error}");
    assert!(
        error.message().contains(&format!("version {newer}")),
        "{error}"
    );
    assert!(
        error
            .message()
            .contains(&format!("version {SCHEMA_VERSION}")),
        "{error}"
    );
    // A running replica's /ready says so too.
    let error = stores[0].ready().await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::SchemaTooNew, "{error}");
}

const READ_IN_ORDER: &str = "
SELECT event_key, tx_id::text FROM dt_event
WHERE (tx_id, id) > ($1::text::xid8, $2)
  AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY tx_id, id LIMIT 500";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_in_tx_id_order_skips_no_row_of_a_transaction_that_commits_late() {
    let cluster = PgCluster::start();
    let url = cluster.database("dt").await;
    let service = stack(DtStore::new(PostgresStore::connect(url).await.unwrap()));
    let reader = cluster.client("dt").await;
    let first = event("first", "d1", "touch", "2024-05-01T10:00:00Z");
    assert_eq!(send(&service, signed(&first)).await.status, StatusCode::OK);

    // A reader that has handled everything so far.
    let read = |last: (String, i64)| {
        let reader = &reader;
        async move {
            reader
                .query(READ_IN_ORDER, &[&last.0, &last.1])
                .await
                .unwrap()
                .iter()
                .map(|row| (row.get::<_, String>(0), row.get::<_, String>(1)))
                .collect::<Vec<_>>()
        }
    };
    let seen = read(("0".into(), 0)).await;
    assert_eq!(
        seen.iter().map(|(key, _)| key.as_str()).collect::<Vec<_>>(),
        ["first"]
    );
    let (last_tx, last_id): (String, i64) = {
        let row = reader
            .query_one(
                "SELECT tx_id::text, id FROM dt_event WHERE event_key = 'first'",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };

    // A writer takes the next id and holds its transaction open (as a slow replica does).
    let mut slow = cluster.client("dt").await;
    let slow_tx = slow.transaction().await.unwrap();
    let held_id: i64 = slow_tx
        .query_one(
            "INSERT INTO dt_event (tenant, event_key, is_event, body, body_sha256, schemes, \
             received_at_us) VALUES ('-', 'held', false, '\\x00', '\\x00', 'hmac', 0) RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // Another commits a later id meanwhile.
    let later = event("later", "d1", "touch", "2024-05-01T10:00:01Z");
    assert_eq!(send(&service, signed(&later)).await.status, StatusCode::OK);
    let later_id: i64 = reader
        .query_one("SELECT id FROM dt_event WHERE event_key = 'later'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(held_id < later_id);

    // `id > last` would see `later` now, and skip `held` for ever once it remembers it.
    let naive: Vec<String> = reader
        .query(
            "SELECT event_key FROM dt_event WHERE id > $1 ORDER BY id",
            &[&last_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(naive, ["later"]);
    // The documented query holds `later` back while `held`'s transaction runs.
    assert_eq!(read((last_tx.clone(), last_id)).await, Vec::new());

    slow_tx.commit().await.unwrap();
    let seen = read((last_tx, last_id)).await;
    assert_eq!(
        seen.iter().map(|(key, _)| key.as_str()).collect::<Vec<_>>(),
        ["held", "later"]
    );
    // And a reader that remembers the last pair reads nothing twice.
    let last: (String, i64) = (seen[1].1.clone(), later_id);
    assert_eq!(read(last).await, Vec::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_past_its_deadline_still_commits_and_the_retry_is_a_duplicate() {
    let cluster = PgCluster::start();
    let url = cluster.database("dt").await;
    let store = PostgresStore::connect(url).await.unwrap();
    let service = stack(DtStore::new(store).deadline(Duration::from_millis(300)));
    let client = cluster.client("dt").await;

    // Another session holds dt_latest: the store's transaction inserts into dt_event, then
    // waits on the lock, so it cannot be durable before the deadline.
    let mut locker = cluster.client("dt").await;
    let lock = locker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE dt_latest IN SHARE MODE")
        .await
        .unwrap();
    let body = event("slow", "d1", "touch", "2024-05-01T10:00:00Z");
    let answer = send(&service, signed(&body)).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.text
    );
    assert_eq!(answer.outcome(), Some(StoreOutcome::Deadline));
    assert_eq!(count(&client, "SELECT count(*) FROM dt_event").await, 0);

    // The caller gave up; its transaction did not: it commits once the lock is gone.
    lock.commit().await.unwrap();
    let mut rows_now = 0;
    for _ in 0..200 {
        rows_now = count(&client, "SELECT count(*) FROM dt_latest").await;
        if rows_now == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rows_now, 1, "the abandoned write committed");
    assert_eq!(rows(&client).await, vec![("slow".into(), body.to_vec())]);
    // DT's retry finds it.
    let retry = send(&service, signed(&body)).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.outcome(), Some(StoreOutcome::Duplicate));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_dropped_under_a_running_store_are_created_again_on_the_next_write() {
    let cluster = PgCluster::start();
    let url = cluster.database("dt").await;
    let service = stack(DtStore::new(PostgresStore::connect(url).await.unwrap()));
    let client = cluster.client("dt").await;
    let one = event("one", "d1", "touch", "2024-05-01T10:00:00Z");
    assert_eq!(send(&service, signed(&one)).await.status, StatusCode::OK);

    // As a server replaced by a fresh one at the same address would be.
    client
        .batch_execute("DROP TABLE dt_event, dt_latest, dt_schema")
        .await
        .unwrap();
    let two = event("two", "d1", "touch", "2024-05-01T10:00:01Z");
    let answer = send(&service, signed(&two)).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.text
    );
    let retry = send(&service, signed(&two)).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text);
    assert_eq!(rows(&client).await, vec![("two".into(), two.to_vec())]);
    assert_eq!(
        count(&client, "SELECT max(version) FROM dt_schema").await,
        SCHEMA_VERSION
    );
}
