//! [`DedupStore`]: where the guard keeps its reservations, and what a store answers.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::gateway::TenantId;

/// The store key of an event: its `eventId`, scoped by the tenant when a gateway resolved
/// one, so that one tenant's event never answers (nor marks) another's with the same id.
/// A single-secret layer inserts no `TenantId`: its keys are the bare ids, as before.
/// The tenant's length comes first, so no tenant and id pair can spell another's key.
pub(crate) fn scoped_key(tenant: Option<&TenantId>, event_id: &str) -> String {
    match tenant {
        None => event_id.to_owned(),
        Some(tenant) => format!("t{}:{}:{}", tenant.as_str().len(), tenant, event_id),
    }
}

/// The tenant a key made by [`scoped_key`] belongs to (`""` for a bare event id), for a
/// store that shares its capacity fairly between tenants.
pub(crate) fn tenant_of(key: &str) -> &str {
    let scoped = || {
        let rest = key.strip_prefix('t')?;
        let (len, rest) = rest.split_once(':')?;
        let len: usize = len.parse().ok()?;
        let tenant = rest.get(..len)?;
        rest[len..].starts_with(':').then_some(tenant)
    };
    scoped().unwrap_or("")
}

/// Where [`Dedup`](super::Dedup) records which events it has seen.
///
/// A key is either absent, reserved (in flight, held by one [`ReservationToken`]) or done.
/// Every operation is atomic with respect to the other replicas that share the store:
///
/// | call | key absent (or expired) | reserved by this token | reserved by another | done |
/// | --- | --- | --- | --- | --- |
/// | [`reserve`](Self::reserve) | reserve it for `ttl`: [`Reserve::Reserved`] | [`Reserve::InFlight`] | [`Reserve::InFlight`] | [`Reserve::Done`] |
/// | [`commit`](Self::commit) | mark it done for `ttl` | mark it done for `ttl` | mark it done for `ttl` | leave it |
/// | [`release`](Self::release) | nothing | remove it | leave it | leave it |
///
/// **A commit always wins.** A commit comes from a holder whose inner service handled the
/// event: even when that holder's reservation expired (a handler slower than the in-flight
/// TTL) and another replica has reserved the event since, the key becomes done. The
/// other holder's later release then finds it done and frees nothing, so the event is
/// never handled a third time; the other holder's own run may already be under way (the
/// in-flight TTL bounds that overlap: set it above your handler's timeout).
///
/// So a replica never releases a reservation it does not hold. The futures
/// own what they need (`'static`): the guard keeps them in its response future.
///
/// Implemented by [`MemoryStore`](super::MemoryStore) (one process) and, with the `redis`
/// feature, `RedisStore` (any number of replicas). A store for another backend can
/// use [`BoxStoreFuture`] as its `Future`.
pub trait DedupStore: Clone + Send + Sync + 'static {
    /// The future every operation returns.
    type Future<T: Send + 'static>: Future<Output = Result<T, StoreError>> + Send + 'static;

    /// Reserve `key` for `ttl` unless it is already reserved or done.
    fn reserve(&self, key: &str, ttl: Duration) -> Self::Future<Reserve>;

    /// Mark `key` done for `ttl`, whoever holds it now (a commit always wins; see the
    /// table above).
    fn commit(&self, key: &str, token: ReservationToken, ttl: Duration) -> Self::Future<()>;

    /// Remove the reservation `token` holds on `key`; anything else is left as it is.
    fn release(&self, key: &str, token: ReservationToken) -> Self::Future<()>;

    /// Like [`release`](Self::release), but without waiting: called when a response
    /// future is dropped (the client went away), where nothing can be awaited.
    ///
    /// A store that answers at once does the work here; a networked one starts it in the
    /// background. If it can do neither, the reservation expires after its `ttl`.
    fn release_detached(&self, key: &str, token: ReservationToken);

    /// Mark `key` done, as [`commit`](Self::commit) does, without a future to await: the
    /// guard calls it when a request whose inner service answered 2xx is dropped before
    /// its commit finished (the event was handled, so it must not be freed). Spawn the
    /// work, or do it at once; never block.
    fn commit_detached(&self, key: &str, token: ReservationToken, ttl: Duration);

    /// How many done marks the store has evicted to make room, since it was made: read by
    /// [`DedupStats::evictions`](super::DedupStats::evictions). Default: 0, for a store
    /// that never evicts (Redis evicts by its own `maxmemory` policy).
    fn evictions(&self) -> u64 {
        0
    }
}

/// A boxed store future, for a [`DedupStore`] whose operations are `async` blocks.
pub type BoxStoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// What [`DedupStore::reserve`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reserve {
    /// The key was free and is now reserved by this token: handle the event.
    Reserved(ReservationToken),
    /// Another request holds the key right now.
    InFlight,
    /// The event was handled already.
    Done,
    /// The key is new, but the store is full of reservations in flight and evicts none
    /// (evicting one would let its duplicate through): the guard answers `503` with
    /// `Retry-After`.
    Full,
}

/// Proves which reservation a request holds, so that a commit or a release by anybody
/// else leaves it alone.
///
/// 128 bits, unique across processes (a counter hashed with std's hasher, randomly keyed
/// per thread from the OS). It is an identity, not a secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReservationToken(u128);

impl ReservationToken {
    /// A fresh token, different from every other one handed out.
    pub fn random() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        // Each `RandomState` is keyed from the OS's randomness once per thread, then
        // stepped per call: with the counter, unique within the process, and across
        // processes with overwhelming probability.
        let half = |salt: u64| {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(salt);
            hasher.write_u64(count);
            hasher.finish()
        };
        Self((u128::from(half(1)) << 64) | u128::from(half(2)))
    }

    /// The token as a number, for a store that keeps it.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// A token a store kept as a number.
    pub fn from_u128(value: u128) -> Self {
        Self(value)
    }
}

impl fmt::Debug for ReservationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReservationToken({self})")
    }
}

impl fmt::Display for ReservationToken {
    /// 32 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// A store operation failed (for example, Redis is unreachable or timed out).
///
/// What the guard does then is set by
/// [`DedupLayer::fail_closed`](super::DedupLayer::fail_closed).
#[derive(Debug)]
pub struct StoreError {
    source: Box<dyn StdError + Send + Sync>,
}

impl StoreError {
    /// Wrap the backend's error.
    pub fn new(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            source: source.into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dedup store failed: {}", self.source)
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_differ_and_print_as_32_hex_digits() {
        let tokens: std::collections::HashSet<_> =
            (0..1000).map(|_| ReservationToken::random()).collect();
        assert_eq!(tokens.len(), 1000);
        let token = ReservationToken::from_u128(0xab);
        assert_eq!(token.to_string(), format!("{:032x}", 0xab));
        assert_eq!(token.as_u128(), 0xab);
    }

    #[test]
    fn scoped_keys_keep_tenants_apart() {
        assert_eq!(scoped_key(None, "evt"), "evt");
        let keys: Vec<String> = [("a:b", "evt"), ("a", "b:evt"), ("", "evt")]
            .into_iter()
            .map(|(tenant, id)| scoped_key(Some(&TenantId::from(tenant)), id))
            .collect();
        assert_eq!(keys, ["t3:a:b:evt", "t1:a:b:evt", "t0::evt"]);
        for (key, tenant) in keys.iter().zip(["a:b", "a", ""]) {
            assert_eq!(tenant_of(key), tenant, "{key}");
        }
    }

    #[test]
    fn tenants_are_read_back_from_scoped_keys() {
        for (key, tenant) in [
            ("c82gg9catj3vmh4248og", ""),
            ("t1:a:evt", "a"),
            ("t5:acme1:evt:with:colons", "acme1"),
            ("t3:a:b:evt", "a:b"),
            ("t9:short:evt", ""),
            ("tx:a:evt", ""),
            ("t1:ab:evt", ""),
        ] {
            assert_eq!(super::tenant_of(key), tenant, "{key}");
        }
    }
}
