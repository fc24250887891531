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

/// Builder setters of an options struct whose fields are `Option`s: each `name: Type;` is
/// a `pub fn name(mut self, name: Type) -> Self` that sets the field to `Some(name)`, and
/// `name: impl Into<Type>;` one that sets it to `Some(name.into())`.
macro_rules! option_setters {
    () => {};
    ($(#[$doc:meta])* $name:ident: impl Into<$ty:ty>; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn $name(mut self, $name: impl Into<$ty>) -> Self {
            self.$name = Some($name.into());
            self
        }
        option_setters!($($rest)*);
    };
    ($(#[$doc:meta])* $name:ident: $ty:ty; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn $name(mut self, $name: $ty) -> Self {
            self.$name = Some($name);
            self
        }
        option_setters!($($rest)*);
    };
}

/// A signer's `request` and `request_with`: a `POST` whose `$header` is the signer's
/// `sign_with` token; `request` signs with the default options. The doc attributes are
/// `request`'s.
macro_rules! dt_requests {
    ($(#[$doc:meta])* $header:path, $options:ty) => {
        $(#[$doc])*
        pub fn request<B: From<Bytes>>(
            &self,
            uri: &str,
            body: impl Into<Bytes>,
        ) -> Result<Request<B>, http::Error> {
            self.request_with(uri, body, &<$options>::new())
        }

        /// Like [`request`](Self::request), signed with `options`.
        pub fn request_with<B: From<Bytes>>(
            &self,
            uri: &str,
            body: impl Into<Bytes>,
            options: &$options,
        ) -> Result<Request<B>, http::Error> {
            let body = body.into();
            $crate::testing::dt_post(uri, $header, self.sign_with(&body, options), body)
        }
    };
}

#[cfg(feature = "asymmetric")]
mod asymmetric;
#[cfg(feature = "asymmetric")]
mod identity;
mod sample;
mod signer;

#[cfg(feature = "asymmetric")]
#[cfg_attr(docsrs, doc(cfg(feature = "asymmetric")))]
pub use asymmetric::{AsymmetricSignOptions, AsymmetricSigner, SAMPLE_ORG_ID};
#[cfg(feature = "asymmetric")]
#[cfg_attr(docsrs, doc(cfg(feature = "asymmetric")))]
pub use identity::{Behavior, Endpoint, IdentityServer};
pub use sample::SAMPLE_PROJECT_ID;
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

/// The JWS signing input: the base64url of the JOSE header and of the claims, joined by a
/// dot.
fn signing_input(header: &[u8], claims: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{}", b64.encode(header), b64.encode(claims))
}
