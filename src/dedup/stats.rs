//! [`DedupStats`]: what the guard did, counted.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counters shared by a [`DedupLayer`](super::DedupLayer), every service it made and
/// every clone of those; read them with [`DedupLayer::stats`](super::DedupLayer::stats).
///
/// Counts are totals since the layer was made (relaxed atomics: exact once the
/// requests counted have finished).
#[derive(Clone, Default)]
pub struct DedupStats {
    counters: Arc<Counters>,
    /// The store's eviction count.
    evictions: Option<Arc<dyn Fn() -> u64 + Send + Sync>>,
}

#[derive(Default)]
struct Counters {
    forwarded: AtomicU64,
    duplicates: AtomicU64,
    in_flight: AtomicU64,
    store_errors: AtomicU64,
    full: AtomicU64,
}

impl DedupStats {
    /// Counters that also report the evictions of `store`.
    pub(crate) fn for_store<St: super::DedupStore>(store: &St) -> Self {
        let store = store.clone();
        Self {
            counters: Arc::default(),
            evictions: Some(Arc::new(move || store.evictions())),
        }
    }

    /// Done marks the store evicted to make room (an evicted event is handled again if
    /// DT resends it): watch it, and grow the store's capacity if it climbs.
    pub fn evictions(&self) -> u64 {
        self.evictions.as_ref().map_or(0, |evictions| evictions())
    }

    /// New events refused with `503` because the store was full of reservations in
    /// flight ([`DedupRefusal::StoreFull`](super::DedupRefusal::StoreFull)).
    pub fn full(&self) -> u64 {
        self.counters.full.load(Ordering::Relaxed)
    }

    pub(crate) fn add_full(&self) {
        self.counters.full.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests passed to the inner service (unguarded ones after a store failure
    /// included).
    pub fn forwarded(&self) -> u64 {
        self.counters.forwarded.load(Ordering::Relaxed)
    }

    /// Duplicates of a done event, answered `200` without forwarding.
    pub fn duplicates(&self) -> u64 {
        self.counters.duplicates.load(Ordering::Relaxed)
    }

    /// Duplicates of an event in flight, answered `409` without forwarding.
    pub fn in_flight(&self) -> u64 {
        self.counters.in_flight.load(Ordering::Relaxed)
    }

    /// Failed store operations (reserve, commit or release).
    pub fn store_errors(&self) -> u64 {
        self.counters.store_errors.load(Ordering::Relaxed)
    }

    pub(crate) fn add_forwarded(&self) {
        self.counters.forwarded.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_duplicate(&self) {
        self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_in_flight(&self) {
        self.counters.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_store_error(&self) {
        self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for DedupStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("DedupStats");
        for (name, count) in [
            ("forwarded", self.forwarded()),
            ("duplicates", self.duplicates()),
            ("in_flight", self.in_flight()),
            ("store_errors", self.store_errors()),
            ("full", self.full()),
            ("evictions", self.evictions()),
        ] {
            debug.field(name, &count);
        }
        debug.finish()
    }
}
