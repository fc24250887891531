//! `dt-signature serve`, the built binary, over real HTTP on 127.0.0.1, storing into a
//! real SQLite file that each test reads back; `dt-signature events` on the same file.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::bin;
use support::serve::*;
use support::TempDir;
use tower_dt_signature::testing::Signer;

fn sqlite(dir: &TempDir) -> (String, PathBuf) {
    let path = dir.join("events.db");
    (format!("sqlite:{}", path.display()), path)
}

#[test]
fn serve_stores_each_event_once_and_events_shows_it() {
    let dir = TempDir::new("serve-store");
    let (store, path) = sqlite(&dir);
    let serve = Serve::start(&store, &[]);

    let (status, text) = get(serve.addr, "/ready");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("the store answers"), "{text}");

    let newer = event("evt-2", "dev1", "2024-05-01T10:00:00.000002Z");
    let older = event("evt-1", "dev1", "2024-05-01T10:00:00.000001Z");
    assert_eq!(post(serve.addr, &newer, SECRET), (200, "stored".into()));
    assert_eq!(post(serve.addr, &newer, SECRET), (200, "duplicate".into()));
    assert_eq!(post(serve.addr, &older, SECRET), (200, "stored".into()));
    let (status, text) = post(serve.addr, &older, "another-secret");
    assert_eq!((status, text.as_str()), (400, "invalid token signature"));

    assert_eq!(
        bodies(&path),
        vec![
            ("evt-2".into(), newer.clone()),
            ("evt-1".into(), older.clone())
        ],
        "one row per event, the exact bytes, the refused one absent"
    );

    let (status, metrics) = get(serve.addr, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            r#"dt_signature_requests_total{outcome="accepted",kind="none",scheme="hmac"} 3"#
        ),
        "{metrics}"
    );

    for line in [
        r#"dt_store_requests_total{outcome="stored"} 1"#,
        r#"dt_store_requests_total{outcome="stored_not_latest"} 1"#,
        r#"dt_store_requests_total{outcome="duplicate"} 1"#,
    ] {
        assert!(metrics.contains(line), "no {line} in {metrics}");
    }

    let output = bin::run_with(&["events", "--store", &store, "--json"], &[]);
    let (code, shown) = bin::status(&output);
    assert_eq!(code, 0, "{shown}");
    let summary: serde_json::Value = serde_json::from_str(&bin::stdout(&output)).unwrap();
    assert_eq!(summary["events_by_type"][0]["event_type"], "temperature");
    assert_eq!(summary["events_by_type"][0]["count"], 2);
    assert_eq!(
        summary["latest"][0]["event_id"], "evt-2",
        "the newest by timestamp"
    );
    let human = bin::stdout(&bin::run_with(&["events", "--store", &store], &[]));
    assert!(human.contains("2 events, 0 other bodies"), "{human}");
    assert!(
        human.contains("dev1 temperature: evt-2 at 2024-05-01T10:00:00.000002Z"),
        "{human}"
    );

    let (code, log) = serve.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("event_id=evt-2"), "{log}");
    assert!(log.contains("outcome=duplicate"), "{log}");
    assert!(
        log.contains(r#"reason="invalid token signature" scheme="hmac""#),
        "{log}"
    );
    assert!(!log.contains(SECRET), "no secret in the log");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_then_exits_0() {
    let dir = TempDir::new("serve-sigterm");
    let (store, path) = sqlite(&dir);
    let serve = Serve::start(&store, &[]);
    let body = event("evt-inflight", "dev1", "2024-05-01T10:00:00Z");
    let token = Signer::new(SECRET).sign(&body);

    let mut stream = TcpStream::connect(serve.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .write_all(post_head(&body, &token).as_bytes())
        .unwrap();
    stream.write_all(&body[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let pid = serve.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // It stopped accepting: a new connection is refused.
    assert!(TcpStream::connect(serve.addr).is_err(), "still accepting");
    stream.write_all(&body[10..]).unwrap();
    assert_eq!(read_response(&mut stream), (200, "stored".into()));

    let (code, log) = serve.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("SIGTERM: shutting down"), "{log}");
    assert_eq!(bodies(&path), vec![("evt-inflight".into(), body)]);
}

#[test]
fn the_store_going_away_is_503_and_shown_by_ready_until_it_is_back() {
    let dir = TempDir::new("serve-away");
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    let path = data.join("events.db");
    let serve = Serve::start(&format!("sqlite:{}", path.display()), &[]);
    assert_eq!(
        post(
            serve.addr,
            &event("evt-a", "d", "2024-05-01T10:00:00Z"),
            SECRET
        )
        .0,
        200
    );

    let away = dir.join("away");
    std::fs::rename(&data, &away).unwrap();
    let during = event("evt-b", "d", "2024-05-01T10:00:01Z");
    assert_eq!(
        post(serve.addr, &during, SECRET),
        (503, "store unavailable".into())
    );
    let (status, text) = get(serve.addr, "/ready");
    assert_eq!(status, 503, "{text}");
    assert!(
        text.contains("events.db") && text.contains("gone"),
        "{text}"
    );

    std::fs::rename(&away, &data).unwrap();
    assert_eq!(post(serve.addr, &during, SECRET), (200, "stored".into()));
    assert_eq!(get(serve.addr, "/ready").0, 200);
    let keys: Vec<String> = bodies(&path).into_iter().map(|(key, _)| key).collect();
    assert_eq!(keys, ["evt-a", "evt-b"]);
    assert!(serve.log().contains("event not stored: DT retries"));
}

#[test]
fn bad_configuration_refuses_to_start_naming_the_variable_with_exit_2() {
    let dir = TempDir::new("serve-config");
    let newer = dir.join("newer.db");
    {
        let conn = rusqlite::Connection::open(&newer).unwrap();
        conn.execute_batch(
            "CREATE TABLE dt_schema (version INTEGER NOT NULL); INSERT INTO dt_schema VALUES (99);",
        )
        .unwrap();
    }
    let newer_store = format!("sqlite:{}", newer.display());
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("DT_STORE", "mysql://dt:hunter2@db/dt")], "DT_STORE="),
        (
            &[("DT_STORE", "sqlite:/nonexistent-dir/events.db")],
            "DT_STORE=sqlite:/nonexistent-dir/events.db",
        ),
        (&[("DT_STORE", &newer_store)], "version 99"),
        (
            &[("DT_SIGNATURE_SECRET", "")],
            "DT_SIGNATURE_SECRET is required",
        ),
        (
            &[("PORT", "eighty")],
            r#"PORT="eighty" must be a port number"#,
        ),
        (&[("DT_SIGNATURE_SCHEME", "rsa")], "DT_SIGNATURE_SCHEME"),
    ];
    for (env, expected) in cases {
        let mut all = vec![
            ("DT_SIGNATURE_SECRET", SECRET),
            ("PORT", "0"),
            ("DT_STORE", "sqlite:/tmp/never-used-by-this-test.db"),
        ];
        all.retain(|(name, _)| !env.iter().any(|(n, _)| n == name));
        all.extend(env.iter().copied());
        let output = bin::run_with(&["serve", "--host", "127.0.0.1"], &all);
        let (code, shown) = bin::status(&output);
        assert_eq!(code, 2, "{env:?}: {shown}");
        let stderr = bin::stderr(&output);
        assert!(stderr.contains(expected), "{env:?}: {shown}");
        assert!(!stderr.contains("hunter2"), "no password: {shown}");
    }
    assert!(!Path::new("/tmp/never-used-by-this-test.db").exists());
}

#[test]
fn serve_with_dt_asymmetric_signature_keeps_dt_s_token_as_evidence() {
    use tower_dt_signature::testing::AsymmetricSigner;

    let dir = TempDir::new("serve-es256");
    let (store, path) = sqlite(&dir);
    let signer = AsymmetricSigner::generate().with_org_id("org-serve");
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, signer.jwks()).unwrap();
    let jwks = jwks.display().to_string();
    let serve = Serve::start(
        &store,
        &[
            ("DT_SIGNATURE_SCHEME", "asymmetric"),
            ("DT_SIGNATURE_SECRET", ""),
            ("DT_ORG_ID", "org-serve"),
            ("DT_JWKS_FILE", &jwks),
            ("DT_ISSUER", signer.issuer()),
        ],
    );
    let body = event("evt-es256", "dev1", "2024-05-01T10:00:00Z");
    let token = signer.sign(&body);
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nDT-Asymmetric-Signature: {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(&body);
    assert_eq!(exchange(serve.addr, &request), (200, "stored".into()));
    // Signed for another organization: refused, not stored.
    let other = AsymmetricSigner::generate().with_org_id("someone-else");
    let forged = event("evt-other-org", "dev1", "2024-05-01T10:00:01Z");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nDT-Asymmetric-Signature: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        other.sign(&forged),
        forged.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(&forged);
    assert_eq!(exchange(serve.addr, &request).0, 400);

    let conn = rusqlite::Connection::open(&path).unwrap();
    let (schemes, kept, kid): (String, String, String) = conn
        .query_row(
            "SELECT schemes, asymmetric_token, asymmetric_kid FROM dt_event WHERE event_key = 'evt-es256'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (schemes.as_str(), kid.as_str()),
        ("asymmetric", signer.kid())
    );
    assert_eq!(kept, token, "DT's token, as received");
    assert_eq!(bodies(&path).len(), 1);
    let log = serve.log();
    assert!(!log.contains(&token), "no token in the log");
}

/// Issue 23: after `dt-signature send` (HMAC) and an ES256 request, `/metrics` shows every
/// new series, histograms as bucketed Prometheus histograms (no summary), each metric with
/// its `# HELP`, and `promtool check metrics` finds nothing to lint.
#[test]
fn metrics_pass_promtool_and_show_every_new_series() {
    use support::promtool::{promtool, shown};
    use tower_dt_signature::testing::AsymmetricSigner;

    let dir = TempDir::new("serve-promtool");
    let (store, _) = sqlite(&dir);
    let signer = AsymmetricSigner::generate();
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, signer.jwks()).unwrap();
    let serve = Serve::start(
        &store,
        &[
            ("DT_SIGNATURE_SCHEME", "either"),
            ("DT_ORG_ID", signer.org_id()),
            ("DT_JWKS_FILE", jwks.to_str().unwrap()),
            ("DT_ISSUER", signer.issuer()),
        ],
    );
    let url = format!("http://{}/", serve.addr);
    let output = bin::run_with(
        &[
            "send",
            "--url",
            &url,
            "--secret",
            SECRET,
            "--type",
            "touch,temperature",
            "--duplicates",
            "2",
        ],
        &[],
    );
    let (code, text) = bin::status(&output);
    assert_eq!(code, 0, "{text}");
    // ES256 only: the signing lag.
    let body = event("evt-es", "dev-es", "2024-05-01T10:00:00Z");
    let token = signer.sign(&body);
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nDT-Asymmetric-Signature: {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    assert_eq!(exchange(serve.addr, &request), (200, "stored".into()));
    // The sender's clock ahead: counted, recorded as 0.
    let ahead = event("evt-ahead", "dev1", "2099-01-01T00:00:00Z");
    assert_eq!(post(serve.addr, &ahead, SECRET), (200, "stored".into()));

    let (status, metrics) = get(serve.addr, "/metrics");
    assert_eq!(status, 200);
    let output = promtool(&["check", "metrics"], metrics.as_bytes());
    let (code, linted) = shown(&output);
    assert_eq!(code, 0, "promtool check metrics: {linted}\n{metrics}");
    assert!(!metrics.contains("quantile="), "a summary: {metrics}");
    for histogram in [
        "dt_signature_verification_seconds",
        "dt_signature_body_bytes",
        "dt_signature_signing_lag_seconds",
        "dt_store_event_age_seconds",
        "dt_store_commit_seconds",
        "dt_store_batch_size",
    ] {
        for line in [
            format!("# HELP {histogram} "),
            format!("# TYPE {histogram} histogram"),
            format!("{histogram}_bucket{{"),
            format!("{histogram}_count"),
        ] {
            assert!(metrics.contains(&line), "no {line:?} in {metrics}");
        }
    }
    for line in [
        "# HELP dt_store_last_accepted_timestamp_seconds ",
        "dt_store_last_accepted_timestamp_seconds{tenant=\"-\"} ",
        "dt_store_event_from_future_total 1",
        "dt_store_commit_seconds_bucket{backend=\"sqlite\",le=\"0.001\"}",
        "dt_signature_signing_lag_seconds_bucket{le=\"300\"} 1",
        r#"dt_signature_requests_total{outcome="accepted",kind="none",scheme="asymmetric"} 1"#,
        r#"dt_store_requests_total{outcome="duplicate"} "#,
    ] {
        assert!(metrics.contains(line), "no {line:?} in {metrics}");
    }
    // Every metric has its help text.
    for line in metrics.lines().filter(|line| line.starts_with("# TYPE ")) {
        let name = line.split(' ').nth(2).unwrap();
        assert!(
            metrics.contains(&format!("# HELP {name} ")),
            "{name} has no # HELP"
        );
    }
}
