//! [`Signer`]: mints `X-Dt-Signature` tokens exactly as a DT Data Connector does
//! (feature `test-util`).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http::Request;
use serde::Serialize;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use zeroize::Zeroizing;

use crate::consts::{TOKEN_LIFETIME_SECS, X_DT_SIGNATURE};
use crate::error::ConfigError;
use crate::verify::hs256;

/// DT's JOSE header, byte for byte: `{"alg":"HS256","typ":"JWT"}`.
const DT_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Signs Data Connector requests as DT does, for tests and for a local Data Connector
/// (feature `test-util`).
///
/// A token is a compact JWS with the header `{"alg":"HS256","typ":"JWT"}` and the claims
/// `checksum` (SHA-1 of the body, hex), `checksum_sha256` (SHA-256, hex), `exp`
/// (`iat` + 3600), `iat` and `jti` (a fresh 20-character id), in that order, HMAC-SHA256
/// under the secret's bytes: the same bytes DT sends for the same body, times and id.
///
/// ```
/// use axum::{body::Body, routing::post, Router};
/// use http::StatusCode;
/// use tower::ServiceExt;
/// use tower_dt_signature::{testing::Signer, DtSignatureLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let app = Router::new()
///     .route("/", post(|| async { "ok" }))
///     .layer(DtSignatureLayer::new("test-secret").require_sha256(true));
///
/// let signer = Signer::new("test-secret");
/// let request = signer.request::<Body>("/", r#"{"event":{}}"#).unwrap();
/// assert_eq!(app.oneshot(request).await.unwrap().status(), StatusCode::OK);
/// # }
/// ```
#[derive(Clone)]
pub struct Signer {
    key: Zeroizing<Box<[u8]>>,
}

impl Signer {
    /// A signer for one secret (`&str`, `String` or bytes), used as is.
    ///
    /// # Panics
    ///
    /// If the secret is empty. Use [`try_new`](Self::try_new) to get an error instead.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self::try_new(secret).unwrap_or_else(|error| panic!("{error}"))
    }

    /// Like [`new`](Self::new), but returns [`ConfigError::EmptySecret`] for an empty
    /// secret instead of panicking.
    pub fn try_new(secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(ConfigError::EmptySecret);
        }
        Ok(Self {
            key: Zeroizing::new(secret.into()),
        })
    }

    /// A token for `body`, issued now, as DT mints them today.
    pub fn sign(&self, body: &[u8]) -> String {
        self.sign_with(body, &SignOptions::new())
    }

    /// A token for `body` with `options` (times, id, legacy SHA-1 only).
    pub fn sign_with(&self, body: &[u8], options: &SignOptions) -> String {
        let iat = options.iat.unwrap_or_else(unix_now);
        let jti = match &options.jti {
            Some(jti) => jti.clone(),
            None => new_id(iat),
        };
        let claims = Claims {
            checksum: hex::encode(Sha1::digest(body)),
            checksum_sha256: (!options.sha1_only).then(|| hex::encode(Sha256::digest(body))),
            exp: options
                .exp
                .unwrap_or(iat.saturating_add(TOKEN_LIFETIME_SECS)),
            iat,
            jti,
        };
        let claims = serde_json::to_vec(&claims).expect("claims serialize to JSON");
        self.sign_parts(DT_HEADER.as_bytes(), &claims)
    }

    /// A token with exactly this JOSE header and these claims (JSON text, encoded as
    /// given), HMAC-SHA256 under the secret: for tests of hostile tokens (`"alg":"none"`,
    /// a `crit` header, malformed claims) that DT would never send.
    ///
    /// ```
    /// use tower_dt_signature::{testing::Signer, ErrorKind, Verifier};
    ///
    /// let token = Signer::new("s").sign_parts(br#"{"alg":"none"}"#, br#"{"exp":1}"#);
    /// let error = Verifier::new("s").verify_token(&token, b"").unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::UnsupportedAlgorithm);
    /// ```
    pub fn sign_parts(&self, header: &[u8], claims: &[u8]) -> String {
        let message = super::signing_input(header, claims);
        let signature = URL_SAFE_NO_PAD.encode(hs256::sign(&self.key, message.as_bytes()));
        format!("{message}.{signature}")
    }

    dt_requests! {
        /// A `POST` to `uri` with `body`, signed now: `X-Dt-Signature`,
        /// `Content-Type: application/json` and `Content-Length`, as a Data Connector sends
        /// it. `B` is any body type made from [`Bytes`] (axum's `Body`, `Full<Bytes>`, ...).
        ///
        /// Fails only if `uri` is not a valid URI.
        X_DT_SIGNATURE,
        SignOptions
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Options for [`Signer::sign_with`]: every field defaults to what DT does.
///
/// ```
/// use tower_dt_signature::testing::{SignOptions, Signer};
///
/// // An expired token, for a test of the receiver's clock checks.
/// let token = Signer::new("secret").sign_with(b"{}", &SignOptions::new().iat(1_600_000_000));
/// # let _ = token;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "options do nothing until passed to `sign_with` or `request_with`"]
pub struct SignOptions {
    iat: Option<u64>,
    exp: Option<u64>,
    jti: Option<String>,
    sha1_only: bool,
}

impl SignOptions {
    /// DT's defaults: `iat` now, `exp` = `iat` + 3600, a fresh `jti`, both checksums.
    pub fn new() -> Self {
        Self::default()
    }

    option_setters! {
        /// `iat`, seconds since the Unix epoch. DT uses the event's timestamp. Default: now.
        iat: u64;
        /// `exp`, seconds since the Unix epoch. Default: `iat` + 3600.
        exp: u64;
        /// `jti`. Default: a fresh 20-character id like DT's (`c82gg99hga35jc2afkeg`).
        jti: impl Into<String>;
    }

    /// Leave out `checksum_sha256`, as DT did before 2022-02-10. Default: `false`.
    pub fn sha1_only(mut self, sha1_only: bool) -> Self {
        self.sha1_only = sha1_only;
        self
    }
}

/// The claims, in DT's order.
#[derive(Serialize)]
struct Claims {
    checksum: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum_sha256: Option<String>,
    exp: u64,
    iat: u64,
    jti: String,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// A fresh 20-character id in DT's format (an [xid]): 4 bytes of Unix seconds, 5 bytes
/// fixed per process, a 3-byte counter, in lowercase base32hex (`0-9a-v`). Unique, not
/// secret.
///
/// [xid]: https://github.com/rs/xid
pub(super) fn new_id(unix_secs: u64) -> String {
    static PROCESS: OnceLock<([u8; 5], AtomicU32)> = OnceLock::new();
    let (process, counter) = PROCESS.get_or_init(|| {
        let random = RandomState::new().build_hasher().finish();
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        let random2 = hasher.finish();
        let bytes = random.to_be_bytes();
        (
            [bytes[0], bytes[1], bytes[2], bytes[3], bytes[4]],
            AtomicU32::new(random2 as u32),
        )
    });
    let count = counter.fetch_add(1, Ordering::Relaxed);
    let mut raw = [0u8; 12];
    raw[..4].copy_from_slice(&(unix_secs as u32).to_be_bytes());
    raw[4..9].copy_from_slice(process);
    raw[9..].copy_from_slice(&count.to_be_bytes()[1..]);
    encode_id(&raw)
}

const BASE32HEX: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";

/// 12 bytes as 20 lowercase base32hex characters, without padding.
pub(super) fn encode_id(raw: &[u8; 12]) -> String {
    let mut out = String::with_capacity(20);
    let mut buffer = 0u32;
    let mut bits = 0;
    for &byte in raw {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32HEX[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32HEX[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_id(id: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buffer = 0u32;
        let mut bits = 0;
        for c in id.bytes() {
            let value = BASE32HEX.iter().position(|&b| b == c).unwrap() as u32;
            buffer = (buffer << 5) | value;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push((buffer >> bits) as u8);
            }
        }
        out
    }

    #[test]
    fn dt_ids_are_xids_that_start_with_the_time() {
        // Real ids from the DT vectors: jti and eventId of the 2022-02-10 request, whose
        // iat is 1644496933 (2022-02-10T12:42:13Z).
        for id in ["c82gg99hga35jc2afkeg", "c82gg9catj3vmh4248og"] {
            let raw = decode_id(id);
            assert_eq!(raw.len(), 12);
            let secs = u32::from_be_bytes(raw[..4].try_into().unwrap());
            assert!(
                (1_644_496_933 - 5..=1_644_496_933 + 5).contains(&secs),
                "{secs}"
            );
            // Our encoding gives the same text back.
            assert_eq!(encode_id(&raw.try_into().unwrap()), id);
        }
    }

    #[test]
    fn new_ids_have_dt_shape_and_are_unique() {
        let a = new_id(1_644_496_933);
        let b = new_id(1_644_496_933);
        assert_ne!(a, b);
        for id in [&a, &b] {
            assert_eq!(id.len(), 20);
            assert!(id.bytes().all(|c| BASE32HEX.contains(&c)), "{id}");
            assert_eq!(&decode_id(id)[..4], &1_644_496_933u32.to_be_bytes());
        }
        // Same second, same process: DT's ids of one second share their first 7 chars.
        assert_eq!(a[..6], b[..6]);
        assert!(a.starts_with("c82gg9"), "{a}");
    }
}
