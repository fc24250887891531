//! `NatsStore` against a real `nats-server -js` (Debian's, 2.9.10 on Debian 12), one per
//! test, on a loopback port with a temp store directory. Every assertion about what is
//! stored reads the stream or the bucket back from the server.

mod common;
#[path = "support/nats.rs"]
mod support;

use std::time::Duration;

use bytes::Bytes;
use common::{dt_events, event, send, signed, stack, SECRET};
use http::StatusCode;
use support::{kv_keys, kv_value, messages, NatsOptions, NatsServer};
use tower_dt_signature::testing::Signer;
use tower_dt_store::nats::{subject_token, HEADER_ALLOWANCE};
use tower_dt_store::{Backend, DtStore, NatsStore, StoreErrorKind, StoreOutcome};

const STREAM: &str = "DT_EVENTS";
const BUCKET: &str = "dt_latest";

/// Sends `body` as DT retries it, every 100 ms for 10 s at most, until it gets a 200.
async fn retry_until_ok<S>(service: &S, body: &Bytes)
where
    S: tower::Service<
            http::Request<http_body_util::Full<Bytes>>,
            Response = http::Response<http_body_util::Full<Bytes>>,
        > + Clone,
    S::Error: std::fmt::Debug,
{
    let mut answer = send(service, signed(body)).await;
    for _ in 0..100 {
        if answer.status == StatusCode::OK {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = send(service, signed(body)).await;
    }
    panic!("no 200 in 10 s: {} {}", answer.status, answer.text);
}

async fn store(server: &NatsServer) -> NatsStore {
    NatsStore::connect(server.url()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_is_one_message_with_its_exact_bytes_and_headers() {
    let server = NatsServer::start();
    let service = stack(DtStore::new(store(&server).await));
    let events = dt_events();
    assert_eq!(events.len(), 19, "DT's 19 event types");
    for (name, body) in &events {
        let answer = send(&service, signed(body)).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.text);
        assert_eq!(answer.outcome(), Some(StoreOutcome::Stored), "{name}");
    }
    let client = server.client().await;
    let stored = messages(&client, STREAM).await;
    assert_eq!(stored.len(), events.len());
    for (name, body) in &events {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        let event = &json["event"];
        let id = event["eventId"].as_str().unwrap();
        let event_type = event["eventType"].as_str().unwrap();
        let target = event["targetName"].as_str().unwrap();
        let device = target.rsplit('/').next().unwrap();
        let message = stored
            .iter()
            .find(|message| message.header("Dt-Event-Id") == Some(id))
            .unwrap_or_else(|| panic!("{name}: no message with its event id"));
        assert_eq!(&message.payload, body, "{name}: the exact bytes");
        // The subject, built here by the documented rule from DT's own fields.
        assert_eq!(
            message.subject,
            format!("dt.-.{event_type}.{device}.{id}"),
            "{name}"
        );
        let expect = [
            ("Dt-Tenant", "-"),
            ("Dt-Event-Key", id),
            ("Dt-Event-Type", event_type),
            ("Dt-Target-Name", target),
            ("Dt-Device", device),
            ("Dt-Event-Timestamp", event["timestamp"].as_str().unwrap()),
            ("Dt-Schemes", "hmac"),
            ("Nats-Expected-Last-Subject-Sequence", "0"),
            ("Nats-Expected-Stream", STREAM),
        ];
        for (header, value) in expect {
            assert_eq!(message.header(header), Some(value), "{name}: {header}");
        }
        let project = target.split('/').nth(1).unwrap();
        assert_eq!(message.header("Dt-Project"), Some(project), "{name}");
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body));
        assert_eq!(message.header("Dt-Body-Sha256"), Some(sha.as_str()));
        let timestamp = chrono::DateTime::parse_from_rfc3339(event["timestamp"].as_str().unwrap())
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
            .to_string();
        assert_eq!(
            message.header("Dt-Event-Timestamp-Ns"),
            Some(timestamp.as_str())
        );
        assert!(message.header("Dt-Asymmetric-Signature").is_none());
        // dt_latest holds it: each type's body names its own device.
        let key = format!("-.{event_type}.{device}");
        assert_eq!(
            kv_value(&client, BUCKET, &key).await.as_ref(),
            Some(body),
            "{name}: dt_latest"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_in_sequence_and_concurrent_leave_one_message() {
    let server = NatsServer::start();
    let service = stack(DtStore::new(store(&server).await));
    let body = event("dup-1", "d1", "touch", "2026-12-07T10:00:00Z");
    let first = send(&service, signed(&body)).await;
    assert_eq!(first.outcome(), Some(StoreOutcome::Stored));
    let again = send(&service, signed(&body)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.outcome(), Some(StoreOutcome::Duplicate));
    assert!(!again.report.unwrap().bytes_differ);

    // 32 copies of a new event at once.
    let body = event("dup-2", "d1", "touch", "2026-12-07T10:00:01Z");
    let answers =
        futures_util::future::join_all((0..32).map(|_| send(&service, signed(&body)))).await;
    let stored = answers
        .iter()
        .filter(|answer| answer.outcome() == Some(StoreOutcome::Stored))
        .count();
    assert!(answers.iter().all(|answer| answer.status == StatusCode::OK));
    assert_eq!(stored, 1, "{answers:?}");

    let client = server.client().await;
    let stored = messages(&client, STREAM).await;
    let ids: Vec<_> = stored
        .iter()
        .map(|message| message.header("Dt-Event-Id").unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["dup-1", "dup-2"]);
    assert_eq!(kv_value(&client, BUCKET, "-.touch.d1").await.unwrap(), body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_after_the_jetstream_window_is_still_one_message() {
    let server = NatsServer::start();
    let store = NatsStore::builder(server.url())
        .duplicate_window(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    let service = stack(DtStore::new(store));
    let body = event("late-1", "d1", "touch", "2026-12-07T10:00:00Z");
    assert_eq!(
        send(&service, signed(&body)).await.outcome(),
        Some(StoreOutcome::Stored)
    );
    // Past the window: JetStream no longer knows the message id.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let late = send(&service, signed(&body)).await;
    assert_eq!(late.status, StatusCode::OK, "{}", late.text);
    assert_eq!(late.outcome(), Some(StoreOutcome::Duplicate));
    // Other bytes for the same event: the first copy is kept, and it is said.
    let other = Bytes::from(format!("{} ", String::from_utf8_lossy(&body)));
    let differs = send(&service, signed(&other)).await;
    assert_eq!(differs.outcome(), Some(StoreOutcome::Duplicate));
    assert!(differs.report.unwrap().bytes_differ);

    let client = server.client().await;
    let stored = messages(&client, STREAM).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].payload, body);
    let js = async_nats::jetstream::new(client.clone());
    let info = js
        .get_stream(STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.config.duplicate_window, Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_events_keep_the_newest_in_dt_latest() {
    let server = NatsServer::start();
    let service = stack(DtStore::new(store(&server).await));
    let newer = event("e-3", "d1", "temperature", "2026-12-07T10:00:03Z");
    let older = event("e-1", "d1", "temperature", "2026-12-07T10:00:01Z");
    let middle = event("e-2", "d1", "temperature", "2026-12-07T10:00:02Z");
    // The same instant as `newer`, a smaller id: loses the tie.
    let tie_low = event("e-0", "d1", "temperature", "2026-12-07T10:00:03Z");
    // Another device, and another type of the same device: keys of their own.
    let other_device = event("f-1", "d2", "temperature", "2026-12-07T09:00:00Z");
    let other_type = event("g-1", "d1", "touch", "2026-12-07T09:00:00Z");
    let expected = [
        (&newer, StoreOutcome::Stored),
        (&older, StoreOutcome::StoredNotLatest),
        (&middle, StoreOutcome::StoredNotLatest),
        (&tie_low, StoreOutcome::StoredNotLatest),
        (&other_device, StoreOutcome::Stored),
        (&other_type, StoreOutcome::Stored),
    ];
    for (body, outcome) in expected {
        assert_eq!(send(&service, signed(body)).await.outcome(), Some(outcome));
    }
    // The same instant, a greater id: wins the tie.
    let tie_high = event("e-9", "d1", "temperature", "2026-12-07T10:00:03Z");
    assert_eq!(
        send(&service, signed(&tie_high)).await.outcome(),
        Some(StoreOutcome::Stored)
    );
    let client = server.client().await;
    assert_eq!(messages(&client, STREAM).await.len(), 7, "every event kept");
    assert_eq!(
        kv_keys(&client, BUCKET).await,
        ["-.temperature.d1", "-.temperature.d2", "-.touch.d1"]
    );
    assert_eq!(
        kv_value(&client, BUCKET, "-.temperature.d1").await.unwrap(),
        tie_high
    );
    assert_eq!(
        kv_value(&client, BUCKET, "-.temperature.d2").await.unwrap(),
        other_device
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_events_of_one_device_leave_the_newest_whatever_the_order() {
    let server = NatsServer::start();
    // Two stores, as two replicas: compare-and-set across them.
    let one = stack(DtStore::new(store(&server).await));
    let two = stack(DtStore::new(store(&server).await));
    let bodies: Vec<Bytes> = (0..40)
        .map(|n| {
            event(
                &format!("c-{n:02}"),
                "d1",
                "touch",
                &format!("2026-12-07T10:00:{:02}Z", (n * 7) % 40),
            )
        })
        .collect();
    let sends = bodies.iter().enumerate().map(|(n, body)| {
        let service = if n % 2 == 0 { one.clone() } else { two.clone() };
        async move { send(&service, signed(body)).await }
    });
    let answers = futures_util::future::join_all(sends).await;
    assert!(answers.iter().all(|answer| answer.status == StatusCode::OK));
    // The newest: second 39, which is n with n*7 % 40 == 39, i.e. n = 17.
    let client = server.client().await;
    assert_eq!(
        kv_value(&client, BUCKET, "-.touch.d1").await.unwrap(),
        bodies[17]
    );
    assert_eq!(messages(&client, STREAM).await.len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_sending_duplicates_at_once_leave_one_message() {
    let server = NatsServer::start();
    let one = stack(DtStore::new(store(&server).await));
    let two = stack(DtStore::new(store(&server).await));
    let bodies: Vec<Bytes> = (0..20)
        .map(|n| event(&format!("r-{n}"), "d1", "touch", "2026-12-07T10:00:00Z"))
        .collect();
    let sends = bodies.iter().flat_map(|body| {
        [one.clone(), two.clone(), one.clone(), two.clone()]
            .into_iter()
            .map(move |service| async move { send(&service, signed(body)).await })
    });
    let answers = futures_util::future::join_all(sends).await;
    assert!(answers.iter().all(|answer| answer.status == StatusCode::OK));
    let firsts = answers
        .iter()
        .filter(|answer| {
            matches!(
                answer.outcome(),
                Some(StoreOutcome::Stored | StoreOutcome::StoredNotLatest)
            )
        })
        .count();
    assert_eq!(firsts, 20, "one first copy per event");
    let client = server.client().await;
    let stored = messages(&client, STREAM).await;
    let mut ids: Vec<_> = stored
        .iter()
        .map(|message| message.header("Dt-Event-Id").unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected: Vec<_> = (0..20).map(|n| format!("r-{n}")).collect();
    expected.sort();
    assert_eq!(ids, expected, "each event once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stopped_answers_503_and_restarted_keeps_every_event_once() {
    let mut server = NatsServer::start();
    let store = NatsStore::builder(server.url())
        .ack_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    let service = stack(DtStore::new(store.clone()).deadline(Duration::from_secs(2)));
    let before = event("s-1", "d1", "touch", "2026-12-07T10:00:00Z");
    assert_eq!(send(&service, signed(&before)).await.status, StatusCode::OK);

    server.stop();
    let during = event("s-2", "d1", "touch", "2026-12-07T10:00:01Z");
    let answer = send(&service, signed(&during)).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.text
    );
    let not_ready = store.ready().await.unwrap_err();
    assert_eq!(not_ready.kind(), StoreErrorKind::Unavailable, "{not_ready}");
    assert!(
        not_ready.message().contains(&server.port().to_string()),
        "names the server: {not_ready}"
    );

    server.start_again();
    // The client reconnects on its own; DT's retries then get through.
    retry_until_ok(&service, &during).await;
    store.ready().await.unwrap();
    // A copy of the event from before the restart is still known.
    let again = send(&service, signed(&before)).await;
    assert_eq!(again.outcome(), Some(StoreOutcome::Duplicate));

    let client = server.client().await;
    let stored = messages(&client, STREAM).await;
    let ids: Vec<_> = stored
        .iter()
        .map(|message| message.header("Dt-Event-Id").unwrap().to_owned())
        .collect();
    // The 503'd publish may have reached the server before it stopped: never twice.
    assert_eq!(ids, ["s-1", "s-2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_started_before_the_server_connects_when_it_comes() {
    let mut server = NatsServer::start();
    server.stop();
    let store = NatsStore::builder(server.url())
        .ack_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(300))
        .connect()
        .await
        .expect("an unreachable server is not a configuration error");
    assert_eq!(
        store.ready().await.unwrap_err().kind(),
        StoreErrorKind::Unavailable
    );
    server.start_again();
    let service = stack(DtStore::new(store.clone()));
    let body = event("late-server", "d1", "touch", "2026-12-07T10:00:00Z");
    retry_until_ok(&service, &body).await;
    let client = server.client().await;
    assert_eq!(messages(&client, STREAM).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_stream_answers_503_and_ready_says_so() {
    let server = NatsServer::start();
    let store = NatsStore::builder(server.url())
        .max_bytes(64 * 1024)
        .max_body_size(16 * 1024)
        .connect()
        .await
        .unwrap();
    let service = stack(DtStore::new(store.clone()));
    let mut refused = None;
    for n in 0..200 {
        let body = event(&format!("full-{n}"), "d1", "touch", "2026-12-07T10:00:00Z");
        let answer = send(&service, signed(&body)).await;
        if answer.status != StatusCode::OK {
            refused = Some((n, answer));
            break;
        }
    }
    let (n, answer) = refused.expect("the stream fills");
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.text
    );
    let full = store.ready().await.unwrap_err();
    assert_eq!(full.kind(), StoreErrorKind::Full, "{full}");
    assert!(full.message().contains("full"), "{full}");
    // Discard new: every event answered 200 is still there, the refused one is not.
    let client = server.client().await;
    let stored = messages(&client, STREAM).await;
    assert_eq!(stored.len(), n);
    assert_eq!(stored[0].header("Dt-Event-Id"), Some("full-0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_breaks_a_guarantee_is_refused_and_other_differences_are_used() {
    use async_nats::jetstream::stream;
    let server = NatsServer::start();
    let js = async_nats::jetstream::new(server.client().await);
    js.create_stream(stream::Config {
        name: "OLD".into(),
        subjects: vec!["dt.>".into()],
        discard: stream::DiscardPolicy::Old,
        max_age: Duration::from_secs(3600),
        ..Default::default()
    })
    .await
    .unwrap();
    let error = NatsStore::builder(server.url())
        .stream("OLD")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Config);
    for named in ["discard is old", "max_age"] {
        assert!(error.message().contains(named), "{named}: {error}");
    }

    // Only different (memory storage, a size limit): used as it is.
    js.create_stream(stream::Config {
        name: "MINE".into(),
        subjects: vec!["mine.>".into()],
        discard: stream::DiscardPolicy::New,
        storage: stream::StorageType::Memory,
        max_bytes: 10 << 20,
        ..Default::default()
    })
    .await
    .unwrap();
    let store = NatsStore::builder(server.url())
        .stream("MINE")
        .subject_prefix("mine")
        .latest_bucket("mine_latest")
        .connect()
        .await
        .unwrap();
    let service = stack(DtStore::new(store));
    let body = event("m-1", "d1", "touch", "2026-12-07T10:00:00Z");
    assert_eq!(send(&service, signed(&body)).await.status, StatusCode::OK);
    let client = server.client().await;
    let stored = messages(&client, "MINE").await;
    assert_eq!(stored[0].subject, "mine.-.touch.d1.m-1");
    let info = js
        .get_stream("MINE")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(
        info.config.storage,
        stream::StorageType::Memory,
        "not changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_created_stream_has_the_documented_settings() {
    use async_nats::jetstream::stream;
    let server = NatsServer::start();
    let _store = store(&server).await;
    let js = async_nats::jetstream::new(server.client().await);
    let info = js
        .get_stream(STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    let config = info.config;
    assert_eq!(config.subjects, ["dt.>"]);
    assert_eq!(config.retention, stream::RetentionPolicy::Limits);
    assert_eq!(config.discard, stream::DiscardPolicy::New);
    assert_eq!(config.storage, stream::StorageType::File);
    assert_eq!(config.num_replicas, 1);
    assert_eq!(config.max_age, Duration::from_secs(24 * 3600));
    assert_eq!(config.duplicate_window, Duration::from_secs(120));
    let bucket = js.get_key_value(BUCKET).await.unwrap();
    let status = bucket.status().await.unwrap();
    assert_eq!(status.history(), 1);
    // Under 13 h is refused before anything is created.
    let error = NatsStore::builder(server.url())
        .stream("SHORT")
        .max_age(Duration::from_secs(12 * 3600))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Config);
    assert!(js.get_stream("SHORT").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_limit_must_fit_the_servers_max_payload() {
    let server = NatsServer::start_with(NatsOptions {
        max_payload: Some(64 * 1024),
        ..Default::default()
    });
    let error = NatsStore::builder(server.url())
        .max_body_size(1024 * 1024)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Config);
    assert!(error.message().contains("max_payload"), "{error}");
    let store = store(&server).await;
    assert_eq!(store.max_body_size(), Some(64 * 1024 - HEADER_ALLOWANCE));
    // The largest body it takes is stored whole.
    let service = tower::Layer::layer(
        &tower_dt_signature::DtSignatureLayer::new(SECRET)
            .max_body_size(64 * 1024 - HEADER_ALLOWANCE),
        DtStore::new(store),
    );
    let padding = "x".repeat(64 * 1024 - HEADER_ALLOWANCE - 400);
    let body = Bytes::from(format!(
        r#"{{"event":{{"eventId":"big","targetName":"projects/p/devices/d","eventType":"touch","timestamp":"2026-12-07T10:00:00Z"}},"pad":"{padding}"}}"#
    ));
    assert!(body.len() <= 64 * 1024 - HEADER_ALLOWANCE);
    assert_eq!(send(&service, signed(&body)).await.status, StatusCode::OK);
    let client = server.client().await;
    assert_eq!(messages(&client, STREAM).await[0].payload, body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_and_password_in_the_url_and_refused_credentials() {
    let server = NatsServer::start_with(NatsOptions {
        auth: true,
        ..Default::default()
    });
    let store = store(&server).await;
    let service = stack(DtStore::new(store.clone()));
    let body = event("auth-1", "d1", "touch", "2026-12-07T10:00:00Z");
    assert_eq!(send(&service, signed(&body)).await.status, StatusCode::OK);
    assert!(!format!("{store:?} {}", store.describe()).contains(support::PASSWORD));
    let wrong = format!(
        "nats://{}:wrong-password@127.0.0.1:{}",
        support::USER,
        server.port()
    );
    let error = NatsStore::connect(wrong).await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Config, "{error}");
    assert!(!error.to_string().contains("wrong-password"), "{error}");
    let client = server.client().await;
    assert_eq!(messages(&client, STREAM).await[0].payload, body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_an_event_and_odd_tenants_and_devices() {
    use tower_dt_signature::gateway::StaticSecrets;
    use tower_dt_signature::{DtSignatureLayer, Verifier};
    let server = NatsServer::start();
    // A gateway whose tenant id has every character a subject cannot hold.
    let tenant = "acme corp.eu*>";
    let secrets = StaticSecrets::by_key(|parts| {
        parts
            .headers
            .get("x-tenant")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    })
    .tenant(tenant, Verifier::new(SECRET));
    let service = tower::Layer::layer(
        &DtSignatureLayer::gateway(secrets),
        DtStore::new(store(&server).await),
    );
    let request = |body: &Bytes| {
        http::Request::post("/")
            .header("x-tenant", tenant)
            .header("x-dt-signature", Signer::new(SECRET).sign(body))
            .body(http_body_util::Full::new(body.clone()))
            .unwrap()
    };
    let not_event = Bytes::from_static(b"{\"not\":\"an event\"}");
    let odd_device = Bytes::from(
        r#"{"event":{"eventId":"odd.1","targetName":"projects/p/devices/a.b c","eventType":"touch","timestamp":"2026-12-07T10:00:00Z"}}"#,
    );
    let first = send(&service, request(&not_event)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.outcome(), Some(StoreOutcome::NotAnEvent));
    assert_eq!(
        send(&service, request(&not_event)).await.outcome(),
        Some(StoreOutcome::Duplicate)
    );
    assert_eq!(
        send(&service, request(&odd_device)).await.outcome(),
        Some(StoreOutcome::Stored)
    );
    let client = server.client().await;
    let stored = messages(&client, STREAM).await;
    assert_eq!(stored.len(), 2);
    let tenant_token = "acme=20corp=2Eeu=2A=3E";
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&not_event));
    assert_eq!(
        stored[0].subject,
        format!("dt.{tenant_token}._._.sha256=3A{sha}")
    );
    assert_eq!(stored[0].payload, not_event);
    assert_eq!(stored[0].header("Dt-Tenant"), Some(tenant));
    assert_eq!(
        stored[1].subject,
        format!("dt.{tenant_token}.touch.a=2Eb=20c.odd=2E1")
    );
    assert_eq!(stored[1].header("Dt-Device"), Some("a.b c"));
    assert_eq!(subject_token(tenant), tenant_token);
    let fields = format!("{tenant_token}.touch.a=2Eb=20c");
    assert_eq!(
        kv_value(&client, BUCKET, &fields).await.unwrap(),
        odd_device
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_ca_file_and_a_plain_url_to_a_tls_server() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "dt-store test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let (ca_pem, cert_pem, key_pem) = (
        dir.path().join("ca.pem"),
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
    );
    std::fs::write(&ca_pem, ca.pem()).unwrap();
    std::fs::write(&cert_pem, leaf.pem()).unwrap();
    std::fs::write(&key_pem, key.serialize_pem()).unwrap();
    let server = NatsServer::start_with(NatsOptions {
        extra_config: format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n}}\n",
            cert_pem.display(),
            key_pem.display()
        ),
        ..Default::default()
    });
    let url = format!("tls://127.0.0.1:{}?ca={}", server.port(), ca_pem.display());
    let store = NatsStore::connect(url).await.unwrap();
    store.ready().await.unwrap();
    let service = stack(DtStore::new(store));
    let body = event("tls-1", "d1", "touch", "2026-12-07T10:00:00Z");
    assert_eq!(send(&service, signed(&body)).await.status, StatusCode::OK);
    // The platform's roots do not know this CA: refused, as bad configuration.
    let untrusted = NatsStore::connect(format!("tls://127.0.0.1:{}", server.port()))
        .await
        .unwrap_err();
    assert_eq!(untrusted.kind(), StoreErrorKind::Config, "{untrusted}");
    // A client of our own to read back: TLS with the CA.
    // (Its own TLS configuration with a provider named: async-nats would otherwise call
    // `ClientConfig::builder()`, which panics in an --all-features build, two providers.)
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca.der().to_vec()))
        .unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let client = async_nats::ConnectOptions::new()
        .require_tls(true)
        .tls_client_config(tls)
        .connect(format!("tls://127.0.0.1:{}", server.port()))
        .await
        .unwrap();
    assert_eq!(messages(&client, STREAM).await[0].payload, body);
}

/// The crate docs' consumer, against the real server: every event once, acknowledged,
/// and a second run of the same durable consumer gets nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_pull_consumer_reads_each_event_once_and_acknowledges() {
    use async_nats::jetstream::{self, consumer::pull};
    use futures_util::StreamExt;
    let server = NatsServer::start();
    let service = stack(DtStore::new(store(&server).await));
    let mut sent = Vec::new();
    for n in 0..10 {
        let event_type = if n % 2 == 0 { "temperature" } else { "touch" };
        let body = event(&format!("k-{n}"), "d1", event_type, "2026-12-07T10:00:00Z");
        assert_eq!(send(&service, signed(&body)).await.status, StatusCode::OK);
        // and a copy of each: never a second message
        send(&service, signed(&body)).await;
        if event_type == "temperature" {
            sent.push(body);
        }
    }
    let client = server.client().await;
    let stream = jetstream::new(client).get_stream(STREAM).await.unwrap();
    let config = pull::Config {
        durable_name: Some("temperature-processor".into()),
        filter_subject: "dt.*.temperature.>".into(),
        ack_wait: Duration::from_secs(60),
        ..Default::default()
    };
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer("temperature-processor", config.clone())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut got = Vec::new();
    while got.len() < sent.len() {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("a message within 10 s")
            .unwrap()
            .unwrap();
        got.push(message.payload.clone());
        message.double_ack().await.unwrap();
    }
    assert_eq!(got, sent, "each temperature event once, in order");
    drop(messages);
    let mut consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer("temperature-processor", config)
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(info.num_pending, 0, "nothing left");
    assert_eq!(info.num_ack_pending, 0, "everything acknowledged");
}

/// The README's consumer is the module docs' one, which `cargo test` compiles.
#[test]
fn the_readmes_consumer_is_the_compiled_one() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("../README.md")).unwrap();
    let docs = std::fs::read_to_string(root.join("src/nats.rs")).unwrap();
    let start = "use async_nats::jetstream::{self, consumer::pull};";
    let readme_block: Vec<&str> = readme
        .lines()
        .skip_while(|line| *line != start)
        .take_while(|line| *line != "```")
        .collect();
    let docs_block: Vec<&str> = docs
        .lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .map(|line| line.strip_prefix(' ').unwrap_or(line))
        .skip_while(|line| *line != start)
        .take_while(|line| *line != "```")
        .filter(|line| {
            !line.starts_with("# ") && !line.starts_with("use std::time") && !line.is_empty()
        })
        .collect();
    let readme_block: Vec<&str> = readme_block
        .into_iter()
        .filter(|line| !line.is_empty())
        .collect();
    assert!(readme_block.len() > 20, "the README has the consumer");
    assert_eq!(readme_block, docs_block);
}

/// Each store remembers the `dt_latest` revision it last wrote; another replica's newer
/// write in between must still win.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicas_stale_memory_of_dt_latest_never_overwrites_a_newer_event() {
    let server = NatsServer::start();
    let one = stack(DtStore::new(store(&server).await));
    let two = stack(DtStore::new(store(&server).await));
    let at =
        |id: &str, second: u32| event(id, "d1", "touch", &format!("2026-12-07T10:00:{second:02}Z"));
    let outcome = |answer: common::Answer| answer.outcome();
    assert_eq!(
        outcome(send(&one, signed(&at("a", 10))).await),
        Some(StoreOutcome::Stored)
    );
    assert_eq!(
        outcome(send(&two, signed(&at("b", 12))).await),
        Some(StoreOutcome::Stored)
    );
    // `one` last saw second 10: second 11 looks newer to it, the server says no.
    assert_eq!(
        outcome(send(&one, signed(&at("c", 11))).await),
        Some(StoreOutcome::StoredNotLatest)
    );
    // and it learnt the server's value: second 13 goes through on one update.
    assert_eq!(
        outcome(send(&one, signed(&at("d", 13))).await),
        Some(StoreOutcome::Stored)
    );
    // `two` still remembers second 12: 12.5 must not overwrite 13.
    let half = event("e", "d1", "touch", "2026-12-07T10:00:12.5Z");
    assert_eq!(
        outcome(send(&two, signed(&half)).await),
        Some(StoreOutcome::StoredNotLatest)
    );
    let client = server.client().await;
    assert_eq!(
        kv_value(&client, BUCKET, "-.touch.d1").await.unwrap(),
        at("d", 13)
    );
    assert_eq!(messages(&client, STREAM).await.len(), 5);
}
