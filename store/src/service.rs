//! [`DtStore`]: the tower service that stores each verified request, then answers.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use tokio::time::Instant;
use tower_dt_signature::consts::DT_ASYMMETRIC_SIGNATURE;
use tower_dt_signature::gateway::TenantId;
use tower_dt_signature::{DtClaims, Verdict};
use tower_service::Service;

use crate::backend::{Backend, BoxFuture, Put};
use crate::deadline::{AnswerBy, DEFAULT_DEADLINE};
use crate::error::StoreErrorKind;
use crate::outcome::{StoreOutcome, StoreReport};
use crate::record::EventRecord;

type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// A tower service that keeps every request [`DtSignatureLayer`] verified in a
/// [`Backend`], and answers `200` only once it is durable. Mount it behind the layer:
///
/// ```
/// use axum::Router;
/// use tower_dt_signature::DtSignatureLayer;
/// use tower_dt_store::{DtStore, SqliteStore};
///
/// # let dir = tempfile::tempdir().unwrap();
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # rt.block_on(async {
/// let store = SqliteStore::open(dir.path().join("events.db")).await?;
/// let app: Router = Router::new()
///     .route_service("/", DtStore::new(store))
///     .layer(DtSignatureLayer::new("change-me"));
/// # let _ = app;
/// # Ok::<_, tower_dt_store::StoreError>(())
/// # }).unwrap();
/// ```
///
/// For each request:
/// - without [`DtClaims`] in its extensions (no `DtSignatureLayer` in front), it answers
///   `500`, logs why at error level, and stores nothing;
/// - behind a [`report_only`](tower_dt_signature::DtSignatureLayer::report_only) layer,
///   a request whose [`Verdict`] is refused is answered as an enforcing layer would
///   answer it (its status and public text, `400` or `503`) and stored nowhere: the
///   store only ever holds verified bytes, and DT retries what was refused;
/// - otherwise it reads the body, keys it by (tenant, `event.eventId`) (or the body's
///   SHA-256), and puts it in the backend, within the deadline.
///
/// | outcome ([`StoreOutcome`]) | status | body |
/// | --- | --- | --- |
/// | `Stored` | 200 | `stored` |
/// | `StoredNotLatest` | 200 | `stored` |
/// | `Duplicate` | 200 | `duplicate` |
/// | `NotAnEvent` | 200 | `stored` |
/// | `Failed` | 503 | `store unavailable` |
/// | `Deadline` | 503 | `deadline passed` |
///
/// Every answer to a verified request carries a [`StoreReport`] in its extensions.
///
/// [`DtSignatureLayer`]: tower_dt_signature::DtSignatureLayer
pub struct DtStore<Bk> {
    backend: Arc<Bk>,
    deadline: Duration,
    clock: Clock,
    tenant_label: bool,
}

impl<Bk> Clone for DtStore<Bk> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            deadline: self.deadline,
            clock: self.clock.clone(),
            tenant_label: self.tenant_label,
        }
    }
}

impl<Bk: Backend> std::fmt::Debug for DtStore<Bk> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtStore")
            .field("backend", &self.backend.describe())
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl<Bk: Backend> DtStore<Bk> {
    /// A service that stores into `backend`, with the [`DEFAULT_DEADLINE`].
    pub fn new(backend: Bk) -> Self {
        Self::from_arc(Arc::new(backend))
    }

    /// A service over a backend that is shared (with `/ready`, or a shutdown hook).
    pub fn from_arc(backend: Arc<Bk>) -> Self {
        Self {
            backend,
            deadline: DEFAULT_DEADLINE,
            clock: Arc::new(SystemTime::now),
            tenant_label: true,
        }
    }

    /// How long after a request's arrival the store stops waiting for its write and
    /// answers `503`. Counted from the [`AnswerBy`] a [`DeadlineLayer`] set when the
    /// head arrived, else from when this service was called (after the body was read).
    /// Default [`DEFAULT_DEADLINE`] (8 s).
    ///
    /// [`DeadlineLayer`]: crate::DeadlineLayer
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The clock of the receive time (`received_at`), which the event age and the last
    /// accepted time of the metrics read too. Default [`SystemTime::now`].
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Whether `dt_store_last_accepted_timestamp_seconds` has one series per tenant
    /// (`true`, the default) or one for all, under [`DEFAULT_TENANT`] (`false`).
    ///
    /// The tenant label only takes the values of the gateway's
    /// [`TenantId`]s: a request for an unknown tenant is refused by the layer before
    /// it reaches the store, so a sender cannot add series. It is one gauge series per
    /// configured tenant (10,000 tenants, 10,000 series: small for Prometheus); no
    /// histogram is labelled by tenant. Turn it off when even that is too many, and
    /// watch the receiver as a whole.
    ///
    /// [`DEFAULT_TENANT`]: crate::DEFAULT_TENANT
    pub fn tenant_label(mut self, by_tenant: bool) -> Self {
        self.tenant_label = by_tenant;
        self
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<Bk> {
        &self.backend
    }
}

impl<Bk, B> Service<Request<B>> for DtStore<Bk>
where
    Bk: Backend,
    B: Body + Send + 'static,
    B::Data: Send,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Always ready: the backend's own queue bounds the work, within the deadline.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let own = Instant::now() + self.deadline;
        let answer_by = match request.extensions().get::<AnswerBy>() {
            Some(AnswerBy(outer)) => (*outer).min(own),
            None => own,
        };
        let backend = self.backend.clone();
        let received_at = (self.clock)();
        let tenant_label = self.tenant_label;
        Box::pin(
            async move { Ok(store(backend, request, answer_by, received_at, tenant_label).await) },
        )
    }
}

async fn store<Bk: Backend, B: Body>(
    backend: Arc<Bk>,
    request: Request<B>,
    answer_by: Instant,
    received_at: SystemTime,
    tenant_label: bool,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let claims = match parts.extensions.get::<DtClaims>() {
        Some(claims) => claims.clone(),
        None => {
            if let Some(Verdict::Refused(error)) = parts.extensions.get::<Verdict>() {
                // Report-only layer: refused bytes are never stored, and are answered
                // as the enforcing layer would answer them.
                tracing::warn!(
                    reason = error.reason(),
                    scheme = error.scheme().map(|scheme| scheme.code()),
                    "refused by the report-only layer: not stored, answered as refused"
                );
                let mut response = text(error.status(), error.public_str());
                response.extensions_mut().insert(error.clone());
                return response;
            }
            tracing::error!(
                "DtStore got a request without DtClaims: mount it behind DtSignatureLayer; \
                 nothing stored"
            );
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store mounted without DtSignatureLayer",
            );
        }
    };
    let tenant = parts.extensions.get::<TenantId>().map(TenantId::as_str);
    let token = parts
        .headers
        .get(DT_ASYMMETRIC_SIGNATURE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let bytes = match tokio::time::timeout_at(answer_by, body.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) => return text(StatusCode::BAD_REQUEST, "failed to read request body"),
        Err(_) => return text(StatusCode::SERVICE_UNAVAILABLE, "deadline passed"),
    };
    let record = EventRecord::new(tenant, bytes, &claims, token, received_at);
    let mut report = StoreReport {
        outcome: StoreOutcome::Deadline,
        tenant: record.tenant.clone(),
        key: record.key.clone(),
        event_type: record.event.as_ref().map(|event| event.event_type.clone()),
        device: record
            .event
            .as_ref()
            .map(|event| event.device_key().to_owned()),
        bytes_differ: false,
    };
    let timestamp_ns = record.event.as_ref().map(|event| event.timestamp_ns);
    let (status, body) = match tokio::time::timeout_at(answer_by, backend.put(record)).await {
        Ok(Ok(put)) => {
            let (outcome, body) = match put {
                Put::Stored => (StoreOutcome::Stored, "stored"),
                Put::StoredNotLatest => (StoreOutcome::StoredNotLatest, "stored"),
                Put::NotAnEvent => (StoreOutcome::NotAnEvent, "stored"),
                Put::Duplicate { same_bytes } => {
                    if !same_bytes {
                        report.bytes_differ = true;
                        tracing::warn!(
                            tenant = %report.tenant,
                            event_id = %report.key,
                            "a copy of a stored event has other bytes: the first copy is kept"
                        );
                    }
                    (StoreOutcome::Duplicate, "duplicate")
                }
            };
            report.outcome = outcome;
            (StatusCode::OK, body)
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, backend = %backend.describe(), "store failed: 503, DT retries");
            report.outcome = if error.kind() == StoreErrorKind::Deadline {
                StoreOutcome::Deadline
            } else {
                StoreOutcome::Failed(error.kind())
            };
            let body = if report.outcome == StoreOutcome::Deadline {
                "deadline passed"
            } else {
                "store unavailable"
            };
            (StatusCode::SERVICE_UNAVAILABLE, body)
        }
        Err(_) => {
            tracing::warn!(
                event_id = %report.key,
                "deadline passed before the event was durable: 503, DT retries"
            );
            (StatusCode::SERVICE_UNAVAILABLE, "deadline passed")
        }
    };
    crate::meter::answered(&report, timestamp_ns, received_at, tenant_label);
    let mut response = text(status, body);
    response.extensions_mut().insert(report);
    response
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
