//! The crate's private parsers of untrusted bytes, for the fuzz targets in `fuzz/` only
//! (feature `__fuzz`, which `fuzz/Cargo.toml` turns on). Not an API: hidden from the docs,
//! it may change in any release. Each function calls the code the crate runs, and returns
//! plain data so that a target can check what was parsed.

use crate::keys::discovery::parse_discovery;
use crate::keys::fetch::check_url;
use crate::keys::parse_jwks;

/// The keys a JWK Set loads, as `(kid, 04 || x || y)`, or `None` when the set is refused.
pub fn jwks(json: &[u8]) -> Option<Vec<(String, [u8; 65])>> {
    let keys = parse_jwks(json).ok()?;
    Some(
        keys.into_iter()
            .map(|(kid, key)| (kid.into_string(), *key.point))
            .collect(),
    )
}

/// A discovery document's `(issuer, jwks_uri)` when a refresh would go on to fetch that
/// `jwks_uri` (before the `issuer` is compared with the configured one), else `None`.
pub fn discovery(body: &[u8]) -> Option<(String, String)> {
    let document = parse_discovery(body).ok()?;
    check_url(&document.jwks_uri.parse().ok()?).ok()?;
    Some((document.issuer, document.jwks_uri))
}
