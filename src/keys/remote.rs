//! DT's keys through OpenID Connect discovery, kept fresh by a background task (feature
//! `jwks`).
//!
//! The task (tokio) starts on first use inside a runtime and ends when the last [`DtKeys`]
//! clone is dropped. Its rules:
//! - one refresh = a GET of the discovery document (only when its own `max-age` expired,
//!   or after a failed refresh) and a GET of its `jwks_uri`, within 5 s in all;
//! - the key set is refreshed after its `Cache-Control: max-age`, clamped to 1 min ..
//!   24 h, 15 min without one;
//! - after a failed refresh, it retries after 1 s, doubling up to 60 s; the last good key
//!   set is kept meanwhile (a `kid` it lacks is then [`Lookup::Unavailable`], not
//!   unknown);
//! - a `kid` missing from the set triggers a refresh unless one started less than 30 s
//!   ago; every request that meets a missing `kid` while a refresh is under way joins it
//!   (single flight). Before any key set was obtained, a request always triggers or joins
//!   one, whatever the 30 s limit. A request waits for it 5 s at most.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use http::Uri;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use serde::Deserialize;
use tokio::runtime::Handle;
use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;
use tokio::time::{timeout, timeout_at, Instant};

use super::fetch::{check_url, loggable, FetchJwks, HttpsFetcher, TlsOptions};
use super::{from_json_object, parse_jwks, DtKeys, EsKey, Inner, KeyWait, KeysError, Snapshot};

/// The path an OpenID Connect discovery URL ends with (OIDC Discovery 1.0, 4).
const WELL_KNOWN: &str = "/.well-known/openid-configuration";
/// The time a refresh (discovery and key set) may take, and a request may wait for one.
const BUDGET: Duration = Duration::from_secs(5);
/// A key set is refreshed this long after it was fetched when it has no `max-age`.
const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);
/// The bounds of a `max-age`.
const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Unknown `kid`s trigger at most one refresh in this time.
const KID_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// The first retry after a failure, doubled after each further failure up to the maximum.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

impl DtKeys {
    /// The keys of the issuer whose OpenID Connect discovery document is at
    /// `discovery_url`, fetched with the default HTTPS client and kept fresh in the
    /// background (feature `jwks`). Same as `DtKeys::discovery(discovery_url).build()`:
    /// see [`DiscoveryBuilder`] for the options and the rules.
    ///
    /// `discovery_url` must end in `/.well-known/openid-configuration`; the issuer is the
    /// URL without that suffix (OpenID Connect Discovery 1.0, 4.3), and the document's
    /// `issuer` must equal it byte for byte. For DT:
    /// `https://identity.disruptive-technologies.com/data-connector/.well-known/openid-configuration`.
    ///
    /// Nothing is fetched here: inside a tokio runtime the refresh task starts at once (the
    /// cache warms without blocking), else on the first use inside one.
    /// [`ready`](Self::ready) says when the first key set is in.
    ///
    /// # Errors
    /// The URL is not `https` (plain `http` is accepted for loopback hosts only), lacks the
    /// suffix, has a query, a fragment or credentials, or no rustls crypto provider is at
    /// hand (see [`DiscoveryBuilder::crypto_provider`]).
    ///
    /// ```no_run
    /// use tower_dt_signature::keys::DtKeys;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_dt_signature::keys::KeysError> {
    /// let keys = DtKeys::discover(
    ///     "https://identity.disruptive-technologies.com/data-connector/.well-known/openid-configuration",
    /// )?;
    /// assert_eq!(keys.issuer(), "https://identity.disruptive-technologies.com/data-connector");
    /// # Ok(())
    /// # }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
    pub fn discover(discovery_url: impl Into<String>) -> Result<Self, KeysError> {
        Self::discovery(discovery_url).build()
    }

    /// A builder for [`discover`](Self::discover) with options: your own HTTP client,
    /// extra root certificates, the rustls crypto provider (feature `jwks`).
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
    pub fn discovery(discovery_url: impl Into<String>) -> DiscoveryBuilder {
        DiscoveryBuilder {
            url: discovery_url.into(),
            fetcher: None,
            extra_roots: Vec::new(),
            provider: None,
            budget: BUDGET,
        }
    }
}

/// Options of a discovered key set: built by [`DtKeys::discovery`].
///
/// The default HTTPS client checks certificates against the system's roots
/// (rustls-platform-verifier) plus any [`extra_root_certificate`](Self::extra_root_certificate),
/// honours `HTTPS_PROXY` and `NO_PROXY` (an `http://` proxy, through `CONNECT`; never for
/// loopback hosts), follows no redirect and reads 64 KiB at most.
///
/// ```no_run
/// use tower_dt_signature::keys::DtKeys;
///
/// # fn main() -> Result<(), tower_dt_signature::keys::KeysError> {
/// let keys = DtKeys::discovery("https://identity.example/dc/.well-known/openid-configuration")
///     .extra_root_certificate(std::fs::read("/etc/my-ca.pem").unwrap())
///     .build()?;
/// # Ok(())
/// # }
/// ```
pub struct DiscoveryBuilder {
    url: String,
    fetcher: Option<Arc<dyn FetchJwks>>,
    extra_roots: Vec<Vec<u8>>,
    provider: Option<Arc<CryptoProvider>>,
    budget: Duration,
}

impl fmt::Debug for DiscoveryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscoveryBuilder")
            .field("url", &self.url.parse::<Uri>().map(|u| loggable(&u)).ok())
            .field("custom_fetcher", &self.fetcher.is_some())
            .field("extra_roots", &self.extra_roots.len())
            .field("crypto_provider", &self.provider.is_some())
            .finish_non_exhaustive()
    }
}

impl DiscoveryBuilder {
    /// Fetch with `fetcher` instead of the default HTTPS client (which the TLS options
    /// below then do not concern). Default: the built-in client.
    pub fn fetcher(mut self, fetcher: impl FetchJwks) -> Self {
        self.fetcher = Some(Arc::new(fetcher));
        self
    }

    /// Also trust this root certificate (DER, or PEM with one or more certificates), e.g.
    /// a company CA in front of the identity service. Default: the system's roots only.
    pub fn extra_root_certificate(mut self, certificate: impl AsRef<[u8]>) -> Self {
        self.extra_roots.push(certificate.as_ref().to_vec());
        self
    }

    /// The rustls crypto provider for TLS. Default: the process default if the
    /// application installed one (`CryptoProvider::install_default`), else a private
    /// graviola provider on x86_64 and aarch64 CPUs that support it; elsewhere
    /// [`build`](Self::build) fails unless one is installed or given here. This crate
    /// never installs a provider.
    pub fn crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// The time one refresh, and a request's wait for it, may take (5 s outside tests).
    #[cfg(test)]
    pub(crate) fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// The key set: see [`DtKeys::discover`].
    ///
    /// # Errors
    /// See [`DtKeys::discover`]; also an extra root certificate that is neither DER nor
    /// PEM.
    pub fn build(self) -> Result<DtKeys, KeysError> {
        let (discovery_url, issuer) = discovery_issuer(&self.url)?;
        let fetcher = match self.fetcher {
            Some(fetcher) => fetcher,
            None => {
                let mut extra_roots = Vec::new();
                for certificate in &self.extra_roots {
                    extra_roots.extend(certificates(certificate)?);
                }
                let options = TlsOptions {
                    extra_roots,
                    provider: self.provider,
                };
                Arc::new(HttpsFetcher::new(options, self.budget)?)
            }
        };
        let remote = Remote {
            shared: Arc::new(Shared {
                discovery_url,
                issuer: issuer.clone(),
                fetcher,
                budget: self.budget,
                state: Mutex::new(State::default()),
                running: AtomicBool::new(false),
                kick: Notify::new(),
                done: watch::channel(0).0,
            }),
            task: Mutex::new(None),
        };
        let inner = Arc::new(Inner {
            issuer: issuer.into(),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            remote: Some(remote),
        });
        if let Some(remote) = &inner.remote {
            remote.start(&inner);
        }
        Ok(DtKeys { inner })
    }
}

/// The discovery URL, checked, and the issuer it names.
fn discovery_issuer(url: &str) -> Result<(Uri, String), KeysError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| KeysError::new("the discovery URL is not a valid URL"))?;
    check_url(&uri).map_err(|e| KeysError::new(format!("discovery URL: {e}")))?;
    if uri.query().is_some() || url.contains('#') {
        return Err(KeysError::new(
            "the discovery URL must not have a query or a fragment",
        ));
    }
    let issuer = url
        .strip_suffix(WELL_KNOWN)
        .ok_or_else(|| KeysError::new(format!("the discovery URL must end in {WELL_KNOWN}")))?;
    if issuer.ends_with('/') {
        return Err(KeysError::new("the discovery URL names no issuer"));
    }
    Ok((uri, issuer.to_owned()))
}

/// The certificates of one `extra_root_certificate`: PEM, or else DER.
fn certificates(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, KeysError> {
    if !bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        return Ok(vec![CertificateDer::from(bytes.to_vec())]);
    }
    let certificates = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| KeysError::new(format!("an extra root certificate is not valid PEM: {e}")))?;
    if certificates.is_empty() {
        return Err(KeysError::new(
            "an extra root certificate holds no CERTIFICATE",
        ));
    }
    Ok(certificates)
}

/// The fetching side of a discovered key set.
pub(super) struct Remote {
    shared: Arc<Shared>,
    /// The refresh task, once started.
    task: Mutex<Option<AbortHandle>>,
}

/// What the refresh task shares with the handle and with waiting requests.
struct Shared {
    discovery_url: Uri,
    issuer: String,
    fetcher: Arc<dyn FetchJwks>,
    budget: Duration,
    state: Mutex<State>,
    /// The task is running (cleared when its future is dropped: finished, aborted, or its
    /// runtime shut down).
    running: AtomicBool,
    /// Wakes the task for a refresh that a request asked for.
    kick: Notify,
    /// The number of refreshes done (successful or not), for waiting requests.
    done: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    /// A refresh is asked for or running: a request joins it.
    busy: bool,
    /// A request asked for a refresh that the task has not started yet.
    requested: bool,
    /// When the last refresh started.
    last_start: Option<Instant>,
    /// Refreshes done (as `done`).
    generation: u64,
    /// The discovery document's `jwks_uri`, while its `max-age` lasts.
    discovery: Option<(String, Instant)>,
    /// Failed refreshes in a row.
    failures: u32,
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

/// Why a refresh failed, for the log and the metric.
pub(crate) struct Failure {
    outcome: &'static str,
    reason: String,
}

impl Failure {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            outcome: "error",
            reason: reason.into(),
        }
    }
}

/// The two members of an OpenID Connect discovery document this crate reads.
#[derive(Deserialize)]
pub(crate) struct Discovery {
    pub(crate) issuer: String,
    pub(crate) jwks_uri: String,
}

/// Parse a discovery document (untrusted bytes): its `issuer` and `jwks_uri`.
pub(crate) fn parse_discovery(body: &[u8]) -> Result<Discovery, Failure> {
    from_json_object(body)
        .ok_or_else(|| Failure::new("discovery document: not JSON with issuer and jwks_uri"))
}

impl Shared {
    /// One refresh within the budget: the key set and how long it stays fresh.
    async fn refresh(&self) -> Result<(HashMap<Box<str>, EsKey>, Duration), Failure> {
        match timeout(self.budget, self.fetch_keys()).await {
            Ok(Ok(keys)) => Ok(keys),
            Ok(Err(failure)) => {
                // The key set may have moved: read the discovery document again next time.
                lock(&self.state).discovery = None;
                Err(failure)
            }
            Err(_) => {
                lock(&self.state).discovery = None;
                Err(Failure {
                    outcome: "timeout",
                    reason: format!("no answer within {:?}", self.budget),
                })
            }
        }
    }

    async fn fetch_keys(&self) -> Result<(HashMap<Box<str>, EsKey>, Duration), Failure> {
        let now = Instant::now();
        let cached = lock(&self.state)
            .discovery
            .as_ref()
            .filter(|(_, expires)| *expires > now)
            .map(|(jwks_uri, _)| jwks_uri.clone());
        let jwks_uri = match cached {
            Some(jwks_uri) => jwks_uri,
            None => {
                let url = self.discovery_url.to_string();
                let fetched = self
                    .fetcher
                    .fetch(&url)
                    .await
                    .map_err(|e| Failure::new(format!("discovery document: {e}")))?;
                let document = parse_discovery(&fetched.body)?;
                if document.issuer != self.issuer {
                    return Err(Failure::new(format!(
                        "discovery document: issuer {:?} is not {:?}",
                        document.issuer, self.issuer
                    )));
                }
                let uri: Uri = document
                    .jwks_uri
                    .parse()
                    .map_err(|_| Failure::new("discovery document: jwks_uri is not a URL"))?;
                check_url(&uri)
                    .map_err(|e| Failure::new(format!("discovery document: jwks_uri: {e}")))?;
                let expires = Instant::now() + ttl(fetched.max_age);
                lock(&self.state).discovery = Some((document.jwks_uri.clone(), expires));
                document.jwks_uri
            }
        };
        let fetched = self.fetcher.fetch(&jwks_uri).await.map_err(|e| {
            let uri = jwks_uri.parse().map(|u| loggable(&u)).unwrap_or_default();
            Failure::new(format!("key set {uri}: {e}"))
        })?;
        let keys = parse_jwks(&fetched.body).map_err(|e| Failure::new(format!("key set: {e}")))?;
        Ok((keys, ttl(fetched.max_age)))
    }

    /// Publish a refresh's outcome; the time until the next refresh.
    fn finish(
        &self,
        inner: &Inner,
        outcome: Result<(HashMap<Box<str>, EsKey>, Duration), Failure>,
    ) -> Duration {
        let (snapshot, delay, label) = match outcome {
            Ok((keys, ttl)) => {
                tracing::debug!(
                    issuer = %self.issuer,
                    keys = keys.len(),
                    next_refresh = ?ttl,
                    "DT's key set refreshed"
                );
                lock(&self.state).failures = 0;
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
                    state.failures = state.failures.saturating_add(1);
                    state.failures
                };
                let delay = backoff(failures);
                let previous = inner.snapshot.read().unwrap_or_else(|e| e.into_inner());
                tracing::warn!(
                    discovery = %loggable(&self.discovery_url),
                    reason = %failure.reason,
                    failures,
                    retry_in = ?delay,
                    kept_keys = previous.keys.len(),
                    "refreshing DT's key set failed; the last good set is kept"
                );
                let snapshot = Snapshot {
                    keys: previous.keys.clone(),
                    loaded: previous.loaded,
                    last_refresh_ok: false,
                };
                (snapshot, delay, failure.outcome)
            }
        };
        #[cfg(feature = "metrics")]
        metrics::counter!("dt_signature_jwks_fetches_total", "outcome" => label).increment(1);
        #[cfg(not(feature = "metrics"))]
        let _ = label;
        *inner.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
        let generation = {
            let mut state = lock(&self.state);
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
fn backoff(failures: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_RETRY)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::atomic::AtomicUsize;

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};

    use super::super::fetch::{FetchError, FetchFuture, Fetched};
    use super::super::Lookup;
    use super::*;

    const DISCOVERY: &str = "https://id.example/dc/.well-known/openid-configuration";
    const ISSUER: &str = "https://id.example/dc";
    const JWKS: &str = "https://id.example/dc/jwks";

    /// A public JWK of a fresh P-256 key.
    fn jwk(kid: &str) -> String {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        format!(
            r#"{{"kty":"EC","crv":"P-256","kid":"{kid}","use":"sig","alg":"ES256","x":"{}","y":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..65])
        )
    }

    fn jwks(kids: &[&str]) -> String {
        let keys: Vec<String> = kids.iter().map(|kid| jwk(kid)).collect();
        format!(r#"{{"keys":[{}]}}"#, keys.join(","))
    }

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Mode {
        Ok,
        /// Every GET fails.
        Fail,
        /// Every GET never answers.
        Stall,
        /// The key set is not JSON.
        Garbage,
    }

    /// A fetcher that counts its calls and answers as told.
    struct Fake {
        mode: Mutex<Mode>,
        issuer: Mutex<String>,
        jwks: Mutex<String>,
        jwks_max_age: Mutex<Option<Duration>>,
        discovery_max_age: Mutex<Option<Duration>>,
        discovery_calls: AtomicUsize,
        jwks_calls: AtomicUsize,
        /// When each GET of the key set (or, failing, of the discovery document) came.
        times: Mutex<Vec<Instant>>,
    }

    impl Fake {
        fn new(kids: &[&str]) -> Arc<Self> {
            Arc::new(Self {
                mode: Mutex::new(Mode::Ok),
                issuer: Mutex::new(ISSUER.into()),
                jwks: Mutex::new(jwks(kids)),
                jwks_max_age: Mutex::new(None),
                discovery_max_age: Mutex::new(None),
                discovery_calls: AtomicUsize::new(0),
                jwks_calls: AtomicUsize::new(0),
                times: Mutex::new(Vec::new()),
            })
        }
        fn set_mode(&self, mode: Mode) {
            *lock(&self.mode) = mode;
        }
        fn set_jwks(&self, kids: &[&str]) {
            *lock(&self.jwks) = jwks(kids);
        }
        fn jwks_calls(&self) -> usize {
            self.jwks_calls.load(Ordering::SeqCst)
        }
        fn discovery_calls(&self) -> usize {
            self.discovery_calls.load(Ordering::SeqCst)
        }
        /// Seconds between the recorded GETs.
        fn intervals(&self) -> Vec<u64> {
            let times = lock(&self.times);
            times
                .windows(2)
                .map(|w| (w[1] - w[0]).as_secs_f64().round() as u64)
                .collect()
        }
    }

    impl FetchJwks for Fake {
        fn fetch<'a>(&'a self, url: &'a str) -> FetchFuture<'a> {
            let mode = *lock(&self.mode);
            let discovery = url == DISCOVERY;
            if discovery {
                self.discovery_calls.fetch_add(1, Ordering::SeqCst);
            } else {
                assert_eq!(url, JWKS);
                self.jwks_calls.fetch_add(1, Ordering::SeqCst);
            }
            if !discovery || mode != Mode::Ok {
                lock(&self.times).push(Instant::now());
            }
            let answer = match mode {
                Mode::Stall => None,
                Mode::Fail => Some(Err(FetchError::new("the server answered 500"))),
                _ if discovery => Some(Ok(Fetched::new(
                    format!(
                        r#"{{"issuer":"{}","jwks_uri":"{JWKS}","id_token_signing_alg_values_supported":["ES256"]}}"#,
                        lock(&self.issuer)
                    ),
                    *lock(&self.discovery_max_age),
                ))),
                Mode::Garbage => Some(Ok(Fetched::new("<html>not json", None))),
                Mode::Ok => Some(Ok(Fetched::new(
                    lock(&self.jwks).clone(),
                    *lock(&self.jwks_max_age),
                ))),
            };
            Box::pin(async move {
                match answer {
                    Some(answer) => answer,
                    None => std::future::pending().await,
                }
            })
        }
    }

    fn discover(fake: &Arc<Fake>) -> DtKeys {
        DtKeys::discovery(DISCOVERY)
            .fetcher(Arc::clone(fake))
            .build()
            .unwrap()
    }

    /// Let the refresh task run, without moving the clock.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    fn state(keys: &DtKeys, kid: &str) -> &'static str {
        match keys.lookup(kid) {
            Lookup::Found(_) => "found",
            Lookup::Unknown => "unknown",
            Lookup::Unavailable => "unavailable",
        }
    }

    async fn wait(wait: Option<impl Future<Output = ()>>) {
        wait.expect("a refresh to wait for").await;
    }

    #[test]
    fn discovery_urls() {
        let fake = Fake::new(&["k1"]);
        let build = |url: &str| DtKeys::discovery(url).fetcher(Arc::clone(&fake)).build();
        assert_eq!(build(DISCOVERY).unwrap().issuer(), ISSUER);
        for (url, issuer) in [
            (
                "http://127.0.0.1:8080/dc/.well-known/openid-configuration",
                "http://127.0.0.1:8080/dc",
            ),
            (
                "http://localhost/.well-known/openid-configuration",
                "http://localhost",
            ),
            (
                "http://[::1]:9/x/.well-known/openid-configuration",
                "http://[::1]:9/x",
            ),
        ] {
            assert_eq!(build(url).unwrap().issuer(), issuer, "{url}");
        }
        for (url, reason) in [
            (
                "http://id.example/dc/.well-known/openid-configuration",
                "plain http only to a loopback host",
            ),
            ("https://id.example/dc/jwks", "must end in"),
            (
                "https://id.example/dc/.well-known/openid-configuration/",
                "must end in",
            ),
            (
                "https://id.example/dc/.well-known/openid-configuration?x=1",
                "query",
            ),
            (
                "https://u:p@id.example/dc/.well-known/openid-configuration",
                "credentials",
            ),
            ("ftp://id.example/.well-known/openid-configuration", "https"),
            ("not a url", "not a valid URL"),
        ] {
            let error = build(url).unwrap_err().to_string();
            assert!(error.contains(reason), "{url}: {error}");
        }
    }

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
    async fn issuer_mismatch_fails_the_refresh() {
        let fake = Fake::new(&["k1"]);
        *lock(&fake.issuer) = format!("{ISSUER}/");
        let keys = discover(&fake);
        wait(keys.refresh_for_unknown_kid()).await;
        assert!(!keys.ready());
        assert_eq!(state(&keys, "k1"), "unavailable");
        assert_eq!(fake.jwks_calls(), 0);
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
        for (mode, jwks) in [
            (Mode::Fail, None),
            (Mode::Garbage, None),
            (Mode::Ok, Some(r#"{"keys":[X,X]}"#)),
        ] {
            fake.set_mode(mode);
            if jwks.is_some() {
                // The same kid twice: the set is refused whole.
                let key = jwk("k2");
                *lock(&fake.jwks) = format!(r#"{{"keys":[{key},{key}]}}"#);
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
            wait(keys.refresh_for_unknown_kid()).await;
            assert!(keys.ready(), "{mode:?}");
            assert_eq!(keys.kids(), ["k1"], "{mode:?}");
            assert_eq!(state(&keys, "k1"), "found", "{mode:?}");
            // The keys may have rotated: a kid not in the old set cannot be judged.
            assert_eq!(state(&keys, "k2"), "unavailable", "{mode:?}");
            fake.set_mode(Mode::Ok);
            fake.set_jwks(&["k1"]);
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert_eq!(state(&keys, "k2"), "unknown", "{mode:?}");
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
        // The stalled refresh counts as failed, and is retried.
        tokio::time::sleep(Duration::from_secs(1)).await;
        fake.set_mode(Mode::Ok);
        let start = Instant::now();
        wait(keys.refresh_for_unknown_kid()).await;
        assert!(start.elapsed() <= BUDGET);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(keys.ready());
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
            [("error".into(), 1), ("ok".into(), 1), ("timeout".into(), 1)]
        );
    }

    /// A discovery document is a JSON object in UTF-8 throughout (found by the
    /// `discovery` fuzz target: a document with a byte that is not UTF-8 in a member this
    /// crate ignores was accepted; serde would also read one from a JSON array).
    #[test]
    fn a_discovery_document_is_a_utf8_json_object() {
        let document = |extra: &[u8]| {
            let mut document =
                br#"{"issuer":"https://id.example","jwks_uri":"https://id.example/j","x":""#
                    .to_vec();
            document.extend(extra);
            document.extend(br#""}"#);
            document
        };
        let parsed = parse_discovery(&document(b"ES256")).ok().unwrap();
        assert_eq!(
            (parsed.issuer.as_str(), parsed.jwks_uri.as_str()),
            ("https://id.example", "https://id.example/j")
        );
        for refused in [
            document(b"ES2\xff6"),
            br#"["https://id.example","https://id.example/j"]"#.to_vec(),
        ] {
            let text = String::from_utf8_lossy(&refused).into_owned();
            assert!(parse_discovery(&refused).is_err(), "{text}");
        }
    }
}
