//! The gateway's router, kept apart from `main` so that `tests/it/gateway.rs` runs the very
//! same stack against a real upstream.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Router};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceBuilder;
use tower_dt_signature::dedup::{DedupLayer, MemoryStore};
use tower_dt_signature::gateway::{StaticSecrets, TenantId};
use tower_dt_signature::{DtSignatureLayer, Verifier};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// The header that tells the upstream which connector an event came from.
pub const X_DT_CONNECTOR: &str = "x-dt-connector";

/// What the gateway serves and where it forwards to.
pub struct Config {
    /// `(connector, its verifier)`: events arrive at `POST /dt/{connector}`, checked with
    /// the connector's scheme (an HMAC secret, DT's keys and an org, or both).
    pub connectors: Vec<(String, Verifier)>,
    /// Every verified event is `POST`ed here, with the same bytes.
    pub upstream: Uri,
    /// How long the upstream may take to answer. Keep it well under DT's 10 s.
    pub upstream_timeout: Duration,
    /// Serve `GET /metrics` in the Prometheus text format from this handle.
    pub metrics: Option<PrometheusHandle>,
}

#[derive(Clone)]
struct Upstream {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
    timeout: Duration,
}

/// The gateway: `POST /dt/{connector}` verified with that connector's secret,
/// de-duplicated on `event.eventId`, forwarded upstream; `GET /metrics`; request ids and
/// a trace span on every request.
///
pub fn router(config: Config) -> Router {
    let secrets = config.connectors.iter().fold(
        StaticSecrets::by_path_segment(1),
        |secrets, (id, verifier)| secrets.tenant(id.as_str(), verifier.clone()),
    );
    let upstream = Upstream {
        client: Client::builder(TokioExecutor::new()).build_http(),
        uri: config.upstream,
        timeout: config.upstream_timeout,
    };

    // Innermost first: the handler, then the duplicate guard (it needs the verified
    // body), then verification.
    let events = Router::new()
        .route("/dt/{connector}", post(forward))
        .layer(DedupLayer::with_store(MemoryStore::new(50_000)))
        .layer(DtSignatureLayer::gateway(secrets))
        .with_state(upstream);
    let metrics = config.metrics;
    let app = match metrics {
        Some(handle) => events.route("/metrics", get(move || async move { handle.render() })),
        None => events,
    };

    // Outermost: a request id (kept if the client sent one), a trace span that shows it,
    // and the id copied onto the response.
    app.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
                    let id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id = id)
                }),
            )
            .layer(PropagateRequestIdLayer::x_request_id()),
    )
}

/// Forward one verified event upstream. Any failure there becomes a 502 (unreachable,
/// or a non-2xx answer) or a 504 (no answer in time): DT retries every non-2xx, and the
/// duplicate guard lets that retry through.
async fn forward(
    State(upstream): State<Upstream>,
    Extension(connector): Extension<TenantId>,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let mut request = Request::post(upstream.uri.clone())
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header(X_DT_CONNECTOR, connector.as_str());
    if let Some(id) = headers.get("x-request-id") {
        request = request.header("x-request-id", id);
    }
    let request = request
        .body(Full::new(body))
        .expect("a valid upstream request");

    match tokio::time::timeout(upstream.timeout, upstream.client.request(request)).await {
        Ok(Ok(response)) if response.status().is_success() => {
            tracing::info!(%connector, "event forwarded");
            (StatusCode::OK, "forwarded").into_response()
        }
        Ok(Ok(response)) => {
            tracing::warn!(%connector, status = %response.status(), "upstream refused the event");
            (StatusCode::BAD_GATEWAY, "upstream refused the event").into_response()
        }
        Ok(Err(error)) => {
            tracing::warn!(%connector, %error, "upstream unreachable");
            (StatusCode::BAD_GATEWAY, "upstream unreachable").into_response()
        }
        Err(_) => {
            tracing::warn!(%connector, "upstream timed out");
            (StatusCode::GATEWAY_TIMEOUT, "upstream timed out").into_response()
        }
    }
}
