//! How a key set stands, for a health page or an operator: [`DtKeys::status`], and the
//! classes a failed refresh falls in.
//!
//! [`DtKeys::status`]: super::DtKeys::status

use std::fmt;
use std::time::SystemTime;

/// Why a refresh of a discovered key set (or one GET of it) failed, in one word. Each
/// class is also the `outcome` label of the `dt_signature_jwks_fetches_total` metric
/// ([`code`](Self::code)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureClass {
    /// No connection: refused, unreachable, DNS, or a proxy that would not tunnel.
    Connect,
    /// The TLS handshake failed: an untrusted or wrong certificate, say.
    Tls,
    /// No complete answer within the 5 s budget (or the connect timeout).
    Timeout,
    /// The server answered a status other than `200 OK`.
    HttpStatus,
    /// A redirect that is not followed: one too many, to plain http, or off loopback.
    RedirectRefused,
    /// A body over 64 KiB.
    TooLarge,
    /// A body that is not the JSON document expected.
    NotJson,
    /// The discovery document speaks for another issuer.
    IssuerMismatch,
    /// The key set holds no key that can be used (EC P-256 ES256 signing key with a `kid`).
    NoUsableKey,
    /// Anything else (a refused `jwks_uri`, a key set with one `kid` on two keys, …).
    Other,
}

impl FailureClass {
    /// Every class, in the order above.
    pub const ALL: [FailureClass; 10] = [
        Self::Connect,
        Self::Tls,
        Self::Timeout,
        Self::HttpStatus,
        Self::RedirectRefused,
        Self::TooLarge,
        Self::NotJson,
        Self::IssuerMismatch,
        Self::NoUsableKey,
        Self::Other,
    ];

    /// The class in snake case: `connect`, `tls`, `timeout`, `http_status`,
    /// `redirect_refused`, `too_large`, `not_json`, `issuer_mismatch`, `no_usable_key`,
    /// `other`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Timeout => "timeout",
            Self::HttpStatus => "http_status",
            Self::RedirectRefused => "redirect_refused",
            Self::TooLarge => "too_large",
            Self::NotJson => "not_json",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::NoUsableKey => "no_usable_key",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// How a key set stands: see [`DtKeys::status`](super::DtKeys::status).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStatus {
    /// The issuer tokens must carry now ([`DtKeys::issuer`](super::DtKeys::issuer)).
    pub issuer: String,
    /// A key set is loaded ([`DtKeys::ready`](super::DtKeys::ready)).
    pub loaded: bool,
    /// The `kid`s of the keys loaded now, sorted.
    pub kids: Vec<String>,
    /// The last refresh that ended; `None` for pinned keys and before the first one ends.
    pub last_refresh: Option<LastRefresh>,
    /// The last failed refresh, even if later ones succeeded.
    pub last_failure: Option<LastFailure>,
    /// Failed refreshes in a row (0 after a success).
    pub consecutive_failures: u32,
    /// When the next refresh is due (it may come earlier, for an unknown `kid`); `None`
    /// for pinned keys and while no refresh task runs.
    pub next_refresh: Option<SystemTime>,
}

/// When the last refresh ended, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LastRefresh {
    /// When it ended.
    pub at: SystemTime,
    /// `None`: it succeeded; else why it failed.
    pub failure: Option<FailureClass>,
}

impl LastRefresh {
    /// Whether it succeeded.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// A failed refresh: when, its class, and the reason (never a body or a credential).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LastFailure {
    /// When it ended.
    pub at: SystemTime,
    /// Its class.
    pub class: FailureClass,
    /// What went wrong, for a person.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let codes: Vec<String> = FailureClass::ALL.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            codes,
            [
                "connect",
                "tls",
                "timeout",
                "http_status",
                "redirect_refused",
                "too_large",
                "not_json",
                "issuer_mismatch",
                "no_usable_key",
                "other"
            ]
        );
    }
}
