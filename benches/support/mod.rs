//! What the benchmarks share: a token exactly as DT signs one, minted by the crate's
//! `Signer` (DT's header and claim order, byte for byte).

use std::time::{SystemTime, UNIX_EPOCH};

use tower_dt_signature::testing::{SignOptions, Signer};

/// A token as DT signs one for `body`, issued `age` seconds ago.
pub fn dt_token(body: &[u8], age: u64, secret: &str) -> String {
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - age;
    Signer::new(secret).sign_with(
        body,
        &SignOptions::new().iat(iat).jti("cpbg96qngr7ai7ldarrg"),
    )
}
