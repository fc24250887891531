//! The `DT-Asymmetric-Signature` check (`Verifier::asymmetric` over a pinned key set) on
//! arbitrary input.
//!
//! Input: one mode byte, then `token \n body`.
//! - mode bit 0 clear: the token is used as is (DT's dev token and tokens of the fixed
//!   keys are seeds);
//! - mode bit 0 set: the token's text is taken as `header-json \t claims-json` and signed
//!   with a fixed key (bits 1-2: `fuzz-a`, `fuzz-b`, or `fuzz-outsider`, which is not in
//!   the set), so the fuzzer explores the header and claims behind a valid signature;
//! - mode bit 3 set: the header is sent twice.
//!
//! Invariants: nothing panics; an accepted token was signed by a key of the set, names
//! the set's issuer and the organization, is live, and its SHA-256 matched the body; a
//! refusal names the asymmetric scheme and says only a text of the fixed table.
#![no_main]

mod common;

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tower_dt_signature::consts::DT_ASYMMETRIC_SIGNATURE;
use tower_dt_signature::{Scheme, Verifier};

use common::{at, keys, mode_token_body, sign_es, signers, ISSUER, NOW_ES, ORG};

fuzz_target!(|data: &[u8]| {
    let Some((mode, token, body)) = mode_token_body(data) else {
        return;
    };
    let signer = (mode & 1 == 1).then(|| &signers()[usize::from(mode >> 1 & 3) % 3]);
    let token = match signer {
        Some(signer) => sign_es(signer, token).into_bytes(),
        None => token.to_vec(),
    };
    let Ok(value) = HeaderValue::from_bytes(&token) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.append(DT_ASYMMETRIC_SIGNATURE, value.clone());
    if mode & 8 != 0 {
        headers.append(DT_ASYMMETRIC_SIGNATURE, value);
    }

    let verifier = Verifier::asymmetric(keys(), ORG).clock(at(NOW_ES));
    match verifier.verify(&headers, body) {
        Ok(claims) => {
            assert_eq!(claims.schemes(), [Scheme::Asymmetric]);
            assert!(claims.sha256_verified());
            assert!(claims.exp() + 60 > NOW_ES);
            assert_eq!(claims.issuer(), Some(ISSUER));
            assert_eq!(claims.org_id(), Some(ORG));
            assert!(matches!(claims.kid(), Some("fuzz-a" | "fuzz-b")));
            assert!(mode & 8 == 0, "a repeated header was accepted");
            if let Some(signer) = signer {
                assert_ne!(signer.kid(), "fuzz-outsider", "a key outside the set");
            }
        }
        Err(error) => {
            assert_eq!(error.scheme(), Some(Scheme::Asymmetric));
            assert_eq!(error.to_string(), error.kind().public_str());
        }
    }
});
