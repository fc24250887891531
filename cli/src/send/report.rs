//! What a run of `dt-signature send` found: DT Studio's counters, the answers by status and
//! their first reasons, why requests got no answer, and each tampered request's answer.

use std::collections::BTreeMap;
use std::time::Duration;

use tower_dt_signature::events::EventType;

use super::tamper::Tamper;

/// DT Studio's view of a run, and more.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Events (or tampered requests) sent.
    pub events: usize,
    /// Events answered 2xx, after retries (DT Studio's "Success"); with
    /// [`Config::duplicates`](super::connector::Config::duplicates), every copy answered 2xx.
    pub delivered: usize,
    /// Events that never got a 2xx (DT Studio's "Error").
    pub failed: usize,
    /// HTTP requests made, retries and copies included.
    pub requests: usize,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, usize>,
    /// The first answer's text of each non-2xx status (one line, at most 200 bytes):
    /// the receiver's reason, such as `missing DT-Asymmetric-Signature header`.
    pub reasons: BTreeMap<u16, String>,
    /// Requests that got no answer (connection refused, timeout, ...).
    pub transport_errors: usize,
    /// Why requests got no answer: each error (one line) and how many times.
    pub no_answer: BTreeMap<String, usize>,
    /// Time to the whole answer, for each answered request.
    pub latencies: Vec<Duration>,
    /// Tampered requests refused (non-2xx), in `--tamper` mode.
    pub tamper_refused: usize,
    /// Tampered requests the receiver accepted: each one is a hole.
    pub tamper_accepted: Vec<String>,
    /// Every tampered request, in the order of [`Tamper::of`] for each type: the kind,
    /// the type and the answer it got.
    pub tampered: Vec<TamperResult>,
}

/// What one tampered request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TamperResult {
    /// How it was broken.
    pub kind: Tamper,
    /// The event type of its body.
    pub event_type: EventType,
    /// The answer: its status and text, or why none came.
    pub answer: Answer,
}

/// An answer to one request, or why none came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The status and the body's text (one line, at most 200 bytes).
    Status(u16, String),
    /// No whole answer: the error, one line.
    None(String),
}

impl Report {
    /// The latency below which `percent` % of answers came (nearest rank).
    pub fn percentile(&self, percent: f64) -> Option<Duration> {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return None;
        }
        let rank = ((percent / 100.0) * sorted.len() as f64).ceil() as usize;
        Some(sorted[rank.clamp(1, sorted.len()) - 1])
    }

    /// Whether the run went as it should: every event delivered, or, with `--tamper`,
    /// every tampered request answered and refused.
    pub fn ok(&self, tamper: bool) -> bool {
        if tamper {
            self.tamper_accepted.is_empty()
                && self.transport_errors == 0
                && self.tamper_refused == self.events
        } else {
            self.failed == 0 && self.delivered == self.events
        }
    }
}
