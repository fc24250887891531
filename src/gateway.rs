//! [`DtGatewayLayer`]: one layer for many Data Connectors, each with its own secrets,
//! picked per request by a [`ResolveSecrets`]. Its service resolves the tenant, then runs
//! the same buffering future as [`DtSignature`](crate::DtSignature).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::DtBody;
use crate::error::{DtSignatureError, ErrorKind};
use crate::future::{Pending, ResponseFuture};
use crate::layer::DEFAULT_MAX_BODY_SIZE;
use crate::meter::Meter;
use crate::rejection::{reject, DefaultRejection, MakeRejection};
use crate::resolve::{ResolveSecrets, TenantId};
use crate::service::check_length;
use crate::verify::check_token_shape;

/// A tower [`Layer`] that verifies the requests of many Data Connectors, each against its
/// own secrets: a gateway in front of several DT projects.
///
/// For each request it checks what needs no secret (the `X-Dt-Signature` header, the
/// token's shape and `alg`, the `Content-Length`), asks the [`ResolveSecrets`] for the
/// [`Tenant`](crate::Tenant) from the request head, then verifies exactly as
/// [`DtSignatureLayer`](crate::DtSignatureLayer) does with the tenant's
/// [`Verifier`](crate::Verifier). A forwarded request carries the [`TenantId`] in its
/// extensions, beside the [`DtClaims`](crate::DtClaims).
///
/// | The resolver returns | Answer (default rejection) | [`ErrorKind`] |
/// | --- | --- | --- |
/// | a tenant | the same as `DtSignatureLayer` with its verifier | as there |
/// | `Ok(None)` | 400 `invalid token signature`, before the body is read | `UnknownTenant` |
/// | `Err` | 503 `secret lookup failed`, before the body is read | `ResolverFailed` |
///
/// The checks that need no secret run before the resolver, so a request for an unknown
/// tenant gets exactly the answer a known tenant gives to a token not signed with its
/// secret: the answers never tell which tenants exist. The error in the response's
/// extensions, the log line (debug) and the metric still say `unknown_tenant`.
///
/// With a single secret use `DtSignatureLayer`: it has no resolver step at all.
///
/// ```
/// use axum::{routing::post, Extension, Router};
/// use tower_dt_signature::{DtGatewayLayer, StaticSecrets, TenantId, Verifier};
///
/// async fn handler(Extension(tenant): Extension<TenantId>) -> String {
///     format!("event from {tenant}")
/// }
///
/// let secrets = StaticSecrets::by_path_segment(1)
///     .tenant("warehouse", Verifier::new("warehouse secret"))
///     .tenant("office", Verifier::new("office secret").require_sha256(true));
/// let app: Router = Router::new()
///     .route("/dt/{connector}", post(handler))
///     .layer(DtGatewayLayer::new(secrets));
/// ```
#[derive(Clone)]
pub struct DtGatewayLayer<Res, R = DefaultRejection> {
    resolver: Res,
    max_body_size: usize,
    rejection: R,
    report_only: bool,
}

impl<Res> DtGatewayLayer<Res> {
    /// A layer that verifies each request against the secrets `resolver` picks for it.
    pub fn new(resolver: Res) -> Self {
        Self {
            resolver,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            rejection: DefaultRejection,
            report_only: false,
        }
    }
}

impl<Res, R> DtGatewayLayer<Res, R> {
    /// The largest body accepted, in bytes, for every tenant. See
    /// [`DtSignatureLayer::max_body_size`](crate::DtSignatureLayer::max_body_size).
    ///
    /// Default: [`DEFAULT_MAX_BODY_SIZE`] (1 MiB).
    pub fn max_body_size(mut self, limit: usize) -> Self {
        self.max_body_size = limit;
        self
    }

    /// Report-only mode: forward every request with its [`Verdict`](crate::Verdict), as
    /// [`DtSignatureLayer::report_only`](crate::DtSignatureLayer::report_only) does. An
    /// unknown tenant or a failed lookup is forwarded too (with the `TenantId` only when a
    /// tenant was found); a body over the limit (413) or unreadable (400) is still refused.
    ///
    /// Default: `false`.
    pub fn report_only(mut self, report_only: bool) -> Self {
        self.report_only = report_only;
        self
    }

    /// Replace the response sent for refused requests. See
    /// [`DtSignatureLayer::with_rejection`](crate::DtSignatureLayer::with_rejection).
    /// Default: [`DefaultRejection`].
    pub fn with_rejection<R2>(self, rejection: R2) -> DtGatewayLayer<Res, R2> {
        DtGatewayLayer {
            resolver: self.resolver,
            max_body_size: self.max_body_size,
            rejection,
            report_only: self.report_only,
        }
    }

    /// The resolver this layer asks.
    pub fn resolver(&self) -> &Res {
        &self.resolver
    }
}

impl<Res: fmt::Debug, R: fmt::Debug> fmt::Debug for DtGatewayLayer<Res, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtGatewayLayer")
            .field("resolver", &self.resolver)
            .field("max_body_size", &self.max_body_size)
            .field("rejection", &self.rejection)
            .field("report_only", &self.report_only)
            .finish()
    }
}

impl<S, Res: Clone, R: Clone> Layer<S> for DtGatewayLayer<Res, R> {
    type Service = DtGateway<S, Res, R>;

    fn layer(&self, inner: S) -> Self::Service {
        DtGateway {
            inner,
            resolver: self.resolver.clone(),
            max_body_size: self.max_body_size,
            rejection: self.rejection.clone(),
            report_only: self.report_only,
        }
    }
}

/// Middleware that forwards only requests signed with the secrets of their tenant.
///
/// Made by [`DtGatewayLayer`]; see there. Refusals are `Ok` responses, so `Error` is the
/// inner service's own error type.
#[derive(Clone)]
pub struct DtGateway<S, Res, R = DefaultRejection> {
    inner: S,
    resolver: Res,
    max_body_size: usize,
    rejection: R,
    report_only: bool,
}

impl<S, Res, R> DtGateway<S, Res, R> {
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

impl<S: fmt::Debug, Res: fmt::Debug, R: fmt::Debug> fmt::Debug for DtGateway<S, Res, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtGateway")
            .field("inner", &self.inner)
            .field("resolver", &self.resolver)
            .field("max_body_size", &self.max_body_size)
            .field("rejection", &self.rejection)
            .field("report_only", &self.report_only)
            .finish()
    }
}

impl<S, Res, R, ReqBody, ResBody> Service<Request<ReqBody>> for DtGateway<S, Res, R>
where
    S: Service<Request<DtBody>, Response = Response<ResBody>> + Clone,
    Res: ResolveSecrets,
    ReqBody: Body,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    R: MakeRejection<ResBody> + Clone,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = GatewayFuture<S, ReqBody, Res, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let mut meter = Meter::default();
        // What needs no secret first, so an unknown tenant is answered as a known one is.
        let shape = match meter.timed(|| check_token_shape(request.headers())) {
            Err(error) if !self.report_only => return self.refuse(meter, error),
            shape => shape.err(),
        };
        let capacity = match check_length(&request, self.max_body_size) {
            Ok(capacity) => capacity,
            Err(error) => return self.refuse(meter, error),
        };

        let (parts, body) = request.into_parts();
        let future = self.resolver.resolve(&parts);
        // The service that was polled ready goes into the future; a fresh clone stays.
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        GatewayFuture {
            state: GatewayState::Resolving {
                future,
                waiting: Some(Waiting {
                    parts,
                    body,
                    service,
                    rejection: self.rejection.clone(),
                    shape,
                    max_body_size: self.max_body_size,
                    capacity,
                    report_only: self.report_only,
                    meter,
                }),
            },
        }
    }
}

impl<S, Res, R> DtGateway<S, Res, R> {
    fn refuse<B, ResBody>(
        &self,
        meter: Meter,
        error: DtSignatureError,
    ) -> GatewayFuture<S, B, Res, R>
    where
        S: Service<Request<DtBody>, Response = Response<ResBody>>,
        Res: ResolveSecrets,
        R: MakeRejection<ResBody>,
    {
        meter.rejected(error.kind());
        GatewayFuture::verifying(ResponseFuture::rejected(reject(&self.rejection, error)))
    }
}

pin_project! {
    /// The response future of [`DtGateway`]: resolve the tenant, then buffer, verify and
    /// call the inner service.
    pub struct GatewayFuture<S, B, Res, R>
    where
        S: Service<Request<DtBody>>,
        Res: ResolveSecrets,
    {
        #[pin]
        state: GatewayState<S, B, Res, R>,
    }
}

pin_project! {
    #[project = GatewayStateProj]
    enum GatewayState<S, B, Res, R>
    where
        S: Service<Request<DtBody>>,
        Res: ResolveSecrets,
    {
        Resolving {
            #[pin]
            future: Res::Future,
            waiting: Option<Waiting<S, B, R>>,
        },
        Verifying {
            #[pin]
            future: ResponseFuture<S, B, R>,
        },
    }
}

/// The request and what verifying it needs, while the resolver runs.
struct Waiting<S, B, R> {
    parts: Parts,
    body: B,
    service: S,
    rejection: R,
    /// Report-only mode: a failed shape check, carried along.
    shape: Option<DtSignatureError>,
    max_body_size: usize,
    capacity: usize,
    report_only: bool,
    meter: Meter,
}

impl<S, B, Res, R> GatewayFuture<S, B, Res, R>
where
    S: Service<Request<DtBody>>,
    Res: ResolveSecrets,
{
    fn verifying(future: ResponseFuture<S, B, R>) -> Self {
        Self {
            state: GatewayState::Verifying { future },
        }
    }
}

impl<S, B, Res, R, ResBody> Future for GatewayFuture<S, B, Res, R>
where
    S: Service<Request<DtBody>, Response = Response<ResBody>>,
    Res: ResolveSecrets,
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    R: MakeRejection<ResBody>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                GatewayStateProj::Verifying { future } => return future.poll(cx),
                GatewayStateProj::Resolving { future, waiting } => {
                    let resolved = ready!(future.poll(cx));
                    let Waiting {
                        mut parts,
                        body,
                        service,
                        rejection,
                        shape,
                        max_body_size,
                        capacity,
                        report_only,
                        mut meter,
                    } = waiting.take().expect("polled after completion");
                    let verifier = match resolved {
                        Ok(Some(tenant)) => {
                            parts.extensions.insert(TenantId::clone(tenant.id()));
                            match shape {
                                Some(error) => Err(error),
                                None => meter.timed(|| tenant.verifier().begin(&parts.headers)),
                            }
                        }
                        Ok(None) => Err(shape
                            .unwrap_or_else(|| DtSignatureError::new(ErrorKind::UnknownTenant))),
                        Err(error) => {
                            let source = std::error::Error::source(&error)
                                .map(ToString::to_string)
                                .unwrap_or_default();
                            tracing::warn!(error = %source, "secret resolver failed");
                            Err(DtSignatureError::with_source(
                                ErrorKind::ResolverFailed,
                                error,
                            ))
                        }
                    };
                    match verifier {
                        Err(error) if !report_only => {
                            meter.rejected(error.kind());
                            ResponseFuture::rejected(reject(&rejection, error))
                        }
                        verifier => {
                            let pending = Pending {
                                parts,
                                verifier,
                                service,
                                rejection,
                                report_only,
                                meter,
                            };
                            ResponseFuture::buffering(body, pending, max_body_size, capacity)
                        }
                    }
                }
            };
            this.state.set(GatewayState::Verifying { future: next });
        }
    }
}
