//! What the key cache logs about DT's discovery document and key set, fetched over real
//! HTTP from `testing::IdentityServer` on 127.0.0.1 (#16): the trailing-slash issuer
//! accepted with a warning naming both strings, each redirect hop at debug level, an
//! unusable key skipped with a warning, an algorithm list without ES256 warned about; and
//! the first `WrongOrganization` against discovered keys at warn level, the next at debug.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::Layer;

use tower_dt_signature::keys::DtKeys;
use tower_dt_signature::testing::{AsymmetricSigner, Behavior, Endpoint, IdentityServer};
use tower_dt_signature::{DtSignatureLayer, ErrorKind, Verifier};

use crate::support::*;

const ORG: &str = "c0rg1d0000000000000a";
const OTHER_ORG: &str = "c0rg1d0000000000000b";
const BODY: &[u8] = br#"{"event":{"eventId":"c82gg9catj3vmh4248og"}}"#;

/// Run `test` on a runtime of this thread, so that the key refresh task logs here too.
fn on_this_thread<F: std::future::Future>(test: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(test)
}

/// Wait until `keys` are loaded (15 s at most, only to keep a broken test from hanging).
async fn loaded(keys: &DtKeys) {
    for _ in 0..1500 {
        if keys.ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not loaded within 15 s: {keys:?}");
}

/// A request `signer` signed, as DT sends it.
fn es(signer: &AsymmetricSigner) -> Request<Full<Bytes>> {
    signer.request("/", BODY).unwrap()
}

/// Whether `line` has the field `name=value` exactly (fields are separated by spaces).
fn field(line: &str, name_value: &str) -> bool {
    line.split(' ').any(|field| field == name_value)
}

/// The lines of `log` with `needle`.
fn lines<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|line| line.contains(needle)).collect()
}

#[test]
fn a_trailing_slash_issuer_a_redirect_and_an_unusable_key_are_logged() {
    let ((url_issuer, document_issuer, hop_url, kids), log) = capture_logs(|| {
        on_this_thread(async {
            let server = IdentityServer::start().await;
            let document_issuer = format!("{}/", server.issuer());
            let mut document = server.discovery_document();
            document["issuer"] = document_issuer.clone().into();
            // Discovery -> /hop/1 -> the document.
            server.set_behavior(Endpoint::Discovery, Behavior::Redirect("/hop/1".into()));
            server.set_route("/hop/1", Behavior::Body(document.to_string().into()));
            server.add_jwk(serde_json::json!("a string"));
            let signer = AsymmetricSigner::generate()
                .with_issuer(&document_issuer)
                .with_org_id(ORG);
            server.add_signer(&signer);
            let keys = DtKeys::discover(server.discovery_url()).unwrap();
            loaded(&keys).await;
            assert_eq!(keys.issuer(), document_issuer);
            let hop_url = server.url("/hop/1");
            (
                server.issuer().to_owned(),
                document_issuer,
                hop_url,
                keys.kids(),
            )
        })
    });
    assert_eq!(kids.len(), 1, "{log}");
    let slash = lines(&log, "trailing /");
    assert_eq!(slash.len(), 1, "{log}");
    assert!(
        slash[0].contains("WARN")
            && field(slash[0], &format!("document_issuer={document_issuer}"))
            && field(slash[0], &format!("url_issuer={url_issuer}")),
        "{}",
        slash[0]
    );
    let hop = lines(&log, "following a redirect");
    assert_eq!(hop.len(), 1, "{log}");
    assert!(
        hop[0].contains("DEBUG")
            && field(hop[0], &format!("to={hop_url}"))
            && field(hop[0], "hop=1"),
        "{}",
        hop[0]
    );
    let skipped = lines(&log, "JWK skipped");
    assert_eq!(skipped.len(), 1, "{log}");
    assert!(
        skipped[0].contains("WARN") && skipped[0].contains("not a JSON object"),
        "{}",
        skipped[0]
    );
}

#[test]
fn an_algorithm_list_without_es256_is_a_warning_and_es256_still_verifies() {
    for (algs, warned) in [(vec!["RS256"], true), (vec!["RS256", "ES256"], false)] {
        let ((), log) = capture_logs(|| {
            on_this_thread(async {
                let server = IdentityServer::start().await;
                let mut document = server.discovery_document();
                document["id_token_signing_alg_values_supported"] = algs.clone().into();
                server.set_behavior(
                    Endpoint::Discovery,
                    Behavior::Body(document.to_string().into()),
                );
                let signer = server.new_signer(ORG);
                let keys = DtKeys::discover(server.discovery_url()).unwrap();
                loaded(&keys).await;
                let recorder = Recorder::default();
                let service =
                    DtSignatureLayer::from(Verifier::asymmetric(keys, ORG)).layer(recorder.clone());
                let response = call(&service, es(&signer)).await;
                assert_eq!(response.status(), StatusCode::OK, "{algs:?}");
                assert_eq!(recorder.take()[0].body, BODY);
            })
        });
        let warning = lines(&log, "lacks ES256");
        assert_eq!(warning.len(), usize::from(warned), "{algs:?}: {log}");
        assert!(warning.iter().all(|line| line.contains("WARN")), "{log}");
    }
}

#[test]
fn the_first_wrong_organization_against_discovered_keys_warns_the_second_is_debug() {
    let (tokens, log) = capture_logs(|| {
        on_this_thread(async {
            let server = IdentityServer::start().await;
            let signer = server.new_signer(OTHER_ORG);
            let keys = DtKeys::discover(server.discovery_url()).unwrap();
            loaded(&keys).await;
            let recorder = Recorder::default();
            let service =
                DtSignatureLayer::from(Verifier::asymmetric(keys, ORG)).layer(recorder.clone());
            let mut tokens = Vec::new();
            for _ in 0..2 {
                let request = es(&signer);
                tokens.push(
                    request.headers()["dt-asymmetric-signature"]
                        .to_str()
                        .unwrap()
                        .to_owned(),
                );
                let (status, kind, _) = outcome(call(&service, request).await).await;
                assert_eq!(
                    (status, kind),
                    (StatusCode::BAD_REQUEST, Some(ErrorKind::WrongOrganization))
                );
            }
            assert!(recorder.take().is_empty(), "the inner service was called");
            tokens
        })
    });
    let refusals = lines(&log, "token organization mismatch;");
    let levels: Vec<bool> = refusals.iter().map(|line| line.contains("WARN")).collect();
    assert_eq!(levels, [true, false], "{log}");
    assert!(refusals[1].contains("DEBUG"), "{}", refusals[1]);
    assert!(
        refusals[0].contains(&format!("expected=\"{ORG}\""))
            && refusals[0].contains(&format!("token_sub=Some(\"{OTHER_ORG}\")")),
        "{}",
        refusals[0]
    );
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    assert_nothing_secret(&log, &[], &tokens, BODY);
}

/// A refresh that fails before any key set was loaded says so (#25): "no key set yet",
/// never "the last good set is kept", since there is none.
#[test]
fn a_failed_first_refresh_says_there_is_no_key_set_yet() {
    let (status, log) = capture_logs(|| {
        on_this_thread(async {
            let server = IdentityServer::start().await;
            server.go_down().await;
            let keys = DtKeys::discover(server.discovery_url()).unwrap();
            keys.ready();
            for _ in 0..1500 {
                if keys.status().last_refresh.is_some() {
                    return keys.status();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("no refresh ended within 15 s: {keys:?}");
        })
    });
    assert!(
        !status.loaded && status.last_failure.is_some(),
        "{status:?}"
    );
    let failed = lines(&log, "refreshing DT's key set failed");
    assert_eq!(failed.len(), 1, "{log}");
    assert!(
        failed[0].contains("WARN")
            && failed[0].contains("no key set yet")
            && !failed[0].contains("last good set")
            && field(failed[0], "kept_keys=0"),
        "{}",
        failed[0]
    );
}

/// A JWK whose `kid` is empty is skipped with a warning naming why (#24), as other
/// unusable entries are; the set's other key loads.
#[test]
fn a_key_with_an_empty_kid_is_skipped_with_a_warning() {
    let good = AsymmetricSigner::generate();
    let empty = AsymmetricSigner::generate().with_kid("");
    let (keys, log) = capture_logs(|| {
        DtKeys::from_jwks(good.issuer(), &AsymmetricSigner::jwks_of(&[&good, &empty])).unwrap()
    });
    assert_eq!(keys.kids(), [good.kid()]);
    let skipped = lines(&log, "JWK skipped");
    assert_eq!(skipped.len(), 1, "{log}");
    assert!(
        skipped[0].contains("WARN")
            && skipped[0].contains("its kid is empty")
            && field(skipped[0], "index=1"),
        "{}",
        skipped[0]
    );
}
