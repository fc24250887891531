//! The verified claims handed to the inner service.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a verified `X-Dt-Signature` token said, inserted into the request extensions of
/// every request that [`DtSignature`](crate::DtSignature) forwards.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtClaims {
    pub(crate) jti: Option<String>,
    pub(crate) iat: Option<u64>,
    pub(crate) exp: u64,
    pub(crate) sha1_verified: bool,
    pub(crate) sha256_verified: bool,
    pub(crate) secret_index: usize,
}

impl DtClaims {
    /// The token id (`jti`): a fresh id per token, not the event id. `None` if the token
    /// has none (every real DT token has one).
    pub fn jti(&self) -> Option<&str> {
        self.jti.as_deref()
    }

    /// `iat` in seconds since the Unix epoch: the event's timestamp, in whole seconds.
    pub fn iat(&self) -> Option<u64> {
        self.iat
    }

    /// `exp` in seconds since the Unix epoch (DT sets it to `iat + 3600`).
    pub fn exp(&self) -> u64 {
        self.exp
    }

    /// [`iat`](Self::iat) as a [`SystemTime`].
    pub fn issued_at(&self) -> Option<SystemTime> {
        self.iat.and_then(unix_seconds)
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

    /// Which configured secret verified the token: 0 for the one given to `new`, then 1,
    /// 2, ... in the order of `add_secret` calls. Watch it during a secret rotation to see
    /// when the old secret stops being used.
    pub fn secret_index(&self) -> usize {
        self.secret_index
    }
}

fn unix_seconds(secs: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}
