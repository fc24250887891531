//! The `DT-Asymmetric-Signature` token (feature `asymmetric`): ES256 under DT's published
//! keys, bound to an issuer and a DT organization.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::{DecodeSliceError, Engine as _};
use http::HeaderMap;
use serde::Deserialize;

use super::explain::{Observe, Step};
use super::jws::{
    decode_json_object, expect_alg, parse_claims, parse_jose, present, signature_header,
    HeaderKinds, HexClaim, TokenParts,
};
use super::notice::Notices;
use super::policy::Token;
use super::times::check_times;
use crate::consts::DT_ASYMMETRIC_SIGNATURE;
use crate::error::{DtSignatureError, ErrorKind, Scheme};
use crate::keys::{into_bare, DtKeys, KeyWait, Lookup, OrgId};

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

/// Check the `DT-Asymmetric-Signature` token in `headers` against the keys and organization of `against`.
/// With `may_wait`, a `kid` missing from the key set asks for a refresh (within the
/// limits of [`DtKeys`]) and returns it to wait for; without, the set as it stands decides.
pub(crate) fn check(
    against: Against<'_>,
    headers: &HeaderMap,
    now: SystemTime,
    leeway: Duration,
    may_wait: bool,
    obs: &mut impl Observe,
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
    match check_token(against, token, now, leeway, may_wait, obs) {
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
    #[serde(default, deserialize_with = "present")]
    crit: Option<serde::de::IgnoredAny>,
}

/// What an asymmetric token is checked against: DT's keys and the organization, with the
/// notices that log the first refusal of each configuration mistake.
#[derive(Clone, Copy)]
pub(crate) struct Against<'a> {
    pub(crate) keys: &'a DtKeys,
    pub(crate) org: &'a OrgId,
    pub(crate) notices: &'a Notices,
}

/// The refusals a configuration mistake causes are logged through `notices`.
fn check_token(
    Against { keys, org, notices }: Against<'_>,
    token: &str,
    now: SystemTime,
    leeway: Duration,
    may_wait: bool,
    obs: &mut impl Observe,
) -> Result<EsPart, Outcome> {
    const ES: Scheme = Scheme::Asymmetric;
    obs.enter(ES, Step::Token);
    let parts = TokenParts::split(token)?;
    obs.enter(ES, Step::JoseHeader);
    let json = decode_json_object(parts.header)?;
    let header: EsHeader<'_> = parse_jose(&json)?;
    // Exactly ES256: `none`, HS256 (keyed with the public key's bytes), ES384, RS256 ...
    // are refused before any key is touched.
    expect_alg(&header.alg, header.crit.is_some(), "ES256")?;
    // An empty `kid` names no key: no key set holds one (they are skipped).
    let kid = header
        .kid
        .filter(|kid| !kid.is_empty())
        .ok_or(ErrorKind::MissingKeyId)?;

    // r || s, 32 bytes each (RFC 7518, 3.4).
    obs.enter(ES, Step::SignatureEncoding);
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

    obs.enter(ES, Step::KeyLookup);
    let key = match keys.lookup(&kid) {
        Lookup::Found(key) => key,
        missing => {
            if may_wait {
                if let Some(wait) = keys.refresh_for_unknown_kid() {
                    return Err(Outcome::Wait(wait));
                }
            }
            return Err(match missing {
                Lookup::Unknown => {
                    notices.unknown_key(now, keys, &kid);
                    ErrorKind::UnknownKey
                }
                _ => ErrorKind::KeysUnavailable,
            }
            .into());
        }
    };
    #[cfg(test)]
    super::counted::es256();
    obs.enter(ES, Step::Signature);
    if !key.verify(parts.signing_input.as_bytes(), &signature) {
        return Err(ErrorKind::InvalidSignature.into());
    }

    obs.enter(ES, Step::Claims);
    let claims = parse_claims(parts.payload)?;
    obs.enter(ES, Step::Issuer);
    if claims.iss.as_deref() != Some(keys.issuer()) {
        notices.wrong_issuer(now, keys.issuer(), claims.iss.as_deref());
        return Err(ErrorKind::WrongIssuer.into());
    }
    obs.enter(ES, Step::Times);
    let exp = claims.exp.ok_or(ErrorKind::MissingExpiry)?;
    check_times(now, leeway, exp, claims.iat, claims.nbf)?;
    obs.enter(ES, Step::Organization);
    let sub = match claims.sub {
        Some(sub) if org.accepts(&sub) => into_bare(sub),
        sub => {
            notices.wrong_organization(now, org.as_str(), sub.as_deref());
            return Err(ErrorKind::WrongOrganization.into());
        }
    };
    obs.enter(ES, Step::Checksums);
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, OnceLock};
    use std::time::UNIX_EPOCH;

    use hmac::{Hmac, KeyInit, Mac};
    use http::HeaderValue;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::{json, Map, Value};
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::claims::DtClaims;
    use crate::consts::{MAX_HEADER_LEN, X_DT_SIGNATURE};
    use crate::verify::Verifier;

    const ISSUER: &str = "https://identity.example/data-connector";
    const ORG: &str = "c0rg1d0000000000000a";
    /// `iat` of the tokens, and the verifier's clock.
    const NOW: u64 = 1_730_382_284;
    const BODY: &[u8] = br#"{"event":{"eventId":"c82gg9catj3vmh4248og","eventType":"touch"},"labels":{},"metadata":{}}"#;

    /// A P-256 key of these tests (the core does not lean on `testing`): it mints tokens
    /// in DT's shape, `{"alg":"ES256","kid":..,"typ":"JWT"}` over DT's claims in DT's order.
    #[derive(Clone)]
    struct TestKey {
        pair: Arc<EcdsaKeyPair>,
        pkcs8: Arc<[u8]>,
        kid: String,
        issuer: String,
        org: String,
    }

    impl TestKey {
        fn generate() -> Self {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .unwrap();
            let kid = hex::encode(&Sha256::digest(pair.public_key().as_ref())[..10]);
            Self {
                pair: Arc::new(pair),
                pkcs8: pkcs8.as_ref().into(),
                kid,
                issuer: ISSUER.into(),
                org: ORG.into(),
            }
        }

        fn with_kid(mut self, kid: &str) -> Self {
            self.kid = kid.into();
            self
        }

        fn with_issuer(mut self, issuer: &str) -> Self {
            self.issuer = issuer.into();
            self
        }

        fn with_org_id(mut self, org: &str) -> Self {
            self.org = org.into();
            self
        }

        fn kid(&self) -> &str {
            &self.kid
        }

        fn to_pkcs8(&self) -> &[u8] {
            &self.pkcs8
        }

        /// `04 || x || y`.
        fn public_key(&self) -> &[u8] {
            self.pair.public_key().as_ref()
        }

        fn jwk(&self) -> Value {
            let point = self.public_key();
            json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
                "x": b64(&point[1..33]), "y": b64(&point[33..]),
            })
        }

        fn jwks(&self) -> String {
            json!({ "keys": [self.jwk()] }).to_string()
        }

        fn sign_parts(&self, header: &[u8], claims: &[u8]) -> String {
            let input = format!("{}.{}", b64(header), b64(claims));
            let signature = self
                .pair
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap();
            format!("{input}.{}", b64(signature.as_ref()))
        }

        /// DT's token for `body`, issued at `iat`, under the JOSE header's `kid` `kid`.
        fn sign_as(&self, body: &[u8], iat: u64, kid: &str) -> String {
            let header = format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"JWT"}}"#);
            let claims = claims_for(body, iat, &self.issuer, &self.org);
            self.sign_parts(
                header.as_bytes(),
                Value::Object(claims).to_string().as_bytes(),
            )
        }

        /// DT's token for `body`, issued at `iat`.
        fn sign_at(&self, body: &[u8], iat: u64) -> String {
            self.sign_as(body, iat, &self.kid)
        }

        /// DT's token for `body`, issued now.
        fn sign(&self, body: &[u8]) -> String {
            let now = std::time::SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap();
            self.sign_at(body, now.as_secs())
        }

        fn dt_keys(&self) -> DtKeys {
            DtKeys::from_jwks(self.issuer.clone(), &self.jwks()).unwrap()
        }
    }

    /// An HS256 token over `header` and `claims` under `key`.
    fn hs256_token(key: &[u8], header: &[u8], claims: &[u8]) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", b64(mac.finalize().into_bytes()))
    }

    /// The key DT signs with, in these tests.
    fn dt() -> &'static TestKey {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(TestKey::generate)
    }

    /// A key DT does not publish.
    fn attacker() -> &'static TestKey {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(TestKey::generate)
    }

    fn at(secs: u64) -> impl Fn() -> SystemTime + Send + Sync + 'static {
        move || UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn verifier_for(org: impl Into<OrgId>) -> Verifier {
        let keys = DtKeys::from_jwks(ISSUER, &dt().jwks()).unwrap();
        Verifier::asymmetric(keys, org).clock(at(NOW))
    }

    fn verifier() -> Verifier {
        verifier_for(ORG)
    }

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn es_headers(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(DT_ASYMMETRIC_SIGNATURE, token.parse().unwrap());
        headers
    }

    /// `{"alg":"ES256","kid":"<dt kid>","typ":"JWT"}`, as DT writes it.
    fn dt_header() -> String {
        format!(r#"{{"alg":"ES256","kid":"{}","typ":"JWT"}}"#, dt().kid())
    }

    /// DT's claims for `body` at [`NOW`] (serde_json's map is sorted: DT's order).
    fn dt_claims(body: &[u8]) -> Map<String, Value> {
        claims_for(body, NOW, ISSUER, ORG)
    }

    /// DT's claims for `body`, issued at `iat` by `issuer` for the organization `org`.
    fn claims_for(body: &[u8], iat: u64, issuer: &str, org: &str) -> Map<String, Value> {
        let Value::Object(map) = json!({
            "checksum_sha256": hex::encode(Sha256::digest(body)),
            "exp": iat + 300,
            "iat": iat,
            "iss": issuer,
            "sub": org,
        }) else {
            unreachable!()
        };
        map
    }

    /// A token signed by DT's key with DT's header and claims changed by `edit`.
    fn claims_with(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut claims = dt_claims(BODY);
        edit(&mut claims);
        dt().sign_parts(
            dt_header().as_bytes(),
            Value::Object(claims).to_string().as_bytes(),
        )
    }

    /// A token signed by DT's key with DT's claims and the JOSE header `header`.
    fn header_with(header: Value) -> String {
        dt().sign_parts(header.to_string().as_bytes(), dt_claims_text().as_bytes())
    }

    fn dt_claims_text() -> String {
        Value::Object(dt_claims(BODY)).to_string()
    }

    fn dt_header_json() -> Value {
        json!({"alg": "ES256", "kid": dt().kid(), "typ": "JWT"})
    }

    /// `signing input . signature`, with the signature replaced.
    fn with_signature(token: &str, signature: &str) -> String {
        let (input, _) = token.rsplit_once('.').unwrap();
        format!("{input}.{signature}")
    }

    fn check(verifier: &Verifier, headers: &HeaderMap, body: &[u8]) -> Result<DtClaims, ErrorKind> {
        verifier.verify(headers, body).map_err(|error| {
            assert_eq!(error.scheme(), Some(Scheme::Asymmetric), "{error:?}");
            error.kind()
        })
    }

    #[test]
    fn dt_shaped_token_is_accepted_with_its_claims() {
        let token = dt().sign_at(BODY, NOW);
        let claims = check(&verifier(), &es_headers(&token), BODY).unwrap();
        assert_eq!(claims.schemes(), [Scheme::Asymmetric]);
        assert_eq!(claims.org_id(), Some(ORG));
        assert_eq!(claims.kid(), Some(dt().kid()));
        assert_eq!(claims.issuer(), Some(ISSUER));
        assert_eq!(
            (claims.hmac_iat(), claims.asymmetric_iat()),
            (None, Some(NOW))
        );
        assert_eq!(claims.exp(), NOW + 300);
        assert!(claims.sha256_verified() && !claims.sha1_verified());
        assert_eq!((claims.jti(), claims.secret_index()), (None, None));

        // Exactly DT's header and claims text.
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[0]).unwrap(),
            dt_header().as_bytes()
        );
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[1]).unwrap(),
            dt_claims_text().as_bytes()
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 64);
    }

    /// Each `iat` comes from its own token, `None` when that token was not verified: the
    /// HMAC token's is the event's second, the ES256 token's DT's signing time (here a
    /// different second, as in DT's real tokens).
    #[test]
    fn each_scheme_reports_its_own_iat() {
        const SECRET: &str = "connector-secret";
        let event = NOW - 1_000;
        let hmac_claims = json!({
            "checksum_sha256": hex::encode(Sha256::digest(BODY)),
            "exp": event + 3600,
            "iat": event,
            "jti": "c82gg99hga35jc2afkeg",
        });
        let hmac = hs256_token(
            SECRET.as_bytes(),
            br#"{"alg":"HS256","typ":"JWT"}"#,
            hmac_claims.to_string().as_bytes(),
        );
        let es = dt().sign_at(BODY, NOW);
        let secs = |secs: u64| Some(UNIX_EPOCH + Duration::from_secs(secs));
        let iats = |claims: &DtClaims| {
            (
                claims.hmac_iat(),
                claims.asymmetric_iat(),
                claims.hmac_issued_at(),
                claims.asymmetric_issued_at(),
            )
        };
        let mut both = es_headers(&es);
        both.insert(X_DT_SIGNATURE, hmac.parse().unwrap());
        let mut hmac_only = HeaderMap::new();
        hmac_only.insert(X_DT_SIGNATURE, hmac.parse().unwrap());

        let claims = Verifier::both(SECRET, dt().dt_keys(), ORG)
            .clock(at(NOW))
            .verify(&both, BODY)
            .unwrap();
        assert_eq!(
            iats(&claims),
            (Some(event), Some(NOW), secs(event), secs(NOW))
        );
        assert_eq!(claims.exp(), NOW + 300, "the earlier exp: ES256's");

        let claims = check(&verifier(), &es_headers(&es), BODY).unwrap();
        assert_eq!(iats(&claims), (None, Some(NOW), None, secs(NOW)));

        let either = Verifier::either(SECRET, dt().dt_keys(), ORG).clock(at(NOW));
        let claims = either.verify(&hmac_only, BODY).unwrap();
        assert_eq!(iats(&claims), (Some(event), None, secs(event), None));
        let claims = either.verify(&es_headers(&es), BODY).unwrap();
        assert_eq!(iats(&claims), (None, Some(NOW), None, secs(NOW)));
        let claims = Verifier::new(SECRET)
            .clock(at(NOW))
            .verify_token(&hmac, BODY)
            .unwrap();
        assert_eq!(iats(&claims), (Some(event), None, secs(event), None));
    }

    /// Tokens DT does not send but that must pass: what is ignored stays ignored.
    #[test]
    fn ignored_fields_are_ignored() {
        let mut jku = dt_header_json();
        jku["jku"] = json!("http://127.0.0.1:9/evil-jwks.json");
        jku["x5u"] = json!("http://127.0.0.1:9/evil.pem");
        let rows = [
            (
                "jku and x5u in the header (never fetched)",
                header_with(jku),
            ),
            (
                "extra claim",
                claims_with(|c| {
                    c.insert("jti".into(), "c82gg99hga35jc2afkeg".into());
                }),
            ),
            (
                "uppercase hex checksum",
                claims_with(|c| {
                    c.insert(
                        "checksum_sha256".into(),
                        hex::encode_upper(Sha256::digest(BODY)).into(),
                    );
                }),
            ),
            (
                "no typ",
                header_with(json!({"alg": "ES256", "kid": dt().kid()})),
            ),
        ];
        for (name, token) in rows {
            let mut headers = es_headers(&token);
            // An HMAC header an asymmetric policy does not read.
            headers.insert(X_DT_SIGNATURE, HeaderValue::from_static("garbage"));
            if let Err(kind) = check(&verifier(), &headers, BODY) {
                panic!("{name}: refused with {kind:?}");
            }
        }
    }

    /// One row per rule: each token breaks exactly one rule.
    #[test]
    fn every_rule_refuses() {
        let point = dt().public_key().to_vec();
        let jwk_text = dt().jwk().to_string();
        let hs256_with = |key: &[u8]| {
            let header = json!({"alg": "HS256", "kid": dt().kid(), "typ": "JWT"}).to_string();
            hs256_token(key, header.as_bytes(), dt_claims_text().as_bytes())
        };
        let valid = dt().sign_at(BODY, NOW);
        let signature = valid.rsplit_once('.').unwrap().1;
        let raw_signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        let der_signature = {
            // ASN.1 DER, as some libraries emit it: SEQUENCE { INTEGER r, INTEGER s }.
            let int = |bytes: &[u8]| {
                let mut out = vec![0x02, 33, 0];
                out.extend_from_slice(bytes);
                out
            };
            let mut body = int(&raw_signature[..32]);
            body.extend(int(&raw_signature[32..]));
            let mut der = vec![0x30, body.len() as u8];
            der.extend(body);
            der
        };
        let mut embedded_jwk = json!({"alg": "ES256", "kid": attacker().kid(), "typ": "JWT"});
        embedded_jwk["jwk"] = attacker().jwk();
        let mut embedded_jwk_our_kid = dt_header_json();
        embedded_jwk_our_kid["jwk"] = attacker().jwk();
        let mut embedded_x5c = dt_header_json();
        embedded_x5c["x5c"] = json!([b64(attacker().to_pkcs8())]);
        let attacker_signed = |header: Value| {
            attacker().sign_parts(header.to_string().as_bytes(), dt_claims_text().as_bytes())
        };
        let mut other_body = BODY.to_vec();
        other_body[10] ^= 1;
        let longer_body = [BODY, b" "].concat();

        let token = |token: String| es_headers(&token);
        let value = |value: HeaderValue| {
            let mut headers = HeaderMap::new();
            headers.insert(DT_ASYMMETRIC_SIGNATURE, value);
            headers
        };
        use ErrorKind::*;
        #[rustfmt::skip]
        let rows: Vec<(&str, HeaderMap, &[u8], ErrorKind)> = vec![
            ("missing header (an HMAC one is no substitute)", {
                let mut headers = HeaderMap::new();
                headers.insert(X_DT_SIGNATURE, hs256_token(b"s", br#"{"alg":"HS256","typ":"JWT"}"#, dt_claims_text().as_bytes()).parse().unwrap());
                headers
            }, BODY, MissingAsymmetricHeader),
            ("duplicate header", {
                let mut headers = es_headers(&valid);
                headers.append(DT_ASYMMETRIC_SIGNATURE, valid.parse().unwrap());
                headers
            }, BODY, DuplicateAsymmetricHeader),
            ("non-ASCII header", value(HeaderValue::from_bytes("€".as_bytes()).unwrap()), BODY, InvalidAsymmetricHeader),
            ("leading space", value(HeaderValue::from_str(&format!(" {valid}")).unwrap()), BODY, InvalidAsymmetricHeader),
            ("empty header", value(HeaderValue::from_static("")), BODY, InvalidAsymmetricHeader),
            ("header over 8 KiB", value(HeaderValue::from_str(&"a".repeat(MAX_HEADER_LEN + 1)).unwrap()), BODY, AsymmetricHeaderTooLarge),
            ("one part", token("abc".into()), BODY, MalformedToken),
            ("two parts", token("a.b".into()), BODY, MalformedToken),
            ("four parts", token(format!("{valid}.x")), BODY, MalformedToken),
            ("JOSE header not base64", token(with_signature(&format!("{{}}.{}.x", b64(dt_claims_text())), signature)), BODY, MalformedToken),
            ("JOSE header not an object", token(dt().sign_parts(b"[1]", dt_claims_text().as_bytes())), BODY, MalformedToken),
            ("JOSE header not JSON", token(dt().sign_parts(b"{alg", dt_claims_text().as_bytes())), BODY, MalformedToken),
            ("alg none", token(with_signature(&header_with(json!({"alg": "none", "kid": dt().kid(), "typ": "JWT"})), "")), BODY, UnsupportedAlgorithm),
            ("HS256 keyed with x || y", token(hs256_with(&point[1..])), BODY, UnsupportedAlgorithm),
            ("HS256 keyed with the uncompressed point", token(hs256_with(&point)), BODY, UnsupportedAlgorithm),
            ("HS256 keyed with the JWK text", token(hs256_with(jwk_text.as_bytes())), BODY, UnsupportedAlgorithm),
            ("HS256 keyed with the JWK Set text", token(hs256_with(dt().jwks().as_bytes())), BODY, UnsupportedAlgorithm),
            ("ES384", token(header_with(json!({"alg": "ES384", "kid": dt().kid(), "typ": "JWT"}))), BODY, UnsupportedAlgorithm),
            ("RS256", token(header_with(json!({"alg": "RS256", "kid": dt().kid(), "typ": "JWT"}))), BODY, UnsupportedAlgorithm),
            ("es256 in lowercase", token(header_with(json!({"alg": "es256", "kid": dt().kid(), "typ": "JWT"}))), BODY, UnsupportedAlgorithm),
            ("crit present", token(header_with(json!({"alg": "ES256", "kid": dt().kid(), "typ": "JWT", "crit": ["exp"]}))), BODY, UnsupportedAlgorithm),
            ("no alg", token(header_with(json!({"kid": dt().kid(), "typ": "JWT"}))), BODY, MalformedToken),
            ("missing kid", token(header_with(json!({"alg": "ES256", "typ": "JWT"}))), BODY, MissingKeyId),
            ("kid not a string", token(header_with(json!({"alg": "ES256", "kid": 7, "typ": "JWT"}))), BODY, MalformedToken),
            ("empty kid", token(header_with(json!({"alg": "ES256", "kid": "", "typ": "JWT"}))), BODY, MissingKeyId),
            ("unknown kid", token(dt().sign_as(BODY, NOW, "cp65gdon1e4bhb5icbmg")), BODY, UnknownKey),
            ("signed by another key under DT's kid", token(attacker().sign_as(BODY, NOW, dt().kid())), BODY, InvalidSignature),
            ("claims changed after signing", token({
                let (header, rest) = valid.split_once('.').unwrap();
                let (_, signature) = rest.split_once('.').unwrap();
                let claims = dt_claims_text().replace(ORG, "c0rg1d0000000000000b");
                format!("{header}.{}.{signature}", b64(claims))
            }), BODY, InvalidSignature),
            ("signature empty", token(with_signature(&valid, "")), BODY, InvalidSignature),
            ("signature 63 bytes", token(with_signature(&valid, &b64(&raw_signature[..63]))), BODY, InvalidSignature),
            ("signature 65 bytes", token(with_signature(&valid, &b64([&raw_signature[..], &[0]].concat()))), BODY, InvalidSignature),
            ("signature in DER", token(with_signature(&valid, &b64(&der_signature))), BODY, InvalidSignature),
            ("signature all zero", token(with_signature(&valid, &b64([0u8; 64]))), BODY, InvalidSignature),
            ("signature not base64", token(with_signature(&valid, "***")), BODY, MalformedToken),
            ("signature padded", token(with_signature(&valid, &format!("{signature}="))), BODY, MalformedToken),
            ("long signature not base64", token(with_signature(&valid, &format!("{signature}{signature}*"))), BODY, MalformedToken),
            ("attacker's key embedded as jwk, its kid", token(attacker_signed(embedded_jwk)), BODY, UnknownKey),
            ("attacker's key embedded as jwk, DT's kid", token(attacker_signed(embedded_jwk_our_kid)), BODY, InvalidSignature),
            ("attacker's key embedded as x5c, DT's kid", token(attacker_signed(embedded_x5c)), BODY, InvalidSignature),
            ("claims not JSON", token(dt().sign_parts(dt_header().as_bytes(), b"{exp")), BODY, MalformedClaims),
            ("exp a string", token(claims_with(|c| { c.insert("exp".into(), (NOW + 300).to_string().into()); })), BODY, MalformedClaims),
            ("sub null", token(claims_with(|c| { c.insert("sub".into(), Value::Null); })), BODY, MalformedClaims),
            ("another issuer", token(claims_with(|c| { c.insert("iss".into(), "https://identity.disruptive-technologies.com/data-connector".into()); })), BODY, WrongIssuer),
            ("issuer with a trailing slash", token(claims_with(|c| { c.insert("iss".into(), format!("{ISSUER}/").into()); })), BODY, WrongIssuer),
            ("issuer over http", token(claims_with(|c| { c.insert("iss".into(), ISSUER.replace("https:", "http:").into()); })), BODY, WrongIssuer),
            ("no issuer", token(claims_with(|c| { c.remove("iss"); })), BODY, WrongIssuer),
            ("another organization", token(claims_with(|c| { c.insert("sub".into(), "c0rg1d0000000000000b".into()); })), BODY, WrongOrganization),
            ("organization as a prefix", token(claims_with(|c| { c.insert("sub".into(), format!("{ORG}x").into()); })), BODY, WrongOrganization),
            ("no organization", token(claims_with(|c| { c.remove("sub"); })), BODY, WrongOrganization),
            ("no exp", token(claims_with(|c| { c.remove("exp"); })), BODY, MissingExpiry),
            ("expired", token(claims_with(|c| { c.insert("exp".into(), (NOW - 60).into()); })), BODY, Expired),
            ("issued in the future", token(claims_with(|c| { c.insert("iat".into(), (NOW + 61).into()); })), BODY, IssuedInFuture),
            ("not yet valid", token(claims_with(|c| { c.insert("nbf".into(), (NOW + 61).into()); })), BODY, NotYetValid),
            ("no checksum_sha256", token(claims_with(|c| { c.remove("checksum_sha256"); })), BODY, MissingSha256),
            ("SHA-1 checksum only", token(claims_with(|c| {
                c.remove("checksum_sha256");
                c.insert("checksum".into(), "f2b5dc0496437201d3cee156c233a1335603d465".into());
            })), BODY, MissingSha256),
            ("checksum_sha256 not hex", token(claims_with(|c| { c.insert("checksum_sha256".into(), "z".repeat(64).into()); })), BODY, MalformedChecksum),
            ("checksum_sha256 of SHA-1 length", token(claims_with(|c| { c.insert("checksum_sha256".into(), "a".repeat(40).into()); })), BODY, MalformedChecksum),
            ("checksum_sha256 a number", token(claims_with(|c| { c.insert("checksum_sha256".into(), 1.into()); })), BODY, MalformedClaims),
            ("body changed by one byte", token(valid.clone()), &other_body, ChecksumMismatch),
            ("body one byte longer", token(valid.clone()), &longer_body, ChecksumMismatch),
            ("empty body", token(valid.clone()), b"", ChecksumMismatch),
        ];
        let verifier = verifier();
        for (name, headers, body, kind) in &rows {
            match check(&verifier, headers, body) {
                Ok(_) => panic!("{name}: accepted"),
                Err(got) => assert_eq!(got, *kind, "{name}"),
            }
        }
        // The checks that need no body refuse without it, with the same kind.
        for (name, headers, _, kind) in rows.iter().filter(|row| row.3 != ChecksumMismatch) {
            let got = verifier.begin(headers).map(|_| ()).map_err(|e| e.kind());
            assert_eq!(got, Err(*kind), "{name}: before the body");
        }
    }

    #[test]
    fn unknown_kid_in_a_pinned_set_is_a_400() {
        let token = dt().sign_as(BODY, NOW, "other");
        let error = verifier().verify(&es_headers(&token), BODY).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::UnknownKey);
        assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
        // An empty pinned set: every kid is unknown, still a 400 (the set is current).
        let empty = DtKeys::from_jwks(ISSUER, r#"{"keys":[]}"#).unwrap();
        let error = Verifier::asymmetric(empty, ORG)
            .clock(at(NOW))
            .verify(&es_headers(&dt().sign_at(BODY, NOW)), BODY)
            .unwrap_err();
        assert_eq!(
            (error.kind(), error.status().as_u16()),
            (ErrorKind::UnknownKey, 400)
        );
    }

    #[test]
    fn any_organization_insecure_accepts_another_org_but_not_none() {
        let other = claims_with(|c| {
            c.insert("sub".into(), "c0rg1d0000000000000b".into());
        });
        let any = verifier_for(OrgId::any_organization_insecure());
        let claims = check(&any, &es_headers(&other), BODY).unwrap();
        assert_eq!(claims.org_id(), Some("c0rg1d0000000000000b"));
        assert_eq!(
            check(&verifier(), &es_headers(&other), BODY).unwrap_err(),
            ErrorKind::WrongOrganization
        );
        let none = claims_with(|c| {
            c.remove("sub");
        });
        assert_eq!(
            check(&any, &es_headers(&none), BODY).unwrap_err(),
            ErrorKind::WrongOrganization
        );
    }

    /// The bare id and DT's resource name `organizations/<id>`, in the configuration and
    /// in `sub`: every combination is the same organization; another is refused in both
    /// forms; the claims hold the bare id.
    #[test]
    fn org_id_in_either_form_on_either_side() {
        let prefixed = format!("organizations/{ORG}");
        let other = "c0rg1d0000000000000b";
        for configured in [ORG, prefixed.as_str()] {
            let verifier = verifier_for(configured);
            for sub in [ORG, prefixed.as_str()] {
                let token = claims_with(|c| {
                    c.insert("sub".into(), sub.into());
                });
                let claims = check(&verifier, &es_headers(&token), BODY)
                    .unwrap_or_else(|kind| panic!("{configured} / {sub}: {kind:?}"));
                assert_eq!(claims.org_id(), Some(ORG), "{configured} / {sub}");
            }
            for sub in [
                other.to_owned(),
                format!("organizations/{other}"),
                format!("organizations/organizations/{ORG}"),
                format!("organizations/{ORG}/"),
                format!("projects/{ORG}"),
            ] {
                let token = claims_with(|c| {
                    c.insert("sub".into(), sub.clone().into());
                });
                assert_eq!(
                    check(&verifier, &es_headers(&token), BODY).unwrap_err(),
                    ErrorKind::WrongOrganization,
                    "{configured} / {sub}"
                );
            }
        }
        // Without an organization to compare, the claims still hold the bare id.
        let any = verifier_for(OrgId::any_organization_insecure());
        let token = claims_with(|c| {
            c.insert("sub".into(), format!("organizations/{other}").into());
        });
        let claims = check(&any, &es_headers(&token), BODY).unwrap();
        assert_eq!(claims.org_id(), Some(other));
    }

    #[test]
    fn time_boundaries() {
        let exp = NOW + 300;
        let token = dt().sign_at(BODY, NOW);
        let at_time = |now: u64, leeway: u64| {
            check(
                &verifier()
                    .clock(at(now))
                    .leeway(Duration::from_secs(leeway)),
                &es_headers(&token),
                BODY,
            )
            .map(|_| ())
        };
        crate::verify::times::tests::assert_time_boundaries(NOW, exp, at_time);
        // The default verifier (leeway 60 s) at the default clock of these tests.
        let default = Verifier::asymmetric(dt().clone().with_issuer(ISSUER).dt_keys(), ORG)
            .clock(at(exp + 60));
        assert_eq!(
            check(&default, &es_headers(&token), BODY).unwrap_err(),
            ErrorKind::Expired
        );
    }

    #[test]
    fn any_changed_token_byte_fails() {
        let token = dt().sign_at(BODY, NOW);
        let verifier = verifier();
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let mutated = String::from_utf8(bytes).unwrap();
            assert!(
                verifier.verify(&es_headers(&mutated), BODY).is_err(),
                "byte {i} of the token changed and still accepted"
            );
        }
    }

    /// A key whose point is not on the curve is skipped when the set is parsed (not kept
    /// to fail every signature), and so never accepts a token.
    #[test]
    fn a_key_off_the_curve_is_skipped_and_accepts_nothing() {
        let mut jwk = dt().jwk();
        jwk["y"] = Value::String(b64([7u8; 32]));
        let keys = DtKeys::from_jwks(ISSUER, &json!({ "keys": [jwk] }).to_string()).unwrap();
        assert!(keys.kids().is_empty(), "an off-curve key was loaded");
        let token = dt().sign_at(BODY, NOW);
        let got = check(
            &Verifier::asymmetric(keys, ORG).clock(at(NOW)),
            &es_headers(&token),
            BODY,
        )
        .map(|_| ());
        assert!(
            matches!(
                got,
                Err(ErrorKind::InvalidSignature | ErrorKind::UnknownKey)
            ),
            "{got:?}"
        );
    }

    /// DT's real dev token: its header and claims are exactly what our signer mints for
    /// the same body, times, kid, issuer and org; with a pinned set that lacks its kid it
    /// is an unknown key; under another key with its kid, an invalid signature.
    #[test]
    fn dt_dev_token_parses_and_is_refused_as_unknown_key() {
        let vector: Value = serde_json::from_str(include_str!(
            "../../tests/data/dt-vectors/asymmetric-dev-2024-10-31.json"
        ))
        .unwrap();
        let token = vector["headers"]["DT-Asymmetric-Signature"]
            .as_str()
            .unwrap();
        let body = vector["body"].as_str().unwrap().as_bytes();
        let issuer = vector["issuer"].as_str().unwrap();
        let org = vector["org_id"].as_str().unwrap();
        assert_eq!(
            issuer,
            "https://identity.dev.disruptive-technologies.com/data-connector"
        );
        let kid = "cp65gdon1e4bhb5icbmg";
        let iat = 1_730_382_284;

        // Parser compatibility: our signer mints DT's header and claims byte for byte.
        let ours = dt()
            .clone()
            .with_issuer(issuer)
            .with_org_id(org)
            .with_kid(kid)
            .sign_at(body, iat);
        let (theirs_input, theirs_signature) = token.rsplit_once('.').unwrap();
        let (ours_input, _) = ours.rsplit_once('.').unwrap();
        assert_eq!(ours_input, theirs_input);
        assert_eq!(URL_SAFE_NO_PAD.decode(theirs_signature).unwrap().len(), 64);

        let mut headers = HeaderMap::new();
        for (name, value) in vector["headers"].as_object().unwrap() {
            headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.as_str().unwrap().parse().unwrap(),
            );
        }
        let pinned = |jwks: String| {
            Verifier::asymmetric(DtKeys::from_jwks(issuer, &jwks).unwrap(), org).clock(at(iat))
        };
        // A pinned set that lacks its kid.
        let error = pinned(dt().jwks()).verify(&headers, body).unwrap_err();
        assert_eq!(
            (error.kind(), error.scheme(), error.status().as_u16()),
            (ErrorKind::UnknownKey, Some(Scheme::Asymmetric), 400)
        );
        // Our key under its kid: parsed up to the signature check.
        let impostor = dt().clone().with_kid(kid);
        let error = pinned(impostor.jwks()).verify(&headers, body).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidSignature);
        // DT's production issuer and any organization: still refused at the key.
        let production = Verifier::asymmetric(
            DtKeys::from_jwks(crate::consts::DT_ISSUER, &dt().jwks()).unwrap(),
            OrgId::any_organization_insecure(),
        )
        .clock(at(iat));
        assert_eq!(
            production.verify(&headers, body).unwrap_err().kind(),
            ErrorKind::UnknownKey
        );
    }

    /// jsonwebtoken as an oracle: it verifies our tokens with the JWK, and we verify its
    /// ES256 tokens with DT's claims.
    #[test]
    fn tokens_interoperate_with_jsonwebtoken() {
        use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct Claims {
            checksum_sha256: String,
            exp: u64,
            iat: u64,
            iss: String,
            sub: String,
        }

        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(dt().jwk()).unwrap();
        let decoding = DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[ISSUER]);
        validation.sub = Some(ORG.into());
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // The real clock: our token is issued now.
        let token = dt().sign(BODY);
        let decoded = jsonwebtoken::decode::<Claims>(&token, &decoding, &validation).unwrap();
        assert_eq!(decoded.header.kid.as_deref(), Some(dt().kid()));
        assert_eq!(
            decoded.claims.checksum_sha256,
            hex::encode(Sha256::digest(BODY))
        );
        assert_eq!(decoded.claims.exp, decoded.claims.iat + 300);
        // And it refuses what we refuse: another key's signature.
        let forged = attacker().sign_as(BODY, decoded.claims.iat, dt().kid());
        assert!(jsonwebtoken::decode::<Claims>(&forged, &decoding, &validation).is_err());

        // A token minted by jsonwebtoken with DT's claims, under DT's key.
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(dt().kid().to_owned());
        let claims = Claims {
            checksum_sha256: hex::encode(Sha256::digest(BODY)),
            exp: NOW + 300,
            iat: NOW,
            iss: ISSUER.into(),
            sub: ORG.into(),
        };
        let theirs =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(dt().to_pkcs8()))
                .unwrap();
        let verified = check(&verifier(), &es_headers(&theirs), BODY).unwrap();
        assert_eq!(verified.kid(), Some(dt().kid()));
        assert_eq!(verified.org_id(), Some(ORG));
        // Under the attacker's key, with DT's kid: refused.
        let theirs = jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_ec_der(attacker().to_pkcs8()),
        )
        .unwrap();
        assert_eq!(
            check(&verifier(), &es_headers(&theirs), BODY).unwrap_err(),
            ErrorKind::InvalidSignature
        );
    }
}
