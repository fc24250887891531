//! The whole service on an arbitrary header set and an arbitrary chunking of the body.
//!
//! Input: one chunk-size byte, then header lines `name: value\n`, a blank line, the body.
//! Invariants: nothing panics or hangs; a forwarded request carries exactly the body
//! bytes; a refused one is 400 or 413 with the error attached and never reaches the
//! inner service.
#![no_main]

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use tower::{Layer, Service};
use tower_dt_signature::{DtBody, DtSignatureError, DtSignatureLayer, ErrorKind};

use common::{ready, request, split_request, FuzzBody};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let (lines, body) = split_request(rest);
    let lines: Vec<(&[u8], Vec<u8>)> = lines.into_iter().map(|(n, v)| (n, v.to_vec())).collect();
    let Some(request) = request(&lines, body, usize::from(chunk)) else {
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

    let Ok(()) = ready(std::future::poll_fn(|cx| {
        Service::<Request<FuzzBody>>::poll_ready(&mut service, cx)
    }));
    // Every body frame and the inner service are ready at once: no wakeups needed.
    let Ok(response) = ready(service.call(request));

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
            let text = ready(response.into_body().collect()).unwrap().to_bytes();
            assert_eq!(text, error.kind().as_str());
        }
    }
});
