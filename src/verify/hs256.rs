//! The `X-Dt-Signature` token: HS256 under the connector's secrets.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::{DecodeSliceError, Engine as _};
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use serde::Deserialize;
use sha2::Sha256;

use super::explain::{Observe, Step};
use super::jws::{
    decode_json_object, expect_alg, parse_claims, parse_jose, present, signature_header,
    HeaderKinds, HexClaim, TokenParts,
};
use super::policy::Token;
use super::times::check_times;
use super::Verifier;
use crate::consts::X_DT_SIGNATURE;
use crate::error::{ConfigError, DtSignatureError, ErrorKind, Scheme};

type HmacSha256 = Hmac<Sha256>;

/// One signature secret as keyed HMAC-SHA256 state: the SHA-256 states after the key's
/// inner and outer pad blocks, derived once. It is as good as the secret for forging
/// tokens, so it is wiped from memory when dropped (the `zeroize` features of `hmac` and
/// `sha2`: each SHA-256 state clears itself on drop), and so is each per-request clone.
#[derive(Clone)]
pub(super) struct Secret(HmacSha256);

pub(super) fn key(secret: &[u8]) -> Result<Secret, ConfigError> {
    if secret.is_empty() {
        return Err(ConfigError::EmptySecret);
    }
    Ok(Secret(
        HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length"),
    ))
}

impl Verifier {
    /// The `X-Dt-Signature` token's state.
    pub(super) fn hmac_token<O: Observe>(
        &self,
        headers: &HeaderMap,
        obs: &mut O,
    ) -> Token<HmacPart> {
        match header_token(headers) {
            Err(error) if error.kind() == ErrorKind::MissingHeader => {
                Token::Absent(error.for_scheme(Scheme::Hmac))
            }
            Err(error) => Token::Invalid(error.for_scheme(Scheme::Hmac)),
            Ok(token) => match self.hmac_part(token, obs) {
                Ok(part) => Token::Valid(part),
                Err(error) => Token::Invalid(error.for_scheme(Scheme::Hmac)),
            },
        }
    }

    /// Rules 2-4 for an `X-Dt-Signature` token, up to the body.
    pub(super) fn hmac_part<O: Observe>(
        &self,
        token: &str,
        obs: &mut O,
    ) -> Result<HmacPart, DtSignatureError> {
        let config = &*self.inner;
        obs.enter(Scheme::Hmac, Step::Token);
        let parts = TokenParts::split(token)?;
        obs.enter(Scheme::Hmac, Step::JoseHeader);
        check_jose_header(parts.header)?;

        obs.enter(Scheme::Hmac, Step::Signature);
        let secret_index = verify_hmac(&config.keys, parts.signing_input, parts.signature)?;

        obs.enter(Scheme::Hmac, Step::Claims);
        let claims = parse_claims(parts.payload)?;
        obs.enter(Scheme::Hmac, Step::Times);
        let exp = claims.exp.ok_or(ErrorKind::MissingExpiry)?;
        check_times(
            config.clock.now(),
            config.leeway,
            exp,
            claims.iat,
            claims.nbf,
        )?;

        obs.enter(Scheme::Hmac, Step::Checksums);
        let sha256 = claims.checksum_sha256.map(HexClaim::digest).transpose()?;
        let sha1 = claims.checksum.map(HexClaim::digest).transpose()?;
        if sha1.is_none() && sha256.is_none() {
            return Err(ErrorKind::MissingChecksum.into());
        }
        if config.require_sha256 && sha256.is_none() {
            return Err(ErrorKind::MissingSha256.into());
        }
        Ok(HmacPart {
            secret_index,
            jti: claims.jti,
            iat: claims.iat,
            exp,
            sha1,
            sha256,
        })
    }
}

/// An `X-Dt-Signature` token whose checks that need no body passed.
pub(super) struct HmacPart {
    pub(super) secret_index: usize,
    pub(super) jti: Option<String>,
    pub(super) iat: Option<u64>,
    pub(super) exp: u64,
    pub(super) sha1: Option<[u8; 20]>,
    pub(super) sha256: Option<[u8; 32]>,
}

/// Rule 1, then the header's value as text.
pub(super) fn header_token(headers: &HeaderMap) -> Result<&str, DtSignatureError> {
    signature_header(headers.get_all(X_DT_SIGNATURE), HMAC_HEADER_KINDS)
}

const HMAC_HEADER_KINDS: HeaderKinds = HeaderKinds {
    missing: ErrorKind::MissingHeader,
    duplicate: ErrorKind::DuplicateHeader,
    invalid: ErrorKind::InvalidHeader,
    too_large: ErrorKind::HeaderTooLarge,
};

/// The JOSE header: `alg` must be exactly `HS256`; a `crit` extension is refused since
/// none is implemented (RFC 7515, 4.1.11). Other fields (`typ`, `kid`) are ignored: keys
/// are never looked up from the token.
fn check_jose_header(encoded: &str) -> Result<(), DtSignatureError> {
    // Every DT token carries this header, which passes the checks below.
    if encoded == DT_JOSE_HEADER {
        return Ok(());
    }

    #[derive(Deserialize)]
    struct JoseHeader<'a> {
        #[serde(borrow)]
        alg: std::borrow::Cow<'a, str>,
        #[serde(default, deserialize_with = "present")]
        crit: Option<serde::de::IgnoredAny>,
    }

    let json = decode_json_object(encoded)?;
    let header: JoseHeader<'_> = parse_jose(&json)?;
    expect_alg(&header.alg, header.crit.is_some(), "HS256")
}

/// `{"alg":"HS256","typ":"JWT"}`, base64url-encoded: the JOSE header of every DT token.
const DT_JOSE_HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// Rule 2: the HMAC-SHA256 of `header.payload` against each configured secret. Returns the
/// index of the secret that matched.
///
/// The same outcomes as `jsonwebtoken::crypto::verify` per secret (a signature that is not
/// base64url is malformed; any other mismatch is invalid), without its boxed verifier and
/// decoded-signature `Vec` (see BENCHMARKS.md). Each secret's keyed state is cloned, not
/// derived again: no key schedule per request.
fn verify_hmac(
    keys: &[Secret],
    signing_input: &str,
    signature: &str,
) -> Result<usize, DtSignatureError> {
    if signature.is_empty() {
        return Err(ErrorKind::InvalidSignature.into());
    }
    // A MAC is 32 bytes, 43 base64url characters.
    let mut mac = [0u8; 32];
    let len = match URL_SAFE_NO_PAD.decode_slice(signature, &mut mac) {
        Ok(len) => len,
        Err(DecodeSliceError::DecodeError(_)) => return Err(ErrorKind::MalformedToken.into()),
        // Longer than a MAC: it matches no secret, if it is base64url at all.
        Err(DecodeSliceError::OutputSliceTooSmall) => {
            URL_SAFE_NO_PAD
                .decode(signature)
                .map_err(|_| ErrorKind::MalformedToken)?;
            return Err(ErrorKind::InvalidSignature.into());
        }
    };
    for (index, Secret(keyed)) in keys.iter().enumerate() {
        #[cfg(test)]
        super::counted::hmac();
        let mut hmac = keyed.clone();
        hmac.update(signing_input.as_bytes());
        // Compares in constant time; a MAC of the wrong length never matches.
        if hmac.verify_slice(&mac[..len]).is_ok() {
            return Ok(index);
        }
    }
    Err(ErrorKind::InvalidSignature.into())
}

/// The HS256 signature of `message` under `key`: the one HMAC the signer mints with.
#[cfg(any(test, feature = "test-util"))]
pub(crate) fn sign(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut hmac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    hmac.update(message);
    hmac.finalize().into_bytes().into()
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use sha1::Sha1;
    use sha2::Digest;

    use super::*;
    use crate::consts::MAX_HEADER_LEN;
    use http::HeaderValue;

    pub(crate) const SECRET: &str = "s3cret";
    pub(crate) const BODY: &[u8] =
        br#"{"event":{"eventId":"abc","eventType":"touch"},"labels":{}}"#;
    pub(crate) const NOW: u64 = 1_700_000_000;

    pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token with this JOSE header and these claims, HS256-signed with `secret` by the
    /// HMAC the `Signer` uses (checked against jsonwebtoken in `mint_matches_jsonwebtoken`).
    pub(crate) fn mint(header: &str, claims: &str, secret: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let sig = b64(sign(secret.as_bytes(), input.as_bytes()));
        format!("{input}.{sig}")
    }

    /// The oracle: our HS256 signatures are jsonwebtoken's, byte for byte.
    #[test]
    pub(crate) fn mint_matches_jsonwebtoken() {
        for (secret, message) in [("s3cret", "a.b"), ("x", ""), ("test-secret", "eyJ.eyJ")] {
            let ours = b64(sign(secret.as_bytes(), message.as_bytes()));
            let oracle = jsonwebtoken::crypto::sign(
                message.as_bytes(),
                &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
                jsonwebtoken::Algorithm::HS256,
            )
            .unwrap();
            assert_eq!(ours, oracle, "{secret:?} {message:?}");
        }
    }

    pub(crate) fn sha1_hex(body: &[u8]) -> String {
        hex::encode(Sha1::digest(body))
    }

    pub(crate) fn sha256_hex(body: &[u8]) -> String {
        hex::encode(Sha256::digest(body))
    }

    /// DT's own claims for `body`, issued at NOW.
    pub(crate) fn dt_claims(body: &[u8]) -> serde_json::Value {
        serde_json::json!({
            "checksum": sha1_hex(body),
            "checksum_sha256": sha256_hex(body),
            "exp": NOW + 3600,
            "iat": NOW,
            "jti": "c82gg99hga35jc2afkeg",
        })
    }

    pub(crate) const DT_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

    pub(crate) fn verifier_at(now: u64) -> Verifier {
        Verifier::new(SECRET).clock(move || UNIX_EPOCH + Duration::from_secs(now))
    }

    pub(crate) fn with(
        mutate: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) -> String {
        let mut claims = dt_claims(BODY);
        mutate(claims.as_object_mut().unwrap());
        mint(DT_HEADER, &claims.to_string(), SECRET)
    }

    #[test]
    fn round_trip_reports_claims() {
        let token = mint(DT_HEADER, &dt_claims(BODY).to_string(), SECRET);
        let claims = verifier_at(NOW).verify_token(&token, BODY).unwrap();
        assert_eq!(claims.jti(), Some("c82gg99hga35jc2afkeg"));
        assert_eq!(
            (claims.hmac_iat(), claims.asymmetric_iat()),
            (Some(NOW), None)
        );
        assert_eq!(claims.exp(), NOW + 3600);
        assert!(claims.sha1_verified() && claims.sha256_verified());
        assert_eq!(claims.secret_index(), Some(0));
    }

    /// One mutation per row, each against an otherwise valid DT token and body.
    #[test]
    fn one_mutation_per_row() {
        use serde_json::Value;
        let other = b"another body";
        // DT's claims for BODY under this JOSE header, signed with SECRET.
        let header = |header: &str| mint(header, &dt_claims(BODY).to_string(), SECRET);
        // DT's claims with one claim set to this value.
        let set = |claim: &str, value: serde_json::Value| {
            with(|c| {
                c.insert(claim.into(), value);
            })
        };
        // DT's claims without these claims.
        let without = |claims: &[&str]| {
            with(|c| {
                for claim in claims {
                    c.remove(*claim);
                }
            })
        };
        let (h, c) = (b64(DT_HEADER), b64(dt_claims(BODY).to_string()));
        #[rustfmt::skip]
        let rows: Vec<(&str, String, ErrorKind)> = vec![
            ("wrong secret", mint(DT_HEADER, &dt_claims(BODY).to_string(), "other"), ErrorKind::InvalidSignature),
            ("alg none", header(r#"{"alg":"none","typ":"JWT"}"#), ErrorKind::UnsupportedAlgorithm),
            ("alg HS384", header(r#"{"alg":"HS384","typ":"JWT"}"#), ErrorKind::UnsupportedAlgorithm),
            ("alg lowercase", header(r#"{"alg":"hs256","typ":"JWT"}"#), ErrorKind::UnsupportedAlgorithm),
            ("alg missing", header(r#"{"typ":"JWT"}"#), ErrorKind::MalformedToken),
            ("alg not a string", header(r#"{"alg":256}"#), ErrorKind::MalformedToken),
            ("crit extension", header(r#"{"alg":"HS256","crit":["b64"],"b64":false}"#), ErrorKind::UnsupportedAlgorithm),
            ("header is an array", header(r#"["HS256"]"#), ErrorKind::MalformedToken),
            ("alg given twice", header(r#"{"alg":"none","alg":"HS256"}"#), ErrorKind::MalformedToken),
            ("claims not json", mint(DT_HEADER, "not json", SECRET), ErrorKind::MalformedClaims),
            ("claims an array", mint(DT_HEADER, "[1,2]", SECRET), ErrorKind::MalformedClaims),
            ("exp as string", set("exp", format!("{}", NOW + 3600).into()), ErrorKind::MalformedClaims),
            ("exp null", set("exp", Value::Null), ErrorKind::MalformedClaims),
            ("exp negative", set("exp", (-1).into()), ErrorKind::MalformedClaims),
            ("exp float", set("exp", 1.5e9.into()), ErrorKind::MalformedClaims),
            ("no exp", without(&["exp"]), ErrorKind::MissingExpiry),
            ("expired", set("exp", (NOW - 60).into()), ErrorKind::Expired),
            ("iat far in future", set("iat", (NOW + 61).into()), ErrorKind::IssuedInFuture),
            ("nbf far in future", set("nbf", (NOW + 61).into()), ErrorKind::NotYetValid),
            ("iat as string", set("iat", "now".into()), ErrorKind::MalformedClaims),
            ("jti as number", set("jti", 7.into()), ErrorKind::MalformedClaims),
            ("no checksums", without(&["checksum", "checksum_sha256"]), ErrorKind::MissingChecksum),
            ("checksum null", set("checksum", Value::Null), ErrorKind::MalformedClaims),
            ("sha1 of another body", set("checksum", sha1_hex(other).into()), ErrorKind::ChecksumMismatch),
            ("sha256 of another body", set("checksum_sha256", sha256_hex(other).into()), ErrorKind::ChecksumMismatch),
            ("sha1 only, of another body", with(|c| { c.remove("checksum_sha256"); c.insert("checksum".into(), sha1_hex(other).into()); }), ErrorKind::ChecksumMismatch),
            ("sha256 where sha1 goes", set("checksum", sha256_hex(BODY).into()), ErrorKind::MalformedChecksum),
            ("sha1 where sha256 goes", set("checksum_sha256", sha1_hex(BODY).into()), ErrorKind::MalformedChecksum),
            ("checksum not hex", set("checksum", "z".repeat(40).into()), ErrorKind::MalformedChecksum),
            ("checksum empty", set("checksum", "".into()), ErrorKind::MalformedChecksum),
            ("checksum truncated", set("checksum", sha1_hex(BODY)[..39].into()), ErrorKind::MalformedChecksum),
            ("checksum 0x-prefixed", set("checksum", format!("0x{}", sha1_hex(BODY)).into()), ErrorKind::MalformedChecksum),
            ("checksum 0x-prefixed, one digit short", set("checksum", format!("0x{}", &sha1_hex(BODY)[..38]).into()), ErrorKind::MalformedChecksum),
            ("sha256 0x-prefixed", set("checksum_sha256", format!("0x{}", sha256_hex(BODY)).into()), ErrorKind::MalformedChecksum),
            ("checksum one digit long", set("checksum", format!("{}0", sha1_hex(BODY)).into()), ErrorKind::MalformedChecksum),
            ("checksum with a space", set("checksum", format!(" {}", &sha1_hex(BODY)[1..]).into()), ErrorKind::MalformedChecksum),
            ("checksum with a g", set("checksum", format!("g{}", &sha1_hex(BODY)[1..]).into()), ErrorKind::MalformedChecksum),
            ("sha256 with a non-ASCII digit", set("checksum_sha256", format!("\u{0663}{}", &sha256_hex(BODY)[2..]).into()), ErrorKind::MalformedChecksum),
            ("checksum as number", set("checksum", 1.into()), ErrorKind::MalformedClaims),
            ("two parts", "a.b".to_owned(), ErrorKind::MalformedToken),
            ("four parts", format!("{}.x", header(DT_HEADER)), ErrorKind::MalformedToken),
            ("empty signature", format!("{h}.{c}."), ErrorKind::InvalidSignature),
            ("signature not base64", format!("{h}.{c}.***"), ErrorKind::MalformedToken),
            ("header not base64", format!("{{}}.{c}.sig"), ErrorKind::MalformedToken),
            ("padded header", format!("{h}=.{c}.sig"), ErrorKind::MalformedToken),
        ];
        assert!(rows.len() >= 30);
        let verifier = verifier_at(NOW);
        for (name, token, kind) in rows {
            match verifier.verify_token(&token, BODY) {
                Ok(_) => panic!("{name}: accepted"),
                Err(error) => assert_eq!(error.kind(), kind, "{name}"),
            }
        }
    }

    /// The keyed state kept per secret is wiped when dropped: `Hmac<Sha256>` holds two
    /// SHA-256 cores and a block buffer, and each wipes itself on drop only with the
    /// `zeroize` feature of `sha2` (and of `digest`, which it and `hmac`'s turn on). This
    /// test fails to compile without it.
    #[test]
    fn keyed_state_is_wiped_on_drop() {
        use hmac::digest::block_api::{Buffer, EagerHash};
        use zeroize::ZeroizeOnDrop;
        fn wiped<T: ZeroizeOnDrop>() {}
        wiped::<<Sha256 as EagerHash>::Core>();
        wiped::<Buffer<<Sha256 as EagerHash>::Core>>();
        // One secret is one keyed state, not a copy of the secret's bytes.
        assert_eq!(
            std::mem::size_of::<Secret>(),
            std::mem::size_of::<HmacSha256>()
        );
    }

    /// `verify_hmac` decides as `jsonwebtoken::crypto::verify` did, for signatures of every
    /// length and shape.
    #[test]
    fn hmac_outcomes_match_jsonwebtoken() {
        let token = mint(DT_HEADER, &dt_claims(BODY).to_string(), SECRET);
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut last_changed = sig.to_owned();
        last_changed.pop();
        last_changed.push(if sig.ends_with('A') { 'B' } else { 'A' });
        let mut signatures = vec![
            sig.to_owned(),
            last_changed,
            format!("{sig}A"),
            format!("{sig}AA"),
            format!("{sig}AAAA"),
            format!("{sig}="),
            format!("{sig}*"),
            "A".repeat(100),
            format!("{}*", "A".repeat(100)),
            "*".repeat(100),
        ];
        signatures.extend((1..=4).map(|cut| sig[..sig.len() - cut].to_owned()));
        signatures.extend(["A", "AA", "AAA", "AAAA", "A=="].map(str::to_owned));
        let keys = [key(b"other").unwrap(), key(SECRET.as_bytes()).unwrap()];
        let decoding = [
            jsonwebtoken::DecodingKey::from_secret(b"other"),
            jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
        ];
        for signature in &signatures {
            let expected = decoding
                .iter()
                .enumerate()
                .find_map(|(index, key)| {
                    match jsonwebtoken::crypto::verify(
                        signature,
                        input.as_bytes(),
                        key,
                        jsonwebtoken::Algorithm::HS256,
                    ) {
                        Ok(true) => Some(Ok(index)),
                        Ok(false) => None,
                        Err(_) => Some(Err(ErrorKind::MalformedToken)),
                    }
                })
                .unwrap_or(Err(ErrorKind::InvalidSignature));
            let got = verify_hmac(&keys, input, signature).map_err(|e| e.kind());
            assert_eq!(got, expected, "{signature}");
        }
    }

    #[test]
    fn dt_jose_header_is_the_one_dt_sends() {
        assert_eq!(DT_JOSE_HEADER, b64(DT_HEADER));
        // The shortcut accepts what the general rule accepts.
        let decoded = URL_SAFE_NO_PAD.decode(DT_JOSE_HEADER).unwrap();
        let header: serde_json::Value = serde_json::from_slice(&decoded).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "HS256", "typ": "JWT"}));
        assert!(check_jose_header(&format!("{DT_JOSE_HEADER}=")).is_err());
        assert!(check_jose_header(&b64(r#"{"alg":"HS256"}"#)).is_ok());
    }

    #[test]
    fn any_changed_token_byte_fails() {
        let token = with(|_| {});
        let verifier = verifier_at(NOW);
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            // Swap within the base64url alphabet so the token stays well-formed text.
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let mutated = String::from_utf8(bytes).unwrap();
            assert!(
                verifier.verify_token(&mutated, BODY).is_err(),
                "byte {i} of the token changed and still accepted"
            );
        }
    }

    #[test]
    fn rotation_tries_each_secret_in_order() {
        let token_old = with(|_| {});
        let token_new = mint(DT_HEADER, &dt_claims(BODY).to_string(), "new secret");
        let token_third = mint(DT_HEADER, &dt_claims(BODY).to_string(), "third");
        let verifier = verifier_at(NOW).add_secret("new secret");
        assert_eq!(
            verifier
                .verify_token(&token_old, BODY)
                .unwrap()
                .secret_index(),
            Some(0)
        );
        assert_eq!(
            verifier
                .verify_token(&token_new, BODY)
                .unwrap()
                .secret_index(),
            Some(1)
        );
        assert_eq!(
            verifier
                .verify_token(&token_third, BODY)
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidSignature
        );
    }

    #[test]
    fn header_rules() {
        let token = with(|_| {});
        let verifier = verifier_at(NOW);
        let kind = |headers: &HeaderMap| {
            verifier
                .verify(headers, BODY)
                .map(|_| ())
                .map_err(|e| e.kind())
        };

        let mut headers = HeaderMap::new();
        assert_eq!(kind(&headers), Err(ErrorKind::MissingHeader));
        headers.insert("X-DT-SIGNATURE", token.parse().unwrap());
        assert_eq!(kind(&headers), Ok(()));
        headers.append(X_DT_SIGNATURE, token.parse().unwrap());
        assert_eq!(kind(&headers), Err(ErrorKind::DuplicateHeader));

        let single = |value: HeaderValue| {
            let mut headers = HeaderMap::new();
            headers.insert(X_DT_SIGNATURE, value);
            kind(&headers)
        };
        assert_eq!(
            single(HeaderValue::from_static("")),
            Err(ErrorKind::InvalidHeader)
        );
        assert_eq!(
            single(HeaderValue::from_str(&format!(" {token}")).unwrap()),
            Err(ErrorKind::InvalidHeader)
        );
        assert_eq!(
            single(HeaderValue::from_bytes(&[0xe2, 0x82, 0xac]).unwrap()),
            Err(ErrorKind::InvalidHeader)
        );
        assert_eq!(
            single(HeaderValue::from_str(&"a".repeat(MAX_HEADER_LEN + 1)).unwrap()),
            Err(ErrorKind::HeaderTooLarge)
        );
        assert_eq!(
            single(HeaderValue::from_str(&"a".repeat(MAX_HEADER_LEN)).unwrap()),
            Err(ErrorKind::MalformedToken)
        );
    }

    /// `check_token_shape` refuses exactly what `begin` refuses before the HMAC, with the
    /// same kind, and passes everything else (wrong secret, expired, ...).
    #[test]
    fn empty_secret_is_a_config_error() {
        assert_eq!(Verifier::try_new("").unwrap_err(), ConfigError::EmptySecret);
        assert_eq!(
            Verifier::try_new(Vec::<u8>::new()).unwrap_err(),
            ConfigError::EmptySecret
        );
        assert!(Verifier::new("x").try_add_secret("").is_err());
        assert!(std::panic::catch_unwind(|| Verifier::new("")).is_err());
    }
}
