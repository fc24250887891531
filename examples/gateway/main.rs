//! One gateway for many DT Data Connectors: each connector posts to `/dt/{connector}` and
//! is verified with its own secret; verified events are de-duplicated and forwarded to an
//! upstream URL; `/metrics` serves the outcomes for Prometheus.
//!
//! ```text
//! GATEWAY_CONNECTORS='warehouse=secret-1,office=secret-2' \
//! GATEWAY_UPSTREAM=http://127.0.0.1:9000/events \
//! RUST_LOG=info,tower_dt_signature=debug \
//! cargo run --features metrics,dedup --example gateway
//! ```
//!
//! Each connector has a scheme and, for the asymmetric ones, the DT organization its
//! events must belong to: `name=secret` (HMAC), `name=hmac:secret`,
//! `name=asymmetric:org-id`, `name=both:secret:org-id`, `name=either:secret:org-id`. The
//! asymmetric ones share one key set, from `DT_OIDC_DISCOVERY_URL` (default DT's; feature
//! `jwks`) or `DT_JWKS_FILE` + `DT_ISSUER` (pinned; feature `asymmetric`).
//!
//! Optional: `GATEWAY_ADDR` (default `127.0.0.1:8080`), `GATEWAY_UPSTREAM_TIMEOUT_MS`
//! (default 5000; DT gives up after 10 s). Exits 2 on bad configuration.

mod app;
#[path = "../common/config.rs"]
mod config;

use std::process::ExitCode;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn config() -> Result<(app::Config, String), String> {
    let connectors = env("GATEWAY_CONNECTORS").ok_or("set GATEWAY_CONNECTORS=name=secret,...")?;
    // One key set for every asymmetric connector, made on first need.
    let mut keys = None;
    let connectors = connectors
        .split(',')
        .map(|entry| connector(entry, &mut keys))
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

/// One `GATEWAY_CONNECTORS` entry. Errors never echo the entry: it holds a secret.
fn connector(
    entry: &str,
    keys: &mut Option<KeysHandle>,
) -> Result<(String, tower_dt_signature::Verifier), String> {
    use tower_dt_signature::{verify::Policy, Verifier};
    let malformed = || {
        "GATEWAY_CONNECTORS: each entry must be name=secret, name=hmac:secret, \
         name=asymmetric:org-id, name=both:secret:org-id or name=either:secret:org-id"
            .to_owned()
    };
    let (name, spec) = entry.split_once('=').ok_or_else(malformed)?;
    let fields: Vec<&str> = spec.split(':').collect();
    let (policy, secret, org) = match fields.as_slice() {
        [secret] => (Policy::Hmac, Some(*secret), None),
        [scheme, rest @ ..] => match (scheme.parse::<Policy>(), rest) {
            (Ok(Policy::Hmac), [secret]) => (Policy::Hmac, Some(*secret), None),
            (Ok(Policy::Asymmetric), [org]) => (Policy::Asymmetric, None, Some(*org)),
            (Ok(policy @ (Policy::Both | Policy::Either)), [secret, org]) => {
                (policy, Some(*secret), Some(*org))
            }
            // A secret may hold a ':' itself: then it is a plain HMAC secret.
            (Err(_), _) => (Policy::Hmac, Some(spec), None),
            _ => return Err(malformed()),
        },
        [] => return Err(malformed()),
    };
    if name.is_empty() || secret == Some("") || org == Some("") {
        return Err(malformed());
    }
    let verifier = match (policy, secret) {
        (Policy::Hmac, Some(secret)) => Verifier::new(secret).require_sha256(true),
        _ => asymmetric_verifier(policy, secret, org.unwrap_or_default(), keys)?,
    };
    Ok((name.to_owned(), verifier))
}

#[cfg(feature = "asymmetric")]
type KeysHandle = tower_dt_signature::keys::DtKeys;
#[cfg(not(feature = "asymmetric"))]
type KeysHandle = ();

/// The verifier of an asymmetric connector, on the key set every such connector shares
/// (made on first need from the environment).
fn asymmetric_verifier(
    policy: tower_dt_signature::verify::Policy,
    secret: Option<&str>,
    org: &str,
    keys: &mut Option<KeysHandle>,
) -> Result<tower_dt_signature::Verifier, String> {
    #[cfg(feature = "asymmetric")]
    {
        if keys.is_none() {
            let source = config::key_source(|name| std::env::var(name).ok())?;
            *keys = Some(config::keys(&source)?);
        }
        let keys = keys.clone().expect("made above");
        Ok(config::verifier(policy, secret, keys, org))
    }
    #[cfg(not(feature = "asymmetric"))]
    {
        let _ = (secret, org, keys);
        Err(format!(
            "GATEWAY_CONNECTORS: the scheme {policy} needs the feature jwks (or asymmetric with DT_JWKS_FILE)"
        ))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    config::init_logging();

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
