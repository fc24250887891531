//! What the duplicate guard adds to a request, in memory and on Redis over loopback.
//!
//! `cargo bench --bench dedup` (memory only) or `cargo bench --features redis --bench
//! dedup` (memory and Redis; starts its own `redis-server` on a free loopback port and
//! kills it at the end) sends a real-sized signed DT event through:
//!
//! - `baseline`: `DtSignatureLayer` and a handler that answers at once;
//! - `memory/new` and `redis/new`: the same with `DedupLayer` inside, a new event id per
//!   request (reserve, forward, commit: two round trips on Redis);
//! - `memory/duplicate` and `redis/duplicate`: a done event sent again (absorbed without
//!   forwarding: one round trip on Redis).
//!
//! `store/memory_new` and `store/memory_duplicate` time the memory store's part alone,
//! `parse/event_id` the reading of `event.eventId` from the 518-byte body.
//! Each request is signed in criterion's untimed setup. The guard's cost is the
//! difference to `baseline`; it is printed at the end from criterion's medians.

use std::convert::Infallible;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt};
use tower_dt_signature::dedup::{DedupLayer, DedupStore, MemoryStore, Reserve};
use tower_dt_signature::testing::Signer;
use tower_dt_signature::{DtBody, DtSignatureLayer};

const SECRET: &str = "test-secret";
/// A real DT temperature event body (518 bytes); its eventId is replaced per request.
const EVENT: &str = include_str!("../tests/data/dt-events/temperature.json");

fn event(id: &str) -> Bytes {
    let json: serde_json::Value = serde_json::from_str(EVENT).unwrap();
    let old = json["event"]["eventId"].as_str().unwrap();
    assert_eq!(old.len(), 20);
    assert_eq!(id.len(), 20, "same size as DT's ids");
    Bytes::from(EVENT.replace(old, id))
}

fn signed(id: &str) -> Request<Full<Bytes>> {
    Signer::new(SECRET).request("/", event(id)).unwrap()
}

/// A fresh 20-character event id per call.
fn fresh_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("bench{:015}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn handler() -> impl Service<
    Request<DtBody>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(|_request: Request<DtBody>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    })
}

fn run<S>(c: &mut Criterion, runtime: &Runtime, name: &str, service: S, duplicate: bool)
where
    S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>> + Clone,
    S::Error: std::fmt::Debug,
{
    let done = fresh_id();
    if duplicate {
        let response = runtime.block_on(service.clone().oneshot(signed(&done)));
        assert_eq!(response.unwrap().status(), StatusCode::OK);
    }
    c.bench_function(name, |b| {
        b.iter_batched(
            || {
                let id = if duplicate { done.clone() } else { fresh_id() };
                (service.clone(), signed(&id))
            },
            |(service, request)| {
                let response = runtime.block_on(service.oneshot(request)).unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                assert_eq!(response.headers().contains_key("x-dt-duplicate"), duplicate);
                black_box(response)
            },
            BatchSize::SmallInput,
        )
    });
}

fn guarded<St: DedupStore>(
    c: &mut Criterion,
    runtime: &Runtime,
    prefix: &str,
    guard: DedupLayer<St>,
) {
    let service = DtSignatureLayer::new(SECRET).layer(guard.layer(handler()));
    run(c, runtime, &format!("{prefix}/new"), service.clone(), false);
    run(c, runtime, &format!("{prefix}/duplicate"), service, true);
}

/// The memory store alone: reserve a new key, then commit it (what `memory/new` asks of
/// it), and reserve a done key (what `memory/duplicate` asks).
fn memory_store(c: &mut Criterion) {
    let store = MemoryStore::default();
    let (ttl, done_ttl) = (Duration::from_secs(30), Duration::from_secs(600));
    c.bench_function("store/memory_new", |b| {
        b.iter_batched(
            fresh_id,
            |id| {
                let Ok(Reserve::Reserved(token)) = store.reserve(&id, ttl).into_inner() else {
                    panic!("a new key is reserved");
                };
                store.commit(&id, token, done_ttl).into_inner().unwrap();
            },
            BatchSize::SmallInput,
        )
    });
    let done = fresh_id();
    let Ok(Reserve::Reserved(token)) = store.reserve(&done, ttl).into_inner() else {
        panic!("a new key is reserved");
    };
    store.commit(&done, token, done_ttl).into_inner().unwrap();
    c.bench_function("store/memory_duplicate", |b| {
        b.iter(|| {
            let found = store.reserve(black_box(&done), ttl).into_inner();
            assert_eq!(found.unwrap(), Reserve::Done);
        })
    });
}

/// A copy of the guard's reader (`src/dedup/event_id.rs`): `event.eventId`, the rest
/// skipped.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    event: EventRef<'a>,
}

#[derive(serde::Deserialize)]
struct EventRef<'a> {
    #[serde(rename = "eventId", borrow)]
    event_id: std::borrow::Cow<'a, str>,
}

fn parse(c: &mut Criterion) {
    let body = event(&fresh_id());
    c.bench_function("parse/event_id", |b| {
        b.iter(|| {
            let envelope: Envelope<'_> = serde_json::from_slice(black_box(&body)).unwrap();
            assert_eq!(envelope.event.event_id.len(), 20);
        })
    });
}

fn median_ns(name: &str) -> Option<f64> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/criterion")
        .join(name.replace('/', "_"))
        .join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    let baseline = DtSignatureLayer::new(SECRET).layer(handler());
    run(&mut criterion, &runtime, "baseline", baseline, false);
    // Done keys for 10 minutes: a run's worth, so the store does not just fill up.
    let ttl = Duration::from_secs(600);
    guarded(
        &mut criterion,
        &runtime,
        "memory",
        DedupLayer::new().done_ttl(ttl),
    );
    memory_store(&mut criterion);
    parse(&mut criterion);
    #[cfg(feature = "redis")]
    let _server = {
        let server = redis_server::RedisServer::start();
        let store = runtime
            .block_on(tower_dt_signature::dedup::RedisStore::connect(
                &server.url(),
            ))
            .expect("connect to the bench's redis-server");
        guarded(
            &mut criterion,
            &runtime,
            "redis",
            DedupLayer::with_store(store).done_ttl(ttl),
        );
        server
    };
    #[cfg(not(feature = "redis"))]
    println!("redis: not measured (run with --features redis)");
    criterion.final_summary();

    let Some(base) = median_ns("baseline") else {
        return;
    };
    println!("\nthe guard's cost over baseline ({base:.0} ns), from criterion's medians:");
    for name in [
        "memory/new",
        "memory/duplicate",
        "redis/new",
        "redis/duplicate",
    ] {
        if let Some(median) = median_ns(name) {
            println!("{name:>17}  {median:>9.0} ns  {:>+9.0} ns", median - base);
        }
    }
}

#[cfg(feature = "redis")]
mod redis_server {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// A throwaway `redis-server` on a free loopback port, killed on drop.
    pub struct RedisServer {
        child: Child,
        port: u16,
    }

    impl RedisServer {
        pub fn start() -> Self {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect(
                    "redis-server is needed for the Redis benches: apt-get install redis-server",
                );
            let server = Self { child, port };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
                    let mut line = String::new();
                    if (&stream).write_all(b"PING\r\n").is_ok()
                        && BufReader::new(&stream).read_line(&mut line).is_ok()
                        && line == "+PONG\r\n"
                    {
                        return server;
                    }
                }
                assert!(Instant::now() < deadline, "redis-server did not start");
                std::thread::sleep(Duration::from_millis(10));
            }
        }

        pub fn url(&self) -> String {
            format!("redis://127.0.0.1:{}/", self.port)
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
