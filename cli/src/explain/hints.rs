//! Hints for the usual mistakes, found after the verdict and never changing it: a body
//! the framework re-serialized (or re-serialized with its keys sorted), a trailing newline
//! added or lost, a wrong secret, a secret with whitespace around it or base64-decoded, an organization in the `organizations/<id>`
//! form, a token that was valid when issued but has expired, a `kid` not in the key set.
//!
//! Each hint tries a variant of the input against the token's own claims or signature
//! (the library's verifier checks the signature variants). The secret and its variants
//! are never printed.

use std::time::{Duration, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use http::HeaderMap;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tower_dt_signature::verify::explain::{Explanation, Step, TokenExplanation};
use tower_dt_signature::{ErrorKind, Scheme, Verifier};

use super::options::Setup;

/// One hint: a stable code (for `--json`) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// `body_reserialized`, `body_keys_sorted`, `trailing_newline`, `secret_mismatch`,
    /// `secret_whitespace`, `secret_base64`, `org_id_form`, `expired_since`,
    /// `unknown_kid`.
    pub code: &'static str,
    /// What was found and what to do.
    pub text: String,
}

impl Hint {
    fn new(code: &'static str, text: impl Into<String>) -> Self {
        Self {
            code,
            text: text.into(),
        }
    }
}

/// The hints for this explanation of the request `headers` + `body`.
pub fn hints(
    explanation: &Explanation,
    headers: &HeaderMap,
    body: &[u8],
    setup: &Setup,
) -> Vec<Hint> {
    let mut hints = Vec::new();
    for token in &explanation.tokens {
        let name = token.header_name();
        let refused = token
            .steps
            .iter()
            .find_map(|s| s.result.err().map(|kind| (s.step, kind)));
        match refused {
            Some((Step::Body, _)) => hints.extend(body_hint(token, body)),
            Some((_, ErrorKind::InvalidSignature)) if token.scheme == Scheme::Hmac => {
                match secret_hint(headers, setup) {
                    Some(hint) => hints.push(hint),
                    None => hints.extend(wrong_secret_hint(token, explanation, body, setup)),
                }
            }
            Some((_, ErrorKind::WrongOrganization)) => hints.extend(org_hint(token, setup)),
            Some((_, ErrorKind::Expired)) => {
                hints.extend(expired_hint(token, headers, body, setup))
            }
            Some((_, ErrorKind::UnknownKey)) => {
                let kid = token.kid.as_deref().unwrap_or("?");
                let kids = setup
                    .keys
                    .as_ref()
                    .map(|(_, kids)| kids.join(", "))
                    .unwrap_or_default();
                hints.push(Hint::new(
                    "unknown_kid",
                    format!(
                        "{name}: its kid {kid} is not in the key set (kids: {kids}). DT rotates its \
                         keys: fetch the current set with --discovery (DT's discovery URL); a \
                         capture signed with a retired key cannot be checked against today's set"
                    ),
                ));
            }
            _ => {}
        }
    }
    hints
}

/// The body's digests that the token claims: (claim, claimed hex).
fn claimed(token: &TokenExplanation) -> Vec<(&'static str, String)> {
    token
        .digests
        .iter()
        .map(|d| (d.claim, d.claimed.clone()))
        .collect()
}

/// Whether `bytes` has every digest the token claims.
fn matches(claims: &[(&'static str, String)], bytes: &[u8]) -> bool {
    !claims.is_empty()
        && claims.iter().all(|(claim, claimed)| {
            let computed = match *claim {
                "checksum" => hex::encode(Sha1::digest(bytes)),
                _ => hex::encode(Sha256::digest(bytes)),
            };
            computed == *claimed
        })
}

fn body_hint(token: &TokenExplanation, body: &[u8]) -> Option<Hint> {
    let name = token.header_name();
    let claims = claimed(token);
    let newline: [(&[u8], &str); 3] = [(b"\n", "\\n"), (b"\r\n", "\\r\\n"), (b"", "")];
    for (end, shown) in &newline[..2] {
        let mut added = body.to_vec();
        added.extend_from_slice(end);
        if matches(&claims, &added) {
            return Some(Hint::new(
                "trailing_newline",
                format!(
                    "{name}: the body signed ends with {shown}, the body checked does not: a \
                     line ending was lost (an editor, or a capture tool). Verify the bytes as \
                     received"
                ),
            ));
        }
        if let Some(stripped) = body.strip_suffix(*end) {
            if matches(&claims, stripped) {
                return Some(Hint::new(
                    "trailing_newline",
                    format!(
                        "{name}: the body checked ends with {shown}, the body signed does not: \
                         a line ending was added (`echo` or an editor adds one). Verify the \
                         bytes as received"
                    ),
                ));
            }
        }
    }
    let original: serde_json::Value = serde_json::from_slice(body).ok()?;
    for (form, bytes) in reserialized(body, &original) {
        if bytes != body
            && serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .as_ref()
                == Some(&original)
            && matches(&claims, &bytes)
        {
            return Some(Hint::new(
                "body_reserialized",
                format!(
                    "{name}: the body is the same JSON as the one signed, but not the same \
                     bytes: the signed body is {form}. Something re-serialized it (a framework \
                     parsing the JSON before you read it): verify the raw bytes, before any \
                     parsing"
                ),
            ));
        }
    }
    sorted_keys_hint(name, &claims, body)
}

/// A signature that no variant of the secret makes, on a token whose checksums match the
/// body (and whose times are right, or the hint says they are not): the request is DT's,
/// signed with another secret.
fn wrong_secret_hint(
    token: &TokenExplanation,
    explanation: &Explanation,
    body: &[u8],
    setup: &Setup,
) -> Option<Hint> {
    setup.secret.as_ref()?;
    let claims: serde_json::Value = serde_json::from_str(token.claims.as_deref()?).ok()?;
    let mut digests = Vec::new();
    for (claim, name) in [
        ("checksum", "checksum"),
        ("checksum_sha256", "checksum_sha256"),
    ] {
        if let Some(claimed) = claims.get(claim).and_then(serde_json::Value::as_str) {
            digests.push((name, claimed.to_ascii_lowercase()));
        }
    }
    if !matches(&digests, body) {
        return None;
    }
    let now = explanation
        .now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let leeway = explanation.leeway.as_secs();
    let expired = token
        .exp
        .is_some_and(|exp| exp.saturating_add(leeway) <= now);
    let future = token
        .iat
        .is_some_and(|iat| iat > now.saturating_add(leeway));
    let times = match (expired, future, token.iat) {
        (false, false, _) => "its times are right".to_owned(),
        (true, _, Some(iat)) => format!("it has expired (--at {iat} checks it at its time)"),
        _ => "its times are off".to_owned(),
    };
    let names: Vec<&str> = digests.iter().map(|(name, _)| *name).collect();
    Some(Hint::new(
        "secret_mismatch",
        format!(
            "X-Dt-Signature: the signature does not match the secret given, yet the token's \
             {} match the body and {times}: the body is the one signed, under another secret \
             (another connector's, or one changed in DT Studio since). The secret with the \
             whitespace around it trimmed, base64-encoded and base64-decoded was also tried: \
             none signs. Give this connector's secret as set in DT Studio",
            names.join(" and ")
        ),
    ))
}

/// Whether the JSON text `json` has its object keys in ascending order at every level,
/// with at least one object of two keys or more (DT never sends its keys sorted:
/// `eventId`, `targetName`, `eventType`, ...). `None` if it is not JSON text this reads.
fn keys_sorted(json: &[u8]) -> Option<bool> {
    // Per open object: its last key, and whether the next string is a key.
    struct Object {
        last: Option<Vec<u8>>,
        key_next: bool,
    }
    let mut stack: Vec<Option<Object>> = Vec::new(); // None: an array
    let (mut sorted, mut compared) = (true, false);
    let mut bytes = json.iter().copied();
    while let Some(b) = bytes.next() {
        match b {
            b'{' => stack.push(Some(Object {
                last: None,
                key_next: true,
            })),
            b'[' => stack.push(None),
            b'}' | b']' => {
                stack.pop()?;
            }
            b',' => {
                if let Some(Some(object)) = stack.last_mut() {
                    object.key_next = true;
                }
            }
            b'"' => {
                let mut text = Vec::new();
                let mut escaped = false;
                loop {
                    let c = bytes.next()?;
                    match (escaped, c) {
                        (true, _) => escaped = false,
                        (false, b'\\') => escaped = true,
                        (false, b'"') => break,
                        _ => {}
                    }
                    text.push(c);
                }
                if let Some(Some(object)) = stack.last_mut() {
                    if object.key_next {
                        object.key_next = false;
                        if let Some(last) = &object.last {
                            compared = true;
                            sorted &= *last <= text;
                        }
                        object.last = Some(text);
                    }
                }
            }
            _ => {}
        }
    }
    stack.is_empty().then_some(sorted && compared)
}

/// A body whose keys are sorted at every level, as DT never sends one: re-serialized
/// with sorted keys. When the typed payload in DT's key order makes the token's checksums,
/// the hint says that this is the body signed.
fn sorted_keys_hint(name: &str, claims: &[(&'static str, String)], body: &[u8]) -> Option<Hint> {
    if keys_sorted(body) != Some(true) {
        return None;
    }
    let dt_order = tower_dt_signature::events::Payload::from_slice(body)
        .ok()
        .and_then(|payload| serde_json::to_vec(&payload).ok());
    let confirmed = dt_order.is_some_and(|bytes| matches(claims, &bytes));
    let found = if confirmed {
        "the same event in DT's key order has the checksums the token claims"
    } else {
        "DT never sends its keys sorted (eventId, targetName, eventType, ...)"
    };
    Some(Hint::new(
        "body_keys_sorted",
        format!(
            "{name}: the body's keys are sorted at every level, and {found}: something \
             parsed the body and wrote it again with sorted keys (serde_json::Value without \
             preserve_order, Python's json.dumps(sort_keys=True), jq -S). Verify the raw \
             bytes, before any parsing"
        ),
    ))
}

/// The body's JSON re-serialized in the usual ways: (what it is, the bytes). Key order
/// is kept by reformatting the text itself; `serde_json::Value` (no `preserve_order`)
/// gives the sorted forms.
fn reserialized(body: &[u8], value: &serde_json::Value) -> Vec<(&'static str, Vec<u8>)> {
    let mut forms = vec![
        ("compact JSON (no spaces)", reformat(body, Layout::Compact)),
        (
            "JSON with a space after `,` and `:` (Python's json.dumps)",
            reformat(body, Layout::Spaced),
        ),
        (
            "pretty-printed JSON (2 spaces)",
            reformat(body, Layout::Pretty(2)),
        ),
        (
            "pretty-printed JSON (4 spaces)",
            reformat(body, Layout::Pretty(4)),
        ),
    ];
    forms.push((
        "compact JSON with sorted keys",
        value.to_string().into_bytes(),
    ));
    if let Ok(pretty) = serde_json::to_vec_pretty(value) {
        forms.push(("pretty-printed JSON with sorted keys", pretty));
    }
    let newline: Vec<(&'static str, Vec<u8>)> = forms
        .iter()
        .map(|(form, bytes)| {
            let mut bytes = bytes.clone();
            bytes.push(b'\n');
            (*form, bytes)
        })
        .collect();
    forms.extend(newline);
    forms
}

#[derive(Clone, Copy)]
enum Layout {
    Compact,
    Spaced,
    Pretty(usize),
}

/// The JSON text `json` laid out again, token for token (strings kept as they are).
fn reformat(json: &[u8], layout: Layout) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() * 2);
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let newline = |out: &mut Vec<u8>, depth: usize| {
        if let Layout::Pretty(width) = layout {
            out.push(b'\n');
            out.extend(std::iter::repeat_n(b' ', depth * width));
        }
    };
    let mut bytes = json.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b'"' => {
                in_string = true;
                out.push(b);
            }
            b'{' | b'[' => {
                out.push(b);
                while bytes.next_if(|b| b.is_ascii_whitespace()).is_some() {}
                if matches!(bytes.peek(), Some(b'}' | b']')) {
                    out.push(bytes.next().unwrap_or(b' '));
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(b);
            }
            b',' => {
                out.push(b);
                match layout {
                    Layout::Spaced => out.push(b' '),
                    Layout::Pretty(_) => newline(&mut out, depth),
                    Layout::Compact => {}
                }
            }
            b':' => {
                out.push(b);
                if !matches!(layout, Layout::Compact) {
                    out.push(b' ');
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The secret with the whitespace around it removed, or base64-encoded (the user decoded
/// DT's secret), or base64-decoded: checked by the library against the HMAC token's
/// signature only. Neither the secret nor a variant is printed.
fn secret_hint(headers: &HeaderMap, setup: &Setup) -> Option<Hint> {
    let secret = setup.secret.as_ref()?.0.as_bytes();
    let mut only_hmac = HeaderMap::new();
    only_hmac.insert(
        tower_dt_signature::consts::X_DT_SIGNATURE,
        headers
            .get(tower_dt_signature::consts::X_DT_SIGNATURE)?
            .clone(),
    );
    let signs = |variant: &[u8]| {
        variant != secret
            && Verifier::try_new(variant).is_ok_and(|verifier| {
                let explained = verifier.explain(&only_hmac, b"");
                explained
                    .token(Scheme::Hmac)
                    .and_then(|token| token.step(Step::Signature))
                    == Some(Ok(()))
            })
    };
    if signs(secret.trim_ascii()) {
        return Some(Hint::new(
            "secret_whitespace",
            "X-Dt-Signature: the secret has whitespace around it (a space or a line ending); \
             without it the signature matches. DT uses the secret exactly as typed in DT \
             Studio: remove the whitespace where your receiver reads it",
        ));
    }
    let encoded =
        [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].map(|engine| engine.encode(secret));
    if encoded.iter().any(|variant| signs(variant.as_bytes())) {
        return Some(Hint::new(
            "secret_base64",
            "X-Dt-Signature: the secret given is the base64 decoding of the one that signs. DT \
             uses the secret as typed in DT Studio, never base64-decoded: give it as it is",
        ));
    }
    let text = std::str::from_utf8(secret).ok()?.trim();
    let decoded = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .filter_map(|engine| engine.decode(text).ok())
        .any(|variant| !variant.is_empty() && signs(&variant));
    decoded.then(|| {
        Hint::new(
            "secret_base64",
            "X-Dt-Signature: the secret given is the base64 encoding of the one that signs: \
             give the secret as typed in DT Studio, not encoded",
        )
    })
}

fn org_hint(token: &TokenExplanation, setup: &Setup) -> Option<Hint> {
    // The library takes one leading `organizations/` off both sides: the two forms never
    // differ here, so a refusal means the ids themselves differ.
    const PREFIX: &str = "organizations/";
    let (sub, org) = (token.sub.as_deref()?, setup.org_id.as_deref()?);
    let sub_id = sub.strip_prefix(PREFIX).unwrap_or(sub);
    Some(Hint::new(
        "org_id_form",
        format!(
            "DT-Asymmetric-Signature: the token is for organization `{sub_id}`, yours is \
             `{org}` (`{PREFIX}<id>` and `<id>` are the same to this check): is the connector \
             in another organization, or DT_ORG_ID / --org-id from another project?"
        ),
    ))
}

fn expired_hint(
    token: &TokenExplanation,
    headers: &HeaderMap,
    body: &[u8],
    setup: &Setup,
) -> Option<Hint> {
    let iat = token.iat?;
    let at = UNIX_EPOCH + Duration::from_secs(iat);
    let then = setup
        .verifier
        .clone()
        .clock(move || at)
        .explain(headers, body);
    let times = then.token(token.scheme)?.step(Step::Times)?;
    times.is_ok().then(|| {
        Hint::new(
            "expired_since",
            format!(
                "{}: the token was valid when it was issued, and has expired since (it lives \
                 {}). To check the rest of a captured request, verify it at its own time: \
                 --at {iat}",
                token.header_name(),
                match token.scheme {
                    Scheme::Asymmetric => "5 minutes",
                    _ => "1 hour",
                }
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sorted_reads_the_text_s_order() {
        assert_eq!(
            keys_sorted(br#"{"a":1,"b":{"c":[{"d":1,"e":2}],"f":"}"}}"#),
            Some(true)
        );
        assert_eq!(
            keys_sorted(br#"{"event":{"eventId":"x","targetName":"y","eventType":"z"}}"#),
            Some(false)
        );
        assert_eq!(keys_sorted(br#"{"a":"\"z","b":1}"#), Some(true));
        // One key per object: nothing to compare.
        assert_eq!(keys_sorted(br#"{"a":{"b":1}}"#), Some(false));
        assert_eq!(keys_sorted(br#"{"a":"#), None);
    }

    #[test]
    fn reformat_lays_out_json_as_the_usual_serializers() {
        let body = br#"{"b":[1, 2],"a":{"x":"y, z: \"w\""},"e":{},"f":[ ]}"#;
        assert_eq!(
            reformat(body, Layout::Compact),
            br#"{"b":[1,2],"a":{"x":"y, z: \"w\""},"e":{},"f":[]}"#
        );
        assert_eq!(
            reformat(body, Layout::Spaced),
            br#"{"b": [1, 2], "a": {"x": "y, z: \"w\""}, "e": {}, "f": []}"#
        );
        let value: serde_json::Value = serde_json::from_slice(body).unwrap();
        // serde_json's pretty printer, with the keys in the text's order.
        let pretty = String::from_utf8(reformat(body, Layout::Pretty(2))).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&pretty).unwrap(),
            value
        );
        assert_eq!(pretty, "{\n  \"b\": [\n    1,\n    2\n  ],\n  \"a\": {\n    \"x\": \"y, z: \\\"w\\\"\"\n  },\n  \"e\": {},\n  \"f\": []\n}");
    }
}
