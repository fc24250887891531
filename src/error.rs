//! Errors: why a request was refused, and why a configuration was refused.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use http::StatusCode;

/// Why a Data Connector request failed verification.
///
/// The error is opaque: match on [`kind`](Self::kind). Its `Display` text is the public
/// one ([`ErrorKind::public_str`]): short, lowercase, from a fixed set, never the secret,
/// the token, a digest or body bytes, and never more than a client may learn, so it is
/// safe to send back. The precise reason, for logs, is [`reason`](Self::reason).
///
/// Which token it concerns is [`scheme`](Self::scheme).
///
/// Every rejection response made by [`DtSignature`](crate::DtSignature) carries a clone of
/// this error in its extensions, so an outer layer or a test can read why:
///
/// ```
/// # use tower_dt_signature::{DtSignatureError, ErrorKind};
/// # fn check(response: &http::Response<String>) {
/// if let Some(error) = response.extensions().get::<DtSignatureError>() {
///     assert_eq!(error.kind(), ErrorKind::MissingHeader);
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct DtSignatureError {
    kind: ErrorKind,
    scheme: Option<Scheme>,
    /// Decided after a gateway's resolver: the public text is the wrong-signature one, so
    /// the answer never tells which tenant or policy decided.
    masked: bool,
    /// The kind whose status and public text the answer takes, when not `kind`'s own: an
    /// unknown tenant whose gateway's decoy found its key set unavailable answers as a
    /// known tenant does (`KeysUnavailable`).
    answered_as: Option<ErrorKind>,
    source: Option<Source>,
}

/// The error behind a refusal (a body read error, a resolver's error). Its `Debug` says
/// that there is one, never its text, so that `{:?}` of a [`DtSignatureError`] stays as
/// safe to log as its `Display`.
#[derive(Clone)]
struct Source(Arc<dyn StdError + Send + Sync>);

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<source>")
    }
}

/// A signature scheme of DT's: which token an error or a verification concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `X-Dt-Signature`: HS256 under the connector's shared secret.
    Hmac,
    /// `DT-Asymmetric-Signature`: ES256 under DT's published keys.
    Asymmetric,
}

impl Scheme {
    /// `hmac` or `asymmetric`: the `scheme` label of the metrics.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Hmac => "hmac",
            Self::Asymmetric => "asymmetric",
        }
    }
}

/// `impl Display for $type`: the text of its `&'static str` method `$method`.
macro_rules! display_as_str {
    ($type:ty, $method:ident) => {
        impl ::std::fmt::Display for $type {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.$method())
            }
        }
    };
}
#[cfg_attr(not(feature = "dedup"), allow(unused_imports))]
pub(crate) use display_as_str;

display_as_str!(Scheme, code);

/// The one table of refusal reasons: every [`ErrorKind`], its metric code, its precise
/// text and its status. Adding a kind is one line here; the enum, its methods, the
/// `ALL` list and the metric labels are generated from it.
///
/// Columns: `Variant => ("code", "precise text", STATUS)`, then optionally
/// `public = "text"` when the text sent to the client must differ from the precise one.
macro_rules! error_kinds {
    ($callback:ident) => {
        $callback! {
            /// The request has no `X-Dt-Signature` header.
            MissingHeader => ("missing_header", "missing X-Dt-Signature header", BAD_REQUEST),
            /// The request has more than one `X-Dt-Signature` header.
            DuplicateHeader => ("duplicate_header", "more than one X-Dt-Signature header", BAD_REQUEST),
            /// The header value is not visible ASCII.
            InvalidHeader => ("invalid_header", "X-Dt-Signature header is not visible ASCII", BAD_REQUEST),
            /// The header value is longer than 8 KiB.
            HeaderTooLarge => ("header_too_large", "X-Dt-Signature header too large", BAD_REQUEST),
            /// The header is not a compact JWS: three base64url parts, a JSON object header
            /// and JSON claims.
            MalformedToken => ("malformed_token", "malformed token", BAD_REQUEST),
            /// The token's `alg` is not `HS256`, or its header asks for an extension
            /// (`crit`) that this crate does not implement.
            UnsupportedAlgorithm => ("unsupported_algorithm", "unsupported token algorithm", BAD_REQUEST),
            /// The token's HMAC does not match any configured secret.
            InvalidSignature => ("invalid_signature", "invalid token signature", BAD_REQUEST),
            /// The claims are not a JSON object of the expected shape (for example `exp` as
            /// a string, or a claim given twice).
            MalformedClaims => ("malformed_claims", "malformed token claims", BAD_REQUEST),
            /// The claims have no `exp`.
            MissingExpiry => ("missing_expiry", "token has no exp claim", BAD_REQUEST),
            /// `now >= exp + leeway`.
            Expired => ("expired", "token expired", BAD_REQUEST),
            /// `iat` is more than the leeway in the future.
            IssuedInFuture => ("issued_in_future", "token issued in the future", BAD_REQUEST),
            /// `nbf` is more than the leeway in the future.
            NotYetValid => ("not_yet_valid", "token not yet valid", BAD_REQUEST),
            /// The claims carry neither `checksum` nor `checksum_sha256`.
            MissingChecksum => ("missing_checksum", "token has no checksum claim", BAD_REQUEST),
            /// SHA-256 is required but the claims carry no `checksum_sha256`.
            MissingSha256 => ("missing_sha256", "token has no checksum_sha256 claim", BAD_REQUEST),
            /// A checksum claim is not a hex digest of the right length.
            MalformedChecksum => ("malformed_checksum", "malformed checksum claim", BAD_REQUEST),
            /// A checksum claim does not match the body.
            ChecksumMismatch => ("checksum_mismatch", "checksum mismatch", BAD_REQUEST),
            /// The body is larger than the configured limit.
            BodyTooLarge => ("body_too_large", "request body too large", PAYLOAD_TOO_LARGE),
            /// Reading the body failed (the client went away, a broken chunk).
            BodyRead => ("body_read", "failed to read request body", BAD_REQUEST),
            /// The request has no `DT-Asymmetric-Signature` header.
            MissingAsymmetricHeader => ("missing_asymmetric_header", "missing DT-Asymmetric-Signature header", BAD_REQUEST),
            /// The request has more than one `DT-Asymmetric-Signature` header.
            DuplicateAsymmetricHeader => ("duplicate_asymmetric_header", "more than one DT-Asymmetric-Signature header", BAD_REQUEST),
            /// The `DT-Asymmetric-Signature` value is not visible ASCII.
            InvalidAsymmetricHeader => ("invalid_asymmetric_header", "DT-Asymmetric-Signature header is not visible ASCII", BAD_REQUEST),
            /// The `DT-Asymmetric-Signature` value is longer than 8 KiB.
            AsymmetricHeaderTooLarge => ("asymmetric_header_too_large", "DT-Asymmetric-Signature header too large", BAD_REQUEST),
            /// The asymmetric token's header has no `kid`, or an empty one (which names no
            /// key: a key set's entry with an empty `kid` is skipped).
            MissingKeyId => ("missing_key_id", "token has no kid", BAD_REQUEST),
            /// The asymmetric token's `kid` is not in the key set, and the key set is
            /// current (its last refresh succeeded).
            UnknownKey => ("unknown_key", "unknown signing key", BAD_REQUEST),
            /// The asymmetric token cannot be checked: no key set has been obtained yet, or
            /// its `kid` is unknown and the last refresh failed (the keys may have rotated).
            /// Answered with 503, so DT retries.
            KeysUnavailable => ("keys_unavailable", "signing keys unavailable", SERVICE_UNAVAILABLE),
            /// The asymmetric token's `iss` is not the key set's issuer.
            WrongIssuer => ("wrong_issuer", "token issuer mismatch", BAD_REQUEST),
            /// The asymmetric token's `sub` is not the configured DT organization.
            WrongOrganization => ("wrong_organization", "token organization mismatch", BAD_REQUEST),
            /// The [secret resolver](crate::gateway::ResolveSecrets) knows no tenant for this
            /// request.
            ///
            /// Its public text (`Display`, [`DefaultRejection`](crate::rejection::DefaultRejection)) is
            /// that of [`InvalidSignature`](Self::InvalidSignature), so a client cannot tell
            /// an unknown tenant from a known one it has no secret for; the precise reason
            /// ([`DtSignatureError::reason`]), the log line and the metric say
            /// `unknown_tenant`. When the gateway's decoy finds its key set unavailable,
            /// it answers as a known tenant does then (`503 signing keys unavailable`,
            /// [`DtSignatureError::status`]); this column holds the usual 400.
            UnknownTenant => ("unknown_tenant", "unknown tenant", BAD_REQUEST, public = "invalid token signature"),
            /// The [secret resolver](crate::gateway::ResolveSecrets) failed (its store is
            /// down, a timeout): the request could not be checked. Answered with 503, so DT
            /// retries.
            ResolverFailed => ("resolver_failed", "secret lookup failed", SERVICE_UNAVAILABLE),
            /// [`Verifier::verify_token`](crate::Verifier::verify_token) (or `begin_token`) of a
            /// `both` or `either` verifier: one token cannot satisfy a policy that reads two
            /// headers; call [`Verifier::verify`](crate::Verifier::verify) with the headers.
            /// Never an answer of the layer.
            PolicyNeedsHeaders => ("policy_needs_headers", "policy reads both headers: use verify(headers, body)", BAD_REQUEST),
        }
    };
}
#[cfg_attr(not(feature = "metrics"), allow(unused_imports))]
pub(crate) use error_kinds;

/// The public text of a kind: the `public` column if given, else the precise text.
macro_rules! public_text {
    ($text:literal) => {
        $text
    };
    ($text:literal, $public:literal) => {
        $public
    };
}

macro_rules! define_error_kind {
    ($(
        $(#[doc = $doc:literal])*
        $kind:ident => ($code:literal, $text:literal, $status:ident $(, public = $public:literal)?),
    )*) => {
        /// The reason a request was refused; see [`DtSignatureError::kind`].
        ///
        /// New reasons may be added in minor releases, so matches need a wildcard arm.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $($(#[doc = $doc])* $kind,)*
        }

        impl ErrorKind {
            /// Every kind, in declaration order (`ALL[kind as usize] == kind`).
            pub const ALL: &'static [ErrorKind] = &[$(Self::$kind),*];

            /// The precise, fixed, non-secret text that names this reason, for logs. It can
            /// say more than a client should learn (`unknown tenant`): send
            /// [`public_str`](Self::public_str) instead.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$kind => $text,)*
                }
            }

            /// The text to send to a client, and the `Display` text: [`as_str`](Self::as_str),
            /// except where that would tell a client more than it should (an unknown tenant
            /// reads like [`InvalidSignature`](Self::InvalidSignature)).
            pub const fn public_str(self) -> &'static str {
                match self {
                    $(Self::$kind => public_text!($text $(, $public)?),)*
                }
            }

            /// A stable `snake_case` name for this reason, such as `checksum_mismatch`: the
            /// `kind` label of the metrics (feature `metrics`), and handy in structured logs.
            pub const fn code(self) -> &'static str {
                match self {
                    $(Self::$kind => $code,)*
                }
            }

            /// The status code the default rejection answers with: `413 Payload Too Large`
            /// for [`BodyTooLarge`](Self::BodyTooLarge), `503 Service Unavailable` when the
            /// request could not be checked ([`ResolverFailed`](Self::ResolverFailed)),
            /// or [`KeysUnavailable`](Self::KeysUnavailable)), `400 Bad Request` for
            /// everything else.
            pub const fn status(self) -> StatusCode {
                match self {
                    $(Self::$kind => StatusCode::$status,)*
                }
            }
        }
    };
}

error_kinds!(define_error_kind);

impl fmt::Display for ErrorKind {
    /// The public text ([`public_str`](Self::public_str)).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.public_str())
    }
}

impl DtSignatureError {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            scheme: None,
            masked: false,
            answered_as: None,
            source: None,
        }
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self {
            source: Some(Source(Arc::from(source.into()))),
            ..Self::new(kind)
        }
    }

    /// The same error, about the token of `scheme`.
    pub(crate) fn for_scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = Some(scheme);
        self
    }

    /// The same error, answered with the status and public text of `kind` (an unknown
    /// tenant under a key outage: `KeysUnavailable`).
    pub(crate) fn answered_as(mut self, kind: ErrorKind) -> Self {
        self.answered_as = Some(kind);
        self
    }

    /// The kind whose status and public text the answer takes.
    fn answer(&self) -> ErrorKind {
        self.answered_as.unwrap_or(self.kind)
    }

    /// The same error, decided after a gateway's resolver: its public text becomes the
    /// wrong-signature one (a 503 or 413 keeps its status and text).
    pub(crate) fn masked(mut self) -> Self {
        self.masked = true;
        self
    }

    /// Which token the error concerns: `None` for what concerns the request as a whole
    /// (its body, the tenant lookup).
    pub fn scheme(&self) -> Option<Scheme> {
        self.scheme
    }

    /// The text to send to a client (also the `Display` text): the kind's
    /// [`public_str`](ErrorKind::public_str), or, for a refusal a gateway decided after
    /// picking the tenant, `invalid token signature` whatever the reason, so that the
    /// answer never tells which tenants exist or how each is configured. An unknown
    /// tenant whose gateway's decoy finds its key set unavailable reads `signing keys
    /// unavailable`, as a known tenant of the decoy's policy does (see
    /// [`status`](Self::status)).
    pub fn public_str(&self) -> &'static str {
        let answer = self.answer();
        if self.masked && answer.status() == StatusCode::BAD_REQUEST {
            ErrorKind::InvalidSignature.public_str()
        } else {
            answer.public_str()
        }
    }

    /// A body read error: [`BodyTooLarge`](ErrorKind::BodyTooLarge) if an outer limit
    /// (`http_body_util::Limited`, as used by tower-http's `RequestBodyLimitLayer`) cut the
    /// body off, [`BodyRead`](ErrorKind::BodyRead) otherwise.
    pub(crate) fn from_body_error(error: Box<dyn StdError + Send + Sync>) -> Self {
        let mut cause: Option<&(dyn StdError + 'static)> = Some(&*error);
        while let Some(current) = cause {
            if current.is::<http_body_util::LengthLimitError>() {
                return Self::with_source(ErrorKind::BodyTooLarge, error);
            }
            cause = current.source();
        }
        Self::with_source(ErrorKind::BodyRead, error)
    }

    /// Why the request was refused.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The precise reason ([`ErrorKind::as_str`]), for logs and metrics. Unlike the
    /// `Display` text it can tell which tenants exist (`unknown tenant`): never send it to
    /// a client.
    pub fn reason(&self) -> &'static str {
        self.kind.as_str()
    }

    /// The status code of the default rejection: the kind's
    /// ([`ErrorKind::status`]: 413 for a body over the limit, 503 when the secret resolver
    /// failed or the signing keys are unavailable, 400 for everything else), but for one
    /// case: an [`UnknownTenant`](ErrorKind::UnknownTenant) is a 503 when the gateway's
    /// [`Decoy`](crate::gateway::Decoy) finds its key set unavailable, as a known tenant
    /// of the decoy's policy answers then. Its [`kind`](Self::kind) stays
    /// `UnknownTenant`, its [`scheme`](Self::scheme) is `Some(Asymmetric)`.
    pub fn status(&self) -> StatusCode {
        self.answer().status()
    }
}

impl From<ErrorKind> for DtSignatureError {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

impl fmt::Display for DtSignatureError {
    /// The public text ([`ErrorKind::public_str`]): safe to send to a client.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.public_str())
    }
}

impl StdError for DtSignatureError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_ref()
            .map(|source| &*source.0 as &(dyn StdError + 'static))
    }
}

/// Why a configuration was refused, from the `try_` constructors.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The secret is empty. DT does not allow an empty signature secret, and an empty HMAC
    /// key would make every token easy to forge.
    EmptySecret,
    /// The DT organization id is empty (after one leading `organizations/`).
    EmptyOrgId,
    /// The DT organization id holds whitespace, such as a pasted line ending.
    OrgIdWhitespace,
    /// The DT organization id holds a `/` after one leading `organizations/`: the name of
    /// another resource, or the prefix twice.
    OrgIdSlash,
    /// A secret was added to an `asymmetric` verifier, which reads no `X-Dt-Signature`
    /// token: use [`Verifier::either`](crate::Verifier::either) or
    /// [`Verifier::both`](crate::Verifier::both) to accept HMAC tokens too.
    SecretWithoutHmac,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptySecret => f.write_str("signature secret is empty"),
            Self::EmptyOrgId => f.write_str("DT organization id is empty"),
            Self::OrgIdWhitespace => f.write_str("DT organization id contains whitespace"),
            Self::OrgIdSlash => {
                f.write_str("DT organization id contains `/`: give the id, or `organizations/<id>`")
            }
            Self::SecretWithoutHmac => {
                f.write_str("an asymmetric verifier reads no X-Dt-Signature token: no secret")
            }
        }
    }
}

impl StdError for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// `{:?}` says a source is there, never its text (a resolver's error may hold a
    /// connection string).
    #[test]
    fn debug_never_prints_the_source() {
        let error = DtSignatureError::with_source(
            ErrorKind::ResolverFailed,
            "redis://:hunter2@store.internal/0 refused",
        );
        let debug = format!("{error:?}");
        assert!(
            debug.contains("<source>") && debug.contains("ResolverFailed"),
            "{debug}"
        );
        assert!(!debug.contains("hunter2"), "{debug}");
        assert_eq!(
            std::error::Error::source(&error).unwrap().to_string(),
            "redis://:hunter2@store.internal/0 refused"
        );
    }

    /// Every kind of the table: its index, a unique snake_case code, a unique lowercase
    /// precise text, a public text that tells no more than a wrong signature does, and a
    /// status of 400, 413 or 503. A kind added to the table is checked here with no edit.
    #[test]
    fn every_kind_is_complete_and_distinct() {
        let mut codes = HashSet::new();
        let mut texts = HashSet::new();
        for (index, &kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(kind as usize, index, "{kind:?}");
            let code = kind.code();
            assert!(
                !code.is_empty()
                    && code
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{kind:?}: {code}"
            );
            assert!(codes.insert(code), "{kind:?}: duplicate code {code}");
            let text = kind.as_str();
            assert!(!text.is_empty() && !text.ends_with('.'), "{kind:?}");
            // Lowercase, but for the header's name.
            assert!(
                text.starts_with(|c: char| c.is_ascii_lowercase())
                    || text.starts_with("X-Dt-Signature")
                    || text.starts_with("DT-Asymmetric-Signature"),
                "{kind:?}: {text}"
            );
            assert!(texts.insert(text), "{kind:?}: duplicate text {text}");
            assert!(
                [400, 413, 503].contains(&kind.status().as_u16()),
                "{kind:?}"
            );
            let error = DtSignatureError::from(kind);
            assert_eq!(error.to_string(), kind.public_str());
            assert_eq!(error.reason(), text);
            assert_eq!(kind.to_string(), kind.public_str());
        }
        // The one kind whose precise text would reveal something reads like a wrong secret.
        assert_eq!(
            ErrorKind::UnknownTenant.public_str(),
            ErrorKind::InvalidSignature.public_str()
        );
        assert_ne!(
            ErrorKind::UnknownTenant.as_str(),
            ErrorKind::UnknownTenant.public_str()
        );
    }
}
