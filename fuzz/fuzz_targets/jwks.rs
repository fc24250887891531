//! The JWK Set parser on arbitrary bytes.
//!
//! Input: the key set's bytes, as a key server would send them.
//! Invariants: nothing panics; a set that loads holds only keys that the JSON itself
//! gives as EC P-256 signing keys (`kty` `EC`, `crv` `P-256`, `use` absent or `sig`,
//! `alg` absent or `ES256`) under a `kid` it names once, whose point is `04 || x || y`
//! of its base64url coordinates and lies on the curve.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower_dt_signature::__fuzz;

fuzz_target!(|data: &[u8]| {
    let Some(loaded) = __fuzz::jwks(data) else {
        return;
    };
    // A set that loads is JSON with a "keys" array: read it independently.
    let set: Value = serde_json::from_slice(data).expect("a loaded set is JSON");
    let jwks = set["keys"].as_array().expect("a loaded set has a keys array");
    for (kid, point) in &loaded {
        let mut named = jwks
            .iter()
            .filter(|jwk| jwk["kid"].as_str() == Some(kid.as_str()));
        let jwk = named.next().expect("a loaded kid is in the set");
        assert!(named.next().is_none(), "a set with kid {kid:?} twice loaded");
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert!(matches!(jwk.get("use"), None | Some(Value::Null)) || jwk["use"] == "sig");
        assert!(matches!(jwk.get("alg"), None | Some(Value::Null)) || jwk["alg"] == "ES256");
        let coordinate = |name: &str| {
            URL_SAFE_NO_PAD
                .decode(jwk[name].as_str().expect("a coordinate is a string"))
                .expect("a coordinate is base64url")
        };
        let mut expected = vec![4];
        expected.extend(coordinate("x"));
        expected.extend(coordinate("y"));
        assert_eq!(&point[..], &expected[..], "kid {kid:?}");
        assert!(on_curve(point), "kid {kid:?}: not a P-256 point");
    }
});

/// ring validates a peer's public key before an ECDH agreement.
fn on_curve(point: &[u8; 65]) -> bool {
    use ring::agreement::{agree_ephemeral, EphemeralPrivateKey, UnparsedPublicKey, ECDH_P256};
    let rng = ring::rand::SystemRandom::new();
    let ours = EphemeralPrivateKey::generate(&ECDH_P256, &rng).expect("a random key");
    agree_ephemeral(ours, &UnparsedPublicKey::new(&ECDH_P256, &point[..]), |_| ()).is_ok()
}
