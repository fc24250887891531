//! DT's public signing keys for `DT-Asymmetric-Signature` (feature `asymmetric`).
//!
//! [`DtKeys`] is an explicit, cloneable handle on the key set of one issuer: build it once
//! and clone it into every layer and tenant that uses that issuer. It is not
//! process-global.
//!
//! - [`DtKeys::from_jwks`] / [`DtKeys::from_jwks_file`]: pinned keys, a JWK Set you ship
//!   with the issuer it belongs to. No HTTP client, no runtime.
//! - `DtKeys::discover` / `DtKeys::discovery` (feature `jwks`): DT's OpenID Connect
//!   discovery document, with a background refresh task; `FetchJwks` plugs in your own
//!   HTTP client.
//! - `DtKeys::probe` (feature `jwks`) / [`DtKeys::probe_jwks`]: one refresh, reported step
//!   by step ([`KeyProbe`]), for a person checking a key source (`dt-signature keys`).
//!
//! Key set rules (RFC 7517, 5): entries that cannot be used are skipped and logged (not an
//! object, no string `kid`, an empty `kid`, a member of the wrong type, `use` not `sig`,
//! `alg` not `ES256`, `kty`/`crv` not `EC`/`P-256`); the same key twice under one `kid` is
//! one key; one `kid` on two different keys (usable or not, in any order) refuses the set
//! whole (an empty `kid` names no key, so two entries with one count for nothing). A
//! token whose `kid` is empty is refused as [`MissingKeyId`](crate::ErrorKind::MissingKeyId). A discovered
//! set left with no usable key is a failed refresh ([`FailureClass::NoUsableKey`]); a
//! pinned one is taken as it is.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

#[cfg(feature = "jwks")]
mod builder;
#[cfg(feature = "jwks")]
pub(crate) mod discovery;
#[cfg(all(test, feature = "jwks"))]
mod fake;
#[cfg(feature = "jwks")]
pub(crate) mod fetch;
mod org;
mod probe;
#[cfg(feature = "jwks")]
mod refresh;
mod status;
#[cfg(feature = "jwks")]
mod task;

#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
pub use builder::DiscoveryBuilder;
#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
pub use fetch::{cache_max_age, FetchError, FetchFuture, FetchJwks, Fetched};
pub(crate) use org::into_bare;
pub use org::OrgId;
pub use probe::{KeyOutcome, KeyProbe, ProbeFailure, ProbedFetch, ProbedKey};
pub use status::{FailureClass, KeyStatus, LastFailure, LastRefresh};

/// A handle on DT's signing keys for one issuer. Cloning is cheap (one `Arc`); every
/// clone sees the same keys.
///
/// ```
/// use tower_dt_signature::keys::DtKeys;
///
/// let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig","alg":"ES256",
///   "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}"#;
/// let keys = DtKeys::from_jwks("https://identity.example/data-connector", jwks)?;
/// assert!(keys.ready());
/// assert_eq!(keys.kids(), ["k1"]);
/// # Ok::<(), tower_dt_signature::keys::KeysError>(())
/// ```
#[derive(Clone)]
pub struct DtKeys {
    inner: Arc<Inner>,
    /// A gateway decoy's view: lookups start no refresh task and ask for no refresh.
    passive: bool,
}

struct Inner {
    issuer: Arc<str>,
    snapshot: RwLock<Arc<Snapshot>>,
    #[cfg(feature = "jwks")]
    remote: Option<task::Remote>,
}

/// The key set as last obtained, and how the last refresh went.
#[derive(Default)]
pub(crate) struct Snapshot {
    keys: HashMap<Box<str>, EsKey>,
    /// A key set has been obtained at least once.
    loaded: bool,
    /// The last refresh succeeded (always true for pinned keys).
    last_refresh_ok: bool,
}

/// One EC P-256 public key, as the uncompressed point `04 || x || y`.
#[derive(Clone)]
pub(crate) struct EsKey {
    pub(crate) point: Arc<[u8; 65]>,
}

impl EsKey {
    /// Whether `signature` (the 64-byte `r || s` of RFC 7518, 3.4) is a valid ES256
    /// signature of `message` under this key.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            &self.point[..],
        )
        .verify(message, signature)
        .is_ok()
    }
}

/// What the key set says about a `kid`.
pub(crate) enum Lookup {
    /// The key.
    Found(EsKey),
    /// No such key, and the key set is current: the token is invalid.
    Unknown,
    /// No such key, and there is no key set or the last refresh failed: the keys may have
    /// rotated, so the token cannot be checked.
    Unavailable,
}

/// A wait for a refresh that a request triggered or joined.
pub(crate) type KeyWait = Pin<Box<dyn Future<Output = ()> + Send>>;

impl DtKeys {
    /// Pinned keys: the JWK Set `jwks` (JSON text), for tokens whose `iss` is `issuer`,
    /// byte for byte. Nothing is ever fetched.
    pub fn from_jwks(issuer: impl Into<String>, jwks: &str) -> Result<Self, KeysError> {
        let issuer = issuer.into();
        if issuer.is_empty() {
            return Err(KeysError::new("the issuer is empty"));
        }
        let keys = parse_jwks(jwks.as_bytes())?;
        Ok(Self::with_snapshot(
            issuer,
            Snapshot {
                keys,
                loaded: true,
                last_refresh_ok: true,
            },
        ))
    }

    /// Pinned keys read from the JWK Set file at `path`. See [`from_jwks`](Self::from_jwks).
    pub fn from_jwks_file(
        issuer: impl Into<String>,
        path: impl AsRef<Path>,
    ) -> Result<Self, KeysError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|error| KeysError::new(format!("cannot read {}: {error}", path.display())))?;
        Self::from_jwks(issuer, &text)
    }

    fn with_snapshot(issuer: String, snapshot: Snapshot) -> Self {
        Self::of(Arc::new(Inner {
            issuer: issuer.into(),
            snapshot: RwLock::new(Arc::new(snapshot)),
            #[cfg(feature = "jwks")]
            remote: None,
        }))
    }

    fn of(inner: Arc<Inner>) -> Self {
        Self {
            inner,
            passive: false,
        }
    }

    /// The same keys, looked up without starting the refresh task or asking for a
    /// refresh (a gateway's decoy).
    pub(crate) fn passive(mut self) -> Self {
        self.passive = true;
        self
    }

    /// Whether `other` is a handle on the same key set (a clone of this one's).
    pub(crate) fn same_set(&self, other: &DtKeys) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The issuer whose tokens these keys check: a token's `iss` must equal it, byte for
    /// byte. For discovered keys, the one the discovery URL names until a discovery
    /// document is read, then the document's `issuer` (which may have one trailing `/`
    /// more than the URL's).
    pub fn issuer(&self) -> &str {
        self.current_issuer()
    }

    pub(crate) fn shared_issuer(&self) -> Arc<str> {
        Arc::clone(self.current_issuer())
    }

    fn current_issuer(&self) -> &Arc<str> {
        #[cfg(feature = "jwks")]
        if let Some(issuer) = self.inner.remote.as_ref().and_then(|r| r.document_issuer()) {
            return issuer;
        }
        &self.inner.issuer
    }

    /// Whether a key set is loaded: for a readiness probe. Pinned keys are always ready; a
    /// discovered set is ready once its first fetch succeeded. Also starts the refresh
    /// task if it is not running yet (inside a tokio runtime), so calling it at start-up
    /// warms the cache without blocking.
    pub fn ready(&self) -> bool {
        #[cfg(feature = "jwks")]
        if let Some(remote) = &self.inner.remote {
            remote.start(&self.inner);
        }
        self.snapshot().loaded
    }

    /// The `kid`s of the keys loaded now, sorted.
    pub fn kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.snapshot().keys.keys().map(|k| k.to_string()).collect();
        kids.sort_unstable();
        kids
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(
            &self
                .inner
                .snapshot
                .read()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// The key for `kid`, if the current set has it.
    pub(crate) fn lookup(&self, kid: &str) -> Lookup {
        #[cfg(feature = "jwks")]
        if let Some(remote) = self.inner.remote.as_ref().filter(|_| !self.passive) {
            remote.start(&self.inner);
        }
        let snapshot = self.snapshot();
        match snapshot.keys.get(kid) {
            Some(key) => Lookup::Found(key.clone()),
            None if snapshot.loaded && snapshot.last_refresh_ok => Lookup::Unknown,
            None => Lookup::Unavailable,
        }
    }

    /// A refresh to wait for before deciding on a token whose `kid` is not in the set:
    /// `None` when no refresh will come (pinned keys, or the 30 s limit for unknown kids).
    pub(crate) fn refresh_for_unknown_kid(&self) -> Option<KeyWait> {
        #[cfg(feature = "jwks")]
        if let Some(remote) = self.inner.remote.as_ref().filter(|_| !self.passive) {
            return remote.refresh_for_unknown_kid(&self.inner);
        }
        None
    }
}

impl DtKeys {
    /// How the keys stand: the `kid`s loaded, how the last refresh went and when the next
    /// is due, the last failure's class and reason, the failures in a row. For a health
    /// page or a log line; unlike [`ready`](Self::ready), it starts nothing.
    ///
    /// ```
    /// # use tower_dt_signature::keys::DtKeys;
    /// # let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig","alg":"ES256",
    /// #   "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}"#;
    /// let keys = DtKeys::from_jwks("https://identity.example/data-connector", jwks)?;
    /// let status = keys.status();
    /// assert_eq!(status.kids, ["k1"]);
    /// assert!(status.loaded && status.last_failure.is_none());
    /// # Ok::<(), tower_dt_signature::keys::KeysError>(())
    /// ```
    pub fn status(&self) -> KeyStatus {
        let snapshot = self.snapshot();
        #[cfg_attr(not(feature = "jwks"), allow(unused_mut))]
        let mut status = KeyStatus {
            issuer: self.issuer().to_owned(),
            loaded: snapshot.loaded,
            kids: self.kids(),
            last_refresh: None,
            last_failure: None,
            consecutive_failures: 0,
            next_refresh: None,
        };
        #[cfg(feature = "jwks")]
        if let Some(remote) = &self.inner.remote {
            remote.fill_status(&mut status);
        }
        status
    }
}

impl fmt::Debug for DtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.status();
        f.debug_struct("DtKeys")
            .field("issuer", &status.issuer)
            .field("loaded", &status.loaded)
            .field("kids", &status.kids)
            .field("last_refresh", &status.last_refresh)
            .field("last_failure", &status.last_failure)
            .field("consecutive_failures", &status.consecutive_failures)
            .field("next_refresh", &status.next_refresh)
            .finish_non_exhaustive()
    }
}

/// Why a key set (or the configuration that names it) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysError {
    message: String,
    class: FailureClass,
}

impl KeysError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self::of(FailureClass::Other, message)
    }

    /// An error of this class, when a refresh meets it.
    pub(crate) fn of(class: FailureClass, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            class,
        }
    }

    /// The class of a refresh that fails with this error.
    #[cfg_attr(not(feature = "jwks"), allow(dead_code))]
    pub(crate) fn class(&self) -> FailureClass {
        self.class
    }
}

impl fmt::Display for KeysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for KeysError {}

/// The mutex's value, also after another holder panicked.
#[cfg(feature = "jwks")]
pub(super) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// `T` read from untrusted JSON text that must be UTF-8 throughout (serde would skip an
/// ignored member's bytes unchecked) and a JSON object at the top.
pub(crate) fn from_json_object<T: DeserializeOwned>(json: &[u8]) -> Option<T> {
    let text = std::str::from_utf8(json).ok()?;
    serde_json::from_str::<Object<T>>(text)
        .ok()
        .map(|Object(value)| value)
}

/// A struct read from a JSON object only: serde would also read it from a JSON array,
/// its fields by position.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    crv: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// The members that make a JWK's key material (RFC 7518, 6): two entries under one `kid`
/// with the same values here are the same key.
const MATERIAL: [&str; 7] = ["kty", "crv", "x", "y", "n", "e", "k"];

/// Parse a JWK Set: the usable EC P-256 signing keys by `kid`.
///
/// Entries that cannot be used are skipped and logged (RFC 7517, 5): not an object, no
/// string `kid`, an empty `kid`, a member of the wrong type, or not an ES256 signing key. Every entry that
/// names a `kid` counts for duplicates, usable or not: the same material twice under one
/// `kid` is one key; different material refuses the set whole.
pub(crate) fn parse_jwks(json: &[u8]) -> Result<HashMap<Box<str>, EsKey>, KeysError> {
    parse_jwks_entries(json).map(|(keys, _)| keys)
}

/// The usable keys by `kid`, and what became of each entry.
pub(crate) type ParsedJwks = (HashMap<Box<str>, EsKey>, Vec<ProbedKey>);

/// [`parse_jwks`], and what became of each entry (for [`KeyProbe`]).
pub(crate) fn parse_jwks_entries(json: &[u8]) -> Result<ParsedJwks, KeysError> {
    let set: RawJwks = from_json_object(json).ok_or_else(|| {
        KeysError::of(
            FailureClass::NotJson,
            "the key set is not a JWK Set (JSON with \"keys\")",
        )
    })?;
    let mut keys = HashMap::with_capacity(set.keys.len());
    let mut entries = Vec::with_capacity(set.keys.len());
    let mut seen: HashMap<String, Vec<Option<&serde_json::Value>>> = HashMap::new();
    for (index, entry) in set.keys.iter().enumerate() {
        let mut probed = ProbedKey::of(index, entry);
        let Some(object) = entry.as_object() else {
            tracing::warn!(index, "JWK skipped: not a JSON object");
            entries.push(probed.skipped("not a JSON object"));
            continue;
        };
        let kid = match object.get("kid") {
            // An empty `kid` names no key (PyJWT's `PyJWKClient` skips it too): a token
            // whose `kid` is empty is refused before any lookup (`MissingKeyId`).
            Some(serde_json::Value::String(kid)) if kid.is_empty() => {
                tracing::warn!(index, "JWK skipped: its kid is empty");
                entries.push(probed.skipped("its kid is empty"));
                continue;
            }
            Some(serde_json::Value::String(kid)) => kid,
            Some(_) => {
                tracing::warn!(index, "JWK skipped: its kid is not a string");
                entries.push(probed.skipped("its kid is not a string"));
                continue;
            }
            None => {
                tracing::warn!(index, "JWK without kid skipped");
                entries.push(probed.skipped("no kid"));
                continue;
            }
        };
        let material: Vec<_> = MATERIAL.iter().map(|name| object.get(*name)).collect();
        match seen.get(kid.as_str()) {
            Some(first) if *first == material => {
                tracing::debug!(kid = %kid, index, "JWK listed twice: one key");
                probed.outcome = KeyOutcome::Duplicate;
                entries.push(probed);
                continue;
            }
            Some(_) => {
                return Err(KeysError::new(format!(
                    "the key set has kid {kid:?} on two different keys: refused whole"
                )));
            }
            None => {
                seen.insert(kid.clone(), material);
            }
        }
        let parsed = RawJwk::deserialize(entry)
            .map_err(|_| "a member has the wrong type")
            .and_then(|jwk| usable_key(&jwk.kty, &jwk.crv, &jwk.use_, &jwk.alg, &jwk.x, &jwk.y));
        match parsed {
            Ok(key) => {
                keys.insert(kid.clone().into_boxed_str(), key);
                probed.outcome = KeyOutcome::Loaded;
                entries.push(probed);
            }
            Err(reason) => {
                tracing::warn!(kid = %kid, index, reason, "JWK skipped");
                entries.push(probed.skipped(reason));
            }
        }
    }
    Ok((keys, entries))
}

fn usable_key(
    kty: &Option<String>,
    crv: &Option<String>,
    use_: &Option<String>,
    alg: &Option<String>,
    x: &Option<String>,
    y: &Option<String>,
) -> Result<EsKey, &'static str> {
    if kty.as_deref() != Some("EC") || crv.as_deref() != Some("P-256") {
        return Err("not an EC P-256 key");
    }
    if use_.as_deref().is_some_and(|use_| use_ != "sig") {
        return Err("use is not sig");
    }
    if alg.as_deref().is_some_and(|alg| alg != "ES256") {
        return Err("alg is not ES256");
    }
    let mut point = [0u8; 65];
    point[0] = 4;
    for (coordinate, range) in [(x, 1..33), (y, 33..65)] {
        let text = coordinate.as_deref().ok_or("a coordinate is missing")?;
        match URL_SAFE_NO_PAD.decode_slice(text, &mut point[range]) {
            Ok(32) => {}
            _ => return Err("a coordinate is not 32 bytes of base64url"),
        }
    }
    if !on_curve(&point) {
        return Err("the point is not on the P-256 curve");
    }
    Ok(EsKey {
        point: Arc::new(point),
    })
}

/// Whether `point` is a valid P-256 public key: ring validates a peer's key before an
/// ECDH agreement (it has no other public validation), so one ephemeral agreement tells.
/// Paid once per key when a set is parsed, never per request.
fn on_curve(point: &[u8; 65]) -> bool {
    use ring::agreement::{agree_ephemeral, EphemeralPrivateKey, UnparsedPublicKey, ECDH_P256};
    let rng = ring::rand::SystemRandom::new();
    let Ok(ours) = EphemeralPrivateKey::generate(&ECDH_P256, &rng) else {
        return false;
    };
    agree_ephemeral(
        ours,
        &UnparsedPublicKey::new(&ECDH_P256, &point[..]),
        |_| (),
    )
    .is_ok()
}

#[cfg(all(test, feature = "jwks"))]
mod tests {
    use super::fake::jwk;
    use super::*;

    fn kids(entries: &[String]) -> Result<Vec<String>, String> {
        let set = format!(r#"{{"keys":[{}]}}"#, entries.join(","));
        let keys = parse_jwks(set.as_bytes()).map_err(|e| e.to_string())?;
        let mut kids: Vec<String> = keys.keys().map(|k| k.to_string()).collect();
        kids.sort();
        Ok(kids)
    }

    #[test]
    fn unusable_entries_are_skipped() {
        let good = jwk("k1");
        for bad in [
            r#""a string""#.to_owned(),
            "42".to_owned(),
            "null".to_owned(),
            r#"{"kty":"EC","kid":7}"#.to_owned(),
            jwk("k2").replace(r#""use":"sig""#, r#""use":["sig"]"#),
            jwk("k3").replace(r#""alg":"ES256""#, r#""alg":1"#),
            r#"{"kty":"RSA","kid":"r1","n":"AQAB","e":"AQAB"}"#.to_owned(),
            jwk("k4").replace(r#""crv":"P-256""#, r#""crv":"P-384""#),
            // An empty kid names no key (#24).
            jwk(""),
        ] {
            assert_eq!(
                kids(&[bad.clone(), good.clone()]),
                Ok(vec!["k1".into()]),
                "{bad}"
            );
            assert_eq!(
                kids(&[good.clone(), bad.clone()]),
                Ok(vec!["k1".into()]),
                "{bad}"
            );
        }
        // Two different keys under an empty kid: both skipped, the set is not refused.
        assert_eq!(
            kids(&[jwk(""), jwk(""), good.clone()]),
            Ok(vec!["k1".into()])
        );
        // Nothing usable: an empty set (a refresh then fails; pinned keys take it).
        assert_eq!(kids(&[r#""x""#.to_owned()]), Ok(vec![]));
        let pinned = DtKeys::from_jwks("https://id.example", r#"{"keys":["x"]}"#).unwrap();
        assert!(pinned.ready() && pinned.kids().is_empty());
        assert!(matches!(pinned.lookup("k1"), Lookup::Unknown));
        let error = parse_jwks(b"[]").err().unwrap();
        assert_eq!(error.class(), FailureClass::NotJson);
    }

    #[test]
    fn duplicate_kids_in_any_order() {
        let ec = jwk("k1");
        let rsa = r#"{"kty":"RSA","kid":"k1","n":"AQAB","e":"AQAB"}"#.to_owned();
        let other = jwk("k1");
        // The unusable first keys of the fuzz target's finding (before #16's rewrite of
        // a_duplicate_kid_refuses_the_set_even_after_an_unusable_key): P-384, off the curve.
        let p384 = ec.replace(r#""crv":"P-256""#, r#""crv":"P-384""#);
        let x = ec.find(r#""x":""#).unwrap() + 5;
        let off_curve = format!("{}AAAA{}", &ec[..x], &ec[x + 4..]);
        assert_eq!(
            kids(std::slice::from_ref(&p384)),
            Ok(vec![]),
            "skipped alone"
        );
        assert_eq!(
            kids(std::slice::from_ref(&off_curve)),
            Ok(vec![]),
            "skipped alone"
        );
        for pair in [
            [&ec, &rsa],
            [&rsa, &ec],
            [&ec, &other],
            [&other, &ec],
            [&p384, &ec],
            [&ec, &p384],
            [&off_curve, &ec],
            [&ec, &off_curve],
        ] {
            let error = kids(&[pair[0].clone(), pair[1].clone()]).unwrap_err();
            assert!(error.contains("two different keys"), "{error}");
        }
        // The same key twice under one kid (even with other members): one key.
        let same = ec.replace(r#""use":"sig","#, "");
        assert_eq!(kids(&[ec.clone(), same.clone()]), Ok(vec!["k1".into()]));
        assert_eq!(kids(&[same, ec.clone(), ec]), Ok(vec!["k1".into()]));
    }

    /// A key set is a JSON object, in UTF-8 throughout (found by the `jwks` fuzz target):
    /// serde reads a struct from a JSON array by position, and skips an ignored member's
    /// bytes unchecked. An entry that is an array is one unusable entry, skipped.
    #[test]
    fn a_key_set_is_a_utf8_json_object() {
        let usable = jwk("k1");
        let ignored = |bytes: &[u8]| {
            let mut set = br#"{"note":""#.to_vec();
            set.extend(bytes);
            set.extend(format!(r#"","keys":[{usable}]}}"#).bytes());
            set
        };
        assert_eq!(parse_jwks(&ignored(b"ok")).map(|k| k.len()), Ok(1));
        for set in [format!("[[{usable}]]").into_bytes(), ignored(&[0xff])] {
            let error = parse_jwks(&set).err().unwrap();
            assert_eq!(error.class(), FailureClass::NotJson);
        }
        let positional = r#"["EC","P-256","k2","sig","ES256","MKBC","4Etl"]"#.to_owned();
        assert_eq!(kids(&[positional, usable.clone()]), Ok(vec!["k1".into()]));
    }
}
