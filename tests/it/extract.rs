//! The `DtPayload` axum extractor (feature `axum`): typed payloads of verified requests,
//! 500 without the layer, 400 naming the field for a verified body that is not DT's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::body::Body;
use axum::routing::post;
use axum::Router;
use http::StatusCode;
use http_body_util::BodyExt;
use tower::ServiceExt;

use tower_dt_signature::events::{EventData, EventType, Payload};
use tower_dt_signature::testing::Signer;
use tower_dt_signature::{extract::DtPayload, extract::DtPayloadRejection, DtSignatureLayer};

const SECRET: &str = "test-secret";

/// A router whose handler records every payload it is given.
fn app(with_layer: bool) -> (Router, Arc<Mutex<Vec<Payload>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let router = Router::new().route(
        "/",
        post(move |DtPayload(payload): DtPayload| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(payload);
                "ok"
            }
        }),
    );
    let router = if with_layer {
        router.layer(DtSignatureLayer::new(SECRET).require_sha256(true))
    } else {
        router
    };
    (router, seen)
}

async fn answer(app: Router, request: http::Request<Body>) -> (StatusCode, String) {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn verified_requests_of_every_type_decode_to_their_variant() {
    let (app, seen) = app(true);
    let signer = Signer::new(SECRET);
    for event_type in EventType::ALL {
        let payload = Payload::sample(&event_type, SystemTime::now()).unwrap();
        let body = serde_json::to_vec(&payload).unwrap();
        let (status, text) = answer(app.clone(), signer.request("/", body).unwrap()).await;
        assert_eq!(
            (status, text.as_str()),
            (StatusCode::OK, "ok"),
            "{event_type}"
        );
        let got = seen.lock().unwrap().pop().unwrap();
        assert_eq!(got, payload);
        assert_eq!(got.event.event_type, event_type);
        assert!(!matches!(got.event.data, EventData::Unknown(_)));
    }
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn dt_event_files_decode_through_the_extractor() {
    let (app, seen) = app(true);
    let signer = Signer::new(SECRET);
    let body = std::fs::read(format!(
        "{}/tests/data/dt-events/humidity.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let (status, _) = answer(app, signer.request("/", body).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let got = seen.lock().unwrap().pop().unwrap();
    let EventData::Humidity(humidity) = got.event.data else {
        panic!()
    };
    assert_eq!(
        (humidity.temperature, humidity.relative_humidity),
        (22.45, 41.5)
    );
}

#[tokio::test]
async fn without_the_layer_it_answers_500_and_never_reads_the_body() {
    let (app, seen) = app(false);
    // A correctly signed, valid DT body: without the layer nothing verified it.
    let payload = Payload::sample(&EventType::Touch, SystemTime::now()).unwrap();
    let request = Signer::new(SECRET)
        .request("/", serde_json::to_vec(&payload).unwrap())
        .unwrap();
    let (status, text) = answer(app.clone(), request).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(text.contains("DtSignatureLayer is missing"), "{text}");
    assert!(seen.lock().unwrap().is_empty());

    // A body that is not even JSON gets the same 500, not a 400: it was never decoded.
    // A body that counts its polls proves it was never read.
    let polls = Arc::new(AtomicUsize::new(0));
    let counted = polls.clone();
    let stream = futures_util::stream::poll_fn(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        std::task::Poll::Ready(None::<Result<bytes::Bytes, std::io::Error>>)
    });
    let request = http::Request::post("/")
        .body(Body::from_stream(stream))
        .unwrap();
    let (status, text) = answer(app, request).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(text.contains("DtSignatureLayer is missing"), "{text}");
    assert_eq!(polls.load(Ordering::SeqCst), 0);
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_verified_body_that_is_not_a_dt_payload_is_400_naming_the_field() {
    let (app, seen) = app(true);
    let signer = Signer::new(SECRET);
    let cases = [
        (r#"{"hello":"world"}"#, "missing field `event`"),
        (
            r#"{"event":{"eventId":7,"targetName":"projects/p/devices/d","eventType":"touch","data":{"touch":{"updateTime":"2024-01-01T00:00:00Z"}},"timestamp":"2024-01-01T00:00:00Z"},"labels":{}}"#,
            "`event.eventId`",
        ),
        (
            r#"{"event":{"eventId":"e","targetName":"projects/p/devices/d","eventType":"temperature","data":{"temperature":{"value":"hot","updateTime":"2024-01-01T00:00:00Z"}},"timestamp":"2024-01-01T00:00:00Z"},"labels":{}}"#,
            "`event.data.temperature.value`",
        ),
        ("not json", "invalid Data Connector payload"),
    ];
    for (body, names) in cases {
        let (status, text) = answer(app.clone(), signer.request("/", body).unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(text.contains(names), "{body}: {text}");
        assert!(seen.lock().unwrap().is_empty(), "{body}");
    }
}

#[tokio::test]
async fn a_tampered_request_never_reaches_the_extractor() {
    let (app, seen) = app(true);
    let payload = Payload::sample(&EventType::Co2, SystemTime::now()).unwrap();
    let body = serde_json::to_vec(&payload).unwrap();
    let request = Signer::new(SECRET)
        .request::<Body>("/", body.clone())
        .unwrap();
    let (mut parts, _) = request.into_parts();
    let mut tampered = body;
    let at = tampered.iter().position(|&b| b == b'5').unwrap_or(10);
    tampered[at] ^= 1;
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let request = http::Request::from_parts(parts, Body::from(tampered));
    let (status, text) = answer(app, request).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::BAD_REQUEST, "checksum mismatch")
    );
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn rejection_statuses() {
    assert_eq!(
        DtPayloadRejection::MissingLayer.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let error = Payload::from_slice(b"{}").unwrap_err();
    let rejection = DtPayloadRejection::InvalidPayload(error);
    assert_eq!(rejection.status(), StatusCode::BAD_REQUEST);
    assert!(rejection.to_string().contains("missing field `event`"));
}
