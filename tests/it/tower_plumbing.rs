//! `poll_ready` and `call` follow tower's contract: the service that was polled ready is
//! the one that is called, proven with a `tower-test` mock that allows exactly one call.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::util::BoxService;
use tower::{BoxError, Layer, Service, ServiceExt};
use tower_test::mock;

use tower_dt_signature::dedup::DedupLayer;
use tower_dt_signature::gateway::StaticSecrets;
use tower_dt_signature::Verifier;
use tower_dt_signature::{DtBody, DtSignatureLayer, ErrorKind};

use crate::support::dedup::{answer, body, ok};
use crate::support::*;

const BODY: &[u8] = br#"{"event":{"eventId":"c82gg9catj3vmh4248og"}}"#;

fn request(token: &str) -> Request<Full<Bytes>> {
    Request::post("/")
        .header("x-dt-signature", token)
        .body(Full::new(Bytes::from_static(BODY)))
        .unwrap()
}

type Handle = mock::Handle<Request<DtBody>, Response<Full<Bytes>>>;

/// The next request the mock got. A layer that called a clone never polled ready makes
/// the mock panic inside the spawned future, so nothing arrives: fail, do not hang.
async fn next(handle: &mut Handle) -> (Request<DtBody>, mock::SendResponse<Response<Full<Bytes>>>) {
    tokio::time::timeout(std::time::Duration::from_secs(5), handle.next_request())
        .await
        .expect("nothing forwarded: was an unready clone called?")
        .expect("mock closed")
}

type Mock = mock::Mock<Request<DtBody>, Response<Full<Bytes>>>;
type Layered = BoxService<Request<Full<Bytes>>, Response<Full<Bytes>>, BoxError>;

/// `(layer name, the layer over a mock, the URI to post to)`.
type Case = (&'static str, fn(Mock) -> Layered, &'static str);

/// A layer's service over a mock that allows one call, and the mock's handle.
fn over_mock(layered: fn(Mock) -> Layered) -> (Layered, Handle) {
    let (mock, mut handle) = mock::pair();
    handle.allow(1);
    (layered(mock), handle)
}

fn signature_layer(mock: Mock) -> Layered {
    BoxService::new(DtSignatureLayer::new(SECRET).clock(at(NOW)).layer(mock))
}

/// Every layer that wraps an inner service: the one polled ready must be the one called.
#[tokio::test]
async fn the_service_polled_ready_is_the_one_called() {
    let cases: [Case; 3] = [
        ("DtSignatureLayer", signature_layer, "/"),
        (
            "DtSignatureLayer::gateway",
            |mock| {
                let secrets = StaticSecrets::by_path_segment(1)
                    .tenant("a", Verifier::new(SECRET).clock(at(NOW)));
                BoxService::new(DtSignatureLayer::gateway(secrets).layer(mock))
            },
            "/dt/a",
        ),
        (
            "DedupLayer behind DtSignatureLayer",
            |mock| {
                let guarded = DedupLayer::new().layer(mock);
                BoxService::new(DtSignatureLayer::new(SECRET).clock(at(NOW)).layer(guarded))
            },
            "/",
        ),
    ];
    for (name, layered, uri) in cases {
        let (mut service, mut handle) = over_mock(layered);

        // A mock clone that was never polled ready panics when called: the layer must
        // move the ready one into its future.
        service.ready().await.unwrap();
        let future = tokio::spawn(service.call(signed_request(uri, body("evt-1"))));

        let (forwarded, respond) = next(&mut handle).await;
        let bytes = forwarded.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(bytes, body("evt-1"), "{name}");
        respond.send_response(Response::new(Full::new(Bytes::from_static(b"inner"))));
        // The inner service's answer, unmarked.
        assert_eq!(answer(future.await.unwrap().unwrap()).await, ok(), "{name}");

        // The single permit is spent: a second request is verified but waits for the
        // inner service's readiness, and goes through once a permit is given.
        service.ready().await.unwrap();
        let mut second = tokio::spawn(service.call(signed_request(uri, body("evt-2"))));
        let waited = tokio::time::timeout(std::time::Duration::from_millis(100), &mut second).await;
        assert!(waited.is_err(), "{name}: called without a permit");
        assert!(handle.poll_request().is_pending(), "{name}");
        handle.allow(1);
        let (forwarded, respond) = next(&mut handle).await;
        let bytes = forwarded.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(bytes, body("evt-2"), "{name}");
        respond.send_response(Response::new(Full::new(Bytes::from_static(b"inner"))));
        assert_eq!(answer(second.await.unwrap().unwrap()).await, ok(), "{name}");
    }
}

/// A client that trickles its body holds no permit of the inner service: readiness is
/// acquired once the body is in and verified. With a one-permit inner service, a stalled
/// upload does not keep a complete request from getting through. (Before: the permit was
/// taken in `poll_ready`/`call` and held while the body trickled.)
#[tokio::test]
async fn a_stalled_body_holds_no_inner_permit() {
    use futures_util::StreamExt;
    use http_body::Frame;
    use http_body_util::StreamBody;

    let (mock, mut handle): (Mock, Handle) = mock::pair();
    handle.allow(1);
    let mut service = DtSignatureLayer::new(SECRET).clock(at(NOW)).layer(mock);

    // A signed request whose body sends 5 bytes, then never ends.
    let first = futures_util::stream::iter([Ok::<_, BoxError>(Frame::data(Bytes::from_static(
        &BODY[..5],
    )))]);
    let stalled = Request::post("/")
        .header("x-dt-signature", sign(BODY, SECRET))
        .body(StreamBody::new(
            first.chain(futures_util::stream::pending()),
        ))
        .unwrap();
    let stalled = tokio::spawn(Service::call(&mut service, stalled));

    // Another client's complete request gets the one permit meanwhile.
    ServiceExt::<Request<Full<Bytes>>>::ready(&mut service)
        .await
        .unwrap();
    let complete = tokio::spawn(service.call(request(&sign(BODY, SECRET))));
    let (forwarded, respond) = next(&mut handle).await;
    assert_eq!(
        forwarded.into_body().collect().await.unwrap().to_bytes(),
        BODY
    );
    respond.send_response(Response::new(Full::new(Bytes::from_static(b"inner"))));
    assert_eq!(complete.await.unwrap().unwrap().status(), StatusCode::OK);

    // The stalled one is still waiting for its body, and never reached the mock.
    assert!(!stalled.is_finished());
    assert!(handle.poll_request().is_pending());
    stalled.abort();
}

#[tokio::test]
async fn a_refusal_does_not_spend_the_inner_services_readiness() {
    let (mut service, mut handle) = over_mock(signature_layer);

    service.ready().await.unwrap();
    let response = service.call(request(&sign(BODY, "forged"))).await.unwrap();
    let (status, kind, _) = outcome(response).await;
    assert_eq!(
        (status, kind),
        (StatusCode::BAD_REQUEST, Some(ErrorKind::InvalidSignature))
    );
    assert!(
        handle.poll_request().is_pending(),
        "a refused request reached the mock"
    );

    // The permit is still there for the next, valid request.
    service.ready().await.unwrap();
    let future = tokio::spawn(service.call(request(&sign(BODY, SECRET))));
    let (forwarded, respond) = next(&mut handle).await;
    assert_eq!(
        forwarded.into_body().collect().await.unwrap().to_bytes(),
        BODY
    );
    respond.send_response(Response::new(Full::new(Bytes::new())));
    assert_eq!(future.await.unwrap().unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn inner_errors_pass_through_unchanged() {
    let (mut service, mut handle) = over_mock(signature_layer);
    service.ready().await.unwrap();
    let future = tokio::spawn(service.call(request(&sign(BODY, SECRET))));
    let (_, respond) = next(&mut handle).await;
    respond.send_error(std::io::Error::other("inner failed"));
    let error = future.await.unwrap().unwrap_err();
    assert_eq!(error.to_string(), "inner failed");
}
