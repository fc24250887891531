//! The whole service on an arbitrary header set and an arbitrary chunking of the body.
//!
//! Input: one chunk-size byte, then header lines `name: value\n`, a blank line, the body.
//! Invariants: nothing panics or hangs; a forwarded request carries exactly the body
//! bytes; a refused one is 400 or 413 with the error attached and never reaches the
//! inner service.
#![no_main]

mod common;

use std::time::{Duration, UNIX_EPOCH};

use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::Layer;
use tower_dt_signature::{DtSignatureError, DtSignatureLayer, ErrorKind};

use common::{inner, ready, request, serve, split_request};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let (lines, body) = split_request(rest);
    let lines: Vec<(&[u8], Vec<u8>)> = lines.into_iter().map(|(n, v)| (n, v.to_vec())).collect();
    let Some(request) = request(&lines, body, usize::from(chunk)) else {
        return;
    };

    let (seen, inner) = inner();
    let mut service = DtSignatureLayer::new("test-secret")
        .clock(|| UNIX_EPOCH + Duration::from_secs(1_644_496_933))
        .max_body_size(4096)
        .layer(inner);
    // Every body frame and the inner service are ready at once: no wakeups needed.
    let response = serve(&mut service, request);
    let forwarded = seen.lock().unwrap().take().map(|(bytes, _)| bytes);
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
