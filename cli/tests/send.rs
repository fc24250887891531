//! The local Data Connector of `dt-signature send` (its engine, `send::connector`)
//! against in-process axum receivers on 127.0.0.1:0: delivery of every event type,
//! DT-like retries, and `--tamper` mode, which must report a receiver that accepts
//! tampered requests; the same for `--scheme asymmetric` and `both`, against receivers
//! that pin the keys of the connector's identity server, and a `kid` that stays the same
//! across runs with one key file. `cli.rs` runs the built binary.

mod support;

use dt_signature_cli::send::connector;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use axum::Router;
use connector::{Config, Tamper};
use http::StatusCode;
use tower_dt_signature::events::EventType;
use tower_dt_signature::DtSignatureLayer;

use support::{body_receiver, recording_receiver, serve, tls_front, Seen};

const SECRET: &str = "local-secret";

/// A verifying receiver that records every typed payload it gets.
async fn verifying_receiver() -> (http::Uri, Seen) {
    recording_receiver(
        DtSignatureLayer::new(SECRET)
            .require_sha256(true)
            .leeway(Duration::ZERO),
    )
    .await
}

/// `config` in tamper mode: every one of `kinds` once, on a touch event.
fn tamper_touch(config: &mut Config, kinds: &[Tamper]) {
    config.tamper = true;
    config.types = vec![EventType::Touch];
    config.count = kinds.len();
}

/// Tamper mode (every one of `kinds` once, on a touch event) with `config` against a
/// receiver without DtSignatureLayer, where every tampered request gets a 200: it reports
/// every kind accepted and none refused. Returns the report.
async fn reports_every_kind_accepted(
    config: impl FnOnce(http::Uri) -> Config,
    kinds: &[Tamper],
) -> connector::Report {
    let app = Router::new().route("/", post(|_: Bytes| async { "ok" }));
    let mut config = config(serve(app).await);
    tamper_touch(&mut config, kinds);
    let report = connector::run(&config).await;
    assert_eq!(report.tamper_accepted.len(), kinds.len());
    assert_eq!(report.tamper_refused, 0);
    assert!(!report.ok(true));
    for tamper in kinds {
        let name = format!("{tamper:?} (touch)");
        assert!(report.tamper_accepted.contains(&name), "{name}");
    }
    report
}

/// Tamper mode with every one of `kinds` on a temperature and a contact event: each
/// tampered request is refused at its first try. Returns the report.
async fn refuses_every_kind(mut config: Config, kinds: &[Tamper]) -> connector::Report {
    config.tamper = true;
    config.types = vec![EventType::Temperature, EventType::Contact];
    config.count = kinds.len(); // every kind of tampering, on both types
    let report = connector::run(&config).await;
    let n = 2 * kinds.len();
    assert_eq!(report.events, n);
    assert_eq!(report.tamper_refused, n, "{:?}", report.tamper_accepted);
    assert!(report.tamper_accepted.is_empty());
    assert_eq!(report.requests, n, "tampered requests are not retried");
    assert!(report.ok(true));
    report
}

fn fast(url: http::Uri) -> Config {
    let mut config = Config::new(url, SECRET);
    config.backoff = Duration::from_millis(1);
    config.max_backoff = Duration::from_millis(4);
    config.timeout = Duration::from_secs(5);
    config
}

/// Two events of every type under `config`, each delivered at its first try; the
/// receiver that records into `seen` decoded each one (`DtPayload`) and got every type
/// twice. Returns the report.
async fn delivers_every_type_twice(
    mut config: Config,
    seen: &Seen,
    label: &str,
) -> connector::Report {
    config.count = 2;
    let report = connector::run(&config).await;
    assert_eq!(report.events, 38);
    assert_eq!((report.delivered, report.failed), (38, 0), "{label}");
    assert_eq!(report.requests, 38);
    assert_eq!(report.statuses, BTreeMap::from([(200, 38)]));
    assert!(report.ok(false));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 38);
    for event_type in EventType::ALL {
        let n = seen
            .iter()
            .filter(|p| p.event.event_type == event_type)
            .count();
        assert_eq!(n, 2, "{label} {event_type}");
    }
    report
}

#[tokio::test]
async fn delivers_every_event_type_to_a_verifying_receiver() {
    let (url, seen) = verifying_receiver().await;
    let report = delivers_every_type_twice(fast(url), &seen, "hmac").await;
    assert_eq!(report.latencies.len(), 38);
    assert!(report.percentile(50.0) <= report.percentile(99.0));
    // Unique ids.
    let seen = seen.lock().unwrap();
    let ids: BTreeSet<_> = seen.iter().map(|p| p.event.event_id.clone()).collect();
    assert_eq!(ids.len(), 38);
}

#[tokio::test]
async fn tampered_requests_are_refused_and_never_reach_the_handler() {
    let (url, seen) = verifying_receiver().await;
    let report = refuses_every_kind(fast(url), &Tamper::HMAC).await;
    assert_eq!(report.events, 12);
    assert_eq!(report.statuses, BTreeMap::from([(400, 12)]));
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn tamper_mode_reports_a_receiver_that_accepts_everything() {
    let report = reports_every_kind_accepted(fast, &Tamper::HMAC).await;
    assert_eq!(report.tamper_accepted.len(), 6);
}

#[tokio::test]
async fn retries_non_2xx_answers_with_the_same_bytes() {
    // Answers 503 to the first try of each body, 200 to the second.
    let tries: Arc<Mutex<BTreeMap<Bytes, usize>>> = Arc::default();
    let counted = tries.clone();
    let app = Router::new()
        .route(
            "/",
            post(move |body: Bytes| {
                let counted = counted.clone();
                async move {
                    let mut tries = counted.lock().unwrap();
                    let n = tries.entry(body).or_default();
                    *n += 1;
                    if *n == 1 {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        )
        .layer(DtSignatureLayer::new(SECRET));
    let mut config = fast(serve(app).await);
    config.types = vec![EventType::Touch, EventType::Co2, EventType::LabelsChanged];
    let report = connector::run(&config).await;
    assert_eq!((report.delivered, report.failed), (3, 0));
    assert_eq!(report.requests, 6);
    assert_eq!(report.statuses, BTreeMap::from([(200, 3), (503, 3)]));
    // Each body arrived exactly twice, signed (it passed the layer both times).
    let tries = tries.lock().unwrap();
    assert_eq!(tries.len(), 3);
    assert!(tries.values().all(|&n| n == 2));
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let app = Router::new().route("/", post(|| async { StatusCode::INTERNAL_SERVER_ERROR }));
    let mut config = fast(serve(app).await);
    config.types = vec![EventType::Motion, EventType::Pressure];
    config.max_attempts = 3;
    let report = connector::run(&config).await;
    assert_eq!((report.delivered, report.failed), (0, 2));
    assert_eq!(report.requests, 6);
    assert_eq!(report.statuses, BTreeMap::from([(500, 6)]));
    assert!(!report.ok(false));
}

#[tokio::test]
async fn a_receiver_that_is_not_there_is_an_error_not_a_hang() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut config = fast(format!("http://{addr}/").parse().unwrap());
    config.types = vec![EventType::Touch];
    config.max_attempts = 2;
    let report = connector::run(&config).await;
    assert_eq!((report.delivered, report.failed), (0, 1));
    assert_eq!((report.requests, report.transport_errors), (2, 2));
    assert!(report.statuses.is_empty());
    assert_eq!(report.percentile(50.0), None);

    // In tamper mode no answer is not a refusal: the run is not ok.
    config.tamper = true;
    let report = connector::run(&config).await;
    assert_eq!(
        (report.tamper_refused, report.tamper_accepted.len()),
        (0, 0)
    );
    assert!(!report.ok(true));
}

/// The reasons: the first answer's text of each refusal status, and why no answer came.
#[tokio::test]
async fn the_report_says_why_a_receiver_refused() {
    // A receiver verifying another secret: 400 invalid token signature.
    let (url, seen) = recording_receiver(DtSignatureLayer::new("another-secret")).await;
    let mut config = fast(url);
    config.types = vec![EventType::Touch, EventType::Co2];
    config.max_attempts = 2;
    let report = connector::run(&config).await;
    assert_eq!((report.delivered, report.failed), (0, 2));
    assert_eq!(report.statuses, BTreeMap::from([(400, 4)]));
    assert_eq!(
        report.reasons,
        BTreeMap::from([(400, "invalid token signature".to_owned())])
    );
    assert!(report.no_answer.is_empty());
    assert!(seen.lock().unwrap().is_empty());

    // A 2xx is no reason.
    let (url, _seen) = verifying_receiver().await;
    let report = connector::run(&fast(url)).await;
    assert!(report.ok(false));
    assert!(report.reasons.is_empty());
}

#[tokio::test]
async fn the_report_says_why_no_answer_came() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut config = fast(format!("http://{addr}/").parse().unwrap());
    config.types = vec![EventType::Touch];
    config.max_attempts = 2;
    let report = connector::run(&config).await;
    assert_eq!(
        report.no_answer,
        BTreeMap::from([(format!("connection refused to {addr}"), 2)])
    );
    assert!(report.reasons.is_empty());
}

/// `--tamper` runs every kind of the scheme once for each type, whatever `count` says,
/// and lists each kind with its answer.
#[tokio::test]
async fn tamper_runs_every_kind_once_per_type_and_lists_the_answers() {
    let (url, seen) = verifying_receiver().await;
    let mut config = fast(url);
    config.tamper = true;
    config.types = vec![EventType::Touch, EventType::Temperature];
    config.count = 1; // ignored
    let report = connector::run(&config).await;
    assert_every_kind_listed(&report, &Tamper::HMAC, &config.types);
    assert!(report.ok(true));
    assert!(seen.lock().unwrap().is_empty());
    let answer = |kind| {
        report
            .tampered
            .iter()
            .find(|t| t.kind == kind && t.event_type == EventType::Touch)
            .map(|t| t.answer.clone())
    };
    use connector::Answer;
    assert_eq!(
        answer(Tamper::BodyByte),
        Some(Answer::Status(400, "checksum mismatch".into()))
    );
    assert_eq!(
        answer(Tamper::NoSignature),
        Some(Answer::Status(400, "missing X-Dt-Signature header".into()))
    );
    assert_eq!(
        answer(Tamper::Expired),
        Some(Answer::Status(400, "token expired".into()))
    );

    // --count is ignored: 3 is still one of each kind per type.
    config.count = 3;
    let report = connector::run(&config).await;
    assert_every_kind_listed(&report, &Tamper::HMAC, &config.types);
}

/// Every kind of `kinds` once for each of `types`, in that order, each refused.
fn assert_every_kind_listed(report: &connector::Report, kinds: &[Tamper], types: &[EventType]) {
    let listed: Vec<(Tamper, EventType)> = report
        .tampered
        .iter()
        .map(|t| (t.kind, t.event_type.clone()))
        .collect();
    let expected: Vec<(Tamper, EventType)> = types
        .iter()
        .flat_map(|t| kinds.iter().map(move |k| (*k, t.clone())))
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(report.events, kinds.len() * types.len());
    assert_eq!(
        report.tamper_refused, report.events,
        "{:?}",
        report.tampered
    );
    for tampered in &report.tampered {
        match &tampered.answer {
            connector::Answer::Status(status, text) => {
                assert!((400..500).contains(status), "{tampered:?}");
                assert!(!text.is_empty(), "{tampered:?}");
            }
            connector::Answer::None(error) => panic!("{tampered:?}: {error}"),
        }
    }
}

/// `https://`: a receiver behind TLS with a certificate of a test CA is reached with
/// that CA given (`--ca-cert`), and refused with a clear reason without it.
#[tokio::test]
async fn https_receiver_with_a_test_ca() {
    let (plain, seen) = verifying_receiver().await;
    let (url, ca_pem) = tls_front(&plain).await;
    let mut config = fast(url.clone());
    config.types = vec![EventType::Touch, EventType::Temperature];
    config.tls = connector::Tls::default()
        .with_ca_cert(ca_pem.as_bytes())
        .unwrap();
    let report = connector::run(&config).await;
    assert_eq!((report.delivered, report.failed), (2, 0), "{report:?}");
    assert_eq!(seen.lock().unwrap().len(), 2);

    // Without the CA: the certificate does not verify, and the reason says so.
    config.tls = connector::Tls::default();
    config.max_attempts = 1;
    let report = connector::run(&config).await;
    assert_eq!((report.delivered, report.failed), (0, 2));
    assert_eq!(report.no_answer.len(), 1, "{:?}", report.no_answer);
    let (reason, n) = report.no_answer.iter().next().unwrap();
    assert_eq!(*n, 2);
    let to = format!("{}:{}", url.host().unwrap(), url.port_u16().unwrap());
    assert!(
        reason.starts_with(&format!("TLS to {to}: invalid peer certificate")),
        "{reason}"
    );
    assert!(reason.contains("--ca-cert FILE"), "{reason}");
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "nothing more reached the receiver"
    );

    // A file that is no certificate.
    let error = connector::Tls::default()
        .with_ca_cert(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        .unwrap_err();
    assert!(error.contains("no CERTIFICATE"), "{error}");
}

/// `--body FILE`: the receiver gets those bytes, verified (signed as DT signs).
#[tokio::test]
async fn sends_a_body_of_one_s_own_signed_as_dt_signs() {
    let (url, bodies) = body_receiver(DtSignatureLayer::new(SECRET).require_sha256(true)).await;
    let mut config = fast(url);
    let body = b"{\"event\":{\"eventId\":\"mine\"},\"note\":\"not a sample\"}\n".to_vec();
    config.body = Some(body.clone().into());
    config.count = 2;
    let report = connector::run(&config).await;
    assert_eq!((report.delivered, report.failed), (2, 0), "{report:?}");
    let bodies = bodies.lock().unwrap();
    assert_eq!(bodies.len(), 2);
    assert!(bodies.iter().all(|got| got.as_ref() == body.as_slice()));
}

/// `--duplicates N`: every event arrives N times, the same bytes, each verified.
#[tokio::test]
async fn duplicates_send_each_event_n_times() {
    let (url, bodies) = body_receiver(DtSignatureLayer::new(SECRET)).await;
    let mut config = fast(url);
    config.types = vec![EventType::Touch, EventType::Co2, EventType::Temperature];
    config.duplicates = 3;
    let report = connector::run(&config).await;
    assert_eq!((report.events, report.delivered, report.failed), (3, 3, 0));
    assert_eq!(report.requests, 9);
    let bodies = bodies.lock().unwrap();
    let mut copies: BTreeMap<Bytes, usize> = BTreeMap::new();
    for body in bodies.iter() {
        *copies.entry(body.clone()).or_default() += 1;
    }
    assert_eq!(copies.len(), 3, "three events");
    assert!(copies.values().all(|&n| n == 3), "{:?}", copies.values());
}

/// `--out-of-order`: events of one device and type, distinct ids, their timestamps not
/// in the order they arrive, the newest not last.
#[tokio::test]
async fn out_of_order_sends_one_device_s_events_with_shuffled_timestamps() {
    let (url, seen) = verifying_receiver().await;
    let mut config = fast(url);
    config.types = vec![EventType::Temperature];
    config.count = 5;
    config.out_of_order = true;
    let report = connector::run(&config).await;
    assert_eq!((report.events, report.delivered), (5, 5));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 5);
    let devices: BTreeSet<_> = seen.iter().map(|p| p.event.target_name.clone()).collect();
    assert_eq!(devices.len(), 1, "one device");
    assert!(seen
        .iter()
        .all(|p| p.event.event_type == EventType::Temperature));
    let ids: BTreeSet<_> = seen.iter().map(|p| p.event.event_id.clone()).collect();
    assert_eq!(ids.len(), 5, "distinct event ids");
    let times: Vec<_> = seen.iter().map(|p| p.event.timestamp).collect();
    let mut sorted = times.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "distinct timestamps");
    assert_ne!(times, sorted, "not in order");
    assert_ne!(times.last(), sorted.last(), "the newest is not last");

    // The order itself, for every size.
    for n in 2..10 {
        for _ in 0..20 {
            let ages = connector::shuffled_ages(n);
            let mut all = ages.clone();
            all.sort();
            assert_eq!(all, (0..n as u64).collect::<Vec<_>>());
            assert_ne!(ages.last(), Some(&0), "{ages:?}");
        }
    }
}

#[test]
fn type_arguments() {
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        connector::parse_types(&[]).unwrap(),
        EventType::ALL.to_vec()
    );
    assert_eq!(
        connector::parse_types(&names(&["all"])).unwrap(),
        EventType::ALL.to_vec()
    );
    assert_eq!(
        connector::parse_types(&names(&["co2", " touch", "co2", ""])).unwrap(),
        vec![EventType::Co2, EventType::Touch]
    );
    assert_eq!(
        connector::parse_types(&names(&["touch", "all"]))
            .unwrap()
            .len(),
        19
    );
    assert_eq!(
        connector::parse_types(&names(&["touch", "Touch"])),
        Err("Touch".to_owned())
    );
}

#[test]
fn config_debug_hides_the_secret() {
    let config = Config::new("http://127.0.0.1:1/".parse().unwrap(), "hunter2-secret");
    let shown = format!("{config:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("redacted"));
}

/// `--scheme asymmetric` and `both`: the connector signs with its key, served by the
/// identity server; receivers pin the keys from that server's JWK Set.
mod asymmetric {
    use std::net::SocketAddr;
    use std::path::Path;
    use std::time::Duration;

    use tower_dt_signature::events::EventType;
    use tower_dt_signature::keys::DtKeys;
    use tower_dt_signature::testing::{AsymmetricSigner, IdentityServer};
    use tower_dt_signature::{DtSignatureLayer, Verifier};

    use super::connector::{self, Config, Scheme, Signing, Tamper};
    use super::support::TempDir;
    use super::{
        delivers_every_type_twice, recording_receiver, refuses_every_kind,
        reports_every_kind_accepted, tamper_touch, Seen, SECRET,
    };

    const ORG: &str = "local-org";

    /// What `send` does for the asymmetric schemes: the key from `key_file`, for the
    /// server's issuer and [`ORG`], served by the server.
    fn connector_key(server: &IdentityServer, key_file: &Path) -> (AsymmetricSigner, bool) {
        let (signer, new) = connector::load_key(key_file, server.issuer(), ORG).unwrap();
        server.add_signer(&signer);
        (signer, new)
    }

    /// Pinned keys: the identity server's JWK Set as it stands, for its issuer.
    fn pinned(server: &IdentityServer) -> DtKeys {
        DtKeys::from_jwks(server.issuer(), &server.jwks()).unwrap()
    }

    fn fast(url: http::Uri, signing: Signing) -> Config {
        let mut config = Config::signed(url, signing);
        config.backoff = Duration::from_millis(1);
        config.max_backoff = Duration::from_millis(4);
        config.timeout = Duration::from_secs(5);
        config
    }

    /// A new identity server serving the connector's key, made in a fresh folder `name`.
    async fn keyed(name: &str) -> (TempDir, IdentityServer, AsymmetricSigner) {
        let dir = TempDir::new(name);
        let server = IdentityServer::start().await;
        let (signer, _) = connector_key(&server, &dir.key_file());
        (dir, server, signer)
    }

    /// Tamper mode under `both` (every kind once, on a touch event) against a receiver
    /// behind the layer `receiver` makes for the connector's identity server: the kinds
    /// accepted (sorted), the report, and what the receiver decoded.
    async fn both_tamper_mode(
        name: &str,
        receiver: impl FnOnce(&IdentityServer) -> DtSignatureLayer,
    ) -> (Vec<String>, connector::Report, Seen) {
        let (_dir, server, signer) = keyed(name).await;
        let (url, seen) = recording_receiver(receiver(&server)).await;
        let signing = Signing::Both {
            secret: SECRET.to_owned(),
            signer,
        };
        let mut config = fast(url, signing);
        tamper_touch(&mut config, &Tamper::BOTH);
        let report = connector::run(&config).await;
        let mut accepted = report.tamper_accepted.clone();
        accepted.sort();
        (accepted, report, seen)
    }

    /// The connector, its identity server and its key (in a fresh folder `name`), and a
    /// receiver verifying `scheme` with the server's keys pinned.
    async fn setup(scheme: Scheme, name: &str) -> (Config, Seen, IdentityServer) {
        let (_dir, server, signer) = keyed(name).await;
        let (verifier, signing) = match scheme {
            Scheme::Asymmetric => (
                Verifier::asymmetric(pinned(&server), ORG),
                Signing::Asymmetric { signer },
            ),
            Scheme::Both => (
                Verifier::both(SECRET, pinned(&server), ORG).require_sha256(true),
                Signing::Both {
                    secret: SECRET.to_owned(),
                    signer,
                },
            ),
            Scheme::Hmac => unreachable!("the HMAC tests are above"),
        };
        let verifier = verifier.leeway(Duration::ZERO);
        let (url, seen) = recording_receiver(DtSignatureLayer::from(verifier)).await;
        (fast(url, signing), seen, server)
    }

    async fn delivers_every_event_type(scheme: Scheme) {
        let (config, seen, server) = setup(scheme, "deliver").await;
        delivers_every_type_twice(config, &seen, &scheme.to_string()).await;
        // Pinned keys: the receiver never asked the identity server.
        assert_eq!((server.discovery_count(), server.fetch_count()), (0, 0));
    }

    /// A test per scheme, each `$check(scheme)`.
    macro_rules! per_scheme {
        ($check:ident: $($test:ident => $scheme:expr),+ $(,)?) => {
            $(
                #[tokio::test]
                async fn $test() {
                    $check($scheme).await;
                }
            )+
        };
    }

    per_scheme! { delivers_every_event_type:
        asymmetric_delivers_every_event_type_to_a_pinned_key_receiver => Scheme::Asymmetric,
        both_delivers_every_event_type_to_a_receiver_requiring_both => Scheme::Both,
    }

    async fn tampered_requests_are_refused(scheme: Scheme) {
        let (config, seen, _server) = setup(scheme, "tamper").await;
        let report = refuses_every_kind(config, Tamper::of(scheme)).await;
        assert_eq!(report.transport_errors, 0);
        assert!(
            report
                .statuses
                .keys()
                .all(|status| (400..500).contains(status)),
            "{:?}",
            report.statuses
        );
        assert!(seen.lock().unwrap().is_empty());
    }

    per_scheme! { tampered_requests_are_refused:
        asymmetric_tampered_requests_are_refused => Scheme::Asymmetric,
        both_tampered_requests_are_refused_one_token_at_a_time => Scheme::Both,
    }

    /// `--tamper` with `count` 1 runs every kind of the scheme once per type.
    async fn tamper_runs_every_kind(scheme: Scheme) {
        let (mut config, seen, _server) = setup(scheme, "every-kind").await;
        config.tamper = true;
        config.types = vec![EventType::Touch, EventType::Humidity];
        let report = connector::run(&config).await;
        super::assert_every_kind_listed(&report, Tamper::of(scheme), &config.types);
        assert!(report.ok(true));
        assert!(seen.lock().unwrap().is_empty());
    }

    per_scheme! { tamper_runs_every_kind:
        asymmetric_tamper_runs_every_kind_once_per_type => Scheme::Asymmetric,
        both_tamper_runs_every_kind_once_per_type => Scheme::Both,
    }

    /// A receiver requiring both tokens, sent only X-Dt-Signature: the reason is its
    /// answer, `missing DT-Asymmetric-Signature header`.
    #[tokio::test]
    async fn the_report_says_which_header_is_missing() {
        let (config, _seen, _server) = setup(Scheme::Both, "missing").await;
        let mut config = Config {
            signing: Signing::Hmac {
                secret: SECRET.to_owned(),
            },
            ..config
        };
        config.types = vec![EventType::Touch];
        config.max_attempts = 1;
        let report = connector::run(&config).await;
        assert_eq!(
            report.reasons,
            std::collections::BTreeMap::from([(
                400,
                "missing DT-Asymmetric-Signature header".to_owned()
            )])
        );
    }

    #[test]
    fn tamper_kinds_per_scheme() {
        assert_eq!(Tamper::of(Scheme::Hmac), Tamper::HMAC);
        assert_eq!(Tamper::of(Scheme::Asymmetric).len(), 9);
        // Under both: the changed body, then every HMAC kind and every ES256 kind.
        let both = Tamper::of(Scheme::Both);
        assert_eq!(both.len(), 14);
        for kind in Tamper::HMAC.iter().chain(&Tamper::ASYMMETRIC) {
            assert!(both.contains(kind), "{kind:?}");
        }
    }

    /// Under `both`, every kind but the changed body breaks one token and leaves the other
    /// valid: a receiver that checks only `X-Dt-Signature` lets exactly the broken
    /// asymmetric tokens through, and tamper mode says which.
    #[tokio::test]
    async fn both_tamper_mode_reports_a_receiver_that_checks_only_hmac() {
        let (accepted, report, seen) =
            both_tamper_mode("hmac-only", |_| DtSignatureLayer::new(SECRET)).await;
        let mut expected: Vec<String> = Tamper::ASYMMETRIC[1..]
            .iter()
            .map(|kind| format!("{kind:?} (touch)"))
            .collect();
        expected.sort();
        assert_eq!(accepted, expected);
        assert_eq!(report.tamper_refused, 6); // the changed body and the 5 HMAC kinds
        assert!(!report.ok(true));
        assert_eq!(seen.lock().unwrap().len(), 8);
    }

    /// `Verifier::either` (the migration policy) accepts a request with one valid token and
    /// no other: under `both`, tamper mode reports exactly the two "no token" kinds.
    #[tokio::test]
    async fn both_tamper_mode_against_either_reports_only_a_missing_token() {
        let (accepted, report, _seen) = both_tamper_mode("either", |server| {
            DtSignatureLayer::from(Verifier::either(SECRET, pinned(server), ORG))
        })
        .await;
        assert_eq!(
            accepted,
            ["NoEs256Signature (touch)", "NoSignature (touch)"]
        );
        assert_eq!(report.tamper_refused, 12);
    }

    #[tokio::test]
    async fn asymmetric_tamper_mode_reports_a_receiver_that_accepts_everything() {
        let (_dir, _server, signer) = keyed("open").await;
        let signing = Signing::Asymmetric { signer };
        let report =
            reports_every_kind_accepted(|url| fast(url, signing), &Tamper::ASYMMETRIC).await;
        assert_eq!(report.tamper_accepted.len(), 9);
    }

    /// Two runs of the connector with one key file and one `--identity-addr`: the second
    /// reads the key the first made, so a receiver that pinned the first run's keys (same
    /// issuer, same `kid`) accepts the second run's requests. Another key file is another
    /// key, which that receiver refuses.
    #[tokio::test]
    async fn kid_is_stable_across_runs_with_the_same_key_file() {
        let dir = TempDir::new("stable");
        let key_file = dir.key_file();
        assert!(!key_file.exists());

        // A free port, then the identity server on it, as `--identity-addr` does.
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: SocketAddr = probe.local_addr().unwrap();
        drop(probe);

        // Run 1: a new key, saved; the receiver pins what the server serves.
        let server = IdentityServer::try_start_on(addr).await.unwrap();
        assert_eq!(server.addr(), addr);
        let (first, new) = connector_key(&server, &key_file);
        assert!(new);
        assert!(key_file.exists());
        let keys = pinned(&server);
        assert_eq!(keys.kids(), [first.kid()]);
        let issuer = server.issuer().to_owned();
        server.shutdown().await;

        // Run 2, same address and key file: the same issuer and key.
        let server = IdentityServer::try_start_on(addr).await.unwrap();
        let (second, new) = connector_key(&server, &key_file);
        assert!(!new);
        assert_eq!(second.kid(), first.kid());
        assert_eq!(second.public_key(), first.public_key());
        assert_eq!(server.issuer(), issuer);
        assert_eq!(server.kids(), [first.kid()]);

        let verifier = Verifier::asymmetric(keys.clone(), ORG);
        let (url, seen) = recording_receiver(DtSignatureLayer::from(verifier)).await;
        let mut config = fast(url.clone(), Signing::Asymmetric { signer: second });
        config.types = vec![EventType::Touch, EventType::Temperature];
        let report = connector::run(&config).await;
        assert_eq!((report.delivered, report.failed), (2, 0));
        assert_eq!(seen.lock().unwrap().len(), 2);

        // Another key file: another key and kid, refused by the pinned receiver.
        let (other, new) = connector_key(&server, &dir.join("other.p8"));
        assert!(new);
        assert_ne!(other.kid(), first.kid());
        let mut config = fast(url, Signing::Asymmetric { signer: other });
        config.types = vec![EventType::Touch];
        config.max_attempts = 1;
        let report = connector::run(&config).await;
        assert_eq!((report.delivered, report.failed), (0, 1));
    }

    #[test]
    fn config_debug_hides_the_secret_and_the_key() {
        let signer = AsymmetricSigner::generate();
        let signing = Signing::Both {
            secret: "hunter2-secret".to_owned(),
            signer: signer.clone(),
        };
        let config = Config::signed("http://127.0.0.1:1/".parse().unwrap(), signing);
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains(signer.kid()), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}
