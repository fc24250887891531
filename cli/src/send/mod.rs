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
//! bound). Plain `http://` only: point it at a local receiver, not at a public host.

pub mod connector;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use connector::{Config, Report, Scheme, Signing};
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
    dt-signature send --secret change-me --type temperature,touch --count 6 --tamper
    dt-signature send --scheme both --secret change-me --org-id local-org --serve-identity

Exit status: 0 when every event was delivered (with --tamper: every tampered request
was refused), 1 otherwise, 2 on bad arguments."#;

/// The options of `dt-signature send` (`--help` prints them with examples).
#[derive(Debug, clap::Args)]
#[command(
    about = "Send DT-signed events to a receiver, as a Data Connector does",
    long_about = SEND_HELP
)]
pub struct Args {
    /// The receiver's URL; http:// only.
    #[arg(long, default_value = "http://127.0.0.1:8080/")]
    url: Uri,

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

    /// How many events of each type.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    count: u32,

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

    /// Send tampered requests instead, once each: a changed body byte; for X-Dt-Signature
    /// a changed signature, another secret, an expired token, no token, another body's
    /// token; for DT-Asymmetric-Signature a changed signature, a key not served (under the
    /// connector's kid or its own), another organization, another issuer, an expired
    /// token, no token, another body's token. Under `both`, one token is broken at a time
    /// and the other is valid. A verifying receiver must refuse every one; any accepted is
    /// reported as a failure.
    #[arg(long)]
    tamper: bool,
}

/// Runs `dt-signature send` and returns its exit status.
pub async fn run(args: Args) -> ExitCode {
    if args.url.scheme_str() != Some("http") {
        eprintln!("{NAME}: --url must start with http://");
        return ExitCode::from(EXIT_USAGE);
    }
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

    let what = if args.tamper {
        "tampered requests"
    } else {
        "events"
    };
    println!(
        "{NAME}: {} {what} ({} types x {}) to {} ({} at a time)",
        config.types.len() * config.count,
        config.types.len(),
        config.count,
        args.url,
        config.concurrency
    );
    match args.scheme {
        Scheme::Hmac => {}
        Scheme::Asymmetric => println!("  signed: DT-Asymmetric-Signature (ES256)"),
        Scheme::Both => println!("  signed: X-Dt-Signature and DT-Asymmetric-Signature (ES256)"),
    }
    let report = connector::run(&config).await;
    print_report(&report, args.tamper);

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

fn print_report(report: &Report, tamper: bool) {
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
        report.requests.saturating_sub(report.events),
        report.transport_errors
    );
    match (report.percentile(50.0), report.percentile(99.0)) {
        (Some(p50), Some(p99)) => println!("  latency: p50 {p50:.1?}, p99 {p99:.1?}"),
        _ => println!("  latency: no answers"),
    }
}
