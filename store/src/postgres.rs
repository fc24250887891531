//! [`PostgresStore`]: a PostgreSQL server shared by several replicas (feature `postgres`).
//!
//! Every request is one transaction on a connection of a pool (tokio-postgres, deadpool):
//! `INSERT ... ON CONFLICT (tenant, event_key) DO NOTHING` into `dt_event`, then, for a new
//! event, the upsert of `dt_latest` by the same rule as SQLite's (the greater
//! `event_time_ns`, or at the same instant the greater `event_id`), then `COMMIT`. There is
//! no batching here: PostgreSQL already shares one WAL flush among the commits that wait
//! for it together (group commit in the server), so concurrent requests on the pool's
//! connections are flushed together.
//!
//! # Durability
//!
//! A request is answered `200` once its `COMMIT` returned. The store never sets
//! `synchronous_commit`: with the server's default (`on`) the commit record is fsynced to
//! the server's WAL before `COMMIT` returns, so an answered event survives a crash of the
//! receiver, of the server, and a power cut of the server's machine (given a disk that
//! honours fsync). With synchronous standbys (`synchronous_commit = remote_apply`, ...),
//! it is as durable as the server is configured; a server set to
//! `synchronous_commit = off` can lose the last few hundred milliseconds of answered events
//! in a power cut or a server crash (never in a receiver crash). An event whose
//! transaction had not committed was never answered `200`, and DT retries it.
//!
//! A copy of an event that arrives while the first copy's transaction is open waits on the
//! row lock of the unique key: once the first commits, the copy finds the row and is
//! answered `200` (duplicate); if the first aborts, the copy inserts it. A commit becomes
//! visible to other sessions only after its WAL flush, so a duplicate is never answered
//! before the first copy is durable.
//!
//! Each write runs on a task of its own (`tokio::spawn`): a caller that gives up at its
//! deadline drops only its wait, never a transaction half way. Such a write may still
//! commit after its request got `503`; DT's retry then finds it and is answered `200`.
//!
//! # The pool
//!
//! [`pool_size`](PostgresStoreBuilder::pool_size) connections at most
//! ([`DEFAULT_POOL_SIZE`], 16): enough concurrent transactions for the server's group
//! commit to share its flushes, and few enough that several replicas stay under the
//! server's default `max_connections` (100). A request waits for a free connection at
//! most [`wait_timeout`](PostgresStoreBuilder::wait_timeout), then fails `503`.
//!
//! # An unreachable server, errors
//!
//! [`connect`](PostgresStore::connect) does not fail when the server cannot be reached: it
//! returns a store whose [`ready`](Backend::ready) names the host and the error, and every
//! write tries to connect again (as a Redis connection manager does). The schema is
//! created (or checked) on the first connection that succeeds. A server that answers but
//! refuses the credentials, names a database that does not exist, or holds a newer schema
//! makes `connect` fail ([`StoreErrorKind::Config`], [`StoreErrorKind::SchemaTooNew`]).
//!
//! | failure | [`StoreErrorKind`] |
//! | --- | --- |
//! | connection refused, lost or timed out; no free connection in time; the server shutting down, starting up, in recovery or read-only (SQLSTATE class `08`, class `57` but a canceled statement `57014`, `25006`, `53300`; tokio-postgres's I/O and "connection closed" errors) | `Unavailable` |
//! | the server's disk full (`53100`) | `Full` |
//! | refused credentials or role (`28P01`, `28000`), no such database (`3D000`), no privilege (`42501`), a bad URL | `Config` |
//! | a newer `dt_schema` | `SchemaTooNew` |
//! | anything else | `Database` |
//!
//! Messages name `host:port` and the server's own error text, never the password.
//!
//! # A full disk
//!
//! When the server cannot extend a table or an index (`ERROR: could not extend file ...:
//! No space left on device`, SQLSTATE `53100`), the transaction is rolled back: the event
//! is in neither table, the request is answered `503` ([`StoreErrorKind::Full`]) and DT
//! retries it. Once space is freed, the retry is stored. A server whose WAL disk is full
//! stops (PANIC) instead: that is the server going away, answered `503`
//! ([`StoreErrorKind::Unavailable`]) until it is back.
//!
//! Requires PostgreSQL 13 or newer (`xid8`, `pg_current_xact_id()`). TLS is not offered:
//! connect over a Unix socket (`postgres:///db?host=/run/postgresql`) or a trusted
//! network.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio::sync::Notify;
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use crate::backend::{Backend, BoxFuture, Put};
use crate::error::{StoreError, StoreErrorKind};
use crate::record::EventRecord;
use crate::schema::{self, SCHEMA_VERSION};
use crate::summary::{Latest, Summary, TypeCount};

/// The default number of connections of the pool.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// The default bound of a connection attempt.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default bound of the wait for a free connection of the pool.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default bound of [`ready`](Backend::ready)'s probe.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The key of the advisory lock that serializes the creation of the schema: the bytes
/// `dt_store` read as a big-endian integer.
const SCHEMA_LOCK: i64 = 0x6474_5f73_746f_7265;

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS dt_event (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant           TEXT    NOT NULL,
    event_key        TEXT    NOT NULL,
    is_event         BOOLEAN NOT NULL,
    event_id         TEXT,
    event_type       TEXT,
    target_name      TEXT,
    device           TEXT,
    project          TEXT,
    event_time       TEXT,
    event_time_ns    BIGINT,
    body             BYTEA   NOT NULL,
    body_sha256      BYTEA   NOT NULL,
    schemes          TEXT    NOT NULL,
    asymmetric_token TEXT,
    asymmetric_kid   TEXT,
    received_at_us   BIGINT  NOT NULL,
    tx_id            XID8    NOT NULL DEFAULT pg_current_xact_id(),
    UNIQUE (tenant, event_key)
);
CREATE INDEX IF NOT EXISTS dt_event_received ON dt_event (received_at_us);
CREATE INDEX IF NOT EXISTS dt_event_tx ON dt_event (tx_id, id);
CREATE TABLE IF NOT EXISTS dt_latest (
    tenant         TEXT   NOT NULL,
    device         TEXT   NOT NULL,
    event_type     TEXT   NOT NULL,
    event_id       TEXT   NOT NULL,
    event_time     TEXT   NOT NULL,
    event_time_ns  BIGINT NOT NULL,
    event_row      BIGINT NOT NULL,
    body           BYTEA  NOT NULL,
    received_at_us BIGINT NOT NULL,
    PRIMARY KEY (tenant, device, event_type)
);
";

const INSERT_EVENT: &str = "
INSERT INTO dt_event (tenant, event_key, is_event, event_id, event_type, target_name, device,
    project, event_time, event_time_ns, body, body_sha256, schemes, asymmetric_token,
    asymmetric_kid, received_at_us)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (tenant, event_key) DO NOTHING
RETURNING id";

const STORED_SHA256: &str = "SELECT body_sha256 FROM dt_event WHERE tenant = $1 AND event_key = $2";

// SQLite's rule: newer by the event's timestamp; at the same instant, the greater event id
// (compared as bytes: COLLATE "C") wins.
const UPSERT_LATEST: &str = r#"
INSERT INTO dt_latest (tenant, device, event_type, event_id, event_time, event_time_ns,
    event_row, body, received_at_us)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (tenant, device, event_type) DO UPDATE SET
    event_id = EXCLUDED.event_id, event_time = EXCLUDED.event_time,
    event_time_ns = EXCLUDED.event_time_ns, event_row = EXCLUDED.event_row,
    body = EXCLUDED.body, received_at_us = EXCLUDED.received_at_us
WHERE EXCLUDED.event_time_ns > dt_latest.event_time_ns
   OR (EXCLUDED.event_time_ns = dt_latest.event_time_ns
       AND EXCLUDED.event_id COLLATE "C" > dt_latest.event_id COLLATE "C")"#;

/// The options of a [`PostgresStore`]: made by [`PostgresStore::builder`].
#[derive(Clone)]
pub struct PostgresStoreBuilder {
    url: String,
    pool_size: usize,
    connect_timeout: Duration,
    wait_timeout: Duration,
    ready_timeout: Duration,
}

impl std::fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold the password.
        f.debug_struct("PostgresStoreBuilder")
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("wait_timeout", &self.wait_timeout)
            .field("ready_timeout", &self.ready_timeout)
            .finish_non_exhaustive()
    }
}

impl PostgresStoreBuilder {
    /// The largest number of connections the pool opens. Default [`DEFAULT_POOL_SIZE`].
    pub fn pool_size(mut self, connections: usize) -> Self {
        self.pool_size = connections.max(1);
        self
    }

    /// How long a connection attempt may take. Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a write waits for a free connection of the pool before it fails
    /// ([`StoreErrorKind::Unavailable`]). Default [`DEFAULT_WAIT_TIMEOUT`].
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
        self
    }

    /// How long [`ready`](Backend::ready) waits for the server's answer. Default
    /// [`DEFAULT_READY_TIMEOUT`].
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Parses the URL, makes the pool and connects once to create or check the schema.
    ///
    /// Fails with [`StoreErrorKind::Config`] for a URL that does not parse, or a server
    /// that refuses the credentials or the database, and with
    /// [`StoreErrorKind::SchemaTooNew`] for a newer schema (any other error of a server
    /// that answers fails it too, [`StoreErrorKind::Database`]). A server that cannot be
    /// reached is not an error: the store is returned, [`ready`](Backend::ready) says why
    /// it is not, and the schema is created on the first connection that succeeds.
    pub async fn connect(self) -> Result<PostgresStore, StoreError> {
        let mut config = tokio_postgres::Config::from_str(&self.url).map_err(|error| {
            // The parser's message never repeats the URL (nor its password).
            StoreError::new(
                StoreErrorKind::Config,
                format!("invalid PostgreSQL URL: {}", chain(&error)),
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(self.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("tower-dt-store");
        }
        let place = Place::of(&config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A connection the server closed is dropped before it is handed out; a
                // connection lost while idle fails its next write (503) and is dropped.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(self.wait_timeout))
            .create_timeout(Some(self.connect_timeout + Duration::from_secs(1)))
            .recycle_timeout(Some(self.connect_timeout))
            .build()
            .map_err(|error| {
                StoreError::new(
                    StoreErrorKind::Config,
                    format!("cannot make the connection pool: {error}"),
                )
            })?;
        let inner = Arc::new(Inner {
            pool,
            place,
            schema_ready: AtomicBool::new(false),
            schema_lock: tokio::sync::Mutex::new(()),
            last_error: Mutex::new(None),
            closed: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
        });
        match inner.client().await {
            Ok(_) => {}
            Err(error) if error.kind() == StoreErrorKind::Unavailable => {
                tracing::warn!(
                    %error,
                    store = %inner.place.describe(),
                    "PostgreSQL is unreachable: serving, retrying on each write"
                );
                inner.set_last_error(Some(error));
            }
            Err(error) => return Err(error),
        }
        Ok(PostgresStore {
            inner,
            ready_timeout: self.ready_timeout,
        })
    }
}

/// Where the store connects: for messages and [`describe`](Backend::describe).
#[derive(Clone, Debug)]
struct Place {
    /// `None`: tokio-postgres logs in as the process's user.
    user: Option<String>,
    host: String,
    port: u16,
    dbname: String,
}

impl Place {
    fn of(config: &tokio_postgres::Config) -> Self {
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            Some(Host::Unix(path)) => path.display().to_string(),
            None => match config.get_hostaddrs().first() {
                Some(address) => address.to_string(),
                None => "localhost".to_owned(),
            },
        };
        let user = config.get_user().map(str::to_owned);
        Self {
            // The server's default: the user's name.
            dbname: config
                .get_dbname()
                .or(user.as_deref())
                .unwrap_or_default()
                .to_owned(),
            user,
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
        }
    }

    fn describe(&self) -> String {
        let host = if self.host.contains(':') && !self.host.starts_with('/') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let user = self
            .user
            .as_ref()
            .map(|user| format!("{user}@"))
            .unwrap_or_default();
        format!("postgres://{user}{host}:{}/{}", self.port, self.dbname)
    }

    fn at(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

struct Inner {
    pool: Pool,
    place: Place,
    /// Whether the schema was created or checked on this server.
    schema_ready: AtomicBool,
    /// One schema check at a time in this process (the advisory lock serializes replicas).
    schema_lock: tokio::sync::Mutex<()>,
    /// The last failure to connect, cleared by the next connection that succeeds.
    last_error: Mutex<Option<StoreError>>,
    closed: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl Inner {
    fn set_last_error(&self, error: Option<StoreError>) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = error;
        }
    }

    /// A connection of the pool, with the schema created or checked.
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|error| self.pool_error(error));
        let mut client = match client {
            Ok(client) => client,
            Err(error) => {
                if error.kind() == StoreErrorKind::Unavailable {
                    self.set_last_error(Some(error.clone()));
                }
                return Err(error);
            }
        };
        self.set_last_error(None);
        if !self.schema_ready.load(Ordering::Acquire) {
            let _one = self.schema_lock.lock().await;
            if !self.schema_ready.load(Ordering::Acquire) {
                create_schema(&mut client)
                    .await
                    .map_err(|error| match error {
                        Failure::Postgres(error) => self.postgres_error(&error),
                        Failure::Store(error) => error,
                    })?;
                self.schema_ready.store(true, Ordering::Release);
            }
        }
        Ok(client)
    }

    async fn put(&self, record: EventRecord) -> Result<Put, StoreError> {
        let mut client = self.client().await?;
        let start = std::time::Instant::now();
        let put = write(&mut client, &record)
            .await
            .map_err(|error| self.schema_gone(&error))?;
        // One transaction per request: the server's own group commit shares the flushes.
        crate::meter::committed("postgres", 1, start.elapsed());
        Ok(put)
    }

    /// The error; a missing table means another server at the address (a fresh one, a
    /// restored backup without the tables): the next use creates or checks the schema.
    fn schema_gone(&self, error: &tokio_postgres::Error) -> StoreError {
        if error.code() == Some(&SqlState::UNDEFINED_TABLE) {
            self.schema_ready.store(false, Ordering::Release);
        }
        self.postgres_error(error)
    }

    async fn probe(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        let version: Option<i64> = client
            .query_one("SELECT max(version) FROM dt_schema", &[])
            .await
            .map_err(|error| self.schema_gone(&error))?
            .get(0);
        match version {
            Some(version) if version > SCHEMA_VERSION => Err(schema::too_new(version)),
            Some(_) => Ok(()),
            None => Err(StoreError::new(
                StoreErrorKind::Database,
                format!(
                    "postgres {}: dt_schema holds no version: the schema is incomplete",
                    self.place.at()
                ),
            )),
        }
    }

    async fn summary(&self) -> Result<Summary, StoreError> {
        let client = self.client().await?;
        let read = async {
            let events_by_type = client
                .query(
                    "SELECT event_type, count(*) FROM dt_event WHERE is_event \
                     GROUP BY event_type ORDER BY event_type COLLATE \"C\"",
                    &[],
                )
                .await?
                .iter()
                .map(|row| TypeCount {
                    event_type: row.get(0),
                    count: row.get::<_, i64>(1) as u64,
                })
                .collect();
            let not_events: i64 = client
                .query_one("SELECT count(*) FROM dt_event WHERE NOT is_event", &[])
                .await?
                .get(0);
            let latest = client
                .query(
                    "SELECT tenant, device, event_type, event_id, event_time FROM dt_latest \
                     ORDER BY tenant COLLATE \"C\", device COLLATE \"C\", \
                     event_type COLLATE \"C\"",
                    &[],
                )
                .await?
                .iter()
                .map(|row| Latest {
                    tenant: row.get(0),
                    device: row.get(1),
                    event_type: row.get(2),
                    event_id: row.get(3),
                    event_time: row.get(4),
                })
                .collect();
            Ok::<_, tokio_postgres::Error>(Summary {
                events_by_type,
                not_events: not_events as u64,
                latest,
            })
        };
        read.await.map_err(|error| self.postgres_error(&error))
    }

    fn pool_error(&self, error: PoolError) -> StoreError {
        match error {
            PoolError::Backend(error) => self.postgres_error(&error),
            PoolError::Timeout(kind) => StoreError::new(
                StoreErrorKind::Unavailable,
                format!(
                    "postgres {}: timed out {}",
                    self.place.at(),
                    match kind {
                        deadpool_postgres::TimeoutType::Wait =>
                            "waiting for a free connection of the pool",
                        deadpool_postgres::TimeoutType::Create => "connecting to the server",
                        deadpool_postgres::TimeoutType::Recycle =>
                            "checking a connection of the pool",
                    }
                ),
            ),
            PoolError::Closed => closed(),
            other => StoreError::new(
                StoreErrorKind::Unavailable,
                format!("postgres {}: {other}", self.place.at()),
            ),
        }
    }

    fn postgres_error(&self, error: &tokio_postgres::Error) -> StoreError {
        StoreError::new(
            kind_of(error),
            format!("postgres {}: {}", self.place.at(), chain(error)),
        )
    }
}

/// The error and its causes, `: `-separated (tokio-postgres puts the server's message and
/// the I/O error in the causes).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn kind_of(error: &tokio_postgres::Error) -> StoreErrorKind {
    if let Some(code) = error.code() {
        let class = &code.code()[..2];
        return if *code == SqlState::DISK_FULL {
            StoreErrorKind::Full
        } else if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            || *code == SqlState::INVALID_CATALOG_NAME
            || *code == SqlState::INSUFFICIENT_PRIVILEGE
        {
            StoreErrorKind::Config
        } else if (class == "08" || class == "57" && *code != SqlState::QUERY_CANCELED)
            || *code == SqlState::READ_ONLY_SQL_TRANSACTION
            || *code == SqlState::TOO_MANY_CONNECTIONS
        {
            // Connection exceptions, operator intervention (admin or crash shutdown, the
            // server starting up or shutting down; not a canceled statement), a standby,
            // no connection slot left.
            StoreErrorKind::Unavailable
        } else {
            StoreErrorKind::Database
        };
    }
    if error.is_closed() {
        return StoreErrorKind::Unavailable;
    }
    // tokio-postgres's error kinds are private; its Display names them.
    let text = error.to_string();
    if text.starts_with("authentication error") || text.starts_with("invalid configuration") {
        StoreErrorKind::Config
    } else if text.starts_with("error connecting to server")
        || text.starts_with("error communicating with the server")
        || text.starts_with("timeout waiting for server")
        || std::error::Error::source(error)
            .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some())
    {
        StoreErrorKind::Unavailable
    } else {
        StoreErrorKind::Database
    }
}

enum Failure {
    Postgres(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Postgres(error)
    }
}

/// Creates the schema when it is missing, or checks its version, in one transaction under
/// an advisory lock: replicas starting together take turns.
async fn create_schema(client: &mut deadpool_postgres::Object) -> Result<(), Failure> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await?;
    // Without DDL when the table is there: a role that may only write can serve.
    let present: bool = tx
        .query_one("SELECT to_regclass('dt_schema') IS NOT NULL", &[])
        .await?
        .get(0);
    let found: Option<i64> = if present {
        tx.query_one("SELECT max(version) FROM dt_schema", &[])
            .await?
            .get(0)
    } else {
        tx.batch_execute("CREATE TABLE dt_schema (version BIGINT NOT NULL)")
            .await?;
        None
    };
    match found {
        Some(version) if version > SCHEMA_VERSION => {
            return Err(Failure::Store(schema::too_new(version)))
        }
        Some(_) => {}
        None => {
            tx.batch_execute(CREATE).await?;
            tx.execute(
                "INSERT INTO dt_schema (version) VALUES ($1)",
                &[&SCHEMA_VERSION],
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// One record in one transaction.
async fn write(
    client: &mut deadpool_postgres::Object,
    record: &EventRecord,
) -> Result<Put, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let event = record.event.as_ref();
    let insert = tx.prepare_cached(INSERT_EVENT).await?;
    let inserted = tx
        .query_opt(
            &insert,
            &[
                &record.tenant,
                &record.key,
                &event.is_some(),
                &event.map(|event| event.event_id.as_str()),
                &event.map(|event| event.event_type.as_str()),
                &event.map(|event| event.target_name.as_str()),
                &event.and_then(|event| event.device.as_deref()),
                &event.and_then(|event| event.project.as_deref()),
                &event.map(|event| event.timestamp.as_str()),
                &event.map(|event| event.timestamp_ns),
                &&record.body[..],
                &&record.body_sha256[..],
                &record.schemes,
                &record.asymmetric_token,
                &record.asymmetric_kid,
                &record.received_at_us,
            ],
        )
        .await?;
    let Some(inserted) = inserted else {
        // A copy: the row is committed (a racing copy waited on the unique key until the
        // first transaction ended).
        let stored = tx.prepare_cached(STORED_SHA256).await?;
        let stored: Option<Vec<u8>> = tx
            .query_opt(&stored, &[&record.tenant, &record.key])
            .await?
            .map(|row| row.get(0));
        tx.commit().await?;
        return Ok(Put::Duplicate {
            same_bytes: stored.as_deref() == Some(&record.body_sha256[..]),
        });
    };
    let row: i64 = inserted.get(0);
    let Some(event) = event else {
        tx.commit().await?;
        return Ok(Put::NotAnEvent);
    };
    let upsert = tx.prepare_cached(UPSERT_LATEST).await?;
    let changed = tx
        .execute(
            &upsert,
            &[
                &record.tenant,
                &event.device_key(),
                &event.event_type,
                &event.event_id,
                &event.timestamp,
                &event.timestamp_ns,
                &row,
                &&record.body[..],
                &record.received_at_us,
            ],
        )
        .await?;
    tx.commit().await?;
    Ok(if changed == 0 {
        Put::StoredNotLatest
    } else {
        Put::Stored
    })
}

fn closed() -> StoreError {
    StoreError::new(StoreErrorKind::Closed, "the store is closed")
}

/// The store on a PostgreSQL server, shared by any number of replicas: a pool of
/// connections, one transaction per request. See the [module docs](self) for durability,
/// the pool and the errors, and the crate's [schema](crate#the-schema) (and how to read
/// new rows in order with `tx_id`).
///
/// ```no_run
/// use tower_dt_store::{DtStore, PostgresStore};
///
/// # async fn run() -> Result<(), tower_dt_store::StoreError> {
/// let store = PostgresStore::builder("postgres://dt@db.internal/dt")
///     .pool_size(32)
///     .connect()
///     .await?;
/// let service = DtStore::new(store);
/// # let _ = service;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
    ready_timeout: Duration,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("place", &self.inner.place.describe())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Options for a store at `url`: `postgres://user:password@host:port/db`, or any
    /// form tokio-postgres parses (`host=... user=...`, a Unix socket directory as host).
    pub fn builder(url: impl Into<String>) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            url: url.into(),
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            ready_timeout: DEFAULT_READY_TIMEOUT,
        }
    }

    /// Connects to `url` with the default options; see
    /// [`PostgresStoreBuilder::connect`].
    pub async fn connect(url: impl Into<String>) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// The pool's size: its maximum, and the connections it holds now.
    pub fn pool_status(&self) -> (usize, usize) {
        let status = self.inner.pool.status();
        (status.max_size, status.size)
    }
}

/// Counts a write in flight until dropped, so that `close` can wait for it.
struct InFlight(Arc<Inner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Backend for PostgresStore {
    fn put(&self, record: EventRecord) -> BoxFuture<'_, Result<Put, StoreError>> {
        Box::pin(async move {
            if self.inner.closed.load(Ordering::Acquire) {
                return Err(closed());
            }
            self.inner.in_flight.fetch_add(1, Ordering::AcqRel);
            let guard = InFlight(self.inner.clone());
            // A task of its own: the caller dropping this future at its deadline never
            // cancels the transaction half way.
            let task = tokio::spawn(async move {
                let result = guard.0.put(record).await;
                drop(guard);
                result
            });
            match task.await {
                Ok(result) => result,
                Err(error) => Err(StoreError::new(
                    StoreErrorKind::Database,
                    format!("the write's task failed: {error}"),
                )),
            }
        })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            if self.inner.closed.load(Ordering::Acquire) {
                return Err(closed());
            }
            match tokio::time::timeout(self.ready_timeout, self.inner.probe()).await {
                Ok(result) => result,
                Err(_) => {
                    let last = self
                        .inner
                        .last_error
                        .lock()
                        .ok()
                        .and_then(|last| last.clone());
                    Err(last.unwrap_or_else(|| {
                        StoreError::new(
                            StoreErrorKind::Unavailable,
                            format!(
                                "postgres {}: no answer within {:?}",
                                self.inner.place.at(),
                                self.ready_timeout
                            ),
                        )
                    }))
                }
            }
        })
    }

    fn describe(&self) -> String {
        self.inner.place.describe()
    }

    /// Counts per type and `dt_latest`, in byte order, as SQLite's (one connection of the
    /// pool, outside the writes' transactions).
    fn summary(&self) -> BoxFuture<'_, Result<Summary, StoreError>> {
        Box::pin(self.inner.summary())
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.inner.closed.store(true, Ordering::Release);
            loop {
                let idle = self.inner.idle.notified();
                if self.inner.in_flight.load(Ordering::Acquire) == 0 {
                    break;
                }
                idle.await;
            }
            self.inner.pool.close();
        })
    }
}
