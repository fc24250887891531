//! The verifier beside the crypto it cannot avoid, on the same bytes.
//!
//! `cargo bench --bench verify` measures, for a 518-byte DT temperature event, a 64 KiB
//! and a 1 MiB body, each signed fresh:
//!
//! - `verifier`: `Verifier::verify(&headers, body)`, everything the layer does per request
//!   apart from buffering (header rules, JOSE header, HMAC, claims, times, both digests,
//!   constant-time comparisons);
//! - `crypto`: HMAC-SHA256 of the token's signing input (keyed state prepared once, as a
//!   verifier may), then SHA-1 and SHA-256 of the body: the work no verifier can skip;
//! - `digests`: SHA-1 and SHA-256 of the body alone;
//! - each primitive on its own, and `jsonwebtoken_verify`: the HMAC check through
//!   `jsonwebtoken::crypto::verify`, which the verifier used before it kept keyed state.
//!
//! It then prints `verifier / crypto` and `verifier / digests` from criterion's medians,
//! and again from interleaved ~2 ms bursts, which other processes' load skews far less
//! (targets: <= 2.0 on the 518-byte event, <= 1.05 x the digests on 1 MiB).
//!
//! `es256/*` (built with the feature `asymmetric` only): the whole ES256 check of a real-size DT request
//! (`Verifier::verify` of a `DT-Asymmetric-Signature` and the 518-byte event,
//! `Policy::Asymmetric`) beside the raw `ring` P-256 verify of the same signing input and
//! signature (`UnparsedPublicKey::verify`, which includes the SHA-256 of the signing
//! input), that SHA-256 alone, and `Policy::Both` (HMAC + ES256). It prints the ratio of
//! the check to the raw verify, from criterion's medians and from interleaved bursts, and,
//! when `openssl` is on the `PATH` (and `OPENSSL_SPEED` is not `0`), the median of three
//! `openssl speed -seconds 3 ecdsap256` runs and the check's ratio to it (target <= 1.25;
//! openssl reports CPU time, criterion wall time).
//!
//! `verify --iterations N [MODE]` runs N checks of the 518-byte event and nothing else,
//! MODE one of `hmac` (the default), `crypto`, `es256`, `either` and `both` (the last three
//! with `asymmetric`): the driver for `valgrind --tool=callgrind --collect-atstart=no
//! --toggle-collect='*measured*'` in BENCHMARKS.md.

#[path = "support/ratio.rs"]
mod ratio;
mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use jsonwebtoken::Algorithm;
use ratio::{interleaved_ratio, median_ns, PAIRS};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use support::dt_token;
use tower_dt_signature::consts::X_DT_SIGNATURE;
use tower_dt_signature::Verifier;
#[cfg(feature = "asymmetric")]
use tower_dt_signature::{
    consts::DT_ASYMMETRIC_SIGNATURE,
    testing::{AsymmetricSigner, Signer},
    verify::Policy,
};

const SECRET: &str = "test-secret";
/// A real DT temperature event body, 518 bytes.
const EVENT: &[u8] = include_bytes!("../tests/data/dt-events/temperature.json");

/// A body of `len` bytes shaped like DT's JSON: the event, then label padding.
fn body_of(len: usize) -> Vec<u8> {
    let mut body = EVENT[..EVENT.len() - 1].to_vec();
    body.extend_from_slice(br#","padding":""#);
    while body.len() < len - 2 {
        body.push(b'x');
    }
    body.extend_from_slice(b"\"}");
    assert_eq!(body.len(), len);
    body
}

struct Case {
    name: &'static str,
    body: Vec<u8>,
}

fn bench(c: &mut Criterion, case: &Case) {
    let body = &case.body[..];
    let token = dt_token(body, 0, SECRET);
    let mut headers = HeaderMap::new();
    headers.insert(X_DT_SIGNATURE, token.parse().unwrap());
    let signing_input = &token[..token.rfind('.').unwrap()];
    let keyed = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    let verifier = Verifier::new(SECRET);
    verifier.verify(&headers, body).expect("the token verifies");

    let mut group = c.benchmark_group(case.name);
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("verifier", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(&headers), black_box(body))
                .unwrap()
        })
    });
    group.bench_function("crypto", |b| {
        b.iter(|| {
            let mut mac = keyed.clone();
            mac.update(black_box(signing_input).as_bytes());
            (
                mac.finalize().into_bytes(),
                Sha1::digest(black_box(body)),
                Sha256::digest(black_box(body)),
            )
        })
    });
    group.bench_function("digests", |b| {
        b.iter(|| {
            (
                Sha1::digest(black_box(body)),
                Sha256::digest(black_box(body)),
            )
        })
    });
    group.bench_function("hmac_sha256", |b| {
        b.iter(|| {
            let mut mac = keyed.clone();
            mac.update(black_box(signing_input).as_bytes());
            mac.finalize().into_bytes()
        })
    });
    // What the verifier used before: jsonwebtoken builds a boxed HMAC verifier, redoes the
    // key schedule and decodes the signature into a `Vec` on every call.
    let decoding_key = jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes());
    let signature = &token[signing_input.len() + 1..];
    group.bench_function("jsonwebtoken_verify", |b| {
        b.iter(|| {
            jsonwebtoken::crypto::verify(
                black_box(signature),
                black_box(signing_input).as_bytes(),
                &decoding_key,
                Algorithm::HS256,
            )
            .unwrap()
        })
    });
    group.bench_function("sha1", |b| b.iter(|| Sha1::digest(black_box(body))));
    group.bench_function("sha256", |b| b.iter(|| Sha256::digest(black_box(body))));
    group.finish();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == "--iterations") {
        let iterations: u64 = args[at + 1].parse().expect("a number of iterations");
        let mode = args.get(at + 2).map_or("hmac", String::as_str);
        drive(mode, iterations);
        return;
    }

    let cases = [
        Case {
            name: "518B",
            body: EVENT.to_vec(),
        },
        Case {
            name: "64KiB",
            body: body_of(64 * 1024),
        },
        Case {
            name: "1MiB",
            body: body_of(1024 * 1024),
        },
    ];
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    for case in &cases {
        bench(&mut criterion, case);
    }
    // Minted just before its benchmarks: an asymmetric token lives 300 s.
    #[cfg(feature = "asymmetric")]
    Es256::new().bench(&mut criterion);
    criterion.final_summary();

    println!(
        "\nratios from criterion's medians (each benchmark ran for 3 s, one after the other):"
    );
    println!(
        "{:>6}  {:>12}  {:>12}  {:>12}  {:>16}  {:>16}",
        "body", "verifier", "crypto", "digests", "verifier/crypto", "verifier/digests"
    );
    for case in &cases {
        let get = |function| median_ns(case.name, function);
        let (Some(verifier), Some(crypto), Some(digests)) =
            (get("verifier"), get("crypto"), get("digests"))
        else {
            println!("{:>6}  (not measured in this run)", case.name);
            continue;
        };
        println!(
            "{:>6}  {:>9.0} ns  {:>9.0} ns  {:>9.0} ns  {:>16.3}  {:>16.3}",
            case.name,
            verifier,
            crypto,
            digests,
            verifier / crypto,
            verifier / digests
        );
    }

    println!(
        "\nratios from interleaved bursts of ~2 ms (median of {PAIRS} pairs; load from other \
         processes falls on both sides):"
    );
    println!(
        "{:>6}  {:>16}  {:>16}",
        "body", "verifier/crypto", "verifier/digests"
    );
    for case in &cases {
        let body = &case.body[..];
        let token = dt_token(body, 0, SECRET);
        let mut headers = HeaderMap::new();
        headers.insert(X_DT_SIGNATURE, token.parse().unwrap());
        let signing_input = &token[..token.rfind('.').unwrap()];
        let keyed = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        let verifier = Verifier::new(SECRET);
        let verify = || {
            black_box(
                verifier
                    .verify(black_box(&headers), black_box(body))
                    .unwrap(),
            );
        };
        let digests = || {
            black_box((
                Sha1::digest(black_box(body)),
                Sha256::digest(black_box(body)),
            ));
        };
        let crypto = || {
            let mut mac = keyed.clone();
            mac.update(black_box(signing_input).as_bytes());
            black_box(mac.finalize().into_bytes());
            digests();
        };
        println!(
            "{:>6}  {:>16.3}  {:>16.3}",
            case.name,
            interleaved_ratio(verify, crypto),
            interleaved_ratio(verify, digests)
        );
    }
    println!("targets: 518B verifier/crypto <= 2.0; 1MiB verifier/digests <= 1.05");

    #[cfg(feature = "asymmetric")]
    Es256::new().report();
    #[cfg(not(feature = "asymmetric"))]
    println!("\nES256 not measured: build with --features test-util,asymmetric");
}

/// `verify --iterations N [MODE]`: N runs of one check of the 518-byte event and nothing
/// else, the driver for `valgrind --tool=callgrind` (see BENCHMARKS.md). Only
/// [`measured`] is to be counted (`--collect-atstart=no --toggle-collect='*measured*'`).
/// MODE: `hmac` (default, `Verifier::new`), `crypto` (the HMAC-SHA256 of the same signing
/// input, keyed state cloned, then SHA-1 and SHA-256 of the body), and with the feature
/// `asymmetric`: `es256` (`Policy::Asymmetric`), `either` and `both` (both tokens sent).
fn drive(mode: &str, iterations: u64) {
    let token = dt_token(EVENT, 0, SECRET);
    let mut headers = HeaderMap::new();
    headers.insert(X_DT_SIGNATURE, token.parse().unwrap());
    let verifier = Verifier::new(SECRET);
    let check: Box<dyn Fn()> = match mode {
        "hmac" => Box::new(|| {
            black_box(
                verifier
                    .verify(black_box(&headers), black_box(EVENT))
                    .unwrap(),
            );
        }),
        "crypto" => {
            let signing_input = token[..token.rfind('.').unwrap()].to_owned();
            let keyed = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            Box::new(move || {
                let mut mac = keyed.clone();
                mac.update(black_box(signing_input.as_bytes()));
                black_box((
                    mac.finalize().into_bytes(),
                    Sha1::digest(black_box(EVENT)),
                    Sha256::digest(black_box(EVENT)),
                ));
            })
        }
        #[cfg(feature = "asymmetric")]
        "es256" | "either" | "both" => {
            let es256 = Es256::new();
            let verifier = match mode {
                "es256" => es256.asymmetric.clone(),
                "both" => es256.both.clone(),
                _ => es256.either.clone(),
            };
            let headers = if mode == "es256" {
                es256.asymmetric_headers.clone()
            } else {
                es256.both_headers.clone()
            };
            Box::new(move || {
                black_box(
                    verifier
                        .verify(black_box(&headers), black_box(EVENT))
                        .unwrap(),
                );
            })
        }
        _ => panic!("unknown mode {mode:?}: hmac, crypto, es256, either or both"),
    };
    check();
    measured(&*check, iterations);
}

/// What callgrind counts: `iterations` runs of `check`.
#[inline(never)]
fn measured(check: &dyn Fn(), iterations: u64) {
    for _ in 0..iterations {
        check();
    }
}

/// The ES256 benchmarks: one signer, its pinned key, a real-size DT request with both tokens.
#[cfg(feature = "asymmetric")]
struct Es256 {
    /// `DT-Asymmetric-Signature` alone.
    asymmetric_headers: HeaderMap,
    /// Both tokens, as a connector with a signature secret sends them.
    both_headers: HeaderMap,
    asymmetric: Verifier,
    both: Verifier,
    either: Verifier,
    public_key: Vec<u8>,
    signing_input: String,
    signature: Vec<u8>,
}

#[cfg(feature = "asymmetric")]
impl Es256 {
    fn new() -> Self {
        use base64::Engine as _;
        let signer = AsymmetricSigner::generate();
        let request = signer
            .request_with_hmac::<axum::body::Bytes>(&Signer::new(SECRET), "/", EVENT.to_vec())
            .unwrap();
        let both_headers = request.headers().clone();
        let mut asymmetric_headers = HeaderMap::new();
        asymmetric_headers.insert(
            DT_ASYMMETRIC_SIGNATURE,
            both_headers[DT_ASYMMETRIC_SIGNATURE].clone(),
        );
        let token = both_headers[DT_ASYMMETRIC_SIGNATURE].to_str().unwrap();
        let dot = token.rfind('.').unwrap();
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&token[dot + 1..])
            .unwrap();
        let es256 = Self {
            asymmetric: Verifier::asymmetric(signer.dt_keys(), signer.org_id()),
            both: Verifier::both(SECRET, signer.dt_keys(), signer.org_id()),
            either: Verifier::either(SECRET, signer.dt_keys(), signer.org_id()),
            public_key: signer.public_key().to_vec(),
            signing_input: token[..dot].to_owned(),
            signature,
            asymmetric_headers,
            both_headers,
        };
        assert_eq!(es256.asymmetric.policy(), Policy::Asymmetric);
        assert_eq!(es256.both.policy(), Policy::Both);
        es256.check();
        es256.ring_verify();
        es256
    }

    /// `Verifier::verify`, `Policy::Asymmetric`.
    fn check(&self) -> tower_dt_signature::DtClaims {
        self.asymmetric
            .verify(black_box(&self.asymmetric_headers), black_box(EVENT))
            .unwrap()
    }

    /// `Verifier::verify`, `Policy::Both`.
    fn check_both(&self) -> tower_dt_signature::DtClaims {
        self.both
            .verify(black_box(&self.both_headers), black_box(EVENT))
            .unwrap()
    }

    /// `Verifier::verify`, `Policy::Either`, both tokens sent.
    fn check_either(&self) -> tower_dt_signature::DtClaims {
        self.either
            .verify(black_box(&self.both_headers), black_box(EVENT))
            .unwrap()
    }

    /// The raw P-256 verify of the same signing input and signature (SHA-256 included).
    fn ring_verify(&self) {
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            black_box(&self.public_key[..]),
        )
        .verify(
            black_box(self.signing_input.as_bytes()),
            black_box(&self.signature),
        )
        .unwrap()
    }

    fn bench(&self, c: &mut Criterion) {
        let mut group = c.benchmark_group("es256");
        group.bench_function("verifier_asymmetric", |b| b.iter(|| self.check()));
        group.bench_function("ring_verify", |b| b.iter(|| self.ring_verify()));
        group.bench_function("sha256_signing_input", |b| {
            b.iter(|| Sha256::digest(black_box(self.signing_input.as_bytes())))
        });
        group.bench_function("verifier_both", |b| b.iter(|| self.check_both()));
        group.bench_function("verifier_either", |b| b.iter(|| self.check_either()));
        group.finish();
    }

    fn report(&self) {
        println!("\nES256, 518-byte event (`es256/*`):");
        let get = |function| median_ns("es256", function);
        if let (Some(check), Some(ring), Some(sha), Some(both), Some(either)) = (
            get("verifier_asymmetric"),
            get("ring_verify"),
            get("sha256_signing_input"),
            get("verifier_both"),
            get("verifier_either"),
        ) {
            println!(
                "  criterion medians: check {:.1} us, ring verify {:.1} us (SHA-256 of the \
                 signing input {:.0} ns), both {:.1} us",
                check / 1e3,
                ring / 1e3,
                sha,
                both / 1e3
            );
            println!(
                "  check / ring verify {:.3}; both / ring verify {:.3}; either (both tokens) / \
                 ring verify {:.3}",
                check / ring,
                both / ring,
                either / ring
            );
        }
        let check = || {
            black_box(self.check());
        };
        let ring = || self.ring_verify();
        println!(
            "  interleaved: check / ring verify {:.3}",
            interleaved_ratio(check, ring)
        );
        let Some(check_ns) = get("verifier_asymmetric") else {
            return;
        };
        match openssl_p256_verify_us() {
            Some((runs, median)) => println!(
                "  openssl speed -seconds 3 ecdsap256, verify: {} us (median of {runs:.1?}, CPU \
                 time); check / openssl {:.3} (target <= 1.25)",
                format_args!("{median:.1}"),
                check_ns / 1e3 / median
            ),
            None => println!("  (openssl speed not run: no openssl, or OPENSSL_SPEED=0)"),
        }
    }
}

/// Three runs of `openssl speed -seconds 3 ecdsap256`: the verify times in microseconds
/// and their median. `None` without `openssl` or with `OPENSSL_SPEED=0`.
#[cfg(feature = "asymmetric")]
fn openssl_p256_verify_us() -> Option<(Vec<f64>, f64)> {
    if std::env::var_os("OPENSSL_SPEED").is_some_and(|value| value == "0") {
        return None;
    }
    let mut runs = Vec::new();
    for _ in 0..3 {
        let output = std::process::Command::new("openssl")
            .args(["speed", "-seconds", "3", "ecdsap256"])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        // ` 256 bits ecdsa (nistp256)   0.0000s   0.0001s  41671.8  12811.0`
        let text = String::from_utf8_lossy(&output.stdout);
        let line = text.lines().find(|line| line.contains("(nistp256)"))?;
        let verifies_per_s: f64 = line.split_whitespace().last()?.parse().ok()?;
        runs.push(1e6 / verifies_per_s);
    }
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    Some((runs, sorted[1]))
}
