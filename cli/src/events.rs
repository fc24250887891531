//! `dt-signature events`: what a store holds, per event type and the newest per device.

use std::fmt::Write as _;
use std::process::ExitCode;

use tower_dt_store::nats::{DEFAULT_LATEST_BUCKET, DEFAULT_STREAM};
use tower_dt_store::{SqliteStore, Summary};

use crate::store_url::{self, StoreUrl};
use crate::EXIT_USAGE;

const NAME: &str = "dt-signature events";

const EVENTS_HELP: &str = r#"Show what a store of `dt-signature serve` holds: the count of events per type, and the newest event per device and type (dt_latest, by the event's timestamp).

Examples:

    dt-signature events
    dt-signature events --store sqlite:/var/lib/dt/events.db --json

It reads the store and changes nothing (SQLite: a read-only connection, beside a running
serve). A NATS stream (DT_STORE=nats://...) is a queue: it keeps no counts to show, and
its events are read by a consumer (the README's "NATS JetStream" has one); this command
says so. Exit status: 0, or 2 for a store that cannot be read or listed."#;

/// The options of `dt-signature events`.
#[derive(Debug, clap::Args)]
#[command(about = "Show what the store holds: events per type, the newest per device", long_about = EVENTS_HELP)]
pub struct Args {
    /// The store, as `serve` takes it: sqlite:PATH or postgres://... Default
    /// sqlite:dt-events.db. (A nats:// stream cannot be listed: read it with a consumer.)
    #[arg(long, env = "DT_STORE", value_name = "STORE")]
    store: Option<String>,

    /// Print the same as JSON, for scripts.
    #[arg(long)]
    json: bool,
}

/// Runs `dt-signature events`. Needs a tokio runtime.
pub async fn run(args: Args) -> ExitCode {
    let text = args
        .store
        .filter(|store| !store.is_empty())
        .unwrap_or_else(|| store_url::DEFAULT.to_owned());
    let url = match StoreUrl::parse(&text) {
        Ok(url) => url,
        Err(error) => {
            eprintln!("{NAME}: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let summary = match &url {
        StoreUrl::Sqlite(path) => SqliteStore::read_summary(path).await,
        StoreUrl::Postgres(_) => match url.open(None).await {
            Ok(store) => store.backend.summary().await,
            Err(error) => Err(error),
        },
        // Never connected: a queue has nothing to list (`Backend::summary` is
        // `Unsupported`), and opening the store would create its stream and bucket.
        StoreUrl::Nats(_) => {
            eprintln!("{NAME}: {}", queue_cannot_be_listed(&url));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let summary = match summary {
        Ok(summary) => summary,
        Err(error) => {
            eprintln!("{NAME}: {}: {error}", url.redacted());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).expect("a summary is JSON")
        );
    } else {
        print!("{}", render(&url.redacted(), &summary));
    }
    ExitCode::SUCCESS
}

/// Why a NATS stream shows nothing here, and where its events are read instead.
fn queue_cannot_be_listed(url: &StoreUrl) -> String {
    format!(
        "{} is a queue (a NATS stream), which cannot be listed: read its events with a JetStream consumer (a durable pull consumer on stream {DEFAULT_STREAM}, as in the README's \"NATS JetStream\"), see its totals with `nats stream info {DEFAULT_STREAM}`, and the newest per device with `nats kv ls {DEFAULT_LATEST_BUCKET}`",
        url.redacted()
    )
}

fn plural(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// The human report.
pub fn render(store: &str, summary: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{store}: {}, {}",
        plural(summary.events(), "event", "events"),
        plural(summary.not_events, "other body", "other bodies")
    );
    if !summary.events_by_type.is_empty() {
        let _ = writeln!(out, "events by type:");
        let width = summary
            .events_by_type
            .iter()
            .map(|count| count.event_type.len())
            .max()
            .unwrap_or(0);
        for count in &summary.events_by_type {
            let _ = writeln!(out, "  {:<width$}  {}", count.event_type, count.count);
        }
    }
    if !summary.latest.is_empty() {
        let _ = writeln!(out, "latest per device and type (by event timestamp):");
        for latest in &summary.latest {
            let tenant = if latest.tenant == tower_dt_store::DEFAULT_TENANT {
                String::new()
            } else {
                format!("{} ", latest.tenant)
            };
            let _ = writeln!(
                out,
                "  {tenant}{} {}: {} at {}",
                latest.device, latest.event_type, latest.event_id, latest.event_time
            );
        }
    }
    out
}
