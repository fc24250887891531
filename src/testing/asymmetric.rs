//! [`AsymmetricSigner`]: mints `DT-Asymmetric-Signature` tokens (ES256) in DT's exact
//! shape (features `test-util` and `asymmetric`).

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http::Request;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::signer::{encode_id, Signer};
use crate::consts::{
    ASYMMETRIC_TOKEN_LIFETIME_SECS, DT_ASYMMETRIC_SIGNATURE, DT_ISSUER, X_DT_SIGNATURE,
};
use crate::keys::{DtKeys, KeysError};

/// The organization id an [`AsymmetricSigner`] puts in `sub` unless told otherwise: an id
/// in DT's format that no real organization has.
pub const SAMPLE_ORG_ID: &str = "cl0ca1dataconnect0rg";

/// Signs Data Connector requests with an ES256 key, as DT's identity service signs
/// `DT-Asymmetric-Signature` (features `test-util` and `asymmetric`).
///
/// A token is a compact JWS with the JOSE header `{"alg":"ES256","kid":"<kid>","typ":"JWT"}`
/// and the claims `checksum_sha256` (SHA-256 of the body, lowercase hex), `exp`
/// (`iat` + 300), `iat`, `iss` and `sub` (the DT organization), in that order, as in DT's
/// tokens; the signature is the 64-byte `r || s` of RFC 7518, 3.4, base64url.
///
/// The key is a P-256 key pair: [`generate`](Self::generate)d, or loaded from PKCS#8 so
/// that its `kid` stays the same across runs ([`load_or_generate`](Self::load_or_generate)).
/// The public half is [`jwk`](Self::jwk) / [`jwks`](Self::jwks), or already a pinned
/// [`DtKeys`] with [`dt_keys`](Self::dt_keys).
///
/// ```
/// use http::StatusCode;
/// use tower::ServiceExt;
/// use tower_dt_signature::testing::AsymmetricSigner;
/// use tower_dt_signature::{DtSignatureLayer, Verifier};
/// # use tower::Layer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let signer = AsymmetricSigner::generate().with_org_id("my-org");
/// let verifier = Verifier::asymmetric(signer.dt_keys(), "my-org");
/// let service = DtSignatureLayer::from(verifier).layer(tower::service_fn(
///     |_: http::Request<tower_dt_signature::DtBody>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
///     },
/// ));
///
/// let request = signer.request::<http_body_util::Full<bytes::Bytes>>("/", r#"{"event":{}}"#).unwrap();
/// assert_eq!(service.oneshot(request).await.unwrap().status(), StatusCode::OK);
/// # }
/// ```
#[derive(Clone)]
pub struct AsymmetricSigner {
    key: Arc<EcdsaKeyPair>,
    pkcs8: Arc<Zeroizing<Vec<u8>>>,
    kid: String,
    issuer: String,
    org_id: String,
}

impl AsymmetricSigner {
    /// A fresh P-256 key, with the defaults: `kid` derived from the public key
    /// ([`kid`](Self::kid)), `iss` DT's production issuer ([`DT_ISSUER`]), `sub`
    /// [`SAMPLE_ORG_ID`].
    pub fn generate() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("the system random generator works");
        Self::from_pkcs8(pkcs8.as_ref()).expect("ring reads the PKCS#8 it wrote")
    }

    /// The P-256 key in `pkcs8` (a PKCS#8 v1 or v2 document, DER, with the public key, as
    /// [`to_pkcs8`](Self::to_pkcs8) gives), with the defaults of [`generate`](Self::generate).
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, KeysError> {
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|error| KeysError::new(format!("not a P-256 PKCS#8 key: {error}")))?;
        let kid = derived_kid(key.public_key().as_ref());
        Ok(Self {
            key: Arc::new(key),
            pkcs8: Arc::new(Zeroizing::new(pkcs8.to_vec())),
            kid,
            issuer: DT_ISSUER.to_owned(),
            org_id: SAMPLE_ORG_ID.to_owned(),
        })
    }

    /// The key in the PKCS#8 DER file at `path`. See [`from_pkcs8`](Self::from_pkcs8).
    pub fn from_pkcs8_file(path: impl AsRef<Path>) -> Result<Self, KeysError> {
        let path = path.as_ref();
        let der =
            Zeroizing::new(std::fs::read(path).map_err(|error| {
                KeysError::new(format!("cannot read {}: {error}", path.display()))
            })?);
        Self::from_pkcs8(&der)
    }

    /// The key in the PKCS#8 DER file at `path`, or, if there is no such file, a fresh key
    /// saved there: a signer whose `kid` stays the same from one run to the next (a local
    /// Data Connector whose public key a receiver has pinned).
    pub fn load_or_generate(path: impl AsRef<Path>) -> Result<Self, KeysError> {
        let path = path.as_ref();
        if path.exists() {
            return Self::from_pkcs8_file(path);
        }
        let signer = Self::generate();
        signer.save_pkcs8(path)?;
        Ok(signer)
    }

    /// The private key as a PKCS#8 DER document: keep it to sign with the same key (and
    /// `kid`) later. It is a secret.
    pub fn to_pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// Write [`to_pkcs8`](Self::to_pkcs8) to the file at `path` (created or replaced).
    pub fn save_pkcs8(&self, path: impl AsRef<Path>) -> Result<(), KeysError> {
        let path = path.as_ref();
        std::fs::write(path, self.to_pkcs8())
            .map_err(|error| KeysError::new(format!("cannot write {}: {error}", path.display())))
    }

    /// The same key under the key id `kid`. Default: 20 characters in the alphabet of DT's
    /// ids, derived from the public key (the same key always gets the same `kid`).
    #[must_use = "the signer with this kid is returned, not set in place"]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = kid.into();
        self
    }

    /// The same key, minting tokens whose `iss` is `issuer`. Default:
    /// [`DT_ISSUER`], DT's production issuer.
    #[must_use = "the signer with this issuer is returned, not set in place"]
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// The same key, minting tokens whose `sub` is `org_id`, the DT organization.
    /// Default: [`SAMPLE_ORG_ID`].
    #[must_use = "the signer with this org_id is returned, not set in place"]
    pub fn with_org_id(mut self, org_id: impl Into<String>) -> Self {
        self.org_id = org_id.into();
        self
    }

    /// The key id, the JOSE header's `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The issuer put into `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The organization id put into `sub`.
    pub fn org_id(&self) -> &str {
        &self.org_id
    }

    /// The public key as the uncompressed point `04 || x || y` (65 bytes).
    pub fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    /// The public key as a JWK, as DT publishes its keys: `kty` `EC`, `crv` `P-256`, `x`,
    /// `y` (base64url), `kid`, `use` `sig`, `alg` `ES256`.
    pub fn jwk(&self) -> serde_json::Value {
        let point = self.public_key();
        serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
    }

    /// A JWK Set (JSON text) holding this key alone: what [`DtKeys::from_jwks`] reads.
    pub fn jwks(&self) -> String {
        Self::jwks_of(&[self])
    }

    /// A JWK Set (JSON text) holding the keys of `signers`, in that order.
    pub fn jwks_of(signers: &[&AsymmetricSigner]) -> String {
        let keys: Vec<_> = signers.iter().map(|signer| signer.jwk()).collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    /// A pinned key set with this key alone, for this signer's issuer: ready for
    /// [`Verifier::asymmetric`](crate::Verifier::asymmetric).
    pub fn dt_keys(&self) -> DtKeys {
        DtKeys::from_jwks(self.issuer.clone(), &self.jwks()).expect("a signer's JWK Set is valid")
    }

    /// A token for `body`, issued now, as DT mints them.
    pub fn sign(&self, body: &[u8]) -> String {
        self.sign_with(body, &AsymmetricSignOptions::new())
    }

    /// A token for `body` with `options` (times, another `kid`, `iss` or `sub`).
    pub fn sign_with(&self, body: &[u8], options: &AsymmetricSignOptions) -> String {
        let iat = options.iat.unwrap_or_else(unix_now);
        let header = Header {
            alg: "ES256",
            kid: options.kid.as_deref().unwrap_or(&self.kid),
            typ: "JWT",
        };
        let claims = Claims {
            checksum_sha256: hex::encode(Sha256::digest(body)),
            exp: options
                .exp
                .unwrap_or(iat.saturating_add(ASYMMETRIC_TOKEN_LIFETIME_SECS)),
            iat,
            iss: options.issuer.as_deref().unwrap_or(&self.issuer),
            sub: options.org_id.as_deref().unwrap_or(&self.org_id),
        };
        let header = serde_json::to_vec(&header).expect("the header serializes to JSON");
        let claims = serde_json::to_vec(&claims).expect("the claims serialize to JSON");
        self.sign_parts(&header, &claims)
    }

    /// A token with exactly this JOSE header and these claims (JSON text, encoded as
    /// given), signed with ES256 under this key: for tests of hostile tokens (`"alg":"none"`,
    /// `crit`, an embedded `jwk`, a missing claim) that DT would never send.
    ///
    /// ```
    /// use tower_dt_signature::testing::AsymmetricSigner;
    /// use tower_dt_signature::{ErrorKind, Verifier};
    ///
    /// let signer = AsymmetricSigner::generate();
    /// let header = format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{}","crit":["exp"]}}"#, signer.kid());
    /// let token = signer.sign_parts(header.as_bytes(), br#"{"exp":1}"#);
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("dt-asymmetric-signature", token.parse().unwrap());
    /// let verifier = Verifier::asymmetric(signer.dt_keys(), signer.org_id());
    /// let error = verifier.verify(&headers, b"").unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::UnsupportedAlgorithm);
    /// ```
    pub fn sign_parts(&self, header: &[u8], claims: &[u8]) -> String {
        let message = super::signing_input(header, claims);
        let signature = self
            .key
            .sign(&SystemRandom::new(), message.as_bytes())
            .expect("the system random generator works");
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    dt_requests! {
        /// A `POST` to `uri` with `body`, signed now: `DT-Asymmetric-Signature`,
        /// `Content-Type: application/json` and `Content-Length`, as a Data Connector without
        /// a signature secret sends it. `B` is any body type made from [`Bytes`].
        ///
        /// Fails only if `uri` is not a valid URI.
        DT_ASYMMETRIC_SIGNATURE,
        AsymmetricSignOptions
    }

    /// A `POST` carrying both tokens, as a Data Connector with a signature secret sends
    /// it: `X-Dt-Signature` from `hmac`, `DT-Asymmetric-Signature` from this signer, both
    /// issued now for `body`. For [`Verifier::both`](crate::Verifier::both) and
    /// [`Verifier::either`](crate::Verifier::either).
    ///
    /// Fails only if `uri` is not a valid URI.
    pub fn request_with_hmac<B: From<Bytes>>(
        &self,
        hmac: &Signer,
        uri: &str,
        body: impl Into<Bytes>,
    ) -> Result<Request<B>, http::Error> {
        let body = body.into();
        let hmac_token = hmac.sign(&body);
        let mut request = super::dt_post(uri, DT_ASYMMETRIC_SIGNATURE, self.sign(&body), body)?;
        let value = http::HeaderValue::try_from(hmac_token)?;
        request.headers_mut().insert(X_DT_SIGNATURE, value);
        Ok(request)
    }
}

impl fmt::Debug for AsymmetricSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The private key is left out: `..` stands for it.
        f.debug_struct("AsymmetricSigner")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("org_id", &self.org_id)
            .finish_non_exhaustive()
    }
}

/// Options for [`AsymmetricSigner::sign_with`]: every field defaults to what DT does (or
/// the signer's own `kid`, issuer and organization).
///
/// ```
/// use tower_dt_signature::testing::{AsymmetricSignOptions, AsymmetricSigner};
///
/// // Another organization's token, signed with DT's (here: the test's) key.
/// let signer = AsymmetricSigner::generate().with_org_id("mine");
/// let token = signer.sign_with(b"{}", &AsymmetricSignOptions::new().org_id("theirs"));
/// # let _ = token;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "options do nothing until passed to `sign_with` or `request_with`"]
pub struct AsymmetricSignOptions {
    iat: Option<u64>,
    exp: Option<u64>,
    kid: Option<String>,
    issuer: Option<String>,
    org_id: Option<String>,
}

impl AsymmetricSignOptions {
    /// DT's defaults: `iat` now, `exp` = `iat` + 300, the signer's `kid`, `iss` and `sub`.
    pub fn new() -> Self {
        Self::default()
    }

    option_setters! {
        /// `iat`, seconds since the Unix epoch. Default: now.
        iat: u64;
        /// `exp`, seconds since the Unix epoch. Default: `iat` + 300
        /// ([`ASYMMETRIC_TOKEN_LIFETIME_SECS`]).
        exp: u64;
        /// The JOSE header's `kid`, signed with this key all the same. Default: the signer's.
        kid: impl Into<String>;
        /// `iss`. Default: the signer's issuer.
        issuer: impl Into<String>;
        /// `sub`, the DT organization. Default: the signer's organization.
        org_id: impl Into<String>;
    }
}

/// DT's JOSE header, in DT's key order.
#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    kid: &'a str,
    typ: &'a str,
}

/// DT's claims, in DT's order.
#[derive(Serialize)]
struct Claims<'a> {
    checksum_sha256: String,
    exp: u64,
    iat: u64,
    iss: &'a str,
    sub: &'a str,
}

/// 20 characters of DT's id alphabet from the SHA-256 of the public key.
fn derived_kid(public_key: &[u8]) -> String {
    let digest = Sha256::digest(public_key);
    let mut raw = [0u8; 12];
    raw.copy_from_slice(&digest[..12]);
    encode_id(&raw)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
