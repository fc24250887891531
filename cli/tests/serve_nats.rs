//! `dt-signature serve` on a real NATS JetStream (a throwaway `nats-server -js` per test,
//! started by the test on a loopback port: `store/tests/support/nats.rs`): the stream read
//! back holds each event once with its exact bytes, a user and password that never reach
//! the log, the server going away and coming back, two replicas sent the same events at
//! once, and the body limit following the server's `max_payload`.

mod support;

#[path = "../../store/tests/support/nats.rs"]
mod nats_support;

use std::time::{Duration, Instant};

use nats_support::{messages, NatsOptions, NatsServer, Stored, PASSWORD, USER};
use support::bin;
use support::serve::*;
use tower_dt_store::nats::HEADER_ALLOWANCE;

const STREAM: &str = "DT_EVENTS";

/// Every message of the stream, read back by a client of the test's own.
fn stored(server: &NatsServer) -> Vec<Stored> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async { messages(&server.client().await, STREAM).await })
}

/// (event id, body) of every message, in stream order.
fn events_in(server: &NatsServer) -> Vec<(String, Vec<u8>)> {
    stored(server)
        .into_iter()
        .map(|message| {
            let id = message.header("Dt-Event-Id").unwrap_or("-").to_owned();
            (id, message.payload.to_vec())
        })
        .collect()
}

/// Calls `check` every 100 ms until it is `Ok`; fails after 30 s with its last `Err`.
fn eventually<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let started = Instant::now();
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if started.elapsed() > Duration::from_secs(30) => {
                panic!("{what}: still {last} after 30 s")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// `/ready`'s answer once its status is (`true`) or is not (`false`) 200.
fn ready_when(serve: &Serve, ok: bool) -> (u16, String) {
    eventually("/ready", || match get(serve.addr, "/ready") {
        (status, text) if (status == 200) == ok => Ok((status, text)),
        (status, text) => Err(format!("{status} {text}")),
    })
}

/// `dt-signature serve` with `args` on `store`, which must refuse to start with exit 2
/// (bad configuration): what it said on stderr.
fn refused_start(store: &str, args: &[&str]) -> String {
    let args = [&["serve", "--host", "127.0.0.1"], args].concat();
    let env = [
        ("DT_SIGNATURE_SECRET", SECRET),
        ("PORT", "0"),
        ("DT_STORE", store),
    ];
    let output = bin::run_with(&args, &env);
    let (code, shown) = bin::status(&output);
    assert_eq!(code, 2, "{shown}");
    bin::stderr(&output)
}

/// A DT event whose body is exactly `size` bytes (padded with an extra field).
fn event_of_size(id: &str, size: usize) -> Vec<u8> {
    let mut body = event(id, "dev1", "2024-05-01T10:00:00Z");
    body.pop(); // the closing brace
    let padding = size - body.len() - r#","pad":""}"#.len();
    body.extend_from_slice(format!(r#","pad":"{}"}}"#, "x".repeat(padding)).as_bytes());
    assert_eq!(body.len(), size);
    body
}

#[test]
fn serve_on_nats_with_a_password_stores_the_exact_bytes_once_and_never_logs_the_password() {
    let server = NatsServer::start_with(NatsOptions {
        auth: true,
        ..Default::default()
    });
    let url = server.url();
    assert!(url.contains(PASSWORD), "the test's URL holds the password");
    let mut serve = Serve::start(&url, &[]);

    let (status, text) = get(serve.addr, "/ready");
    assert_eq!(status, 200, "{text}");
    let place = format!("nats://127.0.0.1:{} stream {STREAM}", server.port());
    assert!(text.contains(&place), "/ready names the stream: {text}");

    let first = event("evt-1", "dev1", "2024-05-01T10:00:00Z");
    let second = event("evt-2", "dev2", "2024-05-01T10:00:01Z");
    assert_eq!(post(serve.addr, &first, SECRET), (200, "stored".into()));
    assert_eq!(post(serve.addr, &first, SECRET), (200, "duplicate".into()));
    assert_eq!(post(serve.addr, &second, SECRET), (200, "stored".into()));
    let refused = event("evt-refused", "dev1", "2024-05-01T10:00:02Z");
    assert_eq!(post(serve.addr, &refused, "another-secret").0, 400);

    let messages = stored(&server);
    let subjects: Vec<&str> = messages.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(
        subjects,
        ["dt.-.temperature.dev1.evt-1", "dt.-.temperature.dev2.evt-2"],
        "one message per event, the refused one absent"
    );
    assert_eq!(
        events_in(&server),
        [("evt-1".into(), first), ("evt-2".into(), second)],
        "the exact bytes DT sent"
    );

    // `events` cannot list a queue: it says so, names the way to read it, and shows no
    // password.
    let output = bin::run_with(&["events", "--store", &url], &[]);
    let (code, shown) = bin::status(&output);
    assert_eq!(code, 2, "{shown}");
    let said = bin::stderr(&output);
    let redacted = format!("nats://{USER}:<redacted>@127.0.0.1:{}", server.port());
    for part in [&redacted, "is a queue", "cannot be listed", "consumer"] {
        assert!(said.contains(part), "no {part:?} in {said}");
    }
    assert!(!said.contains(PASSWORD), "{said}");

    let mut stderr = serve.child.stderr.take().unwrap();
    let (code, log) = serve.terminate();
    assert_eq!(code, 0, "{log}");
    let mut errors = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut errors).unwrap();
    assert!(log.contains(&place), "{log}");
    assert!(
        !log.contains(PASSWORD) && !errors.contains(PASSWORD),
        "the password in serve's output:\n{log}{errors}"
    );
}

#[test]
fn refused_nats_credentials_are_bad_configuration_exit_2_without_the_password() {
    let server = NatsServer::start_with(NatsOptions {
        auth: true,
        ..Default::default()
    });
    let wrong = format!("nats://{USER}:not-the-password@127.0.0.1:{}", server.port());
    let said = refused_start(&wrong, &[]);
    let redacted = format!(
        "DT_STORE=nats://{USER}:<redacted>@127.0.0.1:{}",
        server.port()
    );
    assert!(said.contains(&redacted), "{said}");
    assert!(!said.contains("not-the-password"), "{said}");
}

#[test]
fn nats_stopped_is_503_and_ready_names_the_server_then_restarted_pushes_are_stored() {
    let mut server = NatsServer::start();
    let serve = Serve::start(&server.url(), &[]);
    ready_when(&serve, true);
    let before = event("evt-before", "dev1", "2024-05-01T10:00:00Z");
    assert_eq!(post(serve.addr, &before, SECRET), (200, "stored".into()));

    server.stop();
    let during = event("evt-during", "dev1", "2024-05-01T10:00:01Z");
    let (status, text) = post(serve.addr, &during, SECRET);
    assert_eq!(status, 503, "{text}");
    let (status, reason) = ready_when(&serve, false);
    assert_eq!(status, 503, "{reason}");
    assert!(reason.contains("not ready"), "{reason}");
    assert!(
        reason.contains(&format!("nats://127.0.0.1:{}", server.port())),
        "/ready names the server: {reason}"
    );

    server.start_again();
    // DT retries until a 2xx: `stored`, or `duplicate` when the publish that got the 503
    // reached the server after all. Either way one message.
    let answer = eventually("a push after the restart", || {
        match post(serve.addr, &during, SECRET) {
            (200, text) => Ok(text),
            (status, text) => Err(format!("{status} {text}")),
        }
    });
    assert!(answer == "stored" || answer == "duplicate", "{answer}");
    let after = event("evt-after", "dev1", "2024-05-01T10:00:02Z");
    assert_eq!(post(serve.addr, &after, SECRET), (200, "stored".into()));
    assert_eq!(post(serve.addr, &before, SECRET), (200, "duplicate".into()));
    ready_when(&serve, true);
    assert_eq!(
        events_in(&server),
        [
            ("evt-before".into(), before),
            ("evt-during".into(), during),
            ("evt-after".into(), after)
        ]
    );
}

#[test]
fn two_replicas_sent_the_same_events_at_once_leave_each_event_once() {
    let server = NatsServer::start();
    let url = server.url();
    // Started at once on a fresh server: both create the stream.
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| Serve::start(&url, &[]));
        let b = scope.spawn(|| Serve::start(&url, &[]));
        (a.join().unwrap(), b.join().unwrap())
    });
    ready_when(&a, true);
    ready_when(&b, true);

    let bodies: Vec<Vec<u8>> = (0..20)
        .map(|n| event(&format!("evt-{n:02}"), "dev1", "2024-05-01T10:00:00Z"))
        .collect();
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let sends: Vec<_> = bodies
            .iter()
            .flat_map(|body| [a.addr, b.addr, a.addr, b.addr].map(|addr| (addr, body)))
            .map(|(addr, body)| scope.spawn(move || post(addr, body, SECRET)))
            .collect();
        sends.into_iter().map(|send| send.join().unwrap()).collect()
    });
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let firsts = answers.iter().filter(|(_, text)| text == "stored").count();
    assert_eq!(firsts, 20, "one first copy per event: {answers:?}");

    let mut found = events_in(&server);
    found.sort();
    let expected: Vec<(String, Vec<u8>)> = bodies
        .iter()
        .enumerate()
        .map(|(n, body)| (format!("evt-{n:02}"), body.clone()))
        .collect();
    assert_eq!(found, expected, "each event once, its exact bytes");
}

#[test]
fn the_body_limit_follows_the_servers_max_payload_and_a_limit_that_does_not_fit_exits_2() {
    let max_payload = 64 * 1024;
    let server = NatsServer::start_with(NatsOptions {
        max_payload: Some(max_payload),
        ..Default::default()
    });
    let limit = max_payload - HEADER_ALLOWANCE;
    let serve = Serve::start(&server.url(), &[]);

    let largest = event_of_size("evt-largest", limit);
    assert_eq!(post(serve.addr, &largest, SECRET), (200, "stored".into()));
    let over = event_of_size("evt-over", limit + 1);
    assert_eq!(post(serve.addr, &over, SECRET).0, 413);
    assert_eq!(events_in(&server), [("evt-largest".into(), largest)]);
    let log = serve.log();
    assert!(
        log.contains("the body limit follows the store")
            && log.contains(&format!("bodies up to {limit} bytes")),
        "said at info: {log}"
    );

    let explicit = (1024 * 1024).to_string();
    let said = refused_start(&server.url(), &["--max-body-size", &explicit]);
    for part in [
        format!("DT_STORE=nats://127.0.0.1:{}", server.port()),
        format!("max_body_size {explicit} bytes"),
        format!("max_payload ({max_payload} bytes)"),
        format!("lower the body limit to {limit}"),
    ] {
        assert!(said.contains(&part), "no {part:?} in {said}");
    }
}
