//! The built `dt-signature keys`, run as a user runs it, against the test identity server
//! on 127.0.0.1 (and loopback listeners of its own): success with every kind of entry,
//! each failure class with exit 1, `--json`, pinned sets, and bad usage with exit 2.

mod support;

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};
use support::TempDir;
use tower_dt_signature::testing::{AsymmetricSigner, Behavior, Endpoint, IdentityServer};

const BIN: &str = env!("CARGO_BIN_EXE_dt-signature");

/// `dt-signature keys` with `args` in a blocking task (the identity server runs on the
/// test's runtime meanwhile).
async fn keys(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .arg("keys")
            .args(&args)
            .stdin(Stdio::null())
            .env_remove("DT_OIDC_DISCOVERY_URL")
            .output()
            .expect("the binary runs")
    })
    .await
    .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts the exit status and that stdout has each of `expected`; returns stdout.
fn expect(output: &Output, code: i32, expected: &[&str]) -> String {
    let out = stdout(output);
    let shown = format!(
        "stdout:\n{out}stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(code), "{shown}");
    for text in expected {
        assert!(out.contains(text), "no {text:?} in\n{shown}");
    }
    out
}

/// The `--json` report.
fn json_report(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).expect("--json prints JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_reports_each_entry_the_cache_headers_and_the_document() {
    let server = IdentityServer::start().await;
    let signer = server.new_signer("my-org");
    server.add_jwk(
        json!({"kty": "RSA", "kid": "r1", "use": "sig", "alg": "RS256", "n": "AQAB", "e": "AQAB"}),
    );
    server.add_jwk(signer.jwk());
    server.add_jwk(json!({"kty": "EC", "crv": "P-256", "kid": "enc1", "use": "enc"}));
    server.set_cache_control(Endpoint::Jwks, Some("public, max-age=300"));
    server.set_cache_control(Endpoint::Discovery, Some("max-age=172800"));
    let url = server.discovery_url();

    let output = keys(&[&url]).await;
    let kid = signer.kid();
    let loaded = format!("[0] kid {kid}  EC/P-256  use sig  alg ES256  loaded");
    let ok = format!(
        "ok: 1 key loaded ({kid}) for issuer {}; next refresh in 5 min",
        server.issuer()
    );
    let issuer = format!("  issuer:     {} (the URL's)", server.issuer());
    let jwks_uri = format!("  jwks_uri:   {}", server.jwks_url());
    expect(
        &output,
        0,
        &[
            &format!("source:  {url}"),
            &issuer,
            &jwks_uri,
            "  algorithms: ES256",
            "cache:      Cache-Control: max-age=172800: read again after 24 h (max-age 172800 s, clamped to 1 min .. 24 h)",
            "cache:      Cache-Control: public, max-age=300: refreshed after 5 min",
            "keys:       4 entries, 1 loaded",
            &loaded,
            "[1] kid r1  RSA  use sig  alg RS256  skipped: not an EC P-256 key",
            &format!("[2] kid {kid}  EC/P-256  use sig  alg ES256  the same key again"),
            "[3] kid enc1  EC/P-256  use enc  alg -  skipped: use is not sig",
            &ok,
        ],
    );

    let output = keys(&[&url, "--json"]).await;
    expect(&output, 0, &[]);
    let report = json_report(&output);
    assert_eq!(report["ok"], true);
    assert_eq!(report["failure"], Value::Null);
    assert_eq!(report["source"]["discovery_url"], url);
    assert_eq!(report["issuer"], server.issuer());
    assert_eq!(report["document"]["issuer"], server.issuer());
    assert_eq!(report["document"]["jwks_uri"], server.jwks_url());
    assert_eq!(report["document"]["algorithms"], json!(["ES256"]));
    assert_eq!(report["loaded"], json!([kid]));
    assert_eq!(report["next_refresh_secs"], 300);
    assert_eq!(report["jwks"]["cache_control"], "public, max-age=300");
    assert_eq!(report["jwks"]["max_age_secs"], 300);
    assert_eq!(report["discovery"]["fresh_for_secs"], 86_400);
    let outcomes: Vec<(&str, &str)> = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| {
            (
                key["kid"].as_str().unwrap(),
                key["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (kid, "loaded"),
            ("r1", "skipped"),
            (kid, "duplicate"),
            ("enc1", "skipped")
        ]
    );
    assert_eq!(report["keys"][3]["reason"], "use is not sig");
    assert_eq!(report["keys"][1]["kty"], "RSA");
    assert!(report["elapsed_ms"].is_u64());
}

/// Each failure class, from the test identity server or a loopback listener: exit 1, the
/// class printed (and in `--json`), and what was seen before the failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_exits_1_with_the_class_of_each_failure() {
    let oversized = Behavior::Oversized(64 * 1024 + 1);
    let other_issuer = |server: &IdentityServer| {
        let mut document = server.discovery_document();
        document["issuer"] = format!("{}-other", server.issuer()).into();
        Behavior::Body(Bytes::from(document.to_string()))
    };
    let two_keys_one_kid = |server: &IdentityServer| {
        let (a, b) = (AsymmetricSigner::generate(), AsymmetricSigner::generate());
        let b = b.with_kid(a.kid());
        let jwks = json!({"keys": [a.jwk(), b.jwk()]});
        let _ = server;
        Behavior::Body(Bytes::from(jwks.to_string()))
    };
    type Setup = Box<dyn Fn(&IdentityServer)>;
    let cases: Vec<(&str, Setup, &str)> = vec![
        (
            "http_status",
            Box::new(|s| {
                s.set_behavior(
                    Endpoint::Discovery,
                    Behavior::Status(StatusCode::SERVICE_UNAVAILABLE),
                )
            }),
            "failed: http_status: discovery document: the server answered 503 Service Unavailable",
        ),
        (
            "redirect_refused",
            Box::new(|s| {
                s.set_behavior(
                    Endpoint::Jwks,
                    Behavior::Redirect("http://keys.example/jwks".into()),
                )
            }),
            "failed: redirect_refused: key set",
        ),
        (
            "too_large",
            Box::new(move |s| s.set_behavior(Endpoint::Jwks, oversized.clone())),
            "failed: too_large: key set",
        ),
        (
            "not_json",
            Box::new(|s| s.set_behavior(Endpoint::Discovery, Behavior::Garbage)),
            "failed: not_json: discovery document: not JSON with issuer and jwks_uri",
        ),
        (
            "issuer_mismatch",
            Box::new(move |s| s.set_behavior(Endpoint::Discovery, other_issuer(s))),
            "failed: issuer_mismatch: discovery document: issuer",
        ),
        (
            "no_usable_key",
            Box::new(|s| s.add_jwk(json!({"kty": "oct", "kid": "s1", "k": "c2VjcmV0"}))),
            "failed: no_usable_key: key set: no usable key",
        ),
        (
            "other",
            Box::new(move |s| s.set_behavior(Endpoint::Jwks, two_keys_one_kid(s))),
            "on two different keys: refused whole",
        ),
    ];
    for (class, setup, expected) in cases {
        let server = IdentityServer::start().await;
        setup(&server);
        let url = server.discovery_url();
        let output = keys(&[&url]).await;
        let out = expect(&output, 1, &[expected]);
        assert!(!out.contains("\nok: "), "{class}: {out}");
        let output = keys(&[&url, "--json"]).await;
        expect(&output, 1, &[]);
        let report = json_report(&output);
        assert_eq!(report["ok"], false, "{class}");
        assert_eq!(report["failure"]["class"], class, "{class}");
        assert_eq!(report["loaded"], json!([]), "{class}");
        assert_eq!(report["next_refresh_secs"], 1, "{class}");
        match class {
            // The discovery document was read before the key set failed.
            "redirect_refused" | "too_large" | "no_usable_key" | "other" => {
                assert_eq!(report["document"]["jwks_uri"], server.jwks_url(), "{class}")
            }
            _ => assert_eq!(report["jwks"], Value::Null, "{class}"),
        }
        if class == "no_usable_key" {
            assert_eq!(report["keys"][0]["reason"], "not an EC P-256 key");
        }
        if class == "issuer_mismatch" {
            let other = format!("{}-other", server.issuer());
            assert_eq!(report["document"]["issuer"], other.as_str());
        }
    }

    // connect: nothing listens.
    let server = IdentityServer::start().await;
    let url = server.discovery_url();
    server.go_down().await;
    let output = keys(&[&url, "--json"]).await;
    expect(&output, 1, &[]);
    assert_eq!(json_report(&output)["failure"]["class"], "connect");
    let output = keys(&[&url]).await;
    expect(
        &output,
        1,
        &["failed: connect: discovery document: request failed"],
    );

    // tls: an https URL to a listener that speaks plain HTTP.
    let server = IdentityServer::start().await;
    let url = server.discovery_url().replacen("http://", "https://", 1);
    let output = keys(&[&url, "--json"]).await;
    expect(&output, 1, &[]);
    assert_eq!(json_report(&output)["failure"]["class"], "tls");
}

/// A discovery URL that never answers: the library's 5 s budget, then exit 1, class
/// `timeout` (a key source failure, not bad input).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_on_a_hanging_discovery_url_times_out_with_exit_1() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/dc/.well-known/openid-configuration",
        listener.local_addr().unwrap()
    );
    // Connections are accepted by the kernel's backlog and never answered.
    let started = Instant::now();
    let output = keys(&[&url]).await;
    expect(
        &output,
        1,
        &[
            "failed: timeout: discovery document: no answer within 5s",
            "  GET:        failed in ",
        ],
    );
    // It waited for the budget (a lower bound only: no upper timing assert).
    assert!(started.elapsed().as_secs() >= 5);
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_reports_a_pinned_set() {
    let dir = TempDir::new("keys-pinned");
    let signer = AsymmetricSigner::generate();
    let jwks = json!({"keys": [signer.jwk(), {"kty": "RSA", "kid": "r1"}]});
    let file = dir.join("jwks.json");
    std::fs::write(&file, jwks.to_string()).unwrap();
    let file = file.display().to_string();
    let issuer = "https://issuer.example/data-connector";
    let output = keys(&["--jwks", &file, "--issuer", issuer]).await;
    expect(
        &output,
        0,
        &[
            &format!("source:  {file} (pinned, for issuer {issuer})"),
            "keys:       2 entries, 1 loaded",
            "[1] kid r1  RSA  use -  alg -  skipped: not an EC P-256 key",
            &format!("ok: 1 key loaded ({}) for issuer {issuer}\n", signer.kid()),
        ],
    );
    let output = keys(&["--jwks", &file, "--json"]).await;
    expect(&output, 0, &[]);
    let report = json_report(&output);
    assert_eq!(report["source"]["jwks_file"], file.as_str());
    assert_eq!(
        report["issuer"],
        "https://identity.disruptive-technologies.com/data-connector"
    );
    assert_eq!(report["discovery"], Value::Null);
    assert_eq!(report["next_refresh_secs"], Value::Null);

    // No usable key, not JSON: the source fails (exit 1), with its class.
    for (content, class) in [
        (
            &br#"{"keys":[{"kty":"RSA","kid":"r1"}]}"#[..],
            "no_usable_key",
        ),
        (b"<html>", "not_json"),
        (b"{\"keys\":[],\"x\":\"\xff\"}", "not_json"),
    ] {
        std::fs::write(dir.join("bad.json"), content).unwrap();
        let bad = dir.join("bad.json").display().to_string();
        let output = keys(&["--jwks", &bad, "--json"]).await;
        expect(&output, 1, &[]);
        assert_eq!(json_report(&output)["failure"]["class"], class);
    }
}

/// A JWK whose `kid` is empty is no key (#24): skipped, and the reason names the empty
/// `kid`, shown as `""`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_names_an_empty_kid() {
    let dir = TempDir::new("keys-empty-kid");
    let signer = AsymmetricSigner::generate();
    let mut empty = signer.jwk();
    empty["kid"] = json!("");
    let jwks = json!({"keys": [signer.jwk(), empty]});
    let file = dir.join("jwks.json");
    std::fs::write(&file, jwks.to_string()).unwrap();
    let file = file.display().to_string();
    let issuer = "https://issuer.example/data-connector";
    let output = keys(&["--jwks", &file, "--issuer", issuer]).await;
    expect(
        &output,
        0,
        &[
            "keys:       2 entries, 1 loaded",
            "[1] kid \"\"  EC/P-256  use sig  alg ES256  skipped: its kid is empty",
            &format!("ok: 1 key loaded ({}) for issuer {issuer}\n", signer.kid()),
        ],
    );
    let output = keys(&["--jwks", &file, "--json"]).await;
    expect(&output, 0, &[]);
    let report = json_report(&output);
    assert_eq!(report["loaded"], json!([signer.kid()]));
    assert_eq!(report["keys"][1]["kid"], "");
    assert_eq!(report["keys"][1]["outcome"], "skipped");
    assert_eq!(report["keys"][1]["reason"], "its kid is empty");
}

/// Bad usage and unreadable input: exit 2, one line on stderr naming the problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_bad_usage_exits_2() {
    let dir = TempDir::new("keys-usage");
    let missing = dir.join("missing.json").display().to_string();
    for (args, expected) in [
        (
            vec!["--jwks", missing.as_str()],
            "dt-signature keys: --jwks: cannot read",
        ),
        (
            vec!["http://keys.example/.well-known/openid-configuration"],
            "plain http only to a loopback host",
        ),
        (
            vec!["https://keys.example/jwks"],
            "must end in /.well-known/openid-configuration",
        ),
        (vec!["not a url"], "not a valid URL"),
    ] {
        let output = keys(&args).await;
        let err = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    // clap's usage errors: a URL and --jwks, --issuer without --jwks.
    for args in [
        vec![
            "https://a.example/.well-known/openid-configuration",
            "--jwks",
            "x.json",
        ],
        vec!["--issuer", "https://a.example"],
    ] {
        let output = keys(&args).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
}
