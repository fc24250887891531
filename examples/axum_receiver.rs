//! A Data Connector receiver on axum, in the spirit of DT's Heroku example.
//!
//! ```text
//! DT_SIGNATURE_SECRET=<the connector's signature secret> PORT=8080 \
//!     cargo run --example axum_receiver
//!
//! # DT-Asymmetric-Signature (DT's keys, bound to your organization), during a migration:
//! DT_SIGNATURE_SCHEME=either DT_SIGNATURE_SECRET=<secret> DT_ORG_ID=<your DT org id> \
//!     cargo run --features jwks --example axum_receiver
//! ```
//!
//! `DT_SIGNATURE_SCHEME` is `hmac` (default), `asymmetric`, `both` or `either`; the
//! asymmetric ones need `DT_ORG_ID` and take DT's keys from `DT_OIDC_DISCOVERY_URL`
//! (default DT's production discovery URL) or pinned from `DT_JWKS_FILE` (+ `DT_ISSUER`):
//! see `examples/common/config.rs`. The receiver refuses to start, naming the variable,
//! on a missing, unused or malformed one.
//!
//! Point the Data Connector at `http://<host>:<PORT>/`. Only requests signed as
//! configured reach the handler; everything else is answered 400 (413 for a body over 1 MiB).
//! `GET /ready` (for a readiness probe, not signed) answers 503 with the reason until DT's
//! keys are loaded, then 200; at start-up the receiver logs where the keys come from and
//! the issuer, then the kids once loaded. `RUST_LOG` sets the log filter (default `info`):
//! the library's warnings (a wrong organization, an unknown `kid`) are `tracing` events,
//! seen only through a subscriber such as this one's. On SIGTERM or Ctrl-C it stops
//! accepting, lets requests in flight finish, and exits 0.

use std::net::Ipv4Addr;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Response, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::Value;
use tower::ServiceBuilder;
use tower_dt_signature::{DtClaims, DtSignatureError, DtSignatureLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultMakeSpan, TraceLayer};
use tracing::{info, warn, Level, Span};

#[path = "common/config.rs"]
mod config;
#[path = "common/shutdown.rs"]
mod shutdown;

use config::ready::Readiness;

#[tokio::main]
async fn main() {
    config::init_logging();

    // DT_SIGNATURE_SCHEME, DT_SIGNATURE_SECRET, DT_ORG_ID, DT_OIDC_DISCOVERY_URL,
    // DT_JWKS_FILE, DT_ISSUER: see examples/common/config.rs.
    let env = |name: &str| std::env::var(name).ok();
    let config = config::read(env).unwrap_or_else(|error| exit(&error));
    for warning in config::warnings(&config) {
        warn!("{warning}");
    }
    let (dt_signature, readiness) = config::layer(&config).unwrap_or_else(|error| exit(&error));
    readiness.log_start();
    let port = config::port(env).unwrap_or_else(|error| exit(&error));

    let app = app(dt_signature, readiness);
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
        .await
        .unwrap_or_else(|error| exit(&format!("cannot listen on port {port}: {error}")));
    info!("listening on {}", listener.local_addr().unwrap());
    serve(listener, app, shutdown::signal()).await;
}

/// Serves `app` until `shutdown` ends (SIGTERM or Ctrl-C), then lets the requests in
/// flight finish.
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .unwrap();
}

/// `POST /` for DT, and `GET /ready` beside it (outside the layers: a probe is not signed,
/// and is not logged at each call).
fn app(dt_signature: DtSignatureLayer, readiness: Readiness) -> Router {
    // Outermost first. TraceLayer sees every request and every answer, refusals included.
    // TimeoutLayer bounds the whole request, body upload included: DtSignatureLayer reads
    // the body inside its response future, so a client that stalls mid-body is cut off
    // (408) instead of holding a buffer. DtSignatureLayer sits innermost, next to the
    // handler, and enforces its own body limit (`max_body_size`, default 1 MiB), so a
    // `RequestBodyLimitLayer` is optional.
    Router::new()
        .route("/", post(receive))
        .layer(
            ServiceBuilder::new()
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                        .on_response(log_response),
                )
                // DT gives up after 10 s and retries; answer before that.
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    Duration::from_secs(5),
                ))
                .layer(dt_signature),
        )
        // Added after `.layer(...)`: outside those layers.
        .route("/ready", get(move || ready(readiness.clone())))
}

/// 200 once DT's keys are loaded (at once for `hmac`), else 503 with the reason.
async fn ready(readiness: Readiness) -> (StatusCode, String) {
    match readiness.check() {
        Ok(text) => (StatusCode::OK, text),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
    }
}

/// Runs only for requests DT signed; `body` holds the exact bytes DT sent.
async fn receive(Extension(claims): Extension<DtClaims>, body: Bytes) -> StatusCode {
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        warn!("signed body is not JSON");
        return StatusCode::BAD_REQUEST;
    };
    let event = &payload["event"];
    info!(
        event_id = event["eventId"].as_str(),
        event_type = event["eventType"].as_str(),
        schemes = ?claims.schemes(),
        org_id = claims.org_id(),
        jti = claims.jti(),
        "event received"
    );
    // Deliveries are at least once: de-duplicate on the event id before acting on it.
    StatusCode::OK
}

/// Logs every answer; a refusal carries the reason in its extensions.
fn log_response<B>(response: &Response<B>, latency: Duration, _span: &Span) {
    let status = response.status().as_u16();
    match response.extensions().get::<DtSignatureError>() {
        // The scheme tells HMAC from ES256 refusals under `both` and `either`.
        Some(error) => warn!(
            status,
            reason = error.reason(),
            scheme = error.scheme().map(|scheme| scheme.code()),
            ?latency,
            "refused"
        ),
        None => info!(status, ?latency, "answered"),
    }
}

fn exit(message: &str) -> ! {
    eprintln!("axum_receiver: {message}");
    std::process::exit(1)
}

/// `GET /ready` over real HTTP, against a local identity service on 127.0.0.1.
#[cfg(all(test, feature = "jwks", feature = "test-util"))]
mod tests {
    use super::*;
    use config::ready::route_test;

    #[tokio::test]
    async fn ready_is_503_with_the_reason_until_the_keys_load_then_200() {
        let (identity, layer, readiness) = route_test::receiver_before_the_keys().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app(layer, readiness)).await });
        route_test::check_ready_route(addr, &identity).await;
    }
}

/// SIGTERM over real HTTP, in a process of its own (examples/common/shutdown.rs).
#[cfg(all(test, unix, feature = "test-util"))]
mod sigterm {
    use super::*;
    use shutdown::sigterm_test::{check, is_child, LISTENING, SECRET};

    #[test]
    fn sigterm_lets_a_request_in_flight_finish_then_exits_0() {
        if !is_child() {
            check("sigterm::child");
        }
    }

    /// The receiver, in the child process of the test above.
    #[tokio::test]
    #[ignore = "the child process of sigterm_lets_a_request_in_flight_finish_then_exits_0"]
    async fn child() {
        if !is_child() {
            return;
        }
        let signal = shutdown::signal();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{LISTENING}{}", listener.local_addr().unwrap());
        let app = app(DtSignatureLayer::new(SECRET), Readiness::always());
        serve(listener, app, signal).await;
    }
}
