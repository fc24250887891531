//! Test support (feature `test-util`): sign requests exactly as a DT Data Connector does,
//! and build schema-true payloads, so that nobody needs a DT account to test a receiver.
//!
//! - [`Signer`] mints `X-Dt-Signature` tokens and signed requests byte-identical to DT's;
//!   [`SignOptions`] sets `iat`, `exp`, `jti` or a SHA-1-only legacy token.
//! - [`Payload::sample`](crate::events::Payload::sample) gives a schema-true body of any
//!   event type.
//! - With the feature `asymmetric` too: `AsymmetricSigner` mints `DT-Asymmetric-Signature`
//!   tokens (ES256) in DT's shape under a key of the test's own, and `IdentityServer`
//!   serves its public keys through OpenID Connect discovery on 127.0.0.1, with rotations,
//!   request counts and failures on demand.

#[cfg(feature = "asymmetric")]
mod asymmetric;
#[cfg(feature = "asymmetric")]
mod identity;
mod signer;

pub use crate::sample::SAMPLE_PROJECT_ID;
#[cfg(feature = "asymmetric")]
#[cfg_attr(docsrs, doc(cfg(feature = "asymmetric")))]
pub use asymmetric::{AsymmetricSignOptions, AsymmetricSigner, SAMPLE_ORG_ID};
#[cfg(feature = "asymmetric")]
#[cfg_attr(docsrs, doc(cfg(feature = "asymmetric")))]
pub use identity::{Behavior, Endpoint, IdentityServer};
pub(crate) use signer::{encode_id, new_id};
pub use signer::{SignOptions, Signer};

/// A `POST` to `uri` as a Data Connector sends it: the signature header, `Content-Type:
/// application/json`, `Content-Length` and the body.
fn dt_post<B: From<bytes::Bytes>>(
    uri: &str,
    header: http::HeaderName,
    token: String,
    body: bytes::Bytes,
) -> Result<http::Request<B>, http::Error> {
    http::Request::post(uri)
        .header(header, token)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(B::from(body))
}
