//! The local Data Connector of `examples/send_event/` (its engine, compiled in here)
//! against in-process axum receivers on 127.0.0.1:0: delivery of every event type,
//! DT-like retries, and `--tamper` mode, which must report a receiver that accepts
//! tampered requests.

#[path = "../../examples/send_event/connector.rs"]
#[allow(dead_code, unreachable_pub)]
mod connector;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use axum::Router;
use connector::{Config, Tamper};
use http::StatusCode;
use tower_dt_signature::events::{EventType, Payload};
use tower_dt_signature::{DtPayload, DtSignatureLayer};

const SECRET: &str = "local-secret";

/// Serves `app` on a free loopback port until the test ends; returns its URL.
async fn serve(app: Router) -> http::Uri {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/").parse().unwrap()
}

/// A verifying receiver that records every typed payload it gets.
async fn verifying_receiver() -> (http::Uri, Arc<Mutex<Vec<Payload>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = Router::new()
        .route(
            "/",
            post(move |DtPayload(payload): DtPayload| {
                let record = record.clone();
                async move {
                    record.lock().unwrap().push(payload);
                    StatusCode::OK
                }
            }),
        )
        .layer(
            DtSignatureLayer::new(SECRET)
                .require_sha256(true)
                .leeway(Duration::ZERO),
        );
    (serve(app).await, seen)
}

fn fast(url: http::Uri) -> Config {
    let mut config = Config::new(url, SECRET);
    config.backoff = Duration::from_millis(1);
    config.max_backoff = Duration::from_millis(4);
    config.timeout = Duration::from_secs(5);
    config
}

#[tokio::test]
async fn delivers_every_event_type_to_a_verifying_receiver() {
    let (url, seen) = verifying_receiver().await;
    let mut config = fast(url);
    config.count = 2;
    let report = connector::run(&config).await;
    assert_eq!(report.events, 38);
    assert_eq!((report.delivered, report.failed), (38, 0));
    assert_eq!(report.requests, 38);
    assert_eq!(report.statuses, BTreeMap::from([(200, 38)]));
    assert_eq!(report.latencies.len(), 38);
    assert!(report.percentile(50.0) <= report.percentile(99.0));
    assert!(report.ok(false));

    // The receiver decoded each one (DtPayload) and got every type twice, unique ids.
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 38);
    for event_type in EventType::ALL {
        let n = seen
            .iter()
            .filter(|p| p.event.event_type == event_type)
            .count();
        assert_eq!(n, 2, "{event_type}");
    }
    let ids: BTreeSet<_> = seen.iter().map(|p| p.event.event_id.clone()).collect();
    assert_eq!(ids.len(), 38);
}

#[tokio::test]
async fn tampered_requests_are_refused_and_never_reach_the_handler() {
    let (url, seen) = verifying_receiver().await;
    let mut config = fast(url);
    config.tamper = true;
    config.types = vec![EventType::Temperature, EventType::Contact];
    config.count = Tamper::ALL.len(); // every kind of tampering, on both types
    let report = connector::run(&config).await;
    assert_eq!(report.events, 12);
    assert_eq!(report.tamper_refused, 12, "{:?}", report.tamper_accepted);
    assert!(report.tamper_accepted.is_empty());
    assert_eq!(report.requests, 12, "tampered requests are not retried");
    assert_eq!(report.statuses, BTreeMap::from([(400, 12)]));
    assert!(report.ok(true));
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn tamper_mode_reports_a_receiver_that_accepts_everything() {
    // No DtSignatureLayer: every tampered request gets a 200.
    let app = Router::new().route("/", post(|_: Bytes| async { "ok" }));
    let mut config = fast(serve(app).await);
    config.tamper = true;
    config.types = vec![EventType::Touch];
    config.count = Tamper::ALL.len();
    let report = connector::run(&config).await;
    assert_eq!(report.tamper_accepted.len(), 6);
    assert_eq!(report.tamper_refused, 0);
    assert!(!report.ok(true));
    for tamper in Tamper::ALL {
        let name = format!("{tamper:?} (touch)");
        assert!(report.tamper_accepted.contains(&name), "{name}");
    }
}

#[tokio::test]
async fn retries_non_2xx_answers_with_the_same_bytes() {
    // Answers 503 to the first try of each body, 200 to the second.
    let tries: Arc<Mutex<BTreeMap<Bytes, usize>>> = Arc::default();
    let counted = tries.clone();
    let app = Router::new()
        .route(
            "/",
            post(move |body: Bytes| {
                let counted = counted.clone();
                async move {
                    let mut tries = counted.lock().unwrap();
                    let n = tries.entry(body).or_default();
                    *n += 1;
                    if *n == 1 {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        )
        .layer(DtSignatureLayer::new(SECRET));
    let mut config = fast(serve(app).await);
    config.types = vec![EventType::Touch, EventType::Co2, EventType::LabelsChanged];
    let report = connector::run(&config).await;
    assert_eq!((report.delivered, report.failed), (3, 0));
    assert_eq!(report.requests, 6);
    assert_eq!(report.statuses, BTreeMap::from([(200, 3), (503, 3)]));
    // Each body arrived exactly twice, signed (it passed the layer both times).
    let tries = tries.lock().unwrap();
    assert_eq!(tries.len(), 3);
    assert!(tries.values().all(|&n| n == 2));
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let app = Router::new().route("/", post(|| async { StatusCode::INTERNAL_SERVER_ERROR }));
    let mut config = fast(serve(app).await);
    config.types = vec![EventType::Motion, EventType::Pressure];
    config.max_attempts = 3;
    let report = connector::run(&config).await;
    assert_eq!((report.delivered, report.failed), (0, 2));
    assert_eq!(report.requests, 6);
    assert_eq!(report.statuses, BTreeMap::from([(500, 6)]));
    assert!(!report.ok(false));
}

#[tokio::test]
async fn a_receiver_that_is_not_there_is_an_error_not_a_hang() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut config = fast(format!("http://{addr}/").parse().unwrap());
    config.types = vec![EventType::Touch];
    config.max_attempts = 2;
    let report = connector::run(&config).await;
    assert_eq!((report.delivered, report.failed), (0, 1));
    assert_eq!((report.requests, report.transport_errors), (2, 2));
    assert!(report.statuses.is_empty());
    assert_eq!(report.percentile(50.0), None);

    // In tamper mode no answer is not a refusal: the run is not ok.
    config.tamper = true;
    let report = connector::run(&config).await;
    assert_eq!(
        (report.tamper_refused, report.tamper_accepted.len()),
        (0, 0)
    );
    assert!(!report.ok(true));
}

#[test]
fn type_arguments() {
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        connector::parse_types(&[]).unwrap(),
        EventType::ALL.to_vec()
    );
    assert_eq!(
        connector::parse_types(&names(&["all"])).unwrap(),
        EventType::ALL.to_vec()
    );
    assert_eq!(
        connector::parse_types(&names(&["co2", " touch", "co2", ""])).unwrap(),
        vec![EventType::Co2, EventType::Touch]
    );
    assert_eq!(
        connector::parse_types(&names(&["touch", "all"]))
            .unwrap()
            .len(),
        19
    );
    assert_eq!(
        connector::parse_types(&names(&["touch", "Touch"])),
        Err("Touch".to_owned())
    );
}

#[test]
fn config_debug_hides_the_secret() {
    let config = Config::new("http://127.0.0.1:1/".parse().unwrap(), "hunter2-secret");
    let shown = format!("{config:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("redacted"));
}
