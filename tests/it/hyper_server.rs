//! A real hyper server on 127.0.0.1, built like examples/hyper_receiver.rs, driven by a
//! hyper client over TCP: what arrives on the wire is what DT would send.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, Request, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceBuilder;

use tower_dt_signature::{DtClaims, DtSignatureLayer};

use crate::support::{Recorder, Seen, Vector};

/// The real DT request with both checksums (see `support::Vector`).
fn vector() -> Vector {
    Vector::sha256()
}

/// The layer for the vector's secret with the clock pinned to its `verify_at_unix`.
fn layer(vector: &Vector) -> DtSignatureLayer {
    let now = vector.verify_at;
    DtSignatureLayer::new("test-secret").clock(move || now)
}

/// The requests as they arrived from the wire (before the layer) and as the handler got
/// them (after it).
struct Server {
    addr: SocketAddr,
    arrived: Recorder,
    handled: Recorder,
}

/// Serves `layer` around a recording handler on 127.0.0.1, port chosen by the OS.
async fn serve(layer: DtSignatureLayer) -> Server {
    let arrived = Recorder::default();
    let handled = Recorder::default();
    let service = {
        let arrived = arrived.clone();
        ServiceBuilder::new()
            .map_request(move |request: Request<hyper::body::Incoming>| {
                arrived.record_head(&request);
                request
            })
            .layer(layer)
            .service(handled.clone())
    };

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                // A connection the server cuts short (a refused upload) may end in an
                // error; the tests judge the response the client got.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Server {
        addr,
        arrived,
        handled,
    }
}

/// What one request did: the answer, the head that arrived from the wire (there must be
/// exactly one) and what the handler got.
struct Sent {
    status: StatusCode,
    body: Bytes,
    arrived: HeaderMap,
    handled: Vec<Seen>,
}

impl Sent {
    fn answer(&self) -> (StatusCode, &str) {
        (self.status, std::str::from_utf8(&self.body).unwrap())
    }
}

impl Server {
    /// Sends the vector's headers with `body` on a fresh connection.
    async fn post<B>(&self, vector: &Vector, body: B) -> Sent
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (status, body) = send(self.addr, request(vector, self.addr, body)).await;
        let mut arrived = self.arrived.take();
        assert_eq!(arrived.len(), 1, "requests from the wire");
        Sent {
            status,
            body,
            arrived: arrived.remove(0).parts.headers,
            handled: self.handled.take(),
        }
    }
}

/// A POST to `/` with the vector's headers, exactly as given.
fn request<B>(vector: &Vector, addr: SocketAddr, body: B) -> Request<B> {
    let mut builder = Request::post("/").header(HOST, addr.to_string());
    builder = builder.header(&vector.header_name, &vector.token);
    builder.body(body).unwrap()
}

/// `bytes` in chunks of `size` bytes, with no length known up front: hyper sends it with
/// `Transfer-Encoding: chunked` and no `Content-Length`. Each chunk waits a moment so
/// that the server reads them one by one.
fn chunked(
    bytes: Bytes,
    size: usize,
) -> impl Body<Data = Bytes, Error = Infallible> + Send + 'static {
    let chunks: Vec<Bytes> = (0..bytes.len())
        .step_by(size)
        .map(|start| bytes.slice(start..bytes.len().min(start + size)))
        .collect();
    let frames = stream::unfold(chunks.into_iter(), |mut chunks| async move {
        let chunk = chunks.next()?;
        tokio::time::sleep(Duration::from_millis(5)).await;
        Some((Ok(Frame::data(chunk)), chunks))
    });
    StreamBody::new(frames)
}

/// Sends `request` on a fresh connection; returns the status and the response body.
async fn send<B>(addr: SocketAddr, request: Request<B>) -> (StatusCode, Bytes)
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(async move {
        // Ends with an error when the server refuses a body before it is fully sent.
        let _ = connection.await;
    });
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}

fn is_chunked(headers: &HeaderMap) -> bool {
    headers
        .get(TRANSFER_ENCODING)
        .is_some_and(|te| te == "chunked")
        && !headers.contains_key(CONTENT_LENGTH)
}

#[tokio::test]
async fn real_vector_reaches_the_handler_with_the_exact_bytes() {
    let vector = vector();
    let server = serve(layer(&vector)).await;

    let sent = server.post(&vector, Full::new(vector.body.clone())).await;

    assert_eq!(sent.answer(), (StatusCode::OK, "inner"));
    assert_eq!(sent.arrived[CONTENT_LENGTH], vector.body.len().to_string());
    assert_eq!(sent.handled.len(), 1);
    assert_eq!(sent.handled[0].body, vector.body);
    let claims = sent.handled[0].parts.extensions.get::<DtClaims>().unwrap();
    assert_eq!(claims.jti(), Some("c82gg99hga35jc2afkeg"));
}

#[tokio::test]
async fn chunked_body_without_content_length_is_forwarded_with_one() {
    let vector = vector();
    let server = serve(layer(&vector)).await;

    let sent = server
        .post(&vector, chunked(vector.body.clone(), 132))
        .await;

    assert_eq!(sent.status, StatusCode::OK);
    assert!(is_chunked(&sent.arrived), "{:?}", sent.arrived);
    assert_eq!(sent.handled.len(), 1);
    let handled = &sent.handled[0];
    assert_eq!(handled.body, vector.body);
    assert_eq!(
        handled.parts.headers[CONTENT_LENGTH],
        vector.body.len().to_string()
    );
    assert!(!handled.parts.headers.contains_key(TRANSFER_ENCODING));
}

#[tokio::test]
async fn changed_body_byte_is_refused_before_the_handler() {
    let vector = vector();
    let server = serve(layer(&vector)).await;
    let mut tampered = vector.body.to_vec();
    // `"eventType":"touch"` -> `"eventType":"touci"`: same length, one byte off.
    let at = vector
        .body
        .windows(7)
        .position(|w| w == b"\"touch\"")
        .unwrap()
        + 5;
    tampered[at] = b'i';

    let sent = server.post(&vector, Full::new(Bytes::from(tampered))).await;

    assert_eq!(
        sent.answer(),
        (StatusCode::BAD_REQUEST, "checksum mismatch")
    );
    assert!(sent.handled.is_empty());
}

#[tokio::test]
async fn over_limit_body_with_content_length_is_refused_before_the_handler() {
    let vector = vector();
    let server = serve(layer(&vector).max_body_size(100)).await;

    let sent = server.post(&vector, Full::new(vector.body.clone())).await;

    let too_large = (StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    assert_eq!(sent.answer(), too_large);
    assert!(sent.arrived.contains_key(CONTENT_LENGTH));
    assert!(sent.handled.is_empty());
}

#[tokio::test]
async fn over_limit_chunked_body_is_refused_before_the_handler() {
    let vector = vector();
    let server = serve(layer(&vector).max_body_size(100)).await;

    // 60-byte chunks: the limit is crossed by the second one, not by any single chunk.
    let sent = server.post(&vector, chunked(vector.body.clone(), 60)).await;

    let too_large = (StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    assert_eq!(sent.answer(), too_large);
    assert!(is_chunked(&sent.arrived), "{:?}", sent.arrived);
    assert!(sent.handled.is_empty());
}
