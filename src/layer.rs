//! [`DtSignatureLayer`]: the configuration, its setters and the `Layer` impl.

use std::fmt;
use std::time::{Duration, SystemTime};

use tower_layer::Layer;

use crate::error::ConfigError;
use crate::rejection::DefaultRejection;
use crate::service::DtSignature;
use crate::verify::Verifier;

/// The default [`max_body_size`](DtSignatureLayer::max_body_size): 1 MiB. Real DT bodies
/// are 300-600 bytes.
pub const DEFAULT_MAX_BODY_SIZE: usize = 1024 * 1024;

/// A tower [`Layer`] that lets through only requests signed by a DT Data Connector.
///
/// It checks the `X-Dt-Signature` token before reading the body, buffers the body (up to
/// [`max_body_size`](Self::max_body_size)) while hashing it, compares the checksums and
/// forwards the request with the same bytes and the verified [`DtClaims`](crate::DtClaims)
/// in its extensions. Refused requests get a 400 (413 for a body over the limit) and never
/// reach the inner service. See the [crate docs](crate) for the rules.
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
#[derive(Clone)]
pub struct DtSignatureLayer<R = DefaultRejection> {
    verifier: Verifier,
    max_body_size: usize,
    rejection: R,
    report_only: bool,
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
            verifier,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            rejection: DefaultRejection,
            report_only: false,
        }
    }
}

impl<R> DtSignatureLayer<R> {
    /// Also accept tokens signed with `secret` (secret rotation). See
    /// [`Verifier::add_secret`].
    ///
    /// # Panics
    ///
    /// If the secret is empty. Use [`try_add_secret`](Self::try_add_secret) to get an
    /// error instead.
    pub fn add_secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.verifier = self.verifier.add_secret(secret);
        self
    }

    /// Like [`add_secret`](Self::add_secret), but returns an error for an empty secret.
    pub fn try_add_secret(mut self, secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        self.verifier = self.verifier.try_add_secret(secret)?;
        Ok(self)
    }

    /// The largest body accepted, in bytes. A larger `Content-Length` is answered with 413
    /// before the body is read; a body without one gets 413 as soon as it passes the limit.
    ///
    /// Default: [`DEFAULT_MAX_BODY_SIZE`] (1 MiB).
    pub fn max_body_size(mut self, limit: usize) -> Self {
        self.max_body_size = limit;
        self
    }

    /// Tolerated clock skew. See [`Verifier::leeway`]. Default: 60 seconds.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.verifier = self.verifier.leeway(leeway);
        self
    }

    /// The clock that time checks read. See [`Verifier::clock`]. Default: the system clock.
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.verifier = self.verifier.clock(clock);
        self
    }

    /// Refuse tokens without `checksum_sha256`. See [`Verifier::require_sha256`].
    /// Default: `false`.
    pub fn require_sha256(mut self, require: bool) -> Self {
        self.verifier = self.verifier.require_sha256(require);
        self
    }

    /// Report-only mode: verify every request and record the outcome, but forward every
    /// request, with the same bytes, whatever the outcome. For switching verification on
    /// for an endpoint that already receives traffic: watch, then enforce.
    ///
    /// Each forwarded request carries a [`Verdict`](crate::Verdict) in its extensions (and
    /// [`DtClaims`](crate::DtClaims) when verified); a failure is logged at debug level
    /// and, with the feature `metrics`, counted with `outcome="reported"`. A body over
    /// [`max_body_size`](Self::max_body_size) (413) or a body that cannot be read (400) is
    /// still refused: there are no intact bytes to forward.
    ///
    /// Default: `false` (failures are refused and never reach the inner service).
    pub fn report_only(mut self, report_only: bool) -> Self {
        self.report_only = report_only;
        self
    }

    /// Replace the response sent for refused requests: a closure
    /// `Fn(&DtSignatureError) -> Response<B>` or any [`MakeRejection`](crate::MakeRejection).
    /// Default: [`DefaultRejection`].
    pub fn with_rejection<R2>(self, rejection: R2) -> DtSignatureLayer<R2> {
        DtSignatureLayer {
            verifier: self.verifier,
            max_body_size: self.max_body_size,
            rejection,
            report_only: self.report_only,
        }
    }

    /// The verifier this layer applies, to share its rules with code outside tower.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }
}

impl<R: fmt::Debug> fmt::Debug for DtSignatureLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtSignatureLayer")
            .field("verifier", &self.verifier)
            .field("max_body_size", &self.max_body_size)
            .field("rejection", &self.rejection)
            .field("report_only", &self.report_only)
            .finish()
    }
}

impl<S, R: Clone> Layer<S> for DtSignatureLayer<R> {
    type Service = DtSignature<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        DtSignature::new(
            inner,
            self.verifier.clone(),
            self.max_body_size,
            self.rejection.clone(),
            self.report_only,
        )
    }
}
