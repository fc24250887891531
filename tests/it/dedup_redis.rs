//! The duplicate guard on a real Redis shared by two replicas. Each test starts its own
//! `redis-server` on a free loopback port and kills it when done. Without `redis-server`
//! these tests fail (they never skip): install it (`apt-get install redis-server`);
//! `.ci/run` does. Compiled with feature `redis` only.

use std::future::{poll_fn, Future};
use std::task::Poll;
use std::time::{Duration, Instant};

use http::StatusCode;
use tower::ServiceExt;

use tower_dt_signature::dedup::{
    DedupLayer, DedupRefusal, DedupStore, RedisStore, ReservationToken, Reserve,
};

use crate::support::dedup::*;
use crate::support::redis_server::{free_port, RedisServer};
use crate::support::{send_owned, Recorder};

/// One replica: its own connection to the shared Redis, its own handler.
struct Replica {
    guard: DedupLayer<RedisStore>,
    service: Stack<RedisStore>,
    handler: Recorder,
}

async fn replica(server: &RedisServer, fail_closed: bool) -> Replica {
    replica_at(&server.url(), fail_closed).await
}

/// A fresh Redis with two replicas on it, one failing open and one failing closed, and
/// `evt-1` handled through the first and absorbed by the second.
async fn open_and_closed() -> (RedisServer, Replica, Replica) {
    let server = RedisServer::start();
    let open = replica(&server, false).await;
    let closed = replica(&server, true).await;
    assert_eq!(answer_to(&open.service, "evt-1").await, ok());
    assert_eq!(answer_to(&closed.service, "evt-1").await, done());
    (server, open, closed)
}

/// The handler calls and the store errors of two replicas.
fn assert_calls_and_errors(
    open: &Replica,
    closed: &Replica,
    calls: (usize, usize),
    errors: (u64, u64),
) {
    assert_eq!((open.handler.calls(), closed.handler.calls()), calls);
    let stats = (open.guard.stats(), closed.guard.stats());
    assert_eq!((stats.0.store_errors(), stats.1.store_errors()), errors);
}

/// A replica on the Redis at `url`, which need not be running yet.
async fn replica_at(url: &str, fail_closed: bool) -> Replica {
    let store = RedisStore::connect(url)
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
    let (mut server, open, closed) = open_and_closed().await;

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

/// What a fail-closed guard answers while its store is down.
fn unavailable() -> Answer {
    Answer::Refused(
        DedupRefusal::StoreUnavailable,
        StatusCode::SERVICE_UNAVAILABLE,
        "dedup store unavailable".into(),
    )
}

/// How many Lua scripts Redis has cached (`INFO memory`).
async fn cached_scripts(connection: &mut redis::aio::MultiplexedConnection) -> usize {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(connection)
        .await
        .unwrap();
    let line = info
        .lines()
        .find_map(|line| line.strip_prefix("number_of_cached_scripts:"))
        .expect("INFO memory has number_of_cached_scripts (Redis 7)");
    line.trim().parse().unwrap()
}

/// Send fresh events to `replica` until one is guarded again (its store answered),
/// boundedly; returns how many were sent. A guarded event is answered by the handler
/// with no new store error, fail open or closed.
async fn until_guarded(replica: &Replica, name: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    for probe in 0.. {
        let errors = replica.guard.stats().store_errors();
        let answer = answer_to(&replica.service, &format!("{name}-probe-{probe}")).await;
        if replica.guard.stats().store_errors() == errors {
            assert_eq!(answer, ok());
            return probe + 1;
        }
        let failed = if replica.guard.stats().store_errors() > errors {
            answer == ok() || answer == unavailable()
        } else {
            false
        };
        assert!(failed, "{name}: {answer:?}");
        assert!(
            Instant::now() < deadline,
            "{name}: the guard did not recover within 10 s of Redis' restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unreachable!()
}

#[tokio::test]
async fn redis_killed_and_restarted_is_used_again_with_its_scripts_reloaded() {
    let (mut server, open, closed) = open_and_closed().await;
    assert_eq!(cached_scripts(&mut server.inspect().await).await, 2);

    // SIGKILL: no shutdown, nothing saved (this one has no persistence).
    server.kill();
    for id in ["evt-2", "evt-3"] {
        assert_eq!(answer_to(&open.service, id).await, ok(), "fail open");
        assert_eq!(answer_to(&closed.service, id).await, unavailable());
    }
    assert_eq!((open.handler.calls(), closed.handler.calls()), (3, 0));
    assert_eq!(closed.guard.stats().store_errors(), 2);

    // Same port, an empty script cache: the scripts' SHAs are unknown (NOSCRIPT).
    server.restart();
    let mut redis = server.inspect().await;
    assert_eq!(cached_scripts(&mut redis).await, 0);

    // Both replicas recover on the stores they have: no new store, no restart.
    let probes = until_guarded(&closed, "closed").await;
    until_guarded(&open, "open").await;
    assert_eq!(closed.handler.calls(), 1);
    assert!(probes <= 3, "{probes} events to recover");

    // Reserve, commit and release all run after the restart, on either replica.
    assert_eq!(answer_to(&open.service, "evt-10").await, ok());
    assert_eq!(answer_to(&closed.service, "evt-10").await, done());
    assert_eq!(
        get(&mut redis, "test:dt:evt-10").await.as_deref(),
        Some("done")
    );
    closed.handler.answer(StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        answer_to(&closed.service, "evt-11").await,
        Answer::Inner(StatusCode::INTERNAL_SERVER_ERROR)
    );
    assert_eq!(get(&mut redis, "test:dt:evt-11").await, None, "released");
    closed.handler.answer(StatusCode::OK);
    assert_eq!(answer_to(&open.service, "evt-11").await, ok());
    assert_eq!(answer_to(&closed.service, "evt-11").await, done());
    open.handler.hold();
    let first = tokio::spawn(send_owned(open.service.clone(), signed("evt-12")));
    open.handler.entered().await;
    assert_eq!(answer_to(&closed.service, "evt-12").await, in_flight());
    open.handler.open(1);
    assert_eq!(answer(first.await.unwrap()).await, ok());
    assert_eq!(answer_to(&closed.service, "evt-12").await, done());
    assert_eq!(cached_scripts(&mut redis).await, 3, "reloaded on NOSCRIPT");

    // What fail open and a Redis without persistence cost: evt-2 was handled unguarded
    // during the outage, and the restarted Redis forgot that evt-1 was done: both are
    // handled again.
    for id in ["evt-1", "evt-2"] {
        assert_eq!(answer_to(&closed.service, id).await, ok(), "{id} again");
    }
}

#[tokio::test]
async fn a_store_made_while_redis_is_down_connects_by_itself_once_it_is_up() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/");
    // Not an error: a replica that starts during an outage must start.
    let open = replica_at(&url, false).await;
    let closed = replica_at(&url, true).await;
    assert!(!open.guard.store().is_connected());
    assert!(!closed.guard.store().is_connected());
    assert_eq!(answer_to(&open.service, "evt-1").await, ok(), "fail open");
    assert_eq!(answer_to(&closed.service, "evt-1").await, unavailable());
    assert_calls_and_errors(&open, &closed, (1, 0), (1, 1));

    let server = RedisServer::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(open.guard.store().is_connected() && closed.guard.store().is_connected()) {
        assert!(
            Instant::now() < deadline,
            "the stores did not connect within 10 s of Redis' start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Guarding, across both replicas, with no error since.
    assert_eq!(answer_to(&closed.service, "evt-2").await, ok());
    assert_eq!(answer_to(&open.service, "evt-2").await, done());
    assert_eq!(answer_to(&open.service, "evt-3").await, ok());
    assert_eq!(answer_to(&closed.service, "evt-3").await, done());
    assert_calls_and_errors(&open, &closed, (2, 1), (1, 1));
    let mut redis = server.inspect().await;
    assert_eq!(
        get(&mut redis, "test:dt:evt-2").await.as_deref(),
        Some("done")
    );
}

#[tokio::test]
async fn a_commit_lost_to_a_redis_outage_is_made_once_redis_is_back() {
    // Every write on disk: the reservation survives the kill.
    let mut server = RedisServer::start_persistent();
    let store = RedisStore::connect(&server.url())
        .await
        .unwrap()
        .prefix("test:dt:")
        .timeout(Duration::from_millis(500));
    let guard = DedupLayer::with_store(store)
        .fail_closed(true)
        .in_flight_ttl(Duration::from_secs(1));
    let (handler, service) = stack(&guard);

    // Redis dies while the handler runs: the event is handled (2xx), its commit fails.
    handler.hold();
    let first = tokio::spawn(send_owned(service.clone(), signed("evt-1")));
    handler.entered().await;
    server.kill();
    handler.unhold();
    handler.open(1);
    assert_eq!(answer(first.await.unwrap()).await, ok());
    assert_eq!(guard.stats().store_errors(), 1);

    // Back with its reservation (the AOF): the commit is made by itself, boundedly.
    // Before, nobody made it: the reservation ran out after the in-flight TTL and the
    // next duplicate was handled a second time.
    server.restart();
    let mut redis = server.inspect().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&mut redis, "test:dt:evt-1").await.as_deref() != Some("done") {
        assert!(
            Instant::now() < deadline,
            "the failed commit was not made within 10 s of Redis' restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Past the in-flight TTL, DT's duplicate is absorbed.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(answer_to(&service, "evt-1").await, done());
    assert_eq!(handler.calls(), 1);
}
