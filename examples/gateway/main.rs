//! One gateway for many DT Data Connectors: each connector posts to `/dt/{connector}` and
//! is verified with its own secret; verified events are de-duplicated and forwarded to an
//! upstream URL; `/metrics` serves the outcomes for Prometheus.
//!
//! ```text
//! GATEWAY_CONNECTORS='warehouse=secret-1,office=secret-2' \
//! GATEWAY_UPSTREAM=http://127.0.0.1:9000/events \
//! RUST_LOG=info,tower_dt_signature=debug \
//! cargo run --features metrics --example gateway
//! ```
//!
//! Optional: `GATEWAY_ADDR` (default `127.0.0.1:8080`), `GATEWAY_UPSTREAM_TIMEOUT_MS`
//! (default 5000; DT gives up after 10 s). Exits 2 on bad configuration.

mod app;

use std::process::ExitCode;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn config() -> Result<(app::Config, String), String> {
    let connectors = env("GATEWAY_CONNECTORS").ok_or("set GATEWAY_CONNECTORS=name=secret,...")?;
    let connectors = connectors
        .split(',')
        .map(|pair| match pair.split_once('=') {
            Some((name, secret)) if !name.is_empty() && !secret.is_empty() => {
                Ok((name.to_owned(), secret.to_owned()))
            }
            // Never echo the pair: it holds a secret.
            _ => Err("GATEWAY_CONNECTORS: each entry must be name=secret".to_owned()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let upstream = env("GATEWAY_UPSTREAM")
        .ok_or("set GATEWAY_UPSTREAM=http://host:port/path")?
        .parse()
        .map_err(|error| format!("GATEWAY_UPSTREAM: {error}"))?;
    let timeout_ms = env("GATEWAY_UPSTREAM_TIMEOUT_MS")
        .map(|ms| ms.parse::<u64>())
        .transpose()
        .map_err(|error| format!("GATEWAY_UPSTREAM_TIMEOUT_MS: {error}"))?
        .unwrap_or(5_000);
    let addr = env("GATEWAY_ADDR").unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let config = app::Config {
        connectors,
        upstream,
        upstream_timeout: Duration::from_millis(timeout_ms),
        metrics: None,
    };
    Ok((config, addr))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let (mut config, addr) = match config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("gateway: {error}");
            return ExitCode::from(2);
        }
    };

    // The Prometheus recorder, rendered by the gateway's own `/metrics` route: no second
    // HTTP server. Histograms need their upkeep run now and then.
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .expect("no other metrics recorder is installed");
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    config.metrics = Some(handle);

    let connectors: Vec<_> = config
        .connectors
        .iter()
        .map(|(name, _)| name.clone())
        .collect();
    let app = app::router(config);
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("gateway: cannot listen on {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%addr, ?connectors, "gateway listening");
    if let Err(error) = axum::serve(listener, app).await {
        eprintln!("gateway: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
