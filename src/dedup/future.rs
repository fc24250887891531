//! [`ResponseFuture`]: reserve, call the inner service, then commit or release.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::event_id::event_id;
use super::layer::Config;
use super::response::{duplicate, refusal, DedupRefusal, Duplicate};
use super::stats::DedupStats;
use super::store::{DedupStore, ReservationToken, Reserve};
use crate::gateway::TenantId;
use crate::DtBody;

/// The store key of an event: its `eventId`, scoped by the tenant when a gateway resolved
/// one, so that one tenant's event never answers (nor marks) another's with the same id.
/// A single-secret layer inserts no `TenantId`: its keys are the bare ids, as before.
/// The tenant's length comes first, so no tenant and id pair can spell another's key.
fn scoped_key(tenant: Option<&TenantId>, event_id: &str) -> String {
    match tenant {
        None => event_id.to_owned(),
        Some(tenant) => format!("t{}:{}:{}", tenant.as_str().len(), tenant, event_id),
    }
}

/// The tenant a key made by [`scoped_key`] belongs to (`""` for a bare event id), for a
/// store that shares its capacity fairly between tenants.
pub(crate) fn tenant_of(key: &str) -> &str {
    let scoped = || {
        let rest = key.strip_prefix('t')?;
        let (len, rest) = rest.split_once(':')?;
        let len: usize = len.parse().ok()?;
        let tenant = rest.get(..len)?;
        rest[len..].starts_with(':').then_some(tenant)
    };
    scoped().unwrap_or("")
}

pin_project! {
    /// The response future of [`Dedup`](super::Dedup).
    ///
    /// Dropping it while the inner service runs (the client went away) releases the
    /// event's reservation, through [`DedupStore::release_detached`].
    pub struct ResponseFuture<S, St, B>
    where
        S: Service<Request<DtBody>>,
        St: DedupStore,
    {
        #[pin]
        state: State<S, St, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, St, B>
    where
        S: Service<Request<DtBody>>,
        St: DedupStore,
    {
        Ready {
            response: Option<S::Response>,
        },
        Reading {
            #[pin]
            body: B,
            read: Read,
            start: Option<Start<S, St>>,
        },
        Reserving {
            #[pin]
            reserve: St::Future<Reserve>,
            pending: Option<Pending<S, St>>,
        },
        Calling {
            #[pin]
            future: S::Future,
            guard: Option<Guard<St>>,
        },
        Settling {
            #[pin]
            settle: St::Future<()>,
            result: Option<Result<S::Response, S::Error>>,
            guard: Guard<St>,
        },
    }
}

/// What the reading state hands on.
struct Start<S, St> {
    service: S,
    parts: Parts,
    store: St,
    config: Arc<Config>,
    stats: DedupStats,
    /// A report-only refusal: forwarded with its `Verdict`, not guarded.
    unguarded: bool,
}

/// The body read so far. A verified body arrives as one frame, kept as it came (no
/// copy); several are gathered into one buffer.
#[derive(Default)]
struct Read {
    first: Bytes,
    rest: Option<BytesMut>,
}

impl Read {
    fn push(&mut self, chunk: Bytes) {
        if let Some(rest) = &mut self.rest {
            rest.extend_from_slice(&chunk);
        } else if self.first.is_empty() {
            self.first = chunk;
        } else if !chunk.is_empty() {
            let mut rest = BytesMut::with_capacity(self.first.len() + chunk.len());
            rest.extend_from_slice(&self.first);
            rest.extend_from_slice(&chunk);
            self.first = Bytes::new();
            self.rest = Some(rest);
        }
    }

    fn into_bytes(self) -> Bytes {
        self.rest.map_or(self.first, BytesMut::freeze)
    }
}

/// What the reserving state hands on.
struct Pending<S, St> {
    service: S,
    request: Request<DtBody>,
    key: String,
    store: St,
    config: Arc<Config>,
    stats: DedupStats,
}

/// A reservation this request holds: released on drop unless settled.
struct Guard<St: DedupStore> {
    store: St,
    key: String,
    token: ReservationToken,
    config: Arc<Config>,
    stats: DedupStats,
    armed: bool,
    /// The inner service answered 2xx: a drop before the commit finished commits in the
    /// background (the event was handled) instead of releasing it.
    handled: bool,
}

impl<St: DedupStore> Drop for Guard<St> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self.handled {
            tracing::debug!(event_id = %self.key, "request dropped after a 2xx: marking its event done in the background");
            self.store
                .commit_detached(&self.key, self.token, self.config.done_ttl);
        } else {
            tracing::debug!(event_id = %self.key, "request dropped: releasing its event");
            self.store.release_detached(&self.key, self.token);
        }
    }
}

impl<S, St, B> ResponseFuture<S, St, B>
where
    S: Service<Request<DtBody>>,
    St: DedupStore,
{
    pub(crate) fn ready(response: S::Response) -> Self {
        Self {
            state: State::Ready {
                response: Some(response),
            },
        }
    }

    pub(crate) fn reading(
        request: Request<B>,
        service: S,
        store: St,
        config: Arc<Config>,
        stats: DedupStats,
        unguarded: bool,
    ) -> Self {
        let (parts, body) = request.into_parts();
        Self {
            state: State::Reading {
                body,
                read: Read::default(),
                start: Some(Start {
                    service,
                    parts,
                    store,
                    config,
                    stats,
                    unguarded,
                }),
            },
        }
    }
}

impl<S, St, B, ResBody> Future for ResponseFuture<S, St, B>
where
    S: Service<Request<DtBody>, Response = Response<ResBody>>,
    St: DedupStore,
    B: Body,
    ResBody: From<&'static str>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Ready { response } => {
                    let response = response.take().expect("polled after completion");
                    return Poll::Ready(Ok(response));
                }
                StateProj::Reading {
                    mut body,
                    read,
                    start,
                } => {
                    match ready!(body.as_mut().poll_frame(cx)) {
                        Some(Ok(frame)) => {
                            if let Ok(mut data) = frame.into_data() {
                                // Zero-copy for `Bytes`, the data type of DtBody and axum.
                                read.push(data.copy_to_bytes(data.remaining()));
                            }
                            continue;
                        }
                        Some(Err(_)) => {
                            this.state.set(State::Ready { response: None });
                            return Poll::Ready(Ok(refusal(DedupRefusal::BodyRead)));
                        }
                        None => {}
                    }
                    let Start {
                        mut service,
                        parts,
                        store,
                        config,
                        stats,
                        unguarded,
                    } = start.take().expect("polled after completion");
                    let bytes = std::mem::take(read).into_bytes();
                    if unguarded {
                        let future = service.call(Request::from_parts(parts, DtBody::new(bytes)));
                        this.state.set(State::Calling {
                            future,
                            guard: None,
                        });
                        continue;
                    }
                    let Some(id) = event_id(&bytes) else {
                        tracing::debug!("refused Data Connector request without an event id");
                        this.state.set(State::Ready { response: None });
                        return Poll::Ready(Ok(refusal(DedupRefusal::MissingEventId)));
                    };
                    let key = scoped_key(parts.extensions.get::<TenantId>(), &id);
                    let reserve = store.reserve(&key, config.in_flight_ttl);
                    let request = Request::from_parts(parts, DtBody::new(bytes));
                    this.state.set(State::Reserving {
                        reserve,
                        pending: Some(Pending {
                            service,
                            request,
                            key,
                            store,
                            config,
                            stats,
                        }),
                    });
                }
                StateProj::Reserving { reserve, pending } => {
                    let found = ready!(reserve.poll(cx));
                    let Pending {
                        mut service,
                        request,
                        key,
                        store,
                        config,
                        stats,
                    } = pending.take().expect("polled after completion");
                    let guard = match found {
                        Ok(Reserve::Reserved(token)) => Some(Guard {
                            store,
                            key,
                            token,
                            config,
                            stats: stats.clone(),
                            armed: true,
                            handled: false,
                        }),
                        Ok(Reserve::Done) => {
                            stats.add_duplicate();
                            tracing::debug!(event_id = %key, "absorbed a duplicate of a done event");
                            this.state.set(State::Ready { response: None });
                            return Poll::Ready(Ok(duplicate(Duplicate::Done)));
                        }
                        Ok(Reserve::Full) => {
                            stats.add_full();
                            tracing::warn!(event_id = %key, "dedup store full of reservations in flight: refusing (503)");
                            this.state.set(State::Ready { response: None });
                            return Poll::Ready(Ok(refusal(DedupRefusal::StoreFull)));
                        }
                        Ok(Reserve::InFlight) => {
                            stats.add_in_flight();
                            tracing::debug!(event_id = %key, "refused a duplicate of an event in flight");
                            this.state.set(State::Ready { response: None });
                            return Poll::Ready(Ok(duplicate(Duplicate::InFlight)));
                        }
                        Err(error) => {
                            stats.add_store_error();
                            if config.fail_closed {
                                tracing::warn!(event_id = %key, %error, "dedup store failed: refusing (fail closed)");
                                this.state.set(State::Ready { response: None });
                                return Poll::Ready(Ok(refusal(DedupRefusal::StoreUnavailable)));
                            }
                            tracing::warn!(event_id = %key, %error, "dedup store failed: forwarding unguarded (fail open)");
                            None
                        }
                    };
                    stats.add_forwarded();
                    let future = service.call(request);
                    this.state.set(State::Calling { future, guard });
                }
                StateProj::Calling { future, guard } => {
                    let result = ready!(future.poll(cx));
                    let Some(mut guard) = guard.take() else {
                        return Poll::Ready(result);
                    };
                    let settle = match &result {
                        Ok(response) if response.status().is_success() => {
                            guard.handled = true;
                            guard
                                .store
                                .commit(&guard.key, guard.token, guard.config.done_ttl)
                        }
                        _ => guard.store.release(&guard.key, guard.token),
                    };
                    this.state.set(State::Settling {
                        settle,
                        result: Some(result),
                        guard,
                    });
                }
                StateProj::Settling {
                    settle,
                    result,
                    guard,
                } => {
                    let settled = ready!(settle.poll(cx));
                    // Done or failed: a release on drop would not help now.
                    guard.armed = false;
                    let result = result.take().expect("polled after completion");
                    if let Err(error) = settled {
                        guard.stats.add_store_error();
                        let done = matches!(&result, Ok(r) if r.status().is_success());
                        let what = if done { "mark done" } else { "release" };
                        tracing::warn!(event_id = %guard.key, %error, "dedup store failed to {what} an event (a store that retries makes it later; otherwise its reservation expires after the in-flight TTL)");
                    }
                    return Poll::Ready(result);
                }
            }
        }
    }
}

impl<S, St, B> fmt::Debug for ResponseFuture<S, St, B>
where
    S: Service<Request<DtBody>>,
    St: DedupStore,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
