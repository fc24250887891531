//! [`RedisStore`]: a store shared by every replica, in Redis (feature `redis`).

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use super::store::{BoxStoreFuture, DedupStore, ReservationToken, Reserve, StoreError};

/// The default [`RedisStore::prefix`].
pub const DEFAULT_PREFIX: &str = "dt-dedup:";

/// The default [`RedisStore::timeout`]: 1 second.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// The value of a done key; a reserved key holds its token (32 hex digits).
const DONE: &str = "done";

/// Reserve the key (SET NX PX) and return nothing, or return what holds it: one round
/// trip, atomic.
const RESERVE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return false
end
return redis.call('GET', KEYS[1])
";

/// Mark done unless it is done already: a commit always wins, even from a holder whose
/// reservation expired and was taken by another (the event WAS handled; the other's
/// release then finds `done` and frees nothing).
const COMMIT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// Delete the key only if this token holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// A [`DedupStore`] in Redis, for a service that runs as several replicas: they all see
/// each other's events.
///
/// - Every operation is one Lua script, so one round trip and atomic: reserve is
///   `SET key token NX PX ttl`, and a `GET` when the key exists (in flight or done);
///   release compares the token first (compare-and-delete), so a replica never frees a
///   reservation it does not hold. A commit always marks the key done (the event was
///   handled), even when the holder's reservation expired and another replica reserved
///   it since: see [`DedupStore::commit`]. Scripts are
///   sent by SHA (`EVALSHA`) after the first use. Works with any Redis 2.6.12 or later.
/// - Keys are `prefix + eventId` (default prefix [`DEFAULT_PREFIX`]); a done key holds
///   `done`, a reserved key its token. Both expire on their own (`PX`).
/// - One [`ConnectionManager`] (a multiplexed connection that reconnects by itself) is
///   shared by every clone; no pool is needed.
/// - Each operation is bounded by [`timeout`](Self::timeout); past it, or when Redis is
///   unreachable, the operation fails with a [`StoreError`] and the guard fails open or
///   closed as configured.
/// - A request dropped while it holds a reservation releases it from a task spawned on
///   the current tokio runtime (outside a runtime the reservation just expires after the
///   in-flight TTL).
/// - A commit that fails (Redis down or too slow after the inner service answered 2xx)
///   is made again from a task spawned on the current tokio runtime, every 100 ms
///   doubling to 5 s, until it succeeds or the done TTL has passed: otherwise the
///   reservation would run out after the in-flight TTL and DT's next duplicate of a
///   handled event would be handled again. The guard still counts the failure and
///   returns the inner service's answer.
///
/// ```no_run
/// use tower_dt_signature::dedup::{DedupLayer, RedisStore};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379/").await?.prefix("myapp:dt:");
/// let layer = DedupLayer::with_store(store);
/// # let _ = layer; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    /// Set once connected; [`RedisStore::connect`] keeps trying in the background.
    connection: Arc<OnceLock<ConnectionManager>>,
    shared: Arc<Shared>,
}

struct Shared {
    prefix: String,
    timeout: Duration,
    reserve: Script,
    commit: Script,
    release: Script,
}

impl RedisStore {
    /// Connect to the Redis at `url` (`redis://[:password@]host:port/db`), with a 1 s
    /// connection and response timeout and one reconnection attempt per failed
    /// operation (a down Redis fails fast rather than holding requests).
    ///
    /// Fails only for a malformed `url`. When Redis is down at start-up (a replica that
    /// restarts during an outage), the store is returned at once and keeps connecting in
    /// the background (every 1 s, doubling to 30 s, on the current tokio runtime) until it
    /// succeeds or the last clone is dropped; meanwhile every operation fails with a
    /// [`StoreError`] and the guard fails open or closed as configured. Once connected,
    /// the connection manager reconnects by itself, and the scripts are reloaded after a
    /// Redis restart (`EVALSHA` falls back to `EVAL` on `NOSCRIPT`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(StoreError::new)?;
        let store = Self::unconnected();
        match Self::manager(client.clone()).await {
            Ok(connection) => {
                let _ = store.connection.set(connection);
            }
            Err(error) => {
                tracing::warn!(%error, "redis unreachable: dedup store connecting in the background");
                let cell = Arc::downgrade(&store.connection);
                tokio::spawn(async move {
                    let mut delay = Duration::from_secs(1);
                    loop {
                        tokio::time::sleep(delay).await;
                        let Some(cell) = cell.upgrade() else { return };
                        if let Ok(connection) = Self::manager(client.clone()).await {
                            let _ = cell.set(connection);
                            tracing::info!("dedup store connected to redis");
                            return;
                        }
                        delay = (delay * 2).min(Duration::from_secs(30));
                    }
                });
            }
        }
        Ok(store)
    }

    async fn manager(client: redis::Client) -> redis::RedisResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEFAULT_TIMEOUT))
            .set_response_timeout(Some(DEFAULT_TIMEOUT))
            .set_number_of_retries(1);
        ConnectionManager::new_with_config(client, config).await
    }

    /// Whether the store has connected (it may still fail per operation if Redis went
    /// down since): for a readiness probe.
    pub fn is_connected(&self) -> bool {
        self.connection.get().is_some()
    }

    /// A store on a connection manager you configured.
    pub fn new(connection: ConnectionManager) -> Self {
        let store = Self::unconnected();
        let _ = store.connection.set(connection);
        store
    }

    fn unconnected() -> Self {
        Self {
            connection: Arc::default(),
            shared: Arc::new(Shared {
                prefix: DEFAULT_PREFIX.to_owned(),
                timeout: DEFAULT_TIMEOUT,
                reserve: Script::new(RESERVE),
                commit: Script::new(COMMIT),
                release: Script::new(RELEASE),
            }),
        }
    }

    /// The prefix of every key, to share one Redis between applications or connectors.
    /// Default: [`DEFAULT_PREFIX`] (`dt-dedup:`).
    #[must_use = "the store with this prefix is returned, not set in place"]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.shared_mut().prefix = prefix.into();
        self
    }

    /// The longest one operation may take before it fails. Default: [`DEFAULT_TIMEOUT`].
    #[must_use = "the store with this timeout is returned, not set in place"]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.shared_mut().timeout = timeout;
        self
    }

    fn shared_mut(&mut self) -> &mut Shared {
        if Arc::get_mut(&mut self.shared).is_none() {
            self.shared = Arc::new(Shared {
                prefix: self.shared.prefix.clone(),
                timeout: self.shared.timeout,
                reserve: Script::new(RESERVE),
                commit: Script::new(COMMIT),
                release: Script::new(RELEASE),
            });
        }
        Arc::get_mut(&mut self.shared).expect("just made unique")
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.shared.prefix)
    }

    /// Run `operation` on the connection, within the timeout. A reserve whose answer is
    /// lost to the timeout may still have reserved the key in Redis: that orphan is
    /// bounded by the in-flight TTL (`PX`), after which DT's retry is handled.
    fn run<T, F, Fut>(&self, operation: F) -> BoxStoreFuture<T>
    where
        T: Send + 'static,
        F: FnOnce(ConnectionManager, Arc<Shared>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = redis::RedisResult<T>> + Send + 'static,
    {
        let timeout = self.shared.timeout;
        let connection = self.connection.get().cloned();
        let shared = self.shared.clone();
        Box::pin(async move {
            let Some(connection) = connection else {
                return Err(StoreError::new("not connected to redis yet"));
            };
            match tokio::time::timeout(timeout, operation(connection, shared)).await {
                Ok(result) => result.map_err(StoreError::new),
                Err(_) => Err(StoreError::new("timed out")),
            }
        })
    }

    /// The commit script on `key` (prefixed). A commit always wins, whoever holds the
    /// key: the token is not compared.
    fn mark_done(&self, key: String, ttl: Duration) -> BoxStoreFuture<()> {
        self.run(move |mut connection, shared| async move {
            let _: i64 = shared
                .commit
                .key(key)
                .arg(DONE)
                .arg(millis(ttl))
                .invoke_async(&mut connection)
                .await?;
            Ok(())
        })
    }

    /// Make a failed commit again in the background (every 100 ms, doubling to 5 s) until
    /// it succeeds or `ttl` has passed: the event was handled, and without its mark the
    /// reservation would run out after the in-flight TTL and DT's next duplicate would be
    /// handled again. Without a tokio runtime, it is lost (and logged).
    fn mark_done_later(&self, key: String, ttl: Duration) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(event_id = %key, "no tokio runtime to retry a failed mark done: the event may be handled again after the in-flight TTL");
            return;
        };
        let store = self.clone();
        runtime.spawn(async move {
            let deadline = tokio::time::Instant::now() + ttl;
            let mut delay = Duration::from_millis(100);
            loop {
                tokio::time::sleep(delay).await;
                if tokio::time::Instant::now() >= deadline {
                    tracing::warn!(event_id = %key, "gave up marking an event done: redis stayed unreachable for the done TTL");
                    return;
                }
                if store.mark_done(key.clone(), ttl).await.is_ok() {
                    tracing::info!(event_id = %key, "marked an event done after a failed commit");
                    return;
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        });
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.shared.prefix)
            .field("timeout", &self.shared.timeout)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

fn millis(ttl: Duration) -> u64 {
    // PX 0 is an error in Redis: at least 1 ms.
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl DedupStore for RedisStore {
    type Future<T: Send + 'static> = BoxStoreFuture<T>;

    fn reserve(&self, key: &str, ttl: Duration) -> Self::Future<Reserve> {
        let key = self.key(key);
        let token = ReservationToken::random();
        self.run(move |mut connection, shared| async move {
            let held: Option<String> = shared
                .reserve
                .key(key)
                .arg(token.to_string())
                .arg(millis(ttl))
                .invoke_async(&mut connection)
                .await?;
            Ok(match held.as_deref() {
                None => Reserve::Reserved(token),
                Some(DONE) => Reserve::Done,
                Some(_) => Reserve::InFlight,
            })
        })
    }

    fn commit(&self, key: &str, _token: ReservationToken, ttl: Duration) -> Self::Future<()> {
        let key = self.key(key);
        let first = self.mark_done(key.clone(), ttl);
        let store = self.clone();
        Box::pin(async move {
            let result = first.await;
            if result.is_err() {
                store.mark_done_later(key, ttl);
            }
            result
        })
    }

    fn release(&self, key: &str, token: ReservationToken) -> Self::Future<()> {
        let key = self.key(key);
        self.run(move |mut connection, shared| async move {
            let _: i64 = shared
                .release
                .key(key)
                .arg(token.to_string())
                .invoke_async(&mut connection)
                .await?;
            Ok(())
        })
    }

    fn release_detached(&self, key: &str, token: ReservationToken) {
        detach(self.release(key, token), key, "release");
    }

    fn commit_detached(&self, key: &str, token: ReservationToken, ttl: Duration) {
        detach(self.commit(key, token, ttl), key, "mark done");
    }
}

/// Run a store operation of a dropped request in the background, on the current tokio
/// runtime; without one, say what is lost.
fn detach(work: BoxStoreFuture<()>, key: &str, what: &'static str) {
    let key = key.to_owned();
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(async move {
                if let Err(error) = work.await {
                    tracing::warn!(event_id = %key, %error, "dedup store failed to {what} a dropped request's event");
                }
            });
        }
        Err(_) => tracing::warn!(
            event_id = %key,
            "no tokio runtime to {what} a dropped request's event: it stays in flight until the in-flight TTL"
        ),
    }
}
