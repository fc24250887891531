//! A local DT Data Connector: sends schema-true, DT-signed events to a receiver, retries
//! like DT, and ends with DT Studio's view of the connector (success and error counts) plus
//! latency percentiles.
//!
//! ```text
//! # terminal 1: a verifying receiver
//! DT_SIGNATURE_SECRET=change-me cargo run --example axum_receiver
//! # terminal 2: every event type, then the same with broken signatures
//! cargo run --features signer --example send_event -- --url http://127.0.0.1:8080/ --secret change-me
//! cargo run --features signer --example send_event -- --url http://127.0.0.1:8080/ --secret change-me --tamper
//! ```
//!
//! Exits 0 when every event was delivered (with `--tamper`: every tampered request was
//! refused), 1 otherwise, 2 on bad arguments. Plain `http://` only: point it at a local
//! receiver, not at a public host.

mod connector;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use connector::{Config, Report};
use http::Uri;
use tower_dt_signature::events::EventType;

/// A local DT Data Connector: sends signed events of any of DT's 19 event types to a
/// receiver, as DT does, and reports what DT Studio would show.
#[derive(Debug, Parser)]
#[command(name = "send_event", version)]
struct Args {
    /// The receiver's URL; http:// only.
    #[arg(long, default_value = "http://127.0.0.1:8080/")]
    url: Uri,

    /// The connector's signature secret: the one the receiver verifies with.
    #[arg(long)]
    secret: String,

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

    /// Send tampered requests instead (a changed body byte, a changed signature, another
    /// secret, an expired token, no signature, another body's token), once each. A
    /// verifying receiver must refuse every one; any accepted is reported as a failure.
    #[arg(long)]
    tamper: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.url.scheme_str() != Some("http") {
        eprintln!("send_event: --url must start with http://");
        return ExitCode::from(2);
    }
    if args.secret.is_empty() {
        eprintln!("send_event: --secret must not be empty");
        return ExitCode::from(2);
    }
    let types = match connector::parse_types(&args.types) {
        Ok(types) => types,
        Err(unknown) => {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            eprintln!(
                "send_event: unknown event type {unknown:?}; use `all` or some of: {}",
                known.join(", ")
            );
            return ExitCode::from(2);
        }
    };

    let mut config = Config::new(args.url.clone(), args.secret);
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
        "send_event: {} {what} ({} types x {}) to {} ({} at a time)",
        config.types.len() * config.count,
        config.types.len(),
        config.count,
        args.url,
        config.concurrency
    );
    let report = connector::run(&config).await;
    print_report(&report, args.tamper);
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
