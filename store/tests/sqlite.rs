//! The SQLite store through the public API, behind the real `DtSignatureLayer`, on a real
//! database file: every assertion on what was stored reads the file back.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use rusqlite::Connection;
use tower::Layer;
use tower_dt_signature::DtSignatureLayer;
use tower_dt_store::schema::SCHEMA_VERSION;
use tower_dt_store::{
    Backend, DtStore, SqliteStore, StoreErrorKind, StoreOutcome, BODY_KEY_PREFIX, DEFAULT_TENANT,
};

use common::*;

struct Db {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    Db { _dir: dir, path }
}

/// Reads the file back: (key, body) of every row, in id order.
fn rows(path: &Path) -> Vec<(String, Vec<u8>)> {
    let conn = Connection::open(path).unwrap();
    let mut statement = conn
        .prepare("SELECT event_key, body FROM dt_event ORDER BY id")
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The `event_id` that `dt_latest` holds for a device and type.
fn latest(path: &Path, device: &str, event_type: &str) -> Option<String> {
    let conn = Connection::open(path).unwrap();
    conn.query_row(
        "SELECT event_id FROM dt_latest WHERE tenant = ?1 AND device = ?2 AND event_type = ?3",
        (DEFAULT_TENANT, device, event_type),
        |row| row.get(0),
    )
    .ok()
}

/// tenant, event_key, is_event, event_type, target_name, device, project, event_time,
/// body, schemes, asymmetric_token.
type StoredRow = (
    String,
    String,
    bool,
    String,
    String,
    Option<String>,
    String,
    String,
    Vec<u8>,
    String,
    Option<String>,
);

#[tokio::test]
async fn every_event_type_is_stored_with_its_exact_bytes() {
    let db = db();
    let service = stack(DtStore::new(SqliteStore::open(&db.path).await.unwrap()));
    let events = dt_events();
    assert_eq!(events.len(), 19, "one body per DT event type");
    for (name, body) in &events {
        let answer = send(&service, signed(body)).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.text);
        assert_eq!(answer.outcome(), Some(StoreOutcome::Stored), "{name}");
    }

    let conn = Connection::open(&db.path).unwrap();
    let mut statement = conn
        .prepare(
            "SELECT tenant, event_key, is_event, event_type, target_name, device, project, \
             event_time, body, schemes, asymmetric_token FROM dt_event ORDER BY id",
        )
        .unwrap();
    let stored: Vec<StoredRow> = statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
                row.get(7)?,
                row.get(8)?,
                row.get(9)?,
                row.get(10)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(stored.len(), 19);
    for ((name, body), row) in events.iter().zip(&stored) {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        let event = &json["event"];
        let target = event["targetName"].as_str().unwrap();
        assert_eq!(row.0, DEFAULT_TENANT, "{name}");
        assert_eq!(row.1, event["eventId"].as_str().unwrap(), "{name}");
        assert!(row.2, "{name}: is_event");
        assert_eq!(row.3, event["eventType"].as_str().unwrap(), "{name}");
        assert_eq!(row.4, target, "{name}");
        assert_eq!(
            row.5.as_deref(),
            target.rsplit('/').next(),
            "{name}: device"
        );
        assert_eq!(row.6, target.split('/').nth(1).unwrap(), "{name}: project");
        assert_eq!(row.7, event["timestamp"].as_str().unwrap(), "{name}");
        assert_eq!(&row.8[..], &body[..], "{name}: the exact bytes");
        assert_eq!(row.9, "hmac", "{name}");
        assert_eq!(row.10, None, "{name}: no asymmetric token was sent");
    }
}

#[tokio::test]
async fn duplicates_in_sequence_and_at_once_leave_one_row() {
    let db = db();
    let service = stack(DtStore::new(SqliteStore::open(&db.path).await.unwrap()));
    let body = event("evt-dup", "dev1", "touch", "2024-01-01T00:00:00.000001Z");

    let first = send(&service, signed(&body)).await;
    assert_eq!(
        (first.status, first.outcome()),
        (StatusCode::OK, Some(StoreOutcome::Stored))
    );
    for _ in 0..3 {
        let again = send(&service, signed(&body)).await;
        assert_eq!(
            (again.status, again.text.as_str()),
            (StatusCode::OK, "duplicate")
        );
        assert_eq!(again.outcome(), Some(StoreOutcome::Duplicate));
        assert!(!again.report.unwrap().bytes_differ);
    }
    assert_eq!(rows(&db.path), vec![("evt-dup".to_owned(), body.to_vec())]);

    // 100 copies of one new event at once: one is stored, 99 are duplicates, all 200.
    let body = event("evt-burst", "dev1", "touch", "2024-01-01T00:00:01Z");
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let service = service.clone();
        let request = signed(&body);
        tasks.push(tokio::spawn(async move { send(&service, request).await }));
    }
    let mut stored = 0;
    for task in tasks {
        let answer = task.await.unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        match answer.outcome() {
            Some(StoreOutcome::Stored) => stored += 1,
            Some(StoreOutcome::Duplicate) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(stored, 1, "exactly one copy is the stored one");
    let rows = rows(&db.path);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1], ("evt-burst".to_owned(), body.to_vec()));
}

#[tokio::test]
async fn a_copy_with_other_bytes_keeps_the_first_row() {
    let db = db();
    let service = stack(DtStore::new(SqliteStore::open(&db.path).await.unwrap()));
    let first = event("evt-x", "dev1", "touch", "2024-01-01T00:00:00Z");
    let other = event("evt-x", "dev2", "touch", "2024-01-01T00:00:00Z");
    assert_eq!(send(&service, signed(&first)).await.status, StatusCode::OK);
    let answer = send(&service, signed(&other)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.outcome(), Some(StoreOutcome::Duplicate));
    assert!(answer.report.unwrap().bytes_differ, "reported");
    assert_eq!(rows(&db.path), vec![("evt-x".to_owned(), first.to_vec())]);
}

#[tokio::test]
async fn an_older_event_after_a_newer_one_leaves_the_newer_latest() {
    let db = db();
    let service = stack(DtStore::new(SqliteStore::open(&db.path).await.unwrap()));
    let newer = event("evt-new", "dev1", "temperature", "2024-01-01T10:00:00.5Z");
    // Earlier as an instant, though greater as text: offsets are honoured.
    let older = event(
        "evt-old",
        "dev1",
        "temperature",
        "2024-01-01T10:30:00+01:00",
    );
    let answer = send(&service, signed(&newer)).await;
    assert_eq!(answer.outcome(), Some(StoreOutcome::Stored));
    let answer = send(&service, signed(&older)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.outcome(), Some(StoreOutcome::StoredNotLatest));
    assert_eq!(
        latest(&db.path, "dev1", "temperature").as_deref(),
        Some("evt-new")
    );
    assert_eq!(rows(&db.path).len(), 2, "the older event is still stored");

    // Another type of the same device is its own row.
    let touch = event("evt-touch", "dev1", "touch", "2023-01-01T00:00:00Z");
    assert_eq!(
        send(&service, signed(&touch)).await.outcome(),
        Some(StoreOutcome::Stored)
    );
    assert_eq!(
        latest(&db.path, "dev1", "touch").as_deref(),
        Some("evt-touch")
    );

    // A tie at the same instant: the greater event id wins, in either arrival order.
    for (first, second) in [("tie-a", "tie-b"), ("tie-d", "tie-c")] {
        let device = format!("dev-{first}");
        let at = "2024-02-01T00:00:00Z";
        send(&service, signed(&event(first, &device, "touch", at))).await;
        send(&service, signed(&event(second, &device, "touch", at))).await;
        let winner = first.max(second);
        assert_eq!(latest(&db.path, &device, "touch").as_deref(), Some(winner));
    }
}

#[tokio::test]
async fn a_verified_body_that_is_not_an_event_is_kept_under_its_sha256() {
    let db = db();
    let service = stack(DtStore::new(SqliteStore::open(&db.path).await.unwrap()));
    for body in [
        &b"not json at all"[..],
        br#"{"event":{"eventType":"touch"}}"#,
    ] {
        let body = Bytes::copy_from_slice(body);
        let answer = send(&service, signed(&body)).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.outcome(), Some(StoreOutcome::NotAnEvent));
    }
    let rows = rows(&db.path);
    assert_eq!(rows.len(), 2);
    use sha2::Digest as _;
    let digest = hex::encode(sha2::Sha256::digest(b"not json at all"));
    assert_eq!(
        rows[0],
        (
            format!("{BODY_KEY_PREFIX}{digest}"),
            b"not json at all".to_vec()
        )
    );
    let conn = Connection::open(&db.path).unwrap();
    let latest: i64 = conn
        .query_row("SELECT count(*) FROM dt_latest", [], |row| row.get(0))
        .unwrap();
    assert_eq!(latest, 0, "not an event: no latest row");
}

#[tokio::test]
async fn without_the_layer_it_answers_500_and_stores_nothing() {
    let db = db();
    let store = DtStore::new(SqliteStore::open(&db.path).await.unwrap());
    let body = event("evt-unverified", "dev1", "touch", "2024-01-01T00:00:00Z");
    let answer = send(&store, signed(&body)).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.text, "store mounted without DtSignatureLayer");
    assert_eq!(answer.report, None);
    assert!(rows(&db.path).is_empty());
}

#[tokio::test]
async fn behind_a_report_only_layer_a_refused_request_is_answered_as_refused_and_not_stored() {
    let db = db();
    let store = DtStore::new(SqliteStore::open(&db.path).await.unwrap());
    let service = DtSignatureLayer::new(SECRET).report_only(true).layer(store);
    let body = event("evt-forged", "dev1", "touch", "2024-01-01T00:00:00Z");
    let forged = Request::post("/")
        .header(
            "x-dt-signature",
            tower_dt_signature::testing::Signer::new("another-secret").sign(&body),
        )
        .body(Full::new(body.clone()))
        .unwrap();
    let answer = send(&service, forged).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.text, "invalid token signature");
    assert!(rows(&db.path).is_empty(), "refused bytes are never stored");

    // A verified request behind the same layer is stored.
    let answer = send(&service, signed(&body)).await;
    assert_eq!(answer.outcome(), Some(StoreOutcome::Stored));
    assert_eq!(
        rows(&db.path),
        vec![("evt-forged".to_owned(), body.to_vec())]
    );
}

#[tokio::test]
async fn a_full_disk_answers_503_and_leaves_nothing_half_written() {
    let db = db();
    // 64 KiB in all: a few events of 4 KiB fill it.
    let store = SqliteStore::builder(&db.path)
        .max_size(64 * 1024)
        .open()
        .await
        .unwrap();
    let service = stack(DtStore::new(store));
    let mut accepted = Vec::new();
    let mut full = None;
    for index in 0..100 {
        let padding = "x".repeat(4000);
        let body = Bytes::from(
            String::from_utf8(
                event(
                    &format!("evt-{index:03}"),
                    "dev1",
                    "touch",
                    "2024-01-01T00:00:00Z",
                )
                .to_vec(),
            )
            .unwrap()
            .replace(
                r#""labels":{}"#,
                &format!(r#""labels":{{"pad":"{padding}"}}"#),
            ),
        );
        let answer = send(&service, signed(&body)).await;
        match answer.status {
            StatusCode::OK => accepted.push((format!("evt-{index:03}"), body.to_vec())),
            StatusCode::SERVICE_UNAVAILABLE => {
                full = Some(answer);
                break;
            }
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    let full = full.expect("the cap is reached");
    assert_eq!(full.text, "store unavailable");
    assert_eq!(
        full.outcome(),
        Some(StoreOutcome::Failed(StoreErrorKind::Full))
    );
    assert!(!accepted.is_empty());
    // Every 200 is in the file, whole, and nothing else: the failed batch rolled back.
    assert_eq!(rows(&db.path), accepted);
    let conn = Connection::open(&db.path).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[tokio::test]
async fn the_database_going_away_answers_503_and_the_store_recovers_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let path = data.join("events.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let shared = Arc::new(store);
    let service = stack(DtStore::from_arc(shared.clone()));
    let before = event("evt-before", "dev1", "touch", "2024-01-01T00:00:00Z");
    assert_eq!(send(&service, signed(&before)).await.status, StatusCode::OK);
    shared.ready().await.unwrap();

    // The directory moved away (CI runs as root, which permission bits do not stop; a
    // file that is gone is what an unmounted or replaced volume looks like).
    let away = dir.path().join("away");
    std::fs::rename(&data, &away).unwrap();
    let during = event("evt-during", "dev1", "touch", "2024-01-01T00:00:01Z");
    let answer = send(&service, signed(&during)).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        answer.outcome(),
        Some(StoreOutcome::Failed(StoreErrorKind::Unavailable))
    );
    let error = shared.ready().await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unavailable);
    assert!(error.to_string().contains("events.db"), "{error}");

    std::fs::rename(&away, &data).unwrap();
    let answer = send(&service, signed(&during)).await;
    assert_eq!(
        answer.outcome(),
        Some(StoreOutcome::Stored),
        "{}",
        answer.text
    );
    shared.ready().await.unwrap();
    let keys: Vec<String> = rows(&path).into_iter().map(|(key, _)| key).collect();
    assert_eq!(keys, ["evt-before", "evt-during"]);
}

#[tokio::test]
async fn a_newer_schema_is_refused_naming_both_versions() {
    let db = db();
    drop(SqliteStore::open(&db.path).await.unwrap());
    let conn = Connection::open(&db.path).unwrap();
    conn.execute("UPDATE dt_schema SET version = ?1", [SCHEMA_VERSION + 1])
        .unwrap();
    drop(conn);
    let error = SqliteStore::open(&db.path).await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::SchemaTooNew);
    let text = error.to_string();
    assert!(
        text.contains(&format!("version {}", SCHEMA_VERSION + 1)),
        "{text}"
    );
    assert!(
        text.contains(&format!("version {SCHEMA_VERSION}")),
        "{text}"
    );
}

#[tokio::test]
async fn a_file_that_cannot_be_created_is_a_configuration_error() {
    let error = SqliteStore::open("/nonexistent-dir/events.db")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Config);
    assert!(
        error.to_string().contains("/nonexistent-dir/events.db"),
        "{error}"
    );

    let dir = tempfile::tempdir().unwrap();
    let not_a_db = dir.path().join("notes.txt");
    std::fs::write(
        &not_a_db,
        "hello, this is not a database file at all........",
    )
    .unwrap();
    let error = SqliteStore::open(&not_a_db).await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Config, "{error}");
}

#[tokio::test]
async fn the_file_is_created_with_mode_0600_in_wal_mode() {
    let db = db();
    let store = SqliteStore::open(&db.path).await.unwrap();
    let service = stack(DtStore::new(store));
    send(
        &service,
        signed(&event("e", "d", "touch", "2024-01-01T00:00:00Z")),
    )
    .await;
    let mode = std::fs::metadata(&db.path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let conn = Connection::open(&db.path).unwrap();
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
}

#[tokio::test]
async fn two_stores_on_one_file_keep_one_row_per_event() {
    let db = db();
    // Two stores opened at once on a new file: both create-or-check the schema.
    let (a, b) = tokio::join!(SqliteStore::open(&db.path), SqliteStore::open(&db.path));
    let a = stack(DtStore::new(a.unwrap()));
    let b = stack(DtStore::new(b.unwrap()));
    let mut tasks = Vec::new();
    for index in 0..50 {
        let body = event(
            &format!("evt-{}", index % 10),
            "dev1",
            "touch",
            "2024-01-01T00:00:00Z",
        );
        for service in [a.clone(), b.clone()] {
            let request = signed(&body);
            tasks.push(tokio::spawn(async move { send(&service, request).await }));
        }
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().status, StatusCode::OK);
    }
    let mut keys: Vec<String> = rows(&db.path).into_iter().map(|(key, _)| key).collect();
    keys.sort();
    let expected: Vec<String> = (0..10).map(|index| format!("evt-{index}")).collect();
    assert_eq!(keys, expected);
}

#[tokio::test]
async fn a_short_retention_is_refused() {
    let db = db();
    let error = SqliteStore::builder(&db.path)
        .retention(std::time::Duration::from_secs(12 * 3600))
        .open()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Config);
    assert!(!db.path.exists() || rows(&db.path).is_empty());
}

#[tokio::test]
async fn dt_asymmetric_signature_is_kept_as_evidence_with_its_kid() {
    use tower_dt_signature::testing::AsymmetricSigner;
    use tower_dt_signature::Verifier;

    let db = db();
    let signer = AsymmetricSigner::generate().with_org_id("org-store");
    let verifier = Verifier::either(SECRET, signer.dt_keys(), "org-store");
    let service = DtSignatureLayer::from(verifier)
        .layer(DtStore::new(SqliteStore::open(&db.path).await.unwrap()));
    let body = event("evt-es256", "dev1", "touch", "2024-01-01T00:00:00Z");
    let token = signer.sign(&body);
    let request = Request::post("/")
        .header("dt-asymmetric-signature", &token)
        .body(Full::new(body.clone()))
        .unwrap();
    let answer = send(&service, request).await;
    assert_eq!(
        answer.outcome(),
        Some(StoreOutcome::Stored),
        "{}",
        answer.text
    );

    // An HMAC-verified request under `either` keeps no asymmetric token.
    let hmac = event("evt-hmac", "dev1", "touch", "2024-01-01T00:00:01Z");
    assert_eq!(
        send(&service, signed(&hmac)).await.outcome(),
        Some(StoreOutcome::Stored)
    );

    let conn = Connection::open(&db.path).unwrap();
    let row = |id: &str| -> (String, Option<String>, Option<String>) {
        conn.query_row(
            "SELECT schemes, asymmetric_token, asymmetric_kid FROM dt_event WHERE event_key = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap()
    };
    assert_eq!(
        row("evt-es256"),
        (
            "asymmetric".into(),
            Some(token),
            Some(signer.kid().to_owned())
        )
    );
    assert_eq!(row("evt-hmac"), ("hmac".into(), None, None));
}

#[tokio::test]
async fn a_gateway_stores_each_tenant_apart() {
    use tower_dt_signature::gateway::StaticSecrets;
    use tower_dt_signature::testing::Signer;
    use tower_dt_signature::Verifier;

    let db = db();
    let secrets = StaticSecrets::by_path_segment(1)
        .tenant("warehouse", Verifier::new("warehouse secret"))
        .tenant("office", Verifier::new("office secret"));
    let service = DtSignatureLayer::gateway(secrets)
        .layer(DtStore::new(SqliteStore::open(&db.path).await.unwrap()));
    // The same event id at two connectors: two tenants, two rows.
    let body = event("evt-same", "dev1", "touch", "2024-01-01T00:00:00Z");
    for (tenant, secret) in [
        ("warehouse", "warehouse secret"),
        ("office", "office secret"),
    ] {
        let request = Signer::new(secret)
            .request::<Full<Bytes>>(&format!("/dt/{tenant}"), body.clone())
            .unwrap();
        let answer = send(&service, request).await;
        assert_eq!(
            answer.outcome(),
            Some(StoreOutcome::Stored),
            "{tenant}: {}",
            answer.text
        );
        assert_eq!(answer.report.unwrap().tenant, tenant);
    }
    let conn = Connection::open(&db.path).unwrap();
    let mut statement = conn
        .prepare("SELECT tenant, event_key FROM dt_event ORDER BY tenant")
        .unwrap();
    let rows: Vec<(String, String)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        [
            ("office".into(), "evt-same".into()),
            ("warehouse".into(), "evt-same".into())
        ]
    );
    let latest: i64 = conn
        .query_row(
            "SELECT count(*) FROM dt_latest WHERE device = 'dev1'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(latest, 2, "one latest row per tenant");
}

#[tokio::test]
async fn pruning_deletes_old_rows_keeps_recent_ones_and_dt_latest() {
    use std::time::{Duration, SystemTime};

    let db = db();
    let store = Arc::new(SqliteStore::open(&db.path).await.unwrap());
    let two_days_ago = SystemTime::now() - Duration::from_secs(48 * 3600);
    let old = stack(DtStore::from_arc(store.clone()).clock(move || two_days_ago));
    let new = stack(DtStore::from_arc(store.clone()));
    let first = event("evt-old", "dev1", "touch", "2024-01-01T00:00:00Z");
    let second = event("evt-new", "dev2", "touch", "2024-01-01T00:00:00Z");
    assert_eq!(
        send(&old, signed(&first)).await.outcome(),
        Some(StoreOutcome::Stored)
    );
    assert_eq!(
        send(&new, signed(&second)).await.outcome(),
        Some(StoreOutcome::Stored)
    );

    let error = store
        .prune(Duration::from_secs(13 * 3600))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Config, "shorter than 24 h");
    assert_eq!(
        store.prune(Duration::from_secs(24 * 3600)).await.unwrap(),
        1
    );
    let keys: Vec<String> = rows(&db.path).into_iter().map(|(key, _)| key).collect();
    assert_eq!(keys, ["evt-new"]);
    assert_eq!(
        latest(&db.path, "dev1", "touch").as_deref(),
        Some("evt-old"),
        "dt_latest is kept"
    );
}
