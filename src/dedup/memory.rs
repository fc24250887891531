//! [`MemoryStore`]: the default store, for one process.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::{ready, Ready};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::store::{tenant_of, DedupStore, ReservationToken, Reserve, StoreError};

/// The default [`MemoryStore`] capacity: 100 000 event ids (a few MiB).
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Keys per shard below which the store uses fewer shards.
const MIN_SHARD_CAPACITY: usize = 1024;
const MAX_SHARDS: usize = 64;

type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// An in-process [`DedupStore`]: right for a single replica; with several, use the
/// `RedisStore` (feature `redis`) so that the replicas see each other's events.
///
/// - **Expiring**: a key is gone once its TTL has passed (reservations after the in-flight
///   TTL, done events after the done TTL). Expired keys are dropped when met.
/// - **Bounded**: it holds at most `capacity` keys. When a new key would pass that bound,
///   the done mark inserted longest ago is evicted first (oldest event first: the one DT
///   is least likely to send again), and counted ([`evictions`](Self::evictions)). An
///   evicted done event would be handled again if DT resent it. A reservation in flight is
///   never evicted: when a shard holds nothing but reservations, a new key gets
///   [`Reserve::Full`] (the guard answers `503` with `Retry-After`).
/// - **Fair between tenants**: behind a gateway, the mark evicted is the oldest of the
///   tenant that holds the most keys, so one tenant's flood of new events pushes out its
///   own marks, never another tenant's (keys of no tenant: the oldest first).
/// - **How long a done mark lasts**: at most the done TTL; under load, until
///   `capacity` newer events have arrived. With the default 100 000 keys and 10 events/s
///   that is about 2.8 h, at 1 event/s about 28 h (then the 13 h TTL applies first): size
///   the capacity as `event rate x 13 h` (468 000 at 10 events/s, about 50 MiB) to cover
///   DT's 12 h of retries.
/// - **Concurrent**: keys are spread by a randomly keyed hash over up to 64 shards, each
///   a `Mutex<HashMap>` held for a few map operations and never across an `.await`; the
///   capacity is split evenly between them, at least 1024 keys per shard (a store with a
///   capacity under 2048 has one shard, and its eviction order is exact).
///
/// Clones share the keys.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
    clock: Clock,
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    shard_capacity: usize,
    hasher: RandomState,
    evictions: AtomicU64,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Arc<str>, Entry>,
    /// How many keys each tenant holds (`""`: keys of no tenant).
    tenants: HashMap<Box<str>, usize>,
    /// Keys in insertion order; an item whose `seq` no longer matches its entry is stale.
    order: VecDeque<(Arc<str>, u64)>,
    next_seq: u64,
}

struct Entry {
    state: State,
    expires_at: Instant,
    seq: u64,
}

#[derive(Clone, Copy)]
enum State {
    InFlight(ReservationToken),
    Done,
}

impl MemoryStore {
    /// A store that holds at most `capacity` keys (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let shards = (capacity / MIN_SHARD_CAPACITY).clamp(1, MAX_SHARDS);
        // A power of two, so that the shard is picked with a mask.
        let shards = if shards.is_power_of_two() {
            shards
        } else {
            shards.next_power_of_two() / 2
        };
        Self {
            inner: Arc::new(Inner {
                shards: (0..shards).map(|_| Mutex::default()).collect(),
                shard_capacity: capacity / shards,
                hasher: RandomState::new(),
                evictions: AtomicU64::new(0),
            }),
            clock: Arc::new(Instant::now),
        }
    }

    /// The clock TTLs are measured with, for tests. Default: [`Instant::now`].
    #[must_use = "the store with this clock is returned, not set in place"]
    pub fn clock(mut self, clock: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The most keys this store holds.
    pub fn capacity(&self) -> usize {
        self.inner.shard_capacity * self.inner.shards.len()
    }

    /// The keys held now, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|shard| lock(shard).map.len())
            .sum()
    }

    /// How many done marks were evicted to make room, since the store was made.
    pub fn evictions(&self) -> u64 {
        self.inner.evictions.load(Ordering::Relaxed)
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let hash = self.inner.hasher.hash_one(key) as usize;
        lock(&self.inner.shards[hash & (self.inner.shards.len() - 1)])
    }
}

impl MemoryStore {
    fn count_evictions(&self, evicted: u64) {
        if evicted > 0 {
            self.inner.evictions.fetch_add(evicted, Ordering::Relaxed);
            #[cfg(feature = "metrics")]
            metrics::counter!("dt_dedup_evictions_total").increment(evicted);
        }
    }
}

impl Default for MemoryStore {
    /// A store of [`DEFAULT_CAPACITY`] keys.
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity", &self.capacity())
            .field("shards", &self.inner.shards.len())
            .finish_non_exhaustive()
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A panic while holding the lock cannot leave a shard half updated in a way that
    // matters: every entry is self-contained.
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shard {
    /// The entry for `key` if it has not expired; an expired one is dropped.
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self
            .map
            .get(key)
            .is_some_and(|entry| entry.expires_at <= now)
        {
            self.remove(key);
        }
        self.map.get_mut(key)
    }

    /// Remove `key`, keeping the tenants' counts.
    fn remove(&mut self, key: &str) {
        if self.map.remove(key).is_some() {
            let tenant = tenant_of(key);
            if let Some(count) = self.tenants.get_mut(tenant) {
                *count -= 1;
                if *count == 0 {
                    self.tenants.remove(tenant);
                }
            }
        }
    }

    /// The tenant that holds the most keys, when several share the shard.
    fn largest_tenant(&self) -> Option<&str> {
        if self.tenants.len() < 2 {
            return None;
        }
        self.tenants
            .iter()
            .max_by_key(|(_, count)| **count)
            .map(|(tenant, _)| &**tenant)
    }

    /// Insert `key`, evicting the oldest done marks to stay within `cap`. Returns how
    /// many were evicted, or `None` (nothing inserted) when only reservations in flight
    /// are left to evict.
    fn insert(
        &mut self,
        key: &str,
        state: State,
        expires_at: Instant,
        now: Instant,
        cap: usize,
    ) -> Option<u64> {
        self.drop_expired_front(now);
        let mut evicted = 0;
        while self.map.len() >= cap {
            if !self.evict_oldest_done(now) {
                return None;
            }
            evicted += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let key: Arc<str> = Arc::from(key);
        *self.tenants.entry(tenant_of(&key).into()).or_default() += 1;
        self.order.push_back((key.clone(), seq));
        self.map.insert(
            key,
            Entry {
                state,
                expires_at,
                seq,
            },
        );
        if self.order.len() > 2 * cap.max(16) {
            let map = &self.map;
            self.order
                .retain(|(key, seq)| map.get(key).is_some_and(|entry| entry.seq == *seq));
        }
        Some(evicted)
    }

    /// Drop stale queue items and expired entries at the front of the queue.
    fn drop_expired_front(&mut self, now: Instant) {
        while let Some((key, seq)) = self.order.front() {
            match self.map.get(key) {
                Some(entry) if entry.seq == *seq && entry.expires_at > now => return,
                Some(entry) if entry.seq == *seq => {
                    let key = key.clone();
                    self.remove(&key);
                }
                _ => {}
            }
            self.order.pop_front();
        }
    }

    /// Evict the oldest done mark (or expired entry) of the tenant that holds the most
    /// keys, so that one tenant's flood of new events pushes out its own marks, not the
    /// others'; with one tenant, or when that one has none, the oldest of any. A
    /// reservation in flight is never evicted: `false` when there is nothing but those.
    fn evict_oldest_done(&mut self, now: Instant) -> bool {
        let target: Option<Box<str>> = self.largest_tenant().map(Into::into);
        for only in [target.as_deref(), None] {
            let map = &self.map;
            let found = self.order.iter().position(|(key, seq)| {
                map.get(key).is_some_and(|entry| {
                    entry.seq == *seq
                        && (matches!(entry.state, State::Done) || entry.expires_at <= now)
                }) && only.is_none_or(|tenant| tenant_of(key) == tenant)
            });
            if let Some(position) = found {
                let (key, _) = self.order.remove(position).expect("found in the queue");
                self.remove(&key);
                return true;
            }
            if only.is_none() {
                break;
            }
        }
        false
    }
}

impl DedupStore for MemoryStore {
    type Future<T: Send + 'static> = Ready<Result<T, StoreError>>;

    fn reserve(&self, key: &str, ttl: Duration) -> Self::Future<Reserve> {
        let now = (self.clock)();
        let mut shard = self.shard(key);
        let found = match shard.live(key, now) {
            Some(Entry {
                state: State::Done, ..
            }) => Reserve::Done,
            Some(_) => Reserve::InFlight,
            None => {
                let token = ReservationToken::random();
                let cap = self.inner.shard_capacity;
                match shard.insert(key, State::InFlight(token), now + ttl, now, cap) {
                    Some(evicted) => {
                        self.count_evictions(evicted);
                        Reserve::Reserved(token)
                    }
                    None => Reserve::Full,
                }
            }
        };
        ready(Ok(found))
    }

    fn commit(&self, key: &str, token: ReservationToken, ttl: Duration) -> Self::Future<()> {
        let _ = token; // a commit always wins: see `DedupStore::commit`
        let now = (self.clock)();
        let mut shard = self.shard(key);
        match shard.live(key, now) {
            Some(entry) => {
                // Held by this token, or by another that reserved after this one expired:
                // the event was handled either way.
                if !matches!(entry.state, State::Done) {
                    entry.state = State::Done;
                    entry.expires_at = now + ttl;
                }
            }
            // The reservation expired and nobody took the key: the event was handled.
            None => {
                let cap = self.inner.shard_capacity;
                // Full of reservations: the mark is lost, as it would be after eviction.
                let evicted = shard.insert(key, State::Done, now + ttl, now, cap);
                self.count_evictions(evicted.unwrap_or(0));
            }
        }
        ready(Ok(()))
    }

    fn release(&self, key: &str, token: ReservationToken) -> Self::Future<()> {
        self.release_detached(key, token);
        ready(Ok(()))
    }

    fn evictions(&self) -> u64 {
        MemoryStore::evictions(self)
    }

    fn commit_detached(&self, key: &str, token: ReservationToken, ttl: Duration) {
        // `commit` does its work when called; its future only reports it.
        drop(self.commit(key, token, ttl));
    }

    fn release_detached(&self, key: &str, token: ReservationToken) {
        let now = (self.clock)();
        let mut shard = self.shard(key);
        if shard
            .live(key, now)
            .is_some_and(|entry| matches!(entry.state, State::InFlight(held) if held == token))
        {
            shard.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn now_now<T>(future: Ready<Result<T, StoreError>>) -> T {
        future.into_inner().unwrap()
    }

    /// A store whose clock moves only when told to.
    fn manual(capacity: usize) -> (MemoryStore, Arc<AtomicU64>) {
        let base = Instant::now();
        let offset = Arc::new(AtomicU64::new(0));
        let read = offset.clone();
        let store = MemoryStore::new(capacity)
            .clock(move || base + Duration::from_millis(read.load(Ordering::SeqCst)));
        (store, offset)
    }

    const TTL: Duration = Duration::from_secs(30);
    const DONE: Duration = Duration::from_secs(13 * 3600);

    /// `reserve(key)` for the TTL, now.
    fn reserve(store: &MemoryStore, key: &str) -> Reserve {
        now_now(store.reserve(key, TTL))
    }

    /// The token of a reservation of `key`, which must be free (else a panic with `why`).
    #[track_caller]
    fn reserved(store: &MemoryStore, key: &str, why: &str) -> ReservationToken {
        match reserve(store, key) {
            Reserve::Reserved(token) => token,
            other => panic!("{key}: {other:?}: {why}"),
        }
    }

    /// A duration as the manual clock's milliseconds.
    fn ms(duration: Duration) -> u64 {
        duration.as_millis() as u64
    }

    #[test]
    fn shard_counts_and_capacity() {
        for (capacity, shards, total) in [
            (0, 1, 1),
            (1, 1, 1),
            (2047, 1, 2047),
            (2048, 2, 2048),
            (5000, 4, 5000),
            (DEFAULT_CAPACITY, 64, 99_968),
        ] {
            let store = MemoryStore::new(capacity);
            assert_eq!(store.inner.shards.len(), shards, "{capacity}");
            assert_eq!(store.capacity(), total, "{capacity}");
        }
    }

    #[test]
    fn reserve_commit_release_follow_the_table() {
        let (store, _) = manual(10);
        let a = reserved(&store, "e", "a free key is reserved");
        assert_eq!(reserve(&store, "e"), Reserve::InFlight);

        // Another token does not release it.
        let other = ReservationToken::random();
        now_now(store.release("e", other));
        assert_eq!(reserve(&store, "e"), Reserve::InFlight);

        now_now(store.release("e", a));
        let b = reserved(&store, "e", "a released key is free");
        now_now(store.commit("e", b, DONE));
        assert_eq!(reserve(&store, "e"), Reserve::Done);
        now_now(store.release("e", b));
        assert_eq!(reserve(&store, "e"), Reserve::Done, "done stays done");

        // A commit always wins, whoever holds the key: the event was handled.
        let _held = reserved(&store, "f", "a free key is reserved");
        now_now(store.commit("f", other, DONE));
        assert_eq!(reserve(&store, "f"), Reserve::Done);
    }

    #[test]
    fn reservations_and_done_keys_expire() {
        let (store, clock) = manual(10);
        let first = reserved(&store, "e", "a free key is reserved");
        clock.store(ms(TTL) - 1, Ordering::SeqCst);
        assert_eq!(reserve(&store, "e"), Reserve::InFlight);
        clock.store(ms(TTL), Ordering::SeqCst);
        let second = reserved(&store, "e", "an expired reservation frees the key");
        // The first holder's late release does not free the second reservation.
        now_now(store.release("e", first));
        assert_eq!(reserve(&store, "e"), Reserve::InFlight);

        now_now(store.commit("e", second, DONE));
        let done_at = ms(TTL);
        clock.store(done_at + ms(DONE) - 1, Ordering::SeqCst);
        assert_eq!(reserve(&store, "e"), Reserve::Done);
        clock.store(done_at + ms(DONE), Ordering::SeqCst);
        assert!(matches!(reserve(&store, "e"), Reserve::Reserved(_)));
    }

    #[test]
    fn a_late_commit_marks_an_expired_free_key_done() {
        let (store, clock) = manual(10);
        let token = reserved(&store, "e", "a free key is reserved");
        clock.store(ms(TTL) + 1, Ordering::SeqCst);
        now_now(store.commit("e", token, DONE));
        assert_eq!(reserve(&store, "e"), Reserve::Done);
    }

    #[test]
    fn the_oldest_key_is_evicted_first() {
        let (store, _) = manual(3);
        for key in ["a", "b", "c"] {
            let token = reserved(&store, key, "a free key is reserved");
            now_now(store.commit(key, token, DONE));
        }
        assert_eq!(store.len(), 3);
        assert!(matches!(reserve(&store, "d"), Reserve::Reserved(_)));
        assert_eq!(store.len(), 3);
        assert_eq!(reserve(&store, "b"), Reserve::Done);
        assert_eq!(reserve(&store, "c"), Reserve::Done);
        assert_eq!(reserve(&store, "d"), Reserve::InFlight);
        assert!(
            matches!(reserve(&store, "a"), Reserve::Reserved(_)),
            "a, the oldest, was evicted"
        );
        assert_eq!(store.len(), 3);
    }

    /// A flood of new ids never evicts a reservation in flight: the oldest done marks go
    /// first, and once only reservations are left a new key gets `Full`. Evictions are
    /// counted. (Before: "a", in flight, was evicted and its duplicate forwarded again.)
    #[test]
    fn one_tenants_flood_evicts_its_own_marks_not_the_others() {
        let (store, _) = manual(6);
        let done = |key: &str| {
            let token = reserved(&store, key, "a free key is reserved");
            now_now(store.commit(key, token, DONE));
        };
        done("t1:a:e1");
        done("t1:a:e2");
        // Tenant b floods: far more new events than the store holds.
        for i in 0..50 {
            done(&format!("t1:b:flood-{i}"));
        }
        assert!(store.evictions() >= 46);
        // Tenant a's marks survived: b pushed out only its own.
        assert_eq!(reserve(&store, "t1:a:e1"), Reserve::Done);
        assert_eq!(reserve(&store, "t1:a:e2"), Reserve::Done);
        assert_eq!(reserve(&store, "t1:b:flood-49"), Reserve::Done);
        assert!(matches!(
            reserve(&store, "t1:b:flood-0"),
            Reserve::Reserved(_)
        ));
        // Without tenants the oldest mark goes first, as before.
        let (bare, _) = manual(2);
        for key in ["x", "y", "z"] {
            let token = reserved(&bare, key, "a free key is reserved");
            now_now(bare.commit(key, token, DONE));
        }
        assert!(
            matches!(reserve(&bare, "x"), Reserve::Reserved(_)),
            "x, the oldest, was evicted"
        );
        assert_eq!(reserve(&bare, "z"), Reserve::Done);
    }

    #[test]
    fn reservations_in_flight_are_never_evicted() {
        let (store, _) = manual(3);
        let _ = reserved(&store, "a", "a free key is reserved");
        let token = reserved(&store, "b", "a free key is reserved");
        now_now(store.commit("b", token, DONE));
        let _ = reserved(&store, "c", "a free key is reserved");
        assert_eq!(store.evictions(), 0);
        // Full: "b" (done) is evicted, "a" (older, in flight) is kept.
        assert!(matches!(reserve(&store, "d"), Reserve::Reserved(_)));
        assert_eq!(store.evictions(), 1);
        assert_eq!(reserve(&store, "a"), Reserve::InFlight);
        assert!(matches!(reserve(&store, "b"), Reserve::Full));
        // Nothing but reservations: every new key is refused, none is evicted.
        for key in ["e", "f", "g"] {
            assert_eq!(reserve(&store, key), Reserve::Full, "{key}");
        }
        assert_eq!(store.evictions(), 1);
        assert_eq!(reserve(&store, "a"), Reserve::InFlight);
        assert_eq!(reserve(&store, "c"), Reserve::InFlight);
        assert_eq!(reserve(&store, "d"), Reserve::InFlight);
    }

    /// A late commit wins over a newer reservation: the event was handled, so the newer
    /// holder's release must not free it. (Before: the commit was dropped, the release
    /// freed the key, and a third delivery was handled again.)
    #[test]
    fn a_late_commit_wins_over_a_newer_reservation() {
        let (store, clock) = manual(10);
        let slow = reserved(&store, "e", "a free key is reserved");
        clock.fetch_add(ms(TTL) + 1, Ordering::SeqCst);
        let newer = reserved(&store, "e", "the slow holder's reservation expired");
        now_now(store.commit("e", slow, DONE));
        now_now(store.release("e", newer));
        assert_eq!(reserve(&store, "e"), Reserve::Done);
    }

    #[test]
    fn released_keys_do_not_grow_the_queue_without_bound() {
        let (store, _) = manual(4);
        for _ in 0..1000 {
            let token = reserved(&store, "k", "a free key is reserved");
            now_now(store.release("k", token));
        }
        assert!(store.is_empty());
        let order = lock(&store.inner.shards[0]).order.len();
        assert!(order <= 33, "stale queue items are compacted: {order}");
    }
}
