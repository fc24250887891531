//! The built `dt-signature explain`, run as a user runs it: DT's real signed requests
//! (`tests/data/dt-vectors/`) in every input format, accepted, and refused when broken;
//! every `send --tamper` kind with the verdict of `Verifier::verify`; every hint; every
//! kind of bad input.

mod support;

use std::path::Path;
use std::process::Output;

use base64::Engine as _;
use serde_json::{json, Value};
use support::bin::{expect, run, run_beside, run_with, status, stderr, stdout};
use support::TempDir;
use tower_dt_signature::testing::{AsymmetricSigner, IdentityServer};
use tower_dt_signature::Verifier;

/// A real DT request of `tests/data/dt-vectors/`.
struct Vector {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    secret: String,
    at: Option<u64>,
}

fn vector(name: &str) -> Vector {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/dt-vectors")
        .join(name);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let headers = json["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
        .collect();
    Vector {
        headers,
        body: json["body"].as_str().unwrap().as_bytes().to_vec(),
        secret: json["secret"].as_str().unwrap().to_owned(),
        at: json["verify_at_unix"].as_u64(),
    }
}

const SHA256_VECTOR: &str = "touch-2022-02-10-sha256-valid.json";
const SHA1_VECTOR: &str = "touch-2022-01-12-sha1-only-with-metadata.json";
const ASYMMETRIC_VECTOR: &str = "asymmetric-dev-2024-10-31.json";

impl Vector {
    /// The request as `nc -l` saves it.
    fn raw(&self, body: &[u8]) -> Vec<u8> {
        let mut raw =
            b"POST /dt HTTP/1.1\r\nHost: receiver.example\r\nContent-Type: application/json\r\n"
                .to_vec();
        for (name, value) in &self.headers {
            raw.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        raw.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        raw.extend_from_slice(body);
        raw
    }

    /// The request as the README's walkthroughs show it: `Host`, `Content-Type`, the
    /// signature headers, `Content-Length`, in that order.
    fn raw_as_readme(&self, body: &[u8]) -> Vec<u8> {
        let mut raw =
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n"
                .to_vec();
        for (name, value) in &self.headers {
            raw.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        raw.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        raw.extend_from_slice(body);
        raw
    }

    /// The headers as a receiver's log shows a request's (a request line first).
    fn headers_file(&self) -> String {
        let mut text = "POST /dt HTTP/1.1\r\nContent-Type: application/json\r\n".to_owned();
        for (name, value) in &self.headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text + "\r\n"
    }

    /// A HAR 1.2 file, the body as text or base64, lower-case header names (as browsers
    /// export HTTP/2), a second entry that must be ignored.
    fn har(&self, body: &[u8], base64: bool) -> String {
        let mut headers = vec![json!({"name": ":authority", "value": "receiver.example"})];
        for (name, value) in &self.headers {
            headers.push(json!({"name": name.to_lowercase(), "value": value}));
        }
        let post_data = if base64 {
            json!({"mimeType": "application/json", "encoding": "base64",
                   "text": base64::engine::general_purpose::STANDARD.encode(body)})
        } else {
            json!({"mimeType": "application/json", "text": String::from_utf8(body.to_vec()).unwrap()})
        };
        json!({"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": [
            {"request": {"method": "POST", "url": "https://receiver.example/dt", "httpVersion": "HTTP/2",
                         "headers": headers, "postData": post_data}},
            {"request": {"method": "POST", "url": "https://receiver.example/dt", "headers": [], "postData": {"text": "{}"}}}
        ]}})
        .to_string()
    }
}

/// A folder with the vector's secret in `secret` (with the final newline `echo` adds) and
/// its request in every format: `request.http`, `request.har`, `request-b64.har`,
/// `headers.txt` + `body.json`; the same with one body byte changed, `tampered.*`.
fn captures(name: &str, vector: &Vector) -> TempDir {
    let dir = TempDir::new(name);
    let write = |file: &str, bytes: &[u8]| std::fs::write(dir.join(file), bytes).unwrap();
    write("secret", format!("{}\n", vector.secret).as_bytes());
    let mut tampered = vector.body.clone();
    let at = tampered.iter().position(|&b| b == b'4').unwrap();
    tampered[at] = b'5';
    for (prefix, body) in [("request", &vector.body), ("tampered", &tampered)] {
        write(&format!("{prefix}.http"), &vector.raw(body));
        write(&format!("{prefix}.har"), vector.har(body, false).as_bytes());
        write(
            &format!("{prefix}-b64.har"),
            vector.har(body, true).as_bytes(),
        );
        write(&format!("{prefix}-body.json"), body);
    }
    write("headers.txt", vector.headers_file().as_bytes());
    dir
}

/// The input arguments of each format, for the request or the tampered one.
fn inputs(dir: &TempDir, prefix: &str) -> Vec<Vec<String>> {
    let path = |file: &str| dir.join(file).display().to_string();
    vec![
        vec![path(&format!("{prefix}.http"))],
        vec![path(&format!("{prefix}.har"))],
        vec![
            path(&format!("{prefix}-b64.har")),
            "--format".into(),
            "har".into(),
        ],
        vec![
            "--headers".into(),
            path("headers.txt"),
            "--body".into(),
            path(&format!("{prefix}-body.json")),
        ],
    ]
}

fn explain(input: &[String], options: &[&str]) -> Output {
    let mut args = vec!["explain"];
    args.extend(input.iter().map(String::as_str));
    args.extend(options);
    run(&args)
}

/// The captures of the vector `name` in a fresh folder `folder`, the path of its secret
/// file and its time (`--at`).
fn fixture(folder: &str, name: &str) -> (Vector, TempDir, String, String) {
    let vector = vector(name);
    let dir = captures(folder, &vector);
    let secret = dir.join("secret").display().to_string();
    let at = vector.at.map(|at| at.to_string()).unwrap_or_default();
    (vector, dir, secret, at)
}

#[test]
fn explain_accepts_dt_s_real_requests_in_every_input_format() {
    for name in [SHA256_VECTOR, SHA1_VECTOR] {
        let (_, dir, secret, at) = fixture("explain-ok", name);
        let digests = if name == SHA1_VECTOR {
            "body:    checksum (SHA-1) match"
        } else {
            "body:    checksum (SHA-1) and checksum_sha256 match"
        };
        for input in inputs(&dir, "request") {
            let output = explain(&input, &["--secret-file", &secret, "--at", &at]);
            let expected = ["accepted: X-Dt-Signature", "policy:  hmac", digests];
            let shown = expect(&output, 0, &expected);
            assert!(
                !stdout(&output).contains("refused"),
                "{name} {input:?}\n{shown}"
            );
        }
    }
}

#[test]
fn explain_takes_the_clock_in_rfc_3339_and_the_secret_from_the_environment() {
    let vector = vector(SHA256_VECTOR);
    let dir = captures("explain-env", &vector);
    let request = dir.join("request.http").display().to_string();
    let env = [("DT_SIGNATURE_SECRET", vector.secret.as_str())];
    let output = run_with(&["explain", &request, "--at", "2022-02-10T12:42:13Z"], &env);
    expect(
        &output,
        0,
        &[
            "secret:  from DT_SIGNATURE_SECRET",
            "clock:   2022-02-10T12:42:13Z (--at)",
        ],
    );

    // The same request now: expired, refused by the library, exit 1.
    let output = run_with(&["explain", &request], &env);
    expect(&output, 1, &["refused: expired (400 Bad Request)"]);
}

#[test]
fn explain_refuses_a_tampered_body_with_the_library_s_verdict() {
    let (_, dir, secret, at) = fixture("explain-tampered", SHA256_VECTOR);
    for input in inputs(&dir, "tampered") {
        let output = explain(&input, &["--secret-file", &secret, "--at", &at]);
        let expected = [
            "refused: checksum_mismatch (400 Bad Request)",
            "  token:  X-Dt-Signature",
            "  kind:   ChecksumMismatch",
        ];
        let shown = expect(&output, 1, &expected);
        assert!(!stdout(&output).contains("accepted"), "{input:?}\n{shown}");
    }
    // Another secret: the signature, not the body.
    let request = dir.join("request.http").display().to_string();
    let output = run_with(
        &["explain", &request, "--at", &at],
        &[("DT_SIGNATURE_SECRET", "another-secret")],
    );
    expect(&output, 1, &["refused: invalid_signature"]);
}

/// DT's real ES256 token, against a key set without its `kid` (its key is not public):
/// refused as an unknown key, with the keys, issuer and organization from the options.
#[test]
fn explain_asymmetric_token_with_pinned_keys() {
    let vector = vector(ASYMMETRIC_VECTOR);
    let dir = captures("explain-es256", &vector);
    let jwks = dir.join("jwks.json");
    let other = AsymmetricSigner::generate();
    std::fs::write(&jwks, other.jwks()).unwrap();
    let request = dir.join("request.http").display().to_string();
    let issuer = "https://identity.dev.disruptive-technologies.com/data-connector";
    let jwks = jwks.display().to_string();
    let at = "1730382300";
    let keys = [
        "--jwks",
        &jwks,
        "--issuer",
        issuer,
        "--org-id",
        "test-org-id",
    ];
    let args = [&["explain", &request, "--at", at][..], &keys].concat();
    let output = run(&[&args[..], &["--policy", "asymmetric"]].concat());
    let kid = format!("keys:    issuer {issuer}, kid {}", other.kid());
    let expected = [
        "policy:  asymmetric",
        &kid,
        "refused: unknown_key",
        "  token:  DT-Asymmetric-Signature",
    ];
    expect(&output, 1, &expected);

    // A secret and keys: `either` by default; the HMAC token expired in 2022.
    let secret = dir.join("secret").display().to_string();
    let output = run(&[&args[..], &["--secret-file", &secret]].concat());
    expect(&output, 1, &["policy:  either"]);

    // Keys without an organization: bad usage.
    let output = run(&[
        "explain", &request, "--jwks", &jwks, "--issuer", issuer, "--at", at,
    ]);
    let shown = expect(&output, 2, &[]);
    assert!(stderr(&output).contains("--org-id"), "{shown}");
}

/// An ES256 request signed now by a test key, accepted through `--jwks`.
#[test]
fn explain_accepts_an_asymmetric_token_of_a_pinned_key() {
    let dir = TempDir::new("explain-es256-ok");
    let signer = AsymmetricSigner::generate()
        .with_issuer("https://issuer.example/data-connector")
        .with_org_id("my-org");
    let body = br#"{"event":{"eventId":"x"}}"#;
    let request = hint_request(&dir, "request", es256_header(&signer, body), body);
    std::fs::write(dir.join("jwks.json"), signer.jwks()).unwrap();
    let output = run(&[
        "explain",
        &request,
        "--jwks",
        &dir.join("jwks.json").display().to_string(),
        "--issuer",
        "https://issuer.example/data-connector",
        "--org-id",
        "my-org",
    ]);
    let shown = expect(&output, 0, &[]);
    let out = stdout(&output);
    assert!(out.contains("accepted: DT-Asymmetric-Signature"), "{shown}");
    assert!(
        out.contains(&format!("kid:     {}", signer.kid())),
        "{shown}"
    );
    assert!(out.contains("org:     my-org"), "{shown}");
}

/// `--discovery` (or `DT_OIDC_DISCOVERY_URL`): the keys come from an identity server on
/// 127.0.0.1 as a receiver gets them; with the server down, the library's verdict is
/// `keys_unavailable` (exit 1), not bad input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_fetches_dt_s_keys_through_discovery() {
    let server = IdentityServer::start().await;
    let signer = server.new_signer("my-org");
    let dir = TempDir::new("explain-discovery");
    let body = br#"{"event":{"eventId":"x"}}"#;
    let request = hint_request(&dir, "request", es256_header(&signer, body), body);
    let url = server.discovery_url();
    let keys = format!("keys:    issuer {}, kid {}", server.issuer(), signer.kid());

    let output = run_beside(
        format!("explain {request} --discovery {url} --org-id my-org"),
        &[],
    )
    .await;
    expect(
        &output,
        0,
        &[
            "policy:  asymmetric",
            &keys,
            "accepted: DT-Asymmetric-Signature",
        ],
    );
    let env = [
        ("DT_OIDC_DISCOVERY_URL", url.as_str()),
        ("DT_ORG_ID", "my-org"),
    ];
    let output = run_beside(format!("explain {request}"), &env).await;
    expect(&output, 0, &["accepted: DT-Asymmetric-Signature"]);
    // Another organization: refused by the library.
    let output = run_beside(
        format!("explain {request} --discovery {url} --org-id other"),
        &[],
    )
    .await;
    expect(&output, 1, &["refused: wrong_organization"]);

    server.go_down().await;
    let output = run_beside(
        format!("explain {request} --discovery {url} --org-id my-org"),
        &[],
    )
    .await;
    expect(
        &output,
        1,
        &["refused: keys_unavailable (503 Service Unavailable)"],
    );

    // Not a discovery URL: bad usage.
    let output = run_beside(
        format!("explain {request} --discovery http://example.com/ --org-id o"),
        &[],
    )
    .await;
    let shown = expect(&output, 2, &[]);
    assert!(
        stderr(&output).contains("--discovery http://example.com/: "),
        "{shown}"
    );
}

/// Bad input: exit 2 and one line on stderr that names the problem, nothing on stdout.
fn bad_input(args: &[&str], env: &[(&str, &str)], expected: &str) {
    let output = run_with(args, env);
    let (code, shown) = status(&output);
    assert_eq!(code, 2, "{args:?}\n{shown}");
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "one line: {shown}");
    assert!(err.starts_with("dt-signature explain: "), "{shown}");
    assert!(
        err.contains(expected),
        "{args:?}: expected {expected:?}\n{shown}"
    );
    assert!(stdout(&output).is_empty(), "{shown}");
}

#[test]
fn explain_bad_input_is_one_line_and_exit_2() {
    let vector = vector(SHA256_VECTOR);
    let dir = captures("explain-bad", &vector);
    let path = |file: &str| dir.join(file).display().to_string();
    let write = |file: &str, bytes: &[u8]| {
        std::fs::write(dir.join(file), bytes).unwrap();
        path(file)
    };
    let env = [("DT_SIGNATURE_SECRET", "test-secret")];
    let ok = vector.raw(&vector.body);

    // An unreadable file: missing, a folder.
    bad_input(&["explain", &path("missing.http")], &env, "cannot read");
    bad_input(
        &["explain", &dir.path().display().to_string()],
        &env,
        "cannot read",
    );
    bad_input(
        &[
            "explain",
            "--headers",
            &path("missing.txt"),
            "--body",
            &path("request-body.json"),
        ],
        &env,
        "cannot read",
    );
    // A request without headers: an empty file, a body alone, a request line alone.
    bad_input(
        &["explain", &write("empty.http", b"")],
        &env,
        "the request is empty",
    );
    bad_input(
        &[
            "explain",
            &write("body-only.http", &vector.body),
            "--format",
            "raw",
        ],
        &env,
        "truncated request",
    );
    bad_input(
        &[
            "explain",
            &write("body-only-2.http", b"{\"a\":1}\n\n"),
            "--format",
            "raw",
        ],
        &env,
        "not an HTTP/1.1 request line",
    );
    bad_input(
        &["explain", &path("body-only-2.http")],
        &env,
        "not a HAR file: no log.entries[0].request (a body alone? use --headers FILE --body FILE)",
    );
    bad_input(
        &[
            "explain",
            &write("no-headers.http", b"POST / HTTP/1.1\r\n\r\n{}"),
        ],
        &env,
        "the request has no headers",
    );
    bad_input(
        &[
            "explain",
            "--headers",
            &write("empty-headers.txt", b"HTTP/1.1 200 OK\r\n\r\n"),
            "--body",
            &path("request-body.json"),
        ],
        &env,
        "no `Name: value` header line",
    );
    // Truncated: the headers cut, the body shorter than Content-Length, a HAR cut.
    let head_end = ok.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    bad_input(
        &["explain", &write("cut-head.http", &ok[..head_end - 10])],
        &env,
        "truncated request: the headers do not end with an empty line",
    );
    bad_input(
        &["explain", &write("cut-body.http", &ok[..ok.len() - 10])],
        &env,
        "truncated request: Content-Length says 396 bytes, the capture has 386",
    );
    let har = vector.har(&vector.body, false);
    bad_input(
        &[
            "explain",
            &write("cut.har", &har.as_bytes()[..har.len() / 2]),
        ],
        &env,
        "not a HAR file",
    );
    // A body over 16 MiB: announced, in a body file, in a HAR.
    bad_input(
        &[
            "explain",
            &write(
                "huge-length.http",
                b"POST / HTTP/1.1\r\nContent-Length: 16777217\r\n\r\n{}",
            ),
        ],
        &env,
        "the body is over 16 MiB (16777217 bytes)",
    );
    let huge = vec![b' '; 16 * 1024 * 1024 + 1];
    bad_input(
        &[
            "explain",
            "--headers",
            &path("headers.txt"),
            "--body",
            &write("huge.json", &huge),
        ],
        &env,
        "is over 16 MiB",
    );
    let huge_har = vector.har(&huge, true);
    bad_input(
        &["explain", &write("huge.har", huge_har.as_bytes())],
        &env,
        "the body is over 16 MiB (16777217 bytes)",
    );
    // A non-UTF-8 header, in a capture and in a headers file.
    let mut latin1 = ok.clone();
    let at = latin1.windows(4).position(|w| w == b"Host").unwrap() + 6;
    latin1[at] = 0xe9;
    bad_input(
        &["explain", &write("latin1.http", &latin1)],
        &env,
        "line 2: the header is not UTF-8",
    );
    bad_input(
        &[
            "explain",
            "--headers",
            &write("latin1.txt", b"X-Dt-Signature: a\r\nX-Name: caf\xe9\r\n"),
            "--body",
            &path("request-body.json"),
        ],
        &env,
        "line 2: the header is not UTF-8",
    );
    // Options: nothing to verify with, an empty secret file, a bad --at, a bad policy.
    let request = path("request.http");
    bad_input(&["explain", &request], &[], "nothing to verify with");
    bad_input(
        &[
            "explain",
            &request,
            "--secret-file",
            &write("empty-secret", b"\n"),
        ],
        &[],
        "the secret is empty",
    );
    bad_input(
        &["explain", &request, "--at", "yesterday"],
        &env,
        "--at \"yesterday\": not Unix seconds or an RFC 3339",
    );
    bad_input(
        &["explain", &request],
        &[
            ("DT_SIGNATURE_SECRET", "s"),
            ("DT_SIGNATURE_SCHEME", "hmax"),
        ],
        "DT_SIGNATURE_SCHEME=\"hmax\" is unknown",
    );
    bad_input(
        &["explain", &request, "--policy", "both"],
        &env,
        "policy both needs DT's keys",
    );
}

#[test]
fn explain_usage_errors_exit_2() {
    for args in [
        &["explain"][..],
        &["explain", "--headers", "h.txt"],
        &["explain", "r.http", "--headers", "h.txt", "--body", "b"],
        &["explain", "r.http", "--policy", "sometimes"],
    ] {
        let output = run(args);
        let (code, shown) = status(&output);
        assert_eq!(code, 2, "{args:?}\n{shown}");
        assert!(stderr(&output).starts_with("error: "), "{shown}");
    }
}

/// The secret is never printed, in any outcome, and `--secret` warns about shell history.
#[test]
fn explain_never_prints_the_secret() {
    let vector = vector(SHA256_VECTOR);
    let dir = captures("explain-secret", &vector);
    let at = vector.at.unwrap().to_string();
    let request = dir.join("request.http").display().to_string();
    let tampered = dir.join("tampered.http").display().to_string();
    let secret = vector.secret.as_str();
    for (args, code) in [
        (
            vec!["explain", &request, "--secret", secret, "--at", &at],
            0,
        ),
        (
            vec!["explain", &tampered, "--secret", secret, "--at", &at],
            1,
        ),
        (vec!["explain", &request, "--secret", secret], 1),
        (
            vec!["explain", &request, "--secret", secret, "--at", "x"],
            2,
        ),
    ] {
        let output = run(&args);
        let (status, shown) = status(&output);
        assert_eq!(status, code, "{args:?}\n{shown}");
        assert!(!shown.contains(secret), "{args:?}\n{shown}");
        assert!(
            !shown.to_lowercase().contains("dgvzdc1zzwnyzxq"),
            "base64 of it: {shown}"
        );
        if code != 2 {
            assert!(stderr(&output).contains("shell history"), "{shown}");
        }
    }
}

/// Every kind of `send --tamper`, as `send` makes it, under each scheme and the policy
/// that requires it: `Verifier::explain` gives `Verifier::verify`'s verdict, the kind a
/// reader expects of that tampering, and the built binary prints and exits with that
/// verdict, as text and as JSON. The untampered request is accepted by all.
#[test]
fn explain_and_verify_agree_on_every_tamper_kind() {
    use dt_signature_cli::send::connector::{self, Signing, Tamper};
    use tower_dt_signature::events::EventType;
    use tower_dt_signature::keys::{DtKeys, OrgId};
    use tower_dt_signature::testing::Signer;
    use tower_dt_signature::ErrorKind;

    let issuer = "https://issuer.example/data-connector";
    let secret = "tamper-test-secret";
    let signer = AsymmetricSigner::generate()
        .with_issuer(issuer)
        .with_org_id("my-org");
    let dir = TempDir::new("explain-tamper");
    std::fs::write(dir.join("secret"), secret).unwrap();
    std::fs::write(dir.join("jwks.json"), signer.jwks()).unwrap();
    let secret_file = dir.join("secret").display().to_string();
    let jwks_file = dir.join("jwks.json").display().to_string();
    let keys = || DtKeys::from_jwks(issuer, &signer.jwks()).unwrap();
    let org = || OrgId::new("my-org");
    // What each kind must be refused as, from the tampering alone.
    let expected = |tamper: Tamper| match tamper {
        Tamper::BodyByte | Tamper::OtherBody | Tamper::Es256OtherBody => {
            ErrorKind::ChecksumMismatch
        }
        Tamper::Signature | Tamper::OtherSecret | Tamper::Es256Signature => {
            ErrorKind::InvalidSignature
        }
        // The stranger's key under the served kid: found, and the signature fails.
        Tamper::UnknownKeySameKid => ErrorKind::InvalidSignature,
        Tamper::UnknownKey => ErrorKind::UnknownKey,
        Tamper::OtherOrg => ErrorKind::WrongOrganization,
        Tamper::OtherIssuer => ErrorKind::WrongIssuer,
        Tamper::Expired | Tamper::Es256Expired => ErrorKind::Expired,
        Tamper::NoSignature => ErrorKind::MissingHeader,
        Tamper::NoEs256Signature => ErrorKind::MissingAsymmetricHeader,
    };
    let event = EventType::ALL[0].clone();
    let now = std::time::SystemTime::now();
    for (signing, policy, verifier) in [
        (
            Signing::Hmac {
                secret: secret.into(),
            },
            "hmac",
            Verifier::new(secret),
        ),
        (
            Signing::Asymmetric {
                signer: signer.clone(),
            },
            "asymmetric",
            Verifier::asymmetric(keys(), org()),
        ),
        (
            Signing::Both {
                secret: secret.into(),
                signer: signer.clone(),
            },
            "both",
            Verifier::both(secret, keys(), org()),
        ),
    ] {
        let explain_file = |name: &str, tokens: &[(http::HeaderName, String)], body: &[u8]| {
            let vector = Vector {
                headers: tokens
                    .iter()
                    .map(|(name, token)| (name.to_string(), token.clone()))
                    .collect(),
                body: body.to_vec(),
                secret: String::new(),
                at: None,
            };
            let path = dir.join(&format!("{policy}-{name}.http"));
            std::fs::write(&path, vector.raw(body)).unwrap();
            let path = path.display().to_string();
            let args = [
                "explain",
                &path,
                "--policy",
                policy,
                "--secret-file",
                &secret_file,
                "--jwks",
                &jwks_file,
                "--issuer",
                issuer,
                "--org-id",
                "my-org",
            ];
            let text = run(&args);
            let json = run(&[&args[..], &["--json"]].concat());
            (text, json)
        };
        let headers_of = |tokens: &[(http::HeaderName, String)]| {
            let mut headers = http::HeaderMap::new();
            for (name, token) in tokens {
                headers.insert(name.clone(), token.parse().unwrap());
            }
            headers
        };

        // Untampered: accepted by verify, explain and the binary.
        let payload = tower_dt_signature::events::Payload::sample(&event, now).unwrap();
        let body = serde_json::to_vec(&payload).unwrap();
        let mut tokens = Vec::new();
        if signing.secret().is_some() {
            tokens.push((
                tower_dt_signature::consts::X_DT_SIGNATURE,
                Signer::new(secret).sign(&body),
            ));
        }
        if signing.es256().is_some() {
            tokens.push((
                tower_dt_signature::consts::DT_ASYMMETRIC_SIGNATURE,
                signer.sign(&body),
            ));
        }
        let headers = headers_of(&tokens);
        assert!(verifier.verify(&headers, &body).is_ok(), "{policy}");
        assert!(
            verifier.explain(&headers, &body).verdict.is_ok(),
            "{policy}"
        );
        let (text, json) = explain_file("valid", &tokens, &body);
        expect(&text, 0, &["accepted: "]);
        let (code, shown) = status(&json);
        assert_eq!(code, 0, "{shown}");

        for &tamper in Tamper::of(signing.scheme()) {
            let (tokens, body) = connector::tampered_request(&signing, &event, tamper, now);
            let headers = headers_of(&tokens);
            let verified = verifier.verify(&headers, &body).unwrap_err();
            let explained = verifier.explain(&headers, &body);
            let explained = explained.verdict.as_ref().unwrap_err();
            let kind = expected(tamper);
            let case = format!("{policy} {tamper:?}");
            assert_eq!(verified.kind(), kind, "{case}: verify");
            assert_eq!(
                (explained.kind(), explained.scheme(), explained.status()),
                (verified.kind(), verified.scheme(), verified.status()),
                "{case}: explain and verify"
            );
            assert_eq!(explained.reason(), verified.reason(), "{case}");

            let (text, json) = explain_file(&format!("{tamper:?}"), &tokens, &body);
            let refused = format!("refused: {} ({})", kind.code(), verified.status());
            let kind_line = format!("  kind:   {kind:?}");
            let shown = expect(&text, 1, &[&refused, &kind_line]);
            assert!(!stdout(&text).contains("accepted:"), "{case}\n{shown}");
            let (code, shown) = status(&json);
            assert_eq!(code, 1, "{case}\n{shown}");
            let report: Value = serde_json::from_slice(&json.stdout).unwrap();
            let decision = &report["decision"];
            assert_eq!(decision["accepted"], false, "{case}");
            assert_eq!(decision["code"], kind.code(), "{case}");
            assert_eq!(decision["status"], verified.status().as_u16(), "{case}");
            assert_eq!(decision["reason"], verified.reason(), "{case}");
        }
    }
}

/// `--discovery` at a listener that never answers: the library's 5 s budget, then its
/// verdict `keys_unavailable` (exit 1, a key source failure, not bad input), with the
/// keys' failure class `timeout`.
#[test]
fn explain_with_a_hanging_discovery_url_is_a_key_source_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/dc/.well-known/openid-configuration",
        listener.local_addr().unwrap()
    );
    let dir = TempDir::new("explain-hang");
    let signer = AsymmetricSigner::generate().with_org_id("my-org");
    let body = br#"{"event":{"eventId":"x"}}"#;
    let request = hint_request(&dir, "request", es256_header(&signer, body), body);
    let output = run(&[
        "explain",
        &request,
        "--discovery",
        &url,
        "--org-id",
        "my-org",
    ]);
    expect(
        &output,
        1,
        &[
            "not loaded: timeout: discovery document: no answer within 5s",
            "refused: keys_unavailable (503 Service Unavailable)",
        ],
    );
    drop(listener);
}

/// The report on DT's real request: the decoded JOSE header and claims, the times in
/// RFC 3339 and relative, each digest claimed and computed, the decision (status, kind,
/// public text, reason); in text and `--json`, agreeing with the exit status. Then DT's
/// request broken the ways `send --tamper` breaks one (a signature character, no header,
/// expired, a body byte): each refused, with the verdict in text, JSON and exit status.
#[test]
fn explain_reports_dt_s_real_request_and_refuses_each_tampering() {
    let vector = vector(SHA256_VECTOR);
    let dir = captures("explain-report", &vector);
    let request = dir.join("request.http").display().to_string();
    let tampered = dir.join("tampered.http").display().to_string();
    let env = [("DT_SIGNATURE_SECRET", vector.secret.as_str())];
    let at = "2022-02-10T12:52:13Z"; // 10 min after DT signed it
    let output = run_with(&["explain", &request, "--at", at], &env);
    expect(
        &output,
        0,
        &[
            r#"  JOSE header: {"alg":"HS256","typ":"JWT"}"#,
            r#""jti":"c82gg99hga35jc2afkeg""#,
            "    iat:      2022-02-10T12:42:13Z (10 min ago)",
            "    exp:      2022-02-10T13:42:13Z (expires in 50 min)",
            "    checksum         claimed  f2b5dc0496437201d3cee156c233a1335603d465",
            "                     computed f2b5dc0496437201d3cee156c233a1335603d465 match",
            "    checksum_sha256  claimed  afd81a16bb9c076e57f92728f284ff55831bfdf1d3c2c10b833567f521d782de",
            "accepted: X-Dt-Signature",
            "  event:   2022-02-10T12:42:13Z (X-Dt-Signature iat)",
            "  jti:     c82gg99hga35jc2afkeg",
        ],
    );
    let output = run_with(&["explain", &request, "--at", at, "--json"], &env);
    expect(&output, 0, &[]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let token = &report["tokens"][0];
    assert_eq!(token["jose_header"], json!({"alg": "HS256", "typ": "JWT"}));
    assert_eq!(token["claims"]["iat"], 1_644_496_933);
    assert_eq!(token["times"]["exp"]["rfc3339"], "2022-02-10T13:42:13Z");
    assert_eq!(token["times"]["exp"]["relative"], "expires in 50 min");
    assert_eq!(
        token["digests"][1],
        json!({"claim": "checksum_sha256", "matches": true,
               "claimed": "afd81a16bb9c076e57f92728f284ff55831bfdf1d3c2c10b833567f521d782de",
               "computed": "afd81a16bb9c076e57f92728f284ff55831bfdf1d3c2c10b833567f521d782de"})
    );
    assert_eq!(report["decision"]["accepted"], true);
    assert_eq!(report["decision"]["hmac_iat"], 1_644_496_933);

    // Broken as `send --tamper` breaks a request: refused, the same verdict everywhere.
    let token = &vector
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-dt-signature"))
        .unwrap()
        .1;
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let with_token = |name: &str, token: Option<&str>| {
        let mut raw = b"POST /dt HTTP/1.1\r\nHost: receiver.example\r\n".to_vec();
        if let Some(token) = token {
            raw.extend_from_slice(format!("X-Dt-Signature: {token}\r\n").as_bytes());
        }
        raw.extend_from_slice(format!("Content-Length: {}\r\n\r\n", vector.body.len()).as_bytes());
        raw.extend_from_slice(&vector.body);
        std::fs::write(dir.join(name), raw).unwrap();
        dir.join(name).display().to_string()
    };
    for (case, path, at, kind, status_line, public) in [
        (
            "signature",
            with_token("flipped.http", Some(&flipped)),
            Some(at),
            "invalid_signature",
            "InvalidSignature",
            "invalid token signature",
        ),
        (
            "no header",
            with_token("none.http", None),
            Some(at),
            "missing_header",
            "MissingHeader",
            "missing X-Dt-Signature header",
        ),
        (
            "expired",
            request.clone(),
            None,
            "expired",
            "Expired",
            "token expired",
        ),
        (
            "body byte",
            tampered.clone(),
            Some(at),
            "checksum_mismatch",
            "ChecksumMismatch",
            "checksum mismatch",
        ),
    ] {
        let mut args = vec!["explain", path.as_str()];
        if let Some(at) = at {
            args.extend(["--at", at]);
        }
        let output = run_with(&args, &env);
        let refused = format!("refused: {kind} (400 Bad Request)");
        let kind_line = format!("  kind:   {status_line}");
        let answer = format!("  answer: 400 Bad Request \"{public}\"");
        let shown = expect(&output, 1, &[&refused, &kind_line, &answer, "  reason: "]);
        assert!(!stdout(&output).contains("accepted:"), "{case}\n{shown}");
        args.push("--json");
        let output = run_with(&args, &env);
        let (code, shown) = status(&output);
        assert_eq!(code, 1, "{case}\n{shown}");
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        let decision = &report["decision"];
        assert_eq!(
            (
                decision["accepted"].as_bool(),
                decision["code"].as_str(),
                decision["kind"].as_str(),
                decision["status"].as_u64(),
                decision["public"].as_str()
            ),
            (
                Some(false),
                Some(kind),
                Some(status_line),
                Some(400),
                Some(public)
            ),
            "{case}"
        );
    }
}

/// A request in `dir`: `{name}.http` with these headers and `body`, and the path to give
/// `explain`.
fn hint_request(dir: &TempDir, name: &str, headers: Vec<(String, String)>, body: &[u8]) -> String {
    let vector = Vector {
        headers,
        body: body.to_vec(),
        secret: String::new(),
        at: None,
    };
    let path = dir.join(&format!("{name}.http"));
    std::fs::write(&path, vector.raw(body)).unwrap();
    path.display().to_string()
}

/// The `DT-Asymmetric-Signature` header of `body` signed by `signer`, for [`hint_request`].
fn es256_header(signer: &AsymmetricSigner, body: &[u8]) -> Vec<(String, String)> {
    vec![("DT-Asymmetric-Signature".into(), signer.sign(body))]
}

/// The hint codes of the `--json` report, in order.
fn hint_codes(output: &Output) -> Vec<String> {
    let report: Value = serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    report["hints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hint| hint["code"].as_str().unwrap().to_owned())
        .collect()
}

/// Asserts that `output` (text) refused with `code`, then hinted `hint`, after the
/// verdict; and that the `--json` run `json` has the hint code `hint_code`.
fn hinted(output: &Output, json: &Output, refusal: &str, hint: &str, hint_code: &str) {
    let shown = expect(output, 1, &[refusal, hint]);
    let out = stdout(output);
    let verdict = out.find("refused: ").unwrap();
    let hints = out
        .find("hints (they do not change the verdict):")
        .expect(&shown);
    assert!(
        verdict < hints && hints < out.find(hint).unwrap(),
        "{shown}"
    );
    let (code, shown) = status(json);
    assert_eq!(code, 1, "{shown}");
    assert_eq!(hint_codes(json), [hint_code], "{shown}");
}

/// Every hint, through the built binary: a re-serialized body (compact and pretty), a
/// trailing newline added and lost, whitespace around the secret, a base64-decoded (and
/// an encoded) secret, another organization, an expired capture (`--at` suggested, and
/// the suggestion accepted), a `kid` not in the key set. The verdict is the library's
/// refusal in each case; the hints come after it; the secret and its variants are never
/// printed.
#[test]
fn explain_hints_name_the_usual_mistakes() {
    use tower_dt_signature::testing::Signer;

    let dir = TempDir::new("explain-hints");
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes).unwrap();
        dir.join(name).display().to_string()
    };
    let both = |args: &[&str], env: &[(&str, &str)]| {
        let text = run_with(args, env);
        let json = run_with(&[args, &["--json"]].concat(), env);
        (text, json)
    };
    let hmac = |headers_of: &str| vec![("X-Dt-Signature".to_owned(), headers_of.to_owned())];

    // A body re-serialized: signed compact, checked pretty (and the other way round).
    let compact = br#"{"event":{"eventId":"c1","eventType":"touch","data":{"touch":{"updateTime":"2022-02-10T12:42:13Z"}}},"labels":{"z":"1","a":"2"}}"#;
    let pretty = br#"{
  "event": {
    "eventId": "c1",
    "eventType": "touch",
    "data": {
      "touch": {
        "updateTime": "2022-02-10T12:42:13Z"
      }
    }
  },
  "labels": {
    "z": "1",
    "a": "2"
  }
}"#;
    let signer = Signer::new("hint-secret");
    let env = [("DT_SIGNATURE_SECRET", "hint-secret")];
    for (signed, checked, form) in [
        (
            &compact[..],
            &pretty[..],
            "the signed body is compact JSON (no spaces)",
        ),
        (
            &pretty[..],
            &compact[..],
            "the signed body is pretty-printed JSON (2 spaces)",
        ),
    ] {
        let request = hint_request(&dir, "reserialized", hmac(&signer.sign(signed)), checked);
        let (text, json) = both(&["explain", &request], &env);
        hinted(
            &text,
            &json,
            "refused: checksum_mismatch",
            form,
            "body_reserialized",
        );
        assert!(stdout(&text).contains("the body is the same JSON as the one signed"));
    }

    // A trailing newline added (DT's real request, with `echo`'s newline), and lost.
    let vector = vector(SHA256_VECTOR);
    let at = vector.at.unwrap().to_string();
    let dt_secret = [("DT_SIGNATURE_SECRET", vector.secret.as_str())];
    let mut added = vector.body.clone();
    added.push(b'\n');
    let request = hint_request(&dir, "added", vector.headers.clone(), &added);
    let (text, json) = both(&["explain", &request, "--at", &at], &dt_secret);
    hinted(
        &text,
        &json,
        "refused: checksum_mismatch",
        "the body checked ends with \\n, the body signed does not: a line ending was added",
        "trailing_newline",
    );
    let mut with_newline = compact.to_vec();
    with_newline.extend_from_slice(b"\r\n");
    let request = hint_request(&dir, "lost", hmac(&signer.sign(&with_newline)), compact);
    let (text, json) = both(&["explain", &request], &env);
    hinted(
        &text,
        &json,
        "refused: checksum_mismatch",
        "the body signed ends with \\r\\n, the body checked does not: a line ending was lost",
        "trailing_newline",
    );

    // The secret with whitespace around it (a file saved with a space and a newline, an
    // environment variable with a tab).
    let request = dir.join("request.http");
    std::fs::write(&request, vector.raw(&vector.body)).unwrap();
    let request = request.display().to_string();
    let padded = write("padded-secret", format!(" {} \n", vector.secret).as_bytes());
    let (text, json) = both(
        &["explain", &request, "--at", &at, "--secret-file", &padded],
        &[],
    );
    let secret_whitespace = "the secret has whitespace around it";
    hinted(
        &text,
        &json,
        "refused: invalid_signature",
        secret_whitespace,
        "secret_whitespace",
    );
    let tabbed = format!("{}\t", vector.secret);
    let (text, json) = both(
        &["explain", &request, "--at", &at],
        &[("DT_SIGNATURE_SECRET", tabbed.as_str())],
    );
    hinted(
        &text,
        &json,
        "refused: invalid_signature",
        secret_whitespace,
        "secret_whitespace",
    );

    // A secret the user base64-decoded (DT's secret is "c2VjcmV0LXZhbHVl", they gave
    // "secret-value"), and one they encoded.
    let real = "c2VjcmV0LXZhbHVl";
    let request = hint_request(&dir, "b64", hmac(&Signer::new(real).sign(compact)), compact);
    for (given, hint) in [
        (
            "secret-value",
            "the secret given is the base64 decoding of the one that signs",
        ),
        (
            "YzJWamNtVjBMWFpoYkhWbA==",
            "the secret given is the base64 encoding of the one that signs",
        ),
    ] {
        let (text, json) = both(&["explain", &request], &[("DT_SIGNATURE_SECRET", given)]);
        hinted(
            &text,
            &json,
            "refused: invalid_signature",
            hint,
            "secret_base64",
        );
        for shown in [stdout(&text), stderr(&text), stdout(&json), stderr(&json)] {
            for secret in [
                real,
                "secret-value",
                "YzJWamNtVjBMWFpoYkhWbA",
                "c2VjcmV0LXZhbHVl",
            ] {
                assert!(!shown.contains(secret), "{secret} printed:\n{shown}");
            }
        }
    }
    for output in [&text, &json] {
        let (_, shown) = status(output);
        assert!(!shown.contains(&vector.secret), "{shown}");
    }

    // Another organization (its token in the `organizations/<id>` form): the ids differ.
    let issuer = "https://issuer.example/data-connector";
    let es = AsymmetricSigner::generate()
        .with_issuer(issuer)
        .with_org_id("organizations/their-org");
    let jwks = write("jwks.json", es.jwks().as_bytes());
    let request = hint_request(
        &dir,
        "org",
        vec![("DT-Asymmetric-Signature".into(), es.sign(compact))],
        compact,
    );
    let keys = ["--jwks", &jwks, "--issuer", issuer, "--org-id", "my-org"];
    let (text, json) = both(&[&["explain", &request][..], &keys].concat(), &[]);
    hinted(
        &text,
        &json,
        "refused: wrong_organization",
        "the token is for organization `their-org`, yours is `my-org`",
        "org_id_form",
    );

    // Expired now, valid at its own time: `--at` suggested, and accepted with it.
    let (text, json) = both(&["explain", &request_of(&dir, &vector)], &dt_secret);
    hinted(
        &text,
        &json,
        "refused: expired",
        "the token was valid when it was issued, and has expired since",
        "expired_since",
    );
    let out = stdout(&text);
    let suggested = out.split("--at ").nth(1).unwrap();
    let suggested: String = suggested.chars().take_while(char::is_ascii_digit).collect();
    assert!(!suggested.is_empty(), "{out}");
    let output = run_with(
        &["explain", &request_of(&dir, &vector), "--at", &suggested],
        &dt_secret,
    );
    expect(&output, 0, &["accepted: X-Dt-Signature"]);

    // A kid not in the key set: DT's real ES256 token against another key.
    let dt = self::vector(ASYMMETRIC_VECTOR);
    let other = AsymmetricSigner::generate();
    let jwks = write("other-jwks.json", other.jwks().as_bytes());
    let request = hint_request(&dir, "kid", dt.headers.clone(), &dt.body);
    let dt_issuer = "https://identity.dev.disruptive-technologies.com/data-connector";
    let args = [
        "explain",
        &request,
        "--at",
        "1730382300",
        "--policy",
        "asymmetric",
        "--jwks",
        &jwks,
        "--issuer",
        dt_issuer,
        "--org-id",
        "test-org-id",
    ];
    let (text, json) = both(&args, &[]);
    let kid_hint = format!("is not in the key set (kids: {})", other.kid());
    hinted(
        &text,
        &json,
        "refused: unknown_key",
        &kid_hint,
        "unknown_kid",
    );
}

/// DT's real request as `nc -l` saves it, in `dir`.
fn request_of(dir: &TempDir, vector: &Vector) -> String {
    let path = dir.join("dt-request.http");
    std::fs::write(&path, vector.raw(&vector.body)).unwrap();
    path.display().to_string()
}

// ---------------------------------------------------------------------------------------
// Issue 25: what explain verified.

/// A raw capture holding one byte more than its Content-Length (an editor's newline):
/// the Content-Length bytes are verified, as a server reads them, and the report says
/// what the file holds; `--file-bytes` verifies the file's bytes and refuses, with the
/// newline hint. The same with `--headers`/`--body` and a `content-length` header.
#[test]
fn explain_says_what_it_verified_when_the_file_holds_more_than_content_length() {
    let (vector, dir, secret, at) = fixture("explain-extra", SHA256_VECTOR);
    let n = vector.body.len();
    let mut raw = vector.raw(&vector.body);
    raw.push(b'\n');
    let request = dir.join("extra.http");
    std::fs::write(&request, &raw).unwrap();
    let request = request.display().to_string();
    let note = format!(
        "\n  the server read {n} bytes (Content-Length); the file holds {}: the extra bytes \
         were not part of the body (--file-bytes verifies the file's bytes as they are)\n",
        n + 1
    );
    let options = ["--secret-file", &secret, "--at", &at];
    let output = explain(std::slice::from_ref(&request), &options);
    expect(
        &output,
        0,
        &[
            &format!("body {n} bytes\n"),
            &note,
            "accepted: X-Dt-Signature",
        ],
    );
    let with = |flag: &'static str| {
        let mut options = options.to_vec();
        options.push(flag);
        options
    };
    let output = explain(std::slice::from_ref(&request), &with("--file-bytes"));
    let verified = format!(
        "verified the file's {} bytes as they are (--file-bytes); a server reads {n} \
         (Content-Length) and ignores the rest",
        n + 1
    );
    expect(
        &output,
        1,
        &[
            &verified,
            "refused: checksum_mismatch",
            "a line ending was added",
        ],
    );
    let json = explain(std::slice::from_ref(&request), &with("--json"));
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    let body_note = &report["request"]["body_note"];
    assert_eq!(body_note["content_length"], n);
    assert_eq!(body_note["file_bytes"], n + 1);
    assert_eq!(body_note["file_verified"], false);

    // --headers with a content-length header, --body one byte longer.
    let mut headers = vector.headers_file();
    headers.insert_str(headers.len() - 2, &format!("Content-Length: {n}\r\n"));
    std::fs::write(dir.join("headers-cl.txt"), headers).unwrap();
    let mut body = vector.body.clone();
    body.push(b'\n');
    std::fs::write(dir.join("body-nl.json"), &body).unwrap();
    let split = [
        "--headers".to_owned(),
        dir.join("headers-cl.txt").display().to_string(),
        "--body".to_owned(),
        dir.join("body-nl.json").display().to_string(),
    ];
    expect(
        &explain(&split, &options),
        0,
        &[&note, "accepted: X-Dt-Signature"],
    );
    expect(
        &explain(&split, &with("--file-bytes")),
        1,
        &[&verified, "refused: checksum_mismatch"],
    );
    // A body file as long as the header says: no note.
    let exact = explain(&inputs(&dir, "request")[3], &options);
    let shown = expect(&exact, 0, &["accepted"]);
    assert!(!stdout(&exact).contains("the server read"), "{shown}");
}

/// A capture with both headers, given only a secret: X-Dt-Signature is checked, and
/// DT-Asymmetric-Signature is shown present and not checked, with what to give.
#[test]
fn explain_says_a_second_token_was_not_checked_and_what_to_give() {
    use tower_dt_signature::testing::Signer;

    let dir = TempDir::new("explain-unchecked");
    let body = br#"{"event":{"eventId":"x"}}"#;
    let signer = AsymmetricSigner::generate();
    let mut headers = vec![(
        "X-Dt-Signature".to_owned(),
        Signer::new("s3cret").sign(body),
    )];
    headers.extend(es256_header(&signer, body));
    let request = hint_request(&dir, "both", headers, body);
    let output = run_with(&["explain", &request], &[("DT_SIGNATURE_SECRET", "s3cret")]);
    let unchecked = "\nDT-Asymmetric-Signature\n  present, not checked: policy hmac does not \
                     check it; give --org-id ID (or DT_ORG_ID) and DT's keys (--discovery URL, \
                     or --jwks FILE --issuer ISS) to check it\n";
    expect(
        &output,
        0,
        &["policy:  hmac", unchecked, "accepted: X-Dt-Signature"],
    );
    let json = run_with(
        &["explain", &request, "--json"],
        &[("DT_SIGNATURE_SECRET", "s3cret")],
    );
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["unchecked"][0]["header"], "DT-Asymmetric-Signature");
    assert_eq!(report["unchecked"].as_array().unwrap().len(), 1);

    // One header only: nothing is unchecked.
    let alone = hint_request(
        &dir,
        "hmac",
        vec![(
            "X-Dt-Signature".to_owned(),
            Signer::new("s3cret").sign(body),
        )],
        body,
    );
    let output = run_with(&["explain", &alone], &[("DT_SIGNATURE_SECRET", "s3cret")]);
    let shown = expect(&output, 0, &["accepted"]);
    assert!(!stdout(&output).contains("not checked"), "{shown}");
}

/// A plain wrong secret (times and checksums right) and a body re-serialized with its keys
/// sorted each get their hint, on DT's real request.
#[test]
fn explain_hints_a_wrong_secret_and_sorted_keys() {
    let (vector, dir, _secret, at) = fixture("explain-wrong", SHA256_VECTOR);
    let request = request_of(&dir, &vector);
    let wrong = dir.join("wrong.txt");
    std::fs::write(&wrong, "not-the-secret\n").unwrap();
    let wrong = wrong.display().to_string();
    let args = |extra: &[&'static str]| {
        let mut args = vec![
            "explain".to_owned(),
            request.clone(),
            "--secret-file".into(),
        ];
        args.extend([wrong.clone(), "--at".into(), at.clone()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let to_run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    };
    hinted(
        &to_run(args(&[])),
        &to_run(args(&["--json"])),
        "refused: invalid_signature",
        "X-Dt-Signature: the signature does not match the secret given, yet the token's \
         checksum and checksum_sha256 match the body and its times are right",
        "secret_mismatch",
    );
    let text = stdout(&to_run(args(&[])));
    assert!(
        text.contains(
            "whitespace around it trimmed, base64-encoded and base64-decoded was also tried"
        ),
        "{text}"
    );
    assert!(!text.contains("not-the-secret"), "{text}");

    // Sorted keys: the body as serde_json::Value (no preserve_order) writes it.
    let value: Value = serde_json::from_slice(&vector.body).unwrap();
    let sorted = serde_json::to_vec(&value).unwrap();
    assert_ne!(sorted, vector.body);
    let path = dir.join("sorted.http");
    std::fs::write(&path, vector.raw(&sorted)).unwrap();
    let path = path.display().to_string();
    let secret = dir.join("secret").display().to_string();
    let options = ["--secret-file", secret.as_str(), "--at", at.as_str()];
    hinted(
        &explain(std::slice::from_ref(&path), &options),
        &explain(
            std::slice::from_ref(&path),
            &[&options[..], &["--json"]].concat(),
        ),
        "refused: checksum_mismatch",
        "X-Dt-Signature: the body's keys are sorted at every level, and the same event in \
         DT's key order has the checksums the token claims",
        "body_keys_sorted",
    );
}

/// The README's walkthroughs, run as written on DT's real request: the output the README
/// shows, line for line (the second walkthrough shows an excerpt after `...`).
#[test]
fn the_readme_s_explain_walkthroughs_are_true() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let vector = vector(SHA256_VECTOR);
    let dir = TempDir::new("explain-readme");
    // request.http: as `nc -l` saved it, then saved in an editor (a newline added).
    let mut raw = vector.raw_as_readme(&vector.body);
    raw.push(b'\n');
    std::fs::write(dir.join("request.http"), raw).unwrap();
    std::fs::write(dir.join("dt.http"), vector.raw_as_readme(&vector.body)).unwrap();
    std::fs::write(dir.join("secret.txt"), format!("{}\n", vector.secret)).unwrap();

    let blocks: Vec<&str> = readme
        .split("```console\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap())
        .filter(|block| block.starts_with("$ dt-signature explain "))
        .collect();
    assert!(blocks.len() >= 3, "the README's explain walkthroughs");
    for block in blocks {
        // Each `$ ` line is a command, the lines up to the next one its output.
        let mut runs = block.split("$ ").skip(1).peekable();
        while let Some(run_) = runs.next() {
            let (command, shown) = run_.split_once('\n').unwrap();
            if command == "echo $?" {
                continue;
            }
            let args: Vec<&str> = command.split_whitespace().skip(1).collect();
            let output = std::process::Command::new(support::bin::BIN)
                .args(&args)
                .current_dir(dir.path())
                .env_remove("DT_SIGNATURE_SECRET")
                .env_remove("DT_SIGNATURE_SCHEME")
                .env_remove("DT_ORG_ID")
                .env_remove("DT_JWKS_FILE")
                .env_remove("DT_ISSUER")
                .env_remove("DT_OIDC_DISCOVERY_URL")
                .env_remove("CLICOLOR_FORCE")
                .output()
                .unwrap();
            let out = stdout(&output);
            match shown.split_once("...\n") {
                None => assert_eq!(out, shown, "{command}"),
                Some((_, tail)) => assert!(out.ends_with(tail), "{command}:\n{out}"),
            }
            if let Some(next) = runs.peek() {
                if let Some(code) = next.strip_prefix("echo $?\n") {
                    let code: i32 = code.trim().parse().unwrap();
                    assert_eq!(output.status.code(), Some(code), "{command}");
                }
            }
        }
    }
}
