//! What the benchmarks share: a token exactly as DT signs one.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// A token as DT signs one for `body`, issued `age` seconds ago.
pub fn dt_token(body: &[u8], age: u64, secret: &str) -> String {
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - age;
    let claims = serde_json::json!({
        "checksum": hex::encode(Sha1::digest(body)),
        "checksum_sha256": hex::encode(Sha256::digest(body)),
        "exp": iat + 3600,
        "iat": iat,
        "jti": "cpbg96qngr7ai7ldarrg",
    });
    // DT's header, byte for byte (`jsonwebtoken::Header` would put `typ` first), and its
    // claims in DT's order (serde_json sorts them).
    let b64 = |json: &str| URL_SAFE_NO_PAD.encode(json);
    let input = format!(
        "{}.{}",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64(&claims.to_string())
    );
    let key = EncodingKey::from_secret(secret.as_bytes());
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::HS256).unwrap();
    format!("{input}.{signature}")
}
