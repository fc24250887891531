//! The tenant oracle of a gateway, measured: how much longer a known tenant takes than an
//! unknown one to refuse the same forged request (issue 17, §1). Release mode only.
//!
//! `cargo bench --features test-util,asymmetric --bench gateway` runs, for each policy, a
//! gateway (`StaticSecrets` by path segment) with one known tenant of that policy and
//! `DtSignatureLayer::decoy(Decoy::new(policy, keys))`, and sends the same request to the
//! known tenant and to an unknown one through the whole service (`oneshot`, the future
//! driven at once), for each token shape a prober can send without a secret:
//!
//! - `dt_kid`: a `DT-Asymmetric-Signature` under DT's public `kid`, forged signature;
//! - `made_up_kid`: the same under a `kid` not in the key set (pinned keys: no refresh);
//! - `hmac_only`: an `X-Dt-Signature` signed with another secret;
//! - `both`: both headers, as DT sends them, both forged.
//!
//! Then, with no `.decoy(...)` line (#24): `default_{policy}`, a `StaticSecrets` of two
//! tenants of one policy and key set, whose decoy follows them; `custom_{policy}`, a
//! resolver of its own that names its decoy (`ResolveSecrets::decoy`); and a mixed
//! `StaticSecrets` (two `either` tenants, one `asymmetric`, one `hmac`), whose decoy is the
//! majority's: `mixed_either_tenant` is within 1.2x, `mismatch_mixed_*` show the other
//! tenants, as SECURITY.md's rule says. Last `mismatch_hmac_tenant_either_decoy`: an
//! `hmac` tenant beside an explicit `either` decoy. It prints known / unknown per case,
//! from criterion's medians and from interleaved bursts (goal: within 1.2x).
//!
//! `GATEWAY_CASES=default_,custom_` runs only the groups whose names hold one of those
//! texts; `-- --quick` (criterion's flag) for a short run.

#[path = "support/ratio.rs"]
mod ratio;

use std::collections::HashMap;
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::Criterion;
use futures_util::FutureExt as _;
use http::request::Parts;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, Service, ServiceExt};
use tower_dt_signature::consts::{DT_ASYMMETRIC_SIGNATURE, X_DT_SIGNATURE};
use tower_dt_signature::gateway::{Decoy, ResolveError, ResolveSecrets, StaticSecrets, Tenant};
use tower_dt_signature::keys::DtKeys;
use tower_dt_signature::testing::{AsymmetricSigner, Signer};
use tower_dt_signature::verify::Policy;
use tower_dt_signature::{DtBody, DtSignatureLayer, Verifier};

use ratio::{interleaved_ratio, median_ns, PAIRS};

const SECRET: &str = "connector secret";
const ORG: &str = "c0rg1d0000000000000a";
/// A real DT temperature event body, 518 bytes.
const EVENT: &[u8] = include_bytes!("../tests/data/dt-events/temperature.json");

/// The token shapes: (name, headers).
fn shapes(dt: &AsymmetricSigner) -> Vec<(&'static str, HeaderMap)> {
    let forged_es = AsymmetricSigner::generate()
        .with_issuer(dt.issuer())
        .with_org_id(ORG)
        .with_kid(dt.kid())
        .sign(EVENT);
    let made_up = AsymmetricSigner::generate()
        .with_issuer(dt.issuer())
        .with_org_id(ORG)
        .with_kid("made-up-kid")
        .sign(EVENT);
    let forged_hmac = Signer::new("another secret").sign(EVENT);
    let headers = |hmac: Option<&str>, es: Option<&str>| {
        let mut headers = HeaderMap::new();
        if let Some(token) = hmac {
            headers.insert(X_DT_SIGNATURE, token.parse().unwrap());
        }
        if let Some(token) = es {
            headers.insert(DT_ASYMMETRIC_SIGNATURE, token.parse().unwrap());
        }
        headers
    };
    vec![
        ("dt_kid", headers(None, Some(&forged_es))),
        ("made_up_kid", headers(None, Some(&made_up))),
        ("hmac_only", headers(Some(&forged_hmac), None)),
        ("both", headers(Some(&forged_hmac), Some(&forged_es))),
    ]
}

fn verifier(policy: Policy, keys: &DtKeys) -> Verifier {
    match policy {
        Policy::Hmac => Verifier::new(SECRET),
        Policy::Asymmetric => Verifier::asymmetric(keys.clone(), ORG),
        Policy::Both => Verifier::both(SECRET, keys.clone(), ORG),
        Policy::Either => Verifier::either(SECRET, keys.clone(), ORG),
        _ => unreachable!("the four policies"),
    }
}

type Inner = tower::util::ServiceFn<
    fn(Request<DtBody>) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>,
>;

fn inner() -> Inner {
    fn answer(_: Request<DtBody>) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>> {
        std::future::ready(Ok(Response::new(Full::default())))
    }
    tower::service_fn(answer as fn(_) -> _)
}

/// One gateway request to `uri` with `headers`: the whole service, refused at once.
fn send<S>(service: &S, uri: &str, headers: &HeaderMap)
where
    S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone,
{
    let mut request = Request::post(uri)
        .body(Full::new(Bytes::from_static(EVENT)))
        .unwrap();
    *request.headers_mut() = headers.clone();
    let response = service
        .clone()
        .oneshot(request)
        .now_or_never()
        .expect("decided without waiting")
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    black_box(response);
}

/// A case: its group, shape, the known tenant's path, and one request of that shape
/// through the case's service to a path.
struct Case {
    group: String,
    shape: &'static str,
    known: &'static str,
    send: Box<dyn Fn(&str)>,
}

/// The cases of `service` under `group`, one per token shape, `known` the known tenant's
/// path.
fn cases_of<S>(
    cases: &mut Vec<Case>,
    group: String,
    known: &'static str,
    service: S,
    dt: &AsymmetricSigner,
) where
    S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = Infallible>
        + Clone
        + 'static,
{
    for (shape, headers) in shapes(dt) {
        let service = service.clone();
        cases.push(Case {
            group: group.clone(),
            shape,
            known,
            send: Box::new(move |uri| send(&service, uri, &headers)),
        });
    }
}

/// A resolver of a user's own: tenants in a map by the path's second segment, and the
/// decoy it names ([`ResolveSecrets::decoy`]).
#[derive(Clone)]
struct Custom {
    tenants: Arc<HashMap<String, Verifier>>,
    decoy: Decoy,
}

impl ResolveSecrets for Custom {
    type Future = std::future::Ready<Result<Option<Tenant>, ResolveError>>;

    fn resolve(&self, parts: &Parts) -> Self::Future {
        let id = parts.uri.path().split('/').nth(2).unwrap_or_default();
        let tenant = self
            .tenants
            .get(id)
            .map(|verifier| Tenant::new(id, verifier.clone()));
        std::future::ready(Ok(tenant))
    }

    fn decoy(&self) -> Option<Decoy> {
        Some(self.decoy.clone())
    }
}

const POLICIES: [Policy; 4] = [
    Policy::Hmac,
    Policy::Asymmetric,
    Policy::Both,
    Policy::Either,
];

fn main() {
    let dt = AsymmetricSigner::generate()
        .with_issuer("https://identity.example/data-connector")
        .with_org_id(ORG);
    let keys = DtKeys::from_jwks(dt.issuer(), &dt.jwks()).unwrap();
    let mut cases = Vec::new();
    // The decoy set explicitly, one tenant (#17).
    for policy in POLICIES {
        let secrets = StaticSecrets::by_path_segment(1).tenant("known", verifier(policy, &keys));
        let service = DtSignatureLayer::gateway(secrets)
            .decoy(Decoy::new(policy, keys.clone()))
            .layer(inner());
        cases_of(
            &mut cases,
            format!("gateway_{policy}"),
            "/dt/known",
            service,
            &dt,
        );
    }
    // The default (#24): two tenants of one policy and key set, no `.decoy(...)` line.
    for policy in [Policy::Asymmetric, Policy::Both, Policy::Either] {
        let secrets = StaticSecrets::by_path_segment(1)
            .tenant("known", verifier(policy, &keys))
            .tenant("other", verifier(policy, &keys));
        let service = DtSignatureLayer::gateway(secrets).layer(inner());
        cases_of(
            &mut cases,
            format!("default_{policy}"),
            "/dt/known",
            service,
            &dt,
        );
    }
    // A resolver of its own that names its decoy (#24).
    for policy in [Policy::Asymmetric, Policy::Both, Policy::Either] {
        let tenants = ["known", "other"].map(|id| (id.to_owned(), verifier(policy, &keys)));
        let resolver = Custom {
            tenants: Arc::new(tenants.into_iter().collect()),
            decoy: Decoy::new(policy, keys.clone()),
        };
        let service = DtSignatureLayer::gateway(resolver).layer(inner());
        cases_of(
            &mut cases,
            format!("custom_{policy}"),
            "/dt/known",
            service,
            &dt,
        );
    }
    // A mixed gateway, no `.decoy(...)` line (#24): two `either` tenants (the majority,
    // whose decoy unknown tenants get), an `asymmetric` one and an `hmac` one.
    let secrets = StaticSecrets::by_path_segment(1)
        .tenant("either-1", verifier(Policy::Either, &keys))
        .tenant("either-2", verifier(Policy::Either, &keys))
        .tenant("asymmetric", verifier(Policy::Asymmetric, &keys))
        .tenant("hmac", verifier(Policy::Hmac, &keys));
    let service = DtSignatureLayer::gateway(secrets).layer(inner());
    for (group, known) in [
        ("mixed_either_tenant", "/dt/either-1"),
        ("mismatch_mixed_asymmetric_tenant", "/dt/asymmetric"),
        ("mismatch_mixed_hmac_tenant", "/dt/hmac"),
    ] {
        cases_of(&mut cases, group.into(), known, service.clone(), &dt);
    }
    // An `hmac` tenant in a gateway whose decoy does the work of its `either` tenants.
    let secrets = StaticSecrets::by_path_segment(1).tenant("known", verifier(Policy::Hmac, &keys));
    let service = DtSignatureLayer::gateway(secrets)
        .decoy(Decoy::new(Policy::Either, keys.clone()))
        .layer(inner());
    cases_of(
        &mut cases,
        "mismatch_hmac_tenant_either_decoy".into(),
        "/dt/known",
        service,
        &dt,
    );

    // `GATEWAY_CASES=default_` runs only the groups whose name holds that text.
    if let Ok(only) = std::env::var("GATEWAY_CASES") {
        cases.retain(|case| only.split(',').any(|only| case.group.contains(only)));
    }

    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    for case in &cases {
        let mut group = criterion.benchmark_group(&case.group);
        for (tenant, uri) in [("known", case.known), ("unknown", "/dt/nobody")] {
            group.bench_function(format!("{}_{tenant}", case.shape), |b| {
                b.iter(|| (case.send)(uri))
            });
        }
        group.finish();
    }
    criterion.final_summary();

    println!(
        "\nknown / unknown tenant: criterion medians; interleaved bursts (median of {PAIRS} pairs)"
    );
    println!(
        "{:<36} {:<12} {:>9} {:>9} {:>8}",
        "group", "shape", "known us", "medians", "bursts"
    );
    for case in &cases {
        let median = |tenant: &str| median_ns(&case.group, &format!("{}_{tenant}", case.shape));
        let (known, unknown) = (median("known"), median("unknown"));
        let bursts = interleaved_ratio(|| (case.send)(case.known), || (case.send)("/dt/nobody"));
        println!(
            "{:<36} {:<12} {:>9} {:>9} {:>8.2}",
            case.group,
            case.shape,
            known.map_or("-".into(), |ns| format!("{:.1}", ns / 1000.0)),
            known
                .zip(unknown)
                .map_or("-".into(), |(k, u)| format!("{:.2}", k / u)),
            bursts
        );
    }
}
