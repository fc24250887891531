//! The duplicate and replay guard: each DT event handled once, on one replica or many.
//!
//! DT delivers at least once, for up to 12 hours: after a timeout or a lost answer it
//! sends the same event again, often seconds later, and tells receivers to de-duplicate
//! on `event.eventId`. A captured request can also be replayed while its token lives
//! (1 h for `X-Dt-Signature`, 300 s for DT's ES256 `DT-Asymmetric-Signature`). [`DedupLayer`] does that de-duplication in front of your handler.
//!
//! It goes *inside* [`DtSignatureLayer`](crate::DtSignatureLayer), reads `event.eventId`
//! from the verified body (nothing else is decoded; the same bytes are forwarded), and
//! keeps a key per event in a [`DedupStore`]: a [`MemoryStore`] for one replica (the
//! default), `RedisStore` (feature `redis`) for several.
//!
//! **A handler that only keeps the event wants a store, not this guard.** The guard marks
//! an event done once the handler answered 2xx. A handler that answers 2xx before the
//! event is durable (it queues it in memory, or writes without waiting for the commit)
//! can crash after the guard marked the event done: DT's retry is then answered `200
//! done`, and the event is lost. Keep events with the `tower-dt-store` crate (its
//! `DtStore`, or `dt-signature serve`), which answers only after its commit and whose
//! unique key is the de-duplication; put no `DedupLayer` in front of it. The guard is for
//! handlers that *act* on an event (call an API, send a message) and answer after acting.
//!
//! ```
//! use axum::{routing::post, Router};
//! use tower_dt_signature::dedup::{DedupLayer, MemoryStore};
//! use tower_dt_signature::DtSignatureLayer;
//!
//! let guard = DedupLayer::with_store(MemoryStore::new(50_000));
//! let stats = guard.stats(); // duplicates(), in_flight(), forwarded(), store_errors()
//! let app: Router = Router::new()
//!     .route("/", post(|| async { "ok" }))
//!     .layer(guard)
//!     .layer(DtSignatureLayer::new("connector secret"));
//! # let _ = stats;
//! ```
//!
//! # What it answers
//!
//! | The event is | The guard | Status and body (`text/plain`) | Marked |
//! | --- | --- | --- | --- |
//! | new (or its key expired) | reserves it for the in-flight TTL (30 s) and forwards | the inner service's | - |
//! | ... answered 2xx | marks it done for the done TTL (13 h) | the inner service's | - |
//! | ... answered non-2xx, an error, or dropped | releases it, so DT's retry is handled | the inner service's | - |
//! | done | answers without forwarding, counts it | `200 done` | `x-dt-duplicate: done`, [`Duplicate::Done`] |
//! | in flight elsewhere | answers without forwarding, counts it | `409 in-flight` | `x-dt-duplicate: in-flight`, [`Duplicate::InFlight`] |
//! | unknown: the store failed, and the guard fails open (the default) | forwards unguarded and warns | the inner service's | - |
//! | unknown: the store failed, and the guard [fails closed](DedupLayer::fail_closed) | refuses | `503 dedup store unavailable` | [`DedupRefusal::StoreUnavailable`] |
//! | new, but the store is full of reservations in flight | refuses: a reservation in flight is never evicted | `503 dedup store full` | `Retry-After: 5`, [`DedupRefusal::StoreFull`] |
//! | a body without `event.eventId` | refuses | `400 missing event id` | [`DedupRefusal::MissingEventId`] |
//! | a body that cannot be read | refuses | `400 failed to read request body` | [`DedupRefusal::BodyRead`] |
//! | refused by a report-only `DtSignatureLayer` (`Verdict::Refused`) | forwards it unguarded, with its `Verdict`, and marks nothing | the inner service's | - |
//! | a request without [`DtClaims`](crate::DtClaims) (nor a `Verdict`) | refuses: the body is not verified | `500 dedup guard used without DtSignatureLayer` | [`DedupRefusal::Unverified`] |
//!
//! Every answer the guard gives itself is `text/plain` and carries the marked extension.
//! The 409 makes DT send the event again later, when the first request has finished: by
//! then it is done (and absorbed) or released (and handled). Duplicates are logged with
//! `tracing` at debug level with their event id; store failures at warn level.
//!
//! The reservation is committed or released before the inner service's answer is
//! returned, so once a 2xx has been sent a duplicate is absorbed on every replica. If
//! that commit fails the answer is still the inner service's; `RedisStore` makes the
//! commit again in the background until Redis is back (a store that cannot leaves the
//! reservation to run out after the in-flight TTL). A request dropped while the inner
//! service runs releases its reservation (see [`DedupStore::release_detached`]), or
//! commits it if the inner service already answered 2xx
//! ([`DedupStore::commit_detached`]); one dropped while the store
//! is still reserving may leave a reservation that expires after the in-flight TTL.
//!
//! Set the in-flight TTL longer than your handler can take: past it a duplicate is
//! handled even if the first request is still running.

use std::time::Duration;

mod event_id;
mod future;
mod layer;
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod response;
mod service;
mod stats;
mod store;

pub use future::ResponseFuture;
pub use layer::{DedupLayer, DEFAULT_DONE_TTL, DEFAULT_IN_FLIGHT_TTL};
pub use memory::{MemoryStore, DEFAULT_CAPACITY};
#[cfg(feature = "redis")]
pub use redis::{RedisStore, DEFAULT_PREFIX, DEFAULT_TIMEOUT};
pub use response::{DedupRefusal, Duplicate, X_DT_DUPLICATE};
pub use service::Dedup;
pub use stats::DedupStats;
pub use store::{BoxStoreFuture, DedupStore, ReservationToken, Reserve, StoreError};

/// The guard's settings, shared by the layer, its services and their futures; set through
/// [`DedupLayer`]'s setters.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// [`DedupLayer::in_flight_ttl`].
    pub(crate) in_flight_ttl: Duration,
    /// [`DedupLayer::done_ttl`].
    pub(crate) done_ttl: Duration,
    /// [`DedupLayer::fail_closed`].
    pub(crate) fail_closed: bool,
}
