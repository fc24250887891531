//! The OpenID Connect discovery document parser on arbitrary bytes.
//!
//! Input: the document's bytes, as a key server would send them.
//! Invariants: nothing panics; a document that a refresh would go on with is a JSON object
//! whose `issuer` and `jwks_uri` strings are the ones returned, and its `jwks_uri` is an
//! `https` URL, or plain `http` to a loopback host, without credentials.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::Value;
use tower_dt_signature::__fuzz;

/// The members read, by this target. (Not `serde_json::Value` for the whole document: it
/// refuses a number beyond `f64` in a member nobody reads, which is valid JSON.)
#[derive(Deserialize)]
struct Document {
    issuer: Value,
    jwks_uri: Value,
}

fuzz_target!(|data: &[u8]| {
    let Some((issuer, jwks_uri)) = __fuzz::discovery(data) else {
        return;
    };
    assert!(
        data.trim_ascii_start().starts_with(b"{"),
        "a document that is not an object"
    );
    assert!(
        std::str::from_utf8(data).is_ok(),
        "a document that is not UTF-8"
    );
    let document: Document = serde_json::from_slice(data).expect("an accepted document is JSON");
    assert_eq!(document.issuer.as_str(), Some(issuer.as_str()));
    assert_eq!(document.jwks_uri.as_str(), Some(jwks_uri.as_str()));

    let uri: http::Uri = jwks_uri.parse().expect("an accepted jwks_uri is a URI");
    let authority = uri.authority().expect("an accepted jwks_uri has a host");
    assert!(
        !authority.as_str().contains('@'),
        "credentials in {jwks_uri:?}"
    );
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") => {
            let host = authority.host();
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            assert!(loopback, "plain http to {host:?}");
        }
        other => panic!("jwks_uri scheme {other:?}"),
    }
});
