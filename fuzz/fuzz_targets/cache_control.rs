//! `cache_max_age` on arbitrary `Cache-Control` headers.
//!
//! Input: one `Cache-Control` value per line (a line that is not a valid header value is
//! left out, as a client would never see it).
//! Invariants: nothing panics, and the result is what this file's own reading of RFC 9111
//! (5.2) gives, written without looking at the crate's:
//! - a value that is not visible ASCII (tab allowed) is ignored whole;
//! - directives are separated by commas outside quoted strings; a directive is a name,
//!   then optionally `=` and an argument (whitespace around both trimmed);
//! - `no-cache` or `no-store` (any case, with or without an argument) anywhere: 0;
//! - else the first `max-age` (any case) whose argument is delta-seconds, digits only,
//!   bare or in double quotes, saturating at `u64::MAX` (RFC 9111, 1.2.2); a `max-age`
//!   with any other argument is skipped;
//! - else none.
#![no_main]

use std::time::Duration;

use http::header::CACHE_CONTROL;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tower_dt_signature::keys::cache_max_age;

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    let mut values = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(CACHE_CONTROL, value);
            values.push(line);
        }
    }
    let got = cache_max_age(&headers);
    let want = oracle(&values).map(Duration::from_secs);
    assert_eq!(got, want, "{:?}", String::from_utf8_lossy(data));
});

fn oracle(values: &[&[u8]]) -> Option<u64> {
    let mut max_age = None;
    for value in values {
        if !value
            .iter()
            .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            continue;
        }
        for directive in directives(value) {
            let (name, argument) = match directive.iter().position(|&b| b == b'=') {
                Some(i) => (trim(&directive[..i]), Some(trim(&directive[i + 1..]))),
                None => (trim(directive), None),
            };
            if name.eq_ignore_ascii_case(b"no-cache") || name.eq_ignore_ascii_case(b"no-store") {
                return Some(0);
            }
            if max_age.is_none() && name.eq_ignore_ascii_case(b"max-age") {
                max_age = argument.and_then(delta_seconds);
            }
        }
    }
    max_age
}

/// The directives of one value: split at commas outside `"..."` (with `\` escapes).
fn directives(value: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &b) in value.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ' && b != b'\t');
    let end = bytes.iter().rposition(|&b| b != b' ' && b != b'\t');
    match (start, end) {
        (Some(start), Some(end)) => &bytes[start..=end],
        _ => &[],
    }
}

fn delta_seconds(argument: &[u8]) -> Option<u64> {
    let digits = match argument {
        [b'"', inner @ .., b'"'] => inner,
        bare => bare,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}
