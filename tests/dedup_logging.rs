//! The duplicate guard's log lines: duplicates at debug and store failures at warn, with
//! the event id, and never the secret, the token or a digest. Its own test binary: the
//! subscriber is set for this thread only, and tracing caches per callsite whether
//! anyone listens, which other tests running at the same time would disturb.

mod common;
mod dedup_support;

use std::time::Duration;

use bytes::Bytes;
use common::capture_logs;
use dedup_support::*;
use http::{Request, Response};
use http_body_util::Full;
use tower::ServiceExt;
use tower_dt_signature::dedup::{
    BoxStoreFuture, DedupLayer, DedupStore, MemoryStore, ReservationToken, Reserve, StoreError,
};

/// A store that cannot reserve.
#[derive(Clone, Debug)]
struct Down;

impl DedupStore for Down {
    type Future<T: Send + 'static> = BoxStoreFuture<T>;

    fn reserve(&self, _key: &str, _ttl: Duration) -> Self::Future<Reserve> {
        Box::pin(async { Err(StoreError::new("store down")) })
    }

    fn commit(&self, _key: &str, _token: ReservationToken, _ttl: Duration) -> Self::Future<()> {
        Box::pin(async { Ok(()) })
    }

    fn release(&self, _key: &str, _token: ReservationToken) -> Self::Future<()> {
        Box::pin(async { Ok(()) })
    }

    fn release_detached(&self, _key: &str, _token: ReservationToken) {}
}

async fn send_owned(
    service: Stack<MemoryStore>,
    request: Request<Full<Bytes>>,
) -> Response<Full<Bytes>> {
    service.oneshot(request).await.unwrap()
}

#[test]
fn duplicates_and_store_failures_are_logged_with_the_event_id_and_nothing_secret() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let ((), logs) = capture_logs(|| {
        runtime.block_on(async {
            let handler = Handler::default();
            let service = stack(&DedupLayer::new(), &handler);
            send(&service, signed("evt-done")).await;
            send(&service, signed("evt-done")).await;

            handler.hold();
            let held = tokio::spawn(send_owned(service.clone(), signed("evt-busy")));
            handler.entered().await;
            send(&service, signed("evt-busy")).await;
            handler.open(1);
            held.await.unwrap();
            handler.unhold();

            let service = stack(&DedupLayer::with_store(Down), &handler);
            send(&service, signed("evt-down")).await;
        })
    });

    for (level, message, id) in [
        ("DEBUG", "absorbed a duplicate of a done event", "evt-done"),
        (
            "DEBUG",
            "refused a duplicate of an event in flight",
            "evt-busy",
        ),
        ("WARN", "forwarding unguarded (fail open)", "evt-down"),
    ] {
        assert!(
            logs.lines().any(|line| line.contains(level)
                && line.contains(message)
                && line.contains(&format!("event_id={id}"))),
            "{message}:\n{logs}"
        );
    }
    for id in ["evt-done", "evt-busy", "evt-down"] {
        let body = body(id);
        let token = common::sign(&body, common::SECRET);
        for secret in [
            token.clone(),
            token.split('.').nth(2).unwrap().to_owned(),
            common::SECRET.to_owned(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body)),
            hex::encode(<sha1::Sha1 as sha2::Digest>::digest(&body)),
        ] {
            assert!(!logs.contains(&secret), "logged: {secret}");
        }
    }
}
