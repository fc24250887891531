//! [`ResponseFuture`]: read the body, reserve the event, call the inner service, then
//! commit or release; one method a state.

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
use super::response::{duplicate, refusal, DedupRefusal, Duplicate};
use super::stats::DedupStats;
use super::store::{scoped_key, DedupStore, ReservationToken, Reserve, StoreError};
use super::Config;
use crate::gateway::TenantId;
use crate::layer::body::DtBody;

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
        // The answer, to hand out (then nothing: polled after completion).
        Ready {
            result: Option<Result<S::Response, S::Error>>,
        },
        // Reading the body, to find the event id.
        Reading {
            #[pin]
            body: B,
            read: Read,
            start: Option<Start<S, St>>,
        },
        // Waiting for the store's reservation.
        Reserving {
            #[pin]
            reserve: St::Future<Reserve>,
            pending: Option<Pending<S, St>>,
        },
        // The inner service runs; a reservation is held, unless unguarded.
        Calling {
            #[pin]
            future: S::Future,
            guard: Option<Guard<St>>,
        },
        // Committing or releasing the reservation before the answer goes out.
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
            state: State::answer(response),
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

impl<S, St, B> State<S, St, B>
where
    S: Service<Request<DtBody>>,
    St: DedupStore,
{
    /// The answer the guard gives itself.
    fn answer(response: S::Response) -> Self {
        Self::Ready {
            result: Some(Ok(response)),
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
            let next = match this.state.as_mut().project() {
                StateProj::Ready { result } => {
                    return Poll::Ready(result.take().expect("polled after completion"));
                }
                StateProj::Reading { body, read, start } => {
                    ready!(Self::poll_reading(body, read, start, cx))
                }
                StateProj::Reserving { reserve, pending } => {
                    ready!(Self::poll_reserving(reserve, pending, cx))
                }
                StateProj::Calling { future, guard } => {
                    ready!(Self::poll_calling(future, guard, cx))
                }
                StateProj::Settling {
                    settle,
                    result,
                    guard,
                } => ready!(Self::poll_settling(settle, result, guard, cx)),
            };
            this.state.set(next);
        }
    }
}

impl<S, St, B, ResBody> ResponseFuture<S, St, B>
where
    S: Service<Request<DtBody>, Response = Response<ResBody>>,
    St: DedupStore,
    B: Body,
    ResBody: From<&'static str>,
{
    /// Reading: gather the body's frames; at its end, [`start`](Self::start).
    fn poll_reading(
        mut body: Pin<&mut B>,
        read: &mut Read,
        start: &mut Option<Start<S, St>>,
        cx: &mut Context<'_>,
    ) -> Poll<State<S, St, B>> {
        while let Some(frame) = ready!(body.as_mut().poll_frame(cx)) {
            let Ok(frame) = frame else {
                return Poll::Ready(State::answer(refusal(DedupRefusal::BodyRead)));
            };
            if let Ok(mut data) = frame.into_data() {
                // Zero-copy for `Bytes`, the data type of DtBody and axum.
                read.push(data.copy_to_bytes(data.remaining()));
            }
        }
        let start = start.take().expect("polled after completion");
        Poll::Ready(Self::start(start, std::mem::take(read).into_bytes()))
    }

    /// The body is read: call the inner service unguarded (a report-only refusal), refuse
    /// a body without an event id, or reserve the event.
    fn start(start: Start<S, St>, bytes: Bytes) -> State<S, St, B> {
        let Start {
            mut service,
            parts,
            store,
            config,
            stats,
            unguarded,
        } = start;
        if unguarded {
            let future = service.call(Request::from_parts(parts, DtBody::new(bytes)));
            return State::Calling {
                future,
                guard: None,
            };
        }
        let Some(id) = event_id(&bytes) else {
            tracing::debug!("refused Data Connector request without an event id");
            return State::answer(refusal(DedupRefusal::MissingEventId));
        };
        let key = scoped_key(parts.extensions.get::<TenantId>(), &id);
        let reserve = store.reserve(&key, config.in_flight_ttl);
        let request = Request::from_parts(parts, DtBody::new(bytes));
        State::Reserving {
            reserve,
            pending: Some(Pending {
                service,
                request,
                key,
                store,
                config,
                stats,
            }),
        }
    }

    /// Reserving: on the store's answer, [`reserved`](Self::reserved).
    fn poll_reserving(
        reserve: Pin<&mut St::Future<Reserve>>,
        pending: &mut Option<Pending<S, St>>,
        cx: &mut Context<'_>,
    ) -> Poll<State<S, St, B>> {
        let found = ready!(reserve.poll(cx));
        let pending = pending.take().expect("polled after completion");
        Poll::Ready(Self::reserved(pending, found))
    }

    /// What the store found: call the inner service holding the reservation (or unguarded,
    /// when the store failed and the guard fails open), or answer the duplicate or the
    /// refusal.
    fn reserved(pending: Pending<S, St>, found: Result<Reserve, StoreError>) -> State<S, St, B> {
        let Pending {
            mut service,
            request,
            key,
            store,
            config,
            stats,
        } = pending;
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
                return State::answer(duplicate(Duplicate::Done));
            }
            Ok(Reserve::Full) => {
                stats.add_full();
                tracing::warn!(event_id = %key, "dedup store full of reservations in flight: refusing (503)");
                return State::answer(refusal(DedupRefusal::StoreFull));
            }
            Ok(Reserve::InFlight) => {
                stats.add_in_flight();
                tracing::debug!(event_id = %key, "refused a duplicate of an event in flight");
                return State::answer(duplicate(Duplicate::InFlight));
            }
            Err(error) => {
                stats.add_store_error();
                if config.fail_closed {
                    tracing::warn!(event_id = %key, %error, "dedup store failed: refusing (fail closed)");
                    return State::answer(refusal(DedupRefusal::StoreUnavailable));
                }
                tracing::warn!(event_id = %key, %error, "dedup store failed: forwarding unguarded (fail open)");
                None
            }
        };
        stats.add_forwarded();
        let future = service.call(request);
        State::Calling { future, guard }
    }

    /// Calling: on the inner service's answer, commit the event (a 2xx) or release it; an
    /// unguarded answer goes out as it is.
    fn poll_calling(
        future: Pin<&mut S::Future>,
        guard: &mut Option<Guard<St>>,
        cx: &mut Context<'_>,
    ) -> Poll<State<S, St, B>> {
        let result = ready!(future.poll(cx));
        let Some(mut guard) = guard.take() else {
            return Poll::Ready(State::Ready {
                result: Some(result),
            });
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
        Poll::Ready(State::Settling {
            settle,
            result: Some(result),
            guard,
        })
    }

    /// Settling: once the commit or release is done (or failed, and logged), the inner
    /// service's answer goes out.
    fn poll_settling(
        settle: Pin<&mut St::Future<()>>,
        result: &mut Option<Result<S::Response, S::Error>>,
        guard: &mut Guard<St>,
        cx: &mut Context<'_>,
    ) -> Poll<State<S, St, B>> {
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
        Poll::Ready(State::Ready {
            result: Some(result),
        })
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
