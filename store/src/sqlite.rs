//! [`SqliteStore`]: the embedded store, one writer thread, group commit.
//!
//! Every write goes through one thread that owns the connection. It takes whatever
//! requests are queued (up to [`max_batch`](SqliteStoreBuilder::max_batch)) and writes
//! them in one transaction: one WAL fsync for the batch, not one per event. The queue is
//! bounded ([`queue`](SqliteStoreBuilder::queue)): a full queue makes a request wait,
//! within its deadline, and never grows memory.
//!
//! Durability: WAL mode with `synchronous=FULL`, so a commit returns only after the WAL
//! is fsynced. An answered event survives a process crash (SIGKILL) and a power cut
//! (given a disk that honours fsync); an event whose batch had not committed was never
//! answered `200`, and DT retries it.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use crate::backend::{Backend, BoxFuture, Put};
use crate::error::{StoreError, StoreErrorKind};
use crate::record::EventRecord;
use crate::schema::{self, MIN_RETENTION, SCHEMA_VERSION};
use crate::summary::{Latest, Summary, TypeCount};

/// The default bound of the writer's queue (requests waiting for a batch).
pub const DEFAULT_QUEUE: usize = 4096;
/// The default largest batch: requests written in one transaction.
pub const DEFAULT_MAX_BATCH: usize = 256;

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS dt_event (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant         TEXT    NOT NULL,
    event_key      TEXT    NOT NULL,
    is_event       INTEGER NOT NULL,
    event_id       TEXT,
    event_type     TEXT,
    target_name    TEXT,
    device         TEXT,
    project        TEXT,
    event_time     TEXT,
    event_time_ns  INTEGER,
    body           BLOB    NOT NULL,
    body_sha256    BLOB    NOT NULL,
    schemes        TEXT    NOT NULL,
    asymmetric_token TEXT,
    asymmetric_kid TEXT,
    received_at_us INTEGER NOT NULL,
    UNIQUE (tenant, event_key)
);
CREATE INDEX IF NOT EXISTS dt_event_received ON dt_event (received_at_us);
CREATE TABLE IF NOT EXISTS dt_latest (
    tenant         TEXT    NOT NULL,
    device         TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    event_id       TEXT    NOT NULL,
    event_time     TEXT    NOT NULL,
    event_time_ns  INTEGER NOT NULL,
    event_row      INTEGER NOT NULL,
    body           BLOB    NOT NULL,
    received_at_us INTEGER NOT NULL,
    PRIMARY KEY (tenant, device, event_type)
);
";

const INSERT_EVENT: &str = "
INSERT INTO dt_event (tenant, event_key, is_event, event_id, event_type, target_name, device,
    project, event_time, event_time_ns, body, body_sha256, schemes, asymmetric_token,
    asymmetric_kid, received_at_us)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
ON CONFLICT (tenant, event_key) DO NOTHING";

// Newer by the event's timestamp; at the same instant, the greater event id (compared
// as bytes) wins, so that the same set of events gives the same row in any arrival order.
const UPSERT_LATEST: &str = "
INSERT INTO dt_latest (tenant, device, event_type, event_id, event_time, event_time_ns,
    event_row, body, received_at_us)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
ON CONFLICT (tenant, device, event_type) DO UPDATE SET
    event_id = excluded.event_id, event_time = excluded.event_time,
    event_time_ns = excluded.event_time_ns, event_row = excluded.event_row,
    body = excluded.body, received_at_us = excluded.received_at_us
WHERE excluded.event_time_ns > dt_latest.event_time_ns
   OR (excluded.event_time_ns = dt_latest.event_time_ns AND excluded.event_id > dt_latest.event_id)";

enum Job {
    Put {
        record: Box<EventRecord>,
        reply: oneshot::Sender<Result<Put, StoreError>>,
    },
    /// Answered once every job queued before it is written: readiness and shutdown.
    Ping(oneshot::Sender<Result<(), StoreError>>),
    /// Delete the rows of `dt_event` received before this (µs since the epoch).
    Prune(i64, oneshot::Sender<Result<usize, StoreError>>),
}

/// The options of a [`SqliteStore`]: made by [`SqliteStore::builder`].
#[derive(Clone, Debug)]
pub struct SqliteStoreBuilder {
    path: PathBuf,
    queue: usize,
    max_batch: usize,
    max_size: Option<u64>,
    retention: Option<Duration>,
}

impl SqliteStoreBuilder {
    /// The bound of the writer's queue. Default [`DEFAULT_QUEUE`].
    pub fn queue(mut self, requests: usize) -> Self {
        self.queue = requests.max(1);
        self
    }

    /// The largest batch written in one transaction. Default [`DEFAULT_MAX_BATCH`].
    pub fn max_batch(mut self, requests: usize) -> Self {
        self.max_batch = requests.max(1);
        self
    }

    /// A cap on the database file's size, in bytes (SQLite's `max_page_count`): a write
    /// that would grow it past the cap fails as a full disk does (`503`, nothing half
    /// written). Default: none, the disk is the limit.
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = Some(bytes);
        self
    }

    /// Delete rows of `dt_event` received longer ago than `retention`, checked hourly,
    /// and give the freed pages back to the file system (`auto_vacuum=INCREMENTAL`).
    /// `dt_latest` is never pruned. Default: keep every row. At least
    /// [`MIN_RETENTION`]; [`open`](Self::open) refuses
    /// less with [`StoreErrorKind::Config`].
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Open (or create, mode `0600`) the database and start its writer thread. Fails
    /// with [`StoreErrorKind::Config`] when the file cannot be created or is not a
    /// database, and [`StoreErrorKind::SchemaTooNew`] for a newer schema.
    pub async fn open(self) -> Result<SqliteStore, StoreError> {
        if let Some(retention) = self.retention {
            if retention < MIN_RETENTION {
                return Err(short_retention(retention));
            }
        }
        let (sender, receiver) = mpsc::channel(self.queue);
        let (opened, ready) = oneshot::channel();
        let shared = Arc::new(Shared {
            last_error: Mutex::new(None),
        });
        let writer_shared = shared.clone();
        let options = self.clone();
        std::thread::Builder::new()
            .name("dt-store-sqlite".into())
            .spawn(move || match Writer::open(&options) {
                Ok(writer) => {
                    let _ = opened.send(Ok(()));
                    writer.run(receiver, &writer_shared);
                }
                Err(error) => {
                    let _ = opened.send(Err(error));
                }
            })
            .map_err(|error| {
                StoreError::new(
                    StoreErrorKind::Config,
                    format!("cannot start the writer thread: {error}"),
                )
            })?;
        ready.await.map_err(|_| closed())??;
        Ok(SqliteStore {
            sender,
            path: self.path,
            shared,
            closed: Arc::new(AtomicBool::new(false)),
        })
    }
}

struct Shared {
    /// The last batch's error, cleared by the next batch that commits.
    last_error: Mutex<Option<StoreError>>,
}

/// The embedded store: a SQLite database file in WAL mode with `synchronous=FULL`,
/// written by one thread in batches (group commit). See the [module docs](self) and the
/// crate's [schema](crate#the-schema).
///
/// Several processes may serve from one file on one machine (a local file system, not a
/// network one): SQLite's locks serialize their batches, and the unique key of
/// `dt_event` keeps one row per event across them.
#[derive(Clone)]
pub struct SqliteStore {
    sender: mpsc::Sender<Job>,
    path: PathBuf,
    shared: Arc<Shared>,
    closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Options for a store at `path`.
    pub fn builder(path: impl Into<PathBuf>) -> SqliteStoreBuilder {
        SqliteStoreBuilder {
            path: path.into(),
            queue: DEFAULT_QUEUE,
            max_batch: DEFAULT_MAX_BATCH,
            max_size: None,
            retention: None,
        }
    }

    /// Open (or create) the store at `path` with the default options.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        Self::builder(path).open().await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the database at `path` holds, read through a read-only connection of its
    /// own (WAL lets it read beside a running writer). It never creates the file: a path
    /// with no database is [`StoreErrorKind::Config`].
    pub async fn read_summary(path: impl Into<PathBuf>) -> Result<Summary, StoreError> {
        let path = path.into();
        tokio::task::spawn_blocking(move || read_summary(&path))
            .await
            .map_err(|error| StoreError::new(StoreErrorKind::Database, error.to_string()))?
    }

    /// Delete the rows of `dt_event` received more than `older_than` ago, now, and give
    /// their pages back to the file system; returns how many were deleted. `dt_latest` is
    /// kept. Refuses less than [`MIN_RETENTION`] with
    /// [`StoreErrorKind::Config`]: a pruned row no longer de-duplicates DT's retries.
    pub async fn prune(&self, older_than: Duration) -> Result<usize, StoreError> {
        if older_than < MIN_RETENTION {
            return Err(short_retention(older_than));
        }
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Job::Prune(cutoff_us(older_than), reply))
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Job::Ping(reply))
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

impl Backend for SqliteStore {
    fn put(&self, record: EventRecord) -> BoxFuture<'_, Result<Put, StoreError>> {
        Box::pin(async move {
            if self.closed.load(Ordering::Acquire) {
                return Err(closed());
            }
            let (reply, answer) = oneshot::channel();
            // Waits while the queue is full: the caller's deadline bounds the wait.
            self.sender
                .send(Job::Put {
                    record: Box::new(record),
                    reply,
                })
                .await
                .map_err(|_| closed())?;
            answer.await.map_err(|_| closed())?
        })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            if self.closed.load(Ordering::Acquire) {
                return Err(closed());
            }
            self.ping().await?;
            match self.shared.last_error.lock() {
                Ok(last) => last.clone().map_or(Ok(()), Err),
                Err(_) => Ok(()),
            }
        })
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn summary(&self) -> BoxFuture<'_, Result<Summary, StoreError>> {
        Box::pin(Self::read_summary(self.path.clone()))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.closed.store(true, Ordering::Release);
            // Everything queued before the ping is written (or failed) once it answers.
            let _ = self.ping().await;
        })
    }
}

fn short_retention(retention: Duration) -> StoreError {
    StoreError::new(
        StoreErrorKind::Config,
        format!(
            "retention {retention:?} is shorter than {MIN_RETENTION:?}: DT retries for 12 hours \
             and a stored row is the event's de-duplication key"
        ),
    )
}

/// Now minus `age`, in µs since the Unix epoch.
fn cutoff_us(age: Duration) -> i64 {
    SystemTime::now()
        .checked_sub(age)
        .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| {
            i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
        })
}

fn closed() -> StoreError {
    StoreError::new(StoreErrorKind::Closed, "the store is closed")
}

/// The identity of the open file: a file moved away, deleted or replaced is no longer
/// the one the store writes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

fn file_id(path: &Path) -> std::io::Result<FileId> {
    let metadata = std::fs::metadata(path)?;
    Ok(FileId {
        dev: metadata.dev(),
        ino: metadata.ino(),
    })
}

struct Writer {
    options: SqliteStoreBuilder,
    conn: Option<Connection>,
    file: Option<FileId>,
    last_prune: Instant,
}

impl Writer {
    fn open(options: &SqliteStoreBuilder) -> Result<Self, StoreError> {
        let conn = open_connection(options, true)?;
        Ok(Self {
            file: Some(file_id(&options.path).map_err(|error| config(&options.path, error))?),
            conn: Some(conn),
            options: options.clone(),
            last_prune: Instant::now(),
        })
    }

    fn run(mut self, mut receiver: mpsc::Receiver<Job>, shared: &Shared) {
        let mut batch = Vec::with_capacity(self.options.max_batch);
        let mut pings = Vec::new();
        while let Some(job) = receiver.blocking_recv() {
            let mut next = Some(job);
            while let Some(job) = next.take() {
                match job {
                    Job::Put { record, reply } => batch.push((*record, reply)),
                    Job::Ping(reply) => pings.push(reply),
                    Job::Prune(cutoff, reply) => {
                        let result = self
                            .check_file()
                            .and_then(|()| prune(self.conn()?, cutoff).map_err(from_sqlite));
                        let _ = reply.send(result);
                    }
                }
                if batch.len() < self.options.max_batch {
                    next = receiver.try_recv().ok();
                }
            }
            let result = self.check_file().and_then(|()| {
                if batch.is_empty() {
                    self.probe()
                } else {
                    self.write(&batch).map(|puts| {
                        for ((_, reply), put) in batch.drain(..).zip(puts) {
                            let _ = reply.send(Ok(put));
                        }
                    })
                }
            });
            if let Err(error) = &result {
                if !batch.is_empty() {
                    tracing::warn!(%error, events = batch.len(), "sqlite batch failed: nothing of it was written");
                }
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(error.clone()));
                }
            }
            if let Ok(mut last) = shared.last_error.lock() {
                *last = result.as_ref().err().cloned();
            }
            for ping in pings.drain(..) {
                let _ = ping.send(result.clone());
            }
            self.prune();
        }
    }

    /// Fails when the file at the path is gone or is another file (reopening it when it
    /// is back).
    fn check_file(&mut self) -> Result<(), StoreError> {
        let path = &self.options.path;
        match file_id(path) {
            Ok(id) if Some(id) == self.file && self.conn.is_some() => Ok(()),
            Ok(id) => {
                // Back, or replaced by another database: open what is at the path now.
                self.conn = None;
                let conn = open_connection(&self.options, false)?;
                self.conn = Some(conn);
                self.file = Some(id);
                tracing::info!(path = %path.display(), "sqlite store reopened");
                Ok(())
            }
            Err(error) => {
                self.conn = None;
                Err(StoreError::new(
                    StoreErrorKind::Unavailable,
                    format!("the database file {} is gone: {error}", path.display()),
                ))
            }
        }
    }

    fn conn(&mut self) -> Result<&mut Connection, StoreError> {
        self.conn
            .as_mut()
            .ok_or_else(|| StoreError::new(StoreErrorKind::Unavailable, "the database is not open"))
    }

    fn probe(&mut self) -> Result<(), StoreError> {
        self.conn()?
            .query_row("SELECT count(*) FROM dt_schema", [], |_| Ok(()))
            .map_err(from_sqlite)
    }

    fn write(
        &mut self,
        batch: &[(EventRecord, oneshot::Sender<Result<Put, StoreError>>)],
    ) -> Result<Vec<Put>, StoreError> {
        let conn = self.conn()?;
        let start = std::time::Instant::now();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(from_sqlite)?;
        let mut puts = Vec::with_capacity(batch.len());
        for (record, _) in batch {
            puts.push(write_one(&tx, record).map_err(from_sqlite)?);
        }
        tx.commit().map_err(from_sqlite)?;
        // The group commit: one transaction and one WAL fsync for the whole batch.
        crate::meter::committed("sqlite", batch.len(), start.elapsed());
        Ok(puts)
    }

    fn prune(&mut self) {
        let Some(retention) = self.options.retention else {
            return;
        };
        if self.last_prune.elapsed() < Duration::from_secs(3600) {
            return;
        }
        self.last_prune = Instant::now();
        let cutoff = cutoff_us(retention);
        if let Ok(conn) = self.conn() {
            match prune(conn, cutoff) {
                Ok(rows) if rows > 0 => tracing::info!(rows, "pruned dt_event"),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(error = %from_sqlite(error), "pruning dt_event failed")
                }
            }
        }
    }
}

fn read_summary(path: &Path) -> Result<Summary, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|error| config(path, error))?;
    let read = || -> rusqlite::Result<Summary> {
        let events_by_type = conn
            .prepare(
                "SELECT event_type, count(*) FROM dt_event WHERE is_event \
                 GROUP BY event_type ORDER BY event_type",
            )?
            .query_map([], |row| {
                Ok(TypeCount {
                    event_type: row.get(0)?,
                    count: row.get::<_, i64>(1)? as u64,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let not_events: i64 = conn.query_row(
            "SELECT count(*) FROM dt_event WHERE NOT is_event",
            [],
            |row| row.get(0),
        )?;
        let latest = conn
            .prepare(
                "SELECT tenant, device, event_type, event_id, event_time FROM dt_latest \
                 ORDER BY tenant, device, event_type",
            )?
            .query_map([], |row| {
                Ok(Latest {
                    tenant: row.get(0)?,
                    device: row.get(1)?,
                    event_type: row.get(2)?,
                    event_id: row.get(3)?,
                    event_time: row.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Summary {
            events_by_type,
            not_events: not_events as u64,
            latest,
        })
    };
    read().map_err(|error| config(path, from_sqlite(error)))
}

/// Deletes the rows of `dt_event` received before `cutoff_us`, then frees their pages.
pub(crate) fn prune(conn: &Connection, cutoff_us: i64) -> rusqlite::Result<usize> {
    let rows = conn.execute(
        "DELETE FROM dt_event WHERE received_at_us < ?1",
        params![cutoff_us],
    )?;
    conn.execute_batch("PRAGMA incremental_vacuum")?;
    Ok(rows)
}

fn write_one(tx: &rusqlite::Transaction<'_>, record: &EventRecord) -> rusqlite::Result<Put> {
    let event = record.event.as_ref();
    let inserted = tx.prepare_cached(INSERT_EVENT)?.execute(params![
        record.tenant,
        record.key,
        event.is_some(),
        event.map(|event| &event.event_id),
        event.map(|event| &event.event_type),
        event.map(|event| &event.target_name),
        event.and_then(|event| event.device.as_ref()),
        event.and_then(|event| event.project.as_ref()),
        event.map(|event| &event.timestamp),
        event.map(|event| event.timestamp_ns),
        &record.body[..],
        &record.body_sha256[..],
        record.schemes,
        record.asymmetric_token,
        record.asymmetric_kid,
        record.received_at_us,
    ])?;
    if inserted == 0 {
        let stored: Option<Vec<u8>> = tx
            .prepare_cached(
                "SELECT body_sha256 FROM dt_event WHERE tenant = ?1 AND event_key = ?2",
            )?
            .query_row(params![record.tenant, record.key], |row| row.get(0))
            .optional()?;
        return Ok(Put::Duplicate {
            same_bytes: stored.as_deref() == Some(&record.body_sha256[..]),
        });
    }
    let Some(event) = event else {
        return Ok(Put::NotAnEvent);
    };
    let row = tx.last_insert_rowid();
    let changed = tx.prepare_cached(UPSERT_LATEST)?.execute(params![
        record.tenant,
        event.device_key(),
        event.event_type,
        event.event_id,
        event.timestamp,
        event.timestamp_ns,
        row,
        &record.body[..],
        record.received_at_us,
    ])?;
    Ok(if changed == 0 {
        Put::StoredNotLatest
    } else {
        Put::Stored
    })
}

fn config(path: &Path, error: impl std::fmt::Display) -> StoreError {
    StoreError::new(
        StoreErrorKind::Config,
        format!("cannot open the database {}: {error}", path.display()),
    )
}

/// Opens the file (creating it with mode 0600 when `create`), sets WAL and
/// `synchronous=FULL`, and creates or checks the schema in one transaction.
fn open_connection(options: &SqliteStoreBuilder, create: bool) -> Result<Connection, StoreError> {
    let path = &options.path;
    let kind_for = |error: &dyn std::fmt::Display| {
        if create {
            config(path, error)
        } else {
            StoreError::new(
                StoreErrorKind::Unavailable,
                format!("cannot open the database {}: {error}", path.display()),
            )
        }
    };
    if create {
        // Created here, not by SQLite, so that it is 0600 from its first byte; SQLite
        // gives its -wal and -shm files the database's mode.
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|error| kind_for(&error))?;
    }
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|error| kind_for(&error))?;
    let setup = || -> rusqlite::Result<()> {
        conn.busy_timeout(Duration::from_secs(5))?;
        // Before the first table: a new file frees pruned pages incrementally.
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "journal_mode is {mode}, not wal"
            )));
        }
        conn.execute_batch("PRAGMA synchronous = FULL")?;
        if let Some(bytes) = options.max_size {
            let page: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
            let pages = (bytes as i64 / page.max(1)).max(1);
            conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
        }
        Ok(())
    };
    setup().map_err(|error| kind_for(&from_sqlite(error)))?;
    create_schema(&mut conn).map_err(|error| match error.kind() {
        StoreErrorKind::SchemaTooNew => error,
        _ => kind_for(&error),
    })?;
    Ok(conn)
}

fn create_schema(conn: &mut Connection) -> Result<(), StoreError> {
    // One IMMEDIATE transaction: two processes creating the tables at once take turns.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(from_sqlite)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS dt_schema (version INTEGER NOT NULL)")
        .map_err(from_sqlite)?;
    let found: Option<i64> = tx
        .query_row("SELECT max(version) FROM dt_schema", [], |row| row.get(0))
        .map_err(from_sqlite)?;
    match found {
        Some(version) if version > SCHEMA_VERSION => return Err(schema::too_new(version)),
        Some(_) => {}
        None => {
            tx.execute_batch(CREATE).map_err(from_sqlite)?;
            tx.execute(
                "INSERT INTO dt_schema (version) VALUES (?1)",
                params![SCHEMA_VERSION],
            )
            .map_err(from_sqlite)?;
        }
    }
    tx.commit().map_err(from_sqlite)
}

fn from_sqlite(error: rusqlite::Error) -> StoreError {
    let kind = match error.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreErrorKind::Full,
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreErrorKind::Busy,
        Some(
            ErrorCode::CannotOpen
            | ErrorCode::ReadOnly
            | ErrorCode::SystemIoFailure
            | ErrorCode::PermissionDenied
            | ErrorCode::NotADatabase,
        ) => StoreErrorKind::Unavailable,
        _ => StoreErrorKind::Database,
    };
    StoreError::new(kind, format!("sqlite: {error}"))
}
