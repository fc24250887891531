//! The gateway of `examples/gateway/` (its router, compiled in here) against real axum
//! upstreams on 127.0.0.1:0: per-connector secrets, byte-for-byte forwarding, refusals that
//! never reach the upstream, and the upstream's failures turned into 502 / 504.

#[path = "../../examples/gateway/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod app;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode, Uri};
use axum::routing::post;
use axum::Router;
use http_body_util::BodyExt;
use metrics_exporter_prometheus::PrometheusBuilder;
use tower::ServiceExt;

use tower_dt_signature::testing::Signer;
use tower_dt_signature::Verifier;

use crate::support::{call, Counted};

const SECRET_A: &str = "secret of connector a";
const SECRET_B: &str = "secret of connector b";

fn event(id: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"event":{{"eventId":"{id}","targetName":"projects/p/devices/d","eventType":"touch","data":{{"touch":{{"updateTime":"2026-11-25T12:00:00.000000Z"}}}},"timestamp":"2026-11-25T12:00:00.000000Z"}},"labels":{{}}}}"#
    ))
}

/// `body` as DT posts it to connector `connector`, signed now with `secret`.
fn post_event(connector: &str, body: Bytes, secret: &str) -> Request<Body> {
    Signer::new(secret)
        .request(&format!("/dt/{connector}"), body)
        .unwrap()
}

/// What the upstream received.
type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// An upstream on a free loopback port that records each event and answers `status`
/// after `delay`.
async fn upstream(status: StatusCode, delay: Duration) -> (Uri, Received) {
    let received = Received::default();
    let log = received.clone();
    let app = Router::new().route(
        "/events",
        post(move |headers: HeaderMap, body: Bytes| async move {
            log.lock().unwrap().push((headers, body));
            tokio::time::sleep(delay).await;
            status
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/events").parse().unwrap(), received)
}

fn gateway(upstream: Uri, timeout: Duration) -> Router {
    app::router(app::Config {
        connectors: vec![
            ("a".to_owned(), Verifier::new(SECRET_A).require_sha256(true)),
            ("b".to_owned(), Verifier::new(SECRET_B).require_sha256(true)),
        ],
        upstream,
        upstream_timeout: timeout,
        metrics: None,
    })
}

async fn text(response: axum::response::Response) -> (StatusCode, String) {
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn each_connector_is_verified_with_its_secret_and_forwarded_byte_for_byte() {
    let (uri, received) = upstream(StatusCode::NO_CONTENT, Duration::ZERO).await;
    let app = gateway(uri, Duration::from_secs(5));

    for (connector, secret, id) in [("a", SECRET_A, "evt-a-1"), ("b", SECRET_B, "evt-b-1")] {
        let body = event(id);
        let response = call(&app, post_event(connector, body.clone(), secret)).await;
        let request_id = response.headers().get("x-request-id").cloned();
        assert_eq!(
            text(response).await,
            (StatusCode::OK, "forwarded".to_owned())
        );
        let (headers, forwarded) = received.lock().unwrap().pop().expect("not forwarded");
        assert_eq!(forwarded, body, "the upstream got other bytes");
        assert_eq!(headers[app::X_DT_CONNECTOR], connector);
        // The request id the gateway made is on its answer and on the upstream request.
        assert_eq!(headers.get("x-request-id"), request_id.as_ref());
        assert!(request_id.is_some());
    }

    // A's event signed with B's secret, and an unsigned one: refused, never forwarded.
    let body = event("evt-a-2");
    let forged = call(&app, post_event("a", body.clone(), SECRET_B)).await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    let unsigned = Request::post("/dt/a").body(Body::from(body)).unwrap();
    let response = call(&app, unsigned).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        received.lock().unwrap().is_empty(),
        "a refused event was forwarded"
    );
}

#[tokio::test]
async fn an_unknown_connector_is_refused_before_its_body_is_read() {
    let (uri, received) = upstream(StatusCode::OK, Duration::ZERO).await;
    let app = gateway(uri, Duration::from_secs(5));

    let body = event("evt-c-1");
    let (counted, polls) = Counted::new(http_body_util::Full::new(body.clone()));
    let request = Request::post("/dt/c")
        .header("x-dt-signature", Signer::new(SECRET_A).sign(&body))
        .body(Body::new(counted))
        .unwrap();
    let (status, text) = text(app.oneshot(request).await.unwrap()).await;
    // Answered like a wrong secret: which connectors exist is not told.
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::BAD_REQUEST, "invalid token signature")
    );
    assert_eq!(polls.load(Ordering::SeqCst), 0, "the body was read");
    assert!(received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_duplicate_is_absorbed_and_not_forwarded_twice() {
    let (uri, received) = upstream(StatusCode::OK, Duration::ZERO).await;
    let app = gateway(uri, Duration::from_secs(5));
    let body = event("evt-dup-1");
    for duplicate in [None, Some("done")] {
        let response = call(&app, post_event("a", body.clone(), SECRET_A)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let marked = response.headers().get("x-dt-duplicate");
        assert_eq!(marked.map(|value| value.to_str().unwrap()), duplicate);
    }
    assert_eq!(received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn upstream_failures_become_502_and_504_so_dt_retries() {
    // Down: a port that was free a moment ago, with nothing listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down: Uri = format!("http://{}/events", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    drop(listener);
    let request = post_event("a", event("evt-down"), SECRET_A);
    let response = call(&gateway(down, Duration::from_secs(5)), request).await;
    assert_eq!(
        text(response).await,
        (StatusCode::BAD_GATEWAY, "upstream unreachable".to_owned())
    );

    // Refusing: a 500 upstream is a 502 here.
    let (uri, received) = upstream(StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO).await;
    let app = gateway(uri, Duration::from_secs(5));
    let body = event("evt-refused");
    let response = call(&app, post_event("a", body.clone(), SECRET_A)).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    // The duplicate guard released the event: DT's retry reaches the upstream again.
    let retry = app.oneshot(post_event("a", body, SECRET_A)).await.unwrap();
    assert_eq!(retry.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(received.lock().unwrap().len(), 2);

    // Slow: no answer within the gateway's timeout.
    let (uri, _) = upstream(StatusCode::OK, Duration::from_secs(30)).await;
    let request = post_event("a", event("evt-slow"), SECRET_A);
    let response = call(&gateway(uri, Duration::from_millis(200)), request).await;
    assert_eq!(
        text(response).await,
        (StatusCode::GATEWAY_TIMEOUT, "upstream timed out".to_owned())
    );
}

#[tokio::test]
async fn metrics_are_served_for_prometheus() {
    // A recorder of its own (not installed globally), current for this test's thread only.
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let (uri, _) = upstream(StatusCode::OK, Duration::ZERO).await;
    let app = app::router(app::Config {
        connectors: vec![("a".to_owned(), Verifier::new(SECRET_A).require_sha256(true))],
        upstream: uri,
        upstream_timeout: Duration::from_secs(5),
        metrics: Some(handle),
    });

    let _guard = metrics::set_default_local_recorder(&recorder);
    let ok = call(&app, post_event("a", event("evt-m-1"), SECRET_A)).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let forged = call(&app, post_event("a", event("evt-m-2"), SECRET_B)).await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);

    let metrics = app
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (status, text) = text(metrics).await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        r#"dt_signature_requests_total{outcome="accepted",kind="none",scheme="hmac"} 1"#,
        r#"dt_signature_requests_total{outcome="rejected",kind="invalid_signature",scheme="hmac"} 1"#,
        "dt_signature_body_bytes_count 1",
        "dt_signature_verification_seconds_count 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
}
