//! The first refusal of each configuration kind, at warn level: a `WrongOrganization`, an
//! `UnknownKey` against a current key set, a `WrongIssuer`. These are the mistakes of a
//! first deployment (the org id, the issuer, keys of another identity service), and the
//! layer's own line for a refusal is at debug level, where nobody looks on day one.
//!
//! Each line says what was expected and what came (both org ids, both issuers, the unknown
//! `kid` and the loaded ones), never a token. Later refusals of the same kind are logged at
//! debug level, so that a flood cannot fill the logs: "first" is per [`Verifier`](super::Verifier)
//! (shared by its clones) and re-arms [`REARM`] after the last warning, on the verifier's
//! clock.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::keys::DtKeys;

/// How long after a warning the next refusal of its kind is logged at debug level only.
pub(crate) const REARM: Duration = Duration::from_secs(600);

/// The longest text of a token's (`sub`, `iss`, `kid`) a line shows, in bytes: the
/// header may be 8 KiB of anything.
const SHOWN: usize = 128;

/// The kinds of refusal that are warned about once.
#[derive(Clone, Copy)]
enum Kind {
    WrongOrganization,
    UnknownKey,
    WrongIssuer,
}

/// When each kind was last warned about, per verifier.
#[derive(Default)]
pub(crate) struct Notices {
    /// Per [`Kind`]: the verifier's clock at the last warning, in Unix seconds + 1; 0 for
    /// never.
    last: [AtomicU64; 3],
    /// Every line at debug level: a gateway's decoy, whose refusals are no tenant's
    /// configuration mistake (its organization is made up).
    quiet: bool,
}

/// Log one refusal: at warn level if `$first`, else at debug level, with the same fields.
macro_rules! notice {
    ($first:expr, $($fields:tt)+) => {
        if $first {
            tracing::warn!($($fields)+)
        } else {
            tracing::debug!($($fields)+)
        }
    };
}

impl Notices {
    /// Whether a refusal of `kind` at `now` is the first in [`REARM`] (then it takes the
    /// slot). A clock moved back by more than [`REARM`] re-arms too.
    fn first(&self, kind: Kind, now: SystemTime) -> bool {
        // The same work as a loud verifier's, then debug level (the decoy's time).
        self.take_first(kind, now) && !self.quiet
    }

    /// Notices that log at debug level only, the same work otherwise.
    pub(crate) fn quiet() -> Self {
        Self {
            quiet: true,
            ..Self::default()
        }
    }

    fn take_first(&self, kind: Kind, now: SystemTime) -> bool {
        let slot = &self.last[kind as usize];
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs())
            .saturating_add(1);
        let last = slot.load(Ordering::Relaxed);
        let due = last == 0 || now.abs_diff(last) >= REARM.as_secs();
        // One winner among concurrent refusals.
        due && slot
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// `sub` (`None`: the token has none) is not the organization `expected` (`None`: any).
    pub(crate) fn wrong_organization(
        &self,
        now: SystemTime,
        expected: Option<&str>,
        sub: Option<&str>,
    ) {
        notice!(
            self.first(Kind::WrongOrganization, now),
            expected = expected.unwrap_or("<any organization>"),
            token_sub = ?sub.map(shown),
            "refused Data Connector request: token organization mismatch; is the configured \
             DT organization this connector's? (later ones at debug level for 10 min)"
        );
    }

    /// The token's `kid` is not in the key set, which is current.
    pub(crate) fn unknown_key(&self, now: SystemTime, keys: &DtKeys, kid: &str) {
        notice!(
            self.first(Kind::UnknownKey, now),
            kid = ?shown(kid),
            loaded = ?keys.kids(),
            issuer = keys.issuer(),
            "refused Data Connector request: unknown signing key, and the key set is current \
             (pinned, or just refreshed); do these keys belong to the identity service that \
             signs the tokens? (later ones at debug level for 10 min)"
        );
    }

    /// The token's `iss` (`None`: it has none) is not the key set's issuer.
    pub(crate) fn wrong_issuer(&self, now: SystemTime, expected: &str, iss: Option<&str>) {
        notice!(
            self.first(Kind::WrongIssuer, now),
            expected,
            token_iss = ?iss.map(shown),
            "refused Data Connector request: token issuer mismatch; do the keys' issuer \
             and the connector's identity service match? (later ones at debug level for 10 min)"
        );
    }
}

/// At most [`SHOWN`] bytes of `text`, cut at a character boundary, with `...` when cut.
fn shown(text: &str) -> Cow<'_, str> {
    if text.len() <= SHOWN {
        return Cow::Borrowed(text);
    }
    let mut end = SHOWN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}...", &text[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn first_of_each_kind_then_rearmed_after_ten_minutes() {
        let notices = Notices::default();
        let t = 1_700_000_000;
        assert!(notices.first(Kind::WrongOrganization, at(t)));
        assert!(!notices.first(Kind::WrongOrganization, at(t)));
        // Each kind has its own slot.
        assert!(notices.first(Kind::UnknownKey, at(t + 1)));
        assert!(notices.first(Kind::WrongIssuer, at(t + 1)));
        assert!(!notices.first(Kind::WrongOrganization, at(t + 599)));
        assert!(notices.first(Kind::WrongOrganization, at(t + 600)));
        assert!(!notices.first(Kind::WrongOrganization, at(t + 601)));
        // Re-armed from the last warning, not the first refusal.
        assert!(!notices.first(Kind::WrongOrganization, at(t + 1199)));
        assert!(notices.first(Kind::WrongOrganization, at(t + 1200)));
        // A clock moved back by 10 minutes or more re-arms; a little less does not.
        assert!(!notices.first(Kind::WrongOrganization, at(t + 1000)));
        assert!(notices.first(Kind::WrongOrganization, at(t)));
        // The epoch itself, or before: a slot, not "never".
        assert!(notices.first(Kind::WrongIssuer, UNIX_EPOCH - Duration::from_secs(5)));
        assert!(!notices.first(Kind::WrongIssuer, UNIX_EPOCH));
    }

    #[test]
    fn long_token_texts_are_cut() {
        assert_eq!(shown("c0rg1d"), "c0rg1d");
        let long = "é".repeat(100);
        let cut = shown(&long);
        assert!(cut.len() <= SHOWN + 3 && cut.ends_with("..."), "{cut}");
        assert!(long.starts_with(cut.trim_end_matches("...")));
    }
}
