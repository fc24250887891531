//! OpenID Connect discovery's rules (feature `jwks`): the issuer a discovery URL names,
//! and what the discovery document must say.
//!
//! - The URL ends in `/.well-known/openid-configuration`; the issuer is the URL without
//!   that suffix (OpenID Connect Discovery 1.0, 4.3).
//! - The document is JSON with `issuer` and `jwks_uri` (other members are ignored); its
//!   `issuer` equals the URL's byte for byte (4.3), but for one trailing `/` more, which is
//!   accepted with a warning; its `jwks_uri` may be fetched ([`check_url`]), and is https
//!   when the URL is.
//! - `id_token_signing_alg_values_supported` without `ES256` is a warning; it never widens
//!   what is accepted.

use http::Uri;
use serde::Deserialize;

use super::fetch::check_url;
use super::status::FailureClass;
use super::KeysError;

/// The path an OpenID Connect discovery URL ends with (OIDC Discovery 1.0, 4).
pub(crate) const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// The discovery URL, checked, and the issuer it names.
pub(crate) fn discovery_issuer(url: &str) -> Result<(Uri, String), KeysError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| KeysError::new("the discovery URL is not a valid URL"))?;
    check_url(&uri).map_err(|e| KeysError::new(format!("discovery URL: {e}")))?;
    if uri.query().is_some() || url.contains('#') {
        return Err(KeysError::new(
            "the discovery URL must not have a query or a fragment",
        ));
    }
    let issuer = url
        .strip_suffix(WELL_KNOWN)
        .ok_or_else(|| KeysError::new(format!("the discovery URL must end in {WELL_KNOWN}")))?;
    if issuer.ends_with('/') {
        return Err(KeysError::new("the discovery URL names no issuer"));
    }
    Ok((uri, issuer.to_owned()))
}

/// The members of a discovery document that the key cache reads.
#[derive(Debug, Deserialize)]
pub(crate) struct Discovery {
    /// The issuer the document speaks for.
    pub(crate) issuer: String,
    /// Where its JWK Set is.
    pub(crate) jwks_uri: String,
    /// The algorithms its tokens may be signed with: only read for a warning.
    #[serde(default)]
    pub(crate) id_token_signing_alg_values_supported: Option<serde_json::Value>,
}

/// A discovery document found to speak for the issuer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Accepted {
    /// Where its JWK Set is.
    pub(crate) jwks_uri: String,
    /// Its `issuer` is the URL's with one trailing `/` more: tokens carry that one.
    pub(crate) slash: bool,
}

/// Parse a discovery document: JSON with the string members `issuer` and `jwks_uri`.
/// A JSON object in UTF-8 throughout ([`from_json_object`](super::from_json_object)).
/// Nothing is checked but the shape: see [`Discovery::jwks_uri_for`].
pub(crate) fn parse_discovery(body: &[u8]) -> Result<Discovery, KeysError> {
    super::from_json_object(body)
        .ok_or_else(|| KeysError::of(FailureClass::NotJson, "not JSON with issuer and jwks_uri"))
}

impl Discovery {
    /// The document's `jwks_uri`, once the document is found to speak for `issuer` (the
    /// one derived from the discovery URL: byte for byte, or with one trailing `/` more,
    /// which is logged) and to name a key set that may be fetched: `https` when `issuer`
    /// is, plain `http` only to a loopback host when `issuer` is plain http itself.
    pub(crate) fn jwks_uri_for(self, issuer: &str) -> Result<Accepted, KeysError> {
        let slash = self.issuer.strip_suffix('/') == Some(issuer);
        if slash {
            tracing::warn!(
                document_issuer = %self.issuer,
                url_issuer = %issuer,
                "the discovery document's issuer has a trailing / that its URL lacks: \
                 accepted; tokens must carry the document's issuer"
            );
        } else if self.issuer != issuer {
            return Err(KeysError::of(
                FailureClass::IssuerMismatch,
                format!("issuer {:?} is not {issuer:?}", self.issuer),
            ));
        }
        let uri: Uri = self
            .jwks_uri
            .parse()
            .map_err(|_| KeysError::new("jwks_uri is not a URL"))?;
        check_url(&uri).map_err(|e| KeysError::new(format!("jwks_uri: {e}")))?;
        if issuer.starts_with("https:") && uri.scheme_str() != Some("https") {
            return Err(KeysError::new(
                "jwks_uri: an https discovery document must name an https key set",
            ));
        }
        let algs = self.id_token_signing_alg_values_supported.as_ref();
        if algs.is_some_and(|algs| {
            !algs
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "ES256"))
        }) {
            tracing::warn!(
                issuer = %self.issuer,
                "the discovery document's id_token_signing_alg_values_supported lacks \
                 ES256; only ES256 is accepted all the same"
            );
        }
        Ok(Accepted {
            jwks_uri: self.jwks_uri,
            slash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://id.example/dc";

    #[test]
    fn documents() {
        let jwks_uri = |body: &str| {
            parse_discovery(body.as_bytes())
                .and_then(|document| document.jwks_uri_for(ISSUER))
                .map(|accepted| accepted.jwks_uri)
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            jwks_uri(
                r#"{"issuer":"https://id.example/dc","jwks_uri":"https://id.example/dc/jwks","id_token_signing_alg_values_supported":["ES256"]}"#
            ),
            Ok("https://id.example/dc/jwks".to_owned())
        );
        let accepted = |body: &str| {
            parse_discovery(body.as_bytes())
                .and_then(|document| document.jwks_uri_for(ISSUER))
                .map(|accepted| accepted.slash)
                .map_err(|e| e.to_string())
        };
        // One trailing slash more in the document: accepted, tokens carry the document's.
        assert_eq!(
            accepted(
                r#"{"issuer":"https://id.example/dc/","jwks_uri":"https://id.example/dc/jwks"}"#
            ),
            Ok(true)
        );
        assert_eq!(
            accepted(
                r#"{"issuer":"https://id.example/dc","jwks_uri":"https://id.example/dc/jwks","id_token_signing_alg_values_supported":["RS256"]}"#
            ),
            Ok(false)
        );
        for (body, reason) in [
            ("", "not JSON"),
            ("<html>", "not JSON"),
            (r#"{"issuer":"https://id.example/dc"}"#, "not JSON"),
            (
                r#"{"issuer":1,"jwks_uri":"https://id.example/dc/jwks"}"#,
                "not JSON",
            ),
            (r#"["https://id.example/dc"]"#, "not JSON"),
            (
                r#"{"issuer":"https://id.example/dc//","jwks_uri":"https://id.example/dc/jwks"}"#,
                "is not",
            ),
            (
                r#"{"issuer":"https://id.example/DC","jwks_uri":"https://id.example/dc/jwks"}"#,
                "is not",
            ),
            (
                r#"{"issuer":"https://id.example/d","jwks_uri":"https://id.example/dc/jwks"}"#,
                "is not",
            ),
            (
                r#"{"issuer":"https://id.example/dc","jwks_uri":"http://127.0.0.1/dc/jwks"}"#,
                "must name an https key set",
            ),
            (
                r#"{"issuer":"https://id.example/dc","jwks_uri":"not a url"}"#,
                "jwks_uri is not a URL",
            ),
            (
                r#"{"issuer":"https://id.example/dc","jwks_uri":"http://id.example/dc/jwks"}"#,
                "loopback",
            ),
        ] {
            let error = jwks_uri(body).unwrap_err();
            assert!(error.contains(reason), "{body}: {error}");
        }
    }

    #[test]
    fn issuers() {
        let issuer = |url: &str| discovery_issuer(url).map(|(_, issuer)| issuer);
        assert_eq!(
            issuer("https://id.example/dc/.well-known/openid-configuration").unwrap(),
            ISSUER
        );
        assert_eq!(
            issuer("https://id.example/.well-known/openid-configuration").unwrap(),
            "https://id.example"
        );
        let error = issuer("https://id.example/dc//.well-known/openid-configuration")
            .unwrap_err()
            .to_string();
        assert!(error.contains("names no issuer"), "{error}");
    }

    /// A discovery document is a JSON object in UTF-8 throughout (found by the
    /// `discovery` fuzz target: a document with a byte that is not UTF-8 in a member this
    /// crate ignores was accepted; serde would also read one from a JSON array).
    #[test]
    fn a_discovery_document_is_a_utf8_json_object() {
        let document = |extra: &[u8]| {
            let mut document =
                br#"{"issuer":"https://id.example","jwks_uri":"https://id.example/j","x":""#
                    .to_vec();
            document.extend(extra);
            document.extend(br#""}"#);
            document
        };
        let parsed = parse_discovery(&document(b"ES256")).unwrap();
        assert_eq!(
            (parsed.issuer.as_str(), parsed.jwks_uri.as_str()),
            ("https://id.example", "https://id.example/j")
        );
        for refused in [
            document(b"ES2\xff6"),
            br#"["https://id.example","https://id.example/j"]"#.to_vec(),
        ] {
            let text = String::from_utf8_lossy(&refused).into_owned();
            let error = parse_discovery(&refused).expect_err(&text);
            assert_eq!(error.class(), FailureClass::NotJson, "{text}");
        }
    }
}
