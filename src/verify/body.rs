//! The digests of the body: [`BodyVerifier`] hashes it chunk by chunk, then compares
//! with the checksums of the verified tokens.

use std::fmt;

use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::explain::Observe;
use super::hs256::HmacPart;
use super::EsPart;
#[cfg(feature = "asymmetric")]
use crate::claims::AsymmetricClaims;
use crate::claims::DtClaims;
use crate::error::{DtSignatureError, ErrorKind, Scheme};

/// The second half of a verification: hashes the body as it arrives, then compares.
///
/// Made by [`Verifier::begin`](super::Verifier::begin) once the tokens are known to be valid. Only the digests the
/// tokens carry are computed, in one pass over the bytes (one SHA-256 for both tokens).
#[must_use = "the body is verified only by `finish`"]
pub struct BodyVerifier {
    sha1: Option<(Sha1, [u8; 20])>,
    sha256: Option<Sha256>,
    /// The SHA-256 each verified token expects: the HMAC token's, then the ES256 one's.
    expected: [Option<[u8; 32]>; 2],
    claims: DtClaims,
    /// The refusal that stands if the HMAC token's checksums match (see `policy::Decided`).
    unless_mismatch: Option<DtSignatureError>,
}

impl BodyVerifier {
    #[inline]
    pub(super) fn new(hmac: Option<HmacPart>, es: Option<EsPart>) -> Self {
        let mut claims = DtClaims::default();
        let mut exp = u64::MAX;
        let mut expected = [None, None];
        let mut sha1 = None;
        if let Some(part) = hmac {
            exp = exp.min(part.exp);
            claims.jti = part.jti;
            claims.hmac_iat = part.iat;
            claims.secret_index = Some(part.secret_index);
            claims.hmac = true;
            sha1 = part.sha1.map(|expected| (Sha1::new(), expected));
            expected[0] = part.sha256;
        }
        #[cfg(feature = "asymmetric")]
        if let Some(part) = es {
            exp = exp.min(part.exp);
            expected[1] = Some(part.sha256);
            claims.asymmetric = Some(AsymmetricClaims {
                issuer: part.issuer,
                kid: part.kid,
                org_id: part.sub,
                iat: part.iat,
            });
        }
        #[cfg(not(feature = "asymmetric"))]
        let _: Option<EsPart> = es;
        claims.exp = exp;
        Self {
            sha1,
            sha256: expected.iter().any(Option::is_some).then(Sha256::new),
            expected,
            claims,
            unless_mismatch: None,
        }
    }

    /// Refuse with `error` after the body unless the HMAC token's checksum refuses first.
    pub(super) fn unless_mismatch(mut self, error: Option<DtSignatureError>) -> Self {
        self.unless_mismatch = error;
        self
    }

    /// Feed the next chunk of the body, in order.
    pub fn update(&mut self, chunk: &[u8]) {
        if let Some((hasher, _)) = &mut self.sha1 {
            hasher.update(chunk);
        }
        if let Some(hasher) = &mut self.sha256 {
            hasher.update(chunk);
        }
    }

    /// Compare the digests of everything fed with the tokens' checksums, in constant
    /// time. Every checksum present must match: a correct SHA-1 never excuses a wrong
    /// SHA-256, and one token's match never excuses the other's mismatch.
    pub fn finish(self) -> Result<DtClaims, DtSignatureError> {
        self.finish_observed(&mut ())
    }

    /// [`finish`](Self::finish), telling `obs` each comparison ([`Verifier::explain`](super::Verifier::explain)).
    pub(super) fn finish_observed(
        self,
        obs: &mut impl Observe,
    ) -> Result<DtClaims, DtSignatureError> {
        let mut claims = self.claims;
        let sha1_ok = self.sha1.map(|(hasher, expected)| {
            let computed = hasher.finalize();
            let ok = computed[..].ct_eq(&expected);
            obs.digest(Scheme::Hmac, "checksum", &expected, &computed, ok.into());
            ok
        });
        let sha256 = self.sha256.map(Sha256::finalize);
        let schemes = [Scheme::Hmac, Scheme::Asymmetric];
        let sha256_ok = std::array::from_fn::<_, 2, _>(|at| {
            self.expected[at].map(|expected| {
                let computed = sha256.as_ref().expect("hashed when expected");
                let ok = computed[..].ct_eq(&expected);
                obs.digest(
                    schemes[at],
                    "checksum_sha256",
                    &expected,
                    computed,
                    ok.into(),
                );
                ok
            })
        });
        let hmac_ok = sha1_ok.unwrap_or(1.into()) & sha256_ok[0].unwrap_or(1.into());
        if !bool::from(hmac_ok) {
            return Err(DtSignatureError::new(ErrorKind::ChecksumMismatch).for_scheme(Scheme::Hmac));
        }
        if let Some(error) = self.unless_mismatch {
            return Err(error);
        }
        if !bool::from(sha256_ok[1].unwrap_or(1.into())) {
            return Err(
                DtSignatureError::new(ErrorKind::ChecksumMismatch).for_scheme(Scheme::Asymmetric)
            );
        }
        claims.sha1_verified = sha1_ok.is_some();
        claims.sha256_verified = sha256_ok.iter().any(Option::is_some);
        Ok(claims)
    }
}

impl fmt::Debug for BodyVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyVerifier")
            .field("sha1", &self.sha1.is_some())
            .field("sha256", &self.sha256.is_some())
            .field("schemes", &self.claims.schemes())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use crate::error::ErrorKind;
    use crate::verify::hs256::tests::{sha1_hex, sha256_hex, verifier_at, with, BODY, NOW};

    #[test]
    fn checksums_accept_either_case_and_all_must_match() {
        let upper = with(|c| {
            c.insert("checksum".into(), sha1_hex(BODY).to_uppercase().into());
            c.insert(
                "checksum_sha256".into(),
                sha256_hex(BODY).to_uppercase().into(),
            );
        });
        assert!(verifier_at(NOW).verify_token(&upper, BODY).is_ok());

        let sha1_only = with(|c| {
            c.remove("checksum_sha256");
        });
        let claims = verifier_at(NOW).verify_token(&sha1_only, BODY).unwrap();
        assert!(claims.sha1_verified() && !claims.sha256_verified());
        let required = verifier_at(NOW).require_sha256(true);
        assert_eq!(
            required.verify_token(&sha1_only, BODY).unwrap_err().kind(),
            ErrorKind::MissingSha256
        );

        let sha256_only = with(|c| {
            c.remove("checksum");
        });
        let claims = required.verify_token(&sha256_only, BODY).unwrap();
        assert!(!claims.sha1_verified() && claims.sha256_verified());
    }

    #[test]
    fn any_changed_body_byte_fails() {
        let token = with(|_| {});
        let verifier = verifier_at(NOW);
        for i in 0..BODY.len() {
            let mut body = BODY.to_vec();
            body[i] ^= 0x01;
            assert_eq!(
                verifier.verify_token(&token, &body).unwrap_err().kind(),
                ErrorKind::ChecksumMismatch,
                "byte {i}"
            );
        }
        let mut longer = BODY.to_vec();
        longer.push(b' ');
        assert!(verifier.verify_token(&token, &longer).is_err());
        assert!(verifier
            .verify_token(&token, &BODY[..BODY.len() - 1])
            .is_err());
    }

    #[test]
    fn chunked_updates_equal_one_update() {
        let token = with(|_| {});
        let verifier = verifier_at(NOW);
        let mut pending = verifier.begin_token(&token).unwrap();
        for chunk in BODY.chunks(7) {
            pending.update(chunk);
        }
        assert!(pending.finish().is_ok());
    }
}
