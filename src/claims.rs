//! The verified claims handed to the inner service.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::Scheme;

/// What the verified tokens said, inserted into the request extensions of every request
/// that [`DtSignature`](crate::DtSignature) forwards: which schemes were verified
/// ([`schemes`](Self::schemes)), the HMAC token's `jti` and secret, the asymmetric
/// token's `kid` and organization.
///
/// With axum, take it as `Extension<DtClaims>`:
///
/// ```
/// use axum::Extension;
/// use tower_dt_signature::DtClaims;
///
/// async fn handler(Extension(claims): Extension<DtClaims>) -> &'static str {
///     assert!(claims.sha1_verified() || claims.sha256_verified());
///     "ok"
/// }
/// # let _ = axum::Router::<()>::new().route("/", axum::routing::post(handler));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DtClaims {
    pub(crate) jti: Option<String>,
    /// The HMAC token's `iat`: the event's second.
    pub(crate) hmac_iat: Option<u64>,
    pub(crate) exp: u64,
    pub(crate) sha1_verified: bool,
    pub(crate) sha256_verified: bool,
    pub(crate) hmac: bool,
    pub(crate) secret_index: Option<usize>,
    pub(crate) asymmetric: Option<AsymmetricClaims>,
}

/// What a verified `DT-Asymmetric-Signature` token said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AsymmetricClaims {
    pub(crate) kid: String,
    pub(crate) org_id: String,
    pub(crate) issuer: std::sync::Arc<str>,
    /// The token's `iat`: when DT signed it.
    pub(crate) iat: Option<u64>,
}

impl DtClaims {
    /// Which schemes were verified: `[Hmac]`, `[Asymmetric]` or `[Hmac, Asymmetric]`.
    pub fn schemes(&self) -> &'static [Scheme] {
        match (self.hmac, self.asymmetric.is_some()) {
            (true, true) => &[Scheme::Hmac, Scheme::Asymmetric],
            (false, true) => &[Scheme::Asymmetric],
            _ => &[Scheme::Hmac],
        }
    }

    /// The HMAC token's id (`jti`): a fresh id per token, not the event id. `None` if the
    /// token has none (every real DT HMAC token has one) or no HMAC token was verified.
    pub fn jti(&self) -> Option<&str> {
        self.jti.as_deref()
    }

    /// The HMAC token's `iat` (`X-Dt-Signature`), in seconds since the Unix epoch: the
    /// **event's** timestamp, in whole seconds. `None` when no HMAC token was verified (or
    /// it had no `iat`; every real DT token has one).
    pub fn hmac_iat(&self) -> Option<u64> {
        self.hmac_iat
    }

    /// The asymmetric token's `iat` (`DT-Asymmetric-Signature`), in seconds since the Unix
    /// epoch: when DT **signed** the request, not the event's time (DT's one real token
    /// was signed in 2024 for an event of 2022). `None` when no asymmetric token was
    /// verified (or it had no `iat`).
    pub fn asymmetric_iat(&self) -> Option<u64> {
        self.asymmetric.as_ref().and_then(|claims| claims.iat)
    }

    /// `exp` in seconds since the Unix epoch: the earliest of the verified tokens' (DT sets
    /// it to [`hmac_iat`](Self::hmac_iat) + 3600 for HMAC,
    /// [`asymmetric_iat`](Self::asymmetric_iat) + 300 for ES256).
    pub fn exp(&self) -> u64 {
        self.exp
    }

    /// [`hmac_iat`](Self::hmac_iat) as a [`SystemTime`]: the event's second.
    pub fn hmac_issued_at(&self) -> Option<SystemTime> {
        self.hmac_iat().and_then(unix_seconds)
    }

    /// [`asymmetric_iat`](Self::asymmetric_iat) as a [`SystemTime`]: DT's signing time.
    pub fn asymmetric_issued_at(&self) -> Option<SystemTime> {
        self.asymmetric_iat().and_then(unix_seconds)
    }

    /// [`exp`](Self::exp) as a [`SystemTime`]; `None` only if it does not fit one.
    pub fn expires_at(&self) -> Option<SystemTime> {
        unix_seconds(self.exp)
    }

    /// Whether the token's SHA-1 `checksum` claim was present and matched the body.
    pub fn sha1_verified(&self) -> bool {
        self.sha1_verified
    }

    /// Whether the token's `checksum_sha256` claim was present and matched the body.
    pub fn sha256_verified(&self) -> bool {
        self.sha256_verified
    }

    /// Which configured secret verified the HMAC token: 0 for the one given to `new`,
    /// then 1, 2, ... in the order of `add_secret` calls; `None` when no HMAC token was
    /// verified. Watch it during a secret rotation to see when the old secret stops being
    /// used.
    pub fn secret_index(&self) -> Option<usize> {
        self.secret_index
    }

    /// The DT organization of a verified asymmetric token: its `sub`, bare (one leading
    /// `organizations/` taken off, as `keys::OrgId` compares it).
    pub fn org_id(&self) -> Option<&str> {
        self.asymmetric
            .as_ref()
            .map(|claims| claims.org_id.as_str())
    }

    /// The issuer of a verified asymmetric token (its `iss`, equal to the key set's).
    pub fn issuer(&self) -> Option<&str> {
        self.asymmetric.as_ref().map(|claims| &*claims.issuer)
    }

    /// The `kid` of the key that verified the asymmetric token.
    pub fn kid(&self) -> Option<&str> {
        self.asymmetric.as_ref().map(|claims| claims.kid.as_str())
    }
}

fn unix_seconds(secs: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}
