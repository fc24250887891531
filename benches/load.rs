//! End-to-end load: a bare axum server against the same server behind `DtSignatureLayer`,
//! with each policy: `hmac` (`DtSignatureLayer::new(secret)`), `asymmetric` and `both`
//! (`Verifier::asymmetric` / `Verifier::both` with a pinned key, `DtKeys::from_jwks`).
//!
//! ```text
//! cargo bench --bench load                    # the whole comparison, about 2.5 minutes
//! cargo bench --bench load -- --quick         # fewer, shorter rounds
//! cargo bench --bench load -- --no-pin        # do not pin processes to CPUs
//! cargo bench --bench load -- --memory-only   # only the 1 MiB upload part
//! ```
//!
//! The benchmark starts itself twice more in server mode, one process per server, so each
//! server's peak RSS (`VmHWM`) is its own; both listen on 127.0.0.1. Its load generator
//! writes pre-built HTTP/1.1 requests on keep-alive connections (one request in flight per
//! connection, like DT) and reads the responses, which costs far less than either server,
//! so the servers are what is measured. The same bytes go to every server: a 518-byte DT
//! temperature event with both of DT's tokens (`X-Dt-Signature` and
//! `DT-Asymmetric-Signature`, as a connector with a signature secret sends them; a policy
//! ignores the header it does not name), signed afresh for each round. Rounds alternate
//! the servers (A B C D, then D C B A) so that background noise falls on all. With two
//! CPUs or more and `taskset` installed, the servers run on CPU 1 and the load generator
//! on CPU 0. The ES256 key is kept in `$TMPDIR/tower-dt-signature-bench-es256.pk8`, so
//! that separate processes (`server`, `drive`) share it.
//!
//! It prints requests/s, p50, p99 and server CPU time per request at 16 and 256
//! connections, with each layer's ratio to bare, then the peak RSS of fresh servers under
//! 64 concurrent 1 MiB uploads (bare and hmac), and shows that a forged or expired token
//! with a declared 1 MiB body is refused before the client has sent a single body byte.
//!
//! Other modes, for profiling one server (see BENCHMARKS.md):
//!
//! ```text
//! cargo bench --bench load -- server <bare|hmac|asymmetric|both|in-handler>  # prints "listening <addr>", stops on stdin EOF
//! cargo bench --bench load -- drive <addr> <requests> <connections>
//! cargo bench --bench load -- wrk-script > dt.lua   # for `wrk -s dt.lua` (both tokens, 518-byte event)
//! cargo bench --bench load -- polls <requests>      # polls of the layer's future and of the body, per request
//! ```
//!
//! (`layer` is another name for `hmac`.)

mod support;

use std::io::{BufRead, Read as _};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::post;
use axum::serve::ListenerExt as _;
use axum::Router;
use support::dt_token;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_dt_signature::consts::{DT_ASYMMETRIC_SIGNATURE, X_DT_SIGNATURE};
use tower_dt_signature::testing::AsymmetricSigner;
use tower_dt_signature::{DtSignatureLayer, Verifier};

const SECRET: &str = "test-secret";
/// A real DT temperature event body, 518 bytes.
const EVENT: &[u8] = include_bytes!("../tests/data/dt-events/temperature.json");
const MIB: usize = 1024 * 1024;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// For profiling: no layer, the handler calls `Verifier::verify` itself (HMAC).
    InHandler,
    Bare,
    /// `DtSignatureLayer::new(SECRET)`.
    Hmac,
    /// `Verifier::asymmetric` with the pinned bench key.
    Asymmetric,
    /// `Verifier::both`: the secret and the pinned bench key.
    Both,
}

impl Kind {
    const COMPARED: [Kind; 4] = [Kind::Bare, Kind::Hmac, Kind::Asymmetric, Kind::Both];

    fn name(self) -> &'static str {
        match self {
            Kind::Bare => "bare",
            Kind::Hmac => "hmac",
            Kind::Asymmetric => "asymmetric",
            Kind::Both => "both",
            Kind::InHandler => "in-handler",
        }
    }

    fn parse(name: &str) -> Kind {
        match name {
            "bare" => Kind::Bare,
            "hmac" | "layer" => Kind::Hmac,
            "asymmetric" => Kind::Asymmetric,
            "both" => Kind::Both,
            "in-handler" => Kind::InHandler,
            other => panic!("unknown server {other:?}: bare, hmac, asymmetric, both or in-handler"),
        }
    }

    /// The layer's verifier (`None` for the servers without a layer).
    fn verifier(self) -> Option<Verifier> {
        match self {
            Kind::Bare | Kind::InHandler => None,
            Kind::Hmac => Some(Verifier::new(SECRET)),
            Kind::Asymmetric => {
                let signer = es256_signer();
                Some(Verifier::asymmetric(signer.dt_keys(), signer.org_id()))
            }
            Kind::Both => {
                let signer = es256_signer();
                Some(Verifier::both(SECRET, signer.dt_keys(), signer.org_id()))
            }
        }
    }
}

/// The bench's ES256 key, shared by its processes through a file in the temporary
/// directory (made by the first process that needs it).
fn es256_signer() -> AsymmetricSigner {
    let path = std::env::temp_dir().join("tower-dt-signature-bench-es256.pk8");
    AsymmetricSigner::load_or_generate(path).expect("the bench's ES256 key")
}

fn main() {
    // `cargo bench` passes `--bench`; everything else is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["server", kind] => server(Kind::parse(kind)),
        ["wrk-script"] => wrk_script(),
        ["polls", requests] => polls::run(requests.parse().expect("a request count")),
        ["drive", addr, requests, connections] => drive(
            addr.parse().expect("an address"),
            requests.parse().expect("a request count"),
            connections.parse().expect("a connection count"),
        ),
        flags => compare(Options {
            quick: flags.contains(&"--quick"),
            pin: !flags.contains(&"--no-pin"),
            memory_only: flags.contains(&"--memory-only"),
        }),
    }
}

// ---------------------------------------------------------------------------------------
// Server mode

/// The handler both servers run: take the whole body, answer 200 "ok".
async fn handler(body: Bytes) -> &'static str {
    std::hint::black_box(body.len());
    "ok"
}

/// The same, holding the body for 200 ms first, as a handler that stores the event would:
/// then every upload of a wave is in memory at once, however fast the server reads.
async fn hold(body: Bytes) -> &'static str {
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::hint::black_box(body.len());
    "ok"
}

fn server(kind: Kind) {
    // Stop when the parent closes our stdin (or dies).
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let router = Router::new()
            .route("/", post(handler))
            .route("/hold", post(hold));
        let app = match kind {
            Kind::Bare => router,
            Kind::Hmac | Kind::Asymmetric | Kind::Both => {
                router.layer(DtSignatureLayer::from(kind.verifier().unwrap()))
            }
            Kind::InHandler => {
                let verifier = tower_dt_signature::Verifier::new(SECRET);
                let verify = move |headers: http::HeaderMap, body: Bytes| async move {
                    verifier
                        .verify(&headers, &body)
                        .map(|_| "ok")
                        .map_err(|_| "refused")
                };
                Router::new().route("/", post(verify))
            }
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening {}", listener.local_addr().unwrap());
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await.unwrap();
    });
}

/// A server process of ours, pinned to `cpu` if given.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    fn spawn(kind: Kind, cpu: Option<usize>) -> Self {
        let exe = std::env::current_exe().unwrap();
        let mut command = match cpu {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpu.to_string()).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        let mut child = command
            .args(["server", kind.name()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a server process");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("server said {line:?}"))
            .parse()
            .unwrap();
        Self { child, addr }
    }

    fn status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/<pid>/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/<pid>/status"))
    }

    /// Peak resident set size so far, in KiB.
    fn peak_rss_kib(&self) -> u64 {
        self.status("VmHWM")
    }

    /// User + system CPU time used so far.
    fn cpu_time(&self) -> Duration {
        support::process_cpu_time(self.child.id())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Load generator

/// One HTTP/1.1 request, ready to write.
fn request(path: &str, token: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         x-dt-signature: {token}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// DT's two tokens for `body`, issued now: `X-Dt-Signature` under [`SECRET`] and
/// `DT-Asymmetric-Signature` under the bench's ES256 key.
fn both_tokens(body: &[u8]) -> (String, String) {
    (dt_token(body, 0, SECRET), es256_signer().sign(body))
}

/// One HTTP/1.1 request carrying both tokens, ready to write: what every server of the
/// comparison receives.
fn request_both(path: &str, body: &[u8]) -> Vec<u8> {
    let (hmac, es256) = both_tokens(body);
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         {X_DT_SIGNATURE}: {hmac}\r\n{DT_ASYMMETRIC_SIGNATURE}: {es256}\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// A Lua script for `wrk -s`: the 518-byte event with both tokens, issued now (the
/// ES256 token lives 300 s, the HMAC one an hour).
fn wrk_script() {
    let (hmac, es256) = both_tokens(EVENT);
    let body = std::str::from_utf8(EVENT).unwrap();
    assert!(!body.contains("]==]") && !body.starts_with('\n'));
    println!("wrk.method = \"POST\"");
    println!("wrk.headers[\"Content-Type\"] = \"application/json\"");
    println!("wrk.headers[\"X-Dt-Signature\"] = \"{hmac}\"");
    println!("wrk.headers[\"DT-Asymmetric-Signature\"] = \"{es256}\"");
    println!("wrk.body = [==[{body}]==]");
}

/// Read one response; returns its status. `buf` keeps what was read past it (nothing, as
/// we never pipeline).
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> u16 {
    buf.clear();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).expect("an ASCII response head");
            let status = head[9..12].parse().expect("a status code");
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("a content-length");
            let total = end + 4 + length;
            while buf.len() < total {
                read_more(stream, buf).await;
            }
            buf.drain(..total);
            return status;
        }
        read_more(stream, buf).await;
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) {
    buf.reserve(4096);
    if stream.read_buf(buf).await.expect("read a response") == 0 {
        panic!("the server closed the connection");
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).unwrap();
    stream
}

/// What one measurement window saw.
#[derive(Default)]
struct Window {
    requests: u64,
    elapsed: Duration,
    /// Latencies in microseconds.
    latencies: Vec<u32>,
    server_cpu: Duration,
}

/// Keep `connections` connections busy with `request` for `warm_up`, then measure for
/// `duration`.
async fn load(
    server: &ServerProcess,
    request: Arc<Vec<u8>>,
    connections: usize,
    warm_up: Duration,
    duration: Duration,
) -> Window {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let mut stream = connect(server.addr).await;
        let (request, measuring, stop) = (request.clone(), measuring.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(1 << 14);
            let mut buf = Vec::with_capacity(4096);
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                stream.write_all(&request).await.expect("write a request");
                let status = read_response(&mut stream, &mut buf).await;
                assert_eq!(status, 200, "the server refused a request");
                if measuring.load(Ordering::Relaxed) {
                    latencies.push(start.elapsed().as_micros() as u32);
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(warm_up).await;
    let cpu_before = server.cpu_time();
    let start = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(duration).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = start.elapsed();
    let server_cpu = server.cpu_time() - cpu_before;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    Window {
        requests: latencies.len() as u64,
        elapsed,
        latencies,
        server_cpu,
    }
}

impl Window {
    fn add(&mut self, other: Window) {
        self.requests += other.requests;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        self.server_cpu += other.server_cpu;
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&mut self, p: f64) -> f64 {
        self.latencies.sort_unstable();
        let index = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
        f64::from(self.latencies[index])
    }

    fn cpu_us_per_request(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.requests as f64
    }
}

// ---------------------------------------------------------------------------------------
// The comparison

struct Options {
    quick: bool,
    pin: bool,
    memory_only: bool,
}

fn compare(options: Options) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = options.pin && cpus >= 2 && Command::new("taskset").arg("-V").output().is_ok();
    if pin {
        // Threads made from now on inherit CPU 0; the servers go to CPU 1.
        let status = Command::new("taskset")
            .args(["-a", "-p", "-c", "0", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "taskset failed");
    }
    let server_cpu = pin.then_some(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(if pin { 1 } else { cpus })
        .enable_all()
        .build()
        .unwrap();

    let (rounds, window) = if options.quick {
        (2, Duration::from_secs(1))
    } else {
        (5, Duration::from_secs(2))
    };
    println!(
        "load: {cpus} CPUs; {}; {rounds} rounds of {window:?} per server and connection count, \
         servers alternated (A B, B A, ...)",
        if pin {
            "servers pinned to CPU 1, load generator to CPU 0"
        } else {
            "not pinned"
        }
    );

    if !options.memory_only {
        // Made (if need be) before any server process reads it.
        es256_signer();
        throughput(&runtime, server_cpu, rounds, window);
    }
    // Target 3: memory under 64 concurrent 1 MiB uploads, fresh servers.
    let big_body = {
        let mut body = EVENT[..EVENT.len() - 1].to_vec();
        body.extend_from_slice(br#","padding":""#);
        body.resize(MIB - 2, b'x');
        body.extend_from_slice(b"\"}");
        body
    };
    let big_token = dt_token(&big_body, 0, SECRET);
    let waves = if options.quick { 2 } else { 4 };
    println!("\n64 concurrent 1 MiB uploads, {waves} waves, fresh server processes");
    println!(
        "{:>6}  {:>14}  {:>14}  {:>14}",
        "server", "handler", "idle RSS KiB", "peak RSS KiB"
    );
    for (path, handler) in [("/", "answers"), ("/hold", "holds 200ms")] {
        let big = Arc::new(request(path, &big_token, &big_body));
        let peaks = [Kind::Bare, Kind::Hmac].map(|kind| {
            let peak = peak_rss_under_uploads(&runtime, kind, server_cpu, &big, waves);
            println!(
                "{:>6}  {handler:>14}  {:>14}  {:>14}",
                kind.name(),
                peak.0,
                peak.1
            );
            peak.1
        });
        println!(
            " ratio  {handler:>14}  peak RSS {:.3} (target <= 1.2)",
            peaks[1] as f64 / peaks[0] as f64
        );
    }

    // Target 4: a forged or expired token costs no body bytes.
    println!("\nforged / expired token, Content-Length: 1048576, no body byte sent");
    let server = ServerProcess::spawn(Kind::Hmac, server_cpu);
    for (name, token) in [
        ("forged", dt_token(&big_body, 0, "attacker")),
        ("expired", dt_token(&big_body, 7200, SECRET)),
    ] {
        let head = request("/", &token, &big_body);
        let head = &head[..head.len() - big_body.len()];
        let (status, elapsed) = runtime.block_on(async {
            let mut stream = connect(server.addr).await;
            let start = Instant::now();
            stream.write_all(head).await.unwrap();
            let status = tokio::time::timeout(
                Duration::from_secs(5),
                read_response(&mut stream, &mut Vec::new()),
            )
            .await
            .expect("no answer without the body");
            (status, start.elapsed())
        });
        println!("{name:>8}: {status} after 0 of {MIB} body bytes, in {elapsed:?}");
        assert_eq!(status, 400);
    }
}

/// Target 1: requests/s and latency at 16 and 256 connections, for bare and each
/// policy, servers alternated.
fn throughput(
    runtime: &tokio::runtime::Runtime,
    server_cpu: Option<usize>,
    rounds: usize,
    window: Duration,
) {
    let servers = Kind::COMPARED.map(|kind| ServerProcess::spawn(kind, server_cpu));
    println!(
        "\n{}-byte DT event with both tokens, keep-alive, one request in flight per connection",
        EVENT.len()
    );
    println!(
        "{:>5}  {:>10}  {:>10}  {:>8}  {:>8}  {:>12}",
        "conns", "server", "req/s", "p50 us", "p99 us", "cpu us/req"
    );
    for connections in [16, 256] {
        let mut totals = Kind::COMPARED.map(|_| Window::default());
        // Per round, each layer's requests/s over bare's.
        let mut round_ratios: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
        for round in 0..rounds {
            // Signed afresh: an ES256 token lives 300 s.
            let small = Arc::new(request_both("/", EVENT));
            let mut order: Vec<usize> = (0..servers.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            let mut rps = vec![0.0; servers.len()];
            for index in order {
                let result = runtime.block_on(load(
                    &servers[index],
                    small.clone(),
                    connections,
                    Duration::from_millis(300),
                    window,
                ));
                rps[index] = result.rps();
                totals[index].add(result);
            }
            for (index, ratios) in round_ratios.iter_mut().enumerate() {
                ratios.push(rps[index] / rps[0]);
            }
        }
        let figures: Vec<(f64, f64, f64, f64)> = totals
            .iter_mut()
            .map(|w| {
                (
                    w.rps(),
                    w.percentile(0.50),
                    w.percentile(0.99),
                    w.cpu_us_per_request(),
                )
            })
            .collect();
        for (kind, (rps, p50, p99, cpu)) in Kind::COMPARED.iter().zip(&figures) {
            println!(
                "{connections:>5}  {:>10}  {rps:>10.0}  {p50:>8.0}  {p99:>8.0}  {cpu:>12.1}",
                kind.name()
            );
        }
        let bare = figures[0];
        for (index, kind) in Kind::COMPARED.iter().enumerate().skip(1) {
            let (rps, p50, p99, cpu) = figures[index];
            let ratios = &mut round_ratios[index];
            ratios.sort_by(f64::total_cmp);
            println!(
                "{connections:>5}  {:>10}  / bare: req/s {:.3} (per round {:.3}..{:.3}), \
                 p50 {:.2}, p99 {:.2}, cpu/req {:.2}",
                kind.name(),
                rps / bare.0,
                ratios[0],
                ratios[ratios.len() - 1],
                p50 / bare.1,
                p99 / bare.2,
                cpu / bare.3,
            );
        }
    }
    drop(servers);
}

/// Idle and peak RSS (KiB) of a fresh `kind` server that received `waves` waves of 64
/// concurrent `upload`s.
fn peak_rss_under_uploads(
    runtime: &tokio::runtime::Runtime,
    kind: Kind,
    cpu: Option<usize>,
    upload: &Arc<Vec<u8>>,
    waves: usize,
) -> (u64, u64) {
    let server = ServerProcess::spawn(kind, cpu);
    let idle = server.peak_rss_kib();
    runtime.block_on(async {
        for _ in 0..waves {
            let uploads: Vec<_> = (0..64)
                .map(|_| {
                    let upload = upload.clone();
                    let addr = server.addr;
                    tokio::spawn(async move {
                        let mut stream = connect(addr).await;
                        stream.write_all(&upload).await.unwrap();
                        read_response(&mut stream, &mut Vec::new()).await
                    })
                })
                .collect();
            for upload in uploads {
                assert_eq!(upload.await.unwrap(), 200, "an upload was refused");
            }
        }
    });
    (idle, server.peak_rss_kib())
}

/// Send `requests` requests over `connections` connections to `addr` (for profiling a
/// server started with `server <kind>`).
fn drive(addr: SocketAddr, requests: usize, connections: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let request = Arc::new(request_both("/", EVENT));
    let start = Instant::now();
    runtime.block_on(async {
        let per_connection = requests.div_ceil(connections);
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                let request = request.clone();
                tokio::spawn(async move {
                    let mut stream = connect(addr).await;
                    let mut buf = Vec::new();
                    for _ in 0..per_connection {
                        stream.write_all(&request).await.unwrap();
                        assert_eq!(read_response(&mut stream, &mut buf).await, 200);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    println!(
        "{} requests in {:?}",
        requests.div_ceil(connections) * connections,
        start.elapsed()
    );
}

/// `polls <requests>`: how often the layer's response future and the request body are
/// polled per request, and how often they return `Pending` (each `Pending` of the
/// future is one more wake-up of the connection's task before the answer). Counted by a
/// wrapper around the service the layer makes (or, for bare, around the handler's route):
/// in memory with a single-frame `Full` body through `ServiceExt::oneshot`, then over
/// loopback through axum and hyper, `requests` requests on one keep-alive connection.
mod polls {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::task::{Context, Poll};

    use axum::body::{Body, Bytes};
    use axum::routing::post;
    use axum::Router;
    use http::Request;
    use http_body::Frame;
    use http_body_util::{BodyExt as _, Full};
    use tokio::io::AsyncWriteExt as _;
    use tokio::net::TcpListener;
    use tower::{Layer, Service, ServiceExt as _};
    use tower_dt_signature::{DtBody, DtSignatureLayer};

    use super::{connect, handler, read_response, request_both, Kind, EVENT};

    /// Requests, future polls, future `Pending`s, body polls, body `Pending`s.
    static COUNTS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

    fn bump(counter: usize) {
        COUNTS[counter].fetch_add(1, Relaxed);
    }

    fn take() -> [u64; 5] {
        std::array::from_fn(|i| COUNTS[i].swap(0, Relaxed))
    }

    #[derive(Clone)]
    struct Count<S>(S);

    struct CountLayer;

    impl<S> Layer<S> for CountLayer {
        type Service = Count<S>;
        fn layer(&self, inner: S) -> Count<S> {
            Count(inner)
        }
    }

    impl<S, B> Service<Request<B>> for Count<S>
    where
        S: Service<Request<CountBody<B>>>,
    {
        type Response = S::Response;
        type Error = S::Error;
        type Future = CountFuture<S::Future>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
            self.0.poll_ready(cx)
        }

        fn call(&mut self, request: Request<B>) -> Self::Future {
            bump(0);
            CountFuture(Box::pin(self.0.call(request.map(CountBody))))
        }
    }

    struct CountFuture<F>(Pin<Box<F>>);

    impl<F: Future> Future for CountFuture<F> {
        type Output = F::Output;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            bump(1);
            let poll = self.0.as_mut().poll(cx);
            if poll.is_pending() {
                bump(2);
            }
            poll
        }
    }

    struct CountBody<B>(B);

    impl<B: http_body::Body + Unpin> http_body::Body for CountBody<B> {
        type Data = B::Data;
        type Error = B::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
            bump(3);
            let poll = Pin::new(&mut self.0).poll_frame(cx);
            if poll.is_pending() {
                bump(4);
            }
            poll
        }
        fn is_end_stream(&self) -> bool {
            self.0.is_end_stream()
        }
        fn size_hint(&self) -> http_body::SizeHint {
            self.0.size_hint()
        }
    }

    fn report(what: &str, counts: [u64; 5]) {
        let n = counts[0].max(1) as f64;
        println!(
            "{what:<44} {:>6} requests: future polled {:.2}/request ({:.2} Pending), body \
             polled {:.2}/request ({:.2} Pending)",
            counts[0],
            counts[1] as f64 / n,
            counts[2] as f64 / n,
            counts[3] as f64 / n,
            counts[4] as f64 / n,
        );
    }

    pub(super) fn run(requests: usize) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // In memory: a single-frame body, the layer around a handler that answers at once.
            for kind in [Kind::Hmac, Kind::Asymmetric, Kind::Both] {
                let layer = DtSignatureLayer::from(kind.verifier().unwrap());
                let inner = tower::service_fn(|request: Request<DtBody>| async move {
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    Ok::<_, std::convert::Infallible>(http::Response::new(body.len().to_string()))
                });
                let service = CountLayer.layer(layer.layer(inner));
                let (hmac, es256) = super::both_tokens(EVENT);
                take();
                for _ in 0..requests {
                    let request = Request::post("/")
                        .header(super::X_DT_SIGNATURE, &hmac)
                        .header(super::DT_ASYMMETRIC_SIGNATURE, &es256)
                        .body(Full::new(Bytes::from_static(EVENT)))
                        .unwrap();
                    let response = service.clone().oneshot(request).await.unwrap();
                    assert_eq!(*response.body(), EVENT.len().to_string());
                }
                report(&format!("in memory, Full body, {}", kind.name()), take());
            }

            // Over loopback: axum + hyper, the counting wrapper outermost.
            for kind in [Kind::Bare, Kind::Hmac, Kind::Asymmetric, Kind::Both] {
                let router = Router::new().route("/", post(handler));
                let app = match kind.verifier() {
                    None => router.layer(tower::layer::layer_fn(|inner| {
                        Count(tower::util::MapRequest::new(
                            inner,
                            |r: Request<CountBody<Body>>| r.map(Body::new),
                        ))
                    })),
                    Some(verifier) => router.layer(DtSignatureLayer::from(verifier)).layer(
                        tower::layer::layer_fn(|inner| {
                            Count(tower::util::MapRequest::new(
                                inner,
                                |r: Request<CountBody<Body>>| r.map(Body::new),
                            ))
                        }),
                    ),
                };
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let server = tokio::spawn(async move { axum::serve(listener, app).await });
                let request = request_both("/", EVENT);
                let mut stream = connect(addr).await;
                let mut buf = Vec::new();
                take();
                for _ in 0..requests {
                    stream.write_all(&request).await.unwrap();
                    assert_eq!(read_response(&mut stream, &mut buf).await, 200);
                }
                report(&format!("loopback, axum + hyper, {}", kind.name()), take());
                server.abort();
            }
        });
    }
}
