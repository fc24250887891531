//! Helpers for the duplicate guard's tests: signed DT requests with a chosen event id, an
//! inner service that counts, answers a chosen status and can be held, and a full stack.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::sync::{Notify, Semaphore};
use tower::{Layer, ServiceExt};
use tower_dt_signature::dedup::{Dedup, DedupLayer, DedupRefusal, Duplicate, X_DT_DUPLICATE};
use tower_dt_signature::{DtBody, DtClaims, DtSignature, DtSignatureLayer};

use crate::common::{at, sign, NOW, SECRET};

/// A DT body (compact, DT's key order) for event `id`.
pub fn body(id: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"event":{{"eventId":"{id}","targetName":"projects/c14u9p094l47cdv1o3pg/devices/emuc17m6d7lq0bgk44smcqg","eventType":"touch","data":{{"touch":{{"updateTime":"2023-11-14T22:13:20.000000Z"}}}},"timestamp":"2023-11-14T22:13:20.000000Z"}},"labels":{{}},"metadata":{{}}}}"#
    ))
}

/// `body` signed as DT signs it.
pub fn signed_body(body: Bytes) -> Request<Full<Bytes>> {
    Request::post("/")
        .header("x-dt-signature", sign(&body, SECRET))
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(Full::new(body))
        .unwrap()
}

/// A signed request for event `id`.
pub fn signed(id: &str) -> Request<Full<Bytes>> {
    signed_body(body(id))
}

/// The inner service: records what it got, answers `status` (or an error), and, while
/// held, waits for [`Handler::open`] before answering.
#[derive(Clone)]
pub struct Handler {
    state: Arc<HandlerState>,
}

struct HandlerState {
    calls: AtomicUsize,
    status: Mutex<StatusCode>,
    fail: AtomicBool,
    held: AtomicBool,
    gate: Semaphore,
    entered: Notify,
    bodies: Mutex<Vec<(Bytes, bool)>>,
}

impl Default for Handler {
    fn default() -> Self {
        Self {
            state: Arc::new(HandlerState {
                calls: AtomicUsize::new(0),
                status: Mutex::new(StatusCode::OK),
                fail: AtomicBool::new(false),
                held: AtomicBool::new(false),
                gate: Semaphore::new(0),
                entered: Notify::new(),
                bodies: Mutex::new(Vec::new()),
            }),
        }
    }
}

impl Handler {
    /// How many requests reached the inner service.
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// The bodies it got, each with whether `DtClaims` was in the extensions.
    pub fn bodies(&self) -> Vec<(Bytes, bool)> {
        self.state.bodies.lock().unwrap().clone()
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

    /// Wait until a held request has reached the inner service (one per such request).
    pub async fn entered(&self) {
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            self.state.entered.notified(),
        )
        .await
        .expect("no request reached the inner service");
    }
}

impl tower::Service<Request<DtBody>> for Handler {
    type Response = Response<Full<Bytes>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<DtBody>) -> Self::Future {
        let state = self.state.clone();
        Box::pin(async move {
            // Read before the call is counted: a test that sees the count and then stops
            // holding must not let this request slip through (and leave a spare permit
            // that would let the next held request through).
            let held = state.held.load(Ordering::SeqCst);
            state.calls.fetch_add(1, Ordering::SeqCst);
            let verified = request.extensions().get::<DtClaims>().is_some();
            let bytes = request.into_body().collect().await.unwrap().to_bytes();
            state.bodies.lock().unwrap().push((bytes, verified));
            if held {
                state.entered.notify_one();
                // Bounded: a guard that forwards what it should not must fail, not hang.
                tokio::time::timeout(std::time::Duration::from_secs(5), state.gate.acquire())
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

/// Send `n` requests for event `id` at once (a barrier lines them up), spread over
/// `services` in turn, while every handler holds what reaches it. All but one must be
/// answered without reaching a handler; then the held one is let through. Returns the
/// answers: the held one's last.
pub async fn race<St>(services: &[(&Stack<St>, &Handler)], id: &str, n: usize) -> Vec<Answer>
where
    St: tower_dt_signature::dedup::DedupStore,
{
    let before: Vec<usize> = services.iter().map(|(_, h)| h.calls()).collect();
    for (_, handler) in services {
        handler.hold();
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let service = services[i % services.len()].0.clone();
        let (barrier, request) = (barrier.clone(), signed(id));
        tasks.spawn(async move {
            barrier.wait().await;
            answer(service.oneshot(request).await.unwrap()).await
        });
    }
    let mut answers = Vec::new();
    while answers.len() < n - 1 {
        // A second forwarded request would be held too: the handler's bounded wait
        // panics, and so does this.
        let joined = tokio::time::timeout(std::time::Duration::from_secs(10), tasks.join_next())
            .await
            .expect("the duplicates were not answered")
            .unwrap();
        answers.push(joined.expect("a duplicate was forwarded and held"));
    }
    // The held one may still be on its way to its handler.
    let forwarded = || -> usize {
        services
            .iter()
            .zip(&before)
            .map(|((_, h), b)| h.calls() - b)
            .sum()
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while forwarded() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("no request reached a handler");
    for ((_, handler), before) in services.iter().zip(before) {
        handler.unhold();
        handler.open(handler.calls() - before);
    }
    answers.push(tasks.join_next().await.unwrap().unwrap());
    answers
}

/// What a replica runs: signature check, then the guard, then the handler.
pub type Stack<St> = DtSignature<Dedup<Handler, St>>;

pub fn stack<St: Clone>(guard: &DedupLayer<St>, handler: &Handler) -> Stack<St> {
    DtSignatureLayer::new(SECRET)
        .clock(at(NOW))
        .layer(guard.layer(handler.clone()))
}

/// Send one request through a clone of `service`.
pub async fn send<St>(service: &Stack<St>, request: Request<Full<Bytes>>) -> Response<Full<Bytes>>
where
    St: tower_dt_signature::dedup::DedupStore,
{
    service.clone().oneshot(request).await.unwrap()
}

/// What a response says: who answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The inner service, with this status.
    Inner(StatusCode),
    /// The guard, for a duplicate (status, header value).
    Duplicate(Duplicate, StatusCode, String),
    /// The guard, refusing.
    Refused(DedupRefusal, StatusCode, String),
}

pub async fn answer(response: Response<Full<Bytes>>) -> Answer {
    let status = response.status();
    let duplicate = response.extensions().get::<Duplicate>().copied();
    let refusal = response.extensions().get::<DedupRefusal>().copied();
    let header = response
        .headers()
        .get(X_DT_DUPLICATE)
        .map(|value| value.to_str().unwrap().to_owned());
    let text = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(text.to_vec()).unwrap();
    match (duplicate, refusal) {
        (Some(duplicate), None) => {
            assert_eq!(text, duplicate.as_str());
            Answer::Duplicate(duplicate, status, header.expect("x-dt-duplicate header"))
        }
        (None, Some(refusal)) => {
            assert!(header.is_none());
            Answer::Refused(refusal, status, text)
        }
        (None, None) => {
            assert!(header.is_none(), "the inner service's answer is not marked");
            assert_eq!(text, "inner");
            Answer::Inner(status)
        }
        (Some(_), Some(_)) => panic!("both marks on one response"),
    }
}

pub fn done() -> Answer {
    Answer::Duplicate(Duplicate::Done, StatusCode::OK, "done".into())
}

pub fn in_flight() -> Answer {
    Answer::Duplicate(
        Duplicate::InFlight,
        StatusCode::CONFLICT,
        "in-flight".into(),
    )
}

pub fn ok() -> Answer {
    Answer::Inner(StatusCode::OK)
}
