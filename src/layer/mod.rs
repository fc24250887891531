//! The one pipeline: [`DtSignatureLayer`] (its configuration, one set of setters, the
//! `Layer` impl), the [`DtSignature`] service, its response future, the body the inner
//! service receives and the rejection.
//!
//! A single-secret layer and a gateway are the same pipeline: a single-secret layer is a
//! gateway whose resolver always picks one fixed tenant ([`FixedTenant`]), which inserts
//! no [`TenantId`](crate::gateway::TenantId).

use std::time::{Duration, SystemTime};

use tower_layer::Layer;

use crate::consts::DEFAULT_MAX_BODY_SIZE;
use crate::error::ConfigError;
use crate::gateway::{Decoy, Decoys, FixedTenant};
use crate::verify::Verifier;

pub(crate) mod body;
pub(crate) mod future;
pub(crate) mod meter;
pub(crate) mod rejection;
pub(crate) mod service;
pub(crate) mod verdict;

#[cfg(all(test, feature = "asymmetric"))]
mod decoy_tests;

use rejection::DefaultRejection;
pub use service::DtSignature;

/// A tower [`Layer`] that lets through only requests signed by a DT Data Connector.
///
/// It checks the `X-Dt-Signature` token before reading the body, buffers the body (up to
/// [`max_body_size`](Self::max_body_size)) while hashing it, compares the checksums and
/// forwards the request with the same bytes and the verified [`DtClaims`](crate::DtClaims)
/// in its extensions. Refused requests get a 400 (413 for a body over the limit) and never
/// reach the inner service. See the [crate docs](crate) for the rules.
///
/// Two constructors, one pipeline:
/// - [`new`](Self::new) (or `From<Verifier>`): one connector's secret.
/// - [`gateway`](Self::gateway): many connectors, each with its own secrets, picked per
///   request by a [`ResolveSecrets`](crate::gateway::ResolveSecrets); see
///   [`gateway`](crate::gateway).
///
/// ```
/// use axum::{routing::post, Router};
/// use tower_dt_signature::DtSignatureLayer;
///
/// async fn handler(body: axum::body::Bytes) -> &'static str {
///     // Only requests DT signed get here, with the exact bytes DT sent.
///     "ok"
/// }
///
/// let app: Router = Router::new()
///     .route("/", post(handler))
///     .layer(DtSignatureLayer::new("connector secret"));
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct DtSignatureLayer<Res = FixedTenant, R = DefaultRejection> {
    pub(crate) resolver: Res,
    pub(crate) max_body_size: usize,
    pub(crate) rejection: R,
    pub(crate) report_only: bool,
    /// Every request resolves to one tenant whose policy is known up front: set by
    /// `DtSignatureLayer::new` and `From<Verifier>`, never by a user's resolver. A gateway
    /// (`false`) first refuses a request that carries no signature header at all, which no
    /// tenant and no policy accepts, without asking its resolver.
    pub(crate) fixed: bool,
    /// The work done for an unknown tenant (a gateway's only): the one set with
    /// `decoy`, else the resolver's, else the `hmac` one.
    pub(crate) decoys: Decoys,
}

impl DtSignatureLayer {
    /// A layer for one signature secret (`&str`, `String` or bytes), used as is.
    ///
    /// # Panics
    ///
    /// If the secret is empty. Use [`try_new`](Self::try_new) to get an error instead.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self::from(Verifier::new(secret))
    }

    /// Like [`new`](Self::new), but returns [`ConfigError::EmptySecret`] for an empty
    /// secret instead of panicking.
    pub fn try_new(secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        Verifier::try_new(secret).map(Self::from)
    }
}

impl From<Verifier> for DtSignatureLayer {
    /// A layer that applies `verifier`'s rules, with the default body limit and rejection.
    fn from(verifier: Verifier) -> Self {
        Self {
            fixed: true,
            ..Self::gateway(FixedTenant::new(verifier))
        }
    }
}

impl<Res> DtSignatureLayer<Res> {
    /// A layer that verifies each request against the tenant `resolver` picks for it from
    /// the request head, before the body is read: a gateway in front of many Data
    /// Connectors. The handler finds the [`TenantId`](crate::gateway::TenantId) in the
    /// request extensions. See [`gateway`](crate::gateway).
    ///
    /// ```
    /// use axum::{routing::post, Extension, Router};
    /// use tower_dt_signature::gateway::{StaticSecrets, TenantId};
    /// use tower_dt_signature::{DtSignatureLayer, Verifier};
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
    ///     .layer(DtSignatureLayer::gateway(secrets));
    /// ```
    pub fn gateway(resolver: Res) -> Self {
        Self {
            resolver,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            rejection: DefaultRejection,
            report_only: false,
            fixed: false,
            decoys: Decoys::new(),
        }
    }
}

/// The setters of the single-secret layer: they change its one [`Verifier`].
impl<R> DtSignatureLayer<FixedTenant, R> {
    fn map_verifier(mut self, f: impl FnOnce(Verifier) -> Verifier) -> Self {
        self.resolver = FixedTenant::new(f(self.resolver.into_verifier()));
        self
    }

    /// Also accept tokens signed with `secret` (secret rotation). See
    /// [`Verifier::add_secret`].
    ///
    /// # Panics
    ///
    /// If the secret is empty. Use [`try_add_secret`](Self::try_add_secret) to get an
    /// error instead.
    pub fn add_secret(self, secret: impl AsRef<[u8]>) -> Self {
        self.map_verifier(|verifier| verifier.add_secret(secret))
    }

    /// Like [`add_secret`](Self::add_secret), but returns an error for an empty secret.
    pub fn try_add_secret(mut self, secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let verifier = self.resolver.into_verifier().try_add_secret(secret)?;
        self.resolver = FixedTenant::new(verifier);
        Ok(self)
    }

    /// Tolerated clock skew. See [`Verifier::leeway`]. Default: 60 seconds.
    pub fn leeway(self, leeway: Duration) -> Self {
        self.map_verifier(|verifier| verifier.leeway(leeway))
    }

    /// The clock that time checks read. See [`Verifier::clock`]. Default: the system clock.
    pub fn clock(self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.map_verifier(|verifier| verifier.clock(clock))
    }

    /// Refuse tokens without `checksum_sha256`. See [`Verifier::require_sha256`].
    /// Default: `false`.
    pub fn require_sha256(self, require: bool) -> Self {
        self.map_verifier(|verifier| verifier.require_sha256(require))
    }

    /// The verifier this layer applies, to share its rules with code outside tower.
    pub fn verifier(&self) -> &Verifier {
        self.resolver.verifier()
    }
}

impl<Res, R> DtSignatureLayer<Res, R> {
    /// The largest body accepted, in bytes (for every tenant of a gateway). A larger
    /// `Content-Length` is answered with 413 before the body is read; a body without one
    /// gets 413 as soon as it passes the limit.
    ///
    /// Default: [`DEFAULT_MAX_BODY_SIZE`] (1 MiB).
    pub fn max_body_size(mut self, limit: usize) -> Self {
        self.max_body_size = limit;
        self
    }

    /// Report-only mode: verify every request and record the outcome, but forward every
    /// request, with the same bytes, whatever the outcome. For switching verification on
    /// for an endpoint that already receives traffic: watch, then enforce.
    ///
    /// Every forwarded request carries a [`Verdict`](crate::Verdict) in its extensions, in
    /// both modes (and [`DtClaims`](crate::DtClaims) only when verified); a failure is
    /// logged at debug level and, with the feature `metrics`, counted with
    /// `outcome="reported"`. An unknown tenant or a failed lookup is forwarded too (with
    /// the `TenantId` only when a tenant was found). A body over
    /// [`max_body_size`](Self::max_body_size) (413) or a body that cannot be read (400) is
    /// still refused: there are no intact bytes to forward.
    ///
    /// Default: `false` (failures are refused and never reach the inner service).
    pub fn report_only(mut self, report_only: bool) -> Self {
        self.report_only = report_only;
        self
    }

    /// Replace the response sent for refused requests: a closure
    /// `Fn(&DtSignatureError) -> Response<B>` or any [`MakeRejection`](crate::rejection::MakeRejection).
    /// Default: [`DefaultRejection`].
    pub fn with_rejection<R2>(self, rejection: R2) -> DtSignatureLayer<Res, R2> {
        DtSignatureLayer {
            resolver: self.resolver,
            max_body_size: self.max_body_size,
            rejection,
            report_only: self.report_only,
            fixed: self.fixed,
            decoys: self.decoys,
        }
    }

    /// The work a gateway does for a request of an unknown tenant, so that the time (and,
    /// under a key outage, the status) of its answer does not tell unknown tenants from
    /// known ones (see [`Decoy`]). It wins over the decoy the resolver names. No effect on
    /// a single-secret layer, which has no unknown tenants.
    ///
    /// Default: the decoy the resolver names
    /// ([`ResolveSecrets::decoy`](crate::gateway::ResolveSecrets::decoy): a
    /// [`StaticSecrets`](crate::gateway::StaticSecrets) follows its tenants), else
    /// [`Decoy::hmac`], the work of an `hmac` tenant.
    pub fn decoy(mut self, decoy: Decoy) -> Self {
        self.decoys.set(decoy);
        self
    }

    /// The resolver that picks each request's tenant ([`FixedTenant`] for a single-secret
    /// layer).
    pub fn resolver(&self) -> &Res {
        &self.resolver
    }
}

impl<S, Res: Clone, R: Clone> Layer<S> for DtSignatureLayer<Res, R> {
    type Service = DtSignature<S, Res, R>;

    fn layer(&self, inner: S) -> Self::Service {
        DtSignature::from_layer(inner, self.clone())
    }
}
