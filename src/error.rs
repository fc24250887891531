//! Errors: why a request was refused, and why a configuration was refused.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use http::StatusCode;

/// Why a Data Connector request failed verification.
///
/// The error is opaque: match on [`kind`](Self::kind). Its `Display` text is short,
/// lowercase and taken from a fixed set; it never contains the secret, the token, a
/// digest or body bytes, so it is safe to log and to send back to the client (except
/// [`ErrorKind::UnknownTenant`]'s, which tells that a tenant does not exist: the default
/// rejection sends [`ErrorKind::public_str`] instead).
///
/// Every rejection response made by [`DtSignature`](crate::DtSignature) carries a clone of
/// this error in its extensions, so an outer layer or a test can read why:
///
/// ```
/// # use tower_dt_signature::{DtSignatureError, ErrorKind};
/// # fn check(response: &http::Response<String>) {
/// if let Some(error) = response.extensions().get::<DtSignatureError>() {
///     assert_eq!(error.kind(), ErrorKind::MissingHeader);
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct DtSignatureError {
    kind: ErrorKind,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

/// The reason a request was refused; see [`DtSignatureError::kind`].
///
/// New reasons may be added in minor releases, so matches need a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request has no `X-Dt-Signature` header.
    MissingHeader,
    /// The request has more than one `X-Dt-Signature` header.
    DuplicateHeader,
    /// The header value is not visible ASCII.
    InvalidHeader,
    /// The header value is longer than 8 KiB.
    HeaderTooLarge,
    /// The header is not a compact JWS: three base64url parts, a JSON object header and
    /// JSON claims.
    MalformedToken,
    /// The token's `alg` is not `HS256`, or its header asks for an extension (`crit`) that
    /// this crate does not implement.
    UnsupportedAlgorithm,
    /// The token's HMAC does not match any configured secret.
    InvalidSignature,
    /// The claims are not a JSON object of the expected shape (for example `exp` as a
    /// string, or a claim given twice).
    MalformedClaims,
    /// The claims have no `exp`.
    MissingExpiry,
    /// `now >= exp + leeway`.
    Expired,
    /// `iat` is more than the leeway in the future.
    IssuedInFuture,
    /// `nbf` is more than the leeway in the future.
    NotYetValid,
    /// The claims carry neither `checksum` nor `checksum_sha256`.
    MissingChecksum,
    /// SHA-256 is required but the claims carry no `checksum_sha256`.
    MissingSha256,
    /// A checksum claim is not a hex digest of the right length.
    MalformedChecksum,
    /// A checksum claim does not match the body.
    ChecksumMismatch,
    /// The body is larger than the configured limit.
    BodyTooLarge,
    /// Reading the body failed (the client went away, a broken chunk).
    BodyRead,
    /// The [secret resolver](crate::ResolveSecrets) knows no tenant for this request.
    ///
    /// [`DefaultRejection`](crate::DefaultRejection) answers it exactly like
    /// [`InvalidSignature`](Self::InvalidSignature) (400 `invalid token signature`), so a
    /// client cannot tell an unknown tenant from a known one it has no secret for; the
    /// error in the response's extensions, the log line and the metric say
    /// `unknown_tenant`.
    UnknownTenant,
    /// The [secret resolver](crate::ResolveSecrets) failed (its store is down, a
    /// timeout): the request could not be checked. Answered with 503, so DT retries.
    ResolverFailed,
}

impl ErrorKind {
    /// The fixed, non-secret text that names this reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingHeader => "missing X-Dt-Signature header",
            Self::DuplicateHeader => "more than one X-Dt-Signature header",
            Self::InvalidHeader => "X-Dt-Signature header is not visible ASCII",
            Self::HeaderTooLarge => "X-Dt-Signature header too large",
            Self::MalformedToken => "malformed token",
            Self::UnsupportedAlgorithm => "unsupported token algorithm",
            Self::InvalidSignature => "invalid token signature",
            Self::MalformedClaims => "malformed token claims",
            Self::MissingExpiry => "token has no exp claim",
            Self::Expired => "token expired",
            Self::IssuedInFuture => "token issued in the future",
            Self::NotYetValid => "token not yet valid",
            Self::MissingChecksum => "token has no checksum claim",
            Self::MissingSha256 => "token has no checksum_sha256 claim",
            Self::MalformedChecksum => "malformed checksum claim",
            Self::ChecksumMismatch => "checksum mismatch",
            Self::BodyTooLarge => "request body too large",
            Self::BodyRead => "failed to read request body",
            Self::UnknownTenant => "unknown tenant",
            Self::ResolverFailed => "secret lookup failed",
        }
    }

    /// A stable `snake_case` name for this reason, such as `checksum_mismatch`: the `kind`
    /// label of the metrics (feature `metrics`), and handy in structured logs.
    pub const fn code(self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_header",
            Self::DuplicateHeader => "duplicate_header",
            Self::InvalidHeader => "invalid_header",
            Self::HeaderTooLarge => "header_too_large",
            Self::MalformedToken => "malformed_token",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::InvalidSignature => "invalid_signature",
            Self::MalformedClaims => "malformed_claims",
            Self::MissingExpiry => "missing_expiry",
            Self::Expired => "expired",
            Self::IssuedInFuture => "issued_in_future",
            Self::NotYetValid => "not_yet_valid",
            Self::MissingChecksum => "missing_checksum",
            Self::MissingSha256 => "missing_sha256",
            Self::MalformedChecksum => "malformed_checksum",
            Self::ChecksumMismatch => "checksum_mismatch",
            Self::BodyTooLarge => "body_too_large",
            Self::BodyRead => "body_read",
            Self::UnknownTenant => "unknown_tenant",
            Self::ResolverFailed => "resolver_failed",
        }
    }

    /// The text [`DefaultRejection`](crate::DefaultRejection) sends: [`as_str`](Self::as_str),
    /// except that [`UnknownTenant`](Self::UnknownTenant) reads like
    /// [`InvalidSignature`](Self::InvalidSignature), so that the answer never tells which
    /// tenants exist.
    pub fn public_str(self) -> &'static str {
        match self {
            Self::UnknownTenant => Self::InvalidSignature.as_str(),
            other => other.as_str(),
        }
    }

    /// The status code the default rejection answers with: `413 Payload Too Large` for
    /// [`BodyTooLarge`](Self::BodyTooLarge), `503 Service Unavailable` for
    /// [`ResolverFailed`](Self::ResolverFailed), `400 Bad Request` for everything else
    /// ([`UnknownTenant`](Self::UnknownTenant) included).
    pub fn status(self) -> StatusCode {
        match self {
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ResolverFailed => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DtSignatureError {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self { kind, source: None }
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            source: Some(Arc::from(source.into())),
        }
    }

    /// A body read error: [`BodyTooLarge`](ErrorKind::BodyTooLarge) if an outer limit
    /// (`http_body_util::Limited`, as used by tower-http's `RequestBodyLimitLayer`) cut the
    /// body off, [`BodyRead`](ErrorKind::BodyRead) otherwise.
    pub(crate) fn from_body_error(error: Box<dyn StdError + Send + Sync>) -> Self {
        let mut cause: Option<&(dyn StdError + 'static)> = Some(&*error);
        while let Some(current) = cause {
            if current.is::<http_body_util::LengthLimitError>() {
                return Self::with_source(ErrorKind::BodyTooLarge, error);
            }
            cause = current.source();
        }
        Self::with_source(ErrorKind::BodyRead, error)
    }

    /// Why the request was refused.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The status code of the default rejection: 413 for a body over the limit, 503 when
    /// the secret resolver failed, 400 for everything else.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }
}

impl From<ErrorKind> for DtSignatureError {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

impl fmt::Debug for DtSignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The source is a body read error or a resolver's error; print its presence, not its text,
        // so that `{:?}` stays as safe to log as `Display`.
        f.debug_struct("DtSignatureError")
            .field("kind", &self.kind)
            .field("has_source", &self.source.is_some())
            .finish()
    }
}

impl fmt::Display for DtSignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())
    }
}

impl StdError for DtSignatureError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

/// Why a configuration was refused, from the `try_` constructors.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The secret is empty. DT does not allow an empty signature secret, and an empty HMAC
    /// key would make every token easy to forge.
    EmptySecret,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptySecret => f.write_str("signature secret is empty"),
        }
    }
}

impl StdError for ConfigError {}
