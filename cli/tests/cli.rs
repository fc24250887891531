//! The built `dt-signature` binary, run as a user runs it: `identity` serving discovery
//! over 127.0.0.1 until Ctrl-C; `send` into in-process receivers (both schemes,
//! `--tamper`) and its per-user key file; `--help` of every subcommand. `explain` and
//! `keys` have their own files.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use support::bin::{expect, run, run_beside, status, stderr, stdout, BIN};
use support::{recording_receiver, serve, TempDir};
use tower_dt_signature::testing::AsymmetricSigner;
use tower_dt_signature::{DtSignatureLayer, Verifier};

// ---------------------------------------------------------------------------------------
// identity

/// A GET over 127.0.0.1 (HTTP/1.1, `Connection: close`): the status line and the body.
fn get(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let addr: SocketAddr = host.parse().unwrap();
    assert!(addr.ip().is_loopback());
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// `dt-signature identity` on a free port: it prints the discovery URL and the receiver's
/// variables, serves discovery and the connector's key over 127.0.0.1, and stops on
/// Ctrl-C (SIGINT) with exit 0.
#[test]
fn identity_serves_discovery_until_ctrl_c() {
    let dir = TempDir::new("identity");
    let key_file = dir.key_file();
    let mut child = Command::new(BIN)
        .args([
            "identity",
            "--addr",
            "127.0.0.1:0",
            "--org-id",
            "my-org",
            "--key-file",
        ])
        .arg(&key_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("up until Ctrl-C");
        printed.push(line);
        if done {
            break;
        }
    }
    let find = |prefix: &str| {
        printed
            .iter()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {printed:#?}"))
            .trim()
            .to_owned()
    };
    let discovery_url = find("discovery:");
    assert_eq!(find("DT_OIDC_DISCOVERY_URL="), discovery_url);
    assert_eq!(find("DT_ORG_ID="), "my-org");
    assert_eq!(find("DT_SIGNATURE_SCHEME="), "asymmetric");
    assert!(
        discovery_url.starts_with("http://127.0.0.1:"),
        "{discovery_url}"
    );
    assert!(discovery_url.ends_with("/data-connector/.well-known/openid-configuration"));
    assert!(key_file.exists(), "the key is saved");

    let (status_line, body) = get(&discovery_url);
    assert!(status_line.contains(" 200 "), "{status_line}");
    let document: Value = serde_json::from_str(&body).unwrap();
    let issuer = discovery_url.trim_end_matches("/.well-known/openid-configuration");
    assert_eq!(document["issuer"], issuer);
    let (status_line, jwks) = get(document["jwks_uri"].as_str().unwrap());
    assert!(status_line.contains(" 200 "), "{status_line}");
    // The key served is the key file's.
    let signer = AsymmetricSigner::from_pkcs8_file(&key_file).unwrap();
    let jwks: Value = serde_json::from_str(&jwks).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], signer.kid());
    assert!(printed[0].contains(signer.kid()), "{printed:#?}");

    // Ctrl-C.
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(rest.iter().any(|line| line.contains("stopped")), "{rest:?}");
}

#[test]
fn identity_on_a_taken_address_exits_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = TempDir::new("identity-taken");
    let key = dir.key_file().display().to_string();
    let output = run(&["identity", "--addr", &addr, "--key-file", &key]);
    let shown = expect(&output, 2, &[]);
    assert!(stderr(&output).contains("choose another --addr"), "{shown}");
}

// ---------------------------------------------------------------------------------------
// send

/// `dt-signature send` with `args`, as [`run_beside`] runs them.
async fn send(args: String, env: &[(&str, &str)]) -> Output {
    run_beside(format!("send {args}"), env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_delivers_to_a_verifying_receiver_and_tamper_is_refused() {
    let (url, seen) = recording_receiver(DtSignatureLayer::new("change-me")).await;
    let base = format!("--url {url} --secret change-me --type");
    let output = send(format!("{base} touch,co2 --count 2"), &[]).await;
    let header = format!("dt-signature send: 4 events (2 types x 2) to {url} (4 at a time)");
    let expected = [&header, "  success: 4\n  error:   0\n", "answers: 200 x4"];
    expect(&output, 0, &expected);
    assert_eq!(seen.lock().unwrap().len(), 4);

    let output = send(format!("{base} touch --count 6 --tamper"), &[]).await;
    let expected = ["6 tampered requests", "  refused:  6\n  ACCEPTED: 0\n"];
    expect(&output, 0, &expected);
    let reached = seen.lock().unwrap().len();
    assert_eq!(reached, 4, "no tampered request reached the handler");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_tamper_exits_1_when_a_receiver_accepts_everything() {
    let url = serve(Router::new().route("/", post(|_: Bytes| async { "ok" }))).await;
    let args = format!("--url {url} --secret s --type touch --count 2 --tamper");
    // Every HMAC kind once for the one type: --count is ignored, with a note (before
    // issue 25, --count 2 ran two kinds and this read "ACCEPTED: 2").
    let expected = [
        "dt-signature send: 6 tampered requests (6 kinds x 1 type) to ",
        "  note: --count is ignored with --tamper",
        "  ACCEPTED: 6\n",
        "accepted a tampered request: BodyByte (touch)",
        "accepted a tampered request: OtherBody (touch)",
    ];
    expect(&send(args, &[]).await, 1, &expected);
}

/// After a run, the reasons: the first answer of each refusal status, and why no answer
/// came; --tamper lists each kind with its answer. "1 event", "1 type".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_says_why_requests_were_refused_or_not_answered() {
    let (url, _seen) = recording_receiver(DtSignatureLayer::new("change-me")).await;
    let args = format!("--url {url} --secret another --type touch --max-attempts 1");
    let expected = [
        &format!("dt-signature send: 1 event (1 type x 1) to {url}") as &str,
        "  why (the first answer of each status):\n    400 invalid token signature\n",
    ];
    expect(&send(args, &[]).await, 1, &expected);

    let args = format!("--url {url} --secret change-me --type touch --tamper");
    let output = send(args, &[]).await;
    let listed = [
        "    BodyByte (touch)     a body byte changed         refused  400 checksum mismatch\n",
        "    NoSignature (touch)  no X-Dt-Signature           refused  400 missing X-Dt-Signature header\n",
        "    OtherBody (touch)    HMAC token of another body  refused  400 checksum mismatch\n",
    ];
    expect(&output, 0, &listed);

    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let args = format!(
        "--url http://{addr}/ --secret s --type touch,co2 --max-attempts 1 --timeout-ms 2000"
    );
    let refused = format!("    no answer x2: connection refused to {addr}\n");
    expect(
        &send(args, &[]).await,
        1,
        &["2 events (2 types x 1)", &refused],
    );
}

/// `--body FILE` on the command line; a bad --ca-cert or URL scheme is a usage error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_body_file_and_bad_tls_arguments() {
    let dir = TempDir::new("send-body");
    let body = dir.join("event.json");
    std::fs::write(&body, b"{\"event\":{\"eventId\":\"x\"}}").unwrap();
    let url = serve(Router::new().route("/", post(|_: Bytes| async { "ok" }))).await;
    let args = format!("--url {url} --secret s --body {} --count 2", body.display());
    expect(&send(args, &[]).await, 0, &["2 events (", "  success: 2\n"]);

    let not_pem = dir.join("ca.pem");
    std::fs::write(
        &not_pem,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    for (args, message) in [
        (
            "--url ftp://x/ --secret s".to_owned(),
            "--url must start with http:// or https://",
        ),
        (
            format!(
                "--url https://127.0.0.1:1/ --secret s --ca-cert {}",
                not_pem.display()
            ),
            "holds no CERTIFICATE",
        ),
        (
            format!(
                "--url https://127.0.0.1:1/ --secret s --ca-cert {}",
                dir.join("none.pem").display()
            ),
            "cannot read it",
        ),
    ] {
        let output = send(args, &[]).await;
        let (status, shown) = status(&output);
        assert_eq!(status, 2, "{shown}");
        assert!(stderr(&output).contains(message), "{shown}");
        assert_eq!(stderr(&output).lines().count(), 1, "{shown}");
    }
}

/// `--scheme both` with an identity address and key file a receiver pinned beforehand
/// (same issuer, same key): delivered; tampered one token at a time: refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_both_schemes_to_a_receiver_requiring_both() {
    let dir = TempDir::new("send-both");
    let key_file = dir.key_file();
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    // What the receiver pins: the key file's key for the issuer at `addr`.
    std::fs::create_dir_all(key_file.parent().unwrap()).unwrap();
    let signer = AsymmetricSigner::load_or_generate(&key_file).unwrap();
    let issuer = format!("http://{addr}/data-connector");
    let keys = tower_dt_signature::keys::DtKeys::from_jwks(&issuer, &signer.jwks()).unwrap();
    let verifier = Verifier::both("change-me", keys, "org-1").require_sha256(true);
    let (url, seen) = recording_receiver(DtSignatureLayer::from(verifier)).await;

    let base = format!(
        "--url {url} --scheme both --secret change-me --org-id org-1 --identity-addr {addr} \
         --key-file {}",
        key_file.display()
    );
    let output = send(format!("{base} --type temperature,contact"), &[]).await;
    let key = format!("key {} (read from", signer.kid());
    let give =
        format!("DT_OIDC_DISCOVERY_URL={issuer}/.well-known/openid-configuration DT_ORG_ID=org-1");
    let signed = "  signed: X-Dt-Signature and DT-Asymmetric-Signature (ES256)";
    expect(&output, 0, &[&key, &give, signed, "  success: 2\n"]);
    assert_eq!(seen.lock().unwrap().len(), 2);

    let output = send(format!("{base} --type touch --count 14 --tamper"), &[]).await;
    expect(&output, 0, &["  refused:  14\n  ACCEPTED: 0\n"]);
    assert_eq!(seen.lock().unwrap().len(), 2);
}

/// Without --key-file the key lives in the per-user data directory, not under the
/// working directory's target/.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_keeps_its_key_in_the_per_user_data_directory() {
    let url = serve(Router::new().route("/", post(|_: Bytes| async { "ok" }))).await;
    let (data, home) = (TempDir::new("send-xdg"), TempDir::new("send-home"));
    let args = format!("--url {url} --scheme asymmetric --identity-addr 127.0.0.1:0 --type touch");
    let xdg = data.path().display().to_string();
    let output = send(args.clone(), &[("XDG_DATA_HOME", &xdg)]).await;
    let expected: PathBuf = data.join("dt-signature/es256-key.p8");
    let saved = format!("new, saved to {}", expected.display());
    let shown = expect(&output, 0, &[&saved]);
    assert!(expected.exists(), "{shown}");

    // No XDG_DATA_HOME: ~/.local/share.
    let home_dir = home.path().display().to_string();
    let output = send(args, &[("XDG_DATA_HOME", ""), ("HOME", &home_dir)]).await;
    let shown = expect(&output, 0, &[]);
    let key = home.join(".local/share/dt-signature/es256-key.p8");
    assert!(key.exists(), "{shown}");
}

/// `--duplicates` and `--out-of-order` (issue 21) are in `send --help`, with examples.
#[test]
fn send_help_shows_the_store_exercises() {
    let output = run(&["send", "--help"]);
    let expected = [
        "--duplicates <N>",
        "--out-of-order",
        "dt-signature send --secret change-me --type touch --duplicates 3",
        "dt-signature send --secret change-me --type temperature --count 5 --out-of-order",
        "--ca-cert <FILE>",
        "--body <FILE>",
    ];
    expect(&output, 0, &expected);
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    for (command, example) in [
        ("send", "dt-signature send --url"),
        ("identity", "dt-signature identity --org-id"),
        ("keys", "dt-signature keys --jwks"),
        ("explain", "dt-signature explain --secret-file"),
    ] {
        let output = run(&[command, "--help"]);
        let shown = expect(&output, 0, &[]);
        assert!(stdout(&output).contains(example), "{command}: {shown}");
    }
    let output = run(&["--help"]);
    for command in ["send", "identity", "keys", "explain"] {
        assert!(stdout(&output).contains(command));
    }
}
