//! [`Verdict`]: what report-only mode tells the inner service.

use crate::claims::DtClaims;
use crate::error::DtSignatureError;

/// The outcome of verification, inserted into the request extensions of every request
/// forwarded in report-only mode ([`DtSignatureLayer::report_only`]).
///
/// In report-only mode every request is forwarded, verified or not, so that verification
/// can be switched on for an endpoint that already receives traffic and watched (log
/// lines at debug level, the `reported` metric outcome) before it is enforced. A verified
/// request also carries its [`DtClaims`], as in enforcing mode; a refused one does not, so
/// code that requires `DtClaims` (the `DtPayload` extractor, the duplicate guard) still
/// refuses it.
///
/// [`DtSignatureLayer::report_only`]: crate::DtSignatureLayer::report_only
///
/// ```
/// use axum::Extension;
/// use tower_dt_signature::Verdict;
///
/// async fn handler(Extension(verdict): Extension<Verdict>) -> &'static str {
///     if let Some(error) = verdict.error() {
///         tracing::info!(reason = %error, "would have been refused");
///     }
///     "ok"
/// }
/// # let _ = axum::Router::<()>::new().route("/", axum::routing::post(handler));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Verdict {
    /// The request passed every check.
    Verified(DtClaims),
    /// The request failed a check, and enforcing mode would have refused it.
    Refused(DtSignatureError),
}

impl Verdict {
    /// Whether the request passed every check.
    pub fn is_verified(&self) -> bool {
        matches!(self, Self::Verified(_))
    }

    /// The claims of a verified request.
    pub fn claims(&self) -> Option<&DtClaims> {
        match self {
            Self::Verified(claims) => Some(claims),
            Self::Refused(_) => None,
        }
    }

    /// Why a request would have been refused.
    pub fn error(&self) -> Option<&DtSignatureError> {
        match self {
            Self::Verified(_) => None,
            Self::Refused(error) => Some(error),
        }
    }
}
