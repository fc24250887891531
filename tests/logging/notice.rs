//! The first refusal of each configuration kind (`WrongOrganization`, `UnknownKey` against
//! a current key set, `WrongIssuer`) is logged at warn level with what was expected and
//! what came; later ones at debug level, until 10 minutes of the verifier's clock have
//! passed. Never a token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use http::HeaderMap;

use tower_dt_signature::testing::{AsymmetricSignOptions, AsymmetricSigner};
use tower_dt_signature::{DtSignatureError, ErrorKind, Verifier};

use crate::support::*;

const BODY: &[u8] = br#"{"event":{"eventId":"c82gg9catj3vmh4248og"}}"#;
const ORG: &str = "c0rg1d0000000000000a";
const OTHER_ORG: &str = "c0rg1d0000000000000b";
const ORG_MISMATCH: &str = "token organization mismatch;";

/// A clock the test moves: the verifier's.
#[derive(Clone, Default)]
struct Clock(Arc<AtomicU64>);

impl Clock {
    fn set(&self, secs: u64) {
        self.0.store(secs, Ordering::SeqCst);
    }

    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn verifier(signer: &AsymmetricSigner, org: &str, clock: &Clock) -> Verifier {
    let clock = clock.clone();
    Verifier::asymmetric(signer.dt_keys(), org)
        .clock(move || UNIX_EPOCH + Duration::from_secs(clock.now()))
}

/// The request a signer makes with `options`, issued at the clock's time.
fn headers(signer: &AsymmetricSigner, clock: &Clock, options: AsymmetricSignOptions) -> HeaderMap {
    let token = signer.sign_with(BODY, &options.iat(clock.now()));
    let mut headers = HeaderMap::new();
    headers.insert("dt-asymmetric-signature", token.parse().unwrap());
    headers
}

/// The level of each notice line with `needle`, in order.
fn levels<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|line| line.contains(needle))
        .map(|line| {
            ["WARN", "DEBUG"]
                .into_iter()
                .find(|level| line.contains(level))
                .unwrap_or_else(|| panic!("no level: {line}"))
        })
        .collect()
}

#[test]
fn first_wrong_organization_warns_then_debug_until_ten_minutes_later() {
    let signer = AsymmetricSigner::generate().with_org_id(OTHER_ORG);
    let clock = Clock::default();
    clock.set(NOW);
    // The API form configured: the line shows the bare id it compares.
    let verifier = verifier(&signer, &format!("organizations/{ORG}"), &clock);
    let mut seen = Vec::new();
    let ((), log) = capture_logs(|| {
        // The first, then a clone's (the clones share "first"), then just before and at
        // 10 minutes after the first warning, then a second before the next 10 minutes.
        for (offset, verifier) in [
            (0, verifier.clone()),
            (1, verifier.clone()),
            (599, verifier.clone()),
            (600, verifier.clone()),
            (1199, verifier.clone()),
        ] {
            clock.set(NOW + offset);
            let headers = headers(&signer, &clock, AsymmetricSignOptions::new());
            seen.push(
                headers["dt-asymmetric-signature"]
                    .to_str()
                    .unwrap()
                    .to_owned(),
            );
            let error = verifier.verify(&headers, BODY).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::WrongOrganization, "+{offset} s");
        }
    });
    assert_eq!(
        levels(&log, ORG_MISMATCH),
        ["WARN", "DEBUG", "DEBUG", "WARN", "DEBUG"],
        "{log}"
    );
    for line in log.lines().filter(|line| line.contains(ORG_MISMATCH)) {
        assert!(
            line.contains(&format!("expected=\"{ORG}\""))
                && line.contains(&format!("token_sub=Some(\"{OTHER_ORG}\")")),
            "{line}"
        );
    }
    let tokens: Vec<&str> = seen.iter().map(String::as_str).collect();
    assert_nothing_secret(&log, &[], &tokens, BODY);
}

/// "First" is per verifier: another verifier warns on its own first refusal, at the same
/// time; each kind has its own first; each line names what was expected and what came.
#[test]
fn each_kind_and_each_verifier_has_its_own_first() {
    let signer = AsymmetricSigner::generate().with_org_id(ORG);
    let clock = Clock::default();
    clock.set(NOW);
    let first = verifier(&signer, ORG, &clock);
    let second = verifier(&signer, ORG, &clock);
    let wrong_org = || AsymmetricSignOptions::new().org_id(OTHER_ORG);
    let unknown_kid = || AsymmetricSignOptions::new().kid("cp65gdon1e4bhb5icbmg");
    let wrong_issuer = || AsymmetricSignOptions::new().issuer("https://identity.example/dc/");
    let ((), log) = capture_logs(|| {
        for (verifier, options, kind) in [
            (&first, wrong_org(), ErrorKind::WrongOrganization),
            (&second, wrong_org(), ErrorKind::WrongOrganization),
            (&first, unknown_kid(), ErrorKind::UnknownKey),
            (&first, unknown_kid(), ErrorKind::UnknownKey),
            (&first, wrong_issuer(), ErrorKind::WrongIssuer),
            (&first, wrong_issuer(), ErrorKind::WrongIssuer),
            (&first, wrong_org(), ErrorKind::WrongOrganization),
        ] {
            let headers = headers(&signer, &clock, options);
            assert_eq!(verifier.verify(&headers, BODY).unwrap_err().kind(), kind);
        }
    });
    assert_eq!(
        levels(&log, ORG_MISMATCH),
        ["WARN", "WARN", "DEBUG"],
        "{log}"
    );
    assert_eq!(
        levels(&log, "unknown signing key"),
        ["WARN", "DEBUG"],
        "{log}"
    );
    assert_eq!(
        levels(&log, "token issuer mismatch;"),
        ["WARN", "DEBUG"],
        "{log}"
    );
    let line = |needle: &str| log.lines().find(|line| line.contains(needle)).unwrap();
    let unknown = line("unknown signing key");
    assert!(
        unknown.contains("kid=\"cp65gdon1e4bhb5icbmg\"")
            && unknown.contains(&format!("loaded=[\"{}\"]", signer.kid()))
            && unknown.contains(&format!("issuer=\"{}\"", signer.issuer())),
        "{unknown}"
    );
    let issuer = line("token issuer mismatch;");
    assert!(
        issuer.contains(&format!("expected=\"{}\"", signer.issuer()))
            && issuer.contains("token_iss=Some(\"https://identity.example/dc/\")"),
        "{issuer}"
    );
}

/// A gateway's decoy logs its refusals at debug level only: a genuine DT token of another
/// organization, or a made-up `kid`, at an unknown tenant is no tenant's mistake, and its
/// line would name the decoy's made-up organization. The same requests at a known tenant
/// warn (what the decoy's notices would do, were they not quiet).
#[test]
fn a_gateway_decoy_never_warns() {
    use bytes::Bytes;
    use http::Request;
    use http_body_util::Full;
    use tower::Layer as _;
    use tower_dt_signature::gateway::{Decoy, StaticSecrets};
    use tower_dt_signature::verify::Policy;
    use tower_dt_signature::DtSignatureLayer;

    const UNKNOWN_KEY: &str = "unknown signing key, and";
    let dt = AsymmetricSigner::generate().with_org_id(OTHER_ORG);
    // The decoy reads the system clock, as tenants do outside tests.
    let clock = Clock::default();
    clock.set(
        std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    );
    let secrets = StaticSecrets::by_path_segment(1).tenant("known", verifier(&dt, ORG, &clock));
    let layer =
        DtSignatureLayer::gateway(secrets).decoy(Decoy::new(Policy::Asymmetric, dt.dt_keys()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let send = |uri: &str, headers: HeaderMap| {
        let recorder = Recorder::default();
        let mut request = Request::post(uri)
            .body(Full::new(Bytes::from_static(BODY)))
            .unwrap();
        *request.headers_mut() = headers;
        let response = runtime.block_on(call(&layer.layer(recorder.clone()), request));
        assert_eq!(response.status(), 400, "{uri}");
        assert_eq!(recorder.calls(), 0, "{uri}: the inner service was called");
        let error = response.extensions().get::<DtSignatureError>().unwrap();
        error.kind()
    };
    let genuine = || headers(&dt, &clock, AsymmetricSignOptions::new());
    let made_up = || headers(&dt, &clock, AsymmetricSignOptions::new().kid("made-up-kid"));

    let ((), log) = capture_logs(|| {
        assert_eq!(send("/dt/nobody", genuine()), ErrorKind::UnknownTenant);
        assert_eq!(send("/dt/nobody", made_up()), ErrorKind::UnknownTenant);
    });
    assert_eq!(levels(&log, ORG_MISMATCH), ["DEBUG"], "{log}");
    assert_eq!(levels(&log, UNKNOWN_KEY), ["DEBUG"], "{log}");
    assert!(!log.contains("WARN"), "{log}");

    let ((), log) = capture_logs(|| {
        assert_eq!(send("/dt/known", genuine()), ErrorKind::WrongOrganization);
        assert_eq!(send("/dt/known", made_up()), ErrorKind::UnknownKey);
    });
    assert_eq!(levels(&log, ORG_MISMATCH), ["WARN"], "{log}");
    assert_eq!(levels(&log, UNKNOWN_KEY), ["WARN"], "{log}");
}
