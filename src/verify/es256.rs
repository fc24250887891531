//! The `DT-Asymmetric-Signature` token (feature `asymmetric`): ES256 under DT's published
//! keys, bound to an issuer and a DT organization.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::{DecodeSliceError, Engine as _};
use http::HeaderMap;
use serde::Deserialize;

use super::policy::Token;
use super::{check_times, parse_claims, signature_header, HeaderKinds, HexClaim, TokenParts};
use crate::consts::DT_ASYMMETRIC_SIGNATURE;
use crate::error::{DtSignatureError, ErrorKind, Scheme};
use crate::keys::{DtKeys, KeyWait, Lookup, OrgId};

/// The header rules' errors for `DT-Asymmetric-Signature`.
const HEADER_KINDS: HeaderKinds = HeaderKinds {
    missing: ErrorKind::MissingAsymmetricHeader,
    duplicate: ErrorKind::DuplicateAsymmetricHeader,
    invalid: ErrorKind::InvalidAsymmetricHeader,
    too_large: ErrorKind::AsymmetricHeaderTooLarge,
};

/// An asymmetric token whose checks that need no body passed.
pub(crate) struct EsPart {
    pub(crate) issuer: std::sync::Arc<str>,
    pub(crate) kid: String,
    pub(crate) sub: String,
    pub(crate) iat: Option<u64>,
    pub(crate) exp: u64,
    pub(crate) sha256: [u8; 32],
}

/// The asymmetric token's state, or a key refresh to wait for first.
pub(crate) enum EsCheck {
    Done(Token<EsPart>),
    Wait(KeyWait),
}

/// Check the `DT-Asymmetric-Signature` token in `headers` against `keys` and `org`.
/// With `may_wait`, a `kid` missing from the key set asks for a refresh (within the
/// limits of [`DtKeys`]) and returns it to wait for; without, the set as it stands decides.
pub(crate) fn check(
    keys: &DtKeys,
    org: &OrgId,
    headers: &HeaderMap,
    now: SystemTime,
    leeway: Duration,
    may_wait: bool,
) -> EsCheck {
    let token = match signature_header(headers.get_all(DT_ASYMMETRIC_SIGNATURE), HEADER_KINDS) {
        Ok(token) => token,
        Err(error) => {
            let error = error.for_scheme(Scheme::Asymmetric);
            return EsCheck::Done(if error.kind() == ErrorKind::MissingAsymmetricHeader {
                Token::Absent(error)
            } else {
                Token::Invalid(error)
            });
        }
    };
    match check_token(keys, org, token, now, leeway, may_wait) {
        Ok(part) => EsCheck::Done(Token::Valid(part)),
        Err(Outcome::Wait(wait)) => EsCheck::Wait(wait),
        Err(Outcome::Refused(error)) => {
            let error = error.for_scheme(Scheme::Asymmetric);
            EsCheck::Done(if error.kind() == ErrorKind::KeysUnavailable {
                Token::Uncheckable(error)
            } else {
                Token::Invalid(error)
            })
        }
    }
}

enum Outcome {
    Wait(KeyWait),
    Refused(DtSignatureError),
}

impl From<ErrorKind> for Outcome {
    fn from(kind: ErrorKind) -> Self {
        Self::Refused(kind.into())
    }
}

impl From<DtSignatureError> for Outcome {
    fn from(error: DtSignatureError) -> Self {
        Self::Refused(error)
    }
}

/// The JOSE header of an asymmetric token. Only `alg`, `kid` and `crit` are read: a key is
/// never taken from the token (`jwk`, `x5c`) nor fetched from a URL it names (`jku`,
/// `x5u`).
#[derive(Deserialize)]
struct EsHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(default, borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

fn check_token(
    keys: &DtKeys,
    org: &OrgId,
    token: &str,
    now: SystemTime,
    leeway: Duration,
    may_wait: bool,
) -> Result<EsPart, Outcome> {
    let parts = TokenParts::split(token)?;
    let json = URL_SAFE_NO_PAD
        .decode(parts.header)
        .map_err(|_| ErrorKind::MalformedToken)?;
    if json.trim_ascii_start().first() != Some(&b'{') {
        return Err(ErrorKind::MalformedToken.into());
    }
    let header: EsHeader<'_> =
        serde_json::from_slice(&json).map_err(|_| ErrorKind::MalformedToken)?;
    // Exactly ES256: `none`, HS256 (keyed with the public key's bytes), ES384, RS256 ...
    // are refused before any key is touched.
    if header.alg != "ES256" || header.crit.is_some() {
        return Err(ErrorKind::UnsupportedAlgorithm.into());
    }
    let kid = header.kid.ok_or(ErrorKind::MissingKeyId)?;

    // r || s, 32 bytes each (RFC 7518, 3.4).
    let mut signature = [0u8; 64];
    match URL_SAFE_NO_PAD.decode_slice(parts.signature, &mut signature) {
        Ok(64) => {}
        Ok(_) => return Err(ErrorKind::InvalidSignature.into()),
        Err(DecodeSliceError::OutputSliceTooSmall) => {
            URL_SAFE_NO_PAD
                .decode(parts.signature)
                .map_err(|_| ErrorKind::MalformedToken)?;
            return Err(ErrorKind::InvalidSignature.into());
        }
        Err(DecodeSliceError::DecodeError(_)) => return Err(ErrorKind::MalformedToken.into()),
    }

    let key = match keys.lookup(&kid) {
        Lookup::Found(key) => key,
        missing => {
            if may_wait {
                if let Some(wait) = keys.refresh_for_unknown_kid() {
                    return Err(Outcome::Wait(wait));
                }
            }
            return Err(match missing {
                Lookup::Unknown => ErrorKind::UnknownKey,
                _ => ErrorKind::KeysUnavailable,
            }
            .into());
        }
    };
    if !key.verify(parts.signing_input.as_bytes(), &signature) {
        return Err(ErrorKind::InvalidSignature.into());
    }

    let claims = parse_claims(parts.payload)?;
    if claims.iss.as_deref() != Some(keys.issuer()) {
        return Err(ErrorKind::WrongIssuer.into());
    }
    let exp = claims.exp.ok_or(ErrorKind::MissingExpiry)?;
    check_times(now, leeway, exp, claims.iat, claims.nbf)?;
    let sub = claims.sub.ok_or(ErrorKind::WrongOrganization)?;
    if !org.accepts(&sub) {
        return Err(ErrorKind::WrongOrganization.into());
    }
    let sha256 = claims
        .checksum_sha256
        .ok_or(ErrorKind::MissingSha256)
        .map_err(DtSignatureError::from)
        .and_then(HexClaim::digest)?;
    Ok(EsPart {
        issuer: keys.shared_issuer(),
        kid: kid.into_owned(),
        sub,
        iat: claims.iat,
        exp,
        sha256,
    })
}
