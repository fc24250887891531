//! `dt-signature serve`: the storing receiver in one command. `POST /` verifies each DT
//! request with the library's layer, stores it with `tower-dt-store` (SQLite by default),
//! and answers `200` only once it is durable; `GET /ready` and `GET /metrics` beside it.
//!
//! The configuration is the receivers' own: `examples/common/config.rs` reads the
//! variables for the examples and for this command (included here with `#[path]`, so
//! there is one reader and no copy), each variable with a flag that overrides it.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower::{ServiceBuilder, ServiceExt};
use tower_dt_signature::DtSignatureError;
use tower_dt_store::{Backend, DeadlineLayer, DtStore, StoreErrorKind, StoreReport};
use tracing::{error, info, warn};

use crate::store_url::{self, StoreUrl};
use crate::EXIT_USAGE;

#[path = "../../examples/common/config.rs"]
#[allow(unreachable_pub, clippy::all)]
mod config;

use config::ready::Readiness;

/// The name on every line the command prints.
const NAME: &str = "dt-signature serve";

const SERVE_HELP: &str = r#"Receive DT's Data Connector events, verify them, store each one durably and once, and answer 200 only then.

POST / takes DT's pushes: each is verified (DT_SIGNATURE_SCHEME: X-Dt-Signature under
DT_SIGNATURE_SECRET, DT-Asymmetric-Signature under DT's keys for DT_ORG_ID), stored in
DT_STORE (one row per event id, the newest per device and type in dt_latest; on NATS
one JetStream message per event id, which your consumers read) and answered 200 once
durable; a refusal is 400 (413 over --max-body-size), a store failure or a missed
--deadline 503, so that DT retries. GET /ready is 200 once DT's keys are loaded and the
store answers, else 503 with the reason. GET /metrics is Prometheus' text.

DT_STORE is one of:

    sqlite:PATH                                 (default sqlite:dt-events.db)
    postgres://USER[:PASSWORD]@HOST[:PORT]/DB
    nats://[USER:PASSWORD@]HOST:PORT[,nats://HOST:PORT...][?creds=FILE]
    tls://[USER:PASSWORD@]HOST:PORT[?ca=FILE]   (NATS over TLS)

On NATS the stream DT_EVENTS (subjects dt.>) is created when missing, and the body limit
follows the server's max_payload: without --max-body-size it is the smaller of 1 MiB and
max_payload minus 16 KiB for the headers; a --max-body-size that does not fit exits 2.

Every option has an environment variable, which the flag overrides. DT only pushes to
HTTPS: run this behind a TLS proxy (see the README's "Serving HTTPS").

Examples:

    DT_SIGNATURE_SECRET=change-me dt-signature serve
    DT_SIGNATURE_SECRET=change-me DT_STORE=postgres://dt@127.0.0.1/dt dt-signature serve --port 9000
    DT_SIGNATURE_SECRET=change-me DT_STORE=nats://dt:secret@127.0.0.1:4222 dt-signature serve
    DT_SIGNATURE_SCHEME=asymmetric DT_ORG_ID=<your org id> dt-signature serve

SIGTERM or Ctrl-C stops accepting, answers what is in flight, commits what is queued,
and exits 0 within --shutdown-timeout. Exit status 2: bad configuration (it names the
variable); 1: the receiver failed."#;

/// The options of `dt-signature serve` (`--help` prints them with examples).
#[derive(Debug, clap::Args)]
#[command(
    about = "Receive DT's events: verify, store durably and once, then answer",
    long_about = SERVE_HELP
)]
pub struct Args {
    /// hmac (default), asymmetric, both or either.
    #[arg(long, env = "DT_SIGNATURE_SCHEME", value_name = "SCHEME")]
    scheme: Option<String>,

    /// The connector's signature secret (hmac, both, either). Prefer the variable: a
    /// flag is visible to other users in the process list.
    #[arg(
        long,
        env = "DT_SIGNATURE_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    secret: Option<String>,

    /// Your DT organization id (asymmetric, both, either).
    #[arg(long, env = "DT_ORG_ID", value_name = "ID")]
    org_id: Option<String>,

    /// DT's OpenID Connect discovery URL. Default: DT's production one.
    #[arg(long, env = "DT_OIDC_DISCOVERY_URL", value_name = "URL")]
    discovery_url: Option<String>,

    /// Pinned keys: a JWK Set file instead of discovery.
    #[arg(long, env = "DT_JWKS_FILE", value_name = "FILE")]
    jwks_file: Option<String>,

    /// The issuer of --jwks-file. Default: DT's production issuer.
    #[arg(long, env = "DT_ISSUER", value_name = "ISS")]
    issuer: Option<String>,

    /// Where events are stored: sqlite:PATH (default sqlite:dt-events.db, in the working
    /// directory), postgres://USER[:PASSWORD]@HOST[:PORT]/DB, or a NATS JetStream stream:
    /// nats://[USER:PASSWORD@]HOST:PORT[?creds=FILE], tls://HOST:PORT[?ca=FILE].
    #[arg(long, env = "DT_STORE", value_name = "STORE")]
    store: Option<String>,

    /// The port to listen on.
    #[arg(long, env = "PORT", value_name = "PORT")]
    port: Option<String>,

    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0", value_name = "ADDR")]
    host: IpAddr,

    /// The largest body accepted, in bytes (413 above it). Default 1048576 (1 MiB), or
    /// what the store can take when that is less (NATS: max_payload minus 16 KiB).
    #[arg(long, value_name = "BYTES")]
    max_body_size: Option<usize>,

    /// Seconds from a request's head to its answer: past it the answer is 503, never a
    /// late 200. DT gives up at 10 s; the default leaves 2 s for the network and a proxy.
    #[arg(long, default_value = "8", value_name = "SECS", value_parser = parse_secs)]
    deadline: Duration,

    /// Serve /metrics on this address instead of beside POST / (e.g. 127.0.0.1:9090).
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,

    /// Seconds to finish in-flight requests after SIGTERM or Ctrl-C (below Kubernetes'
    /// 30 s grace period).
    #[arg(long, default_value = "25", value_name = "SECS", value_parser = parse_secs)]
    shutdown_timeout: Duration,
}

fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs < 3600.0) {
        return Err(format!("{text:?} must be between 0 and 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// What every connection's requests share.
struct State {
    dt: tower::util::BoxCloneSyncService<Request<Incoming>, Response<Full<Bytes>>, Infallible>,
    readiness: Readiness,
    backend: Arc<Box<dyn Backend>>,
    metrics: Option<PrometheusHandle>,
}

/// Runs `dt-signature serve` until SIGTERM or Ctrl-C. Needs a tokio runtime.
pub async fn run(args: Args) -> ExitCode {
    init_logging();
    match start(args).await {
        Ok(code) => code,
        Err(Refusal::Config(message)) => {
            eprintln!("{NAME}: {message}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Refusal::Failed(message)) => {
            eprintln!("{NAME}: {message}");
            ExitCode::FAILURE
        }
    }
}

enum Refusal {
    Config(String),
    Failed(String),
}

fn init_logging() {
    // The receivers' own: RUST_LOG (default info), colour only on a terminal.
    config::init_logging();
}

async fn start(args: Args) -> Result<ExitCode, Refusal> {
    let var = |name: &str| -> Option<String> {
        match name {
            "DT_SIGNATURE_SCHEME" => args.scheme.clone(),
            "DT_SIGNATURE_SECRET" => args.secret.clone(),
            "DT_ORG_ID" => args.org_id.clone(),
            "DT_OIDC_DISCOVERY_URL" => args.discovery_url.clone(),
            "DT_JWKS_FILE" => args.jwks_file.clone(),
            "DT_ISSUER" => args.issuer.clone(),
            _ => None,
        }
    };
    let (layer, readiness) = config::read(var)
        .and_then(|config| config::layer(&config))
        .map_err(Refusal::Config)?;
    let port = match args.port.as_deref().filter(|port| !port.is_empty()) {
        None => 8080,
        Some(text) => text
            .parse::<u16>()
            .map_err(|_| Refusal::Config(format!("PORT={text:?} must be a port number")))?,
    };
    let store = args
        .store
        .clone()
        .filter(|store| !store.is_empty())
        .unwrap_or_else(|| store_url::DEFAULT.to_owned());
    let url = StoreUrl::parse(&store).map_err(Refusal::Config)?;
    let opened = url
        .open(args.max_body_size)
        .await
        .map_err(|error| match error.kind() {
            StoreErrorKind::Config | StoreErrorKind::SchemaTooNew => {
                Refusal::Config(format!("DT_STORE={}: {error}", url.redacted()))
            }
            _ => Refusal::Failed(format!("DT_STORE={}: {error}", url.redacted())),
        })?;
    let max_body_size = body_limit(args.max_body_size, &url, &opened);
    let layer = layer.max_body_size(max_body_size);
    let backend: Arc<Box<dyn Backend>> = Arc::new(opened.backend);

    let metrics = recorder()
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|error| {
            Refusal::Failed(format!("cannot install the metrics recorder: {error}"))
        })?;
    // `# HELP` and units for every metric: `promtool check metrics` wants them.
    tower_dt_signature::describe_metrics();
    tower_dt_store::describe_metrics();

    let store = DtStore::from_arc(backend.clone()).deadline(args.deadline);
    let dt = ServiceBuilder::new()
        .layer(DeadlineLayer::new(args.deadline))
        .layer(layer)
        .service(store);
    let separate_metrics = args.metrics_addr.is_some();
    let state = Arc::new(State {
        dt: tower::util::BoxCloneSyncService::new(dt),
        readiness: readiness.clone(),
        backend: backend.clone(),
        metrics: (!separate_metrics).then(|| metrics.clone()),
    });

    let listener = tokio::net::TcpListener::bind((args.host, port))
        .await
        .map_err(|error| {
            Refusal::Config(format!("cannot listen on {}:{port}: {error}", args.host))
        })?;
    if let Some(addr) = args.metrics_addr {
        let metrics_listener = tokio::net::TcpListener::bind(addr).await.map_err(|error| {
            Refusal::Config(format!("--metrics-addr: cannot listen on {addr}: {error}"))
        })?;
        tokio::spawn(serve_metrics(metrics_listener, metrics));
    }
    readiness.log_start();
    let local = listener
        .local_addr()
        .map_err(|error| Refusal::Failed(error.to_string()))?;
    // Listen for the signals before saying we are up: a SIGTERM right after the line
    // must stop the receiver cleanly.
    let shutdown = shutdown_signal().map_err(Refusal::Failed)?;
    info!(
        "listening on http://{local}, storing into {} (deadline {:?}, bodies up to {max_body_size} bytes)",
        backend.describe(),
        args.deadline
    );
    match backend.ready().await {
        Ok(()) => info!("store ready"),
        Err(error) => warn!(%error, "store not ready yet: /ready answers 503 until it is"),
    }
    serve(listener, state, shutdown, args.shutdown_timeout).await;
    backend.close().await;
    info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The layer's body limit: the one the user set (a store with a limit of its own already
/// refused it if it does not fit), else the default, lowered to what the store can keep.
/// A NATS server that has not answered yet has not said its `max_payload`: then NATS's
/// default (1 MiB) is assumed, and said.
fn body_limit(explicit: Option<usize>, url: &StoreUrl, opened: &store_url::Opened) -> usize {
    use tower_dt_signature::consts::DEFAULT_MAX_BODY_SIZE;
    use tower_dt_store::nats::HEADER_ALLOWANCE;
    /// nats-server's own default `max_payload`.
    const NATS_DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;
    if let Some(explicit) = explicit {
        return explicit;
    }
    match opened.max_body_size {
        Some(room) if room < DEFAULT_MAX_BODY_SIZE => {
            info!(
                max_body_size = room,
                "the body limit follows the store: {} bytes, its max_payload ({} bytes) minus {HEADER_ALLOWANCE} for the headers (--max-body-size sets another that fits)",
                room,
                room + HEADER_ALLOWANCE
            );
            room
        }
        Some(_) => DEFAULT_MAX_BODY_SIZE,
        None if url.is_queue() => {
            let assumed = DEFAULT_MAX_BODY_SIZE.min(NATS_DEFAULT_MAX_PAYLOAD - HEADER_ALLOWANCE);
            warn!(
                max_body_size = assumed,
                "NATS has not answered yet, so its max_payload is not known: bodies up to {assumed} bytes (NATS's default max_payload minus {HEADER_ALLOWANCE} for the headers); if the server's is smaller, larger bodies get 503: set --max-body-size to fit it"
            );
            assumed
        }
        None => DEFAULT_MAX_BODY_SIZE,
    }
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())
        .map_err(|error| format!("cannot wait for SIGTERM: {error}"))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|error| format!("cannot wait for Ctrl-C: {error}"))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: shutting down"),
            _ = int.recv() => info!("Ctrl-C: shutting down"),
        }
    })
}

async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    shutdown: impl std::future::Future<Output = ()>,
    bound: Duration,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let state = state.clone();
                let service = hyper::service::service_fn(move |request| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(route(&state, request).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service);
                let watched = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = watched.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    // In-flight requests end within their deadline (503 at the latest); idle
    // keep-alive connections close now.
    tokio::select! {
        () = graceful.shutdown() => info!("every connection closed"),
        () = tokio::time::sleep(bound) => warn!(?bound, "connections still open at the shutdown bound: closing them"),
    }
}

async fn route(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    match (request.method(), path) {
        (&Method::POST, "/") => {
            let response = match state.dt.clone().oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            log(&response);
            response
        }
        (&Method::GET, "/ready") => ready(state).await,
        (&Method::GET, "/metrics") if state.metrics.is_some() => {
            metrics_response(state.metrics.as_ref().expect("checked"))
        }
        (_, "/") => text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// One line per event (id, type, device, outcome); a refusal's reason and scheme at warn.
/// Never a secret, a token or a body.
fn log(response: &Response<Full<Bytes>>) {
    let status = response.status().as_u16();
    if let Some(report) = response.extensions().get::<StoreReport>() {
        let outcome = report.outcome;
        if outcome.is_durable() {
            info!(
                status,
                event_id = %report.key,
                event_type = report.event_type.as_deref(),
                device = report.device.as_deref(),
                tenant = %report.tenant,
                %outcome,
                "event"
            );
        } else {
            warn!(
                status,
                event_id = %report.key,
                event_type = report.event_type.as_deref(),
                device = report.device.as_deref(),
                %outcome,
                "event not stored: DT retries"
            );
        }
    } else if let Some(refusal) = response.extensions().get::<DtSignatureError>() {
        warn!(
            status,
            reason = refusal.reason(),
            scheme = refusal.scheme().map(|scheme| scheme.code()),
            "refused"
        );
    } else if status >= 500 {
        error!(status, "answered without storing");
    } else {
        warn!(status, "answered without storing");
    }
}

async fn ready(state: &State) -> Response<Full<Bytes>> {
    let keys = state.readiness.check();
    let store = match tokio::time::timeout(Duration::from_secs(2), state.backend.ready()).await {
        Ok(Ok(())) => Ok(format!(
            "the store answers ({})\n",
            state.backend.describe()
        )),
        Ok(Err(error)) => Err(format!(
            "not ready: the store {} does not answer: {error}\n",
            state.backend.describe()
        )),
        Err(_) => Err(format!(
            "not ready: the store {} did not answer within 2 s\n",
            state.backend.describe()
        )),
    };
    match (keys, store) {
        (Ok(keys), Ok(store)) => text_owned(StatusCode::OK, format!("{keys}{store}")),
        (keys, store) => {
            let mut reason = String::new();
            for part in [keys, store] {
                if let Err(text) = part {
                    reason.push_str(&text);
                }
            }
            text_owned(StatusCode::SERVICE_UNAVAILABLE, reason)
        }
    }
}

/// The histograms' buckets (Prometheus histograms, not the exporter's default summaries:
/// a summary's quantiles cannot be combined across replicas), by metric.
pub const BUCKETS: &[(&str, &[f64])] = &[
    // Token check and hashing: microseconds to a slow millisecond.
    (
        "dt_signature_verification_seconds",
        &[0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05],
    ),
    // DT's bodies are a few hundred bytes; the layer's default limit is 1 MiB.
    (
        "dt_signature_body_bytes",
        &[
            256.0, 512.0, 1024.0, 2048.0, 4096.0, 16384.0, 65536.0, 1048576.0,
        ],
    ),
    // Delays: seconds (normal delivery) up to DT's 12 h of retries, with the lag alert's
    // bound (300 s) on a bucket edge.
    ("dt_signature_signing_lag_seconds", LATENESS),
    ("dt_store_event_age_seconds", LATENESS),
    // A WAL fsync (milliseconds) up to the default deadline (8 s).
    (
        "dt_store_commit_seconds",
        &[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 8.0,
        ],
    ),
    // Powers of two up to SQLite's default largest batch (256).
    (
        "dt_store_batch_size",
        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
    ),
];

/// Seconds late: the event age and the signing lag.
const LATENESS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 10800.0, 43200.0,
];

/// The Prometheus recorder with [`BUCKETS`].
fn recorder() -> Result<PrometheusBuilder, metrics_exporter_prometheus::BuildError> {
    BUCKETS
        .iter()
        .try_fold(PrometheusBuilder::new(), |builder, (name, buckets)| {
            builder.set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full((*name).to_owned()),
                buckets,
            )
        })
}

fn metrics_response(handle: &PrometheusHandle) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(handle.render())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn serve_metrics(listener: tokio::net::TcpListener, handle: PrometheusHandle) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handle = handle.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let handle = handle.clone();
            async move {
                Ok::<_, Infallible>(match (request.method(), request.uri().path()) {
                    (&Method::GET, "/metrics") => metrics_response(&handle),
                    _ => text(StatusCode::NOT_FOUND, "not found\n"),
                })
            }
        });
        tokio::spawn(async move {
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    text_owned(status, body.to_owned())
}

fn text_owned(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
