//! The token parser and verifier on arbitrary input.
//!
//! Input: one mode byte, then `token \n body`.
//! - mode even: the token is used as is (the real DT requests are seeds);
//! - mode odd: the token's text is taken as `header-json \t claims-json` and signed with
//!   the secret, so the fuzzer explores the claims parser behind a valid signature.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use tower_dt_signature::testing::Signer;
use tower_dt_signature::Verifier;

const SECRET: &str = "test-secret";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (token, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let token = if mode % 2 == 1 {
        let text = String::from_utf8_lossy(token);
        let (header, claims) = text
            .split_once('\t')
            .unwrap_or((r#"{"alg":"HS256","typ":"JWT"}"#, &text));
        Signer::new(SECRET).sign_parts(header.as_bytes(), claims.as_bytes())
    } else {
        String::from_utf8_lossy(token).into_owned()
    };

    // The clock of the real SHA-256 request in the seed corpus.
    let verifier = Verifier::new(SECRET)
        .add_secret("second-secret")
        .clock(|| UNIX_EPOCH + Duration::from_secs(1_644_496_933));
    match verifier.verify_token(&token, body) {
        Ok(claims) => {
            // Accepted only with a verified checksum and a live token.
            assert!(claims.sha1_verified() || claims.sha256_verified());
            assert!(claims.exp() + 60 > 1_644_496_933);
        }
        Err(error) => {
            // Messages come from the fixed set, so they never echo the input.
            assert_eq!(error.to_string(), error.kind().as_str());
        }
    }
});
