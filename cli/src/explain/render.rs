//! The output of `dt-signature explain`: the library's [`Explanation`] as text (colour
//! only on a terminal, never with `NO_COLOR`) or as JSON (`--json`). Nothing is decided
//! here; the secret is never in what is printed.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use serde_json::{json, Value};
use tower_dt_signature::verify::explain::{Explanation, Step, TokenExplanation};
use tower_dt_signature::{DtClaims, DtSignatureError, ErrorKind, Scheme};

use super::hints::Hint;
use super::input::Captured;
use super::options::Setup;

/// Whether to colour the text: stdout is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>); `CLICOLOR_FORCE` (not `0`) forces it, `NO_COLOR` still wins.
pub fn use_colour(env: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| env(name).is_some_and(|value| !value.is_empty());
    if set("NO_COLOR") {
        return false;
    }
    (set("CLICOLOR_FORCE") && env("CLICOLOR_FORCE").as_deref() != Some("0"))
        || std::io::stdout().is_terminal()
}

/// ANSI colours, or none.
#[derive(Debug, Clone, Copy)]
pub struct Paint(pub bool);

impl Paint {
    fn paint(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn ok(self, text: &str) -> String {
        self.paint("32", text)
    }

    fn bad(self, text: &str) -> String {
        self.paint("1;31", text)
    }

    fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }
}

/// Everything a report shows: the capture, the setup, the library's explanation, the
/// hints, and the signature headers present that no step checked.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// What was read.
    pub captured: &'a Captured,
    /// What it is checked with.
    pub setup: &'a Setup,
    /// The library's steps and verdict.
    pub explanation: &'a Explanation,
    /// The hints found after the verdict.
    pub hints: &'a [Hint],
    /// The signature headers present but not checked ([`unchecked`]).
    pub unchecked: &'a [Unchecked],
}

/// A signature header in the request that the library's explanation holds no token of:
/// the policy did not check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unchecked {
    /// `X-Dt-Signature` or `DT-Asymmetric-Signature`.
    pub header: &'static str,
    /// Why it was not checked, and what to give to check it.
    pub text: String,
}

/// The signature headers present in `headers` that the explanation has no token of (the
/// library did not look at them), each with what to give to check it.
pub fn unchecked(explanation: &Explanation, headers: &HeaderMap, setup: &Setup) -> Vec<Unchecked> {
    let mut unchecked = Vec::new();
    for scheme in [Scheme::Hmac, Scheme::Asymmetric] {
        let header = header_name(scheme);
        if !headers.contains_key(header) || explanation.token(scheme).is_some() {
            continue;
        }
        let policy = setup.policy;
        let text = match scheme {
            Scheme::Hmac if !policy.uses_hmac() => format!(
                "present, not checked: policy {policy} does not check it; give the secret \
                 (--secret-file FILE or DT_SIGNATURE_SECRET) to check it"
            ),
            Scheme::Asymmetric if !policy.uses_asymmetric() => format!(
                "present, not checked: policy {policy} does not check it; give --org-id ID \
                 (or DT_ORG_ID) and DT's keys (--discovery URL, or --jwks FILE --issuer ISS) \
                 to check it"
            ),
            _ => format!(
                "present, not checked: policy {policy} did not look at it; --policy both \
                 checks both tokens"
            ),
        };
        unchecked.push(Unchecked { header, text });
    }
    unchecked
}

/// The whole report as text.
pub fn text(report: &Report<'_>, paint: Paint) -> String {
    let Report {
        captured,
        setup,
        explanation,
        hints,
        unchecked,
    } = *report;
    let mut out = String::new();
    setup_text(&mut out, captured, setup);
    for token in &explanation.tokens {
        out.push('\n');
        token_text(&mut out, token, explanation, setup, paint);
    }
    for skipped in unchecked {
        let _ = writeln!(out, "\n{}\n  {}", paint.bold(skipped.header), skipped.text);
    }
    out.push('\n');
    match &explanation.verdict {
        Ok(claims) => accepted_text(&mut out, claims, paint),
        Err(error) => refused_text(&mut out, error, paint),
    }
    if !hints.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            paint.bold("hints (they do not change the verdict):")
        );
        for hint in hints {
            let _ = writeln!(out, "  - {}", hint.text);
        }
    }
    out
}

/// What was read and what it is checked with (never the secret, a token or the body).
fn setup_text(out: &mut String, captured: &Captured, setup: &Setup) {
    let names: Vec<&str> = captured.headers.keys().map(|name| name.as_str()).collect();
    let _ = writeln!(
        out,
        "request: {} header(s) ({}), body {} bytes",
        captured.headers.len(),
        names.join(", "),
        captured.body.len()
    );
    if let Some(note) = &captured.body_note {
        let _ = writeln!(out, "  {}", note.text());
    }
    let _ = writeln!(out, "policy:  {}", setup.policy);
    if let Some(from) = &setup.secret_from {
        let _ = writeln!(out, "secret:  from {from}");
    }
    if let Some((issuer, kids)) = &setup.keys {
        let _ = writeln!(out, "keys:    issuer {issuer}, kid {}", kids.join(", "));
    }
    if let Some(failure) = &setup.keys_failure {
        let _ = writeln!(
            out,
            "         not loaded: {failure} (`dt-signature keys` shows more)"
        );
    }
    if let Some(org) = &setup.org_id {
        let _ = writeln!(out, "org:     {org}");
    }
    match setup.at {
        Some(at) => {
            let _ = writeln!(out, "clock:   {} (--at)", rfc3339(at));
        }
        None => {
            let _ = writeln!(out, "clock:   now, {}", rfc3339(SystemTime::now()));
        }
    }
}

fn token_text(
    out: &mut String,
    token: &TokenExplanation,
    explanation: &Explanation,
    setup: &Setup,
    paint: Paint,
) {
    let _ = writeln!(out, "{}", paint.bold(token.header_name()));
    if let Some(jose) = &token.jose_header {
        let _ = writeln!(out, "  JOSE header: {jose}");
    }
    if let Some(claims) = &token.claims {
        let _ = writeln!(out, "  claims:      {claims}");
    }
    for (name, at) in [("iat", token.iat), ("nbf", token.nbf), ("exp", token.exp)] {
        if let Some(at) = at {
            let _ = writeln!(
                out,
                "    {name}:      {} ({})",
                rfc3339(unix(at)),
                relative(name, at, explanation.now)
            );
        }
    }
    for step in &token.steps {
        let (mark, detail) = match step.result {
            Ok(()) => (
                paint.ok("ok     "),
                step_detail(step.step, token, setup, explanation),
            ),
            Err(kind) => (paint.bad("REFUSED"), format!("{} ({kind:?})", kind.code())),
        };
        let _ = writeln!(out, "  {mark} {:<19} {detail}", step.step.as_str());
    }
    for digest in &token.digests {
        let verdict = match digest.matches {
            true => paint.ok("match"),
            false => paint.bad("MISMATCH"),
        };
        let _ = writeln!(out, "    {:<16} claimed  {}", digest.claim, digest.claimed);
        let _ = writeln!(out, "    {:<16} computed {} {verdict}", "", digest.computed);
    }
    if token.error.is_none() && token.digests.is_empty() {
        let _ = writeln!(
            out,
            "  {}",
            paint.dim("body: not compared (the request was refused before the body)")
        );
    }
}

/// What a passed step established.
fn step_detail(
    step: Step,
    token: &TokenExplanation,
    setup: &Setup,
    explanation: &Explanation,
) -> String {
    let es = token.scheme == Scheme::Asymmetric;
    match step {
        Step::Header => "one header, visible ASCII".to_owned(),
        Step::Token => "three base64url parts".to_owned(),
        Step::JoseHeader if es => "alg ES256, a kid".to_owned(),
        Step::JoseHeader => "alg HS256".to_owned(),
        Step::SignatureEncoding => "64 bytes (r || s)".to_owned(),
        Step::KeyLookup => format!(
            "kid {} is in the key set",
            token.kid.as_deref().unwrap_or("?")
        ),
        Step::Signature if es => "ES256 under that key".to_owned(),
        Step::Signature => match explanation
            .verdict
            .as_ref()
            .ok()
            .and_then(DtClaims::secret_index)
        {
            Some(index) if setup.secret.is_some() && index > 0 => {
                format!("HS256 under secret {}", index + 1)
            }
            _ => "HS256 under the secret".to_owned(),
        },
        Step::Claims => "a JSON object, each claim of its type".to_owned(),
        Step::Issuer => format!("iss {}", token.iss.as_deref().unwrap_or("?")),
        Step::Times => format!("within exp, leeway {} s", explanation.leeway.as_secs()),
        Step::Organization => format!("sub {}", token.sub.as_deref().unwrap_or("?")),
        Step::Checksums => "present, hex".to_owned(),
        Step::Body => "every checksum matches the body".to_owned(),
        _ => String::new(),
    }
}

fn accepted_text(out: &mut String, claims: &DtClaims, paint: Paint) {
    let schemes: Vec<&str> = claims.schemes().iter().map(|s| header_name(*s)).collect();
    let _ = writeln!(out, "{} {}", paint.ok("accepted:"), schemes.join(" and "));
    if let Some(iat) = claims.hmac_issued_at() {
        let _ = writeln!(out, "  event:   {} (X-Dt-Signature iat)", rfc3339(iat));
    }
    if let Some(iat) = claims.asymmetric_issued_at() {
        let _ = writeln!(
            out,
            "  signed:  {} (DT-Asymmetric-Signature iat)",
            rfc3339(iat)
        );
    }
    if let Some(exp) = claims.expires_at() {
        let _ = writeln!(out, "  expires: {}", rfc3339(exp));
    }
    let mut digests = Vec::new();
    if claims.sha1_verified() {
        digests.push("checksum (SHA-1)");
    }
    if claims.sha256_verified() {
        digests.push("checksum_sha256");
    }
    let _ = writeln!(out, "  body:    {} match", digests.join(" and "));
    if let Some(jti) = claims.jti() {
        let _ = writeln!(out, "  jti:     {jti}");
    }
    if let Some(org) = claims.org_id() {
        let _ = writeln!(out, "  org:     {org}");
    }
    if let Some(kid) = claims.kid() {
        let _ = writeln!(out, "  kid:     {kid}");
    }
}

fn refused_text(out: &mut String, error: &DtSignatureError, paint: Paint) {
    let kind = error.kind();
    let _ = writeln!(
        out,
        "{} {} ({})",
        paint.bad("refused:"),
        kind.code(),
        error.status()
    );
    if let Some(scheme) = error.scheme() {
        let _ = writeln!(out, "  token:  {}", header_name(scheme));
    }
    let _ = writeln!(out, "  kind:   {kind:?}");
    let _ = writeln!(
        out,
        "  answer: {} \"{}\"",
        error.status(),
        error.public_str()
    );
    let _ = writeln!(out, "  reason: {}", error.reason());
}

/// The report as JSON: the same content as the text.
pub fn json(report: &Report<'_>) -> Value {
    let Report {
        captured,
        setup,
        explanation,
        hints,
        unchecked,
    } = *report;
    let tokens: Vec<Value> = explanation
        .tokens
        .iter()
        .map(|token| token_json(token, explanation))
        .collect();
    let decision = match &explanation.verdict {
        Ok(claims) => json!({
            "accepted": true,
            "status": 200,
            "tokens": claims.schemes().iter().map(|s| header_name(*s)).collect::<Vec<_>>(),
            "hmac_iat": claims.hmac_iat(),
            "asymmetric_iat": claims.asymmetric_iat(),
            "exp": claims.exp(),
            "sha1_verified": claims.sha1_verified(),
            "sha256_verified": claims.sha256_verified(),
            "jti": claims.jti(),
            "org_id": claims.org_id(),
            "kid": claims.kid(),
        }),
        Err(error) => json!({
            "accepted": false,
            "status": error.status().as_u16(),
            "code": error.kind().code(),
            "kind": format!("{:?}", error.kind()),
            "token": error.scheme().map(header_name),
            "public": error.public_str(),
            "reason": error.reason(),
        }),
    };
    json!({
        "request": {
            "headers": captured.headers.keys().map(|name| name.as_str()).collect::<Vec<_>>(),
            "body_bytes": captured.body.len(),
            "body_note": captured.body_note.map(|note| json!({
                "content_length": note.content_length,
                "file_bytes": note.file_bytes,
                "file_verified": note.file_verified,
                "text": note.text(),
            })),
        },
        "unchecked": unchecked.iter().map(|u| json!({"header": u.header, "text": u.text})).collect::<Vec<_>>(),
        "policy": setup.policy.as_str(),
        "secret_from": setup.secret_from,
        "keys": setup.keys.as_ref().map(|(issuer, kids)| json!({"issuer": issuer, "kids": kids, "failure": setup.keys_failure})),
        "org_id": setup.org_id,
        "now": time_json(explanation.now),
        "leeway_secs": explanation.leeway.as_secs(),
        "tokens": tokens,
        "decision": decision,
        "hints": hints.iter().map(|hint| json!({"code": hint.code, "text": hint.text})).collect::<Vec<_>>(),
    })
}

fn token_json(token: &TokenExplanation, explanation: &Explanation) -> Value {
    let parsed = |text: &Option<String>| {
        text.as_deref().map(|text| {
            serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.to_owned()))
        })
    };
    let times = |name: &str, at: Option<u64>| {
        at.map(|at| {
            let mut time = time_json(unix(at));
            time["relative"] = relative(name, at, explanation.now).into();
            time
        })
    };
    json!({
        "header": token.header_name(),
        "scheme": token.scheme.code(),
        "jose_header": parsed(&token.jose_header),
        "claims": parsed(&token.claims),
        "kid": token.kid,
        "times": {"iat": times("iat", token.iat), "nbf": times("nbf", token.nbf), "exp": times("exp", token.exp)},
        "steps": token.steps.iter().map(|step| match step.result {
            Ok(()) => json!({"step": step.step.as_str(), "result": "ok"}),
            Err(kind) => json!({"step": step.step.as_str(), "result": "refused", "code": kind.code(), "kind": format!("{kind:?}")}),
        }).collect::<Vec<_>>(),
        "digests": token.digests.iter().map(|d| json!({
            "claim": d.claim, "claimed": d.claimed, "computed": d.computed, "matches": d.matches,
        })).collect::<Vec<_>>(),
        "error": token.error.as_ref().map(|error| error_kind(error.kind())),
    })
}

fn error_kind(kind: ErrorKind) -> Value {
    json!({"code": kind.code(), "kind": format!("{kind:?}")})
}

fn time_json(time: SystemTime) -> Value {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    json!({"unix": secs, "rfc3339": rfc3339(time)})
}

fn unix(secs: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .unwrap_or(UNIX_EPOCH)
}

/// `at` against `now`, in words: "3 h ago", "in 5 min", "expired 3 h ago".
pub fn relative(name: &str, at: u64, now: SystemTime) -> String {
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let span = |secs: u64| match secs {
        0..120 => format!("{secs} s"),
        120..7200 => format!("{} min", secs / 60),
        7200..172_800 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86_400),
    };
    match (name, at <= now) {
        ("exp", true) => format!("expired {} ago", span(now - at)),
        ("exp", false) => format!("expires in {}", span(at - now)),
        (_, true) => format!("{} ago", span(now - at)),
        (_, false) => format!("in {}, in the future", span(at - now)),
    }
}

/// The header a scheme's token travels in.
pub fn header_name(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Hmac => "X-Dt-Signature",
        Scheme::Asymmetric => "DT-Asymmetric-Signature",
        _ => "another signature header",
    }
}

/// `time` in RFC 3339, to the second, UTC.
pub fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        let now = unix(1_000_000);
        assert_eq!(
            relative("exp", 1_000_000 - 3 * 3600, now),
            "expired 3 h ago"
        );
        assert_eq!(relative("exp", 1_000_300, now), "expires in 5 min");
        assert_eq!(relative("iat", 999_990, now), "10 s ago");
        assert_eq!(relative("iat", 1_000_090, now), "in 90 s, in the future");
        assert_eq!(relative("iat", 1_000_000 - 3 * 86_400, now), "3 d ago");
    }

    #[test]
    fn colour_only_when_asked_and_never_with_no_color() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(use_colour(env(&[("CLICOLOR_FORCE", "1")])));
        assert!(!use_colour(env(&[
            ("CLICOLOR_FORCE", "1"),
            ("NO_COLOR", "1")
        ])));
        // Tests run with stdout captured: not a terminal.
        if !std::io::stdout().is_terminal() {
            assert!(!use_colour(env(&[])));
        }
    }
}
