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
use serde::Deserialize;
use serde_json::Value;
use tower_dt_signature::__fuzz;

/// The members a JWK is judged by, read by this target. (Not `serde_json::Value` for the
/// whole set: it refuses a number beyond `f64` in a member nobody reads, which is valid
/// JSON the crate rightly skips.)
#[derive(Deserialize)]
struct Set {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: Option<Value>,
    crv: Option<Value>,
    kid: Option<Value>,
    #[serde(rename = "use")]
    use_: Option<Value>,
    alg: Option<Value>,
    x: Option<Value>,
    y: Option<Value>,
}

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
    let jwks = set.keys;
    for (kid, point) in &loaded {
        let mut named = jwks
            .iter()
            .filter(|jwk| jwk.kid.as_ref().and_then(Value::as_str) == Some(kid.as_str()));
        let jwk = named.next().expect("a loaded kid is in the set");
        assert!(
            named.next().is_none(),
            "a set with kid {kid:?} twice loaded"
        );
        let text =
            |member: &Option<Value>| member.as_ref().and_then(Value::as_str).map(str::to_owned);
        assert_eq!(text(&jwk.kty).as_deref(), Some("EC"));
        assert_eq!(text(&jwk.crv).as_deref(), Some("P-256"));
        assert!(
            matches!(&jwk.use_, None | Some(Value::Null))
                || text(&jwk.use_).as_deref() == Some("sig")
        );
        assert!(
            matches!(&jwk.alg, None | Some(Value::Null))
                || text(&jwk.alg).as_deref() == Some("ES256")
        );
        let coordinate = |member: &Option<Value>| {
            URL_SAFE_NO_PAD
                .decode(text(member).expect("a coordinate is a string"))
                .expect("a coordinate is base64url")
        };
        let mut expected = vec![4];
        expected.extend(coordinate(&jwk.x));
        expected.extend(coordinate(&jwk.y));
        assert_eq!(&point[..], &expected[..], "kid {kid:?}");
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
