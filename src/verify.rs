//! The tower-free core: `X-Dt-Signature` token + body bytes (+ clock) -> claims or error.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::{DecodeSliceError, Engine as _};
use hmac::{Hmac, Mac};
use http::header::{GetAll, HeaderValue};
use http::HeaderMap;
use serde::{Deserialize, Deserializer};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

#[cfg(feature = "asymmetric")]
use crate::claims::AsymmetricClaims;
use crate::claims::DtClaims;
use crate::consts::{MAX_HEADER_LEN, X_DT_SIGNATURE};
use crate::error::{ConfigError, DtSignatureError, ErrorKind, Scheme};
#[cfg(feature = "asymmetric")]
use crate::keys::{DtKeys, KeyWait, OrgId};

#[cfg(feature = "asymmetric")]
mod es256;
mod policy;

use policy::Token;
pub use policy::{Policy, UnknownPolicy};

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
pub struct Verifier {
    inner: Arc<Config>,
}

type HmacSha256 = Hmac<Sha256>;

/// One signature secret, wiped from memory when dropped. The HMAC key schedule is derived
/// from it per request, on the stack, so no long-lived copy of key-equivalent state stays
/// in memory after the verifier is gone.
type Secret = Zeroizing<Box<[u8]>>;

#[derive(Clone)]
struct Config {
    policy: Policy,
    /// The HMAC secrets (empty for an asymmetric-only verifier).
    keys: Vec<Secret>,
    #[cfg(feature = "asymmetric")]
    asymmetric: Option<(DtKeys, OrgId)>,
    leeway: Duration,
    clock: Clock,
    require_sha256: bool,
}

#[derive(Clone)]
enum Clock {
    System,
    Custom(Arc<dyn Fn() -> SystemTime + Send + Sync>),
}

impl Clock {
    fn now(&self) -> SystemTime {
        match self {
            Self::System => SystemTime::now(),
            Self::Custom(clock) => clock(),
        }
    }
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

    fn with_config(policy: Policy, keys: Vec<Secret>) -> Self {
        Self {
            inner: Arc::new(Config {
                policy,
                keys,
                #[cfg(feature = "asymmetric")]
                asymmetric: None,
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
    /// If the secret is empty. Use [`try_add_secret`](Self::try_add_secret) to get an
    /// error instead.
    pub fn add_secret(self, secret: impl AsRef<[u8]>) -> Self {
        match self.try_add_secret(secret) {
            Ok(verifier) => verifier,
            Err(error) => panic!("tower-dt-signature: {error}"),
        }
    }

    /// Like [`add_secret`](Self::add_secret), but returns an error for an empty secret.
    pub fn try_add_secret(mut self, secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
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

    /// Verify an `X-Dt-Signature` token taken from the header by the caller, and the body,
    /// with the HMAC rules (whatever the policy).
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
            #[cfg(feature = "asymmetric")]
            Start::Wait(_) => unreachable!("no wait is asked for"),
        }
    }

    /// Like [`begin`](Self::begin), but a token whose `kid` is not in the key set waits
    /// for a refresh (at most one per 30 s, within 5 s) before it is decided.
    pub async fn begin_async(&self, headers: &HeaderMap) -> Result<BodyVerifier, DtSignatureError> {
        match self.start(headers, true) {
            Start::Done(result) => result,
            #[cfg(feature = "asymmetric")]
            Start::Wait(wait) => {
                wait.await;
                self.begin(headers)
            }
        }
    }

    /// Like [`begin`](Self::begin), for an `X-Dt-Signature` token taken from the header
    /// by the caller, with the HMAC rules (whatever the policy).
    pub fn begin_token(&self, token: &str) -> Result<BodyVerifier, DtSignatureError> {
        let part = self
            .hmac_part(token)
            .map_err(|e| e.for_scheme(Scheme::Hmac))?;
        Ok(BodyVerifier::new(Some(part), None))
    }

    /// The checks that need no body, as the policy requires; with `may_wait`, a refresh of
    /// the key set to wait for first, when one could change the answer.
    pub(crate) fn start(&self, headers: &HeaderMap, may_wait: bool) -> Start {
        let config = &*self.inner;
        let policy = config.policy;
        if policy == Policy::Hmac {
            // The one-token policy, straight: no token states to weigh, nothing to move
            // around (the hot path of every single-secret layer).
            let part = header_token(headers)
                .and_then(|token| self.hmac_part(token))
                .map_err(|error| error.for_scheme(Scheme::Hmac));
            return Start::Done(part.map(|part| BodyVerifier::new(Some(part), None)));
        }
        let hmac = policy.uses_hmac().then(|| self.hmac_token(headers));
        #[cfg(feature = "asymmetric")]
        let es = match (&config.asymmetric, policy.uses_asymmetric()) {
            (Some((keys, org)), true) => {
                // No wait when the HMAC token alone already makes it a 400.
                let may_wait = may_wait
                    && !hmac
                        .as_ref()
                        .is_some_and(|t| t.decides_hmac_refusal(policy));
                match es256::check(
                    keys,
                    org,
                    headers,
                    config.clock.now(),
                    config.leeway,
                    may_wait,
                ) {
                    es256::EsCheck::Done(token) => Some(token),
                    es256::EsCheck::Wait(wait) => return Start::Wait(wait),
                }
            }
            _ => None,
        };
        #[cfg(not(feature = "asymmetric"))]
        let (es, _) = (None::<Token<()>>, may_wait);
        Start::Done(policy::decide(policy, hmac, es).map(|(hmac, es)| BodyVerifier::new(hmac, es)))
    }

    /// The `X-Dt-Signature` token's state.
    fn hmac_token(&self, headers: &HeaderMap) -> Token<HmacPart> {
        match header_token(headers) {
            Err(error) if error.kind() == ErrorKind::MissingHeader => {
                Token::Absent(error.for_scheme(Scheme::Hmac))
            }
            Err(error) => Token::Invalid(error.for_scheme(Scheme::Hmac)),
            Ok(token) => match self.hmac_part(token) {
                Ok(part) => Token::Valid(part),
                Err(error) => Token::Invalid(error.for_scheme(Scheme::Hmac)),
            },
        }
    }

    /// Rules 2-4 for an `X-Dt-Signature` token, up to the body.
    fn hmac_part(&self, token: &str) -> Result<HmacPart, DtSignatureError> {
        let config = &*self.inner;
        let parts = TokenParts::split(token)?;
        check_jose_header(parts.header)?;

        let secret_index = verify_hmac(&config.keys, parts.signing_input, parts.signature)?;

        let claims = parse_claims(parts.payload)?;
        let exp = claims.exp.ok_or(ErrorKind::MissingExpiry)?;
        check_times(
            config.clock.now(),
            config.leeway,
            exp,
            claims.iat,
            claims.nbf,
        )?;

        let sha256 = claims.checksum_sha256.map(HexClaim::digest).transpose()?;
        let sha1 = claims.checksum.map(HexClaim::digest).transpose()?;
        if sha1.is_none() && sha256.is_none() {
            return Err(ErrorKind::MissingChecksum.into());
        }
        if config.require_sha256 && sha256.is_none() {
            return Err(ErrorKind::MissingSha256.into());
        }
        Ok(HmacPart {
            secret_index,
            jti: claims.jti,
            iat: claims.iat,
            exp,
            sha1,
            sha256,
        })
    }
}

impl Verifier {
    /// The crypto work of an HMAC check, over the request's `X-Dt-Signature` (or nothing),
    /// under a key no token is signed with: what a gateway does for an unknown tenant, so
    /// that its answer takes as long as a known tenant's refusal.
    pub(crate) fn decoy(headers: &HeaderMap) {
        const DECOY_KEY: &[u8] = b"tower-dt-signature decoy key: matches no token";
        let input = headers
            .get(X_DT_SIGNATURE)
            .map_or(&b""[..], |value| value.as_bytes());
        let signing_input = input.rsplit(|&b| b == b'.').nth(1).unwrap_or(input);
        let _ = std::hint::black_box(keyed(DECOY_KEY, signing_input).finalize());
    }
}

/// What [`Verifier::start`] decided: the body verifier or the refusal, or a key refresh
/// to wait for, then [`Verifier::begin`].
// A return value, moved once: boxing the hasher states would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Start {
    Done(Result<BodyVerifier, DtSignatureError>),
    #[cfg(feature = "asymmetric")]
    Wait(KeyWait),
}

/// An `X-Dt-Signature` token whose checks that need no body passed.
struct HmacPart {
    secret_index: usize,
    jti: Option<String>,
    iat: Option<u64>,
    exp: u64,
    sha1: Option<[u8; 20]>,
    sha256: Option<[u8; 32]>,
}

#[cfg(not(feature = "asymmetric"))]
type EsPart = ();
#[cfg(feature = "asymmetric")]
use es256::EsPart;

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

/// Rule 1, then the header's value as text.
fn header_token(headers: &HeaderMap) -> Result<&str, DtSignatureError> {
    signature_header(headers.get_all(X_DT_SIGNATURE), HMAC_HEADER_KINDS)
}

/// The errors of the header rules, for one signature header.
#[derive(Clone, Copy)]
pub(crate) struct HeaderKinds {
    pub(crate) missing: ErrorKind,
    pub(crate) duplicate: ErrorKind,
    pub(crate) invalid: ErrorKind,
    pub(crate) too_large: ErrorKind,
}

const HMAC_HEADER_KINDS: HeaderKinds = HeaderKinds {
    missing: ErrorKind::MissingHeader,
    duplicate: ErrorKind::DuplicateHeader,
    invalid: ErrorKind::InvalidHeader,
    too_large: ErrorKind::HeaderTooLarge,
};

/// The three dot-separated parts of a compact JWS, and the signing input they cover.
pub(crate) struct TokenParts<'a> {
    pub(crate) signing_input: &'a str,
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
}

impl<'a> TokenParts<'a> {
    /// Exactly three parts, or [`ErrorKind::MalformedToken`].
    pub(crate) fn split(token: &'a str) -> Result<Self, DtSignatureError> {
        let (signing_input, signature) = token.rsplit_once('.').ok_or(ErrorKind::MalformedToken)?;
        let (header, payload) = signing_input
            .split_once('.')
            .ok_or(ErrorKind::MalformedToken)?;
        if payload.contains('.') {
            return Err(ErrorKind::MalformedToken.into());
        }
        Ok(Self {
            signing_input,
            header,
            payload,
            signature,
        })
    }
}

fn key(secret: &[u8]) -> Result<Secret, ConfigError> {
    if secret.is_empty() {
        return Err(ConfigError::EmptySecret);
    }
    Ok(Zeroizing::new(secret.into()))
}

/// Rule 1: exactly one header, at most 8 KiB, visible ASCII only; its value as text.
pub(crate) fn signature_header(
    values: GetAll<'_, HeaderValue>,
    kinds: HeaderKinds,
) -> Result<&str, DtSignatureError> {
    let mut iter = values.iter();
    let value = iter.next().ok_or(kinds.missing)?;
    if iter.next().is_some() {
        return Err(kinds.duplicate.into());
    }
    let bytes = value.as_bytes();
    if bytes.len() > MAX_HEADER_LEN {
        return Err(kinds.too_large.into());
    }
    // No early exit, so that the check of a ~330-byte token is vectorised.
    let visible = bytes
        .iter()
        .fold(true, |all, b| all & (0x21..=0x7e).contains(b));
    if bytes.is_empty() || !visible {
        return Err(kinds.invalid.into());
    }
    // Every byte is visible ASCII, so this is UTF-8.
    std::str::from_utf8(bytes).map_err(|_| kinds.invalid.into())
}

/// The JOSE header: `alg` must be exactly `HS256`; a `crit` extension is refused since
/// none is implemented (RFC 7515, 4.1.11). Other fields (`typ`, `kid`) are ignored: keys
/// are never looked up from the token.
fn check_jose_header(encoded: &str) -> Result<(), DtSignatureError> {
    // Every DT token carries this header, which passes the checks below.
    if encoded == DT_JOSE_HEADER {
        return Ok(());
    }

    #[derive(Deserialize)]
    struct JoseHeader<'a> {
        #[serde(borrow)]
        alg: std::borrow::Cow<'a, str>,
        #[serde(default)]
        crit: Option<serde::de::IgnoredAny>,
    }

    let json = decode_json_object(encoded)?;
    let header: JoseHeader<'_> = parse_jose(&json)?;
    expect_alg(&header.alg, header.crit.is_some(), "HS256")
}

/// A JOSE header's JSON: base64url of a JSON object, or [`ErrorKind::MalformedToken`].
pub(crate) fn decode_json_object(encoded: &str) -> Result<Vec<u8>, DtSignatureError> {
    let json = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| ErrorKind::MalformedToken)?;
    // serde would also read a struct from a JSON array.
    if json.trim_ascii_start().first() != Some(&b'{') {
        return Err(ErrorKind::MalformedToken.into());
    }
    Ok(json)
}

/// The JOSE header's fields, or [`ErrorKind::MalformedToken`].
pub(crate) fn parse_jose<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Result<T, DtSignatureError> {
    serde_json::from_slice(json).map_err(|_| ErrorKind::MalformedToken.into())
}

/// `alg` exactly `expected`, and no `crit` extension (none is implemented; RFC 7515,
/// 4.1.11): else [`ErrorKind::UnsupportedAlgorithm`].
pub(crate) fn expect_alg(alg: &str, crit: bool, expected: &str) -> Result<(), DtSignatureError> {
    if alg != expected || crit {
        return Err(ErrorKind::UnsupportedAlgorithm.into());
    }
    Ok(())
}

/// `{"alg":"HS256","typ":"JWT"}`, base64url-encoded: the JOSE header of every DT token.
const DT_JOSE_HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// Rule 2: the HMAC-SHA256 of `header.payload` against each configured secret. Returns the
/// index of the secret that matched.
///
/// The same outcomes as `jsonwebtoken::crypto::verify` per secret (a signature that is not
/// base64url is malformed; any other mismatch is invalid), without its boxed verifier and
/// decoded-signature `Vec` (see BENCHMARKS.md). The key schedule is derived per request
/// from the zeroizing secret rather than kept keyed for the verifier's lifetime.
fn verify_hmac(
    keys: &[Secret],
    signing_input: &str,
    signature: &str,
) -> Result<usize, DtSignatureError> {
    if signature.is_empty() {
        return Err(ErrorKind::InvalidSignature.into());
    }
    // A MAC is 32 bytes, 43 base64url characters.
    let mut mac = [0u8; 32];
    let len = match URL_SAFE_NO_PAD.decode_slice(signature, &mut mac) {
        Ok(len) => len,
        Err(DecodeSliceError::DecodeError(_)) => return Err(ErrorKind::MalformedToken.into()),
        // Longer than a MAC: it matches no secret, if it is base64url at all.
        Err(DecodeSliceError::OutputSliceTooSmall) => {
            URL_SAFE_NO_PAD
                .decode(signature)
                .map_err(|_| ErrorKind::MalformedToken)?;
            return Err(ErrorKind::InvalidSignature.into());
        }
    };
    for (index, key) in keys.iter().enumerate() {
        // Compares in constant time; a MAC of the wrong length never matches.
        if keyed(key, signing_input.as_bytes())
            .verify_slice(&mac[..len])
            .is_ok()
        {
            return Ok(index);
        }
    }
    Err(ErrorKind::InvalidSignature.into())
}

/// HMAC-SHA256 of `message` under `key`, ready to finalize or compare.
fn keyed(key: &[u8], message: &[u8]) -> HmacSha256 {
    let mut hmac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    hmac.update(message);
    hmac
}

/// The HS256 signature of `message` under `key`: the one HMAC the signer mints with.
#[cfg(any(test, feature = "test-util"))]
pub(crate) fn hs256(key: &[u8], message: &[u8]) -> [u8; 32] {
    keyed(key, message).finalize().into_bytes().into()
}

#[derive(Deserialize)]
pub(crate) struct RawClaims {
    #[serde(default, deserialize_with = "present")]
    pub(crate) checksum: Option<HexClaim<20>>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) checksum_sha256: Option<HexClaim<32>>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) exp: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) iat: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) nbf: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) jti: Option<String>,
    #[cfg(feature = "asymmetric")]
    #[serde(default, deserialize_with = "present")]
    pub(crate) iss: Option<String>,
    #[cfg(feature = "asymmetric")]
    #[serde(default, deserialize_with = "present")]
    pub(crate) sub: Option<String>,
}

/// A claim that is present must have its type: `null` is malformed, not absent.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A checksum claim, read in place: its digest if the string is hex of `N` bytes (either
/// case). A string that is not is [`ErrorKind::MalformedChecksum`], reported by
/// [`digest`](Self::digest) after the time checks.
pub(crate) struct HexClaim<const N: usize>(Option<[u8; N]>);

impl<const N: usize> HexClaim<N> {
    pub(crate) fn digest(self) -> Result<[u8; N], DtSignatureError> {
        self.0.ok_or_else(|| ErrorKind::MalformedChecksum.into())
    }
}

impl<'de, const N: usize> Deserialize<'de> for HexClaim<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HexVisitor<const N: usize>;

        impl<const N: usize> serde::de::Visitor<'_> for HexVisitor<N> {
            type Value = HexClaim<N>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a hex string")
            }

            fn visit_str<E: serde::de::Error>(self, hex_digest: &str) -> Result<Self::Value, E> {
                let mut digest = [0u8; N];
                let parsed = hex::decode_to_slice(hex_digest, &mut digest).ok();
                Ok(HexClaim(parsed.map(|()| digest)))
            }
        }

        deserializer.deserialize_str(HexVisitor)
    }
}

pub(crate) fn parse_claims(encoded: &str) -> Result<RawClaims, DtSignatureError> {
    // DT's claims are about 190 bytes: decode them on the stack.
    let mut buffer = [0u8; 512];
    let json: std::borrow::Cow<'_, [u8]> = match URL_SAFE_NO_PAD.decode_slice(encoded, &mut buffer)
    {
        Ok(len) => buffer[..len].into(),
        Err(DecodeSliceError::OutputSliceTooSmall) => URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| ErrorKind::MalformedToken)?
            .into(),
        Err(DecodeSliceError::DecodeError(_)) => return Err(ErrorKind::MalformedToken.into()),
    };
    // serde would also read a struct from a JSON array; claims must be an object.
    if json.trim_ascii_start().first() != Some(&b'{') {
        return Err(ErrorKind::MalformedClaims.into());
    }
    // One UTF-8 check of the whole text rather than one per string.
    let json = std::str::from_utf8(&json).map_err(|_| ErrorKind::MalformedClaims)?;
    serde_json::from_str(json).map_err(|_| ErrorKind::MalformedClaims.into())
}

/// Rule 3: expired when `now >= exp + leeway`; `iat` and `nbf` at most `leeway` ahead.
pub(crate) fn check_times(
    now: SystemTime,
    leeway: Duration,
    exp: u64,
    iat: Option<u64>,
    nbf: Option<u64>,
) -> Result<(), DtSignatureError> {
    let now = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    // An overflowing `exp + leeway` lies beyond any clock: not expired.
    if let Some(expires) = Duration::from_secs(exp).checked_add(leeway) {
        if now >= expires {
            return Err(ErrorKind::Expired.into());
        }
    }
    // An overflowing `now + leeway` is beyond any `iat`: not in the future.
    let horizon = now.checked_add(leeway);
    let in_future = |at: u64| horizon.is_some_and(|horizon| Duration::from_secs(at) > horizon);
    if iat.is_some_and(in_future) {
        return Err(ErrorKind::IssuedInFuture.into());
    }
    if nbf.is_some_and(in_future) {
        return Err(ErrorKind::NotYetValid.into());
    }
    Ok(())
}

/// The second half of a verification: hashes the body as it arrives, then compares.
///
/// Made by [`Verifier::begin`] once the tokens are known to be valid. Only the digests the
/// tokens carry are computed, in one pass over the bytes (one SHA-256 for both tokens).
pub struct BodyVerifier {
    sha1: Option<(Sha1, [u8; 20])>,
    sha256: Option<Sha256>,
    /// The SHA-256 each verified token expects: the HMAC token's, then the ES256 one's.
    expected: [Option<[u8; 32]>; 2],
    claims: DtClaims,
}

impl BodyVerifier {
    #[inline]
    fn new(hmac: Option<HmacPart>, es: Option<EsPart>) -> Self {
        let mut claims = DtClaims::default();
        let mut exp = u64::MAX;
        let mut expected = [None, None];
        let mut sha1 = None;
        if let Some(part) = hmac {
            exp = exp.min(part.exp);
            claims.jti = part.jti;
            claims.iat = part.iat;
            claims.secret_index = Some(part.secret_index);
            claims.hmac = true;
            sha1 = part.sha1.map(|expected| (Sha1::new(), expected));
            expected[0] = part.sha256;
        }
        #[cfg(feature = "asymmetric")]
        if let Some(part) = es {
            exp = exp.min(part.exp);
            claims.iat = claims.iat.or(part.iat);
            expected[1] = Some(part.sha256);
            claims.asymmetric = Some(AsymmetricClaims {
                issuer: part.issuer,
                kid: part.kid,
                org_id: part.sub,
            });
        }
        #[cfg(not(feature = "asymmetric"))]
        let _: Option<EsPart> = es;
        claims.exp = exp;
        Self {
            sha1,
            sha256: expected.iter().any(Option::is_some).then(Sha256::new),
            expected,
            claims,
        }
    }

    /// Feed the next chunk of the body, in order.
    pub fn update(&mut self, chunk: &[u8]) {
        if let Some((hasher, _)) = &mut self.sha1 {
            hasher.update(chunk);
        }
        if let Some(hasher) = &mut self.sha256 {
            hasher.update(chunk);
        }
    }

    /// Compare the digests of everything fed with the tokens' checksums, in constant
    /// time. Every checksum present must match: a correct SHA-1 never excuses a wrong
    /// SHA-256, and one token's match never excuses the other's mismatch.
    pub fn finish(self) -> Result<DtClaims, DtSignatureError> {
        let mut claims = self.claims;
        let sha1_ok = self
            .sha1
            .map(|(hasher, expected)| hasher.finalize()[..].ct_eq(&expected));
        let sha256 = self.sha256.map(Sha256::finalize);
        let sha256_ok = self.expected.map(|expected| {
            expected
                .map(|expected| sha256.as_ref().expect("hashed when expected")[..].ct_eq(&expected))
        });
        let hmac_ok = sha1_ok.unwrap_or(1.into()) & sha256_ok[0].unwrap_or(1.into());
        if !bool::from(hmac_ok) {
            return Err(DtSignatureError::new(ErrorKind::ChecksumMismatch).for_scheme(Scheme::Hmac));
        }
        if !bool::from(sha256_ok[1].unwrap_or(1.into())) {
            return Err(
                DtSignatureError::new(ErrorKind::ChecksumMismatch).for_scheme(Scheme::Asymmetric)
            );
        }
        claims.sha1_verified = sha1_ok.is_some();
        claims.sha256_verified = sha256_ok.iter().any(Option::is_some);
        Ok(claims)
    }
}

impl fmt::Debug for BodyVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyVerifier")
            .field("sha1", &self.sha1.is_some())
            .field("sha256", &self.sha256.is_some())
            .field("schemes", &self.claims.schemes())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cret";
    const BODY: &[u8] = br#"{"event":{"eventId":"abc","eventType":"touch"},"labels":{}}"#;
    const NOW: u64 = 1_700_000_000;

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token with this JOSE header and these claims, HS256-signed with `secret` by the
    /// HMAC the `Signer` uses (checked against jsonwebtoken in `mint_matches_jsonwebtoken`).
    fn mint(header: &str, claims: &str, secret: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let sig = b64(hs256(secret.as_bytes(), input.as_bytes()));
        format!("{input}.{sig}")
    }

    /// The oracle: our HS256 signatures are jsonwebtoken's, byte for byte.
    #[test]
    fn mint_matches_jsonwebtoken() {
        for (secret, message) in [("s3cret", "a.b"), ("x", ""), ("test-secret", "eyJ.eyJ")] {
            let ours = b64(hs256(secret.as_bytes(), message.as_bytes()));
            let oracle = jsonwebtoken::crypto::sign(
                message.as_bytes(),
                &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
                jsonwebtoken::Algorithm::HS256,
            )
            .unwrap();
            assert_eq!(ours, oracle, "{secret:?} {message:?}");
        }
    }

    fn sha1_hex(body: &[u8]) -> String {
        hex::encode(Sha1::digest(body))
    }

    fn sha256_hex(body: &[u8]) -> String {
        hex::encode(Sha256::digest(body))
    }

    /// DT's own claims for `body`, issued at NOW.
    fn dt_claims(body: &[u8]) -> serde_json::Value {
        serde_json::json!({
            "checksum": sha1_hex(body),
            "checksum_sha256": sha256_hex(body),
            "exp": NOW + 3600,
            "iat": NOW,
            "jti": "c82gg99hga35jc2afkeg",
        })
    }

    const DT_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

    fn verifier_at(now: u64) -> Verifier {
        Verifier::new(SECRET).clock(move || UNIX_EPOCH + Duration::from_secs(now))
    }

    fn with(mutate: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> String {
        let mut claims = dt_claims(BODY);
        mutate(claims.as_object_mut().unwrap());
        mint(DT_HEADER, &claims.to_string(), SECRET)
    }

    #[test]
    fn round_trip_reports_claims() {
        let token = mint(DT_HEADER, &dt_claims(BODY).to_string(), SECRET);
        let claims = verifier_at(NOW).verify_token(&token, BODY).unwrap();
        assert_eq!(claims.jti(), Some("c82gg99hga35jc2afkeg"));
        assert_eq!(claims.iat(), Some(NOW));
        assert_eq!(claims.exp(), NOW + 3600);
        assert!(claims.sha1_verified() && claims.sha256_verified());
        assert_eq!(claims.secret_index(), Some(0));
    }

    /// One mutation per row, each against an otherwise valid DT token and body.
    #[test]
    fn one_mutation_per_row() {
        use serde_json::Value;
        let other = b"another body";
        // DT's claims for BODY under this JOSE header, signed with SECRET.
        let header = |header: &str| mint(header, &dt_claims(BODY).to_string(), SECRET);
        // DT's claims with one claim set to this value.
        let set = |claim: &str, value: serde_json::Value| {
            with(|c| {
                c.insert(claim.into(), value);
            })
        };
        // DT's claims without these claims.
        let without = |claims: &[&str]| {
            with(|c| {
                for claim in claims {
                    c.remove(*claim);
                }
            })
        };
        let (h, c) = (b64(DT_HEADER), b64(dt_claims(BODY).to_string()));
        #[rustfmt::skip]
        let rows: Vec<(&str, String, ErrorKind)> = vec![
            ("wrong secret", mint(DT_HEADER, &dt_claims(BODY).to_string(), "other"), ErrorKind::InvalidSignature),
            ("alg none", header(r#"{"alg":"none","typ":"JWT"}"#), ErrorKind::UnsupportedAlgorithm),
            ("alg HS384", header(r#"{"alg":"HS384","typ":"JWT"}"#), ErrorKind::UnsupportedAlgorithm),
            ("alg lowercase", header(r#"{"alg":"hs256","typ":"JWT"}"#), ErrorKind::UnsupportedAlgorithm),
            ("alg missing", header(r#"{"typ":"JWT"}"#), ErrorKind::MalformedToken),
            ("alg not a string", header(r#"{"alg":256}"#), ErrorKind::MalformedToken),
            ("crit extension", header(r#"{"alg":"HS256","crit":["b64"],"b64":false}"#), ErrorKind::UnsupportedAlgorithm),
            ("header is an array", header(r#"["HS256"]"#), ErrorKind::MalformedToken),
            ("alg given twice", header(r#"{"alg":"none","alg":"HS256"}"#), ErrorKind::MalformedToken),
            ("claims not json", mint(DT_HEADER, "not json", SECRET), ErrorKind::MalformedClaims),
            ("claims an array", mint(DT_HEADER, "[1,2]", SECRET), ErrorKind::MalformedClaims),
            ("exp as string", set("exp", format!("{}", NOW + 3600).into()), ErrorKind::MalformedClaims),
            ("exp null", set("exp", Value::Null), ErrorKind::MalformedClaims),
            ("exp negative", set("exp", (-1).into()), ErrorKind::MalformedClaims),
            ("exp float", set("exp", 1.5e9.into()), ErrorKind::MalformedClaims),
            ("no exp", without(&["exp"]), ErrorKind::MissingExpiry),
            ("expired", set("exp", (NOW - 60).into()), ErrorKind::Expired),
            ("iat far in future", set("iat", (NOW + 61).into()), ErrorKind::IssuedInFuture),
            ("nbf far in future", set("nbf", (NOW + 61).into()), ErrorKind::NotYetValid),
            ("iat as string", set("iat", "now".into()), ErrorKind::MalformedClaims),
            ("jti as number", set("jti", 7.into()), ErrorKind::MalformedClaims),
            ("no checksums", without(&["checksum", "checksum_sha256"]), ErrorKind::MissingChecksum),
            ("checksum null", set("checksum", Value::Null), ErrorKind::MalformedClaims),
            ("sha1 of another body", set("checksum", sha1_hex(other).into()), ErrorKind::ChecksumMismatch),
            ("sha256 of another body", set("checksum_sha256", sha256_hex(other).into()), ErrorKind::ChecksumMismatch),
            ("sha1 only, of another body", with(|c| { c.remove("checksum_sha256"); c.insert("checksum".into(), sha1_hex(other).into()); }), ErrorKind::ChecksumMismatch),
            ("sha256 where sha1 goes", set("checksum", sha256_hex(BODY).into()), ErrorKind::MalformedChecksum),
            ("sha1 where sha256 goes", set("checksum_sha256", sha1_hex(BODY).into()), ErrorKind::MalformedChecksum),
            ("checksum not hex", set("checksum", "z".repeat(40).into()), ErrorKind::MalformedChecksum),
            ("checksum empty", set("checksum", "".into()), ErrorKind::MalformedChecksum),
            ("checksum truncated", set("checksum", sha1_hex(BODY)[..39].into()), ErrorKind::MalformedChecksum),
            ("checksum as number", set("checksum", 1.into()), ErrorKind::MalformedClaims),
            ("two parts", "a.b".to_owned(), ErrorKind::MalformedToken),
            ("four parts", format!("{}.x", header(DT_HEADER)), ErrorKind::MalformedToken),
            ("empty signature", format!("{h}.{c}."), ErrorKind::InvalidSignature),
            ("signature not base64", format!("{h}.{c}.***"), ErrorKind::MalformedToken),
            ("header not base64", format!("{{}}.{c}.sig"), ErrorKind::MalformedToken),
            ("padded header", format!("{h}=.{c}.sig"), ErrorKind::MalformedToken),
        ];
        assert!(rows.len() >= 30);
        let verifier = verifier_at(NOW);
        for (name, token, kind) in rows {
            match verifier.verify_token(&token, BODY) {
                Ok(_) => panic!("{name}: accepted"),
                Err(error) => assert_eq!(error.kind(), kind, "{name}"),
            }
        }
    }

    /// `verify_hmac` decides as `jsonwebtoken::crypto::verify` did, for signatures of every
    /// length and shape.
    #[test]
    fn hmac_outcomes_match_jsonwebtoken() {
        let token = mint(DT_HEADER, &dt_claims(BODY).to_string(), SECRET);
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut last_changed = sig.to_owned();
        last_changed.pop();
        last_changed.push(if sig.ends_with('A') { 'B' } else { 'A' });
        let mut signatures = vec![
            sig.to_owned(),
            last_changed,
            format!("{sig}A"),
            format!("{sig}AA"),
            format!("{sig}AAAA"),
            format!("{sig}="),
            format!("{sig}*"),
            "A".repeat(100),
            format!("{}*", "A".repeat(100)),
            "*".repeat(100),
        ];
        signatures.extend((1..=4).map(|cut| sig[..sig.len() - cut].to_owned()));
        signatures.extend(["A", "AA", "AAA", "AAAA", "A=="].map(str::to_owned));
        let keys = [key(b"other").unwrap(), key(SECRET.as_bytes()).unwrap()];
        let decoding = [
            jsonwebtoken::DecodingKey::from_secret(b"other"),
            jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
        ];
        for signature in &signatures {
            let expected = decoding
                .iter()
                .enumerate()
                .find_map(|(index, key)| {
                    match jsonwebtoken::crypto::verify(
                        signature,
                        input.as_bytes(),
                        key,
                        jsonwebtoken::Algorithm::HS256,
                    ) {
                        Ok(true) => Some(Ok(index)),
                        Ok(false) => None,
                        Err(_) => Some(Err(ErrorKind::MalformedToken)),
                    }
                })
                .unwrap_or(Err(ErrorKind::InvalidSignature));
            let got = verify_hmac(&keys, input, signature).map_err(|e| e.kind());
            assert_eq!(got, expected, "{signature}");
        }
    }

    #[test]
    fn dt_jose_header_is_the_one_dt_sends() {
        assert_eq!(DT_JOSE_HEADER, b64(DT_HEADER));
        // The shortcut accepts what the general rule accepts.
        let decoded = URL_SAFE_NO_PAD.decode(DT_JOSE_HEADER).unwrap();
        let header: serde_json::Value = serde_json::from_slice(&decoded).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "HS256", "typ": "JWT"}));
        assert!(check_jose_header(&format!("{DT_JOSE_HEADER}=")).is_err());
        assert!(check_jose_header(&b64(r#"{"alg":"HS256"}"#)).is_ok());
    }

    /// The clock rules both schemes share, for a token issued at `iat` that expires at
    /// `exp`: `at(now, leeway)` verifies it at `now` with that leeway.
    pub(super) fn assert_time_boundaries(
        iat: u64,
        exp: u64,
        at: impl Fn(u64, u64) -> Result<(), ErrorKind>,
    ) {
        // Leeway 0: DT's own rule, a token at exactly exp is expired.
        assert_eq!(at(exp - 1, 0), Ok(()));
        assert_eq!(at(exp, 0), Err(ErrorKind::Expired));
        // Leeway 60 (the default): expired when now >= exp + 60.
        assert_eq!(at(exp + 59, 60), Ok(()));
        assert_eq!(at(exp + 60, 60), Err(ErrorKind::Expired));
        // iat in the future: allowed up to the leeway, not one second more.
        assert_eq!(at(iat, 0), Ok(()));
        assert_eq!(at(iat - 1, 0), Err(ErrorKind::IssuedInFuture));
        assert_eq!(at(iat - 60, 60), Ok(()));
        assert_eq!(at(iat - 61, 60), Err(ErrorKind::IssuedInFuture));
    }

    #[test]
    fn time_boundaries() {
        let exp = NOW + 3600;
        let token = with(|_| {});
        let at = |now: u64, leeway: u64| {
            verifier_at(now)
                .leeway(Duration::from_secs(leeway))
                .verify_token(&token, BODY)
                .map(|_| ())
                .map_err(|e| e.kind())
        };
        assert_time_boundaries(NOW, exp, at);
        // A clock before the epoch reads as zero: the token is from the future.
        let before_epoch = Verifier::new(SECRET)
            .clock(|| UNIX_EPOCH - Duration::from_secs(5))
            .verify_token(&token, BODY);
        assert_eq!(before_epoch.unwrap_err().kind(), ErrorKind::IssuedInFuture);
    }

    #[test]
    fn sub_second_clock_is_exact_at_exp() {
        let exp = NOW + 3600;
        let token = with(|_| {});
        let just_before = UNIX_EPOCH + Duration::from_secs(exp) - Duration::from_millis(1);
        let v = Verifier::new(SECRET).leeway(Duration::ZERO);
        assert!(v
            .clone()
            .clock(move || just_before)
            .verify_token(&token, BODY)
            .is_ok());
        let at_exp = UNIX_EPOCH + Duration::from_secs(exp);
        let err = v
            .clock(move || at_exp)
            .verify_token(&token, BODY)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Expired);
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let far = with(|c| {
            c.insert("exp".into(), u64::MAX.into());
        });
        let verifier = verifier_at(NOW).leeway(Duration::MAX);
        assert!(verifier.verify_token(&far, BODY).is_ok());
        let zero = with(|c| {
            c.insert("exp".into(), 0.into());
        });
        assert_eq!(
            verifier_at(NOW)
                .verify_token(&zero, BODY)
                .unwrap_err()
                .kind(),
            ErrorKind::Expired
        );
    }

    #[test]
    fn checksums_accept_either_case_and_all_must_match() {
        let upper = with(|c| {
            c.insert("checksum".into(), sha1_hex(BODY).to_uppercase().into());
            c.insert(
                "checksum_sha256".into(),
                sha256_hex(BODY).to_uppercase().into(),
            );
        });
        assert!(verifier_at(NOW).verify_token(&upper, BODY).is_ok());

        let sha1_only = with(|c| {
            c.remove("checksum_sha256");
        });
        let claims = verifier_at(NOW).verify_token(&sha1_only, BODY).unwrap();
        assert!(claims.sha1_verified() && !claims.sha256_verified());
        let required = verifier_at(NOW).require_sha256(true);
        assert_eq!(
            required.verify_token(&sha1_only, BODY).unwrap_err().kind(),
            ErrorKind::MissingSha256
        );

        let sha256_only = with(|c| {
            c.remove("checksum");
        });
        let claims = required.verify_token(&sha256_only, BODY).unwrap();
        assert!(!claims.sha1_verified() && claims.sha256_verified());
    }

    #[test]
    fn any_changed_body_byte_fails() {
        let token = with(|_| {});
        let verifier = verifier_at(NOW);
        for i in 0..BODY.len() {
            let mut body = BODY.to_vec();
            body[i] ^= 0x01;
            assert_eq!(
                verifier.verify_token(&token, &body).unwrap_err().kind(),
                ErrorKind::ChecksumMismatch,
                "byte {i}"
            );
        }
        let mut longer = BODY.to_vec();
        longer.push(b' ');
        assert!(verifier.verify_token(&token, &longer).is_err());
        assert!(verifier
            .verify_token(&token, &BODY[..BODY.len() - 1])
            .is_err());
    }

    #[test]
    fn any_changed_token_byte_fails() {
        let token = with(|_| {});
        let verifier = verifier_at(NOW);
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            // Swap within the base64url alphabet so the token stays well-formed text.
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let mutated = String::from_utf8(bytes).unwrap();
            assert!(
                verifier.verify_token(&mutated, BODY).is_err(),
                "byte {i} of the token changed and still accepted"
            );
        }
    }

    #[test]
    fn chunked_updates_equal_one_update() {
        let token = with(|_| {});
        let verifier = verifier_at(NOW);
        let mut pending = verifier.begin_token(&token).unwrap();
        for chunk in BODY.chunks(7) {
            pending.update(chunk);
        }
        assert!(pending.finish().is_ok());
    }

    #[test]
    fn rotation_tries_each_secret_in_order() {
        let token_old = with(|_| {});
        let token_new = mint(DT_HEADER, &dt_claims(BODY).to_string(), "new secret");
        let token_third = mint(DT_HEADER, &dt_claims(BODY).to_string(), "third");
        let verifier = verifier_at(NOW).add_secret("new secret");
        assert_eq!(
            verifier
                .verify_token(&token_old, BODY)
                .unwrap()
                .secret_index(),
            Some(0)
        );
        assert_eq!(
            verifier
                .verify_token(&token_new, BODY)
                .unwrap()
                .secret_index(),
            Some(1)
        );
        assert_eq!(
            verifier
                .verify_token(&token_third, BODY)
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidSignature
        );
    }

    #[test]
    fn header_rules() {
        let token = with(|_| {});
        let verifier = verifier_at(NOW);
        let kind = |headers: &HeaderMap| {
            verifier
                .verify(headers, BODY)
                .map(|_| ())
                .map_err(|e| e.kind())
        };

        let mut headers = HeaderMap::new();
        assert_eq!(kind(&headers), Err(ErrorKind::MissingHeader));
        headers.insert("X-DT-SIGNATURE", token.parse().unwrap());
        assert_eq!(kind(&headers), Ok(()));
        headers.append(X_DT_SIGNATURE, token.parse().unwrap());
        assert_eq!(kind(&headers), Err(ErrorKind::DuplicateHeader));

        let single = |value: HeaderValue| {
            let mut headers = HeaderMap::new();
            headers.insert(X_DT_SIGNATURE, value);
            kind(&headers)
        };
        assert_eq!(
            single(HeaderValue::from_static("")),
            Err(ErrorKind::InvalidHeader)
        );
        assert_eq!(
            single(HeaderValue::from_str(&format!(" {token}")).unwrap()),
            Err(ErrorKind::InvalidHeader)
        );
        assert_eq!(
            single(HeaderValue::from_bytes(&[0xe2, 0x82, 0xac]).unwrap()),
            Err(ErrorKind::InvalidHeader)
        );
        assert_eq!(
            single(HeaderValue::from_str(&"a".repeat(MAX_HEADER_LEN + 1)).unwrap()),
            Err(ErrorKind::HeaderTooLarge)
        );
        assert_eq!(
            single(HeaderValue::from_str(&"a".repeat(MAX_HEADER_LEN)).unwrap()),
            Err(ErrorKind::MalformedToken)
        );
    }

    /// `check_token_shape` refuses exactly what `begin` refuses before the HMAC, with the
    /// same kind, and passes everything else (wrong secret, expired, ...).
    #[test]
    fn empty_secret_is_a_config_error() {
        assert_eq!(Verifier::try_new("").unwrap_err(), ConfigError::EmptySecret);
        assert_eq!(
            Verifier::try_new(Vec::<u8>::new()).unwrap_err(),
            ConfigError::EmptySecret
        );
        assert!(Verifier::new("x").try_add_secret("").is_err());
        assert!(std::panic::catch_unwind(|| Verifier::new("")).is_err());
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
