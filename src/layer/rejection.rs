//! How a [`DtSignatureError`] becomes a response.

use http::header::{HeaderValue, CONTENT_TYPE};
use http::Response;

use crate::error::DtSignatureError;

/// Makes the response sent back for a refused request.
///
/// Implemented for [`DefaultRejection`] and for every closure
/// `Fn(&DtSignatureError) -> Response<B>`; set one with
/// [`DtSignatureLayer::with_rejection`](crate::DtSignatureLayer::with_rejection).
/// Whatever it returns, [`DtSignature`](crate::DtSignature) then inserts a clone of the
/// error into the response's extensions.
///
/// Answer with a non-2xx status: DT counts any 2xx as delivered and would never retry.
/// Answer [`ErrorKind::UnknownTenant`](crate::ErrorKind::UnknownTenant) as you answer
/// [`ErrorKind::InvalidSignature`](crate::ErrorKind::InvalidSignature), or clients can
/// probe which tenants exist: build the answer from
/// [`DtSignatureError::status`] and its `Display`, as the default does, which also answer
/// an unknown tenant under a key outage with a known tenant's `503 signing keys
/// unavailable`.
///
/// ```
/// use axum::body::Body;
/// use http::{Response, StatusCode};
/// use tower_dt_signature::{DtSignatureError, DtSignatureLayer};
///
/// let layer = DtSignatureLayer::new("secret").with_rejection(|error: &DtSignatureError| {
///     Response::builder()
///         .status(error.status())
///         .header("content-type", "application/json")
///         .body(Body::from(format!(r#"{{"error":"{error}"}}"#)))
///         .unwrap()
/// });
/// # let _ = layer;
/// ```
pub trait MakeRejection<B> {
    /// The response for `error`.
    fn make_rejection(&self, error: &DtSignatureError) -> Response<B>;
}

impl<F, B> MakeRejection<B> for F
where
    F: Fn(&DtSignatureError) -> Response<B>,
{
    fn make_rejection(&self, error: &DtSignatureError) -> Response<B> {
        self(error)
    }
}

/// The default rejection: the error's status (400, 413 for a body over the limit, 503 when
/// the secret resolver failed or the signing keys are unavailable) and a `text/plain` body
/// naming the reason, such as
/// `checksum mismatch` ([`DtSignatureError::public_str`]: an unknown tenant, and any
/// refusal a gateway decides after picking the tenant, reads `invalid token signature`,
/// so the answer never tells which tenants exist).
///
/// Works for any response body that can be made from a `&'static str`: axum's `Body`,
/// `http_body_util::Full<Bytes>`, `String`, ... For other body types use a closure.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct DefaultRejection;

impl<B> MakeRejection<B> for DefaultRejection
where
    B: From<&'static str>,
{
    fn make_rejection(&self, error: &DtSignatureError) -> Response<B> {
        let mut response = Response::new(B::from(error.public_str()));
        *response.status_mut() = error.status();
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

/// Log the refusal, make the response and attach the error to it.
pub(crate) fn reject<R, B>(rejection: &R, error: DtSignatureError) -> Response<B>
where
    R: MakeRejection<B>,
{
    tracing::debug!(
        reason = error.reason(),
        scheme = error.scheme().map(|scheme| scheme.code()),
        status = error.status().as_u16(),
        "refused Data Connector request"
    );
    let mut response = rejection.make_rejection(&error);
    response.extensions_mut().insert(error);
    response
}

/// Log a failure that report-only mode forwards anyway.
pub(crate) fn report(error: &DtSignatureError) {
    tracing::debug!(
        reason = error.reason(),
        scheme = error.scheme().map(|scheme| scheme.code()),
        "Data Connector request failed verification; forwarded (report-only)"
    );
}
