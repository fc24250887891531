//! Soak: 50,000+ requests at 256 concurrent connections against a real server on
//! 127.0.0.1, a mix of valid events of every type and hostile requests. Afterwards every
//! valid event reached the handler exactly once with its exact bytes, every hostile
//! request was refused as documented, and the heap is back to its baseline.

#[path = "it/support/mod.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_dt_signature::{DtSignatureError, DtSignatureLayer, ErrorKind};
use tower_http::timeout::TimeoutLayer;

use support::{at, sign, NOW, SECRET};

/// Counts live heap bytes, to see whether memory returns to its baseline.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CONNECTIONS: usize = 256;
const REQUESTS_PER_CONNECTION: usize = 200;
const LIMIT: usize = 16 * 1024;
const RAW_HOSTILE: usize = 600;

/// What the handler saw: event id -> (times, SHA-256 of the body it got).
type Seen = Arc<Mutex<HashMap<String, (usize, [u8; 32])>>>;

#[derive(Default)]
struct Refusals {
    by_kind: Mutex<HashMap<ErrorKind, usize>>,
    timeouts: AtomicUsize,
}

async fn handler(State(seen): State<Seen>, body: Bytes) -> StatusCode {
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = json["event"]["eventId"].as_str().unwrap().to_owned();
    let digest: [u8; 32] = Sha256::digest(&body).into();
    let mut seen = seen.lock().unwrap();
    let entry = seen.entry(id).or_insert((0, digest));
    entry.0 += 1;
    entry.1 = digest;
    StatusCode::OK
}

/// One DT body per event type, from `tests/data/dt-events/`.
fn event_bodies() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/dt-events");
    let mut bodies: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    bodies.sort();
    assert_eq!(bodies.len(), 19, "one body per event type");
    bodies
}

/// The body with its eventId replaced by a unique one.
fn unique(body: &str, id: &str) -> Bytes {
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    let old = json["event"]["eventId"].as_str().unwrap();
    Bytes::from(body.replacen(old, id, 1))
}

/// A tiny deterministic generator: the mix is the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Valid,
    BadSignature,
    OverLimit,
}

/// The tests of this binary measure the one process-wide heap count: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn soak_mixed_traffic() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(soak());
}

async fn soak() {
    let seen: Seen = Arc::default();
    let refusals = Arc::new(Refusals::default());
    let counting = refusals.clone();
    let app = Router::new()
        .route("/", post(handler))
        .with_state(seen.clone())
        .layer(
            tower::ServiceBuilder::new()
                .map_response(move |response: http::Response<Body>| {
                    if response.status() == StatusCode::REQUEST_TIMEOUT {
                        counting.timeouts.fetch_add(1, Ordering::SeqCst);
                    }
                    if let Some(error) = response.extensions().get::<DtSignatureError>() {
                        *counting
                            .by_kind
                            .lock()
                            .unwrap()
                            .entry(error.kind())
                            .or_default() += 1;
                    }
                    response
                })
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    // Long enough that no valid request on a loaded 2-core machine hits it.
                    Duration::from_secs(1),
                ))
                .layer(
                    DtSignatureLayer::new(SECRET)
                        .clock(at(NOW))
                        .max_body_size(LIMIT),
                ),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let bodies = Arc::new(event_bodies());
    let started = Instant::now();
    // Warm up once, then take the heap baseline.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let baseline = LIVE.load(Ordering::SeqCst);

    let connection_errors = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for connection in 0..CONNECTIONS {
        let bodies = bodies.clone();
        let connection_errors = connection_errors.clone();
        clients.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ (connection as u64 + 1));
            let mut sent = Vec::new();
            for i in 0..REQUESTS_PER_CONNECTION {
                let id = format!("soak{connection:04}x{i:05}");
                let template = &bodies[(rng.next() % bodies.len() as u64) as usize];
                let roll = rng.next() % 100;
                let kind = match roll {
                    0..=79 => Kind::Valid,
                    80..=94 => Kind::BadSignature,
                    _ => Kind::OverLimit,
                };
                let body = match kind {
                    Kind::OverLimit => Bytes::from(vec![b'x'; LIMIT + 1 + (roll as usize)]),
                    _ => unique(template, &id),
                };
                let token = match kind {
                    Kind::BadSignature => sign(&body, "not the secret"),
                    _ => sign(&body, SECRET),
                };
                let request = Request::post("/")
                    .header("host", "127.0.0.1")
                    .header("x-dt-signature", token)
                    .body(Full::new(body.clone()))
                    .unwrap();
                if sender.ready().await.is_err() {
                    connection_errors.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                let status = match sender.send_request(request).await {
                    Ok(response) => {
                        let status = response.status();
                        // Read the answer so the connection can be reused.
                        let _ = response.into_body().collect().await;
                        status
                    }
                    Err(_) => {
                        connection_errors.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                };
                let digest: [u8; 32] = Sha256::digest(&body).into();
                sent.push((kind, id, digest, status));
            }
            sent
        }));
    }

    // Raw hostile clients at the same time: cut off mid-body, disconnect after the
    // headers, trickle the body slower than the timeout.
    let mut raw = Vec::new();
    for i in 0..RAW_HOSTILE {
        let body = unique(&bodies[i % bodies.len()], &format!("raw{i:05}"));
        raw.push(tokio::spawn(async move {
            let token = sign(&body, SECRET);
            // Spread the raw connections over about a second rather than one burst.
            tokio::time::sleep(Duration::from_millis(2 * i as u64)).await;
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "POST / HTTP/1.1\r\nhost: 127.0.0.1\r\nx-dt-signature: {token}\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            match i % 3 {
                // Cut off mid-stream: half the body, then the connection closes.
                0 => {
                    let _ = stream.write_all(&body[..body.len() / 2]).await;
                    None
                }
                // Disconnect right after the headers.
                1 => None,
                // Slow body: half now, then nothing until the server's timeout answers.
                _ => {
                    stream.write_all(&body[..body.len() / 2]).await.unwrap();
                    let mut answer = Vec::new();
                    let _ = tokio::time::timeout(
                        Duration::from_secs(30),
                        stream.read_to_end(&mut answer),
                    )
                    .await;
                    Some(String::from_utf8_lossy(&answer).into_owned())
                }
            }
        }));
    }

    let mut results = Vec::new();
    for client in clients {
        results.extend(client.await.unwrap());
    }
    let mut slow_answers = Vec::new();
    for client in raw {
        slow_answers.extend(client.await.unwrap());
    }
    let elapsed = started.elapsed();

    assert_eq!(
        connection_errors.load(Ordering::SeqCst),
        0,
        "connection errors"
    );
    assert_eq!(results.len(), CONNECTIONS * REQUESTS_PER_CONNECTION);
    assert!(results.len() >= 50_000);

    let seen_map = std::mem::take(&mut *seen.lock().unwrap());
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (kind, id, digest, status) in &results {
        match kind {
            Kind::Valid => {
                assert_eq!(*status, StatusCode::OK, "{id}");
                let (times, got) = seen_map.get(id).unwrap_or_else(|| panic!("{id} lost"));
                assert_eq!(*times, 1, "{id} handled {times} times");
                assert_eq!(got, digest, "{id} reached the handler with other bytes");
                *counts.entry("valid").or_default() += 1;
            }
            Kind::BadSignature => {
                assert_eq!(*status, StatusCode::BAD_REQUEST, "{id}");
                assert!(!seen_map.contains_key(id), "{id} forged but handled");
                *counts.entry("bad signature").or_default() += 1;
            }
            Kind::OverLimit => {
                assert_eq!(*status, StatusCode::PAYLOAD_TOO_LARGE, "{id}");
                *counts.entry("over limit").or_default() += 1;
            }
        }
    }
    // Nothing but the valid events reached the handler: no raw hostile one, no refusal.
    assert_eq!(seen_map.len(), counts["valid"]);
    assert!(seen_map.keys().all(|id| id.starts_with("soak")));
    // Every slow body was cut off with the timeout's 408, counted where the server sends
    // it. The client may not read it: the server closes the connection after answering
    // mid-body, and a reset can overtake the 408 (the client then reads nothing).
    assert_eq!(slow_answers.len(), RAW_HOSTILE / 3);
    let empty = slow_answers.iter().filter(|a| a.is_empty()).count();
    assert_eq!(
        refusals.timeouts.load(Ordering::SeqCst),
        RAW_HOSTILE / 3,
        "408s sent; {empty} slow clients read nothing; refusals {:?}",
        refusals.by_kind.lock().unwrap()
    );
    for answer in &slow_answers {
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "slow body answered {answer:?}"
        );
    }
    let slow_read_408 = slow_answers.iter().filter(|a| !a.is_empty()).count();
    let by_kind = std::mem::take(&mut *refusals.by_kind.lock().unwrap());
    assert_eq!(
        by_kind.get(&ErrorKind::InvalidSignature),
        Some(&counts["bad signature"])
    );
    assert_eq!(
        by_kind.get(&ErrorKind::BodyTooLarge),
        Some(&counts["over limit"])
    );
    // Bodies cut off mid-stream are read errors (their client is gone, so no one reads
    // the 400); clients that left after the headers may be seen the same way.
    let cut_off = by_kind.get(&ErrorKind::BodyRead).copied().unwrap_or(0);
    assert!(
        cut_off >= RAW_HOSTILE / 3,
        "only {cut_off} body read errors"
    );
    assert!(cut_off <= 2 * RAW_HOSTILE / 3);

    // Memory: give the server a moment to close its connections, then compare.
    drop(seen_map);
    drop(results);
    let mut after = LIVE.load(Ordering::SeqCst);
    for _ in 0..50 {
        if after - baseline < 2 * 1024 * 1024 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = LIVE.load(Ordering::SeqCst);
    }
    println!(
        "soak: {} requests + {RAW_HOSTILE} raw hostile in {elapsed:?} over {CONNECTIONS} connections; \
         {counts:?}; refusals {by_kind:?}; {slow_read_408} of {} slow clients read their 408; live heap baseline {baseline} B, after {after} B",
        CONNECTIONS * REQUESTS_PER_CONNECTION,
        RAW_HOSTILE / 3,
    );
    assert!(
        after - baseline < 2 * 1024 * 1024,
        "heap grew by {} bytes",
        after - baseline
    );
    server.abort();
}

/// A client that declares a 1 MiB body and trickles two bytes reserves at most 64 KiB, not
/// the megabyte its unverified `Content-Length` asks for. (Before: the buffer for a second
/// chunk was sized from the declared length.)
#[test]
fn a_slow_client_reserves_at_most_64_kib_whatever_it_declares() {
    use futures_util::StreamExt;
    use http_body::Frame;
    use http_body_util::StreamBody;
    use tower::{Layer, ServiceExt};

    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let service = DtSignatureLayer::new(SECRET)
            .clock(at(NOW))
            .layer(tower::service_fn(
                |_: Request<tower_dt_signature::DtBody>| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
                },
            ));
        let declared = 1024 * 1024;
        let chunks = futures_util::stream::iter([
            Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(b"{"))),
            Ok(Frame::data(Bytes::from_static(b"}"))),
        ]);
        let request = Request::post("/")
            .header("x-dt-signature", sign(b"{}", SECRET))
            .header("content-length", declared)
            .body(StreamBody::new(
                chunks.chain(futures_util::stream::pending()),
            ))
            .unwrap();
        let before = LIVE.load(Ordering::SeqCst);
        let mut future = std::pin::pin!(service.oneshot(request));
        // Both bytes are read, then the body stalls: the future is waiting for more.
        let waited = tokio::time::timeout(Duration::from_millis(50), &mut future).await;
        assert!(waited.is_err(), "the body never ends");
        let held = LIVE.load(Ordering::SeqCst) - before;
        assert!(
            held < 128 * 1024,
            "{held} bytes held for a 2-byte upload that declared {declared}"
        );
    });
}
