//! The receivers' readiness (`GET /ready`) and their start-up log lines about DT's keys
//! (a module of `examples/common/config.rs`, shared by both receivers).
//!
//! `GET /ready` is for a load balancer or an orchestrator's readiness probe: 503 with the
//! reason until DT's keys are loaded (so no traffic comes while every DT request would get
//! a 503 too), then 200. A receiver that checks only `X-Dt-Signature` is ready at once.

use tracing::info;

/// Whether the receiver can verify DT's requests yet. Cheap to clone (one key handle).
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    /// DT's keys, for a scheme that checks `DT-Asymmetric-Signature`, and where they
    /// come from (for the log).
    #[cfg(feature = "asymmetric")]
    keys: Option<(tower_dt_signature::keys::DtKeys, String)>,
}

impl Readiness {
    /// Ready at once: a scheme that needs no keys (`hmac`).
    pub fn always() -> Self {
        Self::default()
    }

    /// Ready once `keys` are loaded; `source` says where they come from (a discovery URL,
    /// a pinned file).
    #[cfg(feature = "asymmetric")]
    pub fn keys(keys: tower_dt_signature::keys::DtKeys, source: impl Into<String>) -> Self {
        Self {
            keys: Some((keys, source.into())),
        }
    }

    /// `Ok` with a line for a person when ready (answer 200), else `Err` with the reason
    /// (answer 503). The reason is the key set's last failure: its class and what went
    /// wrong (never a body or a credential). Also starts the key refresh if it is not
    /// running yet.
    pub fn check(&self) -> Result<String, String> {
        #[cfg(feature = "asymmetric")]
        if let Some((keys, _)) = &self.keys {
            if keys.ready() {
                return Ok(format!(
                    "ready: DT's keys are loaded (issuer {}, kids {})\n",
                    keys.issuer(),
                    keys.kids().join(", ")
                ));
            }
            let status = keys.status();
            return Err(match status.last_failure {
                Some(failure) => format!(
                    "not ready: DT's keys are not loaded ({} failed refreshes): {}: {}\n",
                    status.consecutive_failures, failure.class, failure.reason
                ),
                None => "not ready: DT's keys are not loaded yet\n".to_owned(),
            });
        }
        Ok("ready\n".to_owned())
    }

    /// The start-up log lines: where DT's keys come from and the issuer at once, then the
    /// issuer and the kids once the keys are loaded (a task that looks every 250 ms; a
    /// failed refresh logs its own warning meanwhile). Inside a tokio runtime.
    pub fn log_start(&self) {
        #[cfg(feature = "asymmetric")]
        if let Some((keys, source)) = self.keys.clone() {
            info!(%source, issuer = keys.issuer(), "DT's keys: loading");
            tokio::spawn(async move {
                while !keys.ready() {
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
                info!(issuer = keys.issuer(), kids = ?keys.kids(), "DT's keys: loaded");
            });
            return;
        }
        info!("X-Dt-Signature only: no keys to load");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheme_without_keys_is_ready_at_once() {
        assert_eq!(Readiness::always().check(), Ok("ready\n".to_owned()));
    }

    #[cfg(feature = "asymmetric")]
    #[test]
    fn pinned_keys_are_ready_at_once() {
        let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig","alg":"ES256",
          "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}"#;
        let keys =
            tower_dt_signature::keys::DtKeys::from_jwks("https://id.example/dc", jwks).unwrap();
        assert_eq!(
            Readiness::keys(keys, "k.json").check(),
            Ok("ready: DT's keys are loaded (issuer https://id.example/dc, kids k1)\n".to_owned())
        );
    }
}

/// The test of a receiver's `GET /ready` over real HTTP, shared by both receivers: a
/// receiver of a local identity service whose discovery document fails at first.
#[cfg(all(test, feature = "jwks", feature = "test-util"))]
pub mod route_test {
    use std::net::SocketAddr;
    use std::time::Duration;

    use http::StatusCode;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tower_dt_signature::testing::{Behavior, Endpoint, IdentityServer};
    use tower_dt_signature::DtSignatureLayer;

    use super::Readiness;

    const ORG: &str = "c0rg1d";

    /// An identity service on 127.0.0.1 that answers 500 for its discovery document and
    /// has one key, and the layer and readiness of an `asymmetric` receiver configured
    /// for it through the receivers' variables.
    pub async fn receiver_before_the_keys() -> (IdentityServer, DtSignatureLayer, Readiness) {
        let identity = IdentityServer::start().await;
        identity.set_behavior(
            Endpoint::Discovery,
            Behavior::Status(StatusCode::INTERNAL_SERVER_ERROR),
        );
        identity.new_signer(ORG);
        let url = identity.discovery_url();
        let config = super::super::read(|name| match name {
            "DT_SIGNATURE_SCHEME" => Some("asymmetric".into()),
            "DT_ORG_ID" => Some(ORG.into()),
            "DT_OIDC_DISCOVERY_URL" => Some(url.clone()),
            _ => None,
        })
        .unwrap();
        let (layer, readiness) = super::super::layer(&config).unwrap();
        (identity, layer, readiness)
    }

    /// The status and body of `GET /ready`, over a connection of its own.
    async fn get_ready(addr: SocketAddr) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /ready HTTP/1.1\r\nhost: receiver\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let status = answer[9..12].parse().unwrap();
        let body = answer.split_once("\r\n\r\n").unwrap().1.to_owned();
        (status, body)
    }

    /// `GET /ready` until `done` says yes (10 s at most: the key refresh retries after
    /// 1 s, then 2 s).
    async fn ready_until(addr: SocketAddr, done: impl Fn(&(u16, String)) -> bool) -> (u16, String) {
        let mut answer = get_ready(addr).await;
        for _ in 0..200 {
            if done(&answer) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            answer = get_ready(addr).await;
        }
        answer
    }

    /// The receiver at `addr`, made by [`receiver_before_the_keys`]: 503 with the reason
    /// while the discovery document fails, 200 naming the issuer and kid once it is served.
    pub async fn check_ready_route(addr: SocketAddr, identity: &IdentityServer) {
        let (status, reason) = get_ready(addr).await;
        assert_eq!(status, 503, "{reason}");
        assert!(
            reason.starts_with("not ready: DT's keys are not loaded"),
            "{reason}"
        );
        // Once the first refresh failed, the reason says why (never a body).
        let (status, reason) = ready_until(addr, |(_, body)| body.contains("http_status")).await;
        assert_eq!(status, 503, "{reason}");
        assert!(
            reason.contains("http_status") && reason.contains("500"),
            "{reason}"
        );
        assert!(!reason.contains("failure on demand"), "no body: {reason}");

        identity.set_behavior(Endpoint::Discovery, Behavior::Normal);
        let (status, text) = ready_until(addr, |(status, _)| *status == 200).await;
        assert_eq!(status, 200, "{text}");
        let kid = &identity.kids()[0];
        assert!(
            text.contains(kid.as_str()) && text.contains(identity.issuer()),
            "{text}"
        );
    }
}
