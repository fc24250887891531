//! `dt-signature explain`: why a captured request is accepted or refused.
//!
//! [`input`] reads the capture (raw HTTP/1.1, `--headers`/`--body`, HAR), [`options`]
//! builds the library's `Verifier` from the options and the receivers' `DT_*` variables;
//! this module only runs `Verifier::verify` and prints its verdict. The tool decides
//! nothing: the verdict is the library's, the one the layer would give.

pub mod input;
pub mod options;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use tower_dt_signature::{verify::Policy, DtClaims, DtSignatureError, Scheme};

use crate::EXIT_USAGE;
use input::{Captured, Format};
use options::{Options, Setup};

/// The name on every line the command prints.
const NAME: &str = "dt-signature explain";

/// `--help` of the command: what it does, with examples (clap prints it as is).
const EXPLAIN_HELP: &str = r#"Explain why a captured DT request is accepted or refused, with the library's verdict.

The request is a raw HTTP/1.1 capture (`nc -l 8080 > request.http`), a HAR 1.2 file
(the first entry's request, as browsers and request-inspection services export it),
or --headers FILE (`Name: value` lines, as `curl -D` writes them) with --body FILE.

The secret comes from --secret-file or DT_SIGNATURE_SECRET; DT's keys from --discovery
URL (or DT_OIDC_DISCOVERY_URL) or --jwks FILE --issuer ISS (or DT_JWKS_FILE, DT_ISSUER),
with --org-id (or DT_ORG_ID). The policy is
--policy (or DT_SIGNATURE_SCHEME), by default `either` when a secret and keys are
given, else the one scheme that is. The secret is never printed.

Examples:

    DT_SIGNATURE_SECRET=change-me dt-signature explain request.http
    dt-signature explain --secret-file secret.txt --at 2022-02-10T12:42:13Z capture.har
    dt-signature explain --headers headers.txt --body body.json --secret-file secret.txt \
        --jwks jwks.json --issuer https://identity.disruptive-technologies.com/data-connector \
        --org-id my-org

Exit status: 0 accepted, 1 refused, 2 bad usage or unreadable input."#;

/// The options of `dt-signature explain` (`--help` prints them with examples).
#[derive(Debug, clap::Args)]
#[command(
    about = "Explain why a captured DT request is accepted or refused",
    long_about = EXPLAIN_HELP
)]
pub struct Args {
    /// The captured request: a raw HTTP/1.1 request or a HAR file.
    #[arg(
        value_name = "REQUEST",
        required_unless_present = "headers",
        conflicts_with_all = ["headers", "body"]
    )]
    request: Option<PathBuf>,

    /// How to read REQUEST: `auto` (HAR when it starts with `{`), `raw` or `har`.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    format: Format,

    /// The request's headers, one `Name: value` per line (as `curl -D` writes them; a
    /// status or request line is skipped). With --body.
    #[arg(long, value_name = "FILE", requires = "body")]
    headers: Option<PathBuf>,

    /// The request's body, byte for byte. With --headers.
    #[arg(long, value_name = "FILE", requires = "headers")]
    body: Option<PathBuf>,

    /// A file holding the connector's signature secret (one final line ending is
    /// dropped). Default: DT_SIGNATURE_SECRET.
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,

    /// The secret itself (it stays in your shell history: prefer --secret-file).
    #[arg(long, value_name = "SECRET", hide_default_value = true)]
    secret: Option<String>,

    /// hmac, asymmetric, both or either. Default: DT_SIGNATURE_SCHEME, else `either` with
    /// a secret and keys, else the one scheme given.
    #[arg(long)]
    policy: Option<Policy>,

    /// Your DT organization, compared with the asymmetric token's `sub`. Default:
    /// DT_ORG_ID.
    #[arg(long, value_name = "ID")]
    org_id: Option<String>,

    /// DT's OpenID Connect discovery URL: the keys are fetched as a receiver fetches them
    /// (https, or http to loopback). Default: DT_OIDC_DISCOVERY_URL.
    #[arg(long, value_name = "URL", conflicts_with = "jwks")]
    discovery: Option<String>,

    /// DT's public keys: a JWK Set file (pinned). Default: DT_JWKS_FILE.
    #[arg(long, value_name = "FILE")]
    jwks: Option<PathBuf>,

    /// The issuer of --jwks. Default: DT_ISSUER, else DT's production issuer.
    #[arg(long, value_name = "ISS")]
    issuer: Option<String>,

    /// The clock to verify at: Unix seconds or RFC 3339 (2022-02-10T12:42:13Z). Default:
    /// now. A captured token expires (1 h, 5 min for DT-Asymmetric-Signature): use the
    /// capture's time to see everything else.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
}

/// Runs `dt-signature explain` and returns its exit status. `--discovery` needs it to be
/// called inside a multi-thread tokio runtime (the keys' refresh task runs there).
pub fn run(args: Args) -> ExitCode {
    let captured = match (&args.request, &args.headers, &args.body) {
        (Some(path), _, _) => input::read_request(path, args.format),
        (None, Some(headers), Some(body)) => input::read_split(headers, body),
        _ => {
            eprintln!("{NAME}: give REQUEST, or --headers FILE --body FILE");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let captured = match captured {
        Ok(captured) => captured,
        Err(error) => {
            eprintln!("{NAME}: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let options = Options {
        secret_file: args.secret_file,
        secret: args.secret,
        policy: args.policy,
        org_id: args.org_id,
        discovery: args.discovery,
        jwks: args.jwks,
        issuer: args.issuer,
        at: args.at,
    };
    let setup = match options::setup(options, |name| std::env::var(name).ok()) {
        Ok(setup) => setup,
        Err(error) => {
            eprintln!("{NAME}: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    for warning in &setup.warnings {
        eprintln!("{NAME}: {warning}");
    }
    print_setup(&captured, &setup);
    match setup.verifier.verify(&captured.headers, &captured.body) {
        Ok(claims) => {
            print_accepted(&claims);
            ExitCode::SUCCESS
        }
        Err(error) => {
            print_refused(&error);
            ExitCode::FAILURE
        }
    }
}

/// What was read and what it is checked with (never the secret, a token or the body).
fn print_setup(captured: &Captured, setup: &Setup) {
    let names: Vec<&str> = captured.headers.keys().map(|name| name.as_str()).collect();
    println!(
        "request: {} header(s) ({}), body {} bytes",
        captured.headers.len(),
        names.join(", "),
        captured.body.len()
    );
    println!("policy:  {}", setup.policy);
    if let Some(from) = &setup.secret_from {
        println!("secret:  from {from}");
    }
    if let Some((issuer, kids)) = &setup.keys {
        println!("keys:    issuer {issuer}, kid {}", kids.join(", "));
    }
    match setup.at {
        Some(at) => println!("clock:   {} (--at)", rfc3339(at)),
        None => println!("clock:   now, {}", rfc3339(SystemTime::now())),
    }
}

fn print_accepted(claims: &DtClaims) {
    let schemes: Vec<&str> = claims.schemes().iter().map(|s| header_name(*s)).collect();
    println!("accepted: {}", schemes.join(" and "));
    if let Some(iat) = claims.hmac_issued_at() {
        println!("  event:   {} (X-Dt-Signature iat)", rfc3339(iat));
    }
    if let Some(iat) = claims.asymmetric_issued_at() {
        println!("  signed:  {} (DT-Asymmetric-Signature iat)", rfc3339(iat));
    }
    if let Some(exp) = claims.expires_at() {
        println!("  expires: {}", rfc3339(exp));
    }
    let mut digests = Vec::new();
    if claims.sha1_verified() {
        digests.push("checksum (SHA-1)");
    }
    if claims.sha256_verified() {
        digests.push("checksum_sha256");
    }
    println!("  body:    {} match", digests.join(" and "));
    if let Some(jti) = claims.jti() {
        println!("  jti:     {jti}");
    }
    if let Some(org) = claims.org_id() {
        println!("  org:     {org}");
    }
    if let Some(kid) = claims.kid() {
        println!("  kid:     {kid}");
    }
}

fn print_refused(error: &DtSignatureError) {
    let kind = error.kind();
    println!("refused: {} ({})", kind.code(), error.status());
    if let Some(scheme) = error.scheme() {
        println!("  token:  {}", header_name(scheme));
    }
    println!("  kind:   {kind:?}");
    println!("  answer: {} \"{}\"", error.status(), error.public_str());
    println!("  reason: {}", error.reason());
}

/// The header a scheme's token travels in.
fn header_name(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Hmac => "X-Dt-Signature",
        Scheme::Asymmetric => "DT-Asymmetric-Signature",
        _ => "another signature header",
    }
}

fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
