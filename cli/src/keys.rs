//! `dt-signature keys`: what DT's key source says, seen through the library's own
//! discovery path. One refresh, as a receiver's `DtKeys::discover` makes it (the same
//! client, rules, limits and 5 s budget), reported by the library's `KeyProbe`: the
//! discovery document, each key and whether it was loaded, the cache headers and the
//! refresh they imply, the times, and on failure its class. `--jwks FILE` reports a
//! pinned set the same way. The tool decides nothing: the probe is the library's.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};
use tower_dt_signature::consts::{DT_DISCOVERY_URL, DT_ISSUER};
use tower_dt_signature::keys::{DtKeys, KeyOutcome, KeyProbe, ProbedFetch, ProbedKey};

use crate::EXIT_USAGE;

/// The name on every line the command prints.
const NAME: &str = "dt-signature keys";

/// `--help` of the command: what it does, with examples (clap prints it as is).
const KEYS_HELP: &str = r#"Show DT's signing keys as a receiver of this crate gets them, or why it cannot.

One refresh through the library's own discovery path (the same HTTPS client, rules,
limits and 5 s budget as DtKeys::discover): the discovery document's issuer, jwks_uri
and algorithms; each key with its kid, kty/crv, use and alg, loaded or why skipped;
the Cache-Control headers and the refresh they imply; the times; on failure, its class
(connect, tls, timeout, http_status, redirect_refused, too_large, not_json,
issuer_mismatch, no_usable_key, other) and reason. DISCOVERY_URL defaults to DT's
production discovery URL. --jwks FILE reports a pinned key set the same way.

Examples:

    dt-signature keys
    dt-signature keys http://127.0.0.1:8090/data-connector/.well-known/openid-configuration
    dt-signature keys --jwks jwks.json --issuer https://identity.disruptive-technologies.com/data-connector
    dt-signature keys --json

Exit status: 0 at least one key loads, 1 the key source fails (its class is printed),
2 bad usage or an unreadable file."#;

/// The options of `dt-signature keys` (`--help` prints them with examples).
#[derive(Debug, clap::Args)]
#[command(
    about = "Show DT's signing keys as a receiver gets them, or why it cannot",
    long_about = KEYS_HELP
)]
pub struct Args {
    /// The OpenID Connect discovery URL (https, or http to loopback). Default: DT's
    /// production discovery URL.
    #[arg(value_name = "DISCOVERY_URL", conflicts_with = "jwks")]
    discovery_url: Option<String>,

    /// A JWK Set file to report instead (pinned keys: nothing is fetched).
    #[arg(long, value_name = "FILE")]
    jwks: Option<PathBuf>,

    /// The issuer of --jwks. Default: DT's production issuer.
    #[arg(long, value_name = "ISS", requires = "jwks")]
    issuer: Option<String>,

    /// Print the report as JSON (the same content), for scripts.
    #[arg(long)]
    json: bool,
}

/// Runs `dt-signature keys` and returns its exit status. Needs a tokio runtime.
pub async fn run(args: Args) -> ExitCode {
    let probe = match &args.jwks {
        Some(path) => {
            let jwks = match std::fs::read(path) {
                Ok(jwks) => jwks,
                Err(error) => {
                    eprintln!("{NAME}: --jwks: cannot read {}: {error}", path.display());
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            let issuer = args.issuer.as_deref().unwrap_or(DT_ISSUER);
            DtKeys::probe_jwks(issuer, jwks)
        }
        None => {
            let url = args.discovery_url.as_deref().unwrap_or(DT_DISCOVERY_URL);
            match DtKeys::probe(url).await {
                Ok(probe) => probe,
                Err(error) => {
                    eprintln!("{NAME}: {url}: {error}");
                    return ExitCode::from(EXIT_USAGE);
                }
            }
        }
    };
    if args.json {
        let source = match &args.jwks {
            Some(path) => json!({"jwks_file": path.display().to_string()}),
            None => json!({"discovery_url": probe.discovery_url}),
        };
        let mut report = json(&probe);
        report["source"] = source;
        println!("{report:#}");
    } else {
        let source = args.jwks.as_ref().map(|path| path.display().to_string());
        print!("{}", text(&probe, source.as_deref()));
    }
    match probe.ok() {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    }
}

/// The probe as text. `jwks_file`: the pinned set's file, if that is the source.
pub fn text(probe: &KeyProbe, jwks_file: Option<&str>) -> String {
    let mut out = String::new();
    match (jwks_file, &probe.discovery_url) {
        (Some(file), _) => {
            let _ = writeln!(out, "source:  {file} (pinned, for issuer {})", probe.issuer);
        }
        (None, Some(url)) => {
            let _ = writeln!(out, "source:  {url}");
        }
        (None, None) => {}
    }
    if let Some(fetch) = &probe.discovery {
        fetch_text(&mut out, "discovery document", fetch, "read again after");
        if let Some(issuer) = &probe.document_issuer {
            let note = if *issuer == probe.issuer {
                "the URL's".to_owned()
            } else if issuer.strip_suffix('/') == Some(probe.issuer.as_str()) {
                "the URL's with a trailing /: accepted, tokens must carry this one".to_owned()
            } else {
                format!("the URL names {}: not the same", probe.issuer)
            };
            let _ = writeln!(out, "  issuer:     {issuer} ({note})");
        }
        if let Some(jwks_uri) = &probe.jwks_uri {
            let _ = writeln!(out, "  jwks_uri:   {jwks_uri}");
        }
        if probe.document_issuer.is_some() {
            let algorithms = match &probe.algorithms {
                Some(algs) => {
                    let note = match algs.iter().any(|alg| alg == "ES256") {
                        true => "",
                        false => " (no ES256: only ES256 is accepted all the same)",
                    };
                    format!("{}{note}", algs.join(", "))
                }
                None => "not listed (id_token_signing_alg_values_supported)".to_owned(),
            };
            let _ = writeln!(out, "  algorithms: {algorithms}");
        }
    }
    if let Some(fetch) = &probe.jwks {
        fetch_text(&mut out, "key set", fetch, "refreshed after");
    }
    if !probe.keys.is_empty() {
        let loaded = probe.loaded().len();
        let _ = writeln!(
            out,
            "  keys:       {} entr{}, {loaded} loaded",
            probe.keys.len(),
            if probe.keys.len() == 1 { "y" } else { "ies" },
        );
        for key in &probe.keys {
            let _ = writeln!(out, "    {}", key_text(key));
        }
    }
    let _ = writeln!(out, "time:    {} in all", millis(probe.elapsed));
    match &probe.failure {
        None => {
            let loaded = probe.loaded();
            let _ = write!(
                out,
                "ok: {} key{} loaded ({}) for issuer {}",
                loaded.len(),
                if loaded.len() == 1 { "" } else { "s" },
                loaded.join(", "),
                probe.issuer
            );
            match probe.next_refresh {
                Some(next) => {
                    let _ = writeln!(out, "; next refresh in {}", span(next));
                }
                None => out.push('\n'),
            }
        }
        Some(failure) => {
            let _ = writeln!(out, "failed: {}: {}", failure.class, failure.reason);
            if let Some(next) = probe.next_refresh {
                let _ = writeln!(
                    out,
                    "  a receiver keeps its last good keys and retries in {} (doubling up \
                     to 60 s); until a refresh succeeds, a kid it lacks is answered 503",
                    span(next)
                );
            }
        }
    }
    out
}

/// One GET: its answer, its time, its cache headers and the refresh they imply.
fn fetch_text(out: &mut String, what: &str, fetch: &ProbedFetch, refresh: &str) {
    let answer = match fetch.bytes {
        Some(bytes) => format!("200 OK, {bytes} bytes"),
        None => "failed".to_owned(),
    };
    let _ = writeln!(
        out,
        "{what}: {}\n  GET:        {answer} in {}",
        fetch.url,
        millis(fetch.elapsed)
    );
    if let Some(fresh_for) = fetch.fresh_for {
        let header = match &fetch.cache_control {
            Some(value) => format!("Cache-Control: {value}"),
            None => "no Cache-Control".to_owned(),
        };
        let why = match fetch.max_age {
            Some(max_age) if max_age == fresh_for => String::new(),
            Some(max_age) => format!(
                " (max-age {} s, clamped to 1 min .. 24 h)",
                max_age.as_secs()
            ),
            None => " (the default without max-age)".to_owned(),
        };
        let _ = writeln!(
            out,
            "  cache:      {header}: {refresh} {}{why}",
            span(fresh_for)
        );
    }
}

/// One key set entry on a line.
fn key_text(key: &ProbedKey) -> String {
    let shown = |value: &Option<String>| value.as_deref().unwrap_or("-").to_owned();
    let kty = match (&key.kty, &key.crv) {
        (Some(kty), Some(crv)) => format!("{kty}/{crv}"),
        (kty, _) => shown(kty),
    };
    let outcome = match &key.outcome {
        KeyOutcome::Loaded => "loaded".to_owned(),
        KeyOutcome::Duplicate => "the same key again under this kid: one key".to_owned(),
        KeyOutcome::Skipped(reason) => format!("skipped: {reason}"),
        _ => "?".to_owned(),
    };
    // An empty kid is shown as `""`, not as nothing.
    let kid = match key.kid.as_deref() {
        Some("") => "\"\"".to_owned(),
        _ => shown(&key.kid),
    };
    format!(
        "[{}] kid {kid}  {kty}  use {}  alg {}  {outcome}",
        key.index,
        shown(&key.use_),
        shown(&key.alg),
    )
}

/// The probe as JSON: the same content as the text.
pub fn json(probe: &KeyProbe) -> Value {
    let fetch = |fetch: &Option<ProbedFetch>| {
        fetch.as_ref().map(|fetch| {
            json!({
                "url": fetch.url,
                "elapsed_ms": fetch.elapsed.as_millis() as u64,
                "bytes": fetch.bytes,
                "cache_control": fetch.cache_control,
                "max_age_secs": fetch.max_age.map(|d| d.as_secs()),
                "fresh_for_secs": fetch.fresh_for.map(|d| d.as_secs()),
            })
        })
    };
    let keys: Vec<Value> = probe
        .keys
        .iter()
        .map(|key| {
            let (outcome, reason) = match &key.outcome {
                KeyOutcome::Loaded => ("loaded", None),
                KeyOutcome::Duplicate => ("duplicate", None),
                KeyOutcome::Skipped(reason) => ("skipped", Some(*reason)),
                _ => ("other", None),
            };
            json!({
                "index": key.index, "kid": key.kid, "kty": key.kty, "crv": key.crv,
                "use": key.use_, "alg": key.alg, "outcome": outcome, "reason": reason,
            })
        })
        .collect();
    json!({
        "ok": probe.ok(),
        "issuer": probe.issuer,
        "discovery": fetch(&probe.discovery),
        "document": probe.document_issuer.as_ref().map(|issuer| json!({
            "issuer": issuer,
            "jwks_uri": probe.jwks_uri,
            "algorithms": probe.algorithms,
        })),
        "jwks": fetch(&probe.jwks),
        "keys": keys,
        "loaded": probe.loaded(),
        "next_refresh_secs": probe.next_refresh.map(|d| d.as_secs()),
        "elapsed_ms": probe.elapsed.as_millis() as u64,
        "failure": probe.failure.as_ref().map(|failure| json!({
            "class": failure.class.code(),
            "reason": failure.reason,
        })),
    })
}

/// A time as milliseconds.
fn millis(duration: Duration) -> String {
    format!("{} ms", duration.as_millis())
}

/// A span in its largest whole unit: `15 min`, `1 h`, `90 s`.
fn span(duration: Duration) -> String {
    match duration.as_secs() {
        secs if secs >= 3600 && secs % 3600 == 0 => format!("{} h", secs / 3600),
        secs if secs >= 60 && secs % 60 == 0 => format!("{} min", secs / 60),
        secs => format!("{secs} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        let span = |secs| span(Duration::from_secs(secs));
        assert_eq!(span(900), "15 min");
        assert_eq!(span(86_400), "24 h");
        assert_eq!(span(90), "90 s");
        assert_eq!(span(1), "1 s");
    }
}
