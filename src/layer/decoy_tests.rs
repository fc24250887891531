//! Equal work, through the layer (moved here from `gateway/decoy.rs`, whose tests reached
//! up to the layer, #24): for each policy and token shape, a known tenant and an unknown
//! one run the same verifications (counted by `verify::counted`, which only the crate's
//! own tests reach), with the decoy set explicitly, the decoy a `StaticSecrets` follows
//! its tenants with, and the decoy a resolver of its own names; the rule for mixed
//! tenants; and what a gateway whose resolver names no decoy does.

use std::convert::Infallible;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use tower::{Layer as _, ServiceExt as _};

use super::body::DtBody;
use super::DtSignatureLayer;
use crate::consts::{DT_ASYMMETRIC_SIGNATURE, X_DT_SIGNATURE};
use crate::error::{DtSignatureError, ErrorKind};
use crate::gateway::{Decoy, ResolveError, ResolveSecrets, StaticSecrets, Tenant};
use crate::keys::DtKeys;
use crate::verify::counted::{self, Counts};
use crate::verify::{Policy, Verifier};

const KID: &str = "dt-public-kid";
const ISSUER: &str = "https://identity.example/data-connector";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A key set with one fresh P-256 key under [`KID`] (DT's kid is public), and that key.
fn keys() -> (DtKeys, EcdsaKeyPair) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
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
async fn probe<Res>(
    layer: &DtSignatureLayer<Res>,
    uri: &str,
    hmac: &Option<String>,
    es: &Option<String>,
) -> (Counts, ErrorKind)
where
    Res: ResolveSecrets + Clone,
{
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
        let secrets = StaticSecrets::by_path_segment(1).tenant("known", verifier(policy, &keys));
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

/// The decoy the layer runs for an unknown tenant.
fn decoy_policy<Res: ResolveSecrets>(layer: &DtSignatureLayer<Res>) -> Policy {
    layer.decoys.pick(layer.resolver.decoy()).decoy().policy()
}

/// The four policies.
const POLICIES: [Policy; 4] = [
    Policy::Hmac,
    Policy::Asymmetric,
    Policy::Both,
    Policy::Either,
];

/// For each shape, the counts at `/dt/known` equal those at `/dt/nobody`.
async fn same_work<Res>(layer: &DtSignatureLayer<Res>, pair: &EcdsaKeyPair, case: &str)
where
    Res: ResolveSecrets + Clone,
{
    for (shape, hmac, es) in shapes(pair) {
        let (known, kind) = probe(layer, "/dt/known", &hmac, &es).await;
        let (unknown, unknown_kind) = probe(layer, "/dt/nobody", &hmac, &es).await;
        assert_eq!(unknown_kind, ErrorKind::UnknownTenant, "{case} {shape}");
        assert_ne!(kind, ErrorKind::UnknownTenant, "{case} {shape}");
        assert_eq!(known, unknown, "{case}, {shape}: known vs unknown tenant");
    }
}

/// With no `.decoy(...)` line, a `StaticSecrets` of tenants of one policy and key set
/// names the decoy of that policy and key set: the same work as with the explicit line.
#[tokio::test]
async fn a_static_gateway_follows_its_tenants_with_no_decoy_line() {
    let (keys, pair) = keys();
    for policy in POLICIES {
        let secrets = StaticSecrets::by_path_segment(1)
            .tenant("known", verifier(policy, &keys))
            .tenant("other", verifier(policy, &keys));
        let layer = DtSignatureLayer::gateway(secrets);
        assert_eq!(decoy_policy(&layer), policy);
        same_work(&layer, &pair, &format!("{policy}, no decoy line")).await;
    }
}

/// A resolver of its own that names its decoy gets the same work; one that names none
/// gets the `hmac` decoy, whose work an ES256 tenant's P-256 verify is not.
#[tokio::test]
async fn a_custom_resolver_names_its_decoy_or_gets_the_hmac_one() {
    #[derive(Clone)]
    struct Custom {
        known: Verifier,
        decoy: Option<Decoy>,
    }

    impl ResolveSecrets for Custom {
        type Future = std::future::Ready<Result<Option<Tenant>, ResolveError>>;

        fn resolve(&self, parts: &http::request::Parts) -> Self::Future {
            let known = parts.uri.path() == "/dt/known";
            std::future::ready(Ok(known.then(|| Tenant::new("known", self.known.clone()))))
        }

        fn decoy(&self) -> Option<Decoy> {
            self.decoy.clone()
        }
    }

    let (keys, pair) = keys();
    for policy in POLICIES {
        let known = verifier(policy, &keys);
        let decoy = Some(Decoy::new(policy, keys.clone()));
        let layer = DtSignatureLayer::gateway(Custom { known, decoy });
        assert_eq!(decoy_policy(&layer), policy);
        same_work(&layer, &pair, &format!("{policy}, custom resolver")).await;
    }
    // No decoy named: the `hmac` one (what the default was for every gateway before #24).
    let known = verifier(Policy::Either, &keys);
    let layer = DtSignatureLayer::gateway(Custom { known, decoy: None });
    assert_eq!(decoy_policy(&layer), Policy::Hmac);
    let (hmac, es) = (Some(hmac_token()), Some(es_token(KID)));
    let (known, _) = probe(&layer, "/dt/known", &hmac, &es).await;
    let (unknown, _) = probe(&layer, "/dt/nobody", &hmac, &es).await;
    assert_eq!(known, Counts { hmac: 1, es256: 1 });
    assert_eq!(unknown, Counts { hmac: 1, es256: 0 });
}

/// An explicit `.decoy(...)` wins over the one the tenants name: an `hmac` decoy before
/// an `either` tenant does the HMAC only (the old default's assertions, #17).
#[tokio::test]
async fn an_explicit_decoy_wins() {
    let (keys, _) = keys();
    let secrets =
        StaticSecrets::by_path_segment(1).tenant("known", verifier(Policy::Either, &keys));
    assert_eq!(
        decoy_policy(&DtSignatureLayer::gateway(secrets.clone())),
        Policy::Either
    );
    let layer = DtSignatureLayer::gateway(secrets).decoy(Decoy::hmac());
    assert_eq!(decoy_policy(&layer), Policy::Hmac);
    let (hmac, es) = (Some(hmac_token()), Some(es_token(KID)));
    let (known, _) = probe(&layer, "/dt/known", &hmac, &es).await;
    let (unknown, _) = probe(&layer, "/dt/nobody", &hmac, &es).await;
    assert_eq!(known, Counts { hmac: 1, es256: 1 });
    assert_eq!(unknown, Counts { hmac: 1, es256: 0 });
}

/// The rule for mixed tenants (SECURITY.md, "What still tells tenants apart"): the policy
/// and key set most ES256 tenants share, a tie to the tenant whose id sorts first; `hmac`
/// tenants count for nothing. Unknown tenants then work as those tenants do; a tenant of
/// another policy or key set does not match them for every shape.
#[tokio::test]
async fn mixed_tenants_get_the_decoy_most_es256_tenants_share() {
    let (keys, pair) = keys();
    let (other_keys, _) = self::keys();
    // Two `either` tenants under `keys`, beside one `asymmetric`, one `both` under
    // another key set, and three `hmac` ones.
    let secrets = StaticSecrets::by_path_segment(1)
        .tenant("a-asymmetric", verifier(Policy::Asymmetric, &keys))
        .tenant("b-both", verifier(Policy::Both, &other_keys))
        .tenant("known", verifier(Policy::Either, &keys))
        .tenant("x-either", verifier(Policy::Either, &keys))
        .tenant("h1", verifier(Policy::Hmac, &keys))
        .tenant("h2", verifier(Policy::Hmac, &keys))
        .tenant("h3", verifier(Policy::Hmac, &keys));
    let layer = DtSignatureLayer::gateway(secrets);
    assert_eq!(decoy_policy(&layer), Policy::Either);
    same_work(&layer, &pair, "the majority's either tenant").await;

    // A tie: the first tenant's by id, whatever the order they were added in.
    for order in [["b", "a"], ["a", "b"]] {
        let mut secrets = StaticSecrets::by_path_segment(1);
        for id in order {
            let policy = if id == "a" {
                Policy::Both
            } else {
                Policy::Asymmetric
            };
            secrets = secrets.tenant(id, verifier(policy, &keys));
        }
        assert_eq!(
            decoy_policy(&DtSignatureLayer::gateway(secrets)),
            Policy::Both
        );
    }
    // The key set counts: `either` under two key sets is two groups of one, so the tie
    // goes to "a".
    let secrets = StaticSecrets::by_path_segment(1)
        .tenant("a", verifier(Policy::Asymmetric, &keys))
        .tenant("b", verifier(Policy::Either, &keys))
        .tenant("c", verifier(Policy::Either, &other_keys));
    let layer = DtSignatureLayer::gateway(secrets);
    assert_eq!(decoy_policy(&layer), Policy::Asymmetric);
    // Only `hmac` tenants: no decoy named, the `hmac` one runs.
    let secrets = StaticSecrets::by_path_segment(1).tenant("known", verifier(Policy::Hmac, &keys));
    assert!(secrets.decoy().is_none());
    let layer = DtSignatureLayer::gateway(secrets);
    assert_eq!(decoy_policy(&layer), Policy::Hmac);
    same_work(&layer, &pair, "hmac tenants only").await;
}
