//! The verifier `dt-signature explain` checks with, from its options and the receivers'
//! `DT_*` variables: the secret, the keys, the organization, the policy and the clock.
//! Like [`input`](super::input), this decides nothing about a request.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tower_dt_signature::keys::{DtKeys, OrgId};
use tower_dt_signature::{verify::Policy, Verifier};

/// What the user asked for, before it is checked.
#[derive(Clone, Default)]
pub struct Options {
    /// `--secret-file`.
    pub secret_file: Option<PathBuf>,
    /// `--secret` (a warning about shell history is printed).
    pub secret: Option<String>,
    /// `--policy`.
    pub policy: Option<Policy>,
    /// `--org-id`: the bare id or `organizations/<id>`.
    pub org_id: Option<String>,
    /// `--discovery`.
    pub discovery: Option<String>,
    /// `--jwks`.
    pub jwks: Option<PathBuf>,
    /// `--issuer`.
    pub issuer: Option<String>,
    /// `--at`.
    pub at: Option<String>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("secret_file", &self.secret_file)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("policy", &self.policy)
            .field("org_id", &self.org_id)
            .field("discovery", &self.discovery)
            .field("jwks", &self.jwks)
            .field("issuer", &self.issuer)
            .field("at", &self.at)
            .finish()
    }
}

/// The verifier and what it was made of, for the report.
#[derive(Debug)]
pub struct Setup {
    /// The library's verifier, configured as asked.
    pub verifier: Verifier,
    /// Its policy.
    pub policy: Policy,
    /// The clock it verifies at, if not now.
    pub at: Option<SystemTime>,
    /// Where the secret came from (`--secret-file PATH`, `DT_SIGNATURE_SECRET`, ...): never
    /// the secret.
    pub secret_from: Option<String>,
    /// The keys' issuer and the `kid`s loaded.
    pub keys: Option<(String, Vec<String>)>,
    /// Why the keys' last refresh failed (`--discovery`): its class and reason, from the
    /// library's `DtKeys::status`.
    pub keys_failure: Option<String>,
    /// Warnings to print before the verdict.
    pub warnings: Vec<String>,
    /// The secret, for the hints' variants only (never printed; `Debug` hides it).
    pub secret: Option<HiddenSecret>,
    /// The organization given, for the hints (not a secret).
    pub org_id: Option<String>,
}

/// The secret, kept for the hints: its `Debug` never shows it.
#[derive(Clone)]
pub struct HiddenSecret(pub String);

impl std::fmt::Debug for HiddenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The verifier `options` and `env` (the environment, or a map in tests) describe; the
/// error is the one line to print (exit status 2).
pub fn setup(options: Options, env: impl Fn(&str) -> Option<String>) -> Result<Setup, String> {
    let env = |name: &str| env(name).filter(|value| !value.is_empty());
    let mut warnings = Vec::new();

    let (secret, secret_from) = match (&options.secret_file, options.secret.clone()) {
        (Some(_), Some(_)) => return Err("--secret and --secret-file: give one".into()),
        (Some(path), None) => (
            Some(read_secret_file(path)?),
            Some(format!("--secret-file {}", path.display())),
        ),
        (None, Some(secret)) => {
            warnings.push(
                "warning: --secret leaves the secret in your shell history: prefer \
                 --secret-file or DT_SIGNATURE_SECRET"
                    .to_owned(),
            );
            (Some(secret), Some("--secret".to_owned()))
        }
        (None, None) => match env("DT_SIGNATURE_SECRET") {
            Some(secret) => (Some(secret), Some("DT_SIGNATURE_SECRET".to_owned())),
            None => (None, None),
        },
    };
    if secret.as_deref() == Some("") {
        return Err("the secret is empty".into());
    }

    let keys = keys(&options, &env)?;

    let policy = match options.policy {
        Some(policy) => policy,
        None => match env("DT_SIGNATURE_SCHEME") {
            Some(text) => text.parse().map_err(|_| {
                format!(
                    "DT_SIGNATURE_SCHEME={text:?} is unknown: use hmac, asymmetric, both or either"
                )
            })?,
            None => match (&secret, &keys) {
                (Some(_), Some(_)) => Policy::Either,
                (Some(_), None) => Policy::Hmac,
                (None, Some(_)) => Policy::Asymmetric,
                (None, None) => {
                    return Err(
                        "nothing to verify with: give the secret (--secret-file FILE or \
                                DT_SIGNATURE_SECRET) or DT's keys (--discovery URL, or --jwks FILE --issuer ISS)"
                            .into(),
                    )
                }
            },
        },
    };
    let secret = match (policy.uses_hmac(), secret) {
        (true, None) => {
            return Err(format!(
                "policy {policy} needs the secret: --secret-file FILE or DT_SIGNATURE_SECRET"
            ))
        }
        (_, secret) => secret.filter(|_| policy.uses_hmac()),
    };
    let asymmetric = if policy.uses_asymmetric() {
        let keys = keys.ok_or_else(|| {
            format!("policy {policy} needs DT's keys: --discovery URL, or --jwks FILE --issuer ISS")
        })?;
        let (org, from) = match options.org_id {
            Some(org) => (org, "--org-id"),
            None => (
                env("DT_ORG_ID").ok_or_else(|| {
                    format!(
                        "policy {policy} needs your DT organization: --org-id ID (or DT_ORG_ID)"
                    )
                })?,
                "DT_ORG_ID",
            ),
        };
        let org = OrgId::try_new(&org).map_err(|error| format!("{from} {org:?}: {error}"))?;
        Some((keys, org))
    } else {
        None
    };
    let hidden = secret.clone().map(HiddenSecret);
    let org_id = asymmetric
        .as_ref()
        .and_then(|(_, org)| org.as_str().map(str::to_owned));
    let keys_shown = asymmetric
        .as_ref()
        .map(|(keys, _)| (keys.issuer().to_owned(), keys.kids()));
    let keys_failure = asymmetric.as_ref().and_then(|(keys, _)| {
        let status = keys.status();
        let failure = status.last_failure.filter(|_| !status.loaded)?;
        Some(format!("{}: {}", failure.class, failure.reason))
    });

    let verifier = match (secret, asymmetric) {
        (Some(secret), None) => Verifier::try_new(secret).map_err(|error| error.to_string())?,
        (None, Some((keys, org))) => Verifier::asymmetric(keys, org),
        (Some(secret), Some((keys, org))) => {
            // try_new first: both and either panic on an empty secret.
            let _ = Verifier::try_new(&secret).map_err(|error| error.to_string())?;
            match policy {
                Policy::Both => Verifier::both(secret, keys, org),
                _ => Verifier::either(secret, keys, org),
            }
        }
        (None, None) => return Err(format!("policy {policy} is not supported by explain")),
    };
    let at = options.at.as_deref().map(parse_time).transpose()?;
    let verifier = match at {
        Some(at) => verifier.clock(move || at),
        None => verifier,
    };
    Ok(Setup {
        verifier,
        policy,
        at,
        secret_from: secret_from.filter(|_| policy.uses_hmac()),
        keys: keys_shown,
        keys_failure,
        warnings,
        secret: hidden,
        org_id,
    })
}

/// DT's keys: pinned from `--jwks` (or `DT_JWKS_FILE`) for `--issuer` (or `DT_ISSUER`, else
/// DT's production issuer), or through discovery at `--discovery` (or
/// `DT_OIDC_DISCOVERY_URL`), waited for up to [`DISCOVERY_WAIT`]; `None` when neither is
/// given.
fn keys(options: &Options, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<DtKeys>, String> {
    let jwks = options
        .jwks
        .clone()
        .or_else(|| env("DT_JWKS_FILE").map(PathBuf::from));
    let discovery = options
        .discovery
        .clone()
        .or_else(|| env("DT_OIDC_DISCOVERY_URL"));
    match (jwks, discovery) {
        (Some(_), Some(_)) => Err("--jwks and --discovery (or DT_JWKS_FILE and \
                                   DT_OIDC_DISCOVERY_URL): give one"
            .into()),
        (Some(path), None) => {
            let issuer = options
                .issuer
                .clone()
                .or_else(|| env("DT_ISSUER"))
                .unwrap_or_else(|| tower_dt_signature::consts::DT_ISSUER.to_owned());
            let keys = DtKeys::from_jwks_file(issuer, &path)
                .map_err(|error| format!("--jwks {}: {error}", path.display()))?;
            Ok(Some(keys))
        }
        (None, _) if options.issuer.is_some() => Err(
            "--issuer names the issuer of --jwks FILE: give --jwks too (discovery reads \
                 the issuer from the document)"
                .into(),
        ),
        (None, Some(url)) => {
            // The refresh task runs on the caller's tokio runtime (main enters one).
            let keys =
                DtKeys::discover(&url).map_err(|error| format!("--discovery {url}: {error}"))?;
            // Until the first refresh ends, loaded or failed: it ends within the library's
            // budget, so its outcome (a failure's class included) is the verdict's input.
            let started = Instant::now();
            while !keys.ready()
                && keys.status().last_refresh.is_none()
                && started.elapsed() < DISCOVERY_WAIT
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(Some(keys))
        }
        (None, None) => Ok(None),
    }
}

/// How long `--discovery` waits at most for the first refresh to end. It ends within the
/// library's 5 s budget; this bound only matters on a machine too loaded to run its
/// timer. Keys not loaded by then are the library's verdict (`keys_unavailable`), not an
/// input error.
pub const DISCOVERY_WAIT: Duration = Duration::from_secs(15);

/// The secret in the file at `path`: its text, without one final line ending (what
/// `echo secret > file` adds). Any other whitespace is kept, as DT Studio keeps it.
fn read_secret_file(path: &std::path::Path) -> Result<String, String> {
    let bytes = std::fs::read(path)
        .map_err(|error| format!("--secret-file: cannot read {}: {error}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        format!(
            "--secret-file {}: the secret is not UTF-8 text",
            path.display()
        )
    })?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    Ok(text.to_owned())
}

/// `--at`: Unix seconds, or an RFC 3339 time.
pub fn parse_time(text: &str) -> Result<SystemTime, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return UNIX_EPOCH
            .checked_add(Duration::from_secs(secs))
            .ok_or_else(|| format!("--at {text}: out of range"));
    }
    let time = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| {
        format!(
            "--at {text:?}: not Unix seconds or an RFC 3339 time (such as 2022-02-10T12:42:13Z)"
        )
    })?;
    Ok(SystemTime::from(time.with_timezone(&chrono::Utc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn times() {
        assert_eq!(
            parse_time("1644496933").unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_644_496_933)
        );
        assert_eq!(
            parse_time("2022-02-10T12:42:13Z").unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_644_496_933)
        );
        assert_eq!(
            parse_time("2022-02-10T13:42:13+01:00").unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_644_496_933)
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("-5").is_err());
    }

    #[test]
    fn the_policy_follows_what_is_given() {
        let env = |name: &str| (name == "DT_SIGNATURE_SECRET").then(|| "s".to_owned());
        let setup = setup(Options::default(), env).unwrap();
        assert_eq!(setup.policy, Policy::Hmac);
        assert_eq!(setup.secret_from.as_deref(), Some("DT_SIGNATURE_SECRET"));
        let error = super::setup(Options::default(), no_env).unwrap_err();
        assert!(error.contains("nothing to verify with"), "{error}");
        let options = Options {
            policy: Some(Policy::Asymmetric),
            ..Options::default()
        };
        let error = super::setup(options, env).unwrap_err();
        assert!(error.contains("needs DT's keys"), "{error}");
    }

    /// `--org-id` (or `DT_ORG_ID`) in either form is the library's `OrgId`; what is no
    /// org id is a usage error naming where it came from.
    #[test]
    fn the_org_id_is_checked_by_the_library() {
        let jwks = std::env::temp_dir().join(format!("dt-explain-org-{}.json", std::process::id()));
        std::fs::write(&jwks, r#"{"keys":[]}"#).unwrap();
        let with = |flag: Option<&str>, var: Option<&str>| {
            let options = Options {
                policy: Some(Policy::Asymmetric),
                jwks: Some(jwks.clone()),
                org_id: flag.map(str::to_owned),
                ..Options::default()
            };
            setup(options, |name| {
                (name == "DT_ORG_ID")
                    .then(|| var.map(str::to_owned))
                    .flatten()
            })
        };
        for org in ["c0rg1d", "organizations/c0rg1d", "dt"] {
            assert!(with(Some(org), None).is_ok(), "--org-id {org}");
            assert!(with(None, Some(org)).is_ok(), "DT_ORG_ID={org}");
        }
        let error = with(Some("organizations/c0rg1d/x"), None).unwrap_err();
        assert!(
            error.starts_with("--org-id ") && error.contains("contains `/`"),
            "{error}"
        );
        let error = with(None, Some("c0rg1d\n")).unwrap_err();
        assert!(
            error.starts_with("DT_ORG_ID ") && error.contains("whitespace"),
            "{error}"
        );
        std::fs::remove_file(&jwks).unwrap();
    }

    #[test]
    fn secret_flag_warns_and_debug_hides_it() {
        let options = Options {
            secret: Some("hunter2-secret".into()),
            ..Options::default()
        };
        assert!(!format!("{options:?}").contains("hunter2"));
        let setup = setup(options, no_env).unwrap();
        assert!(setup.warnings[0].contains("shell history"));
        assert!(!format!("{setup:?}").contains("hunter2"));
    }
}
