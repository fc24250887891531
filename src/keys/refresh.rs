//! One refresh of a discovered key set (feature `jwks`), the state the refreshes keep, and
//! when the next one is due.
//!
//! - One refresh is a GET of the discovery document (only when its own `max-age` expired,
//!   or after a failed refresh) and a GET of its `jwks_uri`, within 5 s in all.
//! - The key set is refreshed after its `Cache-Control: max-age`, clamped to 1 min ..
//!   24 h; 15 min without one.
//! - After a failed refresh, the next try comes after 1 s, doubling up to 60 s. The last
//!   good key set is kept meanwhile, but a `kid` it lacks is then
//!   [`Lookup::Unavailable`](super::Lookup::Unavailable), not unknown: the keys may have
//!   rotated.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::Uri;
use tokio::sync::{watch, Notify};
use tokio::time::{timeout, Instant};

use super::discovery::parse_discovery;
use super::fetch::{loggable, FetchError, FetchJwks, Fetched};
use super::probe::{KeyProbe, ProbedFetch};
use super::status::{FailureClass, LastFailure, LastRefresh};
use super::{lock, parse_jwks_entries, EsKey, Inner, KeysError, Snapshot};

/// A key set is refreshed this long after it was fetched when it has no `max-age`.
const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);
/// The bounds of a `max-age`.
const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The first retry after a failure, doubled after each further failure up to the maximum.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// What a successful refresh brings: the key set, and how long it stays fresh.
type Refreshed = (HashMap<Box<str>, EsKey>, Duration);

/// What the refresh task shares with the handle and with waiting requests.
pub(super) struct Shared {
    discovery_url: Uri,
    /// The issuer the discovery URL names.
    issuer: String,
    /// The same with one trailing `/`: the issuer once a discovery document says so.
    issuer_slash: Arc<str>,
    /// The last discovery document read said `issuer_slash`.
    document_slash: AtomicBool,
    fetcher: Arc<dyn FetchJwks>,
    /// The time one refresh, and a request's wait for it, may take.
    pub(super) budget: Duration,
    pub(super) state: Mutex<State>,
    /// The task is running (cleared when its future is dropped: finished, aborted, or its
    /// runtime shut down).
    pub(super) running: AtomicBool,
    /// Wakes the task for a refresh that a request asked for.
    pub(super) kick: Notify,
    /// The number of refreshes done (successful or not), for waiting requests.
    pub(super) done: watch::Sender<u64>,
}

/// Where the refreshes stand.
#[derive(Default)]
pub(super) struct State {
    /// A refresh is asked for or running: a request joins it.
    pub(super) busy: bool,
    /// A request asked for a refresh that the task has not started yet.
    pub(super) requested: bool,
    /// When the last refresh started.
    pub(super) last_start: Option<Instant>,
    /// Refreshes done (as `done`).
    pub(super) generation: u64,
    /// The discovery document's `jwks_uri`, while its `max-age` lasts.
    discovery: Option<(String, Instant)>,
    /// Failed refreshes in a row.
    pub(super) failures: u32,
    /// The last refresh that ended.
    pub(super) last_refresh: Option<LastRefresh>,
    /// The last refresh that failed.
    pub(super) last_failure: Option<LastFailure>,
    /// When the task means to refresh next.
    pub(super) next_due: Option<Instant>,
}

/// Why a refresh failed, for the log, the status and the metric.
pub(super) struct Failure {
    pub(super) class: FailureClass,
    pub(super) reason: String,
}

impl Failure {
    fn new(class: FailureClass, reason: impl Into<String>) -> Self {
        Self {
            class,
            reason: reason.into(),
        }
    }

    /// A failure of a fetch, its reason after `what`.
    fn fetch(what: &str, error: &FetchError) -> Self {
        Self::new(error.class(), format!("{what}: {error}"))
    }

    /// A failure on a document, its reason after `what`.
    fn document(what: &str, error: &KeysError) -> Self {
        Self::new(error.class(), format!("{what}: {error}"))
    }
}

impl Shared {
    /// The refreshes of `issuer`'s keys, found through `discovery_url` with `fetcher`; one
    /// refresh, and a request's wait for it, take `budget` at most.
    pub(super) fn new(
        discovery_url: Uri,
        issuer: String,
        fetcher: Arc<dyn FetchJwks>,
        budget: Duration,
    ) -> Self {
        Self {
            discovery_url,
            issuer_slash: format!("{issuer}/").into(),
            document_slash: AtomicBool::new(false),
            issuer,
            fetcher,
            budget,
            state: Mutex::new(State::default()),
            running: AtomicBool::new(false),
            kick: Notify::new(),
            done: watch::channel(0).0,
        }
    }

    /// The issuer the discovery URL names.
    pub(super) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The discovery URL.
    pub(super) fn discovery_url(&self) -> &Uri {
        &self.discovery_url
    }

    /// One refresh within the budget: the key set and how long it stays fresh.
    pub(super) async fn refresh(&self) -> Result<Refreshed, Failure> {
        self.refresh_traced(&mut KeyProbe::default()).await
    }

    /// [`refresh`](Self::refresh), noting in `probe` what it sees as it goes (the GETs,
    /// the discovery document, each key set entry): what [`KeyProbe`] reports.
    pub(super) async fn refresh_traced(&self, probe: &mut KeyProbe) -> Result<Refreshed, Failure> {
        // What the refresh is waiting for, so that the budget's timeout names it as the
        // GET's own timeout does (both are 5 s: either may fire first).
        let step = Mutex::new("discovery document".to_owned());
        match timeout(self.budget, self.fetch_keys(probe, &step)).await {
            Ok(Ok(keys)) => Ok(keys),
            Ok(Err(failure)) => {
                // The key set may have moved: read the discovery document again next time.
                lock(&self.state).discovery = None;
                Err(failure)
            }
            Err(_) => {
                lock(&self.state).discovery = None;
                probe.stopped();
                let step = step
                    .into_inner()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                Err(Failure::new(
                    FailureClass::Timeout,
                    format!("{step}: no answer within {:?}", self.budget),
                ))
            }
        }
    }

    async fn fetch_keys(
        &self,
        probe: &mut KeyProbe,
        step: &Mutex<String>,
    ) -> Result<Refreshed, Failure> {
        let now = Instant::now();
        let cached = lock(&self.state)
            .discovery
            .as_ref()
            .filter(|(_, expires)| *expires > now)
            .map(|(jwks_uri, _)| jwks_uri.clone());
        let jwks_uri = match cached {
            Some(jwks_uri) => jwks_uri,
            None => self.discover(probe).await?,
        };
        let uri = jwks_uri.parse().map(|u| loggable(&u)).unwrap_or_default();
        *lock(step) = format!("key set {uri}");
        let fetched = self
            .get(&jwks_uri, &uri, &mut probe.jwks)
            .await
            .map_err(|e| Failure::fetch(&format!("key set {uri}"), &e))?;
        let (keys, entries) =
            parse_jwks_entries(&fetched.body).map_err(|e| Failure::document("key set", &e))?;
        probe.keys = entries;
        if keys.is_empty() {
            return Err(Failure::new(
                FailureClass::NoUsableKey,
                "key set: no usable key (EC P-256 ES256 signing key with a kid)",
            ));
        }
        Ok((keys, ttl(fetched.max_age)))
    }

    /// One GET with the fetcher, noted in `seen` (`shown`: the URL for a report).
    async fn get(
        &self,
        url: &str,
        shown: &str,
        seen: &mut Option<ProbedFetch>,
    ) -> Result<Fetched, FetchError> {
        *seen = Some(ProbedFetch::started(shown.to_owned()));
        let result = self.fetcher.fetch(url).await;
        if let (Some(seen), Ok(fetched)) = (seen.as_mut(), &result) {
            seen.answered(fetched, ttl(fetched.max_age));
        } else if let Some(seen) = seen.as_mut() {
            seen.stopped();
        }
        result
    }

    /// Read the discovery document: its `jwks_uri`, also kept while its `max-age` lasts.
    async fn discover(&self, probe: &mut KeyProbe) -> Result<String, Failure> {
        let url = self.discovery_url.to_string();
        let fetched = self
            .get(&url, &loggable(&self.discovery_url), &mut probe.discovery)
            .await
            .map_err(|e| Failure::fetch("discovery document", &e))?;
        let accepted = parse_discovery(&fetched.body)
            .and_then(|document| {
                probe.saw_document(&document);
                document.jwks_uri_for(&self.issuer)
            })
            .map_err(|e| Failure::document("discovery document", &e))?;
        self.document_slash.store(accepted.slash, Ordering::Release);
        let jwks_uri = accepted.jwks_uri;
        let expires = Instant::now() + ttl(fetched.max_age);
        lock(&self.state).discovery = Some((jwks_uri.clone(), expires));
        Ok(jwks_uri)
    }

    /// The issuer a discovery document named, when it is not the URL's (one trailing `/`
    /// more).
    pub(super) fn document_issuer(&self) -> Option<&Arc<str>> {
        self.document_slash
            .load(Ordering::Acquire)
            .then_some(&self.issuer_slash)
    }

    /// Publish a refresh's outcome; the time until the next refresh.
    pub(super) fn finish(&self, inner: &Inner, outcome: Result<Refreshed, Failure>) -> Duration {
        let (snapshot, delay, label) = match outcome {
            Ok((keys, ttl)) => {
                tracing::debug!(
                    issuer = %self.issuer,
                    keys = keys.len(),
                    next_refresh = ?ttl,
                    "DT's key set refreshed"
                );
                {
                    let mut state = lock(&self.state);
                    state.failures = 0;
                    state.last_refresh = Some(LastRefresh {
                        at: SystemTime::now(),
                        failure: None,
                    });
                }
                #[cfg(feature = "metrics")]
                metrics::gauge!(
                    "dt_signature_jwks_last_success_timestamp_seconds",
                    "issuer" => self.issuer.clone()
                )
                .set(
                    SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64()),
                );
                let snapshot = Snapshot {
                    keys,
                    loaded: true,
                    last_refresh_ok: true,
                };
                (snapshot, ttl, "ok")
            }
            Err(failure) => {
                let failures = {
                    let mut state = lock(&self.state);
                    let at = SystemTime::now();
                    state.failures = state.failures.saturating_add(1);
                    state.last_refresh = Some(LastRefresh {
                        at,
                        failure: Some(failure.class),
                    });
                    state.last_failure = Some(LastFailure {
                        at,
                        class: failure.class,
                        reason: failure.reason.clone(),
                    });
                    state.failures
                };
                let delay = backoff(failures);
                let previous = inner.snapshot.read().unwrap_or_else(|e| e.into_inner());
                // Before any set was loaded there is none to keep (#25).
                let kept = if previous.loaded {
                    "the last good set is kept"
                } else {
                    "no key set yet"
                };
                tracing::warn!(
                    discovery = %loggable(&self.discovery_url),
                    class = %failure.class,
                    reason = %failure.reason,
                    failures,
                    retry_in = ?delay,
                    kept_keys = previous.keys.len(),
                    "refreshing DT's key set failed; {kept}"
                );
                let snapshot = Snapshot {
                    keys: previous.keys.clone(),
                    loaded: previous.loaded,
                    last_refresh_ok: false,
                };
                (snapshot, delay, failure.class.code())
            }
        };
        #[cfg(feature = "metrics")]
        metrics::counter!("dt_signature_jwks_fetches_total", "outcome" => label).increment(1);
        #[cfg(not(feature = "metrics"))]
        let _ = label;
        *inner.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
        let generation = {
            let mut state = lock(&self.state);
            state.next_due = Some(Instant::now() + delay);
            state.busy = false;
            state.generation += 1;
            state.generation
        };
        self.done.send_replace(generation);
        delay
    }
}

/// How long a document stays fresh, from its `max-age`.
fn ttl(max_age: Option<Duration>) -> Duration {
    max_age.map_or(DEFAULT_TTL, |max_age| max_age.clamp(MIN_TTL, MAX_TTL))
}

/// The wait before the next try after `failures` failed refreshes in a row.
pub(super) fn backoff(failures: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_RETRY)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::super::fake::{discover, jwk, settle, state, wait, Fake, Mode, ISSUER};
    use super::super::fetch::BUDGET;
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_from_1_s_to_60_s() {
        let fake = Fake::new(&["k1"]);
        fake.set_mode(Mode::Fail);
        let _keys = discover(&fake);
        tokio::time::sleep(Duration::from_secs(250)).await;
        assert_eq!(fake.intervals(), [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        // A success resets the backoff.
        fake.set_mode(Mode::Ok);
        *lock(&fake.jwks_max_age) = Some(Duration::from_secs(120));
        tokio::time::sleep(Duration::from_secs(60)).await;
        fake.set_mode(Mode::Fail);
        lock(&fake.times).clear();
        tokio::time::sleep(Duration::from_secs(125)).await;
        assert_eq!(fake.intervals(), [1, 2, 4]);
    }

    /// Changed by #16: a document issuer with one trailing `/` more than the URL's used to
    /// fail the refresh; it is accepted now (with a warning), and any other difference
    /// still fails it.
    #[tokio::test(start_paused = true)]
    async fn issuer_mismatch_fails_the_refresh() {
        for other in [
            format!("{ISSUER}//"),
            format!("{ISSUER}x"),
            "https://id.example/DC".into(),
        ] {
            let fake = Fake::new(&["k1"]);
            *lock(&fake.issuer) = other.clone();
            let keys = discover(&fake);
            wait(keys.refresh_for_unknown_kid()).await;
            assert!(!keys.ready(), "{other}");
            assert_eq!(state(&keys, "k1"), "unavailable");
            assert_eq!(fake.jwks_calls(), 0);
            assert_eq!(keys.issuer(), ISSUER);
            let failure = keys.status().last_failure.unwrap();
            assert_eq!(failure.class, FailureClass::IssuerMismatch, "{other}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_trailing_slash_on_the_document_issuer_is_accepted() {
        let fake = Fake::new(&["k1"]);
        *lock(&fake.issuer) = format!("{ISSUER}/");
        let keys = discover(&fake);
        assert_eq!(
            keys.issuer(),
            ISSUER,
            "before the first document: the URL's"
        );
        wait(keys.refresh_for_unknown_kid()).await;
        assert!(keys.ready());
        assert_eq!(keys.issuer(), format!("{ISSUER}/"), "after: the document's");
        assert_eq!(&*keys.shared_issuer(), keys.issuer());
        assert_eq!(keys.status().issuer, keys.issuer());
    }

    #[tokio::test(start_paused = true)]
    async fn status_follows_the_refreshes() {
        let fake = Fake::new(&["k2", "k1"]);
        let keys = discover(&fake);
        let before = keys.status();
        assert!(!before.loaded && before.last_refresh.is_none() && before.kids.is_empty());
        settle().await;
        let ok = keys.status();
        assert_eq!(ok.kids, ["k1", "k2"]);
        assert!(ok.last_refresh.is_some_and(|r| r.ok()));
        assert_eq!((ok.consecutive_failures, ok.last_failure), (0, None));
        assert!(ok.next_refresh.is_some());
        for (mode, class, failures) in [
            (Mode::Garbage, FailureClass::NotJson, 1),
            (Mode::Fail, FailureClass::Other, 2),
        ] {
            fake.set_mode(mode);
            // The retries after the first failure (1 s, 2 s, …) come under this mode too.
            tokio::time::sleep(Duration::from_secs(31)).await;
            if let Some(refresh) = keys.refresh_for_unknown_kid() {
                refresh.await;
            }
            let status = keys.status();
            assert_eq!(status.kids, ["k1", "k2"], "{mode:?}");
            assert!(status.consecutive_failures >= failures, "{mode:?}");
            let failures = status.consecutive_failures;
            assert_eq!(status.last_refresh.unwrap().failure, Some(class));
            let failure = status.last_failure.unwrap();
            assert_eq!(failure.class, class);
            assert!(
                !failure.reason.contains("not json"),
                "no body: {}",
                failure.reason
            );
            let debug = format!("{keys:?}");
            assert!(
                debug.contains(&format!("consecutive_failures: {failures}")),
                "{debug}"
            );
        }
        fake.set_mode(Mode::Ok);
        fake.set_jwks(&["k3"]);
        tokio::time::sleep(Duration::from_secs(61)).await;
        let status = keys.status();
        assert_eq!(status.kids, ["k3"]);
        assert_eq!(status.consecutive_failures, 0);
        assert_eq!(status.last_failure.unwrap().class, FailureClass::Other);
    }

    #[tokio::test(start_paused = true)]
    async fn max_age_is_clamped() {
        for (max_age, interval) in [
            (Some(Duration::ZERO), 60),
            (Some(Duration::from_secs(90)), 90),
            (Some(Duration::from_secs(10 * 24 * 3600)), 24 * 3600),
            (None, 15 * 60),
        ] {
            let fake = Fake::new(&["k1"]);
            *lock(&fake.jwks_max_age) = max_age;
            let _keys = discover(&fake);
            tokio::time::sleep(Duration::from_secs(2 * interval + 1)).await;
            assert_eq!(fake.intervals(), [interval, interval], "{max_age:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn discovery_is_read_again_after_its_max_age() {
        let fake = Fake::new(&["k1"]);
        *lock(&fake.discovery_max_age) = Some(Duration::from_secs(3600));
        *lock(&fake.jwks_max_age) = Some(Duration::from_secs(60));
        let _keys = discover(&fake);
        tokio::time::sleep(Duration::from_secs(3590)).await;
        assert_eq!((fake.discovery_calls(), fake.jwks_calls()), (1, 60));
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!((fake.discovery_calls(), fake.jwks_calls()), (2, 61));
    }

    #[tokio::test(start_paused = true)]
    async fn rotation() {
        let fake = Fake::new(&["old"]);
        let keys = discover(&fake);
        settle().await;
        assert_eq!(keys.kids(), ["old"]);
        fake.set_jwks(&["new"]);
        tokio::time::sleep(Duration::from_secs(30)).await;
        wait(keys.refresh_for_unknown_kid()).await;
        assert_eq!(keys.kids(), ["new"]);
        assert_eq!(state(&keys, "new"), "found");
        assert_eq!(state(&keys, "old"), "unknown");
    }

    #[tokio::test(start_paused = true)]
    async fn the_last_good_set_is_kept_on_failure() {
        let fake = Fake::new(&["k1"]);
        let keys = discover(&fake);
        settle().await;
        let rsa = r#"{"kty":"RSA","kid":"k2","n":"AQAB","e":"AQAB"}"#;
        for (mode, jwks, class) in [
            (Mode::Fail, None, FailureClass::Other),
            (Mode::Garbage, None, FailureClass::NotJson),
            // One kid on two different keys: the set is refused whole.
            (
                Mode::Ok,
                Some(format!(r#"{{"keys":[{},{}]}}"#, jwk("k2"), jwk("k2"))),
                FailureClass::Other,
            ),
            // No usable key (#16): a failed refresh, not an empty set loaded.
            (
                Mode::Ok,
                Some(r#"{"keys":[]}"#.to_owned()),
                FailureClass::NoUsableKey,
            ),
            (
                Mode::Ok,
                Some(format!(r#"{{"keys":[{rsa},"k2"]}}"#)),
                FailureClass::NoUsableKey,
            ),
        ] {
            fake.set_mode(mode);
            if let Some(jwks) = jwks {
                *lock(&fake.jwks) = jwks;
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
            wait(keys.refresh_for_unknown_kid()).await;
            assert!(keys.ready(), "{mode:?} {class}");
            assert_eq!(keys.kids(), ["k1"], "{mode:?} {class}");
            assert_eq!(state(&keys, "k1"), "found", "{mode:?} {class}");
            // The keys may have rotated: a kid not in the old set cannot be judged.
            assert_eq!(state(&keys, "k2"), "unavailable", "{mode:?} {class}");
            let status = keys.status();
            assert_eq!(status.last_refresh.unwrap().failure, Some(class));
            assert_eq!(status.last_failure.unwrap().class, class);
            assert_eq!(status.kids, ["k1"]);
            fake.set_mode(Mode::Ok);
            fake.set_jwks(&["k1"]);
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert_eq!(state(&keys, "k2"), "unknown", "{mode:?} {class}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_fetch_is_waited_for_5_s_at_most() {
        let fake = Fake::new(&["k1"]);
        fake.set_mode(Mode::Stall);
        let keys = discover(&fake);
        let start = Instant::now();
        wait(keys.refresh_for_unknown_kid()).await;
        assert!(start.elapsed() <= BUDGET, "{:?}", start.elapsed());
        assert_eq!(state(&keys, "k1"), "unavailable");
        // The budget's timeout names what it waited for, as the GET's own 5 s timeout does
        // (the two raced: the reason read one way or the other under load).
        settle().await;
        let failure = keys.status().last_failure.unwrap();
        assert_eq!(failure.class, FailureClass::Timeout);
        assert_eq!(failure.reason, "discovery document: no answer within 5s");
        // The stalled refresh counts as failed, and is retried.
        tokio::time::sleep(Duration::from_secs(1)).await;
        fake.set_mode(Mode::Ok);
        let start = Instant::now();
        wait(keys.refresh_for_unknown_kid()).await;
        assert!(start.elapsed() <= BUDGET);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(keys.ready());
    }

    #[cfg(feature = "metrics")]
    #[test]
    fn refreshes_are_counted_by_outcome() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};

        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let fake = Fake::new(&["k1"]);
        metrics::with_local_recorder(&recorder, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap();
            runtime.block_on(async {
                let keys = discover(&fake);
                settle().await;
                fake.set_mode(Mode::Fail);
                tokio::time::sleep(Duration::from_secs(30)).await;
                wait(keys.refresh_for_unknown_kid()).await;
                fake.set_mode(Mode::Stall);
                tokio::time::sleep(Duration::from_secs(1)).await;
                tokio::time::sleep(BUDGET + Duration::from_millis(500)).await;
            });
        });
        let mut counts: Vec<(String, u64)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(key, ..)| key.key().name() == "dt_signature_jwks_fetches_total")
            .map(|(key, _, _, value)| {
                let outcome = key.key().labels().next().unwrap().value().to_owned();
                let DebugValue::Counter(count) = value else {
                    panic!("not a counter")
                };
                (outcome, count)
            })
            .collect();
        counts.sort();
        assert_eq!(
            counts,
            [("ok".into(), 1), ("other".into(), 1), ("timeout".into(), 1)]
        );
    }
}
