//! [`DtSignature`]: the `Service` that checks what it can before touching the body.

use std::fmt;
use std::task::{Context, Poll};

use http::header::CONTENT_LENGTH;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::body::DtBody;
use crate::error::{DtSignatureError, ErrorKind};
use crate::future::{Pending, ResponseFuture};
use crate::meter::Meter;
use crate::rejection::{reject, DefaultRejection, MakeRejection};
use crate::verify::Verifier;

/// Middleware that forwards only requests signed by a DT Data Connector.
///
/// Made by [`DtSignatureLayer`](crate::DtSignatureLayer); see there for the
/// configuration. Refusals are `Ok` responses (400, or 413 for a body over the limit), so
/// `Error` is the inner service's own error type and axum needs no `HandleErrorLayer`.
#[derive(Clone)]
pub struct DtSignature<S, R = DefaultRejection> {
    inner: S,
    verifier: Verifier,
    max_body_size: usize,
    rejection: R,
    report_only: bool,
}

impl<S, R> DtSignature<S, R> {
    pub(crate) fn new(
        inner: S,
        verifier: Verifier,
        max_body_size: usize,
        rejection: R,
        report_only: bool,
    ) -> Self {
        Self {
            inner,
            verifier,
            max_body_size,
            rejection,
            report_only,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwrap the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug, R: fmt::Debug> fmt::Debug for DtSignature<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtSignature")
            .field("inner", &self.inner)
            .field("verifier", &self.verifier)
            .field("max_body_size", &self.max_body_size)
            .field("rejection", &self.rejection)
            .field("report_only", &self.report_only)
            .finish()
    }
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for DtSignature<S, R>
where
    S: Service<Request<DtBody>, Response = Response<ResBody>> + Clone,
    ReqBody: Body,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    R: MakeRejection<ResBody> + Clone,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Rules 1-3, then the declared length: all decided before a body byte is read.
        let mut meter = Meter::default();
        let verifier = match meter.timed(|| self.verifier.begin(request.headers())) {
            Err(error) if !self.report_only => {
                meter.rejected(error.kind());
                return ResponseFuture::rejected(reject(&self.rejection, error));
            }
            // In report-only mode a failure is carried along and the body buffered.
            verifier => verifier,
        };
        let capacity = match check_length(&request, self.max_body_size) {
            Ok(capacity) => capacity,
            Err(error) => {
                meter.rejected(error.kind());
                return ResponseFuture::rejected(reject(&self.rejection, error));
            }
        };

        // The service that was polled ready goes into the future; a fresh clone stays.
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        let (parts, body) = request.into_parts();
        let pending = Pending {
            parts,
            verifier,
            service,
            rejection: self.rejection.clone(),
            report_only: self.report_only,
            meter,
        };
        ResponseFuture::buffering(body, pending, self.max_body_size, capacity)
    }
}

/// The buffer capacity to reserve (the declared length, 0 if none), or `BodyTooLarge` if
/// the declared length is over `max_body_size`.
pub(crate) fn check_length<B: Body>(
    request: &Request<B>,
    max_body_size: usize,
) -> Result<usize, DtSignatureError> {
    match declared_length(request) {
        Some(len) if len > max_body_size as u64 => {
            Err(DtSignatureError::new(ErrorKind::BodyTooLarge))
        }
        // At most `max_body_size`, so it fits a usize.
        declared => Ok(declared.map_or(0, |len| len as usize)),
    }
}

/// The body's length as declared by `Content-Length`, or the lower bound of its size hint
/// (hyper sets it from `Content-Length`), whichever is larger.
fn declared_length<B: Body>(request: &Request<B>) -> Option<u64> {
    let header = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let hint = request.body().size_hint().lower();
    match header {
        Some(len) => Some(len.max(hint)),
        None if hint > 0 => Some(hint),
        None => None,
    }
}
