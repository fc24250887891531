//! The token parser and verifier on arbitrary input.
//!
//! Input: one mode byte, then `token \n body`.
//! - mode even: the token is used as is (the real DT requests are seeds);
//! - mode odd: the token's text is taken as `header-json \t claims-json` and signed with
//!   the secret, so the fuzzer explores the claims parser behind a valid signature.
#![no_main]

mod common;

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use tower_dt_signature::Verifier;

use common::{mode_token_body, sign_hmac, SECRET};

fuzz_target!(|data: &[u8]| {
    let Some((mode, token, body)) = mode_token_body(data) else {
        return;
    };
    let token = if mode % 2 == 1 {
        sign_hmac(token)
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
