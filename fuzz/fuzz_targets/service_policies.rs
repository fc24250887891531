//! The whole service under each policy (`hmac`, `asymmetric`, `both`, `either`), on an
//! arbitrary header set with both signature headers and an arbitrary chunking of the body.
//!
//! Input: a mode byte, a chunk-size byte, then header lines `name: value\n`, a blank line,
//! the body. Mode bits 0-1: the policy; bit 2: the text of each `X-Dt-Signature` line is
//! taken as `header-json \t claims-json` and signed with the secret; bit 3: the same for
//! each `DT-Asymmetric-Signature` line, signed with the fixed key of bits 4-5 (`fuzz-a`,
//! `fuzz-b`, or `fuzz-outsider`, not in the set); bit 6: the clock of DT's HMAC vectors
//! (2022) rather than of its dev ES256 token (2024).
//!
//! Invariants: nothing panics or hangs; the verdict is the policy table's (`Policy`'s
//! docs) applied to what a lone HMAC and a lone asymmetric verifier say of the same
//! request, the refusal reported included; a forwarded request carries exactly the body
//! bytes and claims of the schemes that verified; a refused one never reaches the inner
//! service and is answered with its status and public text.
#![no_main]

mod common;

use http::HeaderMap;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::Layer;
use tower_dt_signature::consts::{DT_ASYMMETRIC_SIGNATURE, X_DT_SIGNATURE};
use tower_dt_signature::verify::Policy;
use tower_dt_signature::{DtSignatureError, DtSignatureLayer, ErrorKind, Scheme, Verifier};

use common::{at, inner, keys, ready, request, serve, sign_es, sign_hmac, signers};
use common::{split_request, NOW_ES, ORG, SECRET};

/// The clock of DT's HMAC vectors.
const NOW_HMAC: u64 = 1_644_496_933;

fuzz_target!(|data: &[u8]| {
    let [mode, chunk, rest @ ..] = data else {
        return;
    };
    let policy = [
        Policy::Hmac,
        Policy::Asymmetric,
        Policy::Both,
        Policy::Either,
    ][usize::from(mode & 3)];
    let signer = &signers()[usize::from(mode >> 4 & 3) % 3];
    let now = if mode & 64 != 0 { NOW_HMAC } else { NOW_ES };
    let (lines, body) = split_request(rest);
    let lines: Vec<(&[u8], Vec<u8>)> = lines
        .into_iter()
        .map(|(name, value)| {
            let value = if mode & 4 != 0
                && X_DT_SIGNATURE
                    .as_str()
                    .as_bytes()
                    .eq_ignore_ascii_case(name)
            {
                sign_hmac(value).into_bytes()
            } else if mode & 8 != 0
                && DT_ASYMMETRIC_SIGNATURE
                    .as_str()
                    .as_bytes()
                    .eq_ignore_ascii_case(name)
            {
                sign_es(signer, value).into_bytes()
            } else {
                value.to_vec()
            };
            (name, value)
        })
        .collect();
    let Some(request) = request(&lines, body, usize::from(*chunk)) else {
        return;
    };
    let expected = table(policy, request.headers(), body, now);

    let verifier = match policy {
        Policy::Hmac => Verifier::new(SECRET),
        Policy::Asymmetric => Verifier::asymmetric(keys(), ORG),
        Policy::Both => Verifier::both(SECRET, keys(), ORG),
        _ => Verifier::either(SECRET, keys(), ORG),
    };
    let (seen, inner) = inner();
    let mut service = DtSignatureLayer::from(verifier.clock(at(now)))
        .max_body_size(4096)
        .layer(inner);
    let response = serve(&mut service, request);
    let forwarded = seen.lock().unwrap().take();
    match (
        response.extensions().get::<DtSignatureError>().cloned(),
        expected,
    ) {
        (None, Ok(schemes)) => {
            assert_eq!(response.status(), 200);
            let (bytes, claims) = forwarded.expect("an accepted request reached the inner service");
            assert_eq!(bytes, body);
            assert_eq!(claims.expect("claims in the extensions").schemes(), schemes);
        }
        (Some(error), expected) => {
            assert!(
                forwarded.is_none(),
                "a refused request reached the inner service"
            );
            assert_ne!(error.kind(), ErrorKind::KeysUnavailable, "pinned keys");
            assert_eq!(response.status(), error.status());
            if error.kind() != ErrorKind::BodyTooLarge {
                let want = expected.expect_err("the table accepts what the layer refused");
                assert_eq!((error.kind(), error.scheme()), want, "{policy}");
            }
            let text = ready(response.into_body().collect()).unwrap().to_bytes();
            assert_eq!(text, error.to_string());
        }
        (None, Err(want)) => panic!("{policy}: accepted what the table refuses with {want:?}"),
    }
});

/// A refusal as the layer reports it.
type Refusal = (ErrorKind, Option<Scheme>);

/// What a lone verifier of one scheme says of the request.
enum Alone {
    Valid,
    Absent(Refusal),
    /// Refused before the body.
    Invalid(Refusal),
    /// Refused at the body: a checksum mismatch.
    AtBody(Refusal),
}

fn alone(verifier: Verifier, headers: &HeaderMap, body: &[u8], missing: ErrorKind) -> Alone {
    match verifier.verify(headers, body) {
        Ok(_) => Alone::Valid,
        Err(error) if error.kind() == missing => Alone::Absent((error.kind(), error.scheme())),
        Err(error) if error.kind() == ErrorKind::ChecksumMismatch => {
            Alone::AtBody((error.kind(), error.scheme()))
        }
        Err(error) => Alone::Invalid((error.kind(), error.scheme())),
    }
}

/// The policy table (`Policy`'s docs), from the lone verdicts: the schemes that verified,
/// or the refusal reported: the first found, those before the body (in the order HMAC,
/// then ES256) before those the body shows (again HMAC first).
fn table(
    policy: Policy,
    headers: &HeaderMap,
    body: &[u8],
    now: u64,
) -> Result<&'static [Scheme], Refusal> {
    use Alone::{Absent, AtBody, Invalid, Valid};
    let hmac = Verifier::new(SECRET).clock(at(now));
    let hmac = alone(hmac, headers, body, ErrorKind::MissingHeader);
    let es = Verifier::asymmetric(keys(), ORG).clock(at(now));
    let es = alone(es, headers, body, ErrorKind::MissingAsymmetricHeader);
    match (policy, hmac, es) {
        (Policy::Hmac, Valid, _) => Ok(&[Scheme::Hmac]),
        (Policy::Hmac, Absent(refusal) | Invalid(refusal) | AtBody(refusal), _) => Err(refusal),
        (Policy::Asymmetric, _, Valid) => Ok(&[Scheme::Asymmetric]),
        (Policy::Asymmetric, _, Absent(refusal) | Invalid(refusal) | AtBody(refusal)) => {
            Err(refusal)
        }
        // Both: a token absent or invalid before the body, then a mismatch at the body.
        (Policy::Both, Absent(refusal) | Invalid(refusal), _) => Err(refusal),
        (Policy::Both, _, Absent(refusal) | Invalid(refusal)) => Err(refusal),
        (Policy::Both, AtBody(refusal), _) | (Policy::Both, _, AtBody(refusal)) => Err(refusal),
        (Policy::Both, Valid, Valid) => Ok(&[Scheme::Hmac, Scheme::Asymmetric]),
        // Either: any present token invalid before the body, or none present; then a
        // mismatch at the body.
        (_, Invalid(refusal), _) | (_, _, Invalid(refusal)) => Err(refusal),
        (_, Absent(refusal), Absent(_)) => Err(refusal),
        (_, AtBody(refusal), _) | (_, _, AtBody(refusal)) => Err(refusal),
        (_, Valid, Valid) => Ok(&[Scheme::Hmac, Scheme::Asymmetric]),
        (_, Valid, Absent(_)) => Ok(&[Scheme::Hmac]),
        (_, Absent(_), Valid) => Ok(&[Scheme::Asymmetric]),
    }
}
