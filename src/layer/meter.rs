//! What the layers report through the `metrics` facade (feature `metrics`); without the
//! feature [`Meter`] is an empty type and every call compiles to nothing.
//!
//! | name | type | labels | recorded |
//! | --- | --- | --- | --- |
//! | `dt_signature_requests_total` | counter | `outcome` = `accepted`, `rejected`, `reported`; `kind` = [`ErrorKind::code`] or `none`; `scheme` = the verified schemes when accepted (`hmac`, `asymmetric`, `both`), else the refused token's ([`Scheme::code`], `none` for the body or the tenant lookup) | once per request |
//! | `dt_signature_body_bytes` | histogram | - | once per body read to its end |
//! | `dt_signature_verification_seconds` | histogram | - | once per request whose token was checked: the time spent checking the token, hashing the body and comparing the checksums (not the time waiting for body bytes) |
//! | `dt_signature_signing_lag_seconds` | histogram | - | once per accepted request with a verified `DT-Asymmetric-Signature`: the layer's clock when it checked the token minus the token's `iat`, in whole seconds (an `iat` ahead within the leeway gives 0) |
//!
//! The signing lag is recorded here, in the layer, because only the layer holds both the
//! verified token and the clock its time checks read (`DtSignatureLayer::clock`): every
//! receiver gets it, with or without a store, and only for tokens that verified.

use crate::claims::DtClaims;
use crate::error::{DtSignatureError, Scheme};
use crate::verify::Verifier;

/// The counter of requests, by `outcome` and `kind`.
#[cfg(feature = "metrics")]
pub(crate) const REQUESTS: &str = "dt_signature_requests_total";
/// The histogram of body sizes in bytes.
#[cfg(feature = "metrics")]
pub(crate) const BODY_BYTES: &str = "dt_signature_body_bytes";
/// The histogram of verification times in seconds.
#[cfg(feature = "metrics")]
pub(crate) const VERIFICATION_SECONDS: &str = "dt_signature_verification_seconds";

/// The histogram of signing lags (now minus the ES256 token's `iat`) in whole seconds.
#[cfg(feature = "metrics")]
pub(crate) const SIGNING_LAG_SECONDS: &str = "dt_signature_signing_lag_seconds";

/// Describes every metric of the library (the `# HELP` line of an exporter): the layer's,
/// the key refresh's and the duplicate guard's.
#[cfg(feature = "metrics")]
pub(crate) fn describe() {
    use metrics::Unit;
    metrics::describe_counter!(
        REQUESTS,
        "Requests seen by DtSignatureLayer, by outcome, error kind and scheme"
    );
    metrics::describe_histogram!(
        BODY_BYTES,
        Unit::Bytes,
        "Sizes of the bodies DtSignatureLayer read to their end"
    );
    metrics::describe_histogram!(
        VERIFICATION_SECONDS,
        Unit::Seconds,
        "Time spent checking tokens, hashing bodies and comparing checksums"
    );
    metrics::describe_histogram!(
        SIGNING_LAG_SECONDS,
        Unit::Seconds,
        "Accepted DT-Asymmetric-Signature requests: now minus the token's iat, whole seconds"
    );
    metrics::describe_counter!(
        "dt_signature_jwks_fetches_total",
        "Key set refreshes, by outcome (ok or the failure's class)"
    );
    metrics::describe_gauge!(
        "dt_signature_jwks_last_success_timestamp_seconds",
        Unit::Seconds,
        "Unix time of the last successful key set refresh, by issuer"
    );
    metrics::describe_counter!(
        "dt_dedup_evictions_total",
        "Done marks the in-memory duplicate guard evicted"
    );
}

/// Measures one request: the verification time so far, and its outcome once known.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    #[cfg(feature = "metrics")]
    spent: Option<std::time::Duration>,
    /// The verifier's clock when it checked the token: the "now" of the signing lag.
    #[cfg(feature = "metrics")]
    checked_at: Option<std::time::SystemTime>,
}

impl Meter {
    /// The token is about to be checked by `verifier`: read its clock once.
    #[inline]
    pub(crate) fn checking_at(&mut self, verifier: &Verifier) {
        #[cfg(feature = "metrics")]
        {
            self.checked_at = Some(verifier.now());
        }
        #[cfg(not(feature = "metrics"))]
        let _ = verifier;
    }

    /// Run `work`, counting its time as verification time.
    #[inline]
    pub(crate) fn timed<T>(&mut self, work: impl FnOnce() -> T) -> T {
        #[cfg(feature = "metrics")]
        {
            let start = std::time::Instant::now();
            let result = work();
            *self.spent.get_or_insert_default() += start.elapsed();
            result
        }
        #[cfg(not(feature = "metrics"))]
        work()
    }

    /// The body was read to its end: `len` bytes.
    #[inline]
    pub(crate) fn body_size(&self, len: usize) {
        #[cfg(feature = "metrics")]
        metrics::histogram!(BODY_BYTES).record(len as f64);
        #[cfg(not(feature = "metrics"))]
        let _ = len;
    }

    /// The request was verified (`claims`) and forwarded.
    #[inline]
    pub(crate) fn accepted(self, claims: &DtClaims) {
        #[cfg(feature = "metrics")]
        if let (Some(iat), Some(now)) = (claims.asymmetric_iat(), self.checked_at) {
            metrics::histogram!(SIGNING_LAG_SECONDS).record(signing_lag(now, iat) as f64);
        }
        self.finish("accepted", Err(claims.schemes()));
    }

    /// The request was refused.
    #[inline]
    pub(crate) fn rejected(self, error: &DtSignatureError) {
        self.finish("rejected", Ok(error));
    }

    /// The request failed verification and was forwarded anyway (report-only mode).
    #[inline]
    pub(crate) fn reported(self, error: &DtSignatureError) {
        self.finish("reported", Ok(error));
    }

    /// `Ok(error)` for a failure, `Err(schemes)` for a success.
    #[inline]
    fn finish(self, outcome: &'static str, result: Result<&DtSignatureError, &[Scheme]>) {
        #[cfg(feature = "metrics")]
        {
            count_request(outcome, result);
            if let Some(spent) = self.spent {
                metrics::histogram!(VERIFICATION_SECONDS).record(spent.as_secs_f64());
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (self, outcome, result);
    }
}

/// `now` minus `iat` in whole seconds; 0 for an `iat` ahead (within the leeway, or the
/// token would not have verified).
#[cfg(feature = "metrics")]
fn signing_lag(now: std::time::SystemTime, iat: u64) -> u64 {
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs().saturating_sub(iat))
}

#[cfg(feature = "metrics")]
const fn labels(
    outcome: &'static str,
    kind: &'static str,
    scheme: &'static str,
) -> [metrics::Label; 3] {
    [
        metrics::Label::from_static_parts("outcome", outcome),
        metrics::Label::from_static_parts("kind", kind),
        metrics::Label::from_static_parts("scheme", scheme),
    ]
}

/// The `scheme` label of a refusal: `none`, `hmac`, `asymmetric`, indexed by
/// [`scheme_index`].
#[cfg(feature = "metrics")]
fn scheme_index(scheme: Option<Scheme>) -> usize {
    match scheme {
        None => 0,
        Some(Scheme::Hmac) => 1,
        Some(Scheme::Asymmetric) => 2,
    }
}

/// The static label sets of every kind and scheme, indexed by `[kind as usize]
/// [scheme_index]`, generated from the one table of kinds in `error.rs`.
#[cfg(feature = "metrics")]
macro_rules! label_tables {
    ($(
        $(#[doc = $doc:literal])*
        $kind:ident => ($code:literal, $text:literal, $status:ident $(, public = $public:literal)?),
    )*) => {
        static REJECTED: &[[[metrics::Label; 3]; 3]] = &[$([
            labels("rejected", $code, "none"),
            labels("rejected", $code, "hmac"),
            labels("rejected", $code, "asymmetric"),
        ]),*];
        static REPORTED: &[[[metrics::Label; 3]; 3]] = &[$([
            labels("reported", $code, "none"),
            labels("reported", $code, "hmac"),
            labels("reported", $code, "asymmetric"),
        ]),*];
    };
}

// Static keys: counting a request allocates nothing, as the `counter!` macro does with
// literal labels.
#[cfg(feature = "metrics")]
static ACCEPTED: [[metrics::Label; 3]; 3] = [
    labels("accepted", "none", "hmac"),
    labels("accepted", "none", "asymmetric"),
    labels("accepted", "none", "both"),
];
#[cfg(feature = "metrics")]
crate::error::error_kinds!(label_tables);

#[cfg(feature = "metrics")]
static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

#[cfg(feature = "metrics")]
fn count_request(outcome: &'static str, result: Result<&DtSignatureError, &[Scheme]>) {
    let table = match outcome {
        "rejected" => REJECTED,
        _ => REPORTED,
    };
    let labels = match result {
        Err([Scheme::Asymmetric]) => &ACCEPTED[1],
        Err([_, _]) => &ACCEPTED[2],
        Err(_) => &ACCEPTED[0],
        // Both tables are generated from the table of kinds, so every kind has its row.
        Ok(error) => &table[error.kind() as usize][scheme_index(error.scheme())],
    };
    let key = metrics::Key::from_static_parts(REQUESTS, labels);
    metrics::with_recorder(|recorder| recorder.register_counter(&key, &METADATA).increment(1));
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn the_signing_lag_is_whole_seconds_and_never_negative() {
        use std::time::{Duration, UNIX_EPOCH};
        let at = |secs: f64| UNIX_EPOCH + Duration::from_secs_f64(secs);
        assert_eq!(signing_lag(at(1_000.0), 1_000), 0);
        assert_eq!(signing_lag(at(1_002.9), 1_000), 2);
        assert_eq!(signing_lag(at(1_000.0), 1_030), 0);
        assert_eq!(signing_lag(UNIX_EPOCH, 5), 0);
    }

    #[test]
    fn kinds_are_indexed_by_discriminant_and_labelled_by_code() {
        assert_eq!(REJECTED.len(), ErrorKind::ALL.len());
        assert_eq!(REPORTED.len(), ErrorKind::ALL.len());
        for (index, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, index, "{kind:?}");
            for (table, outcome) in [(REJECTED, "rejected"), (REPORTED, "reported")] {
                for scheme in [None, Some(Scheme::Hmac), Some(Scheme::Asymmetric)] {
                    let [first, second, third] = &table[index][scheme_index(scheme)];
                    assert_eq!((first.key(), first.value()), ("outcome", outcome));
                    assert_eq!((second.key(), second.value()), ("kind", kind.code()));
                    let code = scheme.map_or("none", Scheme::code);
                    assert_eq!((third.key(), third.value()), ("scheme", code));
                }
            }
        }
    }
}
