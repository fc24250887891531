//! [`Decoy`]: what a gateway does for a request whose tenant does not exist, so that the
//! time of its answer does not tell unknown tenants from known ones.

use std::fmt;

use http::HeaderMap;

#[cfg(feature = "asymmetric")]
use crate::keys::{DtKeys, OrgId};
use crate::verify::{Policy, Verifier};

/// The secret of the decoy's verifier: no token is signed with it.
const DECOY_SECRET: &[u8] = b"tower-dt-signature decoy key: matches no token";

/// The work a gateway does for a request of an unknown tenant: the checks a known tenant
/// of one policy runs, on the same request, with a secret no token is signed with, and the
/// answer thrown away. Set with [`DtSignatureLayer::decoy`](crate::DtSignatureLayer::decoy).
///
/// A known tenant refuses a forged token after its crypto work: one HMAC per secret when
/// the policy reads `X-Dt-Signature` and the token gets that far, and one P-256 verify
/// when the policy reads `DT-Asymmetric-Signature` and the token's `kid` is in the key set
/// (a made-up `kid` costs it only a lookup). The decoy runs exactly that code with its own
/// verifier, so that for each token shape an unknown tenant does the work of a known one
/// (equal work, rather than a floor on the time of refusals: no timer, nothing to tune).
///
/// The decoy never waits for a key refresh: a known tenant given a made-up `kid` under
/// discovered keys waits for the refresh it triggers (at most once per 30 s), an unknown
/// one does not. SECURITY.md names what still tells tenants apart.
///
/// ```
/// # #[cfg(feature = "asymmetric")] {
/// use tower_dt_signature::gateway::{Decoy, StaticSecrets};
/// use tower_dt_signature::keys::DtKeys;
/// use tower_dt_signature::{verify::Policy, DtSignatureLayer, Verifier};
///
/// let keys = DtKeys::from_jwks("https://identity.example", r#"{"keys":[]}"#).unwrap();
/// let secrets = StaticSecrets::by_path_segment(1)
///     .tenant("warehouse", Verifier::either("warehouse secret", keys.clone(), "org-id"))
///     .tenant("office", Verifier::either("office secret", keys.clone(), "org-id"));
/// // Unknown tenants do the work of an `either` tenant under the same keys.
/// let layer = DtSignatureLayer::gateway(secrets).decoy(Decoy::new(Policy::Either, keys));
/// # let _ = layer;
/// # }
/// ```
#[derive(Clone)]
pub struct Decoy {
    verifier: Verifier,
}

impl Decoy {
    /// The work of an `hmac` tenant with one secret: one HMAC, when the `X-Dt-Signature`
    /// token gets as far as its signature. The default of every gateway.
    pub fn hmac() -> Self {
        Self {
            verifier: Verifier::new(DECOY_SECRET),
        }
    }

    /// The work of a tenant of `policy` with one secret, whose asymmetric token is checked
    /// against `keys` (the key set the gateway's tenants share; ignored for
    /// [`Policy::Hmac`]). Set it to the policy of the gateway's ES256 tenants: with the
    /// default, an unknown tenant does no P-256 verify, and a token under DT's public
    /// `kid` tells which ES256 tenants exist.
    #[cfg(feature = "asymmetric")]
    #[cfg_attr(docsrs, doc(cfg(feature = "asymmetric")))]
    pub fn new(policy: Policy, keys: DtKeys) -> Self {
        // An organization no token names, so that a genuine DT token stops where it stops
        // at a known tenant of another organization.
        let org = || OrgId::new("tower-dt-signature-decoy-organization");
        let verifier = match policy {
            Policy::Hmac => Verifier::new(DECOY_SECRET),
            Policy::Asymmetric => Verifier::asymmetric(keys, org()),
            Policy::Both => Verifier::both(DECOY_SECRET, keys, org()),
            Policy::Either => Verifier::either(DECOY_SECRET, keys, org()),
        };
        // Its refusals are no tenant's mistake: no warn line naming its made-up
        // organization or a prober's made-up `kid` (the same work, at debug level).
        let verifier = verifier.quiet_notices();
        Self { verifier }
    }

    /// The policy whose work the decoy does.
    pub fn policy(&self) -> Policy {
        self.verifier.policy()
    }

    /// Check the request's tokens as a known tenant would, with no refresh of the key set
    /// asked for or waited on, and forget the answer.
    pub(crate) fn run(&self, headers: &HeaderMap) {
        let _ = std::hint::black_box(self.verifier.start(headers, false));
    }
}

impl Default for Decoy {
    /// [`Decoy::hmac`].
    fn default() -> Self {
        Self::hmac()
    }
}

impl fmt::Debug for Decoy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoy")
            .field("policy", &self.policy())
            .finish_non_exhaustive()
    }
}

/// Equal work: for each policy and token shape, a known tenant and an unknown one run the
/// same verifications (counted by `verify::counted`), through the layer.
#[cfg(all(test, feature = "asymmetric"))]
mod tests {
    use std::convert::Infallible;

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use bytes::Bytes;
    use http::{Request, Response, StatusCode};
    use http_body_util::Full;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
    use tower::{Layer as _, ServiceExt as _};

    use super::*;
    use crate::consts::{DT_ASYMMETRIC_SIGNATURE, X_DT_SIGNATURE};
    use crate::error::{DtSignatureError, ErrorKind};
    use crate::gateway::StaticSecrets;
    use crate::layer::body::DtBody;
    use crate::layer::DtSignatureLayer;
    use crate::verify::counted::{self, Counts};

    const KID: &str = "dt-public-kid";
    const ISSUER: &str = "https://identity.example/data-connector";

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A key set with one fresh P-256 key under [`KID`] (DT's kid is public), and that key.
    fn keys() -> (DtKeys, EcdsaKeyPair) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        let jwks = format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":"{KID}","x":"{}","y":"{}"}}]}}"#,
            b64(&point[1..33]),
            b64(&point[33..])
        );
        (DtKeys::from_jwks(ISSUER, &jwks).unwrap(), pair)
    }

    /// A genuine token of DT's key for another organization than the tenant's: what any DT
    /// customer can send, since DT signs every customer's events with the same keys.
    fn genuine_token_of_another_org(pair: &EcdsaKeyPair) -> String {
        let header = format!(r#"{{"alg":"ES256","kid":"{KID}","typ":"JWT"}}"#);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = format!(
            r#"{{"checksum_sha256":"{}","exp":{},"iat":{now},"iss":"{ISSUER}","sub":"another-org"}}"#,
            "0".repeat(64),
            now + 300
        );
        let input = format!("{}.{}", b64(header), b64(claims));
        let signature = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(signature.as_ref()))
    }

    /// An ES256 token in DT's shape under `kid`, with a forged signature.
    fn es_token(kid: &str) -> String {
        let header = format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"JWT"}}"#);
        let claims = format!(
            r#"{{"checksum_sha256":"{}","exp":4000000000,"iat":1730382284,"iss":"{ISSUER}","sub":"org"}}"#,
            "0".repeat(64)
        );
        format!("{}.{}.{}", b64(header), b64(claims), b64([7u8; 64]))
    }

    /// An HS256 token in DT's shape with a forged signature.
    fn hmac_token() -> String {
        let claims = format!(
            r#"{{"checksum":"{}","exp":4000000000,"iat":1730382284}}"#,
            "0".repeat(40)
        );
        format!(
            "{}.{}.{}",
            b64(r#"{"alg":"HS256","typ":"JWT"}"#),
            b64(claims),
            b64([1u8; 32])
        )
    }

    /// The token shapes of a probe: (name, X-Dt-Signature, DT-Asymmetric-Signature).
    fn shapes(pair: &EcdsaKeyPair) -> Vec<(&'static str, Option<String>, Option<String>)> {
        vec![
            ("DT's kid, forged signature", None, Some(es_token(KID))),
            ("made-up kid", None, Some(es_token("made-up"))),
            ("HMAC only", Some(hmac_token()), None),
            ("both headers", Some(hmac_token()), Some(es_token(KID))),
            (
                "both, made-up kid",
                Some(hmac_token()),
                Some(es_token("made-up")),
            ),
            (
                "genuine token of another organization",
                None,
                Some(genuine_token_of_another_org(pair)),
            ),
            (
                "both, genuine token of another organization",
                Some(hmac_token()),
                Some(genuine_token_of_another_org(pair)),
            ),
        ]
    }

    fn verifier(policy: Policy, keys: &DtKeys) -> Verifier {
        let org = "org";
        match policy {
            Policy::Hmac => Verifier::new("tenant secret"),
            Policy::Asymmetric => Verifier::asymmetric(keys.clone(), org),
            Policy::Both => Verifier::both("tenant secret", keys.clone(), org),
            Policy::Either => Verifier::either("tenant secret", keys.clone(), org),
        }
    }

    /// The verifications one request to `uri` runs, and its refusal's kind.
    async fn probe(
        layer: &DtSignatureLayer<StaticSecrets>,
        uri: &str,
        hmac: &Option<String>,
        es: &Option<String>,
    ) -> (Counts, ErrorKind) {
        let inner = tower::service_fn(|_: Request<DtBody>| async {
            panic!("the inner service was called for a forged token");
            #[allow(unreachable_code)]
            Ok::<Response<Full<Bytes>>, Infallible>(Response::default())
        });
        let mut request = Request::post(uri)
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        for (name, token) in [(X_DT_SIGNATURE, hmac), (DT_ASYMMETRIC_SIGNATURE, es)] {
            if let Some(token) = token {
                request.headers_mut().insert(name, token.parse().unwrap());
            }
        }
        counted::take();
        let response = layer.layer(inner).oneshot(request).await.unwrap();
        let counts = counted::take();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
        let kind = response
            .extensions()
            .get::<DtSignatureError>()
            .unwrap()
            .kind();
        (counts, kind)
    }

    #[tokio::test]
    async fn known_and_unknown_tenants_run_the_same_verifications() {
        let (keys, pair) = keys();
        let mut ran = Counts::default();
        for policy in [
            Policy::Hmac,
            Policy::Asymmetric,
            Policy::Both,
            Policy::Either,
        ] {
            let secrets =
                StaticSecrets::by_path_segment(1).tenant("known", verifier(policy, &keys));
            let layer = DtSignatureLayer::gateway(secrets).decoy(Decoy::new(policy, keys.clone()));
            for (shape, hmac, es) in shapes(&pair) {
                let (known, kind) = probe(&layer, "/dt/known", &hmac, &es).await;
                let (unknown, unknown_kind) = probe(&layer, "/dt/nobody", &hmac, &es).await;
                assert_eq!(unknown_kind, ErrorKind::UnknownTenant, "{policy} {shape}");
                assert_ne!(kind, ErrorKind::UnknownTenant, "{policy} {shape}");
                assert_eq!(known, unknown, "{policy}, {shape}: known vs unknown tenant");
                // What a known tenant runs: an HMAC when the policy reads the HMAC token,
                // a P-256 verify when it reads the asymmetric one and knows its kid.
                let expected = Counts {
                    hmac: usize::from(policy.uses_hmac() && hmac.is_some()),
                    es256: usize::from(
                        policy.uses_asymmetric() && es.is_some() && !shape.contains("made-up"),
                    ),
                };
                assert_eq!(known, expected, "{policy}, {shape}");
                ran.hmac += known.hmac;
                ran.es256 += known.es256;
            }
        }
        assert!(ran.hmac > 0 && ran.es256 > 0, "{ran:?}");
    }

    /// The default decoy does an `hmac` tenant's work: an ES256 tenant's P-256 verify is
    /// the one thing it does not match (what `DtSignatureLayer::decoy` is for).
    #[tokio::test]
    async fn the_default_decoy_is_an_hmac_tenant() {
        let (keys, _) = keys();
        let secrets =
            StaticSecrets::by_path_segment(1).tenant("known", verifier(Policy::Either, &keys));
        let layer = DtSignatureLayer::gateway(secrets);
        assert_eq!(layer.decoy.policy(), Policy::Hmac);
        let (hmac, es) = (Some(hmac_token()), Some(es_token(KID)));
        let (known, _) = probe(&layer, "/dt/known", &hmac, &es).await;
        let (unknown, _) = probe(&layer, "/dt/nobody", &hmac, &es).await;
        assert_eq!(known, Counts { hmac: 1, es256: 1 });
        assert_eq!(unknown, Counts { hmac: 1, es256: 0 });
    }
}
