//! The receivers' configuration, read from the environment (shared by
//! `examples/axum_receiver.rs` and `examples/hyper_receiver.rs`).
//!
//! | variable | used by | default |
//! | --- | --- | --- |
//! | `DT_SIGNATURE_SCHEME` | all: `hmac`, `asymmetric`, `both` or `either` | `hmac` |
//! | `DT_SIGNATURE_SECRET` | `hmac`, `both`, `either` (required) | - |
//! | `DT_ORG_ID` | `asymmetric`, `both`, `either` (required): your DT organization, `<id>` or `organizations/<id>` | - |
//! | `DT_OIDC_DISCOVERY_URL` | the asymmetric schemes, unless `DT_JWKS_FILE` | DT's production discovery URL |
//! | `DT_JWKS_FILE` | the asymmetric schemes: pinned keys instead of discovery | - |
//! | `DT_ISSUER` | with `DT_JWKS_FILE`: the issuer of the pinned keys | DT's production issuer |
//! | `PORT` | the port to listen on ([`port`]) | `8080` |
//!
//! A receiver refuses to start, naming the variable, when a required one is missing or
//! empty, `DT_ORG_ID` is not an organization id (whitespace, or a `/` after one leading
//! `organizations/`), the scheme is unknown, a variable is set that the scheme does not use, or the
//! discovery URL does not end in `/.well-known/openid-configuration` or is plain http to a
//! host that is not loopback. The asymmetric schemes need the feature `jwks` (discovery)
//! or `asymmetric` (with `DT_JWKS_FILE`).

#![allow(dead_code)] // each receiver uses a part

use tower_dt_signature::{verify::Policy, DtSignatureLayer};

#[path = "ready.rs"]
pub mod ready;

use ready::Readiness;

/// Where the asymmetric keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// OpenID Connect discovery at this URL.
    Discovery(String),
    /// Pinned keys from this JWKS file, for this issuer.
    Pinned { file: String, issuer: String },
}

/// What the environment asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub policy: Policy,
    pub secret: Option<String>,
    pub org_id: Option<String>,
    pub keys: Option<KeySource>,
}

const DISCOVERY_SUFFIX: &str = "/.well-known/openid-configuration";

/// Logs to stdout at the level `RUST_LOG` asks for (default `info`), coloured only when
/// stdout is a terminal and `NO_COLOR` is unset: a log file or a pipe gets plain text.
pub fn init_logging() {
    use std::io::IsTerminal as _;
    let ansi = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(ansi)
        .init();
}

/// Read the configuration through `var` (the environment, or a map in tests).
pub fn read(var: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
    // An empty variable is a missing one.
    let get = |name: &str| var(name).filter(|value| !value.is_empty());
    let set = |name: &str| var(name).is_some();
    let policy = match get("DT_SIGNATURE_SCHEME") {
        None => Policy::Hmac,
        Some(text) => text.parse::<Policy>().map_err(|_| {
            format!("DT_SIGNATURE_SCHEME={text:?} is unknown: use hmac, asymmetric, both or either")
        })?,
    };
    let unused = |name: &str| -> Result<(), String> {
        if set(name) {
            return Err(format!(
                "{name} is set but DT_SIGNATURE_SCHEME={policy} does not use it"
            ));
        }
        Ok(())
    };
    let required = |name: &str| {
        get(name).ok_or_else(|| format!("{name} is required with DT_SIGNATURE_SCHEME={policy}"))
    };

    let secret = if policy.uses_hmac() {
        Some(required("DT_SIGNATURE_SECRET")?)
    } else {
        unused("DT_SIGNATURE_SECRET")?;
        None
    };
    if !policy.uses_asymmetric() {
        for name in [
            "DT_ORG_ID",
            "DT_OIDC_DISCOVERY_URL",
            "DT_JWKS_FILE",
            "DT_ISSUER",
        ] {
            unused(name)?;
        }
        return Ok(Config {
            policy,
            secret,
            org_id: None,
            keys: None,
        });
    }
    let org_id = required("DT_ORG_ID")?;
    // The library's rules: `organizations/<id>` or the bare id, no whitespace, no other `/`.
    #[cfg(feature = "asymmetric")]
    tower_dt_signature::keys::OrgId::try_new(&org_id)
        .map_err(|error| format!("DT_ORG_ID={org_id:?}: {error}"))?;
    let org_id = Some(org_id);
    let keys = match get("DT_JWKS_FILE") {
        Some(file) => {
            if set("DT_OIDC_DISCOVERY_URL") {
                return Err("DT_OIDC_DISCOVERY_URL and DT_JWKS_FILE are both set: use one".into());
            }
            let issuer =
                get("DT_ISSUER").unwrap_or_else(|| tower_dt_signature::consts::DT_ISSUER.into());
            KeySource::Pinned { file, issuer }
        }
        None => {
            unused_with_discovery(set("DT_ISSUER"))?;
            let url = get("DT_OIDC_DISCOVERY_URL")
                .unwrap_or_else(|| tower_dt_signature::consts::DT_DISCOVERY_URL.into());
            check_discovery_url(&url)?;
            KeySource::Discovery(url)
        }
    };
    Ok(Config {
        policy,
        secret,
        org_id,
        keys: Some(keys),
    })
}

/// `PORT` through `var`: the port to listen on, 8080 when unset or empty.
pub fn port(var: impl Fn(&str) -> Option<String>) -> Result<u16, String> {
    match var("PORT").filter(|value| !value.is_empty()) {
        None => Ok(8080),
        Some(text) => text
            .parse()
            .map_err(|_| format!("PORT={text:?} must be a port number (0 to 65535)")),
    }
}

/// What to warn about at start-up, the configuration still used as given: a secret with
/// whitespace at its start or end (a secret file that ends in a newline). DT uses the
/// secret exactly as typed in DT Studio, so it is not trimmed. Never shows the secret.
pub fn warnings(config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(secret) = &config.secret {
        if secret.trim() != secret {
            warnings.push(
                "DT_SIGNATURE_SECRET has whitespace at its start or end (a secret file that \
                 ends in a newline?): it is used as given, as DT uses the secret exactly as \
                 typed in DT Studio; remove the whitespace if DT's requests are refused"
                    .to_owned(),
            );
        }
    }
    warnings
}

fn unused_with_discovery(issuer_set: bool) -> Result<(), String> {
    if issuer_set {
        return Err("DT_ISSUER is set but only DT_JWKS_FILE uses it (discovery reads the issuer from the document)".into());
    }
    Ok(())
}

/// The discovery URL's rules: the OIDC suffix, and https unless the host is loopback.
fn check_discovery_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| format!("DT_OIDC_DISCOVERY_URL={url:?} is not a URL"))?;
    if !uri.path().ends_with(DISCOVERY_SUFFIX) || uri.query().is_some() {
        return Err(format!(
            "DT_OIDC_DISCOVERY_URL must end in {DISCOVERY_SUFFIX}"
        ));
    }
    let loopback = match uri.host() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    };
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if loopback => Ok(()),
        Some("http") => Err(
            "DT_OIDC_DISCOVERY_URL is plain http to a host that is not loopback: use https".into(),
        ),
        _ => Err("DT_OIDC_DISCOVERY_URL must be an https URL".into()),
    }
}

/// The layer the configuration describes, and the receiver's readiness (`GET /ready`:
/// DT's keys loaded).
pub fn layer(config: &Config) -> Result<(DtSignatureLayer, Readiness), String> {
    let secret = config.secret.as_deref();
    if config.policy == Policy::Hmac {
        let secret = secret.expect("hmac has a secret");
        let layer = DtSignatureLayer::try_new(secret)
            .map_err(|error| format!("DT_SIGNATURE_SECRET: {error}"))?;
        return Ok((layer, Readiness::always()));
    }
    asymmetric_layer(config)
}

impl std::fmt::Display for KeySource {
    /// Where the keys come from, for a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Discovery(url) => write!(f, "discovery URL {url}"),
            Self::Pinned { file, .. } => write!(f, "pinned key set {file}"),
        }
    }
}

/// The key handle `source` describes (one per process, cloned into every layer).
#[cfg(feature = "asymmetric")]
pub fn keys(source: &KeySource) -> Result<tower_dt_signature::keys::DtKeys, String> {
    use tower_dt_signature::keys::DtKeys;
    match source {
        KeySource::Pinned { file, issuer } => DtKeys::from_jwks_file(issuer.as_str(), file)
            .map_err(|error| format!("DT_JWKS_FILE: {error}")),
        #[cfg(feature = "jwks")]
        KeySource::Discovery(url) => {
            DtKeys::discover(url).map_err(|error| format!("DT_OIDC_DISCOVERY_URL: {error}"))
        }
        #[cfg(not(feature = "jwks"))]
        KeySource::Discovery(_) => Err(
            "discovery needs the feature jwks: cargo run --features jwks ... (or set DT_JWKS_FILE)"
                .into(),
        ),
    }
}

/// Where the keys come from when no scheme variable says: `DT_JWKS_FILE` (with
/// `DT_ISSUER`) or `DT_OIDC_DISCOVERY_URL` (default DT's), with the same rules as [`read`].
pub fn key_source(var: impl Fn(&str) -> Option<String>) -> Result<KeySource, String> {
    let mut vars = vec![
        ("DT_SIGNATURE_SCHEME", "asymmetric".to_owned()),
        ("DT_ORG_ID", "-".to_owned()),
    ];
    for name in ["DT_OIDC_DISCOVERY_URL", "DT_JWKS_FILE", "DT_ISSUER"] {
        if let Some(value) = var(name) {
            vars.push((name, value));
        }
    }
    let config = read(|name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    })?;
    Ok(config.keys.expect("asymmetric schemes have keys"))
}

#[cfg(feature = "asymmetric")]
fn asymmetric_layer(config: &Config) -> Result<(DtSignatureLayer, Readiness), String> {
    let source = config.keys.as_ref().expect("asymmetric schemes have keys");
    let keys = keys(source)?;
    let org = config
        .org_id
        .as_deref()
        .expect("asymmetric schemes have an org");
    let org = tower_dt_signature::keys::OrgId::try_new(org)
        .map_err(|error| format!("DT_ORG_ID={org:?}: {error}"))?;
    let readiness = Readiness::keys(keys.clone(), source.to_string());
    let verifier = verifier(config.policy, config.secret.as_deref(), keys, org);
    Ok((DtSignatureLayer::from(verifier), readiness))
}

/// The verifier of an asymmetric `policy` (`asymmetric`, `both` or `either`; the last two
/// need the `secret`).
#[cfg(feature = "asymmetric")]
pub fn verifier(
    policy: Policy,
    secret: Option<&str>,
    keys: tower_dt_signature::keys::DtKeys,
    org: impl Into<tower_dt_signature::keys::OrgId>,
) -> tower_dt_signature::Verifier {
    use tower_dt_signature::Verifier;
    let secret = || secret.expect("both and either have a secret");
    match policy {
        Policy::Asymmetric => Verifier::asymmetric(keys, org),
        Policy::Both => Verifier::both(secret(), keys, org),
        _ => Verifier::either(secret(), keys, org),
    }
}

#[cfg(not(feature = "asymmetric"))]
fn asymmetric_layer(config: &Config) -> Result<(DtSignatureLayer, Readiness), String> {
    Err(format!(
        "DT_SIGNATURE_SCHEME={} needs the feature jwks: cargo run --features jwks --example ...",
        config.policy
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read_with(vars: &[(&str, &str)]) -> Result<Config, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        read(|name| vars.get(name).cloned())
    }

    #[test]
    fn hmac_is_the_default_and_needs_the_secret() {
        let config = read_with(&[("DT_SIGNATURE_SECRET", "s")]).unwrap();
        assert_eq!(
            (config.policy, config.secret.as_deref()),
            (Policy::Hmac, Some("s"))
        );
        for vars in [&[][..], &[("DT_SIGNATURE_SECRET", "")][..]] {
            let error = read_with(vars).unwrap_err();
            assert!(error.contains("DT_SIGNATURE_SECRET is required"), "{error}");
        }
    }

    #[test]
    fn every_refusal_names_its_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("DT_SIGNATURE_SCHEME", "rsa"), ("DT_SIGNATURE_SECRET", "s")],
                "DT_SIGNATURE_SCHEME",
            ),
            (
                &[("DT_SIGNATURE_SECRET", "s"), ("DT_ORG_ID", "o")],
                "DT_ORG_ID is set",
            ),
            (
                &[
                    ("DT_SIGNATURE_SECRET", "s"),
                    (
                        "DT_OIDC_DISCOVERY_URL",
                        "https://x/.well-known/openid-configuration",
                    ),
                ],
                "DT_OIDC_DISCOVERY_URL is set",
            ),
            (
                &[("DT_SIGNATURE_SCHEME", "asymmetric")],
                "DT_ORG_ID is required",
            ),
            (
                &[
                    ("DT_SIGNATURE_SCHEME", "asymmetric"),
                    ("DT_ORG_ID", "o"),
                    ("DT_SIGNATURE_SECRET", "s"),
                ],
                "DT_SIGNATURE_SECRET is set",
            ),
            (
                &[("DT_SIGNATURE_SCHEME", "both"), ("DT_ORG_ID", "o")],
                "DT_SIGNATURE_SECRET is required",
            ),
            (
                &[
                    ("DT_SIGNATURE_SCHEME", "either"),
                    ("DT_SIGNATURE_SECRET", "s"),
                ],
                "DT_ORG_ID is required",
            ),
            (
                &[
                    ("DT_SIGNATURE_SCHEME", "asymmetric"),
                    ("DT_ORG_ID", "o"),
                    ("DT_OIDC_DISCOVERY_URL", "https://id.example/data-connector"),
                ],
                "must end in /.well-known/openid-configuration",
            ),
            (
                &[
                    ("DT_SIGNATURE_SCHEME", "asymmetric"),
                    ("DT_ORG_ID", "o"),
                    (
                        "DT_OIDC_DISCOVERY_URL",
                        "http://id.example/.well-known/openid-configuration",
                    ),
                ],
                "plain http",
            ),
            (
                &[
                    ("DT_SIGNATURE_SCHEME", "asymmetric"),
                    ("DT_ORG_ID", "o"),
                    ("DT_ISSUER", "https://x"),
                ],
                "DT_ISSUER is set",
            ),
            (
                &[
                    ("DT_SIGNATURE_SCHEME", "asymmetric"),
                    ("DT_ORG_ID", "o"),
                    ("DT_JWKS_FILE", "k.json"),
                    (
                        "DT_OIDC_DISCOVERY_URL",
                        "https://x/.well-known/openid-configuration",
                    ),
                ],
                "both set",
            ),
        ];
        for (vars, needle) in cases {
            let error = read_with(vars).unwrap_err();
            assert!(error.contains(needle), "{vars:?}: {error}");
        }
    }

    /// `DT_ORG_ID` in either form is accepted; what is no org id is refused by name.
    #[cfg(feature = "asymmetric")]
    #[test]
    fn dt_org_id_is_checked_by_the_library() {
        let with_org = |org: &str| {
            read_with(&[
                ("DT_SIGNATURE_SCHEME", "asymmetric"),
                ("DT_ORG_ID", org),
                ("DT_JWKS_FILE", "k.json"),
            ])
        };
        for org in ["c0rg1d", "organizations/c0rg1d", "dt"] {
            assert_eq!(with_org(org).unwrap().org_id.as_deref(), Some(org));
        }
        for (org, needle) in [
            ("organizations/", "is empty"),
            ("c0rg1d\n", "whitespace"),
            (" c0rg1d", "whitespace"),
            ("organizations/c0rg1d/members", "contains `/`"),
            ("organizations/organizations/c0rg1d", "contains `/`"),
        ] {
            let error = with_org(org).unwrap_err();
            assert!(
                error.starts_with("DT_ORG_ID=") && error.contains(needle),
                "{org:?}: {error}"
            );
        }
    }

    #[test]
    fn the_asymmetric_schemes_default_to_dts_discovery() {
        let config = read_with(&[
            ("DT_SIGNATURE_SCHEME", "either"),
            ("DT_SIGNATURE_SECRET", "s"),
            ("DT_ORG_ID", "o"),
        ])
        .unwrap();
        assert_eq!(config.policy, Policy::Either);
        assert_eq!(
            config.keys,
            Some(KeySource::Discovery(
                tower_dt_signature::consts::DT_DISCOVERY_URL.into()
            ))
        );
        let loopback = read_with(&[
            ("DT_SIGNATURE_SCHEME", "asymmetric"),
            ("DT_ORG_ID", "o"),
            (
                "DT_OIDC_DISCOVERY_URL",
                "http://127.0.0.1:8090/data-connector/.well-known/openid-configuration",
            ),
        ])
        .unwrap();
        assert!(matches!(loopback.keys, Some(KeySource::Discovery(_))));
        let pinned = read_with(&[
            ("DT_SIGNATURE_SCHEME", "asymmetric"),
            ("DT_ORG_ID", "o"),
            ("DT_JWKS_FILE", "k.json"),
        ])
        .unwrap();
        assert_eq!(
            pinned.keys,
            Some(KeySource::Pinned {
                file: "k.json".into(),
                issuer: tower_dt_signature::consts::DT_ISSUER.into()
            })
        );
    }

    #[test]
    fn port_quotes_a_bad_value() {
        let port = |value: Option<&str>| port(|_| value.map(str::to_owned));
        assert_eq!(port(None), Ok(8080));
        assert_eq!(port(Some("")), Ok(8080));
        assert_eq!(port(Some("9000")), Ok(9000));
        assert_eq!(
            port(Some("80a")),
            Err(r#"PORT="80a" must be a port number (0 to 65535)"#.to_owned())
        );
        assert!(port(Some("70000")).unwrap_err().contains(r#""70000""#));
    }

    #[test]
    fn a_secret_with_whitespace_is_warned_about_and_kept() {
        let config = read_with(&[("DT_SIGNATURE_SECRET", "s3cret\n")]).unwrap();
        assert_eq!(config.secret.as_deref(), Some("s3cret\n"), "used as given");
        let warnings = warnings(&config);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("whitespace at its start or end"));
        assert!(!warnings[0].contains("s3cret"), "never the secret");
        let config = read_with(&[("DT_SIGNATURE_SECRET", " s")]).unwrap();
        assert_eq!(super::warnings(&config).len(), 1);
        let config = read_with(&[("DT_SIGNATURE_SECRET", "s")]).unwrap();
        assert!(super::warnings(&config).is_empty());
    }
}
