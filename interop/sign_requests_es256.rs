//! Writes one `DT-Asymmetric-Signature` (ES256) request per event type, plus requests a
//! verifier must refuse, as JSON files, and serves the signing key through a local identity
//! server (OpenID Connect discovery on 127.0.0.1) while a command checks them: DT's
//! side of `interop/check_pyjwt_es256.py`, run by `scripts/test`.
//!
//! ```text
//! cargo run --features test-util,asymmetric --example sign_requests_es256 -- \
//!     <out-dir> <org-id> [<command> [<arg>...]]
//! ```
//!
//! The key is fresh, in an [`AsymmetricSigner`] for the server's issuer and `sub` =
//! `<org-id>`. Files:
//!
//! - `<eventType>.json`: `{"name", "expect": "accept", "headers": {...}, "body"}`, signed
//!   now over a [`Payload::sample`] body, as DT sends it;
//! - `refuse-<case>.json`: the same with `"expect": "refuse"` and `"case"`: `expired`,
//!   `other-org`, `other-issuer`, `unknown-key` (a key not served, its own `kid`),
//!   `same-kid-other-key` (a key not served, under the served `kid`), `changed-body`;
//! - `server.json`: `issuer`, `discovery_url`, `jwks_url`, `org_id`, `kid`, and `requests`
//!   (how many request files there are).
//!
//! With a command, it runs it with `DT_OIDC_DISCOVERY_URL` set, keeps serving the keys
//! until it ends, and exits with its status (1 if it failed). Without one, it writes the
//! files and exits: the keys are served only while a command runs.

use std::process::{Command, ExitCode};
use std::time::{SystemTime, UNIX_EPOCH};

use tower_dt_signature::events::{EventType, Payload};
use tower_dt_signature::testing::{AsymmetricSignOptions, AsymmetricSigner, IdentityServer};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, org, command @ ..] = args.as_slice() else {
        eprintln!("usage: sign_requests_es256 <out-dir> <org-id> [<command> [<arg>...]]");
        return ExitCode::from(2);
    };
    if org.is_empty() {
        eprintln!("sign_requests_es256: <org-id> must not be empty");
        return ExitCode::from(2);
    }
    let server = IdentityServer::start().await;
    let signer = server.new_signer(org.as_str());
    std::fs::create_dir_all(dir).expect("create the output directory");

    let mut written = 0;
    for event_type in EventType::ALL {
        let payload = Payload::sample(&event_type, SystemTime::now()).expect("a known type");
        let body = serde_json::to_string(&payload).expect("payloads serialize");
        let token = signer.sign(body.as_bytes());
        write(dir, event_type.as_str(), "accept", None, &token, &body);
        written += 1;
    }

    // Refused cases, each over a touch event.
    let payload = Payload::sample(&EventType::Touch, SystemTime::now()).expect("a known type");
    let body = serde_json::to_string(&payload).expect("payloads serialize");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    // Keys the server does not serve, for the right issuer and organization.
    let unknown = || {
        AsymmetricSigner::generate()
            .with_issuer(server.issuer())
            .with_org_id(org.as_str())
    };
    let changed_body = body.replacen("\"eventId\":\"", "\"eventId\":\"0", 1);
    let cases: [(&str, String, &str); 6] = [
        (
            "expired",
            signer.sign_with(
                body.as_bytes(),
                &AsymmetricSignOptions::new().iat(now.saturating_sub(3600)),
            ),
            &body,
        ),
        (
            "other-org",
            signer.sign_with(
                body.as_bytes(),
                &AsymmetricSignOptions::new().org_id(format!("{org}-not")),
            ),
            &body,
        ),
        (
            "other-issuer",
            signer.sign_with(
                body.as_bytes(),
                &AsymmetricSignOptions::new().issuer(format!("{}-not", server.issuer())),
            ),
            &body,
        ),
        ("unknown-key", unknown().sign(body.as_bytes()), &body),
        (
            "same-kid-other-key",
            unknown().with_kid(signer.kid()).sign(body.as_bytes()),
            &body,
        ),
        // Signed over the body, sent with one more character in the event id.
        ("changed-body", signer.sign(body.as_bytes()), &changed_body),
    ];
    for (case, token, body) in &cases {
        write(
            dir,
            &format!("refuse-{case}"),
            "refuse",
            Some(case),
            token,
            body,
        );
        written += 1;
    }

    let server_file = serde_json::json!({
        "issuer": server.issuer(),
        "discovery_url": server.discovery_url(),
        "jwks_url": server.jwks_url(),
        "org_id": org,
        "kid": signer.kid(),
        "requests": written,
    });
    std::fs::write(format!("{dir}/server.json"), server_file.to_string())
        .expect("write server.json");
    println!(
        "sign_requests_es256: wrote {written} requests to {dir}; keys at {}",
        server.discovery_url()
    );

    let [program, args @ ..] = command else {
        return ExitCode::SUCCESS;
    };
    let mut child = Command::new(program);
    child
        .args(args)
        .env("DT_OIDC_DISCOVERY_URL", server.discovery_url());
    // The server answers on the runtime's other threads while this one waits.
    let status = tokio::task::spawn_blocking(move || child.status())
        .await
        .expect("the waiting thread does not panic");
    server.shutdown().await;
    match status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("sign_requests_es256: {program} failed: {status}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("sign_requests_es256: cannot run {program}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `<dir>/<name>.json`: one request as a Data Connector sends it, and what a verifier must
/// do with it.
fn write(dir: &str, name: &str, expect: &str, case: Option<&str>, token: &str, body: &str) {
    let mut file = serde_json::json!({
        "name": name,
        "expect": expect,
        "headers": {
            // DT's capitalisation; receivers must not care.
            "DT-Asymmetric-Signature": token,
            "Content-Type": "application/json",
            "Content-Length": body.len().to_string(),
        },
        "body": body,
    });
    if let Some(case) = case {
        file["case"] = case.into();
    }
    std::fs::write(format!("{dir}/{name}.json"), file.to_string()).expect("write a request file");
}
