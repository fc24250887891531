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

/// Every kind in declaration order, so that `KINDS[kind as usize] == kind` (tested): the
/// index into the tables of static labels below.
#[cfg(feature = "metrics")]
const KINDS: [ErrorKind; 20] = [
    ErrorKind::MissingHeader,
    ErrorKind::DuplicateHeader,
    ErrorKind::InvalidHeader,
    ErrorKind::HeaderTooLarge,
    ErrorKind::MalformedToken,
    ErrorKind::UnsupportedAlgorithm,
    ErrorKind::InvalidSignature,
    ErrorKind::MalformedClaims,
    ErrorKind::MissingExpiry,
    ErrorKind::Expired,
    ErrorKind::IssuedInFuture,
    ErrorKind::NotYetValid,
    ErrorKind::MissingChecksum,
    ErrorKind::MissingSha256,
    ErrorKind::MalformedChecksum,
    ErrorKind::ChecksumMismatch,
    ErrorKind::BodyTooLarge,
    ErrorKind::BodyRead,
    ErrorKind::UnknownTenant,
    ErrorKind::ResolverFailed,
];

#[cfg(feature = "metrics")]
const fn labels(outcome: &'static str, kind: &'static str) -> [metrics::Label; 2] {
    [
        metrics::Label::from_static_parts("outcome", outcome),
        metrics::Label::from_static_parts("kind", kind),
    ]
}

/// `[labels(outcome, KINDS[0].code()), ...]` for every kind.
#[cfg(feature = "metrics")]
macro_rules! table {
    ($outcome:literal; $($index:literal)*) => {
        [$(labels($outcome, KINDS[$index].code())),*]
    };
}

// Static keys: counting a request allocates nothing, as the `counter!` macro does with
// literal labels.
#[cfg(feature = "metrics")]
static ACCEPTED: [metrics::Label; 2] = labels("accepted", "none");
#[cfg(feature = "metrics")]
static REJECTED: [[metrics::Label; 2]; KINDS.len()] =
    table!("rejected"; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19);
#[cfg(feature = "metrics")]
static REPORTED: [[metrics::Label; 2]; KINDS.len()] =
    table!("reported"; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19);
#[cfg(feature = "metrics")]
static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

#[cfg(feature = "metrics")]
fn count_request(outcome: &'static str, kind: Option<ErrorKind>) {
    let table = match outcome {
        "rejected" => &REJECTED,
        _ => &REPORTED,
    };
    let key = match kind {
        None => metrics::Key::from_static_parts(REQUESTS, &ACCEPTED),
        Some(kind) => match table.get(kind as usize) {
            Some(labels) if KINDS[kind as usize] == kind => {
                metrics::Key::from_static_parts(REQUESTS, labels)
            }
            // A kind missing from `KINDS`: correct, with an allocation.
            _ => metrics::Key::from_parts(
                REQUESTS,
                vec![
                    metrics::Label::new("outcome", outcome),
                    metrics::Label::new("kind", kind.code()),
                ],
            ),
        },
    };
    metrics::with_recorder(|recorder| recorder.register_counter(&key, &METADATA).increment(1));
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_indexed_by_discriminant_and_labelled_by_code() {
        for (index, kind) in KINDS.iter().enumerate() {
            assert_eq!(*kind as usize, index, "{kind:?}");
            for (table, outcome) in [(&REJECTED, "rejected"), (&REPORTED, "reported")] {
                let [first, second] = &table[index];
                assert_eq!((first.key(), first.value()), ("outcome", outcome));
                assert_eq!((second.key(), second.value()), ("kind", kind.code()));
            }
        }
        assert_eq!(
            ErrorKind::ResolverFailed as usize,
            KINDS.len() - 1,
            "a kind is missing"
        );
    }
}
