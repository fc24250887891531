//! The refresh task of a discovered key set (feature `jwks`), and the refreshes requests
//! ask for.
//!
//! The task (tokio) starts on first use inside a runtime and ends when the last
//! [`DtKeys`](super::DtKeys) clone is dropped. It refreshes when the key set is due (see
//! [`refresh`](super::refresh) for the times) and when a request asks:
//! - a `kid` missing from the set triggers a refresh unless one started less than 30 s
//!   ago; every request that meets a missing `kid` while a refresh is under way joins it
//!   (single flight);
//! - before any key set was obtained, a request always triggers or joins one, whatever the
//!   30 s limit;
//! - a request waits for it 5 s at most (the refresh's budget).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use tokio::runtime::Handle;
use tokio::task::AbortHandle;
use tokio::time::{timeout_at, Instant};

use super::lock;
use super::refresh::Shared;
use super::status::KeyStatus;
use super::{Inner, KeyWait};

/// Unknown `kid`s trigger at most one refresh in this time.
const KID_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// The fetching side of a discovered key set.
pub(super) struct Remote {
    shared: Arc<Shared>,
    /// The refresh task, once started.
    task: Mutex<Option<AbortHandle>>,
}

impl Drop for Remote {
    fn drop(&mut self) {
        // The last handle is gone: end the task now rather than at its next wake-up.
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

impl Remote {
    /// The refreshes of `shared`, done by a task that is not started yet.
    pub(super) fn new(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
            task: Mutex::new(None),
        }
    }

    /// Start the refresh task if it is not running and a tokio runtime is at hand.
    pub(super) fn start(&self, inner: &Arc<Inner>) {
        if self.shared.running.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = Handle::try_current() else {
            return;
        };
        let mut task = lock(&self.task);
        if self.shared.running.load(Ordering::Acquire) {
            return;
        }
        {
            // The first refresh is due at once: requests join it.
            let mut state = lock(&self.shared.state);
            state.busy = true;
            state.requested = false;
        }
        self.shared.running.store(true, Ordering::Release);
        let running = Running(Arc::clone(&self.shared));
        let join = runtime.spawn(refresh_task(Arc::downgrade(inner), running));
        *task = Some(join.abort_handle());
    }

    /// The issuer a discovery document named, when it is not the URL's.
    pub(super) fn document_issuer(&self) -> Option<&Arc<str>> {
        self.shared.document_issuer()
    }

    /// The refreshes' part of `status`.
    pub(super) fn fill_status(&self, status: &mut KeyStatus) {
        let state = lock(&self.shared.state);
        status.last_refresh = state.last_refresh;
        status.last_failure = state.last_failure.clone();
        status.consecutive_failures = state.failures;
        status.next_refresh = state
            .next_due
            .filter(|_| self.shared.running.load(Ordering::Acquire))
            .map(|due| SystemTime::now() + due.saturating_duration_since(Instant::now()));
    }

    /// Ask for a refresh because a `kid` is unknown (or no key set is loaded), within the
    /// limits; `None` when none will come.
    pub(super) fn refresh_for_unknown_kid(&self, inner: &Arc<Inner>) -> Option<KeyWait> {
        self.start(inner);
        if !self.shared.running.load(Ordering::Acquire) {
            // No runtime: nothing will refresh.
            return None;
        }
        let loaded = inner
            .snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .loaded;
        let now = Instant::now();
        let target = {
            let mut state = lock(&self.shared.state);
            if !state.busy {
                let recent = state
                    .last_start
                    .is_some_and(|start| now.duration_since(start) < KID_REFRESH_INTERVAL);
                if loaded && recent {
                    return None;
                }
                state.busy = true;
                state.requested = true;
                self.shared.kick.notify_one();
            }
            state.generation + 1
        };
        let mut done = self.shared.done.subscribe();
        let deadline = now + self.shared.budget;
        Some(Box::pin(async move {
            let wait = async {
                while *done.borrow_and_update() < target {
                    if done.changed().await.is_err() {
                        return;
                    }
                }
            };
            let _ = timeout_at(deadline, wait).await;
        }))
    }
}

/// Marks the task as not running when its future is dropped, however that happens.
struct Running(Arc<Shared>);

impl Drop for Running {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.busy = false;
        state.requested = false;
        self.0.running.store(false, Ordering::Release);
    }
}

/// The refresh task: holds only a `Weak` on the handle, so it ends with the last clone.
async fn refresh_task(inner: Weak<Inner>, running: Running) {
    let shared = &*running.0;
    // The first refresh is due at once.
    let mut next = None;
    loop {
        if let Some(next) = next {
            let kicked = timeout_at(next, shared.kick.notified()).await.is_ok();
            if kicked && !lock(&shared.state).requested {
                // A wake-up left over from a request that a refresh already served.
                continue;
            }
        }
        if inner.strong_count() == 0 {
            return;
        }
        {
            let mut state = lock(&shared.state);
            state.busy = true;
            state.requested = false;
            state.last_start = Some(Instant::now());
        }
        let outcome = shared.refresh().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        next = Some(Instant::now() + shared.finish(&inner, outcome));
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{discover, settle, state, wait, Fake, Mode};
    use super::*;

    /// Outside a runtime nothing starts, and nothing waits.
    #[test]
    fn no_runtime_no_fetch() {
        let fake = Fake::new(&["k1"]);
        let keys = discover(&fake);
        assert!(!keys.ready());
        assert!(keys.refresh_for_unknown_kid().is_none());
        assert_eq!(state(&keys, "k1"), "unavailable");
        assert_eq!(fake.discovery_calls(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn warms_at_construction_without_blocking() {
        let fake = Fake::new(&["k1", "k2"]);
        let keys = discover(&fake);
        assert!(!keys.ready());
        assert_eq!(state(&keys, "k1"), "unavailable");
        settle().await;
        assert!(keys.ready());
        assert_eq!(keys.kids(), ["k1", "k2"]);
        assert_eq!(state(&keys, "k1"), "found");
        assert_eq!(state(&keys, "k3"), "unknown");
        assert_eq!((fake.discovery_calls(), fake.jwks_calls()), (1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_thousand_unknown_kids_one_fetch() {
        let fake = Fake::new(&["k1"]);
        let keys = discover(&fake);
        // Before the first key set: they all join the first refresh.
        let waits: Vec<_> = (0..1000)
            .map(|_| keys.refresh_for_unknown_kid().expect("a wait"))
            .collect();
        futures_util::future::join_all(waits).await;
        assert!(keys.ready());
        assert_eq!(fake.jwks_calls(), 1);

        tokio::time::sleep(Duration::from_secs(31)).await;
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let keys = keys.clone();
                tokio::spawn(async move {
                    let wait = keys.refresh_for_unknown_kid().expect("a wait");
                    wait.await;
                    state(&keys, "k9")
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), "unknown");
        }
        assert_eq!(fake.jwks_calls(), 2);
        assert_eq!(fake.discovery_calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_kids_refresh_once_per_30_s() {
        let fake = Fake::new(&["k1"]);
        let keys = discover(&fake);
        settle().await;
        assert_eq!(fake.jwks_calls(), 1);
        // Within 30 s of the last refresh: no fetch.
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert!(keys.refresh_for_unknown_kid().is_none());
        assert_eq!(fake.jwks_calls(), 1);
        tokio::time::sleep(Duration::from_secs(1)).await;
        wait(keys.refresh_for_unknown_kid()).await;
        assert_eq!(fake.jwks_calls(), 2);
        // A second unknown kid just after: none.
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(keys.refresh_for_unknown_kid().is_none());
        assert_eq!(state(&keys, "k9"), "unknown");
        tokio::time::sleep(Duration::from_secs(20)).await;
        wait(keys.refresh_for_unknown_kid()).await;
        assert_eq!(fake.jwks_calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_key_set_every_request_fetches() {
        let fake = Fake::new(&["k1"]);
        fake.set_mode(Mode::Fail);
        let keys = discover(&fake);
        settle().await;
        assert_eq!(fake.discovery_calls(), 1);
        // Within 30 s of a failed refresh, and before the 1 s retry: still a fetch.
        for calls in 2..5 {
            wait(keys.refresh_for_unknown_kid()).await;
            assert_eq!(fake.discovery_calls(), calls);
            assert_eq!(state(&keys, "k1"), "unavailable");
        }
        fake.set_mode(Mode::Ok);
        wait(keys.refresh_for_unknown_kid()).await;
        assert!(keys.ready());
        assert_eq!(state(&keys, "k1"), "found");
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_ends_with_the_last_clone() {
        let fake = Fake::new(&["k1"]);
        *lock(&fake.jwks_max_age) = Some(Duration::from_secs(60));
        let keys = discover(&fake);
        let clone = keys.clone();
        settle().await;
        drop(keys);
        tokio::time::sleep(Duration::from_secs(130)).await;
        assert_eq!(fake.jwks_calls(), 3, "the clone keeps it refreshing");
        assert_eq!(Arc::strong_count(&fake), 2, "the task holds the fetcher");
        drop(clone);
        settle().await;
        assert_eq!(Arc::strong_count(&fake), 1, "the task is gone");
        tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
        assert_eq!(fake.jwks_calls(), 3);
    }

    /// A key set used under one runtime and then another (one per test, say): the task
    /// died with the first and starts again under the second.
    #[test]
    fn the_task_restarts_under_a_new_runtime() {
        let fake = Fake::new(&["k1"]);
        let keys = discover(&fake);
        for calls in 1..3 {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            runtime.block_on(async {
                assert!(keys.refresh_for_unknown_kid().is_some());
                settle().await;
                assert!(keys.ready());
            });
            drop(runtime);
            assert_eq!(fake.jwks_calls(), calls);
        }
    }
}
