//! For random bodies and secrets a freshly signed request passes the layer with its exact
//! bytes, and any one-byte change of the body is refused before the inner service.

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use proptest::prelude::*;
use tower::{Layer, ServiceExt};

use tower_dt_signature::{DtSignatureLayer, ErrorKind};

use crate::support::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn send(secret: &[u8], token: &str, body: Vec<u8>) -> (StatusCode, Option<ErrorKind>, Vec<Seen>) {
    let recorder = Recorder::default();
    let service = DtSignatureLayer::new(secret)
        .clock(at(NOW))
        .layer(recorder.clone());
    let request = Request::post("/")
        .header("x-dt-signature", token)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    runtime().block_on(async {
        let response = service.oneshot(request).await.unwrap();
        let (status, kind, _) = outcome(response).await;
        (status, kind, recorder.take())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn signed_passes_and_any_changed_byte_fails(
        secret in proptest::collection::vec(any::<u8>(), 1..64),
        body in proptest::collection::vec(any::<u8>(), 1..2048),
        index in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let token = sign(&body, &secret);

        let (status, kind, seen) = send(&secret, &token, body.clone());
        prop_assert_eq!(status, StatusCode::OK);
        prop_assert_eq!(kind, None);
        prop_assert_eq!(seen.len(), 1);
        prop_assert_eq!(&seen[0].body[..], &body[..]);

        let mut changed = body.clone();
        changed[index.index(body.len())] ^= flip;
        let (status, kind, seen) = send(&secret, &token, changed);
        prop_assert_eq!(status, StatusCode::BAD_REQUEST);
        prop_assert_eq!(kind, Some(ErrorKind::ChecksumMismatch));
        prop_assert_eq!(seen.len(), 0);
    }
}
