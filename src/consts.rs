//! The fixed names and numbers of the wire format and the defaults.

use http::HeaderName;

/// The name of the header DT puts the HMAC token in, `x-dt-signature` (header names are
/// matched in any case).
pub const X_DT_SIGNATURE: HeaderName = HeaderName::from_static("x-dt-signature");

/// The longest signature header value accepted: 8 KiB. Real tokens are about 330 bytes.
pub const MAX_HEADER_LEN: usize = 8 * 1024;

/// The default [`max_body_size`](crate::DtSignatureLayer::max_body_size): 1 MiB. Real DT
/// bodies are 300-600 bytes.
pub const DEFAULT_MAX_BODY_SIZE: usize = 1024 * 1024;

/// How long DT's `X-Dt-Signature` tokens live: `exp` = `iat` + 3600.
pub const TOKEN_LIFETIME_SECS: u64 = 3600;

/// The name of the header DT puts the ES256 token in, `dt-asymmetric-signature` (header
/// names are matched in any case).
pub const DT_ASYMMETRIC_SIGNATURE: HeaderName = HeaderName::from_static("dt-asymmetric-signature");

/// How long DT's `DT-Asymmetric-Signature` tokens live: `exp` = `iat` + 300.
pub const ASYMMETRIC_TOKEN_LIFETIME_SECS: u64 = 300;

/// DT's production issuer of `DT-Asymmetric-Signature` tokens.
pub const DT_ISSUER: &str = "https://identity.disruptive-technologies.com/data-connector";

/// DT's production OpenID Connect discovery document: [`DT_ISSUER`] +
/// `/.well-known/openid-configuration`.
pub const DT_DISCOVERY_URL: &str =
    "https://identity.disruptive-technologies.com/data-connector/.well-known/openid-configuration";
