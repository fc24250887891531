//! The duplicate guard on a real Redis shared by two replicas. Each test starts its own
//! `redis-server` on a free loopback port and kills it when done. Without `redis-server`
//! these tests fail (they never skip): install it (`apt-get install redis-server`);
//! `.ci/run` does. Compiled with feature `redis` only.

use std::future::{poll_fn, Future};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::task::Poll;
use std::time::{Duration, Instant};

use http::StatusCode;
use tower::ServiceExt;

use tower_dt_signature::dedup::{
    DedupLayer, DedupRefusal, DedupStore, RedisStore, ReservationToken, Reserve,
};

use crate::support::dedup::*;
use crate::support::{send_owned, Recorder};

/// A `redis-server` of our own, killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start() -> Self {
        let mut last = String::new();
        // A free port can be taken between our probe and redis' bind: try a few.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let spawned = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn();
            let child = match spawned {
                Ok(child) => child,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
                    "redis-server is not installed, and the Redis store tests need it: \
                     apt-get install redis-server (.ci/run installs it)"
                ),
                Err(error) => panic!("could not start redis-server: {error}"),
            };
            let mut server = Self { child, port };
            match server.wait_until_up() {
                Ok(()) => return server,
                Err(why) => last = why,
            }
        }
        panic!("redis-server did not start: {last}");
    }

    /// PING until PONG; Err with redis' own output if it exited.
    fn wait_until_up(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut output = String::new();
                if let Some(mut stdout) = self.child.stdout.take() {
                    let _ = stdout.read_to_string(&mut output);
                }
                return Err(format!("exited with {status}: {output}"));
            }
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                if (&stream).write_all(b"PING\r\n").is_ok()
                    && reader.read_line(&mut line).is_ok()
                    && line == "+PONG\r\n"
                {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err("no PONG within 10 s".into())
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kill it and wait until it is gone.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A plain connection, to look at the keys.
    async fn inspect(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One replica: its own connection to the shared Redis, its own handler.
struct Replica {
    guard: DedupLayer<RedisStore>,
    service: Stack<RedisStore>,
    handler: Recorder,
}

async fn replica(server: &RedisServer, fail_closed: bool) -> Replica {
    let store = RedisStore::connect(&server.url())
        .await
        .expect("connect to redis-server")
        .prefix("test:dt:")
        .timeout(Duration::from_millis(500));
    let guard = DedupLayer::with_store(store).fail_closed(fail_closed);
    let (handler, service) = stack(&guard);
    Replica {
        guard,
        service,
        handler,
    }
}

async fn get(connection: &mut redis::aio::MultiplexedConnection, key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query_async(connection)
        .await
        .unwrap()
}

async fn pttl(connection: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(connection)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_duplicate_sent_to_another_replica_is_absorbed() {
    let server = RedisServer::start();
    let (a, b) = (replica(&server, false).await, replica(&server, false).await);

    assert_eq!(answer_to(&a.service, "evt-1").await, ok());
    assert_eq!(a.handler.bodies(), vec![(body("evt-1"), true)]);
    assert_eq!(answer_to(&b.service, "evt-1").await, done());
    assert_eq!(answer_to(&a.service, "evt-1").await, done());
    assert_eq!((a.handler.calls(), b.handler.calls()), (1, 0));
    assert_eq!(
        (a.guard.stats().duplicates(), b.guard.stats().duplicates()),
        (1, 1)
    );

    // Under the prefix, done, for 13 hours.
    let mut redis = server.inspect().await;
    assert_eq!(
        get(&mut redis, "test:dt:evt-1").await.as_deref(),
        Some("done")
    );
    let ttl = pttl(&mut redis, "test:dt:evt-1").await;
    assert!(ttl > 12 * 3600 * 1000 && ttl <= 13 * 3600 * 1000, "{ttl}");
}

#[tokio::test]
async fn a_duplicate_in_flight_on_another_replica_is_not_forwarded() {
    let server = RedisServer::start();
    let (a, b) = (replica(&server, false).await, replica(&server, false).await);
    a.handler.hold();

    let first = tokio::spawn(send_owned(a.service.clone(), signed("evt-1")));
    a.handler.entered().await;
    assert_eq!(answer_to(&b.service, "evt-1").await, in_flight());
    let mut redis = server.inspect().await;
    let held = get(&mut redis, "test:dt:evt-1").await.unwrap();
    assert_eq!(held.len(), 32, "a reservation holds its token");
    assert!(pttl(&mut redis, "test:dt:evt-1").await <= 30_000);

    a.handler.open(1);
    assert_eq!(answer(first.await.unwrap()).await, ok());
    assert_eq!(answer_to(&b.service, "evt-1").await, done());
    assert_eq!((a.handler.calls(), b.handler.calls()), (1, 0));
    assert_eq!(b.guard.stats().in_flight(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_across_replicas_are_forwarded_once() {
    let server = RedisServer::start();
    let (a, b) = (replica(&server, false).await, replica(&server, false).await);
    for round in 0..10 {
        let replicas = [(&a.service, &a.handler), (&b.service, &b.handler)];
        let answers = race(&replicas, &format!("evt-{round}"), 8).await;
        let (last, duplicates) = answers.split_last().unwrap();
        assert_eq!(*last, ok());
        assert!(duplicates.iter().all(|a| *a == in_flight()), "{answers:?}");
        assert_eq!(
            a.handler.calls() + b.handler.calls(),
            round + 1,
            "once per event"
        );
        // Settled: a late duplicate on either replica is absorbed.
        assert_eq!(answer_to(&b.service, &format!("evt-{round}")).await, done());
    }
    let in_flight = a.guard.stats().in_flight() + b.guard.stats().in_flight();
    assert_eq!(in_flight, 70);
}

#[tokio::test]
async fn a_failed_answer_on_one_replica_lets_another_handle_the_retry() {
    let server = RedisServer::start();
    let (a, b) = (replica(&server, false).await, replica(&server, false).await);
    a.handler.answer(StatusCode::INTERNAL_SERVER_ERROR);

    assert_eq!(
        answer_to(&a.service, "evt-1").await,
        Answer::Inner(StatusCode::INTERNAL_SERVER_ERROR)
    );
    let mut redis = server.inspect().await;
    assert_eq!(get(&mut redis, "test:dt:evt-1").await, None, "released");
    assert_eq!(answer_to(&b.service, "evt-1").await, ok());
    assert_eq!(answer_to(&a.service, "evt-1").await, done());
    assert_eq!((a.handler.calls(), b.handler.calls()), (1, 1));
}

#[tokio::test]
async fn a_replica_never_releases_another_replicas_reservation_and_a_commit_always_wins() {
    let server = RedisServer::start();
    let a = RedisStore::connect(&server.url()).await.unwrap();
    let b = RedisStore::connect(&server.url()).await.unwrap();
    let ttl = Duration::from_secs(30);
    let done_ttl = Duration::from_secs(60);

    let Reserve::Reserved(token) = a.reserve("evt-1", ttl).await.unwrap() else {
        panic!("a free key is reserved");
    };
    assert_eq!(b.reserve("evt-1", ttl).await.unwrap(), Reserve::InFlight);
    let stranger = ReservationToken::random();
    b.release("evt-1", stranger).await.unwrap();
    let mut redis = server.inspect().await;
    assert_eq!(
        get(&mut redis, "dt-dedup:evt-1").await,
        Some(token.to_string()),
        "untouched, under the default prefix"
    );

    a.release("evt-1", token).await.unwrap();
    assert_eq!(get(&mut redis, "dt-dedup:evt-1").await, None);
    let Reserve::Reserved(token) = b.reserve("evt-1", ttl).await.unwrap() else {
        panic!("a released key is free");
    };
    b.commit("evt-1", token, done_ttl).await.unwrap();
    assert_eq!(a.reserve("evt-1", ttl).await.unwrap(), Reserve::Done);
    b.release("evt-1", token).await.unwrap();
    assert_eq!(a.reserve("evt-1", ttl).await.unwrap(), Reserve::Done);

    // A late commit (its holder's reservation expired and another replica reserved the
    // event since) wins: the event was handled, and the newer holder's release must not
    // free it. Before, the commit was dropped and the release freed a handled event.
    let Reserve::Reserved(slow) = a.reserve("evt-2", Duration::from_millis(50)).await.unwrap()
    else {
        panic!("a free key is reserved");
    };
    tokio::time::sleep(Duration::from_millis(120)).await;
    let Reserve::Reserved(newer) = b.reserve("evt-2", ttl).await.unwrap() else {
        panic!("the slow holder's reservation expired");
    };
    a.commit("evt-2", slow, done_ttl).await.unwrap();
    b.release("evt-2", newer).await.unwrap();
    assert_eq!(
        get(&mut redis, "dt-dedup:evt-2").await.as_deref(),
        Some("done")
    );
    assert_eq!(b.reserve("evt-2", ttl).await.unwrap(), Reserve::Done);
}

#[tokio::test]
async fn reservations_and_done_keys_expire_in_redis() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let reserve = |key, ttl| store.reserve(key, ttl);
    let Reserve::Reserved(_) = reserve("stuck", Duration::from_millis(40)).await.unwrap() else {
        panic!("a free key is reserved")
    };
    let Reserve::Reserved(token) = reserve("done", Duration::from_secs(30)).await.unwrap() else {
        panic!("a free key is reserved")
    };
    store
        .commit("done", token, Duration::from_millis(40))
        .await
        .unwrap();
    let long = Duration::from_secs(30);
    for (key, now) in [("stuck", Reserve::InFlight), ("done", Reserve::Done)] {
        assert_eq!(reserve(key, long).await.unwrap(), now, "{key}");
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    for key in ["stuck", "done"] {
        let later = reserve(key, long).await.unwrap();
        assert!(matches!(later, Reserve::Reserved(_)), "{key} expired");
    }
}

#[tokio::test]
async fn a_dropped_request_releases_its_reservation_in_redis() {
    let server = RedisServer::start();
    let (a, b) = (replica(&server, false).await, replica(&server, false).await);
    a.handler.hold();

    let mut dropped = Box::pin(a.service.clone().oneshot(signed("evt-1")));
    // Drive it until the inner service has it: the reservation is taken by then.
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let entered = poll_fn(|cx| {
                assert!(dropped.as_mut().poll(cx).is_pending());
                Poll::Ready(a.handler.calls() == 1)
            })
            .await;
            if entered {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the request never reached the inner service");
    assert_eq!(answer_to(&b.service, "evt-1").await, in_flight());
    drop(dropped);

    // The release runs on a spawned task: wait for it, boundedly.
    let mut redis = server.inspect().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(&mut redis, "test:dt:evt-1").await.is_some() {
        assert!(
            Instant::now() < deadline,
            "the dropped request's reservation stayed"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(answer_to(&b.service, "evt-1").await, ok());
    assert_eq!(b.handler.calls(), 1);
}

#[tokio::test]
async fn killed_redis_fails_open_or_closed_as_configured() {
    let mut server = RedisServer::start();
    let open = replica(&server, false).await;
    let closed = replica(&server, true).await;

    assert_eq!(answer_to(&open.service, "evt-1").await, ok());
    assert_eq!(answer_to(&closed.service, "evt-1").await, done());

    // Redis dies while a request is in flight: its commit fails, its answer stands.
    open.handler.hold();
    let in_flight = tokio::spawn(send_owned(open.service.clone(), signed("evt-2")));
    open.handler.entered().await;
    server.kill();
    open.handler.unhold();
    open.handler.open(1);
    assert_eq!(answer(in_flight.await.unwrap()).await, ok());
    assert_eq!(open.guard.stats().store_errors(), 1);

    // Fail open: forwarded, unguarded (even a duplicate: the store cannot tell).
    assert_eq!(answer_to(&open.service, "evt-1").await, ok());
    assert_eq!(answer_to(&open.service, "evt-3").await, ok());
    assert_eq!(open.handler.calls(), 4);
    assert_eq!(open.guard.stats().store_errors(), 3);

    // Fail closed: 503, never forwarded, so DT retries later.
    for id in ["evt-1", "evt-4"] {
        assert_eq!(
            answer_to(&closed.service, id).await,
            Answer::Refused(
                DedupRefusal::StoreUnavailable,
                StatusCode::SERVICE_UNAVAILABLE,
                "dedup store unavailable".into()
            )
        );
    }
    assert_eq!(closed.handler.calls(), 0);
    assert_eq!(closed.guard.stats().store_errors(), 2);
}
