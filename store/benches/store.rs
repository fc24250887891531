//! End-to-end: what storing every verified event costs, at 16 and 64 connections.
//!
//! ```text
//! cargo bench -p tower-dt-store --bench store                 # the comparison, about 3.5 minutes
//! cargo bench -p tower-dt-store --bench store -- --quick      # 2 short rounds
//! cargo bench -p tower-dt-store --bench store -- --no-pin     # do not pin processes to CPUs
//! cargo bench -p tower-dt-store --bench store -- --postgres postgres://user@127.0.0.1:5433/db
//! cargo bench -p tower-dt-store --bench store -- --no-postgres
//! cargo bench -p tower-dt-store --features postgres,nats-ring --bench store   # + postgres, nats, naive-nats
//! cargo bench -p tower-dt-store --features nats-ring --bench store -- --nats nats://127.0.0.1:4222
//! cargo bench -p tower-dt-store --features nats-ring --bench store -- --no-nats
//! cargo bench -p tower-dt-store --features nats-ring --bench store -- --servers layer,nats   # only these
//! cargo bench -p tower-dt-store --bench store -- --csv /tmp/store-bench.csv    # default: <workspace>/target/store-bench.csv
//! cargo bench -p tower-dt-store --bench store -- --events 1000000   # more signed events
//! cargo bench -p tower-dt-store --bench store -- --devices 1000     # events of 1000 devices
//! python3 scripts/plot_store_bench.py target/store-bench.csv docs/store-bench.png
//! ```
//!
//! The servers compared, each in a process of its own (the bench starts itself in server
//! mode), on 127.0.0.1:
//!
//! - `layer`: `DtSignatureLayer` with a handler that answers 200 and stores nothing, the
//!   upper bound;
//! - `sqlite`: `DeadlineLayer` + `DtSignatureLayer` + `DtStore<SqliteStore>` on a
//!   temporary file, the stack of the crate docs' example (what `dt-signature serve`
//!   runs): one writer thread, group commit, WAL + `synchronous=FULL`;
//! - `naive-sqlite`: what a user writes: `DtSignatureLayer` + an axum handler that opens
//!   one transaction per request through the same client crate (rusqlite, one
//!   `Mutex<Connection>` used from `spawn_blocking`, WAL + `synchronous=FULL`), the same
//!   parse, hash and SQL as the store (`INSERT .. ON CONFLICT DO NOTHING` into `dt_event`,
//!   the upsert of `dt_latest`), and answers after the commit;
//! - `naive-postgres` (when PostgreSQL is there): the same handler on tokio-postgres with
//!   a deadpool pool of 16 connections, one transaction per request;
//! - `postgres`: `DtStore<PostgresStore>`, with the feature `postgres`
//!   (`cargo bench -p tower-dt-store --features postgres --bench store`);
//! - `nats` (feature `nats-ring` or `nats-aws-lc-rs`, when a NATS server is there):
//!   `DeadlineLayer` + `DtSignatureLayer` + `DtStore<NatsStore>` with the store's
//!   defaults (file storage, one replica); per new event it makes 3 requests to the
//!   server in 2 sequential round trips: the publish with
//!   `Nats-Expected-Last-Subject-Sequence: 0` (answered by the acknowledgement) with the
//!   `dt_latest` read in flight beside it, then the compare-and-set update of
//!   `dt_latest` (one more read and update per race lost to another request);
//! - `naive-nats` (the same features): what a user writes: `DtSignatureLayer` + an axum
//!   handler that reads `event.eventId` from the body and publishes the body through one
//!   shared async-nats client, `js.publish_with_headers(subject, headers, body).await?.await?`
//!   with `Nats-Msg-Id: <event id>`, to one subject of a stream made with JetStream's
//!   defaults, and answers 200 after the acknowledgement. What it serializes: per request,
//!   its one publish round trip; nothing across requests (async-nats multiplexes the
//!   concurrent requests' publishes and acknowledgements on its one connection). It keeps
//!   no `dt_latest` and de-duplicates only within JetStream's duplicate window (2
//!   minutes).
//!
//! PostgreSQL: `--postgres URL`, else, when Debian's `initdb` is installed
//! (`/usr/lib/postgresql/<version>/bin`), a throwaway cluster the bench starts itself in
//! a temporary directory (as the `postgres` user when run as root) on a free loopback
//! port, and stops at the end. `--no-postgres` skips it.
//!
//! NATS (`nats-ring` or `nats-aws-lc-rs`, which turn on `nats`): `--nats URL`, else,
//! when `nats-server` is installed (Debian's package), a throwaway `nats-server` with
//! JetStream the bench starts itself (a temporary directory for its file storage, a free
//! loopback port, the server's default settings), killed at the end. `--no-nats` skips
//! it. Each run's streams and bucket have names of their own (`DT_BENCH_<run>`, subjects
//! `dt-bench-<run>.>`, bucket `dt_latest_bench_<run>`; `NAIVE_BENCH_<run>` for
//! `naive-nats`), so a run never meets another's events; on a server given with `--nats`
//! they are deleted at the end.
//!
//! Every request carries a distinct DT event: before measuring, the bench signs a pool of
//! events (`Payload::sample` of each of DT's event types in turn, each with a fresh
//! event id and its own timestamp, `X-Dt-Signature` by `testing::Signer`). Each server
//! that stores has a cursor of its own over the pool, so every server sees the same
//! events in the same order and no store ever sees an event twice (each answer's body is
//! checked: `duplicate` fails the bench); `layer`, which keeps nothing, goes round the
//! pool. The samples come from one device per event type, so the stores' `dt_latest`
//! holds 19 rows (keys), each updated by every event of its type: the hottest case for
//! `dt_latest`. `--devices N` spreads the events over N devices (`bench000000000000042`)
//! instead.
//!
//! The load generator writes pre-built HTTP/1.1 requests on keep-alive connections (one
//! request in flight per connection, like DT). Rounds alternate the servers (A B C, then
//! C B A). With two CPUs or more and `taskset`, the servers run on CPU 1 and the load
//! generator on CPU 0; the PostgreSQL cluster and the `nats-server` the bench starts
//! inherit CPU 0. Server CPU per request is the server process's user + system time
//! (all its threads: the runtime, the SQLite writer, the blocking pool) over the window;
//! for the NATS rows the bench's own `nats-server`'s CPU per request is printed beside
//! it. It prints req/s, p50, p99 and CPU per request, the ratios of the goals of issues
//! 21 and 22, and writes them to a CSV for `scripts/plot_store_bench.py`. At the end it
//! checks that every store holds exactly one row (message) per 200 it answered.
//!
//! `server <kind> [PATH|URL] [RUN]` runs one server (prints `listening <addr>`, stops on
//! stdin EOF), for profiling: `server nats nats://127.0.0.1:4222` (RUN names the streams;
//! default the process id).

#[path = "../../benches/support/mod.rs"]
mod support;

use std::io::{BufRead, Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::serve::ListenerExt as _;
use axum::{Extension, Router};
use sha2::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceBuilder;
use tower_dt_signature::consts::X_DT_SIGNATURE;
use tower_dt_signature::events::{EventType, Payload};
use tower_dt_signature::{DtClaims, DtSignatureLayer};
use tower_dt_store::{DeadlineLayer, DtStore, SqliteStore};

const SECRET: &str = "test-secret";
/// The pool size of the naive PostgreSQL handler.
const NAIVE_PG_POOL: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Layer,
    Sqlite,
    NaiveSqlite,
    Postgres,
    NaivePostgres,
    Nats,
    NaiveNats,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Layer => "layer",
            Kind::Sqlite => "sqlite",
            Kind::NaiveSqlite => "naive-sqlite",
            Kind::Postgres => "postgres",
            Kind::NaivePostgres => "naive-postgres",
            Kind::Nats => "nats",
            Kind::NaiveNats => "naive-nats",
        }
    }

    fn parse(name: &str) -> Kind {
        match name {
            "layer" => Kind::Layer,
            "sqlite" => Kind::Sqlite,
            "naive-sqlite" => Kind::NaiveSqlite,
            "postgres" => Kind::Postgres,
            "naive-postgres" => Kind::NaivePostgres,
            "nats" => Kind::Nats,
            "naive-nats" => Kind::NaiveNats,
            other => panic!(
                "unknown server {other:?}: layer, sqlite, naive-sqlite, postgres, \
                 naive-postgres, nats, naive-nats"
            ),
        }
    }

    /// Whether it keeps events (then it must never see one twice).
    fn stores(self) -> bool {
        self != Kind::Layer
    }
}

fn main() {
    // `cargo bench` passes `--bench`; everything else is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["server", kind] => server(Kind::parse(kind), None, None),
        ["server", kind, target] => server(Kind::parse(kind), Some(target), None),
        ["server", kind, target, run] => server(Kind::parse(kind), Some(target), Some(run)),
        flags => {
            let value = |name: &str| {
                flags.iter().position(|flag| *flag == name).map(|at| {
                    flags
                        .get(at + 1)
                        .expect("a value after the flag")
                        .to_string()
                })
            };
            compare(Options {
                quick: flags.contains(&"--quick"),
                pin: !flags.contains(&"--no-pin"),
                postgres: if flags.contains(&"--no-postgres") {
                    PostgresChoice::None
                } else {
                    value("--postgres").map_or(PostgresChoice::Auto, PostgresChoice::Url)
                },
                nats: if flags.contains(&"--no-nats") {
                    NatsChoice::None
                } else {
                    value("--nats").map_or(NatsChoice::Auto, NatsChoice::Url)
                },
                servers: value("--servers")
                    .map(|servers| servers.split(',').map(Kind::parse).collect()),
                devices: value("--devices").map(|n| n.parse().expect("--devices N")),
                csv: value("--csv").map_or_else(default_csv, PathBuf::from),
                events: value("--events").map(|events| events.parse().expect("--events N")),
            })
        }
    }
}

/// `target/store-bench.csv` of the workspace.
fn default_csv() -> PathBuf {
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("store-bench.csv");
    }
    // target/release/deps/store-<hash>
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().join("store-bench.csv")
}

// ---------------------------------------------------------------------------------------
// Server mode

async fn answer(body: Bytes) -> &'static str {
    std::hint::black_box(body.len());
    "ok"
}

/// `run` names the NATS servers' streams (default: this process's id).
fn server(kind: Kind, target: Option<&str>, run: Option<&str>) {
    // Stop when the parent closes our stdin (or dies).
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let app = match kind {
            Kind::Layer => Router::new()
                .route("/", post(answer))
                .layer(DtSignatureLayer::new(SECRET)),
            Kind::Sqlite => {
                let path = target.expect("server sqlite PATH");
                let store = SqliteStore::open(path).await.expect("open the store");
                Router::new().route_service("/", DtStore::new(store)).layer(
                    ServiceBuilder::new()
                        .layer(DeadlineLayer::default())
                        .layer(DtSignatureLayer::new(SECRET)),
                )
            }
            Kind::NaiveSqlite => {
                let path = target.expect("server naive-sqlite PATH");
                let conn = naive::open_sqlite(Path::new(path));
                Router::new()
                    .route("/", post(naive::sqlite_handler))
                    .with_state(Arc::new(Mutex::new(conn)))
                    .layer(DtSignatureLayer::new(SECRET))
            }
            Kind::NaivePostgres => {
                let url = target.expect("server naive-postgres URL");
                let pool = naive::open_postgres(url).await;
                Router::new()
                    .route("/", post(naive::postgres_handler))
                    .with_state(pool)
                    .layer(DtSignatureLayer::new(SECRET))
            }
            Kind::Postgres => postgres_store_app(target.expect("server postgres URL")).await,
            Kind::Nats | Kind::NaiveNats => {
                let url = target.unwrap_or_else(|| panic!("server {} URL", kind.name()));
                let run = run.map_or_else(|| std::process::id().to_string(), str::to_owned);
                nats_app(kind, url, &run).await
            }
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening {}", listener.local_addr().unwrap());
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await.unwrap();
    });
}

/// `DtStore<PostgresStore>` behind the same layers as `sqlite`.
#[cfg(feature = "postgres")]
async fn postgres_store_app(url: &str) -> Router {
    let store = tower_dt_store::PostgresStore::connect(url)
        .await
        .expect("connect the store");
    Router::new().route_service("/", DtStore::new(store)).layer(
        ServiceBuilder::new()
            .layer(DeadlineLayer::default())
            .layer(DtSignatureLayer::new(SECRET)),
    )
}

#[cfg(not(feature = "postgres"))]
async fn postgres_store_app(_url: &str) -> Router {
    panic!("the postgres server needs the feature postgres (PostgresStore)")
}

/// Whether this build has the `postgres` (PostgresStore) server.
const POSTGRES_STORE: bool = cfg!(feature = "postgres");

/// Whether this build has the `nats` (NatsStore) and `naive-nats` servers.
const NATS: bool = cfg!(feature = "nats");

#[cfg(feature = "nats")]
use nats::{app as nats_app, check as nats_check};

#[cfg(not(feature = "nats"))]
async fn nats_app(kind: Kind, _url: &str, _run: &str) -> Router {
    panic!(
        "the {} server needs the feature nats-ring or nats-aws-lc-rs (NatsStore, async-nats)",
        kind.name()
    )
}

#[cfg(not(feature = "nats"))]
async fn nats_check(_url: &str, _run: &str, _answered: &[(Kind, u64)], _remove: bool) {
    unreachable!("no NATS servers without the feature nats")
}

/// The NATS servers: `DtStore<NatsStore>` and the naive handler, and the check of what
/// their streams hold after the run.
#[cfg(feature = "nats")]
mod nats {
    use super::*;
    use async_nats::jetstream;

    /// One run's streams, subjects and bucket on the server.
    pub(super) struct Names {
        pub(super) stream: String,
        prefix: String,
        pub(super) bucket: String,
        pub(super) naive_stream: String,
        naive_subject: String,
    }

    impl Names {
        pub(super) fn of(run: &str) -> Self {
            Self {
                stream: format!("DT_BENCH_{run}"),
                prefix: format!("dt-bench-{run}"),
                bucket: format!("dt_latest_bench_{run}"),
                naive_stream: format!("NAIVE_BENCH_{run}"),
                naive_subject: format!("naive-bench-{run}.events"),
            }
        }
    }

    pub(super) async fn app(kind: Kind, url: &str, run: &str) -> Router {
        let names = Names::of(run);
        match kind {
            // The store's defaults but for the names.
            Kind::Nats => {
                let store = tower_dt_store::NatsStore::builder(url)
                    .stream(names.stream)
                    .subject_prefix(names.prefix)
                    .latest_bucket(names.bucket)
                    .connect()
                    .await
                    .expect("connect the store");
                Router::new().route_service("/", DtStore::new(store)).layer(
                    ServiceBuilder::new()
                        .layer(DeadlineLayer::default())
                        .layer(DtSignatureLayer::new(SECRET)),
                )
            }
            Kind::NaiveNats => {
                let client = async_nats::connect(url).await.expect("connect to NATS");
                let js = jetstream::new(client);
                // What a user writes: a stream of JetStream's defaults (file storage,
                // limits, duplicate window 2 minutes) on one subject.
                js.get_or_create_stream(jetstream::stream::Config {
                    name: names.naive_stream,
                    subjects: vec![names.naive_subject.clone()],
                    ..Default::default()
                })
                .await
                .expect("create the naive stream");
                Router::new()
                    .route("/", post(naive_handler))
                    .with_state(Arc::new(Naive {
                        js,
                        subject: names.naive_subject,
                    }))
                    .layer(DtSignatureLayer::new(SECRET))
            }
            other => unreachable!("{} is not a NATS server", other.name()),
        }
    }

    struct Naive {
        js: jetstream::Context,
        subject: String,
    }

    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        event: EventId<'a>,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct EventId<'a> {
        event_id: &'a str,
    }

    /// Publish, await the acknowledgement, answer: one round trip per request, and no
    /// request waits for another's (async-nats multiplexes them on its connection).
    async fn naive_handler(
        State(naive): State<Arc<Naive>>,
        body: Bytes,
    ) -> Result<&'static str, StatusCode> {
        let envelope: Envelope<'_> =
            serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, envelope.event.event_id);
        let unavailable = |_| StatusCode::SERVICE_UNAVAILABLE;
        let ack = naive
            .js
            .publish_with_headers(naive.subject.clone(), headers, body)
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        Ok(if ack.duplicate { "duplicate" } else { "stored" })
    }

    /// The messages in `stream`.
    async fn messages(js: &jetstream::Context, stream: &str) -> u64 {
        js.get_stream(stream)
            .await
            .unwrap_or_else(|error| panic!("stream {stream}: {error}"))
            .info()
            .await
            .unwrap_or_else(|error| panic!("stream {stream}: {error}"))
            .state
            .messages
    }

    /// Checks that each NATS server's stream holds one message per 200 it answered;
    /// deletes the run's streams and bucket when `remove` (a server given with `--nats`).
    pub(super) async fn check(url: &str, run: &str, answered: &[(Kind, u64)], remove: bool) {
        let names = Names::of(run);
        let js = jetstream::new(async_nats::connect(url).await.expect("connect to NATS"));
        for &(kind, answered) in answered {
            let stream = match kind {
                Kind::Nats => &names.stream,
                _ => &names.naive_stream,
            };
            let held = messages(&js, stream).await;
            println!(
                "{}: {answered} requests answered 200, {held} messages in stream {stream}",
                kind.name()
            );
            assert_eq!(held, answered, "{} lost or invented a message", kind.name());
        }
        if answered.iter().any(|&(kind, _)| kind == Kind::Nats) {
            let latest = messages(&js, &format!("KV_{}", names.bucket)).await;
            println!("nats: {latest} keys in dt_latest (bucket {})", names.bucket);
        }
        if remove {
            for stream in [&names.stream, &names.naive_stream] {
                let _ = js.delete_stream(stream).await;
            }
            let _ = js.delete_key_value(&names.bucket).await;
        }
    }
}

/// The naive handlers: one transaction per request, what a user writes first.
mod naive {
    use super::*;

    /// The fields the store reads, from the body (a borrowed parse, as the store's).
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        event: RawEvent<'a>,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct RawEvent<'a> {
        event_id: &'a str,
        event_type: &'a str,
        target_name: &'a str,
        timestamp: &'a str,
    }

    struct Row {
        event_id: String,
        event_type: String,
        target_name: String,
        device: String,
        project: Option<String>,
        timestamp: String,
        timestamp_ns: i64,
        body: Bytes,
        sha256: [u8; 32],
        schemes: String,
        received_at_us: i64,
    }

    fn row(claims: &DtClaims, body: Bytes) -> Result<Row, StatusCode> {
        let envelope: Envelope<'_> =
            serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
        let event = envelope.event;
        let timestamp_ns = chrono::DateTime::parse_from_rfc3339(event.timestamp)
            .ok()
            .and_then(|at| at.timestamp_nanos_opt())
            .ok_or(StatusCode::BAD_REQUEST)?;
        let mut parts = event.target_name.split('/');
        let project = (parts.next() == Some("projects"))
            .then(|| parts.next().map(str::to_owned))
            .flatten();
        let device = match (parts.next(), parts.next()) {
            (Some("devices"), Some(device)) => device.to_owned(),
            _ => event.target_name.to_owned(),
        };
        let schemes = claims
            .schemes()
            .iter()
            .map(|scheme| scheme.code())
            .collect::<Vec<_>>()
            .join(",");
        Ok(Row {
            event_id: event.event_id.to_owned(),
            event_type: event.event_type.to_owned(),
            target_name: event.target_name.to_owned(),
            device,
            project,
            timestamp: event.timestamp.to_owned(),
            timestamp_ns,
            sha256: sha2::Sha256::digest(&body).into(),
            body,
            schemes,
            received_at_us: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_micros() as i64,
        })
    }

    const SQLITE_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS dt_event (
        id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, event_key TEXT NOT NULL,
        is_event INTEGER NOT NULL, event_id TEXT, event_type TEXT, target_name TEXT,
        device TEXT, project TEXT, event_time TEXT, event_time_ns INTEGER,
        body BLOB NOT NULL, body_sha256 BLOB NOT NULL, schemes TEXT NOT NULL,
        asymmetric_token TEXT, asymmetric_kid TEXT, received_at_us INTEGER NOT NULL,
        UNIQUE (tenant, event_key));
    CREATE INDEX IF NOT EXISTS dt_event_received ON dt_event (received_at_us);
    CREATE TABLE IF NOT EXISTS dt_latest (
        tenant TEXT NOT NULL, device TEXT NOT NULL, event_type TEXT NOT NULL,
        event_id TEXT NOT NULL, event_time TEXT NOT NULL, event_time_ns INTEGER NOT NULL,
        event_row INTEGER NOT NULL, body BLOB NOT NULL, received_at_us INTEGER NOT NULL,
        PRIMARY KEY (tenant, device, event_type));";

    const INSERT: &str = "
    INSERT INTO dt_event (tenant, event_key, is_event, event_id, event_type, target_name,
        device, project, event_time, event_time_ns, body, body_sha256, schemes,
        received_at_us)
    VALUES ($1, $2, TRUE, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    ON CONFLICT (tenant, event_key) DO NOTHING";

    const UPSERT: &str = "
    INSERT INTO dt_latest AS l (tenant, device, event_type, event_id, event_time,
        event_time_ns, event_row, body, received_at_us)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (tenant, device, event_type) DO UPDATE SET
        event_id = excluded.event_id, event_time = excluded.event_time,
        event_time_ns = excluded.event_time_ns, event_row = excluded.event_row,
        body = excluded.body, received_at_us = excluded.received_at_us
    WHERE excluded.event_time_ns > l.event_time_ns
       OR (excluded.event_time_ns = l.event_time_ns AND excluded.event_id > l.event_id)";

    pub(super) fn open_sqlite(path: &Path) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(path).expect("open the naive database");
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
            .unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.execute_batch(SQLITE_SCHEMA).unwrap();
        conn
    }

    pub(super) async fn sqlite_handler(
        State(db): State<Arc<Mutex<rusqlite::Connection>>>,
        Extension(claims): Extension<DtClaims>,
        body: Bytes,
    ) -> Result<&'static str, StatusCode> {
        let row = row(&claims, body)?;
        tokio::task::spawn_blocking(move || {
            let mut conn = db.lock().unwrap();
            let tx = conn.transaction()?;
            let inserted = tx.prepare_cached(INSERT)?.execute(rusqlite::params![
                "-",
                row.event_id,
                row.event_type,
                row.target_name,
                row.device,
                row.project,
                row.timestamp,
                row.timestamp_ns,
                &row.body[..],
                &row.sha256[..],
                row.schemes,
                row.received_at_us,
            ])?;
            if inserted == 1 {
                let id = tx.last_insert_rowid();
                tx.prepare_cached(UPSERT)?.execute(rusqlite::params![
                    "-",
                    row.device,
                    row.event_type,
                    row.event_id,
                    row.timestamp,
                    row.timestamp_ns,
                    id,
                    &row.body[..],
                    row.received_at_us,
                ])?;
            }
            tx.commit()?;
            Ok::<_, rusqlite::Error>(if inserted == 1 { "stored" } else { "duplicate" })
        })
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
    }

    const POSTGRES_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS dt_event (
        id BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, event_key TEXT NOT NULL,
        is_event BOOLEAN NOT NULL, event_id TEXT, event_type TEXT, target_name TEXT,
        device TEXT, project TEXT, event_time TEXT, event_time_ns BIGINT,
        body BYTEA NOT NULL, body_sha256 BYTEA NOT NULL, schemes TEXT NOT NULL,
        asymmetric_token TEXT, asymmetric_kid TEXT, received_at_us BIGINT NOT NULL,
        UNIQUE (tenant, event_key));
    CREATE INDEX IF NOT EXISTS dt_event_received ON dt_event (received_at_us);
    CREATE TABLE IF NOT EXISTS dt_latest (
        tenant TEXT NOT NULL, device TEXT NOT NULL, event_type TEXT NOT NULL,
        event_id TEXT NOT NULL, event_time TEXT NOT NULL, event_time_ns BIGINT NOT NULL,
        event_row BIGINT NOT NULL, body BYTEA NOT NULL, received_at_us BIGINT NOT NULL,
        PRIMARY KEY (tenant, device, event_type));";

    /// The naive PostgreSQL handler keeps its tables in a schema of its own
    /// (`naive_bench`), beside the store's.
    pub(super) async fn open_postgres(url: &str) -> deadpool_postgres::Pool {
        let mut config = deadpool_postgres::Config::new();
        config.url = Some(url.to_owned());
        config.options = Some("-c search_path=naive_bench".to_owned());
        config.pool = Some(deadpool_postgres::PoolConfig::new(NAIVE_PG_POOL));
        let pool = config
            .create_pool(
                Some(deadpool_postgres::Runtime::Tokio1),
                tokio_postgres::NoTls,
            )
            .expect("a pool");
        let client = pool.get().await.expect("connect to PostgreSQL");
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS naive_bench; {POSTGRES_SCHEMA}"
            ))
            .await
            .expect("create the naive tables");
        pool
    }

    pub(super) async fn postgres_handler(
        State(pool): State<deadpool_postgres::Pool>,
        Extension(claims): Extension<DtClaims>,
        body: Bytes,
    ) -> Result<&'static str, StatusCode> {
        let row = row(&claims, body)?;
        let unavailable = |_| StatusCode::SERVICE_UNAVAILABLE;
        let mut client = pool
            .get()
            .await
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
        let tx = client.transaction().await.map_err(unavailable)?;
        let insert = tx
            .prepare_cached(&format!("{INSERT} RETURNING id"))
            .await
            .map_err(unavailable)?;
        let inserted = tx
            .query_opt(
                &insert,
                &[
                    &"-",
                    &row.event_id,
                    &row.event_type,
                    &row.target_name,
                    &row.device,
                    &row.project,
                    &row.timestamp,
                    &row.timestamp_ns,
                    &&row.body[..],
                    &&row.sha256[..],
                    &row.schemes,
                    &row.received_at_us,
                ],
            )
            .await
            .map_err(unavailable)?;
        if let Some(inserted) = &inserted {
            let id: i64 = inserted.get(0);
            let upsert = tx.prepare_cached(UPSERT).await.map_err(unavailable)?;
            tx.execute(
                &upsert,
                &[
                    &"-",
                    &row.device,
                    &row.event_type,
                    &row.event_id,
                    &row.timestamp,
                    &row.timestamp_ns,
                    &id,
                    &&row.body[..],
                    &row.received_at_us,
                ],
            )
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(if inserted.is_some() {
            "stored"
        } else {
            "duplicate"
        })
    }
}

/// A server process of ours, pinned to `cpu` if given.
struct ServerProcess {
    kind: Kind,
    child: Child,
    addr: SocketAddr,
    /// Requests it answered 200 (warm-ups included).
    answered: Arc<AtomicU64>,
    /// Its next request in the pool.
    cursor: Arc<AtomicUsize>,
    /// The process of the server it stores in, when the bench started it (its CPU time
    /// is measured too): the `nats-server`.
    peer: Option<u32>,
}

impl ServerProcess {
    /// `server <kind> <args>`.
    fn spawn(kind: Kind, args: &[&str], cpu: Option<usize>) -> Self {
        let exe = std::env::current_exe().unwrap();
        let mut command = match cpu {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpu.to_string()).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        command.args(["server", kind.name()]).args(args);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a server process");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("server {} said {line:?}", kind.name()))
            .parse()
            .unwrap();
        Self {
            kind,
            child,
            addr,
            answered: Arc::default(),
            cursor: Arc::default(),
            peer: None,
        }
    }

    /// User + system CPU time used so far, all threads.
    fn cpu_time(&self) -> Duration {
        support::process_cpu_time(self.child.id())
    }

    /// The same for the peer, if any.
    fn peer_cpu_time(&self) -> Option<Duration> {
        self.peer.map(support::process_cpu_time)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Events and the load generator

/// Pre-signed requests, each with a distinct DT event.
struct Pool {
    requests: Vec<Vec<u8>>,
}

impl Pool {
    /// `devices`: spread the events over this many devices (default: the samples' own,
    /// one device per event type).
    fn sign(count: usize, devices: Option<usize>) -> Pool {
        let types: Vec<EventType> = EventType::ALL.to_vec();
        // Timestamps from an hour ago, 1 ms apart: distinct, and in pool order.
        let start = SystemTime::now() - Duration::from_secs(3600);
        let requests = (0..count)
            .map(|i| {
                let event_type = &types[i % types.len()];
                let at = start + Duration::from_micros(1000 * i as u64);
                let mut payload = Payload::sample(event_type, at).expect("a sample");
                if let Some(devices) = devices {
                    let device = format!("bench{:015}", i % devices);
                    let event = &mut payload.event;
                    let project = event.target_name.rsplit_once('/').unwrap().0;
                    event.target_name = format!("{project}/{device}");
                    if let Some(metadata) = &mut payload.metadata {
                        metadata.device_id = Some(device);
                    }
                }
                let body = serde_json::to_vec(&payload).unwrap();
                let token = support::dt_token(&body, 0, SECRET);
                let mut request = format!(
                    "POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
                     {X_DT_SIGNATURE}: {token}\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                request.extend_from_slice(&body);
                request
            })
            .collect();
        Pool { requests }
    }

    /// The next request for `kind` at its `cursor`; `None` when a storing server has used
    /// them all (the layer goes round).
    fn next(&self, kind: Kind, cursor: &AtomicUsize) -> Option<&[u8]> {
        let index = cursor.fetch_add(1, Ordering::Relaxed);
        if kind.stores() {
            self.requests.get(index).map(Vec::as_slice)
        } else {
            Some(&self.requests[index % self.requests.len()])
        }
    }
}

/// Read one response: its status and whether its body says `duplicate`.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> (u16, bool) {
    buf.clear();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).expect("an ASCII response head");
            let status = head[9..12].parse().expect("a status code");
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("a content-length");
            let total = end + 4 + length;
            while buf.len() < total {
                read_more(stream, buf).await;
            }
            let duplicate = &buf[end + 4..total] == b"duplicate";
            buf.drain(..total);
            return (status, duplicate);
        }
        read_more(stream, buf).await;
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) {
    buf.reserve(4096);
    if stream.read_buf(buf).await.expect("read a response") == 0 {
        panic!("the server closed the connection");
    }
}

/// What one measurement window saw.
#[derive(Default)]
struct Window {
    requests: u64,
    elapsed: Duration,
    /// Latencies in microseconds.
    latencies: Vec<u32>,
    server_cpu: Duration,
    /// The peer's CPU time (`ServerProcess::peer`), when there is one.
    peer_cpu: Option<Duration>,
}

impl Window {
    fn add(&mut self, other: &Window) {
        self.requests += other.requests;
        self.elapsed += other.elapsed;
        self.latencies.extend_from_slice(&other.latencies);
        self.server_cpu += other.server_cpu;
        if let Some(peer) = other.peer_cpu {
            *self.peer_cpu.get_or_insert(Duration::ZERO) += peer;
        }
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&mut self, p: f64) -> f64 {
        self.latencies.sort_unstable();
        let index = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
        f64::from(self.latencies[index])
    }

    fn cpu_us_per_request(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.requests as f64
    }

    fn peer_cpu_us_per_request(&self) -> Option<f64> {
        self.peer_cpu
            .map(|cpu| cpu.as_secs_f64() * 1e6 / self.requests as f64)
    }
}

/// Keep `connections` connections busy with fresh events for `warm_up`, then measure for
/// `duration`.
async fn load(
    server: &ServerProcess,
    pool: &Arc<Pool>,
    connections: usize,
    warm_up: Duration,
    duration: Duration,
) -> Window {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        stream.set_nodelay(true).unwrap();
        let (pool, measuring, stop) = (pool.clone(), measuring.clone(), stop.clone());
        let (kind, answered, cursor) =
            (server.kind, server.answered.clone(), server.cursor.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(1 << 14);
            let mut buf = Vec::with_capacity(4096);
            while !stop.load(Ordering::Relaxed) {
                let Some(request) = pool.next(kind, &cursor) else {
                    panic!(
                        "the pool of {} signed events is used up: raise --events",
                        pool.requests.len()
                    );
                };
                let start = Instant::now();
                stream.write_all(request).await.expect("write a request");
                let (status, duplicate) = read_response(&mut stream, &mut buf).await;
                assert_eq!(status, 200, "{} refused a request", kind.name());
                assert!(!duplicate, "{} saw an event twice", kind.name());
                answered.fetch_add(1, Ordering::Relaxed);
                if measuring.load(Ordering::Relaxed) {
                    latencies.push(start.elapsed().as_micros() as u32);
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(warm_up).await;
    let cpu_before = server.cpu_time();
    let peer_before = server.peer_cpu_time();
    let start = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(duration).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = start.elapsed();
    let server_cpu = server.cpu_time() - cpu_before;
    let peer_cpu = server
        .peer_cpu_time()
        .zip(peer_before)
        .map(|(after, before)| after - before);
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    Window {
        requests: latencies.len() as u64,
        elapsed,
        latencies,
        server_cpu,
        peer_cpu,
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL for the bench

enum PostgresChoice {
    /// `--no-postgres`.
    None,
    /// A cluster of our own when `initdb` is installed.
    Auto,
    Url(String),
}

/// A throwaway cluster in a temporary directory, stopped on drop.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres: bool,
    url: String,
}

impl Cluster {
    /// Debian's `initdb` (`/usr/lib/postgresql/<version>/bin`), the newest version.
    fn start() -> Option<Cluster> {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists())
            .collect();
        versions.sort();
        let bin = versions.pop()?;
        let uid = Command::new("id").arg("-u").output().ok()?;
        let as_postgres = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        let dir = std::env::temp_dir().join(format!("dt-store-bench-pg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        if as_postgres {
            let chown = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .ok()?;
            assert!(chown.success(), "chown the cluster's directory");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let cluster = Cluster {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            bin,
            dir,
            as_postgres,
        };
        let data = cluster.dir.join("data");
        let ok = cluster.run("initdb", |c| {
            c.arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres"])
        }) && cluster.run("pg_ctl", |c| {
            c.arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(cluster.dir.join("log"))
                .arg("-o")
                .arg(format!(
                    "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={}",
                    cluster.dir.display()
                ))
                .args(["-w", "start"])
        });
        if !ok {
            eprintln!(
                "could not start PostgreSQL in {}: no PostgreSQL rows",
                cluster.dir.display()
            );
            return None;
        }
        Some(cluster)
    }

    fn run(&self, program: &str, args: impl FnOnce(&mut Command) -> &mut Command) -> bool {
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join(program));
            command
        } else {
            Command::new(self.bin.join(program))
        };
        command
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        args(&mut command)
            .status()
            .is_ok_and(|status| status.success())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        self.run("pg_ctl", |c| {
            c.arg("-D").arg(&data).args(["-m", "fast", "stop"])
        });
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------
// NATS for the bench

enum NatsChoice {
    /// `--no-nats`.
    None,
    /// A `nats-server` of our own when it is installed.
    Auto,
    Url(String),
}

/// A throwaway `nats-server` with JetStream: its file storage in a temporary directory,
/// a free loopback port, the server's defaults otherwise. Killed on drop.
struct NatsServer {
    child: Child,
    url: String,
    /// Removed on drop, after the server is killed.
    _dir: tempfile::TempDir,
}

impl NatsServer {
    /// `None`, with a note, when `nats-server` is not installed or does not start.
    fn start() -> Option<NatsServer> {
        // On the PATH, or where Debian puts it (/usr/sbin, often not on a user's PATH).
        let Some(binary) = [
            "nats-server",
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
        ]
        .into_iter()
        .find(|binary| Command::new(binary).arg("--version").output().is_ok()) else {
            println!("no nats-server installed (Debian's nats-server package): no NATS rows");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("dt-store-bench-nats-")
            .tempdir()
            .ok()?;
        let log_path = dir.path().join("nats.log");
        let mut last_log = String::new();
        // The free port may be taken before the server binds it: try another.
        for _ in 0..4 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .ok()?
                .local_addr()
                .ok()?
                .port();
            let config = dir.path().join("nats.conf");
            std::fs::write(
                &config,
                format!(
                    "host: 127.0.0.1\nport: {port}\njetstream {{\n  store_dir: \"{}\"\n}}\n",
                    dir.path().join("js").display()
                ),
            )
            .ok()?;
            let log = std::fs::File::create(&log_path).ok()?;
            let mut child = Command::new(binary)
                .arg("-c")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().ok()?)
                .stderr(log)
                .spawn()
                .ok()?;
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
                if last_log.contains("Server is ready") {
                    return Some(NatsServer {
                        child,
                        url: format!("nats://127.0.0.1:{port}"),
                        _dir: dir,
                    });
                }
                let exited = child.try_wait().ok().flatten().is_some();
                if exited || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        println!("could not start nats-server: no NATS rows; its log:\n{last_log}");
        None
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The comparison

struct Options {
    quick: bool,
    pin: bool,
    postgres: PostgresChoice,
    nats: NatsChoice,
    /// `--servers layer,nats,...`: only these (default: all), e.g. for a profile.
    servers: Option<Vec<Kind>>,
    /// `--devices N`: the events come from N devices (default: one per event type).
    devices: Option<usize>,
    csv: PathBuf,
    /// How many distinct events to sign (default 400 000, 1 500 000 without `--quick`).
    events: Option<usize>,
}

fn compare(options: Options) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = options.pin && cpus >= 2 && Command::new("taskset").arg("-V").output().is_ok();
    if pin {
        // Threads (and processes) made from now on inherit CPU 0; the servers go to CPU 1.
        let status = Command::new("taskset")
            .args(["-a", "-p", "-c", "0", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "taskset failed");
    }
    let server_cpu = pin.then_some(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(if pin { 1 } else { cpus })
        .enable_all()
        .build()
        .unwrap();
    // Each storing server uses the pool from its start: it must hold what the fastest
    // one (naive-nats, near the layer's rate) answers in all its windows.
    let (rounds, window, warm_up, events) = if options.quick {
        (
            2,
            Duration::from_secs(1),
            Duration::from_millis(300),
            400_000,
        )
    } else {
        (
            5,
            Duration::from_secs(2),
            Duration::from_millis(500),
            1_500_000,
        )
    };

    let cluster;
    let postgres_url = match options.postgres {
        PostgresChoice::None => None,
        PostgresChoice::Url(url) => Some(url),
        PostgresChoice::Auto => {
            cluster = Cluster::start();
            cluster.as_ref().map(|cluster| cluster.url.clone())
        }
    };
    // Declared before the servers, so dropped (killed) after them.
    let nats_server = match (&options.nats, NATS) {
        (NatsChoice::Auto, true) => NatsServer::start(),
        _ => None,
    };
    let nats_url = match options.nats {
        _ if !NATS => {
            println!(
                "no NATS rows: NatsStore and the naive handler need --features nats-ring \
                 (or nats-aws-lc-rs)"
            );
            None
        }
        NatsChoice::None => None,
        NatsChoice::Url(url) => Some(url),
        NatsChoice::Auto => nats_server.as_ref().map(|server| server.url.clone()),
    };
    let nats_ours = nats_server.is_some();
    // The run's streams on the NATS server (`nats::Names`).
    let run = format!(
        "{}{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        std::process::id()
    );

    let wanted = |kind: Kind| {
        options
            .servers
            .as_ref()
            .is_none_or(|only| only.contains(&kind))
    };
    let events = options.events.unwrap_or(events);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let pool = Arc::new(Pool::sign(events, options.devices));
    println!(
        "store: {cpus} CPUs; {}; {rounds} rounds of {window:?} (after {warm_up:?} of warm-up) \
         per server and connection count, servers alternated (A B C, C B A, ...); {events} \
         distinct signed events (signed in {:.1?}); SQLite files in {}",
        if pin {
            "servers pinned to CPU 1, load generator (and PostgreSQL, nats-server) to CPU 0"
        } else {
            "not pinned"
        },
        started.elapsed(),
        dir.path().display(),
    );
    let sqlite_path = dir.path().join("store.db");
    let naive_path = dir.path().join("naive.db");
    let path = |path: &Path| path.to_str().unwrap().to_owned();
    let mut servers = Vec::new();
    let mut spawn = |kind: Kind, args: &[&str], peer: Option<u32>| {
        if wanted(kind) {
            let mut server = ServerProcess::spawn(kind, args, server_cpu);
            server.peer = peer;
            servers.push(server);
        }
    };
    spawn(Kind::Layer, &[], None);
    spawn(Kind::Sqlite, &[&path(&sqlite_path)], None);
    spawn(Kind::NaiveSqlite, &[&path(&naive_path)], None);
    if let Some(url) = &postgres_url {
        println!("PostgreSQL: {url} (naive-postgres: a deadpool pool of {NAIVE_PG_POOL})");
        if POSTGRES_STORE {
            spawn(Kind::Postgres, &[url], None);
        } else {
            println!("  (no postgres row: PostgresStore needs --features postgres)");
        }
        spawn(Kind::NaivePostgres, &[url], None);
    } else {
        println!("no PostgreSQL: no postgres rows");
    }
    if let Some(url) = &nats_url {
        let peer = nats_server.as_ref().map(|server| server.child.id());
        println!(
            "NATS: {url} ({}; streams DT_BENCH_{run}, NAIVE_BENCH_{run})",
            if nats_ours {
                "a nats-server of the bench's, file storage, its CPU measured"
            } else {
                "given with --nats"
            }
        );
        spawn(Kind::Nats, &[url, &run], peer);
        spawn(Kind::NaiveNats, &[url, &run], peer);
    }

    let mut csv = String::from(
        "connections,server,round,req_s,p50_us,p99_us,cpu_us_per_req,nats_server_cpu_us_per_req\n",
    );
    let peer_cpu = |window: &Window| {
        window
            .peer_cpu_us_per_request()
            .map_or_else(String::new, |cpu| format!("{cpu:.2}"))
    };
    println!(
        "\nDT events of every type (~{} bytes each with the token), keep-alive, one request \
         in flight per connection",
        pool.requests[0].len()
    );
    println!(
        "{:>5}  {:>15}  {:>9}  {:>8}  {:>8}  {:>11}  {:>18}",
        "conns", "server", "req/s", "p50 us", "p99 us", "cpu us/req", "nats-server us/req"
    );
    let index_of = |kind: Kind| servers.iter().position(|server| server.kind == kind);
    for connections in [16, 64] {
        let mut totals: Vec<Window> = servers.iter().map(|_| Window::default()).collect();
        // Per round, each server's requests/s.
        let mut per_round: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
        for round in 0..rounds {
            let mut order: Vec<usize> = (0..servers.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for index in order {
                let mut result =
                    runtime.block_on(load(&servers[index], &pool, connections, warm_up, window));
                csv += &format!(
                    "{connections},{},{round},{:.1},{:.0},{:.0},{:.2},{}\n",
                    servers[index].kind.name(),
                    result.rps(),
                    result.percentile(0.50),
                    result.percentile(0.99),
                    result.cpu_us_per_request(),
                    peer_cpu(&result),
                );
                per_round[index].push(result.rps());
                totals[index].add(&result);
            }
        }
        let mut figures = Vec::new();
        for (server, total) in servers.iter().zip(&mut totals) {
            let (rps, p50, p99, cpu) = (
                total.rps(),
                total.percentile(0.50),
                total.percentile(0.99),
                total.cpu_us_per_request(),
            );
            let peer = peer_cpu(total);
            println!(
                "{connections:>5}  {:>15}  {rps:>9.0}  {p50:>8.0}  {p99:>8.0}  {cpu:>11.1}  {:>18}",
                server.kind.name(),
                if peer.is_empty() { "-" } else { &peer },
            );
            csv += &format!(
                "{connections},{},all,{rps:.1},{p50:.0},{p99:.0},{cpu:.2},{peer}\n",
                server.kind.name()
            );
            figures.push((rps, p99));
        }
        let rps = |kind| index_of(kind).map(|index| figures[index].0);
        // The whole run's ratio, then the range of the rounds' ratios (same round, so the
        // same background load).
        let ratio = |a, b| match (index_of(a), index_of(b)) {
            (Some(i), Some(j)) => {
                let mut rounds: Vec<f64> = per_round[i]
                    .iter()
                    .zip(&per_round[j])
                    .map(|(a, b)| a / b)
                    .collect();
                rounds.sort_by(f64::total_cmp);
                format!(
                    "{:.2} (rounds {:.2}..{:.2})",
                    rps(a).unwrap() / rps(b).unwrap(),
                    rounds[0],
                    rounds[rounds.len() - 1]
                )
            }
            _ => "-".to_owned(),
        };
        let goal = |text: &'static str| if connections == 64 { text } else { "" };
        println!(
            "{connections:>5}  ratios: sqlite/layer {}{}, sqlite/naive-sqlite {}{}, \
             postgres/layer {}, postgres/naive-postgres {}, naive-postgres/layer {}",
            ratio(Kind::Sqlite, Kind::Layer),
            goal(" (goal >= 0.5)"),
            ratio(Kind::Sqlite, Kind::NaiveSqlite),
            goal(" (goal >= 3)"),
            ratio(Kind::Postgres, Kind::Layer),
            ratio(Kind::Postgres, Kind::NaivePostgres),
            ratio(Kind::NaivePostgres, Kind::Layer),
        );
        println!(
            "{connections:>5}  ratios: nats/layer {}{}, nats/naive-nats {}, naive-nats/layer {}",
            ratio(Kind::Nats, Kind::Layer),
            goal(" (goal >= 0.5)"),
            ratio(Kind::Nats, Kind::NaiveNats),
            ratio(Kind::NaiveNats, Kind::Layer),
        );
        if connections == 16 {
            for kind in [Kind::Sqlite, Kind::Nats] {
                if let Some(index) = index_of(kind) {
                    println!(
                        "{connections:>5}  {} p99 {:.2} ms (goal < 10 ms)",
                        kind.name(),
                        figures[index].1 / 1000.0
                    );
                }
            }
        }
    }
    // Every 200 of a store is a row: the SQLite files hold exactly what was answered.
    for (kind, path) in [
        (Kind::Sqlite, &sqlite_path),
        (Kind::NaiveSqlite, &naive_path),
    ] {
        let Some(index) = index_of(kind) else {
            continue;
        };
        let server = &servers[index];
        let rows: u64 = rusqlite::Connection::open(path)
            .unwrap()
            .query_row("SELECT count(*) FROM dt_event", [], |row| row.get(0))
            .unwrap();
        let answered = server.answered.load(Ordering::Relaxed);
        println!(
            "{}: {answered} requests answered 200, {rows} rows in dt_event",
            kind.name()
        );
        assert_eq!(rows, answered, "{} lost or invented a row", kind.name());
    }
    // ... and the streams one message per 200.
    if let Some(url) = &nats_url {
        let answered: Vec<(Kind, u64)> = [Kind::Nats, Kind::NaiveNats]
            .into_iter()
            .filter_map(|kind| {
                let server = &servers[index_of(kind)?];
                Some((kind, server.answered.load(Ordering::Relaxed)))
            })
            .collect();
        runtime.block_on(nats_check(url, &run, &answered, !nats_ours));
    }
    drop(servers);
    if let Some(parent) = options.csv.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::File::create(&options.csv)
        .and_then(|mut file| file.write_all(csv.as_bytes()))
        .expect("write the CSV");
    println!("\nwrote {}", options.csv.display());
}
