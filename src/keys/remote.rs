//! Fetching DT's keys through OpenID Connect discovery, with a background refresh task
//! (feature `jwks`). STUB: to be implemented.

use std::sync::Arc;

use super::{Inner, KeyWait};

/// The fetching side of a discovered key set.
pub(super) struct Remote {}

impl Remote {
    /// Start the refresh task if it is not running and a tokio runtime is at hand.
    pub(super) fn start(&self, _inner: &Arc<Inner>) {}

    /// Ask for a refresh because a `kid` is unknown (or no key set is loaded), within the
    /// limits; `None` when none will come.
    pub(super) fn refresh_for_unknown_kid(&self, _inner: &Arc<Inner>) -> Option<KeyWait> {
        None
    }
}
