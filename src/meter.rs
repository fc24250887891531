//! What the layers report through the `metrics` facade (feature `metrics`); without the
//! feature [`Meter`] is an empty type and every call compiles to nothing.
//!
//! | name | type | labels | recorded |
//! | --- | --- | --- | --- |
//! | `dt_signature_requests_total` | counter | `outcome` = `accepted`, `rejected`, `reported`; `kind` = [`ErrorKind::code`] or `none` | once per request |
//! | `dt_signature_body_bytes` | histogram | - | once per body read to its end |
//! | `dt_signature_verification_seconds` | histogram | - | once per request whose token was checked: the time spent checking the token, hashing the body and comparing the checksums (not the time waiting for body bytes) |

use crate::error::ErrorKind;

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

    /// The request was verified and forwarded.
    #[inline]
    pub(crate) fn accepted(self) {
        self.finish("accepted", None);
    }

    /// The request was refused.
    #[inline]
    pub(crate) fn rejected(self, kind: ErrorKind) {
        self.finish("rejected", Some(kind));
    }

    /// The request failed verification and was forwarded anyway (report-only mode).
    #[inline]
    pub(crate) fn reported(self, kind: ErrorKind) {
        self.finish("reported", Some(kind));
    }

    #[inline]
    fn finish(self, outcome: &'static str, kind: Option<ErrorKind>) {
        #[cfg(feature = "metrics")]
        {
            count_request(outcome, kind);
            if let Some(spent) = self.spent {
                metrics::histogram!(VERIFICATION_SECONDS).record(spent.as_secs_f64());
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (self, outcome, kind);
    }
}

#[cfg(feature = "metrics")]
const fn labels(outcome: &'static str, kind: &'static str) -> [metrics::Label; 2] {
    [
        metrics::Label::from_static_parts("outcome", outcome),
        metrics::Label::from_static_parts("kind", kind),
    ]
}

/// The static label sets of every kind, indexed by `kind as usize`, generated from the one
/// table of kinds in `error.rs`.
#[cfg(feature = "metrics")]
macro_rules! label_tables {
    ($(
        $(#[doc = $doc:literal])*
        $kind:ident => ($code:literal, $text:literal, $status:ident $(, public = $public:literal)?),
    )*) => {
        static REJECTED: &[[metrics::Label; 2]] = &[$(labels("rejected", $code)),*];
        static REPORTED: &[[metrics::Label; 2]] = &[$(labels("reported", $code)),*];
    };
}

// Static keys: counting a request allocates nothing, as the `counter!` macro does with
// literal labels.
#[cfg(feature = "metrics")]
static ACCEPTED: [metrics::Label; 2] = labels("accepted", "none");
#[cfg(feature = "metrics")]
crate::error::error_kinds!(label_tables);
#[cfg(feature = "metrics")]
static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

#[cfg(feature = "metrics")]
fn count_request(outcome: &'static str, kind: Option<ErrorKind>) {
    let table = match outcome {
        "rejected" => REJECTED,
        _ => REPORTED,
    };
    let key = match kind {
        None => metrics::Key::from_static_parts(REQUESTS, &ACCEPTED),
        // Both tables are generated from the table of kinds, so every kind has its row.
        Some(kind) => metrics::Key::from_static_parts(REQUESTS, &table[kind as usize]),
    };
    metrics::with_recorder(|recorder| recorder.register_counter(&key, &METADATA).increment(1));
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_indexed_by_discriminant_and_labelled_by_code() {
        assert_eq!(REJECTED.len(), ErrorKind::ALL.len());
        assert_eq!(REPORTED.len(), ErrorKind::ALL.len());
        for (index, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, index, "{kind:?}");
            for (table, outcome) in [(REJECTED, "rejected"), (REPORTED, "reported")] {
                let [first, second] = &table[index];
                assert_eq!((first.key(), first.value()), ("outcome", outcome));
                assert_eq!((second.key(), second.value()), ("kind", kind.code()));
            }
        }
    }
}
