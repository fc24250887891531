//! The duplicate guard's helpers: signed DT requests with a chosen event id, the stack a
//! replica runs, a race of duplicates, what an answer says, and stores that fail or whose
//! clock is moved by hand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt};

use tower_dt_signature::dedup::{
    BoxStoreFuture, Dedup, DedupLayer, DedupRefusal, DedupStore, Duplicate, MemoryStore,
    ReservationToken, Reserve, StoreError, X_DT_DUPLICATE,
};
use tower_dt_signature::{DtSignature, DtSignatureLayer};

use super::{at, call, send_owned, signed_request, Recorder, NOW, SECRET};

/// A DT body (compact, DT's key order) for event `id`.
pub fn body(id: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"event":{{"eventId":"{id}","targetName":"projects/c14u9p094l47cdv1o3pg/devices/emuc17m6d7lq0bgk44smcqg","eventType":"touch","data":{{"touch":{{"updateTime":"2023-11-14T22:13:20.000000Z"}}}},"timestamp":"2023-11-14T22:13:20.000000Z"}},"labels":{{}},"metadata":{{}}}}"#
    ))
}

/// `body` signed as DT signs it.
pub fn signed_body(body: Bytes) -> Request<Full<Bytes>> {
    signed_request("/", body)
}

/// A signed request for event `id`.
pub fn signed(id: &str) -> Request<Full<Bytes>> {
    signed_body(body(id))
}

/// Send `n` requests for event `id` at once (a barrier lines them up), spread over
/// `services` in turn, while every handler holds what reaches it. All but one must be
/// answered without reaching a handler; then the held one is let through. Returns the
/// answers: the held one's last.
pub async fn race<St>(services: &[(&Stack<St>, &Recorder)], id: &str, n: usize) -> Vec<Answer>
where
    St: DedupStore,
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
pub type Stack<St> = DtSignature<Dedup<Recorder, St>>;

/// A replica behind `guard` (signature check, the guard, a fresh handler): the handler
/// and the stack.
pub fn stack<St: Clone>(guard: &DedupLayer<St>) -> (Recorder, Stack<St>) {
    let handler = Recorder::default();
    let stack = DtSignatureLayer::new(SECRET)
        .clock(at(NOW))
        .layer(guard.layer(handler.clone()));
    (handler, stack)
}

/// A signed request for event `id` sent through `service` in a task, while `handler`
/// holds what reaches it: once this returns, the event is in flight in the handler. The
/// task gives the response once the handler lets the request go.
pub async fn hold_in_flight(
    service: &Stack<MemoryStore>,
    handler: &Recorder,
    id: &str,
) -> tokio::task::JoinHandle<Response<Full<Bytes>>> {
    handler.hold();
    let task = tokio::spawn(send_owned(service.clone(), signed(id)));
    handler.entered().await;
    task
}

/// What `service` answers to a signed request for event `id`.
pub async fn answer_to<St: DedupStore>(service: &Stack<St>, id: &str) -> Answer {
    answer(call(service, signed(id)).await).await
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

/// A memory store whose clock moves only when told to (milliseconds).
pub fn manual_store(capacity: usize) -> (MemoryStore, Arc<AtomicU64>) {
    let base = Instant::now();
    let offset = Arc::new(AtomicU64::new(0));
    let read = offset.clone();
    let store = MemoryStore::new(capacity)
        .clock(move || base + Duration::from_millis(read.load(Ordering::SeqCst)));
    (store, offset)
}

/// A store that fails the operations it is told to, and otherwise is a memory store.
#[derive(Clone, Debug, Default)]
pub struct Flaky {
    memory: MemoryStore,
    fail_reserve: bool,
    fail_commit: bool,
    hang_commit: bool,
}

impl Flaky {
    /// Every reservation fails: the store is down.
    pub fn down() -> Self {
        Self {
            fail_reserve: true,
            ..Self::default()
        }
    }

    /// Reservations work, marking an event done never finishes (a networked store whose
    /// answer is slow); the detached commit works.
    pub fn commit_hangs() -> Self {
        Self {
            hang_commit: true,
            ..Self::default()
        }
    }

    /// The memory store behind it, to look at what it holds.
    pub fn memory(&self) -> &MemoryStore {
        &self.memory
    }

    /// Reservations work, marking an event done fails.
    pub fn commit_fails() -> Self {
        Self {
            fail_commit: true,
            ..Self::default()
        }
    }
}

fn store_down() -> StoreError {
    StoreError::new("store down")
}

impl DedupStore for Flaky {
    type Future<T: Send + 'static> = BoxStoreFuture<T>;

    fn reserve(&self, key: &str, ttl: Duration) -> Self::Future<Reserve> {
        let result = if self.fail_reserve {
            Err(store_down())
        } else {
            self.memory.reserve(key, ttl).into_inner()
        };
        Box::pin(async move { result })
    }

    fn commit(&self, key: &str, token: ReservationToken, ttl: Duration) -> Self::Future<()> {
        if self.hang_commit {
            return Box::pin(std::future::pending());
        }
        let result = if self.fail_commit {
            Err(store_down())
        } else {
            self.memory.commit(key, token, ttl).into_inner()
        };
        Box::pin(async move { result })
    }

    fn release(&self, key: &str, token: ReservationToken) -> Self::Future<()> {
        let result = self.memory.release(key, token).into_inner();
        Box::pin(async move { result })
    }

    fn release_detached(&self, key: &str, token: ReservationToken) {
        self.memory.release_detached(key, token);
    }

    fn commit_detached(&self, key: &str, token: ReservationToken, ttl: Duration) {
        self.memory.commit_detached(key, token, ttl);
    }
}
