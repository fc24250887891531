//! [`Dedup`]: the `Service` that reads the event id and reserves it.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::future::ResponseFuture;
use super::memory::MemoryStore;
use super::response::{refusal, DedupRefusal};
use super::stats::DedupStats;
use super::store::DedupStore;
use super::Config;
use crate::claims::DtClaims;
use crate::layer::body::DtBody;
use crate::layer::verdict::Verdict;

/// Middleware that forwards each DT event once. Made by
/// [`DedupLayer`](super::DedupLayer); see there and the [module docs](super).
///
/// It takes the request body [`DtSignature`](crate::DtSignature) forwards: a [`DtBody`],
/// or, in axum, the `Body` that wraps it; the body is already in memory, so reading it
/// copies nothing. The inner service gets a `Request<DtBody>` with the same bytes.
///
/// Its answers (duplicates, refusals) are `Ok` responses, so `Error` is the inner
/// service's.
#[derive(Clone, Debug)]
pub struct Dedup<S, St = MemoryStore> {
    inner: S,
    store: St,
    config: Arc<Config>,
    stats: DedupStats,
}

impl<S, St> Dedup<S, St> {
    pub(crate) fn new(inner: S, store: St, config: Arc<Config>, stats: DedupStats) -> Self {
        Self {
            inner,
            store,
            config,
            stats,
        }
    }

    /// The counters, shared with the layer that made this service.
    pub fn stats(&self) -> DedupStats {
        self.stats.clone()
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

impl<S, St, B, ResBody> Service<Request<B>> for Dedup<S, St>
where
    S: Service<Request<DtBody>, Response = Response<ResBody>> + Clone,
    St: DedupStore,
    B: Body,
    ResBody: From<&'static str>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, St, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // A report-only refusal is forwarded as the signature layer decided, unguarded:
        // the guard must not undo report-only mode, nor mark an unverified event done.
        let refused = matches!(
            request.extensions().get::<Verdict>(),
            Some(Verdict::Refused(_))
        );
        if !refused && request.extensions().get::<DtClaims>().is_none() {
            tracing::error!(
                "dedup guard got a request without DtClaims: put it inside DtSignatureLayer"
            );
            return ResponseFuture::ready(refusal(DedupRefusal::Unverified));
        }
        // The service that was polled ready goes into the future; a fresh clone stays.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::reading(
            request,
            inner,
            self.store.clone(),
            self.config.clone(),
            self.stats.clone(),
            refused,
        )
    }
}
