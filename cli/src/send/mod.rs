//! `dt-signature send`: a local DT Data Connector. It sends schema-true, DT-signed events to
//! a receiver, retries like DT, and ends with DT Studio's view of the connector (success and
//! error counts) plus latency percentiles.
//!
//! ```text
//! # terminal 1: a verifying receiver
//! DT_SIGNATURE_SECRET=change-me cargo run --example axum_receiver
//! # terminal 2: every event type, then the same with broken signatures
//! dt-signature send --secret change-me
//! dt-signature send --secret change-me --tamper
//! ```
//!
//! `--scheme asymmetric` (or `both`) signs `DT-Asymmetric-Signature` (ES256) as DT's
//! identity service does, with a P-256 key kept in `--key-file` (made on the first run, so
//! its `kid` stays the same; by default in the per-user data directory, see
//! [`crate::key_file`]), and serves the public key through OpenID Connect
//! discovery on `--identity-addr`: give the receiver the `DT_OIDC_DISCOVERY_URL` and
//! `DT_ORG_ID` printed at start. `--serve-identity` keeps that server up after sending,
//! until Ctrl-C (`dt-signature identity` serves it without sending).
//!
//! Exits 0 when every event was delivered (with `--tamper`: every tampered request was
//! refused), 1 otherwise, 2 on bad arguments (or an identity address that cannot be
//! bound). `http://` or `https://` (the platform's roots plus `--ca-cert FILE`, the key
//! client's TLS: see [`connector::Tls`]). After a run it prints the first answer's text of
//! each refusal status and why requests got no answer.

mod client;
pub mod connector;
mod report;
mod tamper;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use connector::{Answer, Config, Report, Scheme, Signing, Tls};
use http::Uri;
use tower_dt_signature::events::EventType;

use crate::{identity, key_file, EXIT_USAGE};

/// The name on every line the command prints.
const NAME: &str = "dt-signature send";

/// `--help` of the command: what it does, with examples (clap prints it as is).
const SEND_HELP: &str = r#"Send signed events of any of DT's 19 event types to a receiver, as DT does, and report
what DT Studio would show.

Example, against `DT_SIGNATURE_SECRET=change-me cargo run --example axum_receiver`:

    dt-signature send --url http://127.0.0.1:8080/ --secret change-me
    dt-signature send --secret change-me --type temperature,touch --tamper
    dt-signature send --scheme both --secret change-me --org-id local-org --serve-identity
    dt-signature send --url https://receiver.example.com/dt --secret change-me --ca-cert ca.pem
    dt-signature send --secret change-me --body event.json

Exercise a storing receiver (one row per event, the newest per device kept):

    dt-signature send --secret change-me --type touch --duplicates 3
    dt-signature send --secret change-me --type temperature --count 5 --out-of-order

After a run it prints the first answer of each refusal status (such as `400 missing
X-Dt-Signature header`) and why requests got no answer (such as `connection refused to
127.0.0.1:8080`). --tamper lists each kind of tampering with the answer it got.

Exit status: 0 when every event was delivered (with --tamper: every tampered request
was refused), 1 otherwise, 2 on bad arguments."#;

/// The options of `dt-signature send` (`--help` prints them with examples).
#[derive(Debug, clap::Args)]
#[command(
    about = "Send DT-signed events to a receiver, as a Data Connector does",
    long_about = SEND_HELP
)]
pub struct Args {
    /// The receiver's URL: http://, or https:// (its certificate checked against the
    /// platform's roots and --ca-cert).
    #[arg(long, default_value = "http://127.0.0.1:8080/")]
    url: Uri,

    /// Also trust this CA for an https:// receiver (PEM, one or more certificates, or
    /// DER): a test or private CA. The platform's roots stay trusted.
    #[arg(long, value_name = "FILE")]
    ca_cert: Vec<PathBuf>,

    /// Which signature headers to send: `hmac` (X-Dt-Signature), `asymmetric`
    /// (DT-Asymmetric-Signature, ES256) or `both`, as DT does for a connector with a
    /// secret.
    #[arg(long, value_enum, default_value_t = Scheme::Hmac)]
    scheme: Scheme,

    /// The connector's signature secret, the one the receiver verifies with. Required by
    /// `--scheme hmac` and `both`; ignored, with a warning, by `asymmetric`.
    #[arg(long)]
    secret: Option<String>,

    /// The DT organization the asymmetric token names in `sub`.
    #[arg(long, default_value = "local-org")]
    org_id: String,

    /// Where the local identity server listens (`asymmetric`, `both`): an IPv4 address.
    /// Its discovery URL is where the receiver gets the connector's public key.
    #[arg(long, default_value = "127.0.0.1:8090")]
    identity_addr: SocketAddr,

    /// The connector's P-256 key (PKCS#8 DER, a test key), made on the first run and read
    /// on the next ones, so that its `kid` stays the same (`asymmetric`, `both`).
    #[arg(long, value_name = "PATH", help = key_file::HELP)]
    key_file: Option<PathBuf>,

    /// Keep the identity server up after sending, until Ctrl-C (`asymmetric`, `both`).
    #[arg(long)]
    serve_identity: bool,

    /// Event types to send (repeat, or separate with commas): touch, temperature, ... or
    /// `all`.
    #[arg(
        long = "type",
        value_name = "TYPE",
        value_delimiter = ',',
        default_value = "all"
    )]
    types: Vec<String>,

    /// How many events of each type (with --body: how many times the body is sent; with
    /// --tamper: ignored, every kind runs once per type).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    count: u32,

    /// Send this file's bytes as the body, signed as DT signs (issued now), instead of
    /// sample events. --type is ignored.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["tamper", "out_of_order"])]
    body: Option<PathBuf>,

    /// Send each event N times, the same bytes and tokens, as DT does when it retries a
    /// delivery it thinks failed: half of the copies (at least 2) at once, the rest one
    /// after another. A de-duplicating receiver keeps one of each. Example:
    /// `--type touch --duplicates 3`.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    duplicates: u32,

    /// For each type, send --count events (at least 2) of one device, their timestamps
    /// one second apart, one after another in a shuffled order (the newest never last),
    /// as DT may deliver them: a receiver that keeps the newest event per device by its
    /// timestamp ends with the newest one. Example: `--type temperature --count 5
    /// --out-of-order`.
    #[arg(long, conflicts_with = "tamper")]
    out_of_order: bool,

    /// How many requests are in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    concurrency: u32,

    /// Tries per event, the first included: any non-2xx answer, or none within --timeout-ms,
    /// is retried, like DT does (DT keeps trying for up to 12 hours; this is bounded).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    max_attempts: u32,

    /// Wait before the first retry, in milliseconds; it doubles for each further retry, up
    /// to 5 s.
    #[arg(long, default_value_t = 500)]
    backoff_ms: u64,

    /// How long to wait for an answer, in milliseconds (DT gives up after 10 s).
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,

    /// Send tampered requests instead: every kind of the scheme once for each --type
    /// (--count is ignored), each listed with the answer it got. The kinds: a changed
    /// body byte; for X-Dt-Signature a changed signature, another secret, an expired
    /// token, no token, another body's token; for DT-Asymmetric-Signature a changed
    /// signature, a key not served (under the connector's kid or its own), another
    /// organization, another issuer, an expired token, no token, another body's token.
    /// Under `both`, one token is broken at a time and the other is valid. A verifying
    /// receiver must refuse every one; any accepted is reported as a failure.
    #[arg(long)]
    tamper: bool,
}

/// Runs `dt-signature send` and returns its exit status.
pub async fn run(args: Args) -> ExitCode {
    if !matches!(args.url.scheme_str(), Some("http" | "https")) {
        eprintln!("{NAME}: --url must start with http:// or https://");
        return ExitCode::from(EXIT_USAGE);
    }
    let mut tls = Tls::default();
    for path in &args.ca_cert {
        let read = std::fs::read(path)
            .map_err(|error| format!("cannot read it: {error}"))
            .and_then(|bytes| tls.clone().with_ca_cert(&bytes));
        match read {
            Ok(with) => tls = with,
            Err(error) => {
                eprintln!("{NAME}: --ca-cert {}: {error}", path.display());
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    if !args.ca_cert.is_empty() && args.url.scheme_str() != Some("https") {
        eprintln!("{NAME}: warning: --ca-cert does nothing with an http:// URL");
    }
    let body = match &args.body {
        None => None,
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => Some(bytes::Bytes::from(bytes)),
            Err(error) => {
                eprintln!("{NAME}: --body: cannot read {}: {error}", path.display());
                return ExitCode::from(EXIT_USAGE);
            }
        },
    };
    let secret = match (args.scheme, args.secret) {
        (_, Some(secret)) if secret.is_empty() => {
            eprintln!("{NAME}: --secret must not be empty");
            return ExitCode::from(EXIT_USAGE);
        }
        (scheme, None) if scheme.uses_hmac() => {
            eprintln!(
                "{NAME}: --secret is required with --scheme {scheme} (or use --scheme asymmetric)"
            );
            return ExitCode::from(EXIT_USAGE);
        }
        (Scheme::Asymmetric, Some(_)) => {
            eprintln!(
                "{NAME}: warning: --secret is ignored with --scheme asymmetric: no \
                 X-Dt-Signature is sent (--scheme both sends both tokens)"
            );
            None
        }
        (_, secret) => secret,
    };
    if args.serve_identity && !args.scheme.uses_asymmetric() {
        eprintln!("{NAME}: warning: --serve-identity does nothing with --scheme hmac");
    }
    let types = match connector::parse_types(&args.types) {
        Ok(types) => types,
        Err(unknown) => {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            eprintln!(
                "{NAME}: unknown event type {unknown:?}; use `all` or some of: {}",
                known.join(", ")
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };

    // The asymmetric schemes: the connector's key, served by a local identity service.
    let mut identity = None;
    let mut config = match (args.scheme, secret) {
        (Scheme::Hmac, Some(secret)) => Config::new(args.url.clone(), secret),
        (scheme, secret) => {
            let served = identity::serve_key(
                args.identity_addr,
                "--identity-addr",
                args.key_file.clone(),
                &args.org_id,
            )
            .await;
            let (server, signer, key_file, new) = match served {
                Ok(served) => served,
                Err(error) => {
                    eprintln!("{NAME}: {error}");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            println!(
                "{NAME}: identity server on http://{}, key {} ({} {})",
                server.addr(),
                signer.kid(),
                if new { "new, saved to" } else { "read from" },
                key_file.display()
            );
            println!(
                "  give the receiver: DT_OIDC_DISCOVERY_URL={} DT_ORG_ID={}",
                server.discovery_url(),
                signer.org_id()
            );
            identity = Some(server);
            let signing = match (scheme, secret) {
                (Scheme::Both, Some(secret)) => Signing::Both { secret, signer },
                _ => Signing::Asymmetric { signer },
            };
            Config::signed(args.url.clone(), signing)
        }
    };
    config.types = types;
    config.count = args.count as usize;
    config.concurrency = args.concurrency as usize;
    config.max_attempts = args.max_attempts;
    config.backoff = Duration::from_millis(args.backoff_ms);
    config.timeout = Duration::from_millis(args.timeout_ms);
    config.tamper = args.tamper;
    config.body = body;
    config.duplicates = args.duplicates as usize;
    config.out_of_order = args.out_of_order;
    config.tls = tls;

    let planned = config.planned();
    let types = config.types.len();
    let shape = if args.tamper {
        let kinds = connector::Tamper::of(args.scheme).len();
        format!(
            "{} x {}",
            plural(kinds, "kind", "kinds"),
            plural(types, "type", "types")
        )
    } else if let Some(path) = &args.body {
        format!("{} x {}", path.display(), config.count)
    } else {
        format!(
            "{} x {}",
            plural(types, "type", "types"),
            planned / types.max(1)
        )
    };
    let what = match (args.tamper, planned) {
        (true, 1) => "tampered request",
        (true, _) => "tampered requests",
        (false, 1) => "event",
        (false, _) => "events",
    };
    println!(
        "{NAME}: {planned} {what} ({shape}) to {} ({} at a time)",
        args.url, config.concurrency
    );
    if args.tamper && args.count != 1 {
        println!("  note: --count is ignored with --tamper: every kind runs once per type");
    }
    if args.body.is_some() && args.types != ["all"] {
        println!("  note: --type is ignored with --body: the file is the body");
    }
    if config.duplicates > 1 {
        println!("  each event {} times", config.duplicates);
    }
    if args.out_of_order {
        println!(
            "  out of order: {} per type, of one device, timestamps 1 s apart, shuffled",
            plural(planned / types.max(1), "event", "events")
        );
    }
    match args.scheme {
        Scheme::Hmac => {}
        Scheme::Asymmetric => println!("  signed: DT-Asymmetric-Signature (ES256)"),
        Scheme::Both => println!("  signed: X-Dt-Signature and DT-Asymmetric-Signature (ES256)"),
    }
    let report = connector::run(&config).await;
    print_report(
        &report,
        args.tamper,
        if args.tamper { 1 } else { config.duplicates },
    );

    if let Some(server) = identity {
        if args.serve_identity {
            println!("{NAME}: serving {} until Ctrl-C", server.discovery_url());
            if let Err(error) = tokio::signal::ctrl_c().await {
                eprintln!("{NAME}: cannot wait for Ctrl-C: {error}");
            }
        }
        server.shutdown().await;
    }
    if report.ok(args.tamper) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `n` and the word for it: "1 type", "2 types".
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn print_report(report: &Report, tamper: bool, copies: usize) {
    let answers: Vec<String> = report
        .statuses
        .iter()
        .map(|(status, n)| format!("{status} x{n}"))
        .collect();
    let answers = if answers.is_empty() {
        "none".to_owned()
    } else {
        answers.join(", ")
    };
    if tamper {
        let name = |t: &connector::TamperResult| format!("{:?} ({})", t.kind, t.event_type);
        let width = report
            .tampered
            .iter()
            .map(|t| name(t).len())
            .max()
            .unwrap_or(0);
        let what = report
            .tampered
            .iter()
            .map(|t| t.kind.what().len())
            .max()
            .unwrap_or(0);
        for tampered in &report.tampered {
            let answer = match &tampered.answer {
                Answer::Status(status, text) if (200..300).contains(status) => {
                    format!("ACCEPTED {status} {text}")
                }
                Answer::Status(status, text) => format!("refused  {status} {text}"),
                Answer::None(error) => format!("no answer: {error}"),
            };
            println!(
                "    {:<width$}  {:<what$}  {answer}",
                name(tampered),
                tampered.kind.what()
            );
        }
        println!("  refused:  {}", report.tamper_refused);
        println!("  ACCEPTED: {}", report.tamper_accepted.len());
        for hole in &report.tamper_accepted {
            println!("    accepted a tampered request: {hole}");
        }
    } else {
        println!("  success: {}", report.delivered);
        println!("  error:   {}", report.failed);
    }
    println!(
        "  requests: {} ({} retries), answers: {answers}, no answer: {}",
        report.requests,
        report.requests.saturating_sub(report.events * copies),
        report.transport_errors
    );
    // Why: the first answer of each refusal status, and each reason for no answer. The
    // tampered requests listed theirs above, unless none could be sent.
    let listed = tamper && !report.tampered.is_empty();
    if !listed && (!report.reasons.is_empty() || !report.no_answer.is_empty()) {
        println!("  why (the first answer of each status):");
        for (status, text) in &report.reasons {
            println!("    {status} {text}");
        }
        for (error, n) in &report.no_answer {
            println!("    no answer x{n}: {error}");
        }
    }
    match (report.percentile(50.0), report.percentile(99.0)) {
        (Some(p50), Some(p99)) => println!("  latency: p50 {p50:.1?}, p99 {p99:.1?}"),
        _ => println!("  latency: no answers"),
    }
}
