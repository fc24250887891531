//! The rules both tokens share: the signature header's value, the compact JWS split, the
//! JOSE header's `alg` and `crit`, and the base64url and JSON decoding of the claims.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::{DecodeSliceError, Engine as _};
use http::header::{GetAll, HeaderValue};
use serde::{Deserialize, Deserializer};

use crate::consts::MAX_HEADER_LEN;
use crate::error::{DtSignatureError, ErrorKind};

/// The errors of the header rules, for one signature header.
#[derive(Clone, Copy)]
pub(crate) struct HeaderKinds {
    pub(crate) missing: ErrorKind,
    pub(crate) duplicate: ErrorKind,
    pub(crate) invalid: ErrorKind,
    pub(crate) too_large: ErrorKind,
}

/// The three dot-separated parts of a compact JWS, and the signing input they cover.
pub(crate) struct TokenParts<'a> {
    pub(crate) signing_input: &'a str,
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
}

impl<'a> TokenParts<'a> {
    /// Exactly three parts, or [`ErrorKind::MalformedToken`].
    pub(crate) fn split(token: &'a str) -> Result<Self, DtSignatureError> {
        // Two short searches from either end (the signature, then the header), then no
        // dot in the ~250-byte payload, checked without an early exit so that it is
        // vectorised (as the header rule's check is).
        let (signing_input, signature) = token.rsplit_once('.').ok_or(ErrorKind::MalformedToken)?;
        let (header, payload) = signing_input
            .split_once('.')
            .ok_or(ErrorKind::MalformedToken)?;
        if payload
            .bytes()
            .fold(false, |dot, byte| dot | (byte == b'.'))
        {
            return Err(ErrorKind::MalformedToken.into());
        }
        Ok(Self {
            signing_input,
            header,
            payload,
            signature,
        })
    }
}

/// Rule 1: exactly one header, at most 8 KiB, visible ASCII only; its value as text.
pub(crate) fn signature_header(
    values: GetAll<'_, HeaderValue>,
    kinds: HeaderKinds,
) -> Result<&str, DtSignatureError> {
    let mut iter = values.iter();
    let value = iter.next().ok_or(kinds.missing)?;
    if iter.next().is_some() {
        return Err(kinds.duplicate.into());
    }
    let bytes = value.as_bytes();
    if bytes.len() > MAX_HEADER_LEN {
        return Err(kinds.too_large.into());
    }
    // No early exit, so that the check of a ~330-byte token is vectorised.
    let visible = bytes
        .iter()
        .fold(true, |all, b| all & (0x21..=0x7e).contains(b));
    if bytes.is_empty() || !visible {
        return Err(kinds.invalid.into());
    }
    // Every byte is visible ASCII, so this is UTF-8.
    std::str::from_utf8(bytes).map_err(|_| kinds.invalid.into())
}

/// A JOSE header's JSON: base64url of a JSON object, or [`ErrorKind::MalformedToken`].
pub(crate) fn decode_json_object(encoded: &str) -> Result<Vec<u8>, DtSignatureError> {
    let json = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| ErrorKind::MalformedToken)?;
    // serde would also read a struct from a JSON array.
    if json.trim_ascii_start().first() != Some(&b'{') {
        return Err(ErrorKind::MalformedToken.into());
    }
    Ok(json)
}

/// The JOSE header's fields, or [`ErrorKind::MalformedToken`].
pub(crate) fn parse_jose<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Result<T, DtSignatureError> {
    serde_json::from_slice(json).map_err(|_| ErrorKind::MalformedToken.into())
}

/// `alg` exactly `expected`, and no `crit` extension (none is implemented; RFC 7515,
/// 4.1.11): else [`ErrorKind::UnsupportedAlgorithm`].
pub(crate) fn expect_alg(alg: &str, crit: bool, expected: &str) -> Result<(), DtSignatureError> {
    if alg != expected || crit {
        return Err(ErrorKind::UnsupportedAlgorithm.into());
    }
    Ok(())
}

#[derive(Deserialize)]
pub(crate) struct RawClaims {
    #[serde(default, deserialize_with = "present")]
    pub(crate) checksum: Option<HexClaim<20>>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) checksum_sha256: Option<HexClaim<32>>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) exp: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) iat: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) nbf: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) jti: Option<String>,
    #[cfg(feature = "asymmetric")]
    #[serde(default, deserialize_with = "present")]
    pub(crate) iss: Option<String>,
    #[cfg(feature = "asymmetric")]
    #[serde(default, deserialize_with = "present")]
    pub(crate) sub: Option<String>,
}

/// A claim that is present must have its type: `null` is malformed, not absent. Also the
/// JOSE header's `crit`: any `crit` member is present, `null` included (RFC 7515, 4.1.11:
/// when present, it is a non-empty array), and refused.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A checksum claim, read in place: its digest if the string is hex of `N` bytes (either
/// case). A string that is not is [`ErrorKind::MalformedChecksum`], reported by
/// [`digest`](Self::digest) after the time checks.
pub(crate) struct HexClaim<const N: usize>(Option<[u8; N]>);

impl<const N: usize> HexClaim<N> {
    pub(crate) fn digest(self) -> Result<[u8; N], DtSignatureError> {
        self.0.ok_or_else(|| ErrorKind::MalformedChecksum.into())
    }
}

impl<'de, const N: usize> Deserialize<'de> for HexClaim<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HexVisitor<const N: usize>;

        impl<const N: usize> serde::de::Visitor<'_> for HexVisitor<N> {
            type Value = HexClaim<N>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a hex string")
            }

            fn visit_str<E: serde::de::Error>(self, hex_digest: &str) -> Result<Self::Value, E> {
                let mut digest = [0u8; N];
                // Exactly 2N hex digits, no prefix: refused by length before decoding.
                let parsed = (hex_digest.len() == 2 * N)
                    .then(|| hex::decode_to_slice(hex_digest, &mut digest).ok())
                    .flatten();
                Ok(HexClaim(parsed.map(|()| digest)))
            }
        }

        deserializer.deserialize_str(HexVisitor)
    }
}

pub(crate) fn parse_claims(encoded: &str) -> Result<RawClaims, DtSignatureError> {
    // DT's claims are about 190 bytes: decode them on the stack.
    let mut buffer = [0u8; 512];
    let json: std::borrow::Cow<'_, [u8]> = match URL_SAFE_NO_PAD.decode_slice(encoded, &mut buffer)
    {
        Ok(len) => buffer[..len].into(),
        Err(DecodeSliceError::OutputSliceTooSmall) => URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| ErrorKind::MalformedToken)?
            .into(),
        Err(DecodeSliceError::DecodeError(_)) => return Err(ErrorKind::MalformedToken.into()),
    };
    // serde would also read a struct from a JSON array; claims must be an object.
    if json.trim_ascii_start().first() != Some(&b'{') {
        return Err(ErrorKind::MalformedClaims.into());
    }
    // One UTF-8 check of the whole text rather than one per string.
    let json = std::str::from_utf8(&json).map_err(|_| ErrorKind::MalformedClaims)?;
    serde_json::from_str(json).map_err(|_| ErrorKind::MalformedClaims.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compact split, one shape per row: the three parts, or `MalformedToken`.
    #[test]
    fn split_takes_exactly_three_parts() {
        /// A token, and its header, payload and signature (`None`: refused).
        type Row = (
            &'static str,
            Option<(&'static str, &'static str, &'static str)>,
        );
        #[rustfmt::skip]
        let rows: [Row; 14] = [
            ("h.p.s", Some(("h", "p", "s"))),
            ("eyJh.eyJj.c2ln", Some(("eyJh", "eyJj", "c2ln"))),
            // Empty parts are split as such; the rules of each part refuse them later.
            ("..", Some(("", "", ""))),
            ("h.p.", Some(("h", "p", ""))),
            (".p.s", Some(("", "p", "s"))),
            ("h..s", Some(("h", "", "s"))),
            ("", None),
            ("hps", None),
            ("h.p", None),
            (".", None),
            ("h.p.s.", None),
            ("h.p.x.s", None),
            (".h.p.s", None),
            ("...", None),
        ];
        for (token, expected) in rows {
            let got = TokenParts::split(token).map(|parts| {
                assert_eq!(
                    parts.signing_input,
                    format!("{}.{}", parts.header, parts.payload),
                    "{token:?}"
                );
                (parts.header, parts.payload, parts.signature)
            });
            match expected {
                Some(parts) => assert_eq!(got.ok(), Some(parts), "{token:?}"),
                None => assert_eq!(
                    got.err().map(|error| error.kind()),
                    Some(ErrorKind::MalformedToken),
                    "{token:?}"
                ),
            }
        }
        // A dot anywhere in a real-size payload is a fourth part.
        let payload = "x".repeat(300);
        for at in [0, 1, 150, 298, 299] {
            let mut dotted = payload.clone();
            dotted.replace_range(at..=at, ".");
            let token = format!("h.{dotted}.s");
            assert!(TokenParts::split(&token).is_err(), "dot at {at}");
        }
        assert!(TokenParts::split(&format!("h.{payload}.s")).is_ok());
    }
}
