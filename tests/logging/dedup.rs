//! The duplicate guard's log lines: duplicates at debug and store failures at warn, with
//! the event id, and never the secret, the token or a digest.

use tower_dt_signature::dedup::DedupLayer;

use crate::support::dedup::*;
use crate::support::{assert_nothing_secret, call, capture_logs, send_owned, sign, SECRET};

#[test]
fn duplicates_and_store_failures_are_logged_with_the_event_id_and_nothing_secret() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let ((), logs) = capture_logs(|| {
        runtime.block_on(async {
            let (handler, service) = stack(&DedupLayer::new());
            call(&service, signed("evt-done")).await;
            call(&service, signed("evt-done")).await;

            handler.hold();
            let held = tokio::spawn(send_owned(service.clone(), signed("evt-busy")));
            handler.entered().await;
            call(&service, signed("evt-busy")).await;
            handler.open(1);
            held.await.unwrap();
            handler.unhold();

            let (_, service) = stack(&DedupLayer::with_store(Flaky::down()));
            call(&service, signed("evt-down")).await;
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
        assert_nothing_secret(&logs, &[SECRET], &[&sign(&body, SECRET)], &body);
    }
}
