//! A crash soak of `dt-signature serve`, on SQLite and on PostgreSQL: a DT-like sender
//! (every non-2xx and every dropped connection retried, duplicates sent at once and later,
//! timestamps out of order) delivers thousands of events while `serve` is SIGKILLed and
//! restarted twice; in the PostgreSQL run the database is SIGKILLed too, at the second
//! kill. After each kill the store is read back: every event that got a 2xx before the
//! kill is in it. At the end every event is stored exactly once, with its exact bytes,
//! and `dt_latest` holds the newest of each device.
//!
//! Bounded: about 10 s here; it fails past 120 s. Its figures:
//! `cargo test -p dt-signature-cli --test crash_soak -- --nocapture` (SOAK_SEED=N picks
//! the shuffle; SECURITY.md has five runs).

mod support;

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
const GIVE_UP: Duration = Duration::from_secs(120);

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

/// Delivers `body` until it gets a 2xx, as DT retries (short pauses: scaled down).
fn until_2xx(addr: SocketAddr, body: &[u8], counts: &Counts, started: Instant) {
    loop {
        assert!(started.elapsed() < GIVE_UP, "no 2xx within {GIVE_UP:?}");
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

/// Where the soak stores, and how it reads the store back.
trait Target {
    /// `DT_STORE`.
    fn store(&self) -> String;
    /// (event_key, body) of every row.
    fn rows(&self) -> Vec<(String, Vec<u8>)>;
    /// The `event_id` of `dt_latest` for a device's temperature events.
    fn latest(&self, device: &str) -> String;
    /// Whether there is a database server to SIGKILL (SQLite has none).
    fn has_server(&self) -> bool {
        false
    }
    /// SIGKILL the database server and start it again.
    fn crash_database(&mut self) {}
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

    fn has_server(&self) -> bool {
        true
    }

    fn crash_database(&mut self) {
        self.cluster.kill();
        std::thread::sleep(Duration::from_millis(300));
        self.cluster.start_again();
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

fn soak(name: &str, target: &mut dyn Target) {
    let seed: u64 = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x5eed);
    let mut rng = Rng(seed | 1);
    let store = target.store();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port().to_string()
    };

    // Distinct events over a few devices, sent in shuffled order: out of order per device.
    let events: Arc<Vec<Event>> = Arc::new(
        (0..EVENTS)
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
    let mut order: Vec<usize> = (0..EVENTS).collect();
    for index in (1..order.len()).rev() {
        order.swap(index, rng.below(index as u64 + 1) as usize);
    }
    let queue = Arc::new(Mutex::new(VecDeque::from(order)));
    let acked = Arc::new(Mutex::new(HashSet::<usize>::new()));
    let counts = Arc::new(Counts::default());

    let mut serve = Serve::start_on(&port, &store, &[]);
    let addr = serve.addr;
    let started = Instant::now();
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
                            scope.spawn(|| until_2xx(addr, body, &counts, started));
                            until_2xx(addr, body, &counts, started);
                        });
                    }
                    _ => until_2xx(addr, body, &counts, started),
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
    // SIGKILL serve once a sixth of the events are acknowledged, then at a half; where
    // there is a database server, SIGKILL it at three quarters while serve runs on.
    let mut kills = vec![(EVENTS / 6, false), (EVENTS / 2, false)];
    if target.has_server() {
        kills.push((EVENTS * 3 / 4, true));
    }
    for (threshold, database) in kills {
        while acked.lock().unwrap().len() < threshold {
            assert!(started.elapsed() < GIVE_UP, "stuck before a kill");
            std::thread::sleep(Duration::from_millis(5));
        }
        let before: HashSet<usize> = acked.lock().unwrap().clone();
        if database {
            target.crash_database();
        } else {
            serve.kill();
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
        verified_after_kills.push(before.len());
        if !database {
            std::thread::sleep(Duration::from_millis(300));
            serve = Serve::start_on(&port, &store, &[]);
            assert_eq!(serve.addr, addr);
        }
    }
    for worker in workers {
        worker.join().expect("a worker failed");
    }
    let (code, log) = serve.terminate();
    assert_eq!(code, 0, "{log}");

    // Every event exactly once, with its exact bytes.
    let rows = target.rows();
    assert_eq!(rows.len(), EVENTS, "one row per event");
    let by_id: HashMap<&str, &Event> = events
        .iter()
        .map(|event| (event.id.as_str(), event))
        .collect();
    let mut seen = HashSet::new();
    for (key, body) in &rows {
        assert!(seen.insert(key.clone()), "{key} stored twice");
        assert_eq!(&by_id[key.as_str()].body, body, "{key}: the exact bytes");
    }
    // The newest per device, whatever the arrival order and the crashes.
    for device in 0..DEVICES {
        let device = format!("dev{device:02}");
        let newest = events
            .iter()
            .filter(|event| event.device == device)
            .max_by_key(|event| event.timestamp_us)
            .unwrap();
        assert_eq!(target.latest(&device), newest.id, "{device}");
    }
    println!(
        "crash soak, {name} (seed {seed:#x}): {EVENTS} events, {} requests ({} 2xx, {} non-2xx, {} no answer), {} extra copies, SIGKILLs after {:?} acknowledged events (serve, serve{}), none lost, {} rows, {:.1} s",
        counts.requests.load(Ordering::Relaxed),
        counts.ok.load(Ordering::Relaxed),
        counts.refused.load(Ordering::Relaxed),
        counts.no_answer.load(Ordering::Relaxed),
        counts.copies.load(Ordering::Relaxed),
        verified_after_kills,
        if name == "postgres" { ", the database" } else { "" },
        rows.len(),
        started.elapsed().as_secs_f64()
    );
}
