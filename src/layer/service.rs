//! [`DtSignature`]: the `Service` that checks what it can before touching the body.

use std::fmt;
use std::task::{Context, Poll};

use http::header::CONTENT_LENGTH;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::body::DtBody;
use super::future::{ResponseFuture, Waiting};
use super::meter::Meter;
use super::rejection::{DefaultRejection, MakeRejection};
use super::DtSignatureLayer;
use crate::error::{ConfigError, DtSignatureError, ErrorKind};
use crate::gateway::{FixedTenant, ResolveSecrets};

/// Middleware that forwards only requests signed by a DT Data Connector.
///
/// Made by [`DtSignatureLayer`], or directly with [`new`](Self::new); see the layer for
/// the configuration. Refusals are `Ok` responses (400, 413 for a body over the limit, 503
/// when a gateway's lookup failed), so `Error` is the inner service's own error type and
/// axum needs no `HandleErrorLayer`.
#[derive(Clone)]
#[must_use]
pub struct DtSignature<S, Res = FixedTenant, R = DefaultRejection> {
    inner: S,
    config: DtSignatureLayer<Res, R>,
}

impl<S> DtSignature<S> {
    /// Wrap `inner` with the checks of [`DtSignatureLayer::new(secret)`](DtSignatureLayer::new).
    ///
    /// # Panics
    ///
    /// If the secret is empty. Use [`try_new`](Self::try_new) to get an error instead.
    pub fn new(inner: S, secret: impl AsRef<[u8]>) -> Self {
        Self::from_layer(inner, DtSignatureLayer::new(secret))
    }

    /// Like [`new`](Self::new), but returns [`ConfigError::EmptySecret`] for an empty
    /// secret instead of panicking.
    pub fn try_new(inner: S, secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        DtSignatureLayer::try_new(secret).map(|config| Self::from_layer(inner, config))
    }

    /// A [`DtSignatureLayer`] for one secret: the same as
    /// [`DtSignatureLayer::new`], named as tower-http's services name their layers.
    ///
    /// # Panics
    ///
    /// If the secret is empty.
    pub fn layer(secret: impl AsRef<[u8]>) -> DtSignatureLayer {
        DtSignatureLayer::new(secret)
    }
}

impl<S, Res, R> DtSignature<S, Res, R> {
    pub(crate) fn from_layer(inner: S, config: DtSignatureLayer<Res, R>) -> Self {
        Self { inner, config }
    }

    // The tower accessor idiom (`get_ref`, `get_mut`, `into_inner`), as every tower-http
    // service has it: the same three methods stand on each service of this crate.

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

impl<S: fmt::Debug, Res: fmt::Debug, R: fmt::Debug> fmt::Debug for DtSignature<S, Res, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtSignature")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

impl<S, Res, R, ReqBody, ResBody> Service<Request<ReqBody>> for DtSignature<S, Res, R>
where
    S: Service<Request<DtBody>, Response = Response<ResBody>> + Clone,
    Res: ResolveSecrets,
    ReqBody: Body,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    R: MakeRejection<ResBody> + Clone,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, Res, R>;

    /// Always ready: the inner service's readiness is acquired by the response future once
    /// the body is in and verified, so a client that trickles its body (or a request that
    /// is refused) never holds an inner permit, such as a concurrency limit's. The service
    /// the future polls ready is the one it calls.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let config = &self.config;
        // The declared length holds for every tenant and policy: decided before the
        // resolver runs and before a body byte is read. The tokens come after the
        // resolver, which says which policy applies.
        let capacity = match check_length(&request, config.max_body_size) {
            Ok(capacity) => capacity,
            Err(error) => {
                return ResponseFuture::rejected(&config.rejection, Meter::default(), error)
            }
        };

        // No signature header at all: every tenant and policy refuses it, so a gateway
        // does not ask its resolver (whose failure would hide the request's own refusal).
        let unsigned = !config.fixed && !has_signature_header(request.headers());
        let (parts, body) = request.into_parts();
        let resolving = (!unsigned).then(|| config.resolver.resolve(&parts));
        // A clone goes into the future, which polls it ready once the body is verified.
        let service = self.inner.clone();
        ResponseFuture::resolving(
            resolving,
            Waiting {
                parts,
                body,
                service,
                rejection: config.rejection.clone(),
                max_body_size: config.max_body_size,
                capacity,
                report_only: config.report_only,
                masked: false,
                meter: Meter::default(),
                decoy: (!config.fixed).then(|| config.decoys.pick(config.resolver.decoy())),
            },
        )
    }
}

/// Whether the request carries either of DT's signature headers.
fn has_signature_header(headers: &http::HeaderMap) -> bool {
    headers.contains_key(crate::consts::X_DT_SIGNATURE)
        || headers.contains_key(crate::consts::DT_ASYMMETRIC_SIGNATURE)
}

/// The buffer capacity to reserve (the declared length, 0 if none), or `BodyTooLarge` if
/// the declared length is over `max_body_size`.
fn check_length<B: Body>(
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
