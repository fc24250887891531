//! `send --tamper`: the ways a request is broken, one token at a time, and the signers
//! every request of a run is signed with (the connector's secret and key, and the keys
//! and secrets a tampered request uses instead).

use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderName;
use tower_dt_signature::consts::{DT_ASYMMETRIC_SIGNATURE, X_DT_SIGNATURE};
use tower_dt_signature::events::{EventType, Payload};
use tower_dt_signature::testing::{AsymmetricSignOptions, AsymmetricSigner};
use tower_dt_signature::testing::{SignOptions, Signer};

use super::connector::{Scheme, Signing};

/// The ways `--tamper` breaks a request, one token at a time: [`Tamper::of`] lists those
/// of a scheme, used in turn. Under `both` every kind but [`BodyByte`](Self::BodyByte)
/// breaks one token and leaves the other valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// One body byte changed after signing (every token then disagrees with the body).
    BodyByte,
    /// `X-Dt-Signature`: one character of the signature changed.
    Signature,
    /// `X-Dt-Signature`: signed with another secret.
    OtherSecret,
    /// `X-Dt-Signature`: signed two hours ago, expired.
    Expired,
    /// No `X-Dt-Signature` header.
    NoSignature,
    /// `X-Dt-Signature`: the token of another body.
    OtherBody,
    /// `DT-Asymmetric-Signature`: one character of the signature changed.
    Es256Signature,
    /// `DT-Asymmetric-Signature`: signed with a key the identity server does not serve,
    /// under the connector's `kid`.
    UnknownKeySameKid,
    /// `DT-Asymmetric-Signature`: signed with a key the identity server does not serve,
    /// under that key's own `kid`.
    UnknownKey,
    /// `DT-Asymmetric-Signature`: `sub` is another organization (DT's keys sign every
    /// organization's events: only `sub` says they are yours).
    OtherOrg,
    /// `DT-Asymmetric-Signature`: `iss` is another issuer.
    OtherIssuer,
    /// `DT-Asymmetric-Signature`: signed two hours ago, expired (it lives 5 minutes).
    Es256Expired,
    /// No `DT-Asymmetric-Signature` header.
    NoEs256Signature,
    /// `DT-Asymmetric-Signature`: the token of another body.
    Es256OtherBody,
}

impl Tamper {
    /// With `--scheme hmac`, in the order they are used (as before the asymmetric scheme).
    pub const HMAC: [Tamper; 6] = [
        Tamper::BodyByte,
        Tamper::Signature,
        Tamper::OtherSecret,
        Tamper::Expired,
        Tamper::NoSignature,
        Tamper::OtherBody,
    ];

    /// With `--scheme asymmetric`, in the order they are used.
    pub const ASYMMETRIC: [Tamper; 9] = [
        Tamper::BodyByte,
        Tamper::Es256Signature,
        Tamper::UnknownKeySameKid,
        Tamper::UnknownKey,
        Tamper::OtherOrg,
        Tamper::OtherIssuer,
        Tamper::Es256Expired,
        Tamper::NoEs256Signature,
        Tamper::Es256OtherBody,
    ];

    /// With `--scheme both`, in the order they are used: the changed body, then each
    /// token broken in turn while the other stays valid.
    pub const BOTH: [Tamper; 14] = [
        Tamper::BodyByte,
        Tamper::Signature,
        Tamper::OtherSecret,
        Tamper::Expired,
        Tamper::NoSignature,
        Tamper::OtherBody,
        Tamper::Es256Signature,
        Tamper::UnknownKeySameKid,
        Tamper::UnknownKey,
        Tamper::OtherOrg,
        Tamper::OtherIssuer,
        Tamper::Es256Expired,
        Tamper::NoEs256Signature,
        Tamper::Es256OtherBody,
    ];

    /// What the kind does, in a few words, for the listing of a run.
    pub fn what(self) -> &'static str {
        match self {
            Self::BodyByte => "a body byte changed",
            Self::Signature => "HMAC signature changed",
            Self::OtherSecret => "HMAC under another secret",
            Self::Expired => "HMAC token expired",
            Self::NoSignature => "no X-Dt-Signature",
            Self::OtherBody => "HMAC token of another body",
            Self::Es256Signature => "ES256 signature changed",
            Self::UnknownKeySameKid => "ES256 key not served, same kid",
            Self::UnknownKey => "ES256 key not served",
            Self::OtherOrg => "ES256 token for another organization",
            Self::OtherIssuer => "ES256 token of another issuer",
            Self::Es256Expired => "ES256 token expired",
            Self::NoEs256Signature => "no DT-Asymmetric-Signature",
            Self::Es256OtherBody => "ES256 token of another body",
        }
    }

    /// The kinds used with `scheme`.
    pub fn of(scheme: Scheme) -> &'static [Tamper] {
        match scheme {
            Scheme::Hmac => &Self::HMAC,
            Scheme::Asymmetric => &Self::ASYMMETRIC,
            Scheme::Both => &Self::BOTH,
        }
    }
}

/// Everything a run signs with, made once.
pub(crate) struct Signers {
    /// The connector's secret, if `X-Dt-Signature` is sent.
    hmac: Option<Signer>,
    /// Another secret, for [`Tamper::OtherSecret`].
    other_hmac: Option<Signer>,
    es256: Option<Es256Signers>,
}

/// The connector's key and two keys the identity server does not serve.
struct Es256Signers {
    signer: AsymmetricSigner,
    /// A stranger's key under the connector's `kid` ([`Tamper::UnknownKeySameKid`]).
    same_kid: AsymmetricSigner,
    /// A stranger's key under its own `kid` ([`Tamper::UnknownKey`]).
    stranger: AsymmetricSigner,
}

impl Signers {
    pub(crate) fn new(signing: &Signing) -> Self {
        let secret = signing.secret();
        Self {
            hmac: secret.map(Signer::new),
            other_hmac: secret.map(|secret| Signer::new(format!("{secret}-not"))),
            es256: signing.es256().map(|signer| {
                // Fresh keys, never served: right issuer and organization, wrong key.
                let unknown = || {
                    AsymmetricSigner::generate()
                        .with_issuer(signer.issuer())
                        .with_org_id(signer.org_id())
                };
                Es256Signers {
                    signer: signer.clone(),
                    same_kid: unknown().with_kid(signer.kid()),
                    stranger: unknown(),
                }
            }),
        }
    }

    /// The signature headers for `body`, issued at `iat`, each token valid.
    pub(crate) fn tokens(&self, body: &[u8], iat: u64) -> Vec<(HeaderName, String)> {
        let mut tokens = Vec::new();
        if let Some(hmac) = &self.hmac {
            let token = hmac.sign_with(body, &SignOptions::new().iat(iat));
            tokens.push((X_DT_SIGNATURE, token));
        }
        if let Some(es) = &self.es256 {
            let token = es
                .signer
                .sign_with(body, &AsymmetricSignOptions::new().iat(iat));
            tokens.push((DT_ASYMMETRIC_SIGNATURE, token));
        }
        tokens
    }

    /// The signature headers for `body` with the token `tamper` names broken (and any
    /// other valid); `other_body` is another event's body.
    fn tampered_tokens(
        &self,
        tamper: Tamper,
        body: &[u8],
        other_body: &[u8],
        iat: u64,
    ) -> Vec<(HeaderName, String)> {
        let mut tokens = Vec::new();
        if let (Some(hmac), Some(other)) = (&self.hmac, &self.other_hmac) {
            let options = SignOptions::new().iat(iat);
            let token = match tamper {
                Tamper::Signature => Some(flip_signature(hmac.sign_with(body, &options))),
                Tamper::OtherSecret => Some(other.sign_with(body, &options)),
                Tamper::Expired => {
                    let old = SignOptions::new().iat(iat.saturating_sub(2 * 3600));
                    Some(hmac.sign_with(body, &old))
                }
                Tamper::NoSignature => None,
                Tamper::OtherBody => Some(hmac.sign_with(other_body, &options)),
                _ => Some(hmac.sign_with(body, &options)),
            };
            tokens.extend(token.map(|token| (X_DT_SIGNATURE, token)));
        }
        if let Some(es) = &self.es256 {
            let options = AsymmetricSignOptions::new().iat(iat);
            let signer = &es.signer;
            let token = match tamper {
                Tamper::Es256Signature => Some(flip_signature(signer.sign_with(body, &options))),
                Tamper::UnknownKeySameKid => Some(es.same_kid.sign_with(body, &options)),
                Tamper::UnknownKey => Some(es.stranger.sign_with(body, &options)),
                Tamper::OtherOrg => {
                    let other = options.org_id(format!("{}-not", signer.org_id()));
                    Some(signer.sign_with(body, &other))
                }
                Tamper::OtherIssuer => {
                    let other = options.issuer(format!("{}-not", signer.issuer()));
                    Some(signer.sign_with(body, &other))
                }
                Tamper::Es256Expired => {
                    let old = AsymmetricSignOptions::new().iat(iat.saturating_sub(2 * 3600));
                    Some(signer.sign_with(body, &old))
                }
                Tamper::NoEs256Signature => None,
                Tamper::Es256OtherBody => Some(signer.sign_with(other_body, &options)),
                _ => Some(signer.sign_with(body, &options)),
            };
            tokens.extend(token.map(|token| (DT_ASYMMETRIC_SIGNATURE, token)));
        }
        tokens
    }
}

/// The request `send --tamper` sends for `event_type` broken as `tamper` says, signed
/// as `signing` says at `now`: its signature headers and its body. For the tests that
/// compare what the library says of each kind.
pub fn tampered_request(
    signing: &Signing,
    event_type: &EventType,
    tamper: Tamper,
    now: SystemTime,
) -> (Vec<(HeaderName, String)>, Vec<u8>) {
    tampered(&Signers::new(signing), event_type, tamper, now)
}

/// [`tampered_request`] with the run's signers.
pub(crate) fn tampered(
    signers: &Signers,
    event_type: &EventType,
    tamper: Tamper,
    now: SystemTime,
) -> (Vec<(HeaderName, String)>, Vec<u8>) {
    let payload = Payload::sample(event_type, now).expect("a known type");
    let mut body = serde_json::to_vec(&payload).expect("payloads serialize");
    let other = Payload::sample(event_type, now).expect("a known type");
    let other = serde_json::to_vec(&other).expect("payloads serialize");
    let iat = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());

    let tokens = signers.tampered_tokens(tamper, &body, &other, iat);
    if tamper == Tamper::BodyByte {
        // A digit of the event id: still valid JSON, another event.
        let at = find(&body, b"\"eventId\":\"") + 11;
        body[at] = if body[at] == b'0' { b'1' } else { b'0' };
    }
    (tokens, body)
}

/// `token` with one character of its signature changed.
fn flip_signature(token: String) -> String {
    let mut token = token.into_bytes();
    let last = token.len() - 2; // not the last char: it carries padding bits
    token[last] = if token[last] == b'A' { b'B' } else { b'A' };
    String::from_utf8(token).expect("ASCII")
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
        .expect("the needle is in the body")
}
