//! [`DeadlineLayer`]: answer `503` when DT's deadline is near, counted from the head.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{header, HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_layer::Layer;
use tower_service::Service;

/// The default deadline: 8 s from the request's head. DT counts a push as failed when
/// no answer came within 10 s; 8 s leaves 2 s for the network between DT and the
/// receiver, a TLS proxy in front and the answer's own trip, so that a write that
/// finishes in time is not answered too late to count.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(8);

/// When a request must be answered: set by [`DeadlineLayer`] into the request's
/// extensions when its head arrived, read by [`DtStore`](crate::DtStore), which stops
/// waiting for its write then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerBy(pub Instant);

/// Answers `503 deadline passed` when the inner service has not answered within the
/// deadline, counted from when the request's head reached this layer: the body's upload
/// (read by `DtSignatureLayer` inside) counts against it. Put it outermost, outside
/// `DtSignatureLayer`:
///
/// ```
/// use tower::ServiceBuilder;
/// use tower_dt_signature::DtSignatureLayer;
/// use tower_dt_store::{DeadlineLayer, DtStore, SqliteStore};
///
/// # let dir = tempfile::tempdir().unwrap();
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # rt.block_on(async {
/// let store = SqliteStore::open(dir.path().join("events.db")).await.unwrap();
/// let service = ServiceBuilder::new()
///     .layer(DeadlineLayer::default())
///     .layer(DtSignatureLayer::new("change-me"))
///     .service(DtStore::new(store));
/// # let _ = service;
/// # });
/// ```
///
/// A `503` is never a late `2xx`: DT retries it, and a write that completed after it
/// makes the retry a duplicate, answered `200`.
#[derive(Clone, Copy, Debug)]
pub struct DeadlineLayer {
    deadline: Duration,
}

impl DeadlineLayer {
    /// A layer with this deadline.
    pub fn new(deadline: Duration) -> Self {
        Self { deadline }
    }
}

impl Default for DeadlineLayer {
    /// [`DEFAULT_DEADLINE`].
    fn default() -> Self {
        Self::new(DEFAULT_DEADLINE)
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            deadline: self.deadline,
        }
    }
}

/// The service of [`DeadlineLayer`].
#[derive(Clone, Debug)]
pub struct Deadline<S> {
    inner: S,
    deadline: Duration,
}

impl<S, B, ResBody> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<&'static str>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let at = Instant::now() + self.deadline;
        // An outer deadline that is sooner wins.
        let at = match request.extensions().get::<AnswerBy>() {
            Some(AnswerBy(outer)) if *outer < at => *outer,
            _ => at,
        };
        request.extensions_mut().insert(AnswerBy(at));
        DeadlineFuture {
            inner: self.inner.call(request),
            sleep: tokio::time::sleep_until(at),
        }
    }
}

pin_project! {
    /// The response future of [`Deadline`].
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Sleep,
    }
}

impl<F> std::fmt::Debug for DeadlineFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadlineFuture").finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: From<&'static str>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.inner.poll(cx) {
            return Poll::Ready(output);
        }
        if this.sleep.poll(cx).is_ready() {
            tracing::warn!("deadline passed before the answer: 503, DT retries");
            return Poll::Ready(Ok(deadline_response()));
        }
        Poll::Pending
    }
}

/// `503 deadline passed` (DT retries on its own schedule).
pub(crate) fn deadline_response<ResBody: From<&'static str>>() -> Response<ResBody> {
    let mut response = Response::new(ResBody::from("deadline passed"));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
