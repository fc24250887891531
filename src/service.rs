//! [`DtSignature`]: the `Service` that checks what it can before touching the body.

use std::fmt;
use std::task::{Context, Poll};

use http::header::CONTENT_LENGTH;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::body::DtBody;
use crate::error::{DtSignatureError, ErrorKind};
use crate::future::ResponseFuture;
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
}

impl<S, R> DtSignature<S, R> {
    pub(crate) fn new(inner: S, verifier: Verifier, max_body_size: usize, rejection: R) -> Self {
        Self {
            inner,
            verifier,
            max_body_size,
            rejection,
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
        let pending = match self.verifier.begin(request.headers()) {
            Ok(pending) => pending,
            Err(error) => return ResponseFuture::rejected(reject(&self.rejection, error)),
        };
        let declared = match declared_length(&request) {
            Some(len) if len > self.max_body_size as u64 => {
                let error = DtSignatureError::new(ErrorKind::BodyTooLarge);
                return ResponseFuture::rejected(reject(&self.rejection, error));
            }
            declared => declared,
        };

        // The service that was polled ready goes into the future; a fresh clone stays.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        // `declared` is at most `max_body_size`, so it fits a usize.
        let capacity = declared.map_or(0, |len| len as usize);
        ResponseFuture::buffering(
            request,
            pending,
            inner,
            self.rejection.clone(),
            self.max_body_size,
            capacity,
        )
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
