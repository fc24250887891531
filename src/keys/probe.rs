//! [`KeyProbe`]: what one refresh of a key set saw, for a person checking a key source
//! (`dt-signature keys`): [`DtKeys::probe`] runs one refresh of a discovered set through
//! the code, the client, the rules and the limits of [`DtKeys::discover`] and reports it;
//! [`DtKeys::probe_jwks`] reports a pinned set the same way.

use std::time::{Duration, Instant};

#[cfg(feature = "jwks")]
use super::discovery::Discovery;
#[cfg(feature = "jwks")]
use super::fetch::{loggable, Fetched};
use super::status::FailureClass;
use super::{parse_jwks_entries, DtKeys, KeysError};

/// What one refresh of a key set saw: the discovery document, each key set entry and what
/// became of it, the cache headers and the refresh they imply, the times, and the failure.
/// Made by [`DtKeys::probe`] (discovery) or [`DtKeys::probe_jwks`] (a pinned set).
///
/// Nothing in it is secret: URLs are shown without credentials or query, and no body is
/// kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyProbe {
    /// The discovery URL (scheme, host and path); `None` for a pinned set.
    pub discovery_url: Option<String>,
    /// The issuer the keys are for: the one the discovery URL names, or the pinned set's.
    pub issuer: String,
    /// The GET of the discovery document, if one was made.
    pub discovery: Option<ProbedFetch>,
    /// The discovery document's `issuer`, if the document was read.
    pub document_issuer: Option<String>,
    /// The discovery document's `jwks_uri`, if the document was read.
    pub jwks_uri: Option<String>,
    /// The discovery document's `id_token_signing_alg_values_supported`, each value as
    /// given (a value that is not a string as its JSON); `None` when it has none. Only
    /// ES256 is ever accepted, whatever it says.
    pub algorithms: Option<Vec<String>>,
    /// The GET of the key set, if one was made.
    pub jwks: Option<ProbedFetch>,
    /// Each entry of the key set, in order, and what became of it; empty when the set was
    /// not read, or was refused whole.
    pub keys: Vec<ProbedKey>,
    /// When the next refresh would come: after a success, the key set's `max-age`
    /// clamped to 1 min .. 24 h (15 min without one); after a failure, the first retry.
    /// `None` for a pinned set (never refreshed).
    pub next_refresh: Option<Duration>,
    /// The time the whole refresh took.
    pub elapsed: Duration,
    /// Why the refresh failed; `None` when it succeeded.
    pub failure: Option<ProbeFailure>,
}

/// A failed refresh: its class and the reason (never a body or a credential).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeFailure {
    /// Its class, as [`KeyStatus`](super::KeyStatus) and the metrics give it.
    pub class: FailureClass,
    /// What went wrong, for a person.
    pub reason: String,
}

/// One GET of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbedFetch {
    /// The URL (scheme, host and path).
    pub url: String,
    /// The time it took, to the answer or to the failure.
    pub elapsed: Duration,
    /// The body's size, when a `200 OK` came; `None` when the GET failed.
    pub bytes: Option<usize>,
    /// The `Cache-Control` headers as received (see [`Fetched::cache_control`]).
    ///
    /// [`Fetched::cache_control`]: super::Fetched::cache_control
    pub cache_control: Option<String>,
    /// The `max-age` read from them (`no-cache` and `no-store` count as 0).
    pub max_age: Option<Duration>,
    /// How long the document is kept before it is read again: `max-age` clamped to
    /// 1 min .. 24 h, 15 min without one.
    pub fresh_for: Option<Duration>,
    started: Option<Instant>,
}

/// One entry of a key set, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbedKey {
    /// Its position in `keys`, from 0.
    pub index: usize,
    /// Its `kid`, when a string.
    pub kid: Option<String>,
    /// Its `kty`, when a string.
    pub kty: Option<String>,
    /// Its `crv`, when a string.
    pub crv: Option<String>,
    /// Its `use`, when a string.
    pub use_: Option<String>,
    /// Its `alg`, when a string.
    pub alg: Option<String>,
    /// What became of it.
    pub outcome: KeyOutcome,
}

/// What became of a key set entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyOutcome {
    /// Loaded: tokens under its `kid` are checked with it.
    Loaded,
    /// The same key as an earlier entry under the same `kid`: one key.
    Duplicate,
    /// Skipped, for this reason (RFC 7517, 5: entries that cannot be used are ignored).
    Skipped(&'static str),
}

impl KeyProbe {
    /// A probe of `issuer`'s keys, nothing seen yet.
    pub(super) fn new(issuer: String, discovery_url: Option<String>) -> Self {
        Self {
            discovery_url,
            issuer,
            ..Self::default()
        }
    }

    /// Whether the refresh succeeded: the key set was read and at least one key loaded.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    /// The `kid`s loaded, in the set's order.
    pub fn loaded(&self) -> Vec<&str> {
        self.keys
            .iter()
            .filter(|key| key.outcome == KeyOutcome::Loaded)
            .filter_map(|key| key.kid.as_deref())
            .collect()
    }

    /// A pending GET was cut short (the budget ran out): its time so far.
    #[cfg_attr(not(feature = "jwks"), allow(dead_code))]
    pub(super) fn stopped(&mut self) {
        for fetch in [&mut self.discovery, &mut self.jwks].into_iter().flatten() {
            fetch.stopped();
        }
    }

    /// The discovery document as read, before it is checked.
    #[cfg(feature = "jwks")]
    pub(super) fn saw_document(&mut self, document: &Discovery) {
        self.document_issuer = Some(document.issuer.clone());
        self.jwks_uri = Some(
            document
                .jwks_uri
                .parse()
                .map(|uri| loggable(&uri))
                .unwrap_or_else(|_| document.jwks_uri.clone()),
        );
        self.algorithms = document
            .id_token_signing_alg_values_supported
            .as_ref()
            .map(|algs| match algs.as_array() {
                Some(algs) => algs
                    .iter()
                    .map(|alg| match alg.as_str() {
                        Some(alg) => alg.to_owned(),
                        None => alg.to_string(),
                    })
                    .collect(),
                None => vec![algs.to_string()],
            });
    }
}

impl ProbedFetch {
    /// A GET of `url`, under way.
    #[cfg_attr(not(feature = "jwks"), allow(dead_code))]
    pub(super) fn started(url: String) -> Self {
        Self {
            url,
            elapsed: Duration::ZERO,
            bytes: None,
            cache_control: None,
            max_age: None,
            fresh_for: None,
            started: Some(Instant::now()),
        }
    }

    /// The GET brought `fetched`, kept `fresh_for`.
    #[cfg(feature = "jwks")]
    pub(super) fn answered(&mut self, fetched: &Fetched, fresh_for: Duration) {
        self.stopped();
        self.bytes = Some(fetched.body.len());
        self.cache_control = fetched.cache_control.clone();
        self.max_age = fetched.max_age;
        self.fresh_for = Some(fresh_for);
    }

    /// The GET ended (or was cut short): its time.
    #[cfg_attr(not(feature = "jwks"), allow(dead_code))]
    pub(super) fn stopped(&mut self) {
        if let Some(started) = self.started.take() {
            self.elapsed = started.elapsed();
        }
    }
}

impl ProbedKey {
    /// The entry at `index`, its members as far as they are strings; not decided yet.
    pub(super) fn of(index: usize, entry: &serde_json::Value) -> Self {
        let text = |name: &str| entry.get(name)?.as_str().map(str::to_owned);
        Self {
            index,
            kid: text("kid"),
            kty: text("kty"),
            crv: text("crv"),
            use_: text("use"),
            alg: text("alg"),
            outcome: KeyOutcome::Skipped("not read"),
        }
    }

    /// The entry, skipped for `reason`.
    pub(super) fn skipped(mut self, reason: &'static str) -> Self {
        self.outcome = KeyOutcome::Skipped(reason);
        self
    }
}

impl DtKeys {
    /// One refresh of the keys at `discovery_url`, as [`DtKeys::discover`] would make it
    /// (the default HTTPS client, the same rules and limits, the 5 s budget), reported
    /// step by step: for a person checking a key source (`dt-signature keys`), not for
    /// a receiver. Same as `DtKeys::discovery(discovery_url).probe()` (feature `jwks`).
    ///
    /// # Errors
    /// What [`DtKeys::discover`] refuses (the URL, the TLS set-up). A key source that fails
    /// is not an error: it is the probe's [`failure`](KeyProbe::failure).
    ///
    /// ```no_run
    /// use tower_dt_signature::keys::DtKeys;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_dt_signature::keys::KeysError> {
    /// let probe = DtKeys::probe(tower_dt_signature::consts::DT_DISCOVERY_URL).await?;
    /// match &probe.failure {
    ///     None => println!("kids: {:?}", probe.loaded()),
    ///     Some(failure) => println!("{}: {}", failure.class, failure.reason),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "jwks")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
    pub async fn probe(discovery_url: impl Into<String>) -> Result<KeyProbe, KeysError> {
        Self::discovery(discovery_url).probe().await
    }

    /// A pinned JWK Set (JSON text; bytes that are not UTF-8 are a failure of class
    /// [`NotJson`](FailureClass::NotJson)) for `issuer`, reported as [`probe`](Self::probe)
    /// reports a fetched one: each entry and what became of it. A set that
    /// [`from_jwks`](Self::from_jwks) refuses, or one with no usable key (which it takes,
    /// but which can check nothing), is the probe's failure.
    ///
    /// ```
    /// use tower_dt_signature::keys::{DtKeys, FailureClass, KeyOutcome};
    ///
    /// let probe = DtKeys::probe_jwks("https://id.example", r#"{"keys":[{"kty":"RSA","kid":"r1"}]}"#);
    /// assert_eq!(probe.keys[0].outcome, KeyOutcome::Skipped("not an EC P-256 key"));
    /// assert_eq!(probe.failure.unwrap().class, FailureClass::NoUsableKey);
    /// ```
    pub fn probe_jwks(issuer: impl Into<String>, jwks: impl AsRef<[u8]>) -> KeyProbe {
        let started = Instant::now();
        let mut probe = KeyProbe::new(issuer.into(), None);
        let failure = match parse_jwks_entries(jwks.as_ref()) {
            Ok((keys, entries)) => {
                probe.keys = entries;
                keys.is_empty().then(|| ProbeFailure {
                    class: FailureClass::NoUsableKey,
                    reason: "key set: no usable key (EC P-256 ES256 signing key with a kid)"
                        .to_owned(),
                })
            }
            Err(error) => Some(failure(&error)),
        };
        probe.failure = match failure {
            None if probe.issuer.is_empty() => Some(ProbeFailure {
                class: FailureClass::Other,
                reason: "the issuer is empty".to_owned(),
            }),
            failure => failure,
        };
        probe.elapsed = started.elapsed();
        probe
    }
}

fn failure(error: &KeysError) -> ProbeFailure {
    ProbeFailure {
        class: error.class(),
        reason: format!("key set: {error}"),
    }
}

#[cfg(all(test, feature = "jwks"))]
mod tests {
    use std::sync::Arc;

    use super::super::fake::{jwk, Fake, Mode, DISCOVERY, ISSUER, JWKS};
    use super::super::lock;
    use super::*;

    fn run_probe(fake: &Arc<Fake>) -> KeyProbe {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(
                DtKeys::discovery(DISCOVERY)
                    .fetcher(Arc::clone(fake))
                    .probe(),
            )
            .unwrap()
    }

    #[test]
    fn a_good_source_shows_each_entry_and_the_refresh_it_implies() {
        let fake = Fake::new(&[]);
        let rsa = r#"{"kty":"RSA","kid":"r1","use":"sig","alg":"RS256","n":"AQAB","e":"AQAB"}"#;
        *lock(&fake.jwks) = format!(r#"{{"keys":[{},{rsa},7,{}]}}"#, jwk("k1"), jwk("k2"));
        *lock(&fake.jwks_max_age) = Some(Duration::from_secs(300));
        let probe = run_probe(&fake);
        assert_eq!(probe.failure, None);
        assert_eq!(probe.discovery_url.as_deref(), Some(DISCOVERY));
        assert_eq!(probe.issuer, ISSUER);
        assert_eq!(probe.document_issuer.as_deref(), Some(ISSUER));
        assert_eq!(probe.jwks_uri.as_deref(), Some(JWKS));
        assert_eq!(probe.loaded(), ["k1", "k2"]);
        let outcomes: Vec<&KeyOutcome> = probe.keys.iter().map(|k| &k.outcome).collect();
        assert_eq!(
            outcomes,
            [
                &KeyOutcome::Loaded,
                &KeyOutcome::Skipped("not an EC P-256 key"),
                &KeyOutcome::Skipped("not a JSON object"),
                &KeyOutcome::Loaded
            ]
        );
        let rsa = &probe.keys[1];
        assert_eq!(
            (rsa.kid.as_deref(), rsa.kty.as_deref(), rsa.alg.as_deref()),
            (Some("r1"), Some("RSA"), Some("RS256"))
        );
        let jwks = probe.jwks.as_ref().unwrap();
        assert_eq!(jwks.max_age, Some(Duration::from_secs(300)));
        assert_eq!(jwks.fresh_for, Some(Duration::from_secs(300)));
        assert_eq!(probe.next_refresh, Some(Duration::from_secs(300)));
        assert!(jwks.bytes.is_some_and(|bytes| bytes > 100));
        // No max-age on the discovery document: 15 min.
        let discovery = probe.discovery.as_ref().unwrap();
        assert_eq!(discovery.fresh_for, Some(Duration::from_secs(15 * 60)));
        assert_eq!(fake.jwks_calls(), 1);
    }

    #[test]
    fn a_failing_source_gives_its_class_and_what_was_seen_before() {
        let fake = Fake::new(&["k1"]);
        *lock(&fake.issuer) = format!("{ISSUER}x");
        let probe = run_probe(&fake);
        let failure = probe.failure.clone().unwrap();
        assert_eq!(failure.class, FailureClass::IssuerMismatch);
        assert_eq!(probe.document_issuer, Some(format!("{ISSUER}x")));
        assert_eq!((probe.jwks, probe.keys.len()), (None, 0));
        assert_eq!(probe.next_refresh, Some(Duration::from_secs(1)));

        for (mode, class) in [
            (Mode::Garbage, FailureClass::NotJson),
            (Mode::Fail, FailureClass::Other),
            (Mode::Stall, FailureClass::Timeout),
        ] {
            let fake = Fake::new(&["k1"]);
            fake.set_mode(mode);
            let probe = run_probe(&fake);
            assert_eq!(probe.failure.unwrap().class, class, "{mode:?}");
        }

        let fake = Fake::new(&[]);
        *lock(&fake.jwks) = r#"{"keys":[{"kty":"oct","kid":"s"}]}"#.into();
        let probe = run_probe(&fake);
        assert_eq!(probe.failure.unwrap().class, FailureClass::NoUsableKey);
        assert_eq!(
            probe.keys[0].outcome,
            KeyOutcome::Skipped("not an EC P-256 key")
        );
    }

    #[test]
    fn pinned_sets() {
        let k1 = jwk("k1");
        let good = format!(r#"{{"keys":[{k1},{k1}]}}"#);
        let probe = DtKeys::probe_jwks(ISSUER, &good);
        assert_eq!(probe.failure, None);
        assert_eq!(probe.loaded(), ["k1"]);
        assert_eq!(probe.keys[1].outcome, KeyOutcome::Duplicate);
        assert_eq!((probe.discovery, probe.next_refresh), (None, None));
        // One kid on two different keys.
        let refused = format!(r#"{{"keys":[{k1},{}]}}"#, jwk("k1"));
        let probe = DtKeys::probe_jwks(ISSUER, &refused);
        assert_eq!(probe.failure.unwrap().class, FailureClass::Other);
        let probe = DtKeys::probe_jwks(ISSUER, "[]");
        assert_eq!(probe.failure.unwrap().class, FailureClass::NotJson);
    }
}
