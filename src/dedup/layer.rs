//! [`DedupLayer`]: the guard's configuration, its setters and the `Layer` impl.

use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::memory::MemoryStore;
use super::service::Dedup;
use super::stats::DedupStats;
use super::store::DedupStore;
use super::Config;

/// The default [`in_flight_ttl`](DedupLayer::in_flight_ttl): 30 seconds, three times DT's
/// 10 s answer timeout.
pub const DEFAULT_IN_FLIGHT_TTL: Duration = Duration::from_secs(30);

/// The default [`done_ttl`](DedupLayer::done_ttl): 13 hours, longer than DT's 12 hour
/// retry window.
pub const DEFAULT_DONE_TTL: Duration = Duration::from_secs(13 * 3600);

/// The shortest TTL the setters accept.
const MIN_TTL: Duration = Duration::from_secs(1);
/// The longest in-flight TTL the setter accepts.
const MAX_IN_FLIGHT_TTL: Duration = Duration::from_secs(3600);
/// The longest done TTL the setter accepts.
const MAX_DONE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A tower [`Layer`] that lets each DT event through once: the duplicate and replay guard.
///
/// Put it *inside* [`DtSignatureLayer`](crate::DtSignatureLayer) (in axum, `.layer` it
/// before `DtSignatureLayer`): it reads `event.eventId` from the verified body, so it
/// takes a `Request<DtBody>`, and refuses with `500` a request without
/// [`DtClaims`](crate::DtClaims). See the [module docs](super) for what it answers.
///
/// ```
/// use axum::{routing::post, Router};
/// use tower_dt_signature::dedup::DedupLayer;
/// use tower_dt_signature::DtSignatureLayer;
///
/// let app: Router = Router::new()
///     .route("/", post(|| async { "ok" }))
///     .layer(DedupLayer::new()) // inner: sees verified requests only
///     .layer(DtSignatureLayer::new("connector secret"));
/// ```
#[derive(Debug, Clone)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct DedupLayer<St = MemoryStore> {
    store: St,
    config: Arc<Config>,
    stats: DedupStats,
}

impl DedupLayer {
    /// A guard with its own [`MemoryStore`] of the default capacity: for a single replica.
    pub fn new() -> Self {
        Self::with_store(MemoryStore::default())
    }
}

impl Default for DedupLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<St: DedupStore> DedupLayer<St> {
    /// A guard that keeps its keys in `store`: a [`MemoryStore`] you configured, or a
    /// store shared by every replica (`RedisStore`, feature `redis`).
    pub fn with_store(store: St) -> Self {
        Self {
            stats: DedupStats::for_store(&store),
            store,
            config: Arc::new(Config {
                in_flight_ttl: DEFAULT_IN_FLIGHT_TTL,
                done_ttl: DEFAULT_DONE_TTL,
                fail_closed: false,
            }),
        }
    }
}

impl<St> DedupLayer<St> {
    /// How long an event stays reserved while the inner service handles it. Past it, a
    /// duplicate is forwarded even if the first request is still running: set it longer
    /// than your handler's timeout. A reservation that a dropped request could not
    /// release also ends then.
    ///
    /// Default: [`DEFAULT_IN_FLIGHT_TTL`] (30 s).
    ///
    /// Clamped to 1 s ..= 1 h: zero would turn the guard off, and a huge value would
    /// overflow the store's clock.
    pub fn in_flight_ttl(mut self, ttl: Duration) -> Self {
        Arc::make_mut(&mut self.config).in_flight_ttl = ttl.clamp(MIN_TTL, MAX_IN_FLIGHT_TTL);
        self
    }

    /// How long an event the inner service answered with a 2xx is remembered (and its
    /// duplicates absorbed).
    ///
    /// Default: [`DEFAULT_DONE_TTL`] (13 h, longer than DT's 12 h of retries).
    ///
    /// Clamped to 1 s ..= 30 days: zero would turn the guard off, and a huge value would
    /// overflow the store's clock.
    pub fn done_ttl(mut self, ttl: Duration) -> Self {
        Arc::make_mut(&mut self.config).done_ttl = ttl.clamp(MIN_TTL, MAX_DONE_TTL);
        self
    }

    /// What to do when the store fails to reserve: `false` (fail open) forwards the
    /// request unguarded and logs a warning, so an outage of the store does not stop
    /// delivery but may let a duplicate through; `true` (fail closed) answers `503`
    /// without forwarding, so DT sends the event again later.
    ///
    /// Default: `false` (fail open).
    pub fn fail_closed(mut self, fail_closed: bool) -> Self {
        Arc::make_mut(&mut self.config).fail_closed = fail_closed;
        self
    }

    /// The counters of this layer and every service it makes (shared by clones).
    pub fn stats(&self) -> DedupStats {
        self.stats.clone()
    }

    /// The store.
    pub fn store(&self) -> &St {
        &self.store
    }
}

impl<S, St: Clone> Layer<S> for DedupLayer<St> {
    type Service = Dedup<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        Dedup::new(
            inner,
            self.store.clone(),
            self.config.clone(),
            self.stats.clone(),
        )
    }
}
