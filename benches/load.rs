//! End-to-end load: a bare axum server against the same server behind `DtSignatureLayer`.
//!
//! ```text
//! cargo bench --bench load                    # the whole comparison, about a minute
//! cargo bench --bench load -- --quick         # fewer, shorter rounds
//! cargo bench --bench load -- --no-pin        # do not pin processes to CPUs
//! cargo bench --bench load -- --memory-only   # only the 1 MiB upload part
//! ```
//!
//! The benchmark starts itself twice more in server mode, one process per server, so each
//! server's peak RSS (`VmHWM`) is its own; both listen on 127.0.0.1. Its load generator
//! writes pre-built HTTP/1.1 requests on keep-alive connections (one request in flight per
//! connection, like DT) and reads the responses, which costs far less than either server,
//! so the servers are what is measured. The same bytes go to both servers: a 518-byte DT
//! temperature event with a token signed at start-up. Rounds alternate the servers (A B,
//! then B A) so that background noise falls on both. With two CPUs or more and `taskset`
//! installed, the servers run on CPU 1 and the load generator on CPU 0.
//!
//! It prints requests/s, p50, p99 and server CPU time per request at 16 and 256
//! connections, then the peak RSS of fresh servers under 64 concurrent 1 MiB uploads, and
//! shows that a forged or expired token with a declared 1 MiB body is refused before the
//! client has sent a single body byte.
//!
//! Other modes, for profiling one server (see BENCHMARKS.md):
//!
//! ```text
//! cargo bench --bench load -- server <bare|layer|in-handler>  # prints "listening <addr>", stops on stdin EOF
//! cargo bench --bench load -- drive <addr> <requests> <connections>
//! ```

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
use tower_dt_signature::DtSignatureLayer;

const SECRET: &str = "test-secret";
/// A real DT temperature event body, 518 bytes.
const EVENT: &[u8] = include_bytes!("../tests/data/dt-events/temperature.json");
const MIB: usize = 1024 * 1024;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// For profiling: no layer, the handler calls `Verifier::verify` itself.
    InHandler,
    Bare,
    Layer,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Bare => "bare",
            Kind::Layer => "layer",
            Kind::InHandler => "in-handler",
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; everything else is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["server", kind] => server(match *kind {
            "bare" => Kind::Bare,
            "layer" => Kind::Layer,
            "in-handler" => Kind::InHandler,
            other => panic!("unknown server {other:?}: bare, layer or in-handler"),
        }),
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
            Kind::Layer => router.layer(DtSignatureLayer::new(SECRET)),
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
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the parenthesised command name; utime and stime are 14 and 15.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
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
        let peaks = [Kind::Bare, Kind::Layer].map(|kind| {
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
    let server = ServerProcess::spawn(Kind::Layer, server_cpu);
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

/// Target 1: requests/s and latency at 16 and 256 connections, servers alternated.
fn throughput(
    runtime: &tokio::runtime::Runtime,
    server_cpu: Option<usize>,
    rounds: usize,
    window: Duration,
) {
    let token = dt_token(EVENT, 0, SECRET);
    let small = Arc::new(request("/", &token, EVENT));
    let servers = [
        ServerProcess::spawn(Kind::Bare, server_cpu),
        ServerProcess::spawn(Kind::Layer, server_cpu),
    ];
    println!(
        "\n{}-byte DT event, keep-alive, one request in flight per connection",
        EVENT.len()
    );
    println!(
        "{:>5}  {:>5}  {:>10}  {:>8}  {:>8}  {:>12}",
        "conns", "server", "req/s", "p50 us", "p99 us", "cpu us/req"
    );
    for connections in [16, 256] {
        let mut totals = [Window::default(), Window::default()];
        let mut round_ratios = Vec::new();
        for round in 0..rounds {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            let mut rps = [0.0; 2];
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
            round_ratios.push(rps[1] / rps[0]);
        }
        let [mut bare, mut layer] = totals;
        let (bare_p50, bare_p99) = (bare.percentile(0.50), bare.percentile(0.99));
        let (layer_p50, layer_p99) = (layer.percentile(0.50), layer.percentile(0.99));
        for (name, w, p50, p99) in [
            ("bare", &bare, bare_p50, bare_p99),
            ("layer", &layer, layer_p50, layer_p99),
        ] {
            println!(
                "{connections:>5}  {name:>6}  {:>10.0}  {p50:>8.0}  {p99:>8.0}  {:>12.1}",
                w.rps(),
                w.cpu_us_per_request()
            );
        }
        round_ratios.sort_by(f64::total_cmp);
        println!(
            "{connections:>5}  ratio   req/s {:.3} (target >= 0.90; per round {:.3}..{:.3}), \
             p50 {:.2}, p99 {:.2} (target <= 1.2), cpu/req {:.2}",
            layer.rps() / bare.rps(),
            round_ratios[0],
            round_ratios[round_ratios.len() - 1],
            layer_p50 / bare_p50,
            layer_p99 / bare_p99,
            layer.cpu_us_per_request() / bare.cpu_us_per_request(),
        );
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
    let token = dt_token(EVENT, 0, SECRET);
    let request = Arc::new(request("/", &token, EVENT));
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
