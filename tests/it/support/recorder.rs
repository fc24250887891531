//! The one inner service of the tests: it records what reaches it and answers as told.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::sync::{Notify, Semaphore};

use tower_dt_signature::DtClaims;

/// What the inner service saw of one request.
pub struct Seen {
    pub parts: Parts,
    pub body: Bytes,
}

/// An inner service that records each request (its head and its exact body bytes) and
/// answers `200 inner`, or the status or error it is told to; while held, it waits for
/// [`Recorder::open`] before answering. Clones share what they record.
#[derive(Clone, Default)]
pub struct Recorder {
    state: Arc<State>,
}

struct State {
    seen: Mutex<Vec<Seen>>,
    status: Mutex<StatusCode>,
    fail: AtomicBool,
    held: AtomicBool,
    gate: Semaphore,
    entered: Notify,
}

impl Default for State {
    fn default() -> Self {
        Self {
            seen: Mutex::default(),
            status: Mutex::new(StatusCode::OK),
            fail: AtomicBool::new(false),
            held: AtomicBool::new(false),
            gate: Semaphore::new(0),
            entered: Notify::new(),
        }
    }
}

impl Recorder {
    /// How many requests reached it (since the last [`take`](Self::take)).
    pub fn calls(&self) -> usize {
        self.state.seen.lock().unwrap().len()
    }

    /// The requests it got, oldest first; it starts afresh.
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.state.seen.lock().unwrap())
    }

    /// The bodies it got, each with whether `DtClaims` was in the extensions.
    pub fn bodies(&self) -> Vec<(Bytes, bool)> {
        let seen = self.state.seen.lock().unwrap();
        seen.iter()
            .map(|s| {
                (
                    s.body.clone(),
                    s.parts.extensions.get::<DtClaims>().is_some(),
                )
            })
            .collect()
    }

    /// Record the head of `request` as it is, with an empty body: for what arrives before
    /// a layer, where the body must go on.
    pub fn record_head<B>(&self, request: &Request<B>) {
        let mut copy = Request::new(());
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.version_mut() = request.version();
        *copy.headers_mut() = request.headers().clone();
        let (parts, ()) = copy.into_parts();
        self.state.seen.lock().unwrap().push(Seen {
            parts,
            body: Bytes::new(),
        });
    }

    /// Answer `status` from now on.
    pub fn answer(&self, status: StatusCode) {
        *self.state.status.lock().unwrap() = status;
    }

    /// Fail with an error (instead of a response) from now on, or stop failing.
    pub fn fail(&self, fail: bool) {
        self.state.fail.store(fail, Ordering::SeqCst);
    }

    /// Hold every request from now on until [`open`](Self::open).
    pub fn hold(&self) {
        self.state.held.store(true, Ordering::SeqCst);
    }

    /// Stop holding new requests.
    pub fn unhold(&self) {
        self.state.held.store(false, Ordering::SeqCst);
    }

    /// Let `n` held requests answer.
    pub fn open(&self, n: usize) {
        self.state.gate.add_permits(n);
    }

    /// Wait until a held request has reached it (one per such request).
    pub async fn entered(&self) {
        tokio::time::timeout(Duration::from_secs(5), self.state.entered.notified())
            .await
            .expect("no request reached the inner service");
    }
}

impl<B> tower::Service<Request<B>> for Recorder
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Debug,
{
    type Response = Response<Full<Bytes>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let state = self.state.clone();
        Box::pin(async move {
            // Read before the call is counted: a test that sees the count and then stops
            // holding must not let this request slip through (and leave a spare permit
            // that would let the next held request through).
            let held = state.held.load(Ordering::SeqCst);
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            state.seen.lock().unwrap().push(Seen { parts, body });
            if held {
                state.entered.notify_one();
                // Bounded: a layer that forwards what it should not must fail, not hang.
                tokio::time::timeout(Duration::from_secs(5), state.gate.acquire())
                    .await
                    .expect("a held request was never let through")
                    .unwrap()
                    .forget();
            }
            if state.fail.load(Ordering::SeqCst) {
                return Err(std::io::Error::other("handler failed"));
            }
            let mut response = Response::new(Full::new(Bytes::from_static(b"inner")));
            *response.status_mut() = *state.status.lock().unwrap();
            Ok(response)
        })
    }
}
