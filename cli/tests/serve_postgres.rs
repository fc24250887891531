//! `dt-signature serve` on a real PostgreSQL (a throwaway cluster per test, started by the
//! test: `store/tests/support/postgres.rs`): two replicas on one database, the database
//! going away and coming back, unreachable at start, refused credentials.

mod support;

#[path = "../../store/tests/support/postgres.rs"]
mod postgres;

use std::time::{Duration, Instant};

use postgres::{block_on, PgCluster};
use support::bin;
use support::serve::*;

fn database(cluster: &PgCluster, name: &str) -> String {
    block_on(cluster.database(name))
}

fn pg_rows(cluster: &PgCluster, db: &str) -> Vec<(String, Vec<u8>)> {
    block_on(cluster.rows(db))
}

/// Polls `/ready` until it answers `status`.
fn ready_becomes(serve: &Serve, status: u16) -> String {
    let started = Instant::now();
    loop {
        let (got, text) = get(serve.addr, "/ready");
        if got == status {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "/ready still {got}: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_replicas_on_one_database_keep_one_row_for_copies_sent_to_both_at_once() {
    let cluster = PgCluster::start();
    let url = database(&cluster, "dt");
    let a = Serve::start(&url, &[]);
    let b = Serve::start(&url, &[]);
    ready_becomes(&a, 200);
    ready_becomes(&b, 200);

    let burst = event("evt-both", "dev1", "2024-05-01T10:00:00Z");
    let mut threads = Vec::new();
    for copy in 0..100 {
        let addr = if copy % 2 == 0 { a.addr } else { b.addr };
        let body = burst.clone();
        threads.push(std::thread::spawn(move || post(addr, &body, SECRET)));
    }
    let mut stored = 0;
    for thread in threads {
        let (status, text) = thread.join().unwrap();
        assert_eq!(status, 200, "{text}");
        stored += usize::from(text == "stored");
    }
    assert_eq!(stored, 1, "one copy stored, the others duplicates");
    assert_eq!(pg_rows(&cluster, "dt"), vec![("evt-both".into(), burst)]);

    let output = bin::run_with(&["events", "--store", &url], &[]);
    let shown = bin::stdout(&output);
    assert!(shown.contains("1 event, 0 other bodies"), "{shown}");
    assert!(
        shown.starts_with("postgres://postgres:<redacted>@127.0.0.1:"),
        "{shown}"
    );
}

#[test]
fn the_database_going_away_is_503_shown_by_ready_and_serve_recovers() {
    let mut cluster = PgCluster::start();
    let url = database(&cluster, "dt");
    let serve = Serve::start(&url, &[]);
    ready_becomes(&serve, 200);
    let before = event("evt-before", "dev1", "2024-05-01T10:00:00Z");
    assert_eq!(post(serve.addr, &before, SECRET), (200, "stored".into()));

    cluster.stop();
    let during = event("evt-during", "dev1", "2024-05-01T10:00:01Z");
    let (status, text) = post(serve.addr, &during, SECRET);
    assert_eq!((status, text.as_str()), (503, "store unavailable"));
    let reason = ready_becomes(&serve, 503);
    assert!(
        reason.contains(&format!("127.0.0.1:{}", cluster.port())),
        "{reason}"
    );
    assert!(!reason.contains(postgres::PASSWORD), "{reason}");

    cluster.start_again();
    ready_becomes(&serve, 200);
    assert_eq!(post(serve.addr, &during, SECRET), (200, "stored".into()));
    let keys: Vec<String> = pg_rows(&cluster, "dt")
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(keys, ["evt-before", "evt-during"]);
}

#[test]
fn an_unreachable_database_at_start_is_not_bad_configuration() {
    let mut cluster = PgCluster::start();
    let url = database(&cluster, "dt");
    cluster.stop();
    let serve = Serve::start(&url, &[]);
    let reason = ready_becomes(&serve, 503);
    assert!(reason.contains("does not answer"), "{reason}");
    assert!(
        reason.contains(&format!("127.0.0.1:{}", cluster.port())),
        "{reason}"
    );
    let body = event("evt-late", "dev1", "2024-05-01T10:00:00Z");
    assert_eq!(post(serve.addr, &body, SECRET).0, 503);

    cluster.start_again();
    ready_becomes(&serve, 200);
    assert_eq!(post(serve.addr, &body, SECRET), (200, "stored".into()));
    assert_eq!(pg_rows(&cluster, "dt"), vec![("evt-late".into(), body)]);
}

#[test]
fn refused_credentials_are_bad_configuration_exit_2() {
    let cluster = PgCluster::start();
    let _ = database(&cluster, "dt");
    let wrong = format!(
        "postgres://postgres:not-the-password@127.0.0.1:{}/dt",
        cluster.port()
    );
    let output = bin::run_with(
        &["serve", "--host", "127.0.0.1"],
        &[
            ("DT_SIGNATURE_SECRET", SECRET),
            ("PORT", "0"),
            ("DT_STORE", &wrong),
        ],
    );
    let (code, shown) = bin::status(&output);
    assert_eq!(code, 2, "{shown}");
    let stderr = bin::stderr(&output);
    assert!(
        stderr.contains("DT_STORE=postgres://postgres:<redacted>@127.0.0.1"),
        "{shown}"
    );
    assert!(!stderr.contains("not-the-password"), "{shown}");
}
