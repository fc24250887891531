//! The duplicate guard with its in-memory store, through the public API: behind
//! DtSignatureLayer, called the way users call it.

use std::future::{poll_fn, Future};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt};

use tower_dt_signature::dedup::{DedupLayer, DedupRefusal, MemoryStore};
use tower_dt_signature::DtBody;
use tower_dt_signature::DtSignatureLayer;

use crate::support::dedup::*;
use crate::support::{at, call, send_owned, sign, signed_request, Counted, Recorder, NOW, SECRET};

#[tokio::test]
async fn first_sight_is_forwarded_and_done_duplicates_are_absorbed() {
    let guard = DedupLayer::new();
    let (handler, service) = stack(&guard);

    assert_eq!(answer_to(&service, "evt-1").await, ok());
    // The inner service got the exact bytes DT signed, verified.
    assert_eq!(handler.bodies(), vec![(body("evt-1"), true)]);

    for _ in 0..3 {
        // A fresh clone, as a server makes per connection: the store is shared.
        assert_eq!(answer_to(&service, "evt-1").await, done());
    }
    assert_eq!(handler.calls(), 1, "a done event is never forwarded again");

    // Another event is its own key.
    assert_eq!(answer_to(&service, "evt-2").await, ok());
    assert_eq!(handler.calls(), 2);

    let stats = guard.stats();
    assert_eq!(
        (stats.forwarded(), stats.duplicates(), stats.in_flight()),
        (2, 3, 0)
    );
    assert_eq!(
        service.get_ref().stats().duplicates(),
        3,
        "shared with the service"
    );
}

#[tokio::test]
async fn a_duplicate_while_in_flight_gets_409_and_is_not_forwarded() {
    let guard = DedupLayer::new();
    let (handler, service) = stack(&guard);
    let first = hold_in_flight(&service, &handler, "evt-1").await;
    assert_eq!(answer_to(&service, "evt-1").await, in_flight());
    assert_eq!(handler.calls(), 1, "never forwarded twice at the same time");

    handler.open(1);
    assert_eq!(answer(first.await.unwrap()).await, ok());
    // DT's retry of the 409 after the first finished: absorbed.
    assert_eq!(answer_to(&service, "evt-1").await, done());
    assert_eq!(handler.calls(), 1);
    assert_eq!(
        (guard.stats().in_flight(), guard.stats().duplicates()),
        (1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_are_forwarded_exactly_once() {
    for round in 0..20 {
        let guard = DedupLayer::new();
        let (handler, service) = stack(&guard);
        let answers = race(&[(&service, &handler)], &format!("evt-{round}"), 8).await;
        assert_eq!(handler.calls(), 1, "round {round}: {answers:?}");
        let (last, duplicates) = answers.split_last().unwrap();
        assert_eq!(*last, ok());
        assert!(duplicates.iter().all(|a| *a == in_flight()), "{answers:?}");
        assert_eq!(guard.stats().in_flight(), 7);
    }
}

#[tokio::test]
async fn a_failed_answer_releases_the_event_so_the_retry_is_forwarded() {
    let guard = DedupLayer::new();
    let (handler, service) = stack(&guard);

    for status in [
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::NOT_FOUND,
        StatusCode::MOVED_PERMANENTLY,
    ] {
        handler.answer(status);
        assert_eq!(answer_to(&service, "evt-1").await, Answer::Inner(status));
    }
    assert_eq!(handler.calls(), 4, "each retry was forwarded");

    // An error from the inner service releases it too.
    handler.fail(true);
    let error = service.clone().oneshot(signed("evt-1")).await.unwrap_err();
    assert_eq!(error.to_string(), "handler failed");
    assert_eq!(handler.calls(), 5);

    handler.fail(false);
    handler.answer(StatusCode::NO_CONTENT);
    assert_eq!(
        answer_to(&service, "evt-1").await,
        Answer::Inner(StatusCode::NO_CONTENT)
    );
    assert_eq!(answer_to(&service, "evt-1").await, done());
    assert_eq!(handler.calls(), 6, "any 2xx marks it done");
}

#[tokio::test]
async fn a_dropped_request_releases_the_event() {
    let guard = DedupLayer::new();
    let (handler, service) = stack(&guard);
    handler.hold();

    // The client goes away while the inner service runs: the future is dropped.
    let mut dropped = Box::pin(service.clone().oneshot(signed("evt-1")));
    poll_fn(|cx| {
        assert!(dropped.as_mut().poll(cx).is_pending());
        Poll::Ready(())
    })
    .await;
    handler.entered().await;
    assert_eq!(answer_to(&service, "evt-1").await, in_flight());
    drop(dropped);

    handler.open(1);
    assert_eq!(answer_to(&service, "evt-1").await, ok());
    assert_eq!(
        handler.calls(),
        2,
        "DT's retry was forwarded after the drop"
    );
}

#[tokio::test]
async fn done_events_are_forgotten_after_the_done_ttl() {
    let (store, clock) = manual_store(100);
    let guard = DedupLayer::with_store(store).done_ttl(Duration::from_secs(60));
    let (handler, service) = stack(&guard);

    assert_eq!(answer_to(&service, "evt-1").await, ok());
    clock.store(59_999, Ordering::SeqCst);
    assert_eq!(answer_to(&service, "evt-1").await, done());
    clock.store(60_000, Ordering::SeqCst);
    assert_eq!(answer_to(&service, "evt-1").await, ok());
    assert_eq!(handler.calls(), 2);
}

#[tokio::test]
async fn an_in_flight_reservation_ends_after_the_in_flight_ttl() {
    let (store, clock) = manual_store(100);
    let guard = DedupLayer::with_store(store).in_flight_ttl(Duration::from_secs(5));
    let (handler, service) = stack(&guard);
    let first = hold_in_flight(&service, &handler, "evt-1").await;
    clock.store(4_999, Ordering::SeqCst);
    assert_eq!(answer_to(&service, "evt-1").await, in_flight());
    clock.store(5_000, Ordering::SeqCst);
    let second = tokio::spawn(send_owned(service.clone(), signed("evt-1")));
    handler.entered().await;
    assert_eq!(
        handler.calls(),
        2,
        "past the TTL a stuck request no longer blocks"
    );

    handler.open(2);
    assert_eq!(answer(first.await.unwrap()).await, ok());
    assert_eq!(answer(second.await.unwrap()).await, ok());
    assert_eq!(answer_to(&service, "evt-1").await, done());
}

#[tokio::test]
async fn a_full_store_evicts_the_oldest_event_first() {
    let guard = DedupLayer::with_store(MemoryStore::new(3));
    let (handler, service) = stack(&guard);
    assert_eq!(guard.store().capacity(), 3);

    for id in ["a", "b", "c", "d"] {
        assert_eq!(answer_to(&service, id).await, ok());
    }
    assert_eq!(guard.store().len(), 3, "bounded");
    for id in ["b", "c", "d"] {
        assert_eq!(answer_to(&service, id).await, done(), "{id}");
    }
    assert_eq!(handler.calls(), 4);
    // "a", the oldest, made room for "d": its duplicate is handled again.
    assert_eq!(answer_to(&service, "a").await, ok());
    assert_eq!(handler.calls(), 5);
}

#[tokio::test]
async fn a_body_without_an_event_id_is_refused_with_400() {
    let bodies = [
        r#"{"event":{"eventType":"touch"},"labels":{}}"#,
        r#"{"event":{"eventId":""}}"#,
        r#"{"event":{"eventId":42}}"#,
        r#"{"eventId":"evt-1"}"#,
        "[]",
        "not json",
    ];
    for text in bodies {
        let (handler, service) = stack(&DedupLayer::new());
        let response = call(&service, signed_body(Bytes::from_static(text.as_bytes()))).await;
        assert_eq!(
            answer(response).await,
            Answer::Refused(
                DedupRefusal::MissingEventId,
                StatusCode::BAD_REQUEST,
                "missing event id".into()
            ),
            "{text}"
        );
        assert_eq!(handler.calls(), 0, "{text}");
    }
}

#[tokio::test]
async fn without_dt_signature_layer_it_refuses_with_500() {
    let handler = Recorder::default();
    let service = DedupLayer::new().layer(handler.clone());
    let refused = Answer::Refused(
        DedupRefusal::Unverified,
        StatusCode::INTERNAL_SERVER_ERROR,
        "dedup guard used without DtSignatureLayer".into(),
    );
    // A DtBody, but no DtClaims: nobody verified it.
    let request = Request::post("/").body(DtBody::new(body("evt-1"))).unwrap();
    assert_eq!(answer(call(&service, request).await).await, refused);

    // Any other body: refused before a byte of it is read.
    let (unverified, polls) = Counted::new(Full::new(body("evt-1")));
    let request = Request::post("/").body(unverified).unwrap();
    let response = call(&service, request).await;
    let read = polls.load(Ordering::SeqCst);
    assert_eq!(read, 0, "the unverified body was read");
    assert_eq!(answer(response).await, refused);
    assert_eq!(handler.calls(), 0);
}

#[tokio::test]
async fn a_forged_request_never_reaches_the_guard() {
    let guard = DedupLayer::new();
    let (handler, service) = stack(&guard);
    let mut forged = signed("evt-1");
    forged.headers_mut().insert(
        "x-dt-signature",
        sign(&body("evt-1"), "forged").parse().unwrap(),
    );
    let response = call(&service, forged).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(handler.calls(), 0);
    // Nothing was reserved: the real one is handled.
    assert_eq!(answer_to(&service, "evt-1").await, ok());
    assert_eq!(guard.stats().forwarded(), 1);
}

#[tokio::test]
async fn a_failing_store_fails_open_by_default_and_closed_when_asked() {
    let flaky = Flaky::down();

    let open = DedupLayer::with_store(flaky.clone());
    let (handler, service) = stack(&open);
    for _ in 0..2 {
        assert_eq!(answer_to(&service, "evt-1").await, ok());
    }
    assert_eq!(handler.calls(), 2, "fail open forwards, unguarded");
    assert_eq!(open.stats().store_errors(), 2);

    let closed = DedupLayer::with_store(flaky).fail_closed(true);
    let (handler, service) = stack(&closed);
    assert_eq!(
        answer_to(&service, "evt-1").await,
        Answer::Refused(
            DedupRefusal::StoreUnavailable,
            StatusCode::SERVICE_UNAVAILABLE,
            "dedup store unavailable".into()
        )
    );
    assert_eq!(handler.calls(), 0, "fail closed never forwards");
    assert_eq!(closed.stats().store_errors(), 1);
}

#[tokio::test]
async fn a_failed_commit_keeps_the_inner_answer() {
    let guard = DedupLayer::with_store(Flaky::commit_fails());
    let (handler, service) = stack(&guard);
    assert_eq!(answer_to(&service, "evt-1").await, ok());
    assert_eq!(guard.stats().store_errors(), 1);
    // Not marked done; still reserved until the in-flight TTL ends.
    assert_eq!(answer_to(&service, "evt-1").await, in_flight());
    assert_eq!(handler.calls(), 1);
}

#[tokio::test]
async fn in_an_axum_router_between_dt_signature_layer_and_the_handler() {
    use axum::{body::Body, extract::State, routing::post, Extension, Router};
    use tower_dt_signature::DtClaims;

    type Seen = Arc<std::sync::Mutex<Vec<Bytes>>>;
    async fn handler(
        State(seen): State<Seen>,
        Extension(_claims): Extension<DtClaims>,
        body: Bytes,
    ) -> &'static str {
        seen.lock().unwrap().push(body);
        "handled"
    }

    let seen = Seen::default();
    let guard = DedupLayer::new();
    let app = Router::new()
        .route("/", post(handler))
        .with_state(seen.clone())
        .layer(guard.clone())
        .layer(DtSignatureLayer::new(SECRET).clock(at(NOW)));
    let request = |id: &str| signed_request::<Body>("/", body(id));

    let first = call(&app, request("evt-1")).await;
    assert_eq!(first.status(), StatusCode::OK);
    let text = axum::body::to_bytes(first.into_body(), 1024).await.unwrap();
    assert_eq!(text, "handled");

    let again = call(&app, request("evt-1")).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["x-dt-duplicate"], "done");
    assert_eq!(
        again
            .extensions()
            .get::<tower_dt_signature::dedup::Duplicate>(),
        Some(&tower_dt_signature::dedup::Duplicate::Done)
    );
    assert_eq!(
        *seen.lock().unwrap(),
        vec![body("evt-1")],
        "exact bytes, once"
    );
    assert_eq!(guard.stats().duplicates(), 1);
}
