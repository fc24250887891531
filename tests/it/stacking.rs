//! DtSignatureLayer in the stack the README recommends, outermost first: TraceLayer,
//! TimeoutLayer, RequestBodyLimitLayer (optional), DtSignatureLayer, handler.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::Router;
use futures_util::{stream, StreamExt};
use http_body_util::BodyExt;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use tower_dt_signature::{DtSignatureError, DtSignatureLayer, ErrorKind};

use crate::support::{call, Vector};

/// The real DT request with both checksums (see `support::Vector`).
fn vector() -> Vector {
    Vector::sha256()
}

/// Every body the handler was given.
type Handled = Arc<Mutex<Vec<Bytes>>>;

/// The recommended stack around a handler that records its body. The vector's clock is
/// pinned so that its token is current.
fn app(vector: &Vector, timeout: Duration, body_limit: usize, handled: Handled) -> Router {
    let now = vector.verify_at;
    Router::new()
        .route(
            "/",
            post(move |body: Bytes| async move {
                handled.lock().unwrap().push(body);
                "ok"
            }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(TraceLayer::new_for_http())
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    timeout,
                ))
                .layer(RequestBodyLimitLayer::new(body_limit))
                .layer(DtSignatureLayer::new("test-secret").clock(move || now)),
        )
}

/// A POST to `/` with the vector's headers, exactly as given.
fn request(vector: &Vector, body: Body) -> Request<Body> {
    let mut builder = Request::post("/");
    builder = builder.header(&vector.header_name, &vector.token);
    builder.body(body).unwrap()
}

#[tokio::test]
async fn real_vector_passes_the_stack_with_the_exact_bytes() {
    let vector = vector();
    let handled = Handled::default();
    let app = app(&vector, Duration::from_secs(10), 64 * 1024, handled.clone());

    let response = app
        .oneshot(request(&vector, Body::from(vector.body.clone())))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let handled = handled.lock().unwrap();
    assert_eq!(handled.len(), 1);
    assert_eq!(handled[0], vector.body);
}

#[tokio::test]
async fn forged_body_is_refused_inside_the_stack() {
    let vector = vector();
    let handled = Handled::default();
    let app = app(&vector, Duration::from_secs(10), 64 * 1024, handled.clone());
    // A different event under the real token.
    let forged = String::from_utf8(vector.body.to_vec())
        .unwrap()
        .replace("c82gg9catj3vmh4248og", "c82gg9catj3vmh4248oh");
    assert_ne!(forged.as_bytes(), vector.body);

    let response = app
        .oneshot(request(&vector, Body::from(forged)))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = response.extensions().get::<DtSignatureError>().cloned();
    assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::ChecksumMismatch));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "checksum mismatch");
    assert!(handled.lock().unwrap().is_empty());
}

#[tokio::test]
async fn stalled_body_is_cut_off_by_the_timeout() {
    let vector = vector();
    let handled = Handled::default();
    let app = app(
        &vector,
        Duration::from_millis(100),
        64 * 1024,
        handled.clone(),
    );
    // The first half of the real body, then nothing, ever: a client that stalls mid-upload.
    let first_half = vector.body.slice(..vector.body.len() / 2);
    let first_chunk_read = Arc::new(AtomicBool::new(false));
    let stalled = {
        let first_chunk_read = first_chunk_read.clone();
        stream::once(async move {
            first_chunk_read.store(true, Ordering::SeqCst);
            Ok::<_, Infallible>(first_half)
        })
        .chain(stream::pending())
    };

    let response = app
        .oneshot(request(&vector, Body::from_stream(stalled)))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    // The token passed and the layer was reading the body when the timeout struck.
    assert!(first_chunk_read.load(Ordering::SeqCst));
    assert!(response.extensions().get::<DtSignatureError>().is_none());
    assert!(handled.lock().unwrap().is_empty());
}

#[tokio::test]
async fn body_over_the_outer_limit_never_reaches_the_handler() {
    let vector = vector();
    let handled = Handled::default();
    // RequestBodyLimitLayer stricter than DtSignatureLayer's own limit (1 MiB).
    let app = app(&vector, Duration::from_secs(10), 100, handled.clone());

    // With Content-Length, RequestBodyLimitLayer answers 413 itself.
    let mut with_length = request(&vector, Body::from(vector.body.clone()));
    with_length
        .headers_mut()
        .insert("content-length", vector.body.len().into());
    let response = call(&app, with_length).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(response.extensions().get::<DtSignatureError>().is_none());

    // Without one, the outer limit trips while DtSignatureLayer reads the body: still a
    // 413, as `BodyTooLarge`.
    let chunks: Vec<Result<Bytes, Infallible>> = vector
        .body
        .chunks(60)
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    let chunked = request(&vector, Body::from_stream(stream::iter(chunks)));
    let response = app.oneshot(chunked).await.unwrap();
    let kind = response
        .extensions()
        .get::<DtSignatureError>()
        .map(|error| error.kind());
    assert_eq!(kind, Some(ErrorKind::BodyTooLarge));
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    assert!(handled.lock().unwrap().is_empty());
}
