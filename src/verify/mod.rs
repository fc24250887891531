//! [`Verifier`]: DT's signature rules without tower, for any framework or a queue
//! consumer, with [`Policy`] (which tokens a verifier requires) and [`BodyVerifier`] (the
//! body's digests, fed chunk by chunk).
//!
//! The tower-free core: the signature headers + body bytes (+ clock) -> claims or error.
//! Split along the JWS pipeline: `jws.rs` holds the rules both tokens share, `hs256.rs`
//! the `X-Dt-Signature` token, `es256.rs` the `DT-Asymmetric-Signature` token, `times.rs`
//! the clock rules, `body.rs` the digests of the body and `policy.rs` which tokens a
//! verifier requires. This file holds the [`Verifier`] (its builder) and the policy
//! dispatch.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use http::HeaderMap;

use crate::claims::DtClaims;
use crate::consts::DT_ASYMMETRIC_SIGNATURE;
use crate::error::{ConfigError, DtSignatureError, ErrorKind, Scheme};
#[cfg(feature = "asymmetric")]
use crate::keys::{DtKeys, KeyWait, OrgId};

mod body;
#[cfg(feature = "asymmetric")]
mod es256;
pub mod explain;
pub(crate) mod hs256;
mod jws;
#[cfg(feature = "asymmetric")]
mod notice;
mod policy;
mod times;

pub use body::BodyVerifier;
#[cfg(feature = "asymmetric")]
use es256::EsPart;
use explain::{token_error, Observe};
use hs256::{header_token, key, HmacPart, Secret};
use policy::Token;
pub use policy::{Policy, UnknownPolicy};
use times::Clock;

/// An asymmetric token whose checks that need no body passed (none without the feature).
#[cfg(not(feature = "asymmetric"))]
type EsPart = ();

const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// Verifies Data Connector requests without tower: for code that already holds the
/// headers (or just the token) and the body bytes, such as a serverless handler.
///
/// It applies exactly the rules and errors of [`DtSignatureLayer`](crate::DtSignatureLayer),
/// which uses it. Cloning is cheap (one `Arc`).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use tower_dt_signature::{ErrorKind, Verifier};
///
/// // A real request signed by a DT Data Connector with the secret "test-secret".
/// let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjaGVja3N1bSI6ImYyYjVkYzA0OTY0MzcyMDFkM2NlZTE1NmMyMzNhMTMzNTYwM2Q0NjUiLCJjaGVja3N1bV9zaGEyNTYiOiJhZmQ4MWExNmJiOWMwNzZlNTdmOTI3MjhmMjg0ZmY1NTgzMWJmZGYxZDNjMmMxMGI4MzM1NjdmNTIxZDc4MmRlIiwiZXhwIjoxNjQ0NTAwNTMzLCJpYXQiOjE2NDQ0OTY5MzMsImp0aSI6ImM4MmdnOTloZ2EzNWpjMmFma2VnIn0.gm8m_HrhlOnAyS08CfR_RNYdZQIpGV6E8bk3UiAR3uo";
/// let body = br#"{"event":{"eventId":"c82gg9catj3vmh4248og","targetName":"projects/c14u9p094l47cdv1o3pg/devices/emuc17m6d7lq0bgk44smcqg","eventType":"touch","data":{"touch":{"updateTime":"2022-02-10T12:42:13.313949Z"}},"timestamp":"2022-02-10T12:42:13.313949Z"},"labels":{"name":"touch"},"metadata":{"deviceId":"emuc17m6d7lq0bgk44smcqg","projectId":"c14u9p094l47cdv1o3pg","deviceType":"touch","productNumber":""}}"#;
///
/// // The token expired in 2022: pin the clock to when it was sent.
/// let verifier = Verifier::new("test-secret")
///     .clock(|| UNIX_EPOCH + Duration::from_secs(1_644_496_933));
///
/// let claims = verifier.verify_token(token, body).unwrap();
/// assert!(claims.sha256_verified());
/// assert_eq!(claims.jti(), Some("c82gg99hga35jc2afkeg"));
///
/// // One byte of the body changed: refused.
/// let mut tampered = body.to_vec();
/// tampered[20] ^= 1;
/// let error = verifier.verify_token(token, &tampered).unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::ChecksumMismatch);
/// ```
#[derive(Clone)]
#[must_use]
pub struct Verifier {
    inner: Arc<Config>,
}

#[derive(Clone)]
struct Config {
    policy: Policy,
    /// The HMAC secrets (empty for an asymmetric-only verifier).
    keys: Vec<Secret>,
    #[cfg(feature = "asymmetric")]
    asymmetric: Option<(DtKeys, OrgId)>,
    /// Which configuration refusals were last logged at warn level, and when (shared by
    /// the clones, and by verifiers made from this one with a setter).
    #[cfg(feature = "asymmetric")]
    notices: Arc<notice::Notices>,
    leeway: Duration,
    clock: Clock,
    require_sha256: bool,
}

impl Verifier {
    /// A verifier for one signature secret: the connector's secret as you typed it into
    /// DT Studio (`&str`, `String` or bytes), used as is, not base64-decoded.
    ///
    /// # Panics
    ///
    /// If the secret is empty. Use [`try_new`](Self::try_new) to get an error instead.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        match Self::try_new(secret) {
            Ok(verifier) => verifier,
            Err(error) => panic!("tower-dt-signature: {error}"),
        }
    }

    /// Like [`new`](Self::new), but returns [`ConfigError::EmptySecret`] for an empty
    /// secret instead of panicking.
    pub fn try_new(secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        Ok(Self::with_config(Policy::Hmac, vec![key(secret.as_ref())?]))
    }

    /// This verifier with notices at debug level only (a gateway's decoy: its refusals
    /// name a made-up organization, no tenant's mistake).
    #[cfg(feature = "asymmetric")]
    pub(crate) fn quiet_notices(mut self) -> Self {
        Arc::make_mut(&mut self.inner).notices = Arc::new(notice::Notices::quiet());
        self
    }

    fn with_config(policy: Policy, keys: Vec<Secret>) -> Self {
        Self {
            inner: Arc::new(Config {
                policy,
                keys,
                #[cfg(feature = "asymmetric")]
                asymmetric: None,
                #[cfg(feature = "asymmetric")]
                notices: Arc::default(),
                leeway: DEFAULT_LEEWAY,
                clock: Clock::System,
                require_sha256: false,
            }),
        }
    }

    /// A verifier for DT's `DT-Asymmetric-Signature` alone ([`Policy::Asymmetric`]): ES256
    /// under `keys`, with `iss` equal to the keys' issuer and `sub` equal to `org`, the DT
    /// organization whose events you receive (feature `asymmetric`).
    ///
    /// DT signs every customer's events with the same keys, so `org` is required: without
    /// it any DT customer's connector could push to you. [`OrgId::any_organization_insecure`]
    /// is the deliberate opt-out.
    #[cfg(feature = "asymmetric")]
    #[cfg_attr(docsrs, doc(cfg(feature = "asymmetric")))]
    pub fn asymmetric(keys: DtKeys, org: impl Into<OrgId>) -> Self {
        let mut verifier = Self::with_config(Policy::Asymmetric, Vec::new());
        verifier.config().asymmetric = Some((keys, org.into()));
        verifier
    }

    /// Both tokens required, each valid ([`Policy::Both`]): the connector's `secret` for
    /// `X-Dt-Signature`, `keys` and `org` for `DT-Asymmetric-Signature`.
    ///
    /// # Panics
    ///
    /// If the secret is empty.
    #[cfg(feature = "asymmetric")]
    #[cfg_attr(docsrs, doc(cfg(feature = "asymmetric")))]
    pub fn both(secret: impl AsRef<[u8]>, keys: DtKeys, org: impl Into<OrgId>) -> Self {
        Self::new(secret).with_asymmetric(Policy::Both, keys, org.into())
    }

    /// At least one valid token and no invalid one ([`Policy::Either`]): the migration
    /// policy, for a connector that may send either or both tokens.
    ///
    /// # Panics
    ///
    /// If the secret is empty.
    #[cfg(feature = "asymmetric")]
    #[cfg_attr(docsrs, doc(cfg(feature = "asymmetric")))]
    pub fn either(secret: impl AsRef<[u8]>, keys: DtKeys, org: impl Into<OrgId>) -> Self {
        Self::new(secret).with_asymmetric(Policy::Either, keys, org.into())
    }

    #[cfg(feature = "asymmetric")]
    fn with_asymmetric(mut self, policy: Policy, keys: DtKeys, org: OrgId) -> Self {
        let config = self.config();
        config.policy = policy;
        config.asymmetric = Some((keys, org));
        self
    }

    /// Which tokens this verifier requires.
    pub fn policy(&self) -> Policy {
        self.inner.policy
    }

    /// The key set of the asymmetric token, if the policy reads it.
    #[cfg(feature = "asymmetric")]
    #[cfg_attr(docsrs, doc(cfg(feature = "asymmetric")))]
    pub fn keys(&self) -> Option<&DtKeys> {
        self.inner.asymmetric.as_ref().map(|(keys, _)| keys)
    }

    fn config(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.inner)
    }

    /// Also accept HMAC tokens signed with `secret`, for rotating a connector's secret without
    /// downtime: add the new secret, change it in DT Studio, then drop the old one.
    /// Secrets are tried in the order they were added.
    ///
    /// # Panics
    ///
    /// If the secret is empty, or if the verifier is [`asymmetric`](Self::asymmetric) (it
    /// reads no HMAC token). Use [`try_add_secret`](Self::try_add_secret) to get an error
    /// instead.
    pub fn add_secret(self, secret: impl AsRef<[u8]>) -> Self {
        match self.try_add_secret(secret) {
            Ok(verifier) => verifier,
            Err(error) => panic!("tower-dt-signature: {error}"),
        }
    }

    /// Like [`add_secret`](Self::add_secret), but returns an error for an empty secret
    /// ([`ConfigError::EmptySecret`]) or an asymmetric verifier
    /// ([`ConfigError::SecretWithoutHmac`]).
    pub fn try_add_secret(mut self, secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        if !self.inner.policy.uses_hmac() {
            return Err(ConfigError::SecretWithoutHmac);
        }
        let key = key(secret.as_ref())?;
        self.config().keys.push(key);
        Ok(self)
    }

    /// How much clock skew to tolerate: a token is expired when `now >= exp + leeway`, and
    /// refused when its `iat` (or `nbf`) is more than `leeway` in the future.
    ///
    /// Default: 60 seconds. With `Duration::ZERO` the time rules are exactly those of DT's
    /// own Python library (a token at exactly `exp` is expired).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.config().leeway = leeway;
        self
    }

    /// The clock that time checks read. Default: [`SystemTime::now`]. Set it in tests to
    /// verify recorded requests whose tokens have long expired.
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.config().clock = Clock::Custom(Arc::new(clock));
        self
    }

    /// Refuse HMAC tokens without a `checksum_sha256` claim ([`ErrorKind::MissingSha256`]).
    /// (Asymmetric tokens always need one.)
    ///
    /// Default: `false`, since tokens made before 2022-02-10 carry only the SHA-1
    /// `checksum`. DT has sent both since then, so turning this on costs nothing with live
    /// connectors and rules out a downgrade to SHA-1 alone.
    pub fn require_sha256(mut self, require: bool) -> Self {
        self.config().require_sha256 = require;
        self
    }

    /// Verify a whole request: the signature headers in `headers` as the policy requires,
    /// then `body`. With the asymmetric token, the key set as it stands decides: use
    /// [`verify_async`](Self::verify_async) to let an unknown `kid` wait for a refresh.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<DtClaims, DtSignatureError> {
        let mut pending = self.begin(headers)?;
        pending.update(body);
        pending.finish()
    }

    /// Like [`verify`](Self::verify), but a token whose `kid` is not in the key set waits
    /// for a refresh (at most one per 30 s, within 5 s) before it is decided.
    pub async fn verify_async(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<DtClaims, DtSignatureError> {
        let mut pending = self.begin_async(headers).await?;
        pending.update(body);
        pending.finish()
    }

    /// Verify a token taken from its header by the caller, and the body, as the policy
    /// reads it: an `X-Dt-Signature` token for [`Policy::Hmac`], a `DT-Asymmetric-Signature`
    /// token for [`Policy::Asymmetric`] (the key set as it stands decides). A `both` or
    /// `either` verifier refuses with [`ErrorKind::PolicyNeedsHeaders`]:
    /// one token cannot satisfy it (and an `either` verifier given one token would never
    /// see an invalid second one); call [`verify`](Self::verify) with the headers.
    pub fn verify_token(&self, token: &str, body: &[u8]) -> Result<DtClaims, DtSignatureError> {
        let mut pending = self.begin_token(token)?;
        pending.update(body);
        pending.finish()
    }

    /// Check everything that does not need the body (headers, tokens, signatures, times,
    /// checksum shapes) as the policy requires, and return a [`BodyVerifier`] that hashes
    /// the body as it arrives.
    pub fn begin(&self, headers: &HeaderMap) -> Result<BodyVerifier, DtSignatureError> {
        match self.start(headers, false) {
            Start::Done(result) => result,
            // Not asked for; the key set as it stands decides.
            Start::Wait(mut wait) => wait.resume(headers),
        }
    }

    /// Like [`begin`](Self::begin), but a token whose `kid` is not in the key set waits
    /// for a refresh (at most one per 30 s, within 5 s) before it is decided.
    pub async fn begin_async(&self, headers: &HeaderMap) -> Result<BodyVerifier, DtSignatureError> {
        match self.start(headers, true) {
            Start::Done(result) => result,
            Start::Wait(mut wait) => {
                (&mut wait).await;
                wait.resume(headers)
            }
        }
    }

    /// Like [`begin`](Self::begin), for a token taken from its header by the caller, as
    /// the policy reads it (see [`verify_token`](Self::verify_token)).
    pub fn begin_token(&self, token: &str) -> Result<BodyVerifier, DtSignatureError> {
        match self.inner.policy {
            Policy::Hmac => {
                let part = self
                    .hmac_part(token, &mut ())
                    .map_err(|e| e.for_scheme(Scheme::Hmac))?;
                Ok(BodyVerifier::new(Some(part), None))
            }
            Policy::Asymmetric => {
                // The token as its header's value: the header rules, then the token.
                let mut headers = HeaderMap::new();
                let value = http::HeaderValue::from_str(token).map_err(|_| {
                    DtSignatureError::new(ErrorKind::InvalidAsymmetricHeader)
                        .for_scheme(Scheme::Asymmetric)
                })?;
                headers.insert(DT_ASYMMETRIC_SIGNATURE, value);
                self.begin(&headers)
            }
            Policy::Both | Policy::Either => Err(ErrorKind::PolicyNeedsHeaders.into()),
        }
    }

    /// The checks that need no body, as the policy requires; with `may_wait`, a refresh of
    /// the key set to wait for first, when one could change the answer.
    /// The time on this verifier's clock (the one its time checks read).
    #[cfg(feature = "metrics")]
    pub(crate) fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    pub(crate) fn start(&self, headers: &HeaderMap, may_wait: bool) -> Start {
        self.start_observed(headers, may_wait, &mut ())
    }

    /// [`start`](Self::start), telling `obs` each step ([`explain`](Self::explain)).
    fn start_observed<O: Observe>(
        &self,
        headers: &HeaderMap,
        may_wait: bool,
        obs: &mut O,
    ) -> Start {
        let policy = self.inner.policy;
        if policy == Policy::Hmac {
            // The one-token policy, straight: no token states to weigh, nothing to move
            // around (the hot path of every single-secret layer).
            let part = header_token(headers)
                .and_then(|token| self.hmac_part(token, obs))
                .map_err(|error| error.for_scheme(Scheme::Hmac));
            obs.token(Scheme::Hmac, part.as_ref().err());
            return Start::Done(part.map(|part| BodyVerifier::new(Some(part), None)));
        }
        let hmac = policy.uses_hmac().then(|| self.hmac_token(headers, obs));
        if let Some(token) = &hmac {
            obs.token(Scheme::Hmac, token_error(token));
        }
        // No wait when the HMAC token alone already makes it a 400.
        let may_wait = may_wait
            && !hmac
                .as_ref()
                .is_some_and(|token| token.decides_hmac_refusal(policy));
        #[cfg(feature = "asymmetric")]
        let es = match self.es_token(headers, may_wait, obs) {
            Ok(es) => es,
            Err(refresh) => return Start::Wait(KeysWait::new(refresh, self.clone(), hmac)),
        };
        #[cfg(not(feature = "asymmetric"))]
        let (es, _) = (None::<Token<EsPart>>, may_wait);
        Start::Done(self.decide(hmac, es))
    }

    /// The asymmetric token's state, if the policy reads it; or, with `may_wait`, a refresh
    /// of the key set to wait for first.
    #[cfg(feature = "asymmetric")]
    fn es_token<O: Observe>(
        &self,
        headers: &HeaderMap,
        may_wait: bool,
        obs: &mut O,
    ) -> Result<Option<Token<EsPart>>, KeyWait> {
        let config = &*self.inner;
        match (&config.asymmetric, config.policy.uses_asymmetric()) {
            (Some((keys, org)), true) => {
                let now = config.clock.now();
                let against = es256::Against {
                    keys,
                    org,
                    notices: &config.notices,
                };
                match es256::check(against, headers, now, config.leeway, may_wait, obs) {
                    es256::EsCheck::Done(token) => {
                        obs.token(Scheme::Asymmetric, token_error(&token));
                        Ok(Some(token))
                    }
                    es256::EsCheck::Wait(refresh) => Err(refresh),
                }
            }
            _ => Ok(None),
        }
    }

    /// Apply the policy to the two tokens' states.
    fn decide(
        &self,
        hmac: Option<Token<HmacPart>>,
        es: Option<Token<EsPart>>,
    ) -> Result<BodyVerifier, DtSignatureError> {
        policy::decide(self.inner.policy, hmac, es).map(|decided| {
            BodyVerifier::new(decided.hmac, decided.es).unless_mismatch(decided.unless_mismatch)
        })
    }
}

/// What [`Verifier::start`] decided: the body verifier or the refusal, or a refresh of the
/// key set to wait on first.
// A return value, moved once: boxing the hasher states would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Start {
    Done(Result<BodyVerifier, DtSignatureError>),
    #[cfg_attr(not(feature = "asymmetric"), allow(dead_code))]
    Wait(KeysWait),
}

/// A refresh of the key set that the asymmetric token waits on, and what was decided
/// before it: poll it to its end, then [`resume`](Self::resume). Only the asymmetric
/// token, which the refreshed keys may change, is checked again; the HMAC token's state
/// is kept. Without the feature `asymmetric` there is none.
pub(crate) struct KeysWait {
    #[cfg(feature = "asymmetric")]
    refresh: KeyWait,
    #[cfg(feature = "asymmetric")]
    verifier: Verifier,
    /// The HMAC token's state (`None`: the policy does not read it), until resumed.
    #[cfg(feature = "asymmetric")]
    hmac: Option<Option<Token<HmacPart>>>,
    #[cfg(not(feature = "asymmetric"))]
    never: std::convert::Infallible,
}

impl KeysWait {
    #[cfg(feature = "asymmetric")]
    fn new(refresh: KeyWait, verifier: Verifier, hmac: Option<Token<HmacPart>>) -> Self {
        Self {
            refresh,
            verifier,
            hmac: Some(hmac),
        }
    }

    /// The refresh is over (or its time is): the asymmetric token against the key set as
    /// it now stands, then the policy.
    ///
    /// # Panics
    ///
    /// If called twice.
    pub(crate) fn resume(&mut self, headers: &HeaderMap) -> Result<BodyVerifier, DtSignatureError> {
        #[cfg(feature = "asymmetric")]
        {
            let hmac = self.hmac.take().expect("resumed once");
            let es = match self.verifier.es_token(headers, false, &mut ()) {
                Ok(es) => es,
                Err(_) => unreachable!("no wait is asked for"),
            };
            self.verifier.decide(hmac, es)
        }
        #[cfg(not(feature = "asymmetric"))]
        {
            let _ = headers;
            match self.never {}
        }
    }
}

impl Future for KeysWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        #[cfg(feature = "asymmetric")]
        {
            self.get_mut().refresh.as_mut().poll(cx)
        }
        #[cfg(not(feature = "asymmetric"))]
        {
            let _ = cx;
            match self.never {}
        }
    }
}

/// The verifications run on this thread, by kind (unit tests only): the gateway's decoy
/// must run the same ones as a known tenant (`layer/decoy_tests.rs`).
#[cfg(test)]
pub(crate) mod counted {
    use std::cell::Cell;

    thread_local! {
        static COUNTS: Cell<Counts> = const { Cell::new(Counts { hmac: 0, es256: 0 }) };
    }

    /// How many HMACs (one per secret tried) and P-256 verifies were run.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub(crate) struct Counts {
        pub(crate) hmac: usize,
        pub(crate) es256: usize,
    }

    pub(crate) fn hmac() {
        COUNTS.with(|c| {
            c.set(Counts {
                hmac: c.get().hmac + 1,
                ..c.get()
            })
        });
    }

    #[cfg(feature = "asymmetric")]
    pub(crate) fn es256() {
        COUNTS.with(|c| {
            c.set(Counts {
                es256: c.get().es256 + 1,
                ..c.get()
            })
        });
    }

    /// The counts so far, reset to zero.
    #[cfg_attr(not(feature = "asymmetric"), allow(dead_code))]
    pub(crate) fn take() -> Counts {
        COUNTS.with(|c| c.take())
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &*self.inner;
        let mut debug = f.debug_struct("Verifier");
        debug.field("policy", &config.policy).field(
            "secrets",
            &format_args!("<redacted; {}>", config.keys.len()),
        );
        #[cfg(feature = "asymmetric")]
        if let Some((keys, org)) = &config.asymmetric {
            debug.field("keys", keys).field("org", org);
        }
        debug
            .field("leeway", &config.leeway)
            .field(
                "clock",
                &match config.clock {
                    Clock::System => "system",
                    Clock::Custom(_) => "custom",
                },
            )
            .field("require_sha256", &config.require_sha256)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::hs256::tests::{
        dt_claims, mint, sha1_hex, sha256_hex, verifier_at, BODY, DT_HEADER, NOW,
    };
    use super::*;

    /// After a wait, the HMAC token's state from before it stands: here its header is gone
    /// when the wait ends, and the request is still accepted on it (under `either`, with
    /// no asymmetric token), where checking the headers again would refuse it.
    #[cfg(feature = "asymmetric")]
    #[test]
    fn after_a_wait_only_the_asymmetric_token_is_checked_again() {
        use super::hs256::tests::SECRET;
        use crate::consts::X_DT_SIGNATURE;
        use crate::error::ErrorKind;

        let keys = DtKeys::from_jwks("https://issuer.example", r#"{"keys":[]}"#).unwrap();
        let verifier = Verifier::either(SECRET, keys, "org")
            .clock(|| std::time::UNIX_EPOCH + Duration::from_secs(NOW));
        let mut headers = HeaderMap::new();
        let token = mint(DT_HEADER, &dt_claims(BODY).to_string(), SECRET);
        headers.insert(X_DT_SIGNATURE, token.parse().unwrap());
        let hmac = Some(verifier.hmac_token(&headers, &mut ()));
        let mut wait = KeysWait::new(Box::pin(async {}), verifier.clone(), hmac);

        let mut body = wait.resume(&HeaderMap::new()).unwrap();
        body.update(BODY);
        assert_eq!(body.finish().unwrap().schemes(), [Scheme::Hmac]);
        assert_eq!(
            verifier.begin(&HeaderMap::new()).unwrap_err().kind(),
            ErrorKind::MissingHeader
        );
    }

    #[test]
    fn debug_and_errors_hide_secrets() {
        let verifier = Verifier::new("hunter2-very-secret").add_secret("second-secret");
        let debug = format!("{verifier:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("second-secret"),
            "{debug}"
        );
        assert!(debug.contains("<redacted; 2>"));

        let token = mint(
            DT_HEADER,
            &dt_claims(BODY).to_string(),
            "hunter2-very-secret",
        );
        let error = verifier_at(NOW)
            .verify_token(&token, b"tampered")
            .unwrap_err();
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(
                !text.contains(&token[..20])
                    && !text.contains(&sha1_hex(BODY))
                    && !text.contains(&sha256_hex(BODY)),
                "{text}"
            );
        }
    }
}
