//! Delivery the way DT delivers: at least once, retried after every non-2xx answer, every
//! timeout and every dropped connection, with duplicates seconds apart and replays of
//! captured requests, to two replicas that share one Redis, which is SIGKILLed and
//! restarted mid-run. The handler must run for every event, never twice at the same
//! time, and never again once it has answered 2xx.
//!
//! The conditions of that guarantee are the ones this test sets up: the guards in
//! `fail_closed(true)` mode and a Redis that persists every write before it answers
//! (`--appendonly yes --appendfsync always`). SECURITY.md ("Delivery the way DT
//! delivers") has the figures of its runs and what fail-open or a non-persistent Redis
//! give instead.
//!
//! Bounded: about 21 s (the events start over 12 s, the last replays up to 10 s later);
//! it fails past 50 s. To see its counts:
//! `cargo test --all-features --test delivery -- --nocapture`.

#[path = "it/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use tower_dt_signature::dedup::{DedupLayer, DedupStats, RedisStore, X_DT_DUPLICATE};
use tower_dt_signature::testing::Signer;
use tower_dt_signature::DtSignatureLayer;

use support::dedup::body;
use support::redis_server::RedisServer;
use support::SECRET;

/// Distinct events, each delivered at least once.
const EVENTS: usize = 2000;
/// The events start evenly over this span.
const START_SPAN: Duration = Duration::from_secs(12);
/// Redis is SIGKILLed this long after the start, and restarted `OUTAGE` later.
const KILL_AT: Duration = Duration::from_secs(6);
const OUTAGE: Duration = Duration::from_millis(1500);
/// The client's timeout (DT's is 10 s; scaled down with everything else).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(1);
/// A slow handler run takes this long: past the client's timeout.
const SLOW: Duration = Duration::from_millis(1500);
/// Above the slowest handler run, as the guard's docs ask; short, so that reservations
/// orphaned by the outage or by dropped requests expire within the run.
const IN_FLIGHT_TTL: Duration = Duration::from_secs(5);
/// A delivery still without a 2xx this long after the start has failed.
const GIVE_UP: Duration = Duration::from_secs(50);
/// Key prefix in Redis.
const PREFIX: &str = "delivery:";

/// SplitMix64: small, seedable, good enough to pick what happens.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `percent` / 100.
    fn percent(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.next() % (high - low + 1))
    }
}

/// What the handler knows of one event, across both replicas.
#[derive(Default)]
struct Runs {
    runs: u32,
    running: u32,
    answered_2xx: bool,
    overlaps: u32,
    after_2xx: u32,
}

/// The one handler behind both replicas: it records every run per event id, and is
/// sometimes slow (past the client's timeout) or failing (500).
struct Handler {
    seed: u64,
    events: Mutex<HashMap<String, Runs>>,
    slow: AtomicUsize,
    failed: AtomicUsize,
    /// Runs dropped before they answered (the server dropped them: the client left).
    cancelled: AtomicUsize,
    /// Events that answered 2xx before Redis was killed.
    answered_before_kill: AtomicUsize,
    killed: Mutex<Option<Instant>>,
}

/// Marks a run as over when dropped, answered or not.
struct Running<'a> {
    handler: &'a Handler,
    id: String,
    answered: bool,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut events = self.handler.events.lock().unwrap();
        events.get_mut(&self.id).unwrap().running -= 1;
        if !self.answered {
            self.handler.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn handle(State(handler): State<Arc<Handler>>, body: Bytes) -> StatusCode {
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = json["event"]["eventId"].as_str().unwrap().to_owned();
    let run = {
        let mut events = handler.events.lock().unwrap();
        let runs = events.entry(id.clone()).or_default();
        runs.runs += 1;
        if runs.running > 0 {
            runs.overlaps += 1;
        }
        if runs.answered_2xx {
            runs.after_2xx += 1;
        }
        runs.running += 1;
        runs.runs
    };
    let mut running = Running {
        handler: &handler,
        id: id.clone(),
        answered: false,
    };
    // What this run does depends on the event and on how often it ran: a first run
    // fails more often than a retry, and a third always succeeds.
    let mut rng = Rng(handler.seed ^ fnv(&id) ^ u64::from(run).wrapping_mul(0x1234_5678_9abc));
    let roll = rng.next() % 100;
    let (slow, fail) = match run {
        1 => (4, 9),
        2 => (2, 5),
        _ => (0, 0),
    };
    let status = if roll < slow {
        handler.slow.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(SLOW).await;
        StatusCode::OK
    } else if roll < fail {
        handler.failed.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(rng.millis(1, 10)).await;
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        tokio::time::sleep(rng.millis(1, 20)).await;
        StatusCode::OK
    };
    running.answered = true;
    if status.is_success() {
        let mut events = handler.events.lock().unwrap();
        let runs = events.get_mut(&id).unwrap();
        if !runs.answered_2xx && handler.killed.lock().unwrap().is_none() {
            handler.answered_before_kill.fetch_add(1, Ordering::SeqCst);
        }
        runs.answered_2xx = true;
    }
    status
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One replica: signature check, the guard on its own connection to the shared Redis,
/// the shared handler; served by axum on 127.0.0.1.
async fn replica(redis: &str, handler: Arc<Handler>) -> (SocketAddr, DedupStats) {
    let store = RedisStore::connect(redis).await.unwrap().prefix(PREFIX);
    assert!(store.is_connected());
    let guard = DedupLayer::with_store(store)
        .fail_closed(true)
        .in_flight_ttl(IN_FLIGHT_TTL);
    let stats = guard.stats();
    let app = Router::new()
        .route("/", post(handle))
        .with_state(handler)
        .layer(guard)
        .layer(DtSignatureLayer::new(SECRET));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, stats)
}

/// What one request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Got {
    /// 2xx from the handler.
    Handled,
    /// 200 `x-dt-duplicate: done`: absorbed.
    Done,
    /// 409 `x-dt-duplicate: in-flight`.
    InFlight,
    /// 503: the guard could not reach Redis (fail closed).
    Unavailable,
    /// 500 from the handler.
    Failed,
    /// No answer within the client's timeout.
    TimedOut,
    /// The client dropped the request mid-flight.
    Dropped,
}

impl Got {
    fn delivered(self) -> bool {
        matches!(self, Got::Handled | Got::Done)
    }
}

/// What the client did and got, over the whole run.
#[derive(Default)]
struct Counts {
    requests: AtomicUsize,
    retries: AtomicUsize,
    duplicates_sent: AtomicUsize,
    replays_sent: AtomicUsize,
    by_answer: Mutex<HashMap<&'static str, usize>>,
    /// When each 503 was answered.
    unavailable_at: Mutex<Vec<Instant>>,
}

impl Counts {
    fn count(&self, got: Got) {
        let name = match got {
            Got::Handled => "2xx handled",
            Got::Done => "200 done",
            Got::InFlight => "409 in flight",
            Got::Unavailable => "503",
            Got::Failed => "500",
            Got::TimedOut => "timed out",
            Got::Dropped => "dropped",
        };
        *self.by_answer.lock().unwrap().entry(name).or_default() += 1;
        if got == Got::Unavailable {
            self.unavailable_at.lock().unwrap().push(Instant::now());
        }
    }

    fn answers(&self, name: &str) -> usize {
        self.by_answer
            .lock()
            .unwrap()
            .get(name)
            .copied()
            .unwrap_or(0)
    }
}

/// A spawned task aborted when dropped: the connection of a request the client gave up.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// POST `body` with `token` on a fresh connection; the status and `x-dt-duplicate`.
async fn exchange(
    addr: SocketAddr,
    body: Bytes,
    token: &str,
) -> Result<(StatusCode, Option<String>), String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let _connection = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let request = Request::post("/")
        .header("x-dt-signature", token)
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = response.status();
    let duplicate = response
        .headers()
        .get(X_DT_DUPLICATE)
        .map(|value| value.to_str().unwrap().to_owned());
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?;
    Ok((status, duplicate))
}

/// One request as DT sends it: answered within the client's timeout, or, when `drop_after`
/// is given, dropped then if not answered yet.
async fn send(addr: SocketAddr, body: Bytes, token: &str, drop_after: Option<Duration>) -> Got {
    let limit = drop_after.unwrap_or(CLIENT_TIMEOUT);
    match tokio::time::timeout(limit, exchange(addr, body, token)).await {
        Err(_) if drop_after.is_some() => Got::Dropped,
        Err(_) => Got::TimedOut,
        Ok(Err(error)) => panic!("a request to a running replica failed: {error}"),
        Ok(Ok((status, duplicate))) => match (status, duplicate.as_deref()) {
            (StatusCode::OK, Some("done")) => Got::Done,
            (StatusCode::CONFLICT, Some("in-flight")) => Got::InFlight,
            (StatusCode::SERVICE_UNAVAILABLE, None) => Got::Unavailable,
            (StatusCode::INTERNAL_SERVER_ERROR, None) => Got::Failed,
            (status, None) if status.is_success() => Got::Handled,
            other => panic!("unexpected answer {other:?}"),
        },
    }
}

/// Everything the DT-like client shares.
struct Client {
    replicas: [SocketAddr; 2],
    counts: Counts,
    started: Instant,
}

impl Client {
    /// Deliver `body` until a 2xx: a fresh token per try (as DT signs each push), a random
    /// replica, sometimes dropped mid-flight, backing off between tries. Returns the first
    /// try's token (the request an eavesdropper could capture).
    async fn deliver(&self, body: &Bytes, rng: &mut Rng) -> String {
        let mut first = None;
        for attempt in 0u32.. {
            assert!(
                self.started.elapsed() < GIVE_UP,
                "an event was not delivered within {GIVE_UP:?}"
            );
            let token = Signer::new(SECRET).sign(body);
            first.get_or_insert_with(|| token.clone());
            let addr = self.replicas[(rng.next() % 2) as usize];
            let drop_after = rng.percent(4).then(|| rng.millis(1, 25));
            self.counts.requests.fetch_add(1, Ordering::SeqCst);
            if attempt > 0 {
                self.counts.retries.fetch_add(1, Ordering::SeqCst);
            }
            let got = send(addr, body.clone(), &token, drop_after).await;
            self.counts.count(got);
            if got.delivered() {
                return first.unwrap();
            }
            let backoff = 100u64 << attempt.min(3);
            tokio::time::sleep(rng.millis(backoff / 2, backoff)).await;
        }
        unreachable!()
    }

    /// One event: delivered at least once; sometimes delivered again by DT (a duplicate,
    /// at once or seconds later), sometimes replayed byte for byte (same token) later.
    async fn event(self: Arc<Self>, index: usize, mut rng: Rng) {
        let id = format!("dlv{index:05}{:012}", rng.next() % 1_000_000_000_000);
        let body = body(&id);
        let duplicate = rng.percent(15).then(|| {
            if rng.percent(30) {
                rng.millis(0, 30)
            } else {
                rng.millis(500, 3000)
            }
        });
        let replay = rng.percent(10).then(|| rng.millis(200, 10_000));
        let twin = duplicate.map(|delay| {
            let (client, body, mut rng) = (self.clone(), body.clone(), Rng(rng.next()));
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                client.counts.duplicates_sent.fetch_add(1, Ordering::SeqCst);
                client.deliver(&body, &mut rng).await;
            })
        });
        let token = self.deliver(&body, &mut rng).await;
        if let Some(delay) = replay {
            tokio::time::sleep(delay).await;
            let addr = self.replicas[(rng.next() % 2) as usize];
            self.counts.replays_sent.fetch_add(1, Ordering::SeqCst);
            self.counts.requests.fetch_add(1, Ordering::SeqCst);
            let got = send(addr, body.clone(), &token, None).await;
            self.counts.count(got);
        }
        if let Some(twin) = twin {
            twin.await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_at_least_once_handled_once_through_a_redis_restart() {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed:#x}");
    let server = Arc::new(Mutex::new(RedisServer::start_persistent()));
    let url = server.lock().unwrap().url();
    let handler = Arc::new(Handler {
        seed,
        events: Mutex::default(),
        slow: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        cancelled: AtomicUsize::new(0),
        answered_before_kill: AtomicUsize::new(0),
        killed: Mutex::new(None),
    });
    let (a, a_stats) = replica(&url, handler.clone()).await;
    let (b, b_stats) = replica(&url, handler.clone()).await;

    let started = Instant::now();
    let client = Arc::new(Client {
        replicas: [a, b],
        counts: Counts::default(),
        started,
    });

    // SIGKILL mid-run, then the same port and directory: Redis reloads its AOF.
    let outage = {
        let (server, handler) = (server.clone(), handler.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until((started + KILL_AT).into()).await;
            let killed = Instant::now();
            *handler.killed.lock().unwrap() = Some(killed);
            let s = server.clone();
            tokio::task::spawn_blocking(move || s.lock().unwrap().kill())
                .await
                .unwrap();
            tokio::time::sleep(OUTAGE).await;
            tokio::task::spawn_blocking(move || server.lock().unwrap().restart())
                .await
                .unwrap();
            (killed, Instant::now())
        })
    };

    let mut rng = Rng(seed);
    let mut events = tokio::task::JoinSet::new();
    for index in 0..EVENTS {
        let at = started + START_SPAN.mul_f64(index as f64 / EVENTS as f64);
        let (client, rng) = (client.clone(), Rng(rng.next()));
        events.spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            client.event(index, rng).await;
        });
    }
    while let Some(joined) = events.join_next().await {
        joined.unwrap();
    }
    let (killed, restarted) = outage.await.unwrap();
    let wall = started.elapsed();

    // Redis, after its restart: every event marked done (the ones done before the kill
    // came back from the AOF).
    let done = done_keys(&url).await;

    // The handler's record.
    let records = handler.events.lock().unwrap();
    let runs: u32 = records.values().map(|r| r.runs).sum();
    let unhandled = EVENTS - records.values().filter(|r| r.answered_2xx).count();
    let overlapped: Vec<&String> = records
        .iter()
        .filter(|(_, r)| r.overlaps > 0)
        .map(|(id, _)| id)
        .collect();
    let again: Vec<&String> = records
        .iter()
        .filter(|(_, r)| r.after_2xx > 0)
        .map(|(id, _)| id)
        .collect();

    let counts = &client.counts;
    let unavailable = counts.unavailable_at.lock().unwrap();
    let before_kill = unavailable.iter().filter(|t| **t < killed).count();
    let after_restart = unavailable.iter().filter(|t| **t > restarted).count();
    let last_503 = unavailable
        .iter()
        .max()
        .map(|t| t.saturating_duration_since(killed));
    let stats = |f: fn(&DedupStats) -> u64| f(&a_stats) + f(&b_stats);
    println!(
        "events {EVENTS}, requests sent {}, retries {}, duplicates sent {}, replays sent {}",
        counts.requests.load(Ordering::SeqCst),
        counts.retries.load(Ordering::SeqCst),
        counts.duplicates_sent.load(Ordering::SeqCst),
        counts.replays_sent.load(Ordering::SeqCst),
    );
    println!(
        "answers: 2xx handled {}, duplicates absorbed 200 done {} / 409 in flight {}, 503 {} \
         (before the kill {before_kill}, after the restart {after_restart}, the last \
         {last_503:?} after the kill), 500 {}, client timeouts {}, dropped by the client {}",
        counts.answers("2xx handled"),
        counts.answers("200 done"),
        counts.answers("409 in flight"),
        unavailable.len(),
        counts.answers("500"),
        counts.answers("timed out"),
        counts.answers("dropped"),
    );
    println!(
        "handler runs {runs} (slow {}, 500 {}, cancelled {}), events answered 2xx before the \
         kill {}; guards: forwarded {}, duplicates {}, in flight {}, store errors {}",
        handler.slow.load(Ordering::SeqCst),
        handler.failed.load(Ordering::SeqCst),
        handler.cancelled.load(Ordering::SeqCst),
        handler.answered_before_kill.load(Ordering::SeqCst),
        stats(DedupStats::forwarded),
        stats(DedupStats::duplicates),
        stats(DedupStats::in_flight),
        stats(DedupStats::store_errors),
    );
    println!(
        "outage {:?} (Redis killed at {:?}), done keys in Redis {done}, wall time {wall:?}",
        restarted - killed,
        killed - started,
    );
    println!(
        "events handled twice at once {}, handled again after a 2xx {}",
        overlapped.len(),
        again.len()
    );

    assert_eq!(unhandled, 0, "events never handled");
    assert!(
        overlapped.is_empty(),
        "handled twice at once: {overlapped:?}"
    );
    assert!(again.is_empty(), "handled again after a 2xx: {again:?}");
    assert_eq!(before_kill, 0, "a 503 while Redis was up");
    assert!(
        handler.answered_before_kill.load(Ordering::SeqCst) > 0,
        "nothing was done before the kill: the AOF was not put to the test"
    );
    assert_eq!(done, EVENTS, "every event done in Redis after its restart");
}

/// How many keys under [`PREFIX`] hold `done`.
async fn done_keys(url: &str) -> usize {
    let mut redis = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{PREFIX}*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut done = 0;
    for key in keys {
        let value: Option<String> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut redis)
            .await
            .unwrap();
        done += usize::from(value.as_deref() == Some("done"));
    }
    done
}
