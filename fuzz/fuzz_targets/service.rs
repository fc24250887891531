//! The whole service on an arbitrary header set and an arbitrary chunking of the body.
//!
//! Input: one chunk-size byte, then header lines `name: value\n`, a blank line, the body.
//! Invariants: nothing panics or hangs; a forwarded request carries exactly the body
//! bytes; a refused one is 400 or 413 with the error attached and never reaches the
//! inner service.
#![no_main]

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use libfuzzer_sys::fuzz_target;
use tower::{Layer, Service};
use tower_dt_signature::{DtBody, DtSignatureError, DtSignatureLayer, ErrorKind};

type FuzzBody =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let (head, body) = match rest.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (rest, &[][..]),
    };

    let mut request = Request::post("/");
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = http::HeaderName::from_bytes(&line[..colon]);
        let value = http::HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (name, value) {
            request = request.header(name, value);
        }
    }
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = body
        .chunks(chunk)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let Ok(request) = request.body(StreamBody::new(futures_util::stream::iter(frames))) else {
        return;
    };

    let seen: Arc<Mutex<Option<Bytes>>> = Arc::default();
    let inner_seen = seen.clone();
    let inner = tower::service_fn(move |request: Request<DtBody>| {
        *inner_seen.lock().unwrap() = Some(request.into_body().into_bytes());
        std::future::ready(Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))))
    });
    let mut service = DtSignatureLayer::new("test-secret")
        .clock(|| UNIX_EPOCH + Duration::from_secs(1_644_496_933))
        .max_body_size(4096)
        .layer(inner);

    let mut cx = Context::from_waker(Waker::noop());
    assert!(Service::<Request<FuzzBody>>::poll_ready(&mut service, &mut cx).is_ready());
    let mut future = std::pin::pin!(service.call(request));
    // Every body frame and the inner service are ready at once: no wakeups needed.
    let response = match future.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(response)) => response,
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => panic!("the service hung on a ready body"),
    };

    let forwarded = seen.lock().unwrap().take();
    match response.extensions().get::<DtSignatureError>().cloned() {
        None => {
            assert_eq!(response.status(), 200);
            assert_eq!(forwarded.as_deref(), Some(body));
        }
        Some(error) => {
            assert!(
                forwarded.is_none(),
                "a refused request reached the inner service"
            );
            let expected = if error.kind() == ErrorKind::BodyTooLarge {
                413
            } else {
                400
            };
            assert_eq!(response.status(), expected);
            let text = response.into_body().collect();
            let mut text = std::pin::pin!(text);
            match text.as_mut().poll(&mut cx) {
                Poll::Ready(Ok(text)) => assert_eq!(text.to_bytes(), error.kind().as_str()),
                _ => panic!("the rejection body is not ready"),
            }
        }
    }
});
