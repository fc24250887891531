//! A crash soak of `dt-signature serve`, on SQLite, on PostgreSQL and on NATS JetStream: a
//! DT-like sender (every non-2xx and every dropped connection retried, duplicates sent at
//! once and later, timestamps out of order) delivers thousands of events while `serve` is
//! SIGKILLed and restarted twice; in the PostgreSQL run the database is SIGKILLed too,
//! after the second kill. In the NATS run both `serve` and `nats-server` are SIGKILLed and
//! restarted, three times each at moments drawn from the seed, and once both together
//! (`serve` then starts while NATS is still down). After each kill the store is read
//! back: every event that got a 2xx before the kill is in it. At the end every event is
//! stored exactly once, with its exact bytes (on NATS, as a consumer reads the stream),
//! and `dt_latest` holds the newest of each device.
//!
//! Bounded: about 10 s here for each store (debug build); it fails past 120 s per 3,000
//! events. Its figures: `cargo test -p dt-signature-cli --test crash_soak --
//! --nocapture` (SOAK_SEED=N picks the shuffle and the moments of the kills, SOAK_EVENTS=N
//! sends N events instead of 3,000, SOAK_KILLS=N kills each of the NATS run's processes N
//! times instead of 3; SECURITY.md has five runs of each).

mod support;

#[path = "../../store/tests/support/nats.rs"]
mod nats_support;
#[path = "../../store/tests/support/postgres.rs"]
mod postgres;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres::block_on;
use support::serve::{bodies, event, post_head, Serve, SECRET};
use support::TempDir;
use tower_dt_signature::testing::Signer;

const EVENTS: usize = 3000;
const WORKERS: usize = 16;
const DEVICES: usize = 40;
/// How long the default run may take; a longer one (SOAK_EVENTS) gets as much per event.
const GIVE_UP: Duration = Duration::from_secs(120);

/// A whole number from the environment, else `default`.
fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift64*): the run is reproducible by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Event {
    id: String,
    device: String,
    timestamp_us: u64,
    body: Vec<u8>,
}

#[derive(Default)]
struct Counts {
    requests: AtomicUsize,
    ok: AtomicUsize,
    refused: AtomicUsize,
    no_answer: AtomicUsize,
    copies: AtomicUsize,
}

/// One POST on a new connection: the status, or why there was none.
fn deliver(addr: SocketAddr, body: &[u8]) -> std::io::Result<u16> {
    let token = Signer::new(SECRET).sign(body);
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(post_head(body, &token).as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))
}

/// When the run started, and when it gives up.
#[derive(Clone, Copy)]
struct Clock {
    started: Instant,
    give_up: Duration,
}

impl Clock {
    fn check(&self, what: &str) {
        let Self { started, give_up } = self;
        assert!(started.elapsed() < *give_up, "{what} within {give_up:?}");
    }
}

/// Delivers `body` until it gets a 2xx, as DT retries (short pauses: scaled down).
fn until_2xx(addr: SocketAddr, body: &[u8], counts: &Counts, clock: Clock) {
    loop {
        clock.check("no 2xx");
        counts.requests.fetch_add(1, Ordering::Relaxed);
        match deliver(addr, body) {
            Ok(status) if (200..300).contains(&status) => {
                counts.ok.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(_) => counts.refused.fetch_add(1, Ordering::Relaxed),
            Err(_) => counts.no_answer.fetch_add(1, Ordering::Relaxed),
        };
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a kill SIGKILLs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Crash {
    /// `serve`, restarted at once.
    Serve,
    /// The store's server (PostgreSQL, nats-server) while `serve` runs on.
    Server,
    /// Both; `serve` is restarted first, while its store is still down.
    Both,
}

impl std::fmt::Display for Crash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Serve => "serve",
            Self::Server => "server",
            Self::Both => "both",
        })
    }
}

/// SIGKILL `serve` once a sixth of the events are acknowledged, then at a half.
fn serve_twice(events: usize) -> Vec<(usize, Crash)> {
    vec![(events / 6, Crash::Serve), (events / 2, Crash::Serve)]
}

/// Where the soak stores, and how it reads the store back.
trait Target {
    /// `DT_STORE`.
    fn store(&self) -> String;
    /// (event_key, body) of every row.
    fn rows(&self) -> Vec<(String, Vec<u8>)>;
    /// The `event_id` of `dt_latest` for a device's temperature events.
    fn latest(&self, device: &str) -> String;
    /// When to SIGKILL what, by the count of acknowledged events, in that order.
    fn plan(&self, events: usize, _rng: &mut Rng) -> Vec<(usize, Crash)> {
        serve_twice(events)
    }
    /// SIGKILL the store's server (SQLite has none).
    fn kill_server(&mut self) {}
    /// Start it again on what the kill left.
    fn start_server(&mut self) {}
}

struct Sqlite {
    _dir: TempDir,
    path: std::path::PathBuf,
}

impl Target for Sqlite {
    fn store(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn rows(&self) -> Vec<(String, Vec<u8>)> {
        bodies(&self.path)
    }

    fn latest(&self, device: &str) -> String {
        rusqlite::Connection::open(&self.path)
            .unwrap()
            .query_row(
                "SELECT event_id FROM dt_latest WHERE device = ?1 AND event_type = 'temperature'",
                [device],
                |row| row.get(0),
            )
            .unwrap()
    }
}

struct Postgres {
    cluster: postgres::PgCluster,
    url: String,
}

impl Target for Postgres {
    fn store(&self) -> String {
        self.url.clone()
    }

    fn rows(&self) -> Vec<(String, Vec<u8>)> {
        block_on(self.cluster.rows("dt"))
    }

    fn latest(&self, device: &str) -> String {
        block_on(async {
            let client = self.cluster.client("dt").await;
            client
                .query_one(
                    "SELECT event_id FROM dt_latest WHERE device = $1 AND event_type = 'temperature'",
                    &[&device],
                )
                .await
                .unwrap()
                .get(0)
        })
    }

    /// The database at three quarters, while `serve` runs on.
    fn plan(&self, events: usize, _rng: &mut Rng) -> Vec<(usize, Crash)> {
        let mut plan = serve_twice(events);
        plan.push((events * 3 / 4, Crash::Server));
        plan
    }

    fn kill_server(&mut self) {
        self.cluster.kill();
    }

    fn start_server(&mut self) {
        self.cluster.start_again();
    }
}

struct Nats {
    server: nats_support::NatsServer,
    kills: usize,
}

/// Every message of the stream, as a consumer reads it: an ordered pull consumer from the
/// first message; (`Dt-Event-Key`, body) of each.
async fn consume(client: async_nats::Client) -> Vec<(String, Vec<u8>)> {
    use async_nats::jetstream::{self, consumer::pull};
    use futures_util::StreamExt;
    let mut stream = jetstream::new(client)
        .get_stream("DT_EVENTS")
        .await
        .unwrap();
    let held = stream.info().await.unwrap().state.messages;
    let consumer = stream
        .create_consumer(pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut rows = Vec::new();
    while (rows.len() as u64) < held {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the stream's next message within 10 s")
            .expect("the consumer's stream does not end")
            .unwrap();
        let key = message.headers.as_ref().and_then(|h| h.get("Dt-Event-Key"));
        let key = key.expect("every message has Dt-Event-Key").as_str();
        rows.push((key.to_owned(), message.payload.to_vec()));
    }
    rows
}

impl Target for Nats {
    fn store(&self) -> String {
        self.server.url()
    }

    fn rows(&self) -> Vec<(String, Vec<u8>)> {
        block_on(async { consume(self.server.client().await).await })
    }

    fn latest(&self, device: &str) -> String {
        let key = format!("-.temperature.{device}");
        let body = block_on(async {
            nats_support::kv_value(&self.server.client().await, "dt_latest", &key).await
        })
        .unwrap_or_else(|| panic!("no dt_latest {key}"));
        let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
        event["event"]["eventId"].as_str().unwrap().to_owned()
    }

    /// `kills` of `serve`, `kills` of nats-server and one of both, in a shuffled order at
    /// moments drawn between a twentieth and nine tenths of the events.
    fn plan(&self, events: usize, rng: &mut Rng) -> Vec<(usize, Crash)> {
        let mut crashes = vec![Crash::Both];
        crashes.extend([Crash::Serve, Crash::Server].repeat(self.kills));
        for index in (1..crashes.len()).rev() {
            crashes.swap(index, rng.below(index as u64 + 1) as usize);
        }
        let (low, high) = (events / 20, events * 9 / 10);
        let mut moments: Vec<usize> = crashes
            .iter()
            .map(|_| low + rng.below((high - low) as u64 + 1) as usize)
            .collect();
        moments.sort_unstable();
        moments.into_iter().zip(crashes).collect()
    }

    fn kill_server(&mut self) {
        self.server.kill();
    }

    fn start_server(&mut self) {
        self.server.start_again();
    }
}

#[test]
fn serve_on_sqlite_sigkilled_twice_loses_no_acknowledged_event_and_stores_each_once() {
    let dir = TempDir::new("crash-soak");
    let path = dir.join("events.db");
    soak("sqlite", &mut Sqlite { _dir: dir, path });
}

#[test]
fn serve_and_postgres_sigkilled_lose_no_acknowledged_event_and_store_each_once() {
    let cluster = postgres::PgCluster::start();
    let url = block_on(cluster.database("dt"));
    soak("postgres", &mut Postgres { cluster, url });
}

#[test]
fn serve_and_nats_server_sigkilled_lose_no_acknowledged_event_and_store_each_once() {
    let server = nats_support::NatsServer::start();
    let kills = setting("SOAK_KILLS", 3);
    soak("nats", &mut Nats { server, kills });
}

fn soak(name: &str, target: &mut dyn Target) {
    let seed = setting("SOAK_SEED", 0x5eed) as u64;
    let events_sent = setting("SOAK_EVENTS", EVENTS);
    let give_up = GIVE_UP * u32::try_from(events_sent.div_ceil(EVENTS).max(1)).unwrap();
    let mut rng = Rng(seed | 1);
    let store = target.store();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port().to_string()
    };

    // Distinct events over a few devices, sent in shuffled order: out of order per device.
    let events: Arc<Vec<Event>> = Arc::new(
        (0..events_sent)
            .map(|index| {
                let timestamp_us = 1_714_557_600_000_000 + index as u64 * 1_000 + rng.below(999);
                let seconds = timestamp_us / 1_000_000;
                let micros = timestamp_us % 1_000_000;
                let at = chrono::DateTime::from_timestamp(seconds as i64, micros as u32 * 1000)
                    .unwrap()
                    .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                    .to_string();
                let id = format!("soak{seed:x}-{index:05}");
                let device = format!("dev{:02}", index % DEVICES);
                let body = event(&id, &device, &at);
                Event {
                    id,
                    device,
                    timestamp_us,
                    body,
                }
            })
            .collect(),
    );
    let mut order: Vec<usize> = (0..events_sent).collect();
    for index in (1..order.len()).rev() {
        order.swap(index, rng.below(index as u64 + 1) as usize);
    }
    let queue = Arc::new(Mutex::new(VecDeque::from(order)));
    let acked = Arc::new(Mutex::new(HashSet::<usize>::new()));
    let counts = Arc::new(Counts::default());

    // The kills' moments come from a generator of their own, one per seed (odd, as
    // xorshift wants, without merging two seeds): the events and their order are the
    // same whatever the plan.
    let plan = target.plan(events_sent, &mut Rng(((seed << 1) | 1) ^ 0x6b10));
    let mut serve = Serve::start_on(&port, &store, &[]);
    let addr = serve.addr;
    let clock = Clock {
        started: Instant::now(),
        give_up,
    };
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let (events, queue, acked, counts) =
                (events.clone(), queue.clone(), acked.clone(), counts.clone());
            let mut rng = Rng((seed ^ ((worker as u64 + 1) * 0x9e37_79b9)) | 1);
            std::thread::spawn(move || loop {
                let Some(index) = queue.lock().unwrap().pop_front() else {
                    return;
                };
                let body = &events[index].body;
                match rng.below(10) {
                    // A copy at the same time as the first.
                    0 | 1 => {
                        counts.copies.fetch_add(1, Ordering::Relaxed);
                        std::thread::scope(|scope| {
                            scope.spawn(|| until_2xx(addr, body, &counts, clock));
                            until_2xx(addr, body, &counts, clock);
                        });
                    }
                    _ => until_2xx(addr, body, &counts, clock),
                }
                let first = acked.lock().unwrap().insert(index);
                // A copy later: back to the end of the queue, once.
                if first && rng.below(10) == 0 {
                    counts.copies.fetch_add(1, Ordering::Relaxed);
                    queue.lock().unwrap().push_back(index);
                }
            })
        })
        .collect();

    let mut verified_after_kills = Vec::new();
    let restart = || {
        std::thread::sleep(Duration::from_millis(300));
        let serve = Serve::start_on(&port, &store, &[]);
        assert_eq!(serve.addr, addr);
        serve
    };
    for (threshold, crash) in plan {
        while acked.lock().unwrap().len() < threshold {
            clock.check("stuck before a kill");
            std::thread::sleep(Duration::from_millis(5));
        }
        let before: HashSet<usize> = acked.lock().unwrap().clone();
        if crash != Crash::Server {
            serve.kill();
        }
        if crash != Crash::Serve {
            target.kill_server();
            std::thread::sleep(Duration::from_millis(300));
        }
        if crash == Crash::Both {
            serve = restart();
        }
        if crash != Crash::Serve {
            target.start_server();
        }
        let in_store: HashSet<String> = target.rows().into_iter().map(|(key, _)| key).collect();
        let lost: Vec<&str> = before
            .iter()
            .map(|&index| events[index].id.as_str())
            .filter(|id| !in_store.contains(*id))
            .collect();
        assert!(
            lost.is_empty(),
            "acknowledged, then lost by a SIGKILL: {lost:?}"
        );
        verified_after_kills.push(format!("{} ({crash})", before.len()));
        if crash == Crash::Serve {
            serve = restart();
        }
    }
    for worker in workers {
        worker.join().expect("a worker failed");
    }
    let (code, log) = serve.terminate();
    assert_eq!(code, 0, "{log}");

    // Every event exactly once, with its exact bytes.
    let rows = target.rows();
    let by_id: HashMap<&str, &Event> = events
        .iter()
        .map(|event| (event.id.as_str(), event))
        .collect();
    let mut seen = HashSet::new();
    let twice: Vec<&str> = rows
        .iter()
        .filter(|(key, _)| !seen.insert(key.as_str()))
        .map(|(key, _)| key.as_str())
        .collect();
    let missing: Vec<&str> = events
        .iter()
        .map(|event| event.id.as_str())
        .filter(|id| !seen.contains(id))
        .collect();
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    assert!(missing.is_empty(), "never stored: {missing:?}");
    assert_eq!(rows.len(), events_sent, "one row per event");
    for (key, body) in &rows {
        assert_eq!(&by_id[key.as_str()].body, body, "{key}: the exact bytes");
    }
    // The newest per device, whatever the arrival order and the crashes.
    for device in 0..DEVICES.min(events_sent) {
        let device = format!("dev{device:02}");
        let newest = events
            .iter()
            .filter(|event| event.device == device)
            .max_by_key(|event| event.timestamp_us)
            .unwrap();
        assert_eq!(target.latest(&device), newest.id, "{device}");
    }
    println!(
        "crash soak, {name} (seed {seed:#x}): {events_sent} events, {} requests ({} 2xx, {} non-2xx, {} no answer), {} extra copies, SIGKILLs after [{}] acknowledged events, none lost, {} rows ({} twice, {} missing), {:.1} s",
        counts.requests.load(Ordering::Relaxed),
        counts.ok.load(Ordering::Relaxed),
        counts.refused.load(Ordering::Relaxed),
        counts.no_answer.load(Ordering::Relaxed),
        counts.copies.load(Ordering::Relaxed),
        verified_after_kills.join(", "),
        rows.len(),
        twice.len(),
        missing.len(),
        clock.started.elapsed().as_secs_f64()
    );
}
