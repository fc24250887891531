//! The layer on an axum `Router`, as the README shows it: no `HandleErrorLayer` needed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::routing::post;
use axum::{Extension, Router};
use http::{Request, StatusCode};
use tower::ServiceExt;

use tower_dt_signature::{DtClaims, DtSignatureLayer, ErrorKind};

use crate::support::*;

#[derive(Clone, Default)]
struct Seen {
    calls: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<(Bytes, DtClaims)>>>,
}

async fn handler(
    State(seen): State<Seen>,
    Extension(claims): Extension<DtClaims>,
    body: Bytes,
) -> &'static str {
    seen.calls.fetch_add(1, Ordering::SeqCst);
    seen.bodies.lock().unwrap().push((body, claims));
    "ok"
}

fn app(seen: Seen, vector: &Vector) -> Router {
    let verify_at = vector.verify_at;
    Router::new()
        .route("/", post(handler))
        .with_state(seen)
        .layer(DtSignatureLayer::new(&vector.secret).clock(move || verify_at))
}

#[tokio::test]
async fn router_with_layer_accepts_dt_and_refuses_forgeries() {
    let vector = Vector::sha256();
    let seen = Seen::default();
    let request = Request::post("/")
        .header(&vector.header_name, &vector.token)
        .body(Body::from(vector.body.clone()))
        .unwrap();
    let response = app(seen.clone(), &vector).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    {
        let bodies = seen.bodies.lock().unwrap();
        assert_eq!(bodies.len(), 1);
        assert_eq!(bodies[0].0, vector.body);
        assert!(bodies[0].1.sha256_verified());
    }

    let forged = Request::post("/")
        .header("x-dt-signature", sign(&vector.body, "guessed"))
        .body(Body::from(vector.body.clone()))
        .unwrap();
    let response = app(seen.clone(), &vector).oneshot(forged).await.unwrap();
    let (status, kind, text) = outcome(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(kind, Some(ErrorKind::InvalidSignature));
    assert_eq!(text, "invalid token signature");
    assert_eq!(
        seen.calls.load(Ordering::SeqCst),
        1,
        "the forgery reached the handler"
    );
}

#[tokio::test]
async fn unknown_routes_are_still_verified_first() {
    // `Router::layer` wraps the fallback too: an unsigned request to any path is a 400, a
    // signed one to an unknown path reaches the router's 404.
    let vector = Vector::sha256();
    let seen = Seen::default();
    let unsigned = Request::post("/nowhere").body(Body::empty()).unwrap();
    let response = app(seen.clone(), &vector).oneshot(unsigned).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let signed = Request::post("/nowhere")
        .header("x-dt-signature", &vector.token)
        .body(Body::from(vector.body.clone()))
        .unwrap();
    let response = app(seen.clone(), &vector).oneshot(signed).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
}
