//! The JWK Set parser on arbitrary bytes.
//!
//! Input: the key set's bytes, as a key server would send them.
//! Invariants: nothing panics; a set that loads is a UTF-8 JSON object, and holds only
//! keys that the JSON itself gives as EC P-256 signing keys (`kty` `EC`, `crv` `P-256`,
//! `use` absent or `sig`, `alg` absent or `ES256`), whose point is `04 || x || y` of
//! their base64url coordinates and lies on the curve, under a non-empty `kid` (an empty
//! `kid` names no key, #24) whose every entry in the set (usable or not) holds the same
//! key material (RFC 7517, 5: the same key twice is one key; one `kid` on two keys refuses
//! the set).
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::Value;
use tower_dt_signature::__fuzz;

/// The set, its entries as JSON values: a set loads only when the crate could read every
/// entry as one (a number beyond `f64` inside an entry refuses the set), and an entry that
/// is not an object, or whose members have the wrong type, is skipped by the crate.
#[derive(Deserialize)]
struct Set {
    keys: Vec<Value>,
}

/// The members that make a key's material (RFC 7518, 6).
const MATERIAL: [&str; 7] = ["kty", "crv", "x", "y", "n", "e", "k"];

fuzz_target!(|data: &[u8]| {
    let Some(loaded) = __fuzz::jwks(data) else {
        return;
    };
    assert!(
        data.trim_ascii_start().starts_with(b"{"),
        "a set that is not an object"
    );
    assert!(std::str::from_utf8(data).is_ok(), "a set that is not UTF-8");
    let set: Set = serde_json::from_slice(data).expect("a loaded set has a keys array");
    for (kid, point) in &loaded {
        assert!(!kid.is_empty(), "a key loaded under an empty kid");
        let named: Vec<&serde_json::Map<String, Value>> = set
            .keys
            .iter()
            .filter_map(Value::as_object)
            .filter(|jwk| jwk.get("kid").and_then(Value::as_str) == Some(kid.as_str()))
            .collect();
        assert!(!named.is_empty(), "a loaded kid {kid:?} is in the set");
        let material = |jwk: &serde_json::Map<String, Value>| MATERIAL.map(|m| jwk.get(m).cloned());
        assert!(
            named.iter().all(|jwk| material(jwk) == material(named[0])),
            "kid {kid:?} on two different keys loaded"
        );
        let text = |jwk: &serde_json::Map<String, Value>, member: &str| {
            jwk.get(member).and_then(Value::as_str).map(str::to_owned)
        };
        let absent_or = |jwk: &serde_json::Map<String, Value>, member: &str, want: &str| {
            matches!(jwk.get(member), None | Some(Value::Null))
                || text(jwk, member).as_deref() == Some(want)
        };
        let usable = named.iter().any(|jwk| {
            let coordinate = |member: &str| URL_SAFE_NO_PAD.decode(text(jwk, member)?).ok();
            let mut expected = vec![4];
            let (Some(x), Some(y)) = (coordinate("x"), coordinate("y")) else {
                return false;
            };
            expected.extend(x);
            expected.extend(y);
            text(jwk, "kty").as_deref() == Some("EC")
                && text(jwk, "crv").as_deref() == Some("P-256")
                && absent_or(jwk, "use", "sig")
                && absent_or(jwk, "alg", "ES256")
                && point[..] == expected[..]
        });
        assert!(usable, "kid {kid:?}: no entry is this usable EC P-256 key");
        assert!(on_curve(point), "kid {kid:?}: not a P-256 point");
    }
});

/// ring validates a peer's public key before an ECDH agreement.
fn on_curve(point: &[u8; 65]) -> bool {
    use ring::agreement::{agree_ephemeral, EphemeralPrivateKey, UnparsedPublicKey, ECDH_P256};
    let rng = ring::rand::SystemRandom::new();
    let ours = EphemeralPrivateKey::generate(&ECDH_P256, &rng).expect("a random key");
    agree_ephemeral(
        ours,
        &UnparsedPublicKey::new(&ECDH_P256, &point[..]),
        |_| (),
    )
    .is_ok()
}
