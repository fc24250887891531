//! `dt-signature explain`: why a captured request is accepted or refused.
//!
//! [`input`] reads the capture (raw HTTP/1.1, `--headers`/`--body`, HAR), [`options`]
//! builds the library's `Verifier` from the options and the receivers' `DT_*` variables;
//! this module runs `Verifier::explain` (the steps and the verdict `verify` gives),
//! [`hints`] looks for the usual mistakes after it, and [`render`] prints it all, as
//! text or JSON. The tool decides nothing: the verdict is the library's, the one the
//! layer would give.

pub mod hints;
pub mod input;
pub mod options;
pub mod render;

use std::path::PathBuf;
use std::process::ExitCode;

use tower_dt_signature::verify::Policy;

use crate::EXIT_USAGE;
use input::Format;
use options::Options;

/// The name on every line the command prints.
const NAME: &str = "dt-signature explain";

/// `--help` of the command: what it does, with examples (clap prints it as is).
const EXPLAIN_HELP: &str = r#"Explain why a captured DT request is accepted or refused, with the library's verdict.

The request is a raw HTTP/1.1 capture (`nc -l 8080 > request.http`), a HAR 1.2 file
(the first entry's request, as browsers and request-inspection services export it),
or --headers FILE with --body FILE: the request's headers as `Name: value` lines (from
the receiver's own log, a proxy such as mitmproxy, or the head of an `nc -l` capture).

A server reads Content-Length bytes of body: when the file holds more (an editor added
a newline), those are verified and the report says what the file holds; --file-bytes
verifies the file's bytes as they are.

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

A signature header the policy did not check (DT-Asymmetric-Signature given only a
secret) is shown as present and not checked, with what to give to check it.

For each token: the decoded JOSE header and claims, the times (RFC 3339 and relative),
each step the verifier took (key lookup, signature, times, each checksum against the
body), then the decision: status, error kind, public text and reason. Hints for the
usual mistakes follow (a re-serialized body, keys sorted, a lost or added newline, a
wrong secret, whitespace around the secret, an expired capture, ...); they never change the verdict. --json prints the
same as JSON. Colour only on a terminal, never with NO_COLOR.

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

    /// The request's headers, one `Name: value` per line, as the receiver's log, a proxy
    /// or the head of an `nc -l` capture shows them (a request line is skipped). With
    /// --body.
    #[arg(long, value_name = "FILE", requires = "body")]
    headers: Option<PathBuf>,

    /// The request's body, byte for byte. With --headers.
    #[arg(long, value_name = "FILE", requires = "headers")]
    body: Option<PathBuf>,

    /// Verify the body as the file holds it, every byte, not the Content-Length bytes a
    /// server reads (an editor's added newline is then part of it).
    #[arg(long)]
    file_bytes: bool,

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

    /// Print the report as JSON (the same content), for scripts.
    #[arg(long)]
    json: bool,
}

/// Runs `dt-signature explain` and returns its exit status. `--discovery` needs it to be
/// called inside a multi-thread tokio runtime (the keys' refresh task runs there).
pub fn run(args: Args) -> ExitCode {
    let captured = match (&args.request, &args.headers, &args.body) {
        (Some(path), _, _) => input::read_request(path, args.format, args.file_bytes),
        (None, Some(headers), Some(body)) => input::read_split(headers, body, args.file_bytes),
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
    let env = |name: &str| std::env::var(name).ok();
    let setup = match options::setup(options, env) {
        Ok(setup) => setup,
        Err(error) => {
            eprintln!("{NAME}: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    for warning in &setup.warnings {
        eprintln!("{NAME}: {warning}");
    }
    // The verdict is the library's; the hints come after it and never change it.
    let explanation = setup.verifier.explain(&captured.headers, &captured.body);
    let hints = hints::hints(&explanation, &captured.headers, &captured.body, &setup);
    let unchecked = render::unchecked(&explanation, &captured.headers, &setup);
    let report = render::Report {
        captured: &captured,
        setup: &setup,
        explanation: &explanation,
        hints: &hints,
        unchecked: &unchecked,
    };
    if args.json {
        println!("{:#}", render::json(&report));
    } else {
        let paint = render::Paint(render::use_colour(env));
        print!("{}", render::text(&report, paint));
    }
    match explanation.verdict {
        Ok(_) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
