//! A [`FetchJwks`] test double that counts its calls and answers as told, and the helpers
//! the key cache's unit tests share.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use tokio::time::Instant;

use super::fetch::{FetchError, FetchFuture, FetchJwks, Fetched};
use super::lock;
use super::{DtKeys, Lookup};

pub(super) const DISCOVERY: &str = "https://id.example/dc/.well-known/openid-configuration";
pub(super) const ISSUER: &str = "https://id.example/dc";
pub(super) const JWKS: &str = "https://id.example/dc/jwks";

/// A public JWK of a fresh P-256 key.
pub(super) fn jwk(kid: &str) -> String {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    format!(
        r#"{{"kty":"EC","crv":"P-256","kid":"{kid}","use":"sig","alg":"ES256","x":"{}","y":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(&point[1..33]),
        URL_SAFE_NO_PAD.encode(&point[33..65])
    )
}

/// A JWK Set of fresh keys with these `kid`s.
pub(super) fn jwks(kids: &[&str]) -> String {
    let keys: Vec<String> = kids.iter().map(|kid| jwk(kid)).collect();
    format!(r#"{{"keys":[{}]}}"#, keys.join(","))
}

/// How the [`Fake`] answers.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Mode {
    /// The documents, as set.
    Ok,
    /// Every GET fails.
    Fail,
    /// Every GET never answers.
    Stall,
    /// The key set is not JSON.
    Garbage,
}

/// A fetcher that counts its calls and answers as told.
pub(super) struct Fake {
    mode: Mutex<Mode>,
    pub(super) issuer: Mutex<String>,
    pub(super) jwks: Mutex<String>,
    pub(super) jwks_max_age: Mutex<Option<Duration>>,
    pub(super) discovery_max_age: Mutex<Option<Duration>>,
    discovery_calls: AtomicUsize,
    jwks_calls: AtomicUsize,
    /// When each GET of the key set (or, failing, of the discovery document) came.
    pub(super) times: Mutex<Vec<Instant>>,
}

impl Fake {
    pub(super) fn new(kids: &[&str]) -> Arc<Self> {
        Arc::new(Self {
            mode: Mutex::new(Mode::Ok),
            issuer: Mutex::new(ISSUER.into()),
            jwks: Mutex::new(jwks(kids)),
            jwks_max_age: Mutex::new(None),
            discovery_max_age: Mutex::new(None),
            discovery_calls: AtomicUsize::new(0),
            jwks_calls: AtomicUsize::new(0),
            times: Mutex::new(Vec::new()),
        })
    }
    pub(super) fn set_mode(&self, mode: Mode) {
        *lock(&self.mode) = mode;
    }
    pub(super) fn set_jwks(&self, kids: &[&str]) {
        *lock(&self.jwks) = jwks(kids);
    }
    pub(super) fn jwks_calls(&self) -> usize {
        self.jwks_calls.load(Ordering::SeqCst)
    }
    pub(super) fn discovery_calls(&self) -> usize {
        self.discovery_calls.load(Ordering::SeqCst)
    }
    /// Seconds between the recorded GETs.
    pub(super) fn intervals(&self) -> Vec<u64> {
        let times = lock(&self.times);
        times
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64().round() as u64)
            .collect()
    }
}

impl FetchJwks for Fake {
    fn fetch<'a>(&'a self, url: &'a str) -> FetchFuture<'a> {
        let mode = *lock(&self.mode);
        let discovery = url == DISCOVERY;
        if discovery {
            self.discovery_calls.fetch_add(1, Ordering::SeqCst);
        } else {
            assert_eq!(url, JWKS);
            self.jwks_calls.fetch_add(1, Ordering::SeqCst);
        }
        if !discovery || mode != Mode::Ok {
            lock(&self.times).push(Instant::now());
        }
        let answer = match mode {
            Mode::Stall => None,
            Mode::Fail => Some(Err(FetchError::new("the server answered 500"))),
            _ if discovery => Some(Ok(Fetched::new(
                format!(
                    r#"{{"issuer":"{}","jwks_uri":"{JWKS}","id_token_signing_alg_values_supported":["ES256"]}}"#,
                    lock(&self.issuer)
                ),
                *lock(&self.discovery_max_age),
            ))),
            Mode::Garbage => Some(Ok(Fetched::new("<html>not json", None))),
            Mode::Ok => Some(Ok(Fetched::new(
                lock(&self.jwks).clone(),
                *lock(&self.jwks_max_age),
            ))),
        };
        Box::pin(async move {
            match answer {
                Some(answer) => answer,
                None => std::future::pending().await,
            }
        })
    }
}

/// A discovered key set that `fake` serves.
pub(super) fn discover(fake: &Arc<Fake>) -> DtKeys {
    DtKeys::discovery(DISCOVERY)
        .fetcher(Arc::clone(fake))
        .build()
        .unwrap()
}

/// Let the refresh task run, without moving the clock.
pub(super) async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// What the key set says about `kid`.
pub(super) fn state(keys: &DtKeys, kid: &str) -> &'static str {
    match keys.lookup(kid) {
        Lookup::Found(_) => "found",
        Lookup::Unknown => "unknown",
        Lookup::Unavailable => "unavailable",
    }
}

/// Wait for the refresh a request asked for; there must be one.
pub(super) async fn wait(wait: Option<impl Future<Output = ()>>) {
    wait.expect("a refresh to wait for").await;
}
