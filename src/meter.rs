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
            let kind = kind.map_or("none", ErrorKind::code);
            metrics::counter!(REQUESTS, "outcome" => outcome, "kind" => kind).increment(1);
            if let Some(spent) = self.spent {
                metrics::histogram!(VERIFICATION_SECONDS).record(spent.as_secs_f64());
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (self, outcome, kind);
    }
}
