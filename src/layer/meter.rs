//! What the layers report through the `metrics` facade (feature `metrics`); without the
//! feature [`Meter`] is an empty type and every call compiles to nothing.
//!
//! | name | type | labels | recorded |
//! | --- | --- | --- | --- |
//! | `dt_signature_requests_total` | counter | `outcome` = `accepted`, `rejected`, `reported`; `kind` = [`ErrorKind::code`] or `none`; `scheme` = the verified schemes when accepted (`hmac`, `asymmetric`, `both`), else the refused token's ([`Scheme::code`], `none` for the body or the tenant lookup) | once per request |
//! | `dt_signature_body_bytes` | histogram | - | once per body read to its end |
//! | `dt_signature_verification_seconds` | histogram | - | once per request whose token was checked: the time spent checking the token, hashing the body and comparing the checksums (not the time waiting for body bytes) |

use crate::error::{DtSignatureError, Scheme};

/// The counter of requests, by `outcome` and `kind`.
#[cfg(feature = "metrics")]
pub(crate) const REQUESTS: &str = "dt_signature_requests_total";
/// The histogram of body sizes in bytes.
#[cfg(feature = "metrics")]
pub(crate) const BODY_BYTES: &str = "dt_signature_body_bytes";
/// The histogram of verification times in seconds.
#[cfg(feature = "metrics")]
pub(crate) const VERIFICATION_SECONDS: &str = "dt_signature_verification_seconds";

/// Measures one request: the verification time so far, and its outcome once known.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    #[cfg(feature = "metrics")]
    spent: Option<std::time::Duration>,
}

impl Meter {
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

    /// The request was verified (by the tokens of `schemes`) and forwarded.
    #[inline]
    pub(crate) fn accepted(self, schemes: &[Scheme]) {
        self.finish("accepted", Err(schemes));
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
