//! A Data Connector receiver on plain hyper 1 and tower, without axum.
//!
//! ```text
//! DT_SIGNATURE_SECRET=<the connector's signature secret> PORT=8080 \
//!     cargo run --example hyper_receiver
//!
//! # DT-Asymmetric-Signature (DT's keys, bound to your organization), during a migration:
//! DT_SIGNATURE_SCHEME=either DT_SIGNATURE_SECRET=<secret> DT_ORG_ID=<your DT org id> \
//!     cargo run --features jwks --example hyper_receiver
//! ```
//!
//! `DT_SIGNATURE_SCHEME` is `hmac` (default), `asymmetric`, `both` or `either`; the
//! asymmetric ones need `DT_ORG_ID` and take DT's keys from `DT_OIDC_DISCOVERY_URL`
//! (default DT's production discovery URL) or pinned from `DT_JWKS_FILE` (+ `DT_ISSUER`):
//! see `examples/common/config.rs`. The receiver refuses to start, naming the variable,
//! on a missing, unused or malformed one.
//!
//! Point the Data Connector at `http://<host>:<PORT>/`. Only requests signed as
//! configured reach `receive`; everything else is answered 400 (413 for a body over 1 MiB).
//! `GET /ready` (for a readiness probe, not signed) answers 503 with the reason until DT's
//! keys are loaded, then 200; at start-up the receiver logs where the keys come from and
//! the issuer, then the kids once loaded. `RUST_LOG` sets the log filter (default `info`):
//! the library's warnings (a wrong organization, an unknown `kid`) are `tracing` events,
//! seen only through a subscriber such as this one's. On SIGTERM or Ctrl-C it stops
//! accepting, lets requests in flight finish, and exits 0.

use std::convert::Infallible;
use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt as _};
use tower_dt_signature::{DtBody, DtClaims, DtSignatureError, DtSignatureLayer};
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

    let service = app(dt_signature, readiness);

    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
        .await
        .unwrap_or_else(|error| exit(&format!("cannot listen on port {port}: {error}")));
    info!("listening on {}", listener.local_addr().unwrap());
    serve(listener, service, shutdown::signal()).await;
}

/// Serves `service` until `signal` ends (SIGTERM or Ctrl-C), then lets the requests in
/// flight finish.
async fn serve<S, B>(listener: TcpListener, service: S, signal: impl Future<Output = ()>)
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes, Error = BoxError> + Send + 'static,
{
    // Every connection holds a receiver; on the signal they finish their current request
    // and close, and `closed()` below waits for the last one.
    let (shutdown, connections) = watch::channel(());
    let mut signal = pin!(signal);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    warn!(%error, "accept failed");
                    continue;
                }
            },
            _ = &mut signal => break,
        };
        let service = TowerToHyperService::new(service.clone());
        let mut stop = connections.clone();
        tokio::spawn(async move {
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            let mut connection = pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                warn!(%error, "connection failed");
            }
        });
    }
    info!("shutting down");
    drop(connections);
    let _ = shutdown.send(());
    shutdown.closed().await;
}

/// `GET /ready` (not signed, not logged at each call), and everything else through the
/// layers to `receive`.
fn app(
    dt_signature: DtSignatureLayer,
    readiness: Readiness,
) -> impl Service<
    Request<Incoming>,
    Response = Response<impl Body<Data = Bytes, Error = BoxError> + use<>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    // Outermost first; see examples/axum_receiver.rs for why in this order. The rejection
    // body is made from a `&'static str`, which `Full<Bytes>` accepts.
    let signed = ServiceBuilder::new()
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(log_response),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(5),
        ))
        .layer(dt_signature)
        .service_fn(receive);
    tower::service_fn(move |request: Request<Incoming>| {
        let (signed, readiness) = (signed.clone(), readiness.clone());
        async move {
            if request.method() == Method::GET && request.uri().path() == "/ready" {
                let (status, text) = match readiness.check() {
                    Ok(text) => (StatusCode::OK, text),
                    Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
                };
                let mut response = Response::new(Either::Left(Full::from(text)));
                *response.status_mut() = status;
                return Ok(response);
            }
            let response = signed.oneshot(request).await?;
            Ok(response.map(Either::Right))
        }
    })
}

/// Runs only for requests DT signed; the body holds the exact bytes DT sent.
async fn receive(request: Request<DtBody>) -> Result<Response<Full<Bytes>>, Infallible> {
    let jti = request
        .extensions()
        .get::<DtClaims>()
        .and_then(|claims| claims.jti().map(str::to_owned));
    // The bytes are already in memory: no await, no error.
    let body = request.into_body().into_bytes();
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        warn!("signed body is not JSON");
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    let event = &payload["event"];
    info!(
        event_id = event["eventId"].as_str(),
        event_type = event["eventType"].as_str(),
        jti,
        "event received"
    );
    // Deliveries are at least once: de-duplicate on the event id before acting on it.
    Ok(status(StatusCode::OK))
}

fn status(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::default());
    *response.status_mut() = status;
    response
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
    eprintln!("hyper_receiver: {message}");
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
        let service = app(layer, readiness);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let service = TowerToHyperService::new(service.clone());
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
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
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{LISTENING}{}", listener.local_addr().unwrap());
        let service = app(DtSignatureLayer::new(SECRET), Readiness::always());
        serve(listener, service, signal).await;
    }
}
