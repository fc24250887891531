//! Store every verified Disruptive Technologies (DT) Data Connector event durably and
//! exactly once, then answer: DT's rules for receivers, as a tower service.
//!
//! DT asks every receiver to answer `2xx` within 10 s and only once the event is safe, to
//! de-duplicate on `event.eventId`, and to treat `event.timestamp` as the event's version,
//! since events arrive out of order. [`DtStore`] does all three behind
//! `tower_dt_signature::DtSignatureLayer`:
//!
//! ```
//! use axum::Router;
//! use tower::ServiceBuilder;
//! use tower_dt_signature::DtSignatureLayer;
//! use tower_dt_store::{DeadlineLayer, DtStore, SqliteStore};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! # rt.block_on(async {
//! let store = SqliteStore::open(dir.path().join("events.db")).await?;
//! let app: Router = Router::new()
//!     .route_service("/", DtStore::new(store))
//!     .layer(
//!         ServiceBuilder::new()
//!             // Outermost: DT's deadline counts from the head, the upload included.
//!             .layer(DeadlineLayer::default())
//!             .layer(DtSignatureLayer::new("change-me")),
//!     );
//! # let _ = app;
//! # Ok::<_, tower_dt_store::StoreError>(())
//! # }).unwrap();
//! ```
//!
//! `dt-signature serve` (the `cli/` tool) is this app, configured from the environment.
//!
//! # What a `200` means
//!
//! The event is durable in the backend (its own durability point), or it was already:
//!
//! | backend | feature | `DT_STORE` | durable when | survives a process crash | survives a power cut |
//! | --- | --- | --- | --- | --- | --- |
//! | [`SqliteStore`] | `sqlite` (default) | `sqlite:PATH` | the batch's WAL fsync (`synchronous=FULL`) | yes | yes, on a disk that honours fsync |
//! | `PostgresStore` | `postgres` | `postgres://...` | the commit (the server's `synchronous_commit`, never turned off here) | yes | yes with `synchronous_commit=on` (the default); with standbys, as the server is configured |
//! | `NatsStore` | `nats` | `nats://...`, `tls://...` | JetStream's publish acknowledgement (a quorum of the stream's replicas stored it), then the `dt_latest` update | yes (a `nats-server` crash too: the message is in the page cache) | with 3 replicas on separate machines, yes unless two fail at once; a single server loses the last `sync_interval` (2 min) unless `sync_interval: always` (see the `nats` module) |
//!
//! Every failure (the database gone, a full disk, a missed deadline, a crash before the
//! commit) is answered `503` or not at all, so DT retries; a write that commits after
//! its request got `503` makes the retry a duplicate, answered `200`.
//!
//! # Exactly once, newest last
//!
//! The rules below are the SQL stores' words; `NatsStore`
//! (feature `nats`) keeps the same ones on a JetStream stream (one message per
//! (tenant, key), refused by the server itself for as long as the stream keeps the first)
//! and a key-value bucket `dt_latest`: see its module docs.
//!
//! - One row per (tenant, `event.eventId`) in `dt_event`: the backend's unique key, so a
//!   duplicate is answered `200` and adds no row, however close together the copies
//!   arrive and on whichever replica. A copy that races the first write waits for it:
//!   `200` once it is durable, `503` if it fails. A copy whose bytes differ keeps the
//!   first row, and is logged and reported ([`StoreReport::bytes_differ`]).
//! - One row per (tenant, device, event type) in `dt_latest`: the event with the
//!   greatest `event.timestamp`, compared as instants (offsets honoured, nanoseconds).
//!   At the same instant the greater event id, compared as bytes, wins: the same events
//!   give the same row whatever their arrival order. An older event arriving later is
//!   stored in `dt_event` ([`StoreOutcome::StoredNotLatest`]) and leaves `dt_latest`.
//!   A `targetName` that names no device is keyed by the whole `targetName`.
//! - A verified body that is not a DT event (not JSON, no `eventId`, no parseable
//!   `timestamp`) is kept under `sha256:<hex of its SHA-256>` ([`StoreOutcome::NotAnEvent`]):
//!   a body DT signed is never dropped because its schema changed.
//! - The tenant is the gateway's [`TenantId`](tower_dt_signature::gateway::TenantId), or
//!   [`DEFAULT_TENANT`] (`-`) for a layer without a gateway: never NULL, which would
//!   defeat the unique key.
//!
//! Do not put `tower_dt_signature::dedup::DedupLayer` in front of the store: the store's
//! key is the de-duplication, and the guard's own mark would only duplicate it.
//!
//! # Metrics
//!
//! With the feature `metrics`, through the [`metrics`](https://docs.rs/metrics) facade:
//!
//! | metric | type | labels | counts |
//! | --- | --- | --- | --- |
//! | `dt_store_requests_total` | counter | `outcome`: [`StoreOutcome::code`] | every verified request the store answered |
//! | `dt_store_duplicates_with_other_bytes_total` | counter | - | duplicates whose bytes differ from the stored copy (the first is kept) |
//! | `dt_store_event_age_seconds` | histogram | - | every `200` to an event: the store's clock ([`DtStore::clock`]) minus `event.timestamp`; an event from the future is recorded as 0 |
//! | `dt_store_event_from_future_total` | counter | - | events whose `event.timestamp` was ahead of the store's clock (the sender's clock ahead) |
//! | `dt_store_last_accepted_timestamp_seconds` | gauge | `tenant`: the gateway's tenant, or [`DEFAULT_TENANT`] (`-`) without a gateway or with [`DtStore::tenant_label`] off | the Unix time (store's clock) of the last `200` to a verified request |
//! | `dt_store_commit_seconds` | histogram | `backend`: `sqlite`, `postgres`, `nats` | every committed write transaction, its fsync included: one per batch on SQLite (group commit), one per request on PostgreSQL; on NATS each new message's publish until JetStream's acknowledgement |
//! | `dt_store_batch_size` | histogram | `backend`: `sqlite`, `postgres`, `nats` | requests per committed transaction (always 1 on PostgreSQL and NATS) |
//!
//! [`describe_metrics`] gives each its help text and unit (call it once after installing
//! the recorder). The tenant label only takes the values of the tenants a gateway
//! resolves (an unknown tenant is refused before the store), one gauge series each; no
//! histogram is labelled by tenant.
//!
//! # The schema
//!
//! The tables are public API, versioned in `dt_schema` ([`schema::SCHEMA_VERSION`]).
//! They are created when missing, in one transaction (and, on PostgreSQL, under an
//! advisory lock), so replicas starting together do not fail; a schema newer than the
//! build is refused at start, naming both versions.
//!
//! `dt_event`, one row per (tenant, event_key):
//!
//! | column | type (SQLite / PostgreSQL) | holds |
//! | --- | --- | --- |
//! | `id` | INTEGER / BIGINT | the row's id, increasing |
//! | `tenant` | TEXT NOT NULL | the gateway's tenant, or `-` |
//! | `event_key` | TEXT NOT NULL | `event.eventId`, or `sha256:<hex>` for a body that is not an event |
//! | `is_event` | INTEGER / BOOLEAN | whether the body is a DT event |
//! | `event_id` | TEXT | `event.eventId` |
//! | `event_type` | TEXT | `event.eventType` |
//! | `target_name` | TEXT | `event.targetName` |
//! | `device` | TEXT | the device id of `targetName` (NULL when it names none) |
//! | `project` | TEXT | the project id of `targetName` |
//! | `event_time` | TEXT | `event.timestamp` as sent |
//! | `event_time_ns` | INTEGER / BIGINT | `event.timestamp` in ns since the Unix epoch |
//! | `body` | BLOB / BYTEA NOT NULL | the body, byte for byte as DT sent it |
//! | `body_sha256` | BLOB / BYTEA NOT NULL | the body's SHA-256 |
//! | `schemes` | TEXT NOT NULL | the verified schemes: `hmac`, `asymmetric`, `hmac,asymmetric` |
//! | `asymmetric_token` | TEXT | the `DT-Asymmetric-Signature` header as received, when verified |
//! | `asymmetric_kid` | TEXT | that token's `kid` |
//! | `received_at_us` | INTEGER / BIGINT NOT NULL | when the store received it, µs since the Unix epoch |
//! | `tx_id` | - / XID8 NOT NULL | PostgreSQL only: the inserting transaction (reading in order, below) |
//!
//! `dt_latest`, one row per (tenant, device, event_type): `event_id`, `event_time`,
//! `event_time_ns`, `event_row` (the `dt_event.id` it came from, which may have been
//! pruned), `body` (a copy) and `received_at_us`. `device` is the device id, or the
//! whole `targetName`.
//!
//! ## Reading new rows in order
//!
//! - **SQLite** has one writer at a time, and ids are given at insert inside it
//!   (`AUTOINCREMENT`, never reused): a reader that remembers the last `id` it handled
//!   and asks for `id > last ORDER BY id` skips nothing.
//! - **PostgreSQL** takes a sequence value at insert, not at commit: one replica can
//!   commit id 11 before another commits id 10, and a reader of `id > last` would skip
//!   10. Each row therefore carries `tx_id`, its transaction's id. A reader reads only
//!   rows of transactions older than every transaction still running, in `(tx_id, id)`
//!   order, and remembers the last pair:
//!
//!   ```sql
//!   SELECT * FROM dt_event
//!   WHERE (tx_id, id) > ($last_tx_id, $last_id)
//!     AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
//!   ORDER BY tx_id, id LIMIT 500;
//!   ```
//!
//! # Evidence: DT's signature, kept
//!
//! `asymmetric_token` is DT's ES256 signature over `body` (its `checksum_sha256` claim),
//! kept only when the layer verified it. To check a row again later, verify `body` with
//! `tower_dt_signature::Verifier::asymmetric` and the token as its
//! `DT-Asymmetric-Signature` header, with two settings:
//! - its clock set to the row's `received_at_us` (`Verifier::clock`): the token's 5-minute
//!   `exp` says when DT's request was fresh, not how long the proof holds;
//! - DT's key for `asymmetric_kid`, from a key set you kept
//!   (`keys::DtKeys::from_jwks_file`): DT rotates keys out of its published set, so save
//!   the JWK set (the `jwks_uri` of DT's discovery document; the keys are public) whenever
//!   a new `kid` appears in the store.
//!
//! # Retention
//!
//! Rows are kept until you prune them. [`SqliteStoreBuilder::retention`] prunes
//! `dt_event` rows received longer ago than the retention, hourly, and gives the pages
//! back (`auto_vacuum=INCREMENTAL`); it refuses less than [`schema::MIN_RETENTION`]
//! (24 h), since DT retries for 12 h and the row is the event's de-duplication key.
//! `dt_latest` is never pruned. On PostgreSQL, prune with
//! `DELETE FROM dt_event WHERE received_at_us < ...` on the same rule; autovacuum
//! reclaims the space. The SQLite file is created with mode `0600`.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

mod backend;
mod deadline;
mod error;
mod meter;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub mod nats;
mod outcome;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
mod record;
pub mod schema;
mod service;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
mod summary;

pub use backend::{Backend, BoxFuture, Put};
pub use deadline::{AnswerBy, Deadline, DeadlineFuture, DeadlineLayer, DEFAULT_DEADLINE};
pub use error::{StoreError, StoreErrorKind};
pub use meter::describe_metrics;
#[cfg(feature = "nats")]
pub use nats::{NatsStorage, NatsStore, NatsStoreBuilder};
pub use outcome::{StoreOutcome, StoreReport};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresStore, PostgresStoreBuilder};
pub use record::{EventFields, EventRecord, BODY_KEY_PREFIX, DEFAULT_TENANT};
pub use service::DtStore;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteStore, SqliteStoreBuilder};
pub use summary::{Latest, Summary, TypeCount};
