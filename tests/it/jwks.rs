//! DT's keys fetched through discovery (feature `jwks`), against a real HTTP identity
//! server on 127.0.0.1 (`testing::IdentityServer`), through the layer: the server down at
//! start and later, the cells of the policy table where the asymmetric token cannot be
//! checked (503), broken key sets, rotation and a flood of unknown kids; and (#16) an
//! https identity server behind a test CA, the trailing-slash issuer, redirect chains,
//! RFC 7517 key sets, `status()` and the metric outcome of each failure class, and the org
//! id in either form.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::Layer;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tower_dt_signature::keys::{DtKeys, FailureClass, KeyStatus};
use tower_dt_signature::testing::{AsymmetricSigner, Behavior, Endpoint, IdentityServer, Signer};
use tower_dt_signature::{DtClaims, DtSignatureLayer, ErrorKind, Scheme, Verifier};

use crate::support::*;

const ORG: &str = "org-jwks";
const BODY: &[u8] = br#"{"event":{"eventId":"c82gg9catj3vmh4248og","eventType":"touch"}}"#;

/// The precise kind and scheme of a refusal.
type Outcome = Option<(ErrorKind, Option<Scheme>)>;

/// A row: name, verifier, request, the status and outcome it must get.
type Case = (
    &'static str,
    Verifier,
    Request<Full<Bytes>>,
    StatusCode,
    Outcome,
);

/// What the layer answers, with the precise kind and scheme, and what the inner service
/// got.
async fn send(
    verifier: Verifier,
    request: Request<Full<Bytes>>,
) -> (StatusCode, Outcome, Vec<Seen>) {
    let recorder = Recorder::default();
    let service = DtSignatureLayer::from(verifier).layer(recorder.clone());
    // Every request is decided well within the 5 s budget of a refresh; this only keeps a
    // broken test from hanging.
    let response = tokio::time::timeout(Duration::from_secs(15), call(&service, request))
        .await
        .expect("the layer answered within the refresh budget");
    let status = response.status();
    let error = response
        .extensions()
        .get::<tower_dt_signature::DtSignatureError>()
        .map(|error| (error.kind(), error.scheme()));
    (status, error, recorder.take())
}

fn es(signer: &AsymmetricSigner) -> Request<Full<Bytes>> {
    signer.request("/", BODY).unwrap()
}

fn both(signer: &AsymmetricSigner) -> Request<Full<Bytes>> {
    signer
        .request_with_hmac(&Signer::new(SECRET), "/", BODY)
        .unwrap()
}

fn hmac_only() -> Request<Full<Bytes>> {
    Signer::new(SECRET).request("/", BODY).unwrap()
}

#[tokio::test]
async fn discovered_keys_verify_and_survive_the_server_going_down() {
    let server = IdentityServer::start().await;
    let signer = server.new_signer(ORG);
    let keys = DtKeys::discover(server.discovery_url()).unwrap();

    let (status, error, seen) = send(Verifier::asymmetric(keys.clone(), ORG), es(&signer)).await;
    assert_eq!((status, error), (StatusCode::OK, None));
    assert_eq!(seen[0].body, BODY);
    let claims = seen[0].parts.extensions.get::<DtClaims>().unwrap();
    assert_eq!(claims.issuer(), Some(server.issuer()));
    assert_eq!(claims.kid(), Some(signer.kid()));
    assert!(keys.ready());

    // The server goes down: the cached keys keep working, no request waits for it.
    server.go_down().await;
    for _ in 0..3 {
        let (status, _, seen) = send(Verifier::asymmetric(keys.clone(), ORG), es(&signer)).await;
        assert_eq!((status, seen.len()), (StatusCode::OK, 1));
    }
}

/// An identity server with one key of [`ORG`], gone down before anything fetched its key
/// set, and the keys discovered from it (not ready).
async fn discovered_while_down() -> (IdentityServer, AsymmetricSigner, DtKeys) {
    let server = IdentityServer::start().await;
    let signer = server.new_signer(ORG);
    server.go_down().await;
    let keys = DtKeys::discover(server.discovery_url()).unwrap();
    (server, signer, keys)
}

#[tokio::test]
async fn the_server_down_at_start_is_a_503_then_a_200_once_it_is_up() {
    let (server, signer, keys) = discovered_while_down().await;
    let verifier = Verifier::asymmetric(keys.clone(), ORG);

    let (status, error, seen) = send(verifier.clone(), es(&signer)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        error,
        Some((ErrorKind::KeysUnavailable, Some(Scheme::Asymmetric)))
    );
    assert!(seen.is_empty());
    assert!(!keys.ready());

    // Up again: with no key set yet, a request fetches (whatever the 30 s limit).
    server.come_up().await.unwrap();
    let (status, error, seen) = send(verifier, es(&signer)).await;
    assert_eq!((status, error), (StatusCode::OK, None));
    assert_eq!(seen[0].body, BODY);
    assert!(keys.ready());
}

/// The cells of the policy table where the asymmetric token is uncheckable (no key set):
/// unreachable with pinned keys.
#[tokio::test]
async fn the_uncheckable_cells_of_the_policy_table() {
    let (_server, signer, keys) = discovered_while_down().await;
    let u = Some(Scheme::Asymmetric);
    let h = Some(Scheme::Hmac);
    let forged_hmac = || {
        let mut request = both(&signer);
        let token = Signer::new("forged").sign(BODY);
        request
            .headers_mut()
            .insert("x-dt-signature", token.parse().unwrap());
        request
    };
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("asymmetric U", Verifier::asymmetric(keys.clone(), ORG), es(&signer), StatusCode::SERVICE_UNAVAILABLE, Some((ErrorKind::KeysUnavailable, u))),
        ("both V/U", Verifier::both(SECRET, keys.clone(), ORG), both(&signer), StatusCode::SERVICE_UNAVAILABLE, Some((ErrorKind::KeysUnavailable, u))),
        ("both A/U", Verifier::both(SECRET, keys.clone(), ORG), es(&signer), StatusCode::BAD_REQUEST, Some((ErrorKind::MissingHeader, h))),
        ("both I/U", Verifier::both(SECRET, keys.clone(), ORG), forged_hmac(), StatusCode::BAD_REQUEST, Some((ErrorKind::InvalidSignature, h))),
        ("either V/U", Verifier::either(SECRET, keys.clone(), ORG), both(&signer), StatusCode::OK, None),
        ("either A/U", Verifier::either(SECRET, keys.clone(), ORG), es(&signer), StatusCode::SERVICE_UNAVAILABLE, Some((ErrorKind::KeysUnavailable, u))),
        ("either I/U", Verifier::either(SECRET, keys.clone(), ORG), forged_hmac(), StatusCode::BAD_REQUEST, Some((ErrorKind::InvalidSignature, h))),
        ("either V/A", Verifier::either(SECRET, keys.clone(), ORG), hmac_only(), StatusCode::OK, None),
    ];
    for (name, verifier, request, status, error) in cases {
        let (got, got_error, seen) = send(verifier, request).await;
        assert_eq!((got, got_error), (status, error), "{name}");
        assert_eq!(seen.len(), usize::from(status == StatusCode::OK), "{name}");
        if let Some(seen) = seen.first() {
            let claims = seen.parts.extensions.get::<DtClaims>().unwrap();
            assert_eq!(
                claims.schemes(),
                [Scheme::Hmac],
                "{name}: HMAC alone was verified"
            );
        }
    }
}

/// Broken key sets never crash and never hang: garbage, an oversized set (declared or
/// streamed), a redirect and a stalled server each leave the key set unavailable (503),
/// decided within the refresh budget.
#[tokio::test]
async fn garbage_oversized_redirected_and_stalled_key_sets_fail_safely() {
    let behaviors = [
        Behavior::Garbage,
        Behavior::Oversized(64 * 1024 + 1),
        Behavior::OversizedChunked(256 * 1024),
        Behavior::Redirect("http://127.0.0.1:9/elsewhere".into()),
        Behavior::Status(StatusCode::INTERNAL_SERVER_ERROR),
        Behavior::Stall,
    ];
    for behavior in behaviors {
        let server = IdentityServer::start().await;
        let signer = server.new_signer(ORG);
        server.set_behavior(Endpoint::Jwks, behavior.clone());
        let keys = DtKeys::discover(server.discovery_url()).unwrap();
        let (status, error, seen) =
            send(Verifier::asymmetric(keys.clone(), ORG), es(&signer)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{behavior:?}");
        assert_eq!(
            error.map(|e| e.0),
            Some(ErrorKind::KeysUnavailable),
            "{behavior:?}"
        );
        assert!(seen.is_empty());
        assert!(!keys.ready(), "{behavior:?}");
    }
}

/// Key rotation without a restart, and a flood of unknown kids: at most one fetch per
/// 30 s, counted at the server. Takes about 31 s of real time (run by `./scripts/test`).
#[tokio::test]
#[ignore = "waits out the 30 s limit on refreshes for unknown kids"]
async fn rotation_and_a_flood_of_unknown_kids_fetch_at_most_once_per_30_s() {
    let server = IdentityServer::start().await;
    let old = server.new_signer(ORG);
    let keys = DtKeys::discover(server.discovery_url()).unwrap();
    let verifier = Verifier::asymmetric(keys.clone(), ORG);
    let (status, _, _) = send(verifier.clone(), es(&old)).await;
    assert_eq!(status, StatusCode::OK);
    let fetches = server.fetch_count();

    // DT rotates: a new key, the old one gone.
    let new = AsymmetricSigner::generate()
        .with_issuer(server.issuer())
        .with_org_id(ORG);
    server.set_signers(&[&new]);

    // A flood of tokens with unknown kids within 30 s of the last refresh: no fetch, and
    // each is refused as an unknown key (the key set is current).
    let flood: Vec<_> = (0..200).map(|_| send(verifier.clone(), es(&new))).collect();
    for (status, error, seen) in futures_util::future::join_all(flood).await {
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error.map(|e| e.0), Some(ErrorKind::UnknownKey));
        assert!(seen.is_empty());
    }
    assert_eq!(
        server.fetch_count(),
        fetches,
        "an unknown kid fetched within 30 s"
    );

    // 30 s later, a flood again: exactly one fetch, which every request waits for, and
    // the new key verifies; the old one is gone.
    tokio::time::sleep(Duration::from_secs(31)).await;
    let flood: Vec<_> = (0..200).map(|_| send(verifier.clone(), es(&new))).collect();
    for (status, error, seen) in futures_util::future::join_all(flood).await {
        assert_eq!((status, error), (StatusCode::OK, None));
        assert_eq!(seen.len(), 1);
    }
    assert_eq!(
        server.fetch_count(),
        fetches + 1,
        "one fetch for the whole flood"
    );
    let (status, error, _) = send(verifier, es(&old)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.map(|e| e.0), Some(ErrorKind::UnknownKey));
}

// ---- #16: tolerant where the standards allow, loud when keys fail ----

/// The first refresh's outcome: starts the task and waits until a refresh ended (the
/// refresh itself is bounded by its 5 s budget; this only keeps a broken test from
/// hanging).
async fn first_refresh(keys: &DtKeys) -> KeyStatus {
    keys.ready();
    for _ in 0..1500 {
        let status = keys.status();
        if status.last_refresh.is_some() {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no refresh ended within 15 s: {keys:?}");
}

/// A TLS front on 127.0.0.1 for the plain identity server at `backend`, with a test
/// certificate made now: its address and the certificate (DER), the root to trust.
async fn tls_front(backend: SocketAddr) -> (SocketAddr, Vec<u8>) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let der = certified.cert.der().to_vec();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let tls =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls_graviola::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(der.clone())], key)
            .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (addr, der)
}

/// An identity server behind a TLS front: its discovery document names the https issuer
/// and `jwks_uri` (the front's, unless `jwks_uri` is given), and a signer of that issuer
/// is its only key. The server, the front's discovery URL, the signer and the root.
async fn https_identity(
    jwks_uri: Option<&str>,
) -> (IdentityServer, String, AsymmetricSigner, Vec<u8>) {
    let server = IdentityServer::start().await;
    let (front, root) = tls_front(server.addr()).await;
    let issuer = format!("https://{front}/data-connector");
    let mut document = server.discovery_document();
    document["issuer"] = issuer.clone().into();
    document["jwks_uri"] = jwks_uri
        .map_or_else(
            || format!("https://{front}{}", Endpoint::Jwks.path()),
            str::to_owned,
        )
        .into();
    server.set_behavior(
        Endpoint::Discovery,
        Behavior::Body(document.to_string().into()),
    );
    let signer = AsymmetricSigner::generate()
        .with_issuer(&issuer)
        .with_org_id(ORG);
    server.set_signers(&[&signer]);
    let url = format!("https://{front}{}", Endpoint::Discovery.path());
    (server, url, signer, root)
}

fn trusting(url: &str, root: &[u8]) -> DtKeys {
    DtKeys::discovery(url)
        .extra_root_certificate(root)
        .build()
        .unwrap()
}

#[tokio::test]
async fn over_https_with_a_test_ca() {
    let (_server, url, signer, root) = https_identity(None).await;
    let keys = trusting(&url, &root);
    assert!(first_refresh(&keys).await.loaded);
    let (status, error, seen) = send(Verifier::asymmetric(keys.clone(), ORG), es(&signer)).await;
    assert_eq!((status, error), (StatusCode::OK, None));
    assert_eq!(seen[0].body, BODY);
    // Without the root: the handshake fails, classed as such.
    let untrusting = DtKeys::discover(&url).unwrap();
    let status = first_refresh(&untrusting).await;
    assert_eq!(status.last_failure.unwrap().class, FailureClass::Tls);
}

#[tokio::test]
async fn an_https_document_naming_a_plain_http_key_set_is_refused() {
    let plain = IdentityServer::start().await;
    let (server, url, signer, root) = https_identity(Some(plain.jwks_url())).await;
    plain.set_signers(&[&signer]);
    let keys = trusting(&url, &root);
    let status = first_refresh(&keys).await;
    assert!(!status.loaded);
    let failure = status.last_failure.unwrap();
    assert_eq!(failure.class, FailureClass::Other);
    assert!(
        failure.reason.contains("https key set"),
        "{}",
        failure.reason
    );
    assert_eq!(
        (
            plain.request_count(Endpoint::Jwks.path()),
            server.fetch_count()
        ),
        (0, 0)
    );
    let (status, error, seen) = send(Verifier::asymmetric(keys, ORG), es(&signer)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error.map(|e| e.0), Some(ErrorKind::KeysUnavailable));
    assert!(seen.is_empty());
}

/// Serve the discovery document after `hops` redirects: the discovery path, then
/// `/hop/1` .. `/hop/{hops - 1}` (relative locations), then the document at `/hop/{hops}`.
fn redirect_chain(server: &IdentityServer, hops: usize, document: Behavior) {
    server.set_behavior(Endpoint::Discovery, Behavior::Redirect("/hop/1".into()));
    for hop in 1..hops {
        server.set_route(
            format!("/hop/{hop}"),
            Behavior::Redirect(format!("{}", hop + 1)),
        );
    }
    server.set_route(format!("/hop/{hops}"), document);
}

#[tokio::test]
async fn up_to_3_redirects_are_followed_over_https_never_to_http() {
    for hops in 1..=4 {
        let (server, url, signer, root) = https_identity(None).await;
        let document = {
            // The document the front served directly, now at the chain's end.
            let plain = server.discovery_document();
            let front = url.split('/').nth(2).unwrap().to_owned();
            let mut document = plain;
            document["issuer"] = format!("https://{front}/data-connector").into();
            document["jwks_uri"] = format!("https://{front}{}", Endpoint::Jwks.path()).into();
            Behavior::Body(document.to_string().into())
        };
        redirect_chain(&server, hops, document);
        let keys = trusting(&url, &root);
        let status = first_refresh(&keys).await;
        let (got, _, seen) = send(Verifier::asymmetric(keys, ORG), es(&signer)).await;
        if hops <= 3 {
            assert!(status.loaded, "{hops}: {status:?}");
            assert_eq!((got, seen.len()), (StatusCode::OK, 1), "{hops}");
        } else {
            assert!(!status.loaded);
            let failure = status.last_failure.unwrap();
            assert_eq!(failure.class, FailureClass::RedirectRefused);
            assert!(failure.reason.contains("more than 3"), "{}", failure.reason);
            assert_eq!((got, seen.len()), (StatusCode::SERVICE_UNAVAILABLE, 0));
            assert_eq!(
                server.request_count("/hop/4"),
                0,
                "the 4th was not followed"
            );
        }
    }
    // From https to plain http (loopback included): refused, the http URL never asked.
    let (server, url, _signer, root) = https_identity(None).await;
    server.set_behavior(
        Endpoint::Discovery,
        Behavior::Redirect(server.url("/plain")),
    );
    server.set_route("/plain", Behavior::Normal);
    let status = first_refresh(&trusting(&url, &root)).await;
    let failure = status.last_failure.unwrap();
    assert_eq!(failure.class, FailureClass::RedirectRefused);
    assert!(failure.reason.contains("plain http"), "{}", failure.reason);
    assert_eq!(server.request_count("/plain"), 0);
}

#[tokio::test]
async fn a_trailing_slash_on_the_document_issuer_is_accepted_other_differences_refused() {
    for (suffix, accepted) in [("/", true), ("//", false), ("x", false), ("/x", false)] {
        let server = IdentityServer::start().await;
        let document_issuer = format!("{}{suffix}", server.issuer());
        let mut document = server.discovery_document();
        document["issuer"] = document_issuer.clone().into();
        server.set_behavior(
            Endpoint::Discovery,
            Behavior::Body(document.to_string().into()),
        );
        let signer = AsymmetricSigner::generate()
            .with_issuer(&document_issuer)
            .with_org_id(ORG);
        // A token with the URL's issuer, in the same key set: refused whatever the document.
        let url_signer = server.new_signer(ORG);
        server.add_signer(&signer);
        let keys = DtKeys::discover(server.discovery_url()).unwrap();
        assert_eq!(keys.issuer(), server.issuer(), "before the document");
        let status = first_refresh(&keys).await;
        assert_eq!(status.loaded, accepted, "{suffix}");
        let verifier = Verifier::asymmetric(keys.clone(), ORG);
        let (got, error, seen) = send(verifier.clone(), es(&signer)).await;
        if accepted {
            assert_eq!(keys.issuer(), document_issuer);
            assert_eq!((got, error), (StatusCode::OK, None));
            assert_eq!(seen[0].body, BODY);
            let (got, error, seen) = send(verifier, es(&url_signer)).await;
            assert_eq!(got, StatusCode::BAD_REQUEST);
            assert_eq!(error.map(|e| e.0), Some(ErrorKind::WrongIssuer));
            assert!(seen.is_empty());
        } else {
            assert_eq!(keys.issuer(), server.issuer());
            assert_eq!(
                status.last_failure.unwrap().class,
                FailureClass::IssuerMismatch
            );
            assert_eq!(
                (got, seen.len()),
                (StatusCode::SERVICE_UNAVAILABLE, 0),
                "{suffix}"
            );
        }
    }
}

#[tokio::test]
async fn a_malformed_entry_beside_a_good_key_loads_the_good_key() {
    let server = IdentityServer::start().await;
    server.add_jwk(serde_json::json!("a string"));
    server.add_jwk(serde_json::json!({"kty": "EC", "kid": 7}));
    server.add_jwk(serde_json::json!({"kty": "EC", "kid": "u", "use": ["sig"]}));
    let signer = server.new_signer(ORG);
    let keys = DtKeys::discover(server.discovery_url()).unwrap();
    assert_eq!(first_refresh(&keys).await.kids, [signer.kid()]);
    let (status, error, seen) = send(Verifier::asymmetric(keys, ORG), es(&signer)).await;
    assert_eq!((status, error), (StatusCode::OK, None));
    assert_eq!(seen[0].body, BODY);
}

#[tokio::test]
async fn one_kid_on_two_keys_is_refused_in_either_order() {
    for rsa_first in [true, false] {
        let server = IdentityServer::start().await;
        let signer = AsymmetricSigner::generate()
            .with_issuer(server.issuer())
            .with_org_id(ORG);
        let rsa = serde_json::json!({"kty": "RSA", "kid": signer.kid(), "n": "AQAB", "e": "AQAB"});
        // `add_jwk` both (`add_signer` would drop the RSA entry of the same kid).
        if rsa_first {
            server.add_jwk(rsa);
            server.add_jwk(signer.jwk());
        } else {
            server.add_jwk(signer.jwk());
            server.add_jwk(rsa);
        }
        assert_eq!(server.kids().len(), 2);
        let keys = DtKeys::discover(server.discovery_url()).unwrap();
        let status = first_refresh(&keys).await;
        assert!(!status.loaded, "{rsa_first}");
        assert_eq!(status.last_failure.unwrap().class, FailureClass::Other);
        let (got, _, seen) = send(Verifier::asymmetric(keys, ORG), es(&signer)).await;
        assert_eq!((got, seen.len()), (StatusCode::SERVICE_UNAVAILABLE, 0));
    }
}

/// One refresh per failure class over real HTTP: `status()` names the class, and the
/// fetch counter counts it under that outcome (and `ok` with the last-success gauge).
#[cfg(feature = "metrics")]
#[test]
fn status_and_metric_outcome_of_each_failure_class() {
    use metrics_util::debugging::DebugValue;

    let snapshotter = crate::metrics_facade::with_recorder(|| async {
        for class in FailureClass::ALL {
            let server = IdentityServer::start().await;
            let signer = server.new_signer(ORG);
            let mut url = server.discovery_url();
            match class {
                FailureClass::Connect => server.go_down().await,
                FailureClass::Tls => url = https_identity(None).await.1,
                FailureClass::Timeout => server.set_behavior(Endpoint::Jwks, Behavior::Stall),
                FailureClass::HttpStatus => server.set_behavior(
                    Endpoint::Discovery,
                    Behavior::Status(StatusCode::INTERNAL_SERVER_ERROR),
                ),
                FailureClass::RedirectRefused => redirect_chain(&server, 4, Behavior::Normal),
                FailureClass::TooLarge => {
                    server.set_behavior(Endpoint::Jwks, Behavior::Oversized(64 * 1024 + 1))
                }
                FailureClass::NotJson => server.set_behavior(Endpoint::Jwks, Behavior::Garbage),
                FailureClass::IssuerMismatch => {
                    let mut document = server.discovery_document();
                    document["issuer"] = format!("{}x", server.issuer()).into();
                    server.set_behavior(
                        Endpoint::Discovery,
                        Behavior::Body(document.to_string().into()),
                    );
                }
                FailureClass::NoUsableKey => {
                    server.set_signers(&[]);
                    server.add_jwk(
                        serde_json::json!({"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"}),
                    );
                }
                FailureClass::Other => server.add_jwk(serde_json::json!({
                    "kty": "RSA", "kid": signer.kid(), "n": "AQAB", "e": "AQAB"
                })),
                _ => unreachable!("a class this test does not know: add it"),
            }
            let keys = DtKeys::discover(&url).unwrap();
            let status = first_refresh(&keys).await;
            assert!(!status.loaded, "{class}");
            assert_eq!(status.consecutive_failures, 1, "{class}");
            let failure = status.last_failure.clone().unwrap();
            assert_eq!(failure.class, class, "{class}: {}", failure.reason);
            assert_eq!(status.last_refresh.unwrap().failure, Some(class));
            assert!(status.next_refresh.is_some(), "{class}");
            // Debug shows the same facts.
            let debug = format!("{keys:?}");
            assert!(
                debug.contains(&format!("class: {class:?}"))
                    && debug.contains("consecutive_failures: 1"),
                "{debug}"
            );
        }
        let server = IdentityServer::start().await;
        server.new_signer(ORG);
        let keys = DtKeys::discover(server.discovery_url()).unwrap();
        assert!(first_refresh(&keys).await.last_refresh.unwrap().ok());
    });
    let mut outcomes = Vec::new();
    let mut gauge = None;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: Vec<(String, String)> = key
            .key()
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        match (key.key().name(), value) {
            ("dt_signature_jwks_fetches_total", DebugValue::Counter(count)) => {
                outcomes.push((labels[0].1.clone(), count));
            }
            ("dt_signature_jwks_last_success_timestamp_seconds", DebugValue::Gauge(value)) => {
                gauge = Some((labels, value.into_inner()));
            }
            _ => {}
        }
    }
    outcomes.sort();
    let mut expected: Vec<String> = FailureClass::ALL
        .iter()
        .map(|c| c.code().to_owned())
        .collect();
    expected.push("ok".into());
    expected.sort();
    let labels: Vec<String> = outcomes.iter().map(|(o, _)| o.clone()).collect();
    assert_eq!(labels, expected, "{outcomes:?}");
    assert!(outcomes.iter().all(|(_, count)| *count >= 1));
    let (labels, seconds) = gauge.expect("the last-success gauge");
    assert_eq!(labels[0].0, "issuer");
    assert!(labels[0].1.starts_with("http://127.0.0.1:"), "{labels:?}");
    assert!(seconds > 1.7e9, "{seconds}");
}

/// DT's API form `organizations/<id>` and the bare id are one organization, on either side
/// (the configured id, the token's `sub`); another id is refused before the inner service.
#[tokio::test]
async fn the_org_id_in_either_form_over_discovered_keys() {
    let server = IdentityServer::start().await;
    let prefixed = format!("organizations/{ORG}");
    let rows = [
        (ORG, ORG, true),
        (prefixed.as_str(), ORG, true),
        (ORG, prefixed.as_str(), true),
        (prefixed.as_str(), prefixed.as_str(), true),
        (ORG, "organizations/other-org", false),
        (prefixed.as_str(), "other-org", false),
        (ORG, "organizations/organizations/org-jwks", false),
    ];
    // Every signer in the key set before the first fetch (an unknown kid would wait for
    // the 30 s limit on refreshes).
    let signers: Vec<AsymmetricSigner> = rows
        .iter()
        .map(|(_, sub, _)| {
            let signer = AsymmetricSigner::generate()
                .with_issuer(server.issuer())
                .with_org_id(*sub);
            server.add_signer(&signer);
            signer
        })
        .collect();
    let keys = DtKeys::discover(server.discovery_url()).unwrap();
    for ((configured, sub, accepted), signer) in rows.into_iter().zip(&signers) {
        let verifier = Verifier::asymmetric(keys.clone(), configured);
        let (status, error, seen) = send(verifier, es(signer)).await;
        if accepted {
            assert_eq!(
                (status, error),
                (StatusCode::OK, None),
                "{configured} {sub}"
            );
            assert_eq!(seen[0].body, BODY);
            let claims = seen[0].parts.extensions.get::<DtClaims>().unwrap();
            assert_eq!(claims.org_id(), Some(ORG), "the bare id");
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{configured} {sub}");
            assert_eq!(error.map(|e| e.0), Some(ErrorKind::WrongOrganization));
            assert!(seen.is_empty(), "{configured} {sub}");
        }
    }
}

/// A user's `FetchJwks` classes its own failures: the class and the reason reach
/// `status()`.
#[tokio::test]
async fn a_custom_fetchers_failure_class_reaches_the_status() {
    use tower_dt_signature::keys::{FetchError, FetchFuture, FetchJwks};

    struct Refusing;

    impl FetchJwks for Refusing {
        fn fetch<'a>(&'a self, _url: &'a str) -> FetchFuture<'a> {
            Box::pin(async {
                Err(FetchError::new("the proxy answered 403").with_class(FailureClass::HttpStatus))
            })
        }
    }

    let keys = DtKeys::discovery("https://id.example/dc/.well-known/openid-configuration")
        .fetcher(Refusing)
        .build()
        .unwrap();
    let status = first_refresh(&keys).await;
    let failure = status.last_failure.unwrap();
    assert_eq!(failure.class, FailureClass::HttpStatus);
    assert!(
        failure.reason.contains("the proxy answered 403"),
        "{}",
        failure.reason
    );
    assert!(!status.loaded);
}

/// An empty `kid` is not a key (#24), pinned or fetched: the JWK with `"kid": ""` is
/// skipped (the probe names why), the set's other key still loads, and a token whose
/// `kid` is empty, signed with that very key, is refused as `MissingKeyId` before any key
/// is looked up; the inner service never sees it.
#[tokio::test]
async fn an_empty_kid_is_not_a_key_pinned_fetched_or_in_a_token() {
    let server = IdentityServer::start().await;
    let good = server.new_signer(ORG);
    let empty = AsymmetricSigner::generate()
        .with_issuer(server.issuer())
        .with_org_id(ORG)
        .with_kid("");
    server.add_jwk(empty.jwk());
    assert_eq!(empty.jwk()["kid"], "");

    let pinned_jwks = AsymmetricSigner::jwks_of(&[&good, &empty]);
    let probe = DtKeys::probe_jwks(server.issuer(), &pinned_jwks);
    assert_eq!(probe.loaded(), [good.kid()]);
    let skipped: Vec<_> = probe
        .keys
        .iter()
        .filter(|key| key.kid.as_deref() == Some(""))
        .map(|key| key.outcome.clone())
        .collect();
    assert_eq!(
        skipped,
        [tower_dt_signature::keys::KeyOutcome::Skipped(
            "its kid is empty"
        )]
    );
    let pinned = DtKeys::from_jwks(server.issuer(), &pinned_jwks).unwrap();
    let fetched = DtKeys::discover(server.discovery_url()).unwrap();
    for (name, keys) in [("pinned", pinned), ("fetched", fetched)] {
        let verifier = Verifier::asymmetric(keys.clone(), ORG);
        // The good key verifies (and, for the fetched set, the first fetch is in).
        let (status, error, seen) = send(verifier.clone(), es(&good)).await;
        assert_eq!((status, error), (StatusCode::OK, None), "{name}");
        assert_eq!(seen[0].body, BODY, "{name}");
        assert_eq!(
            keys.kids(),
            [good.kid()],
            "{name}: the empty kid is skipped"
        );
        // A token under the empty kid, signed with the skipped key.
        let (status, error, seen) = send(verifier, es(&empty)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(
            error,
            Some((ErrorKind::MissingKeyId, Some(Scheme::Asymmetric))),
            "{name}"
        );
        assert!(seen.is_empty(), "{name}: the inner service was called");
    }
}
