//! [`StoreReport`]: what the store did with a request, in the response's extensions.

use crate::error::StoreErrorKind;

/// The store's outcome for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreOutcome {
    /// A new event, now the newest of its (tenant, device, event type). `200`.
    Stored,
    /// The event was already stored, durably. `200`.
    Duplicate,
    /// A new event, older than the newest of its device and type: kept in `dt_event`,
    /// `dt_latest` unchanged. `200`.
    StoredNotLatest,
    /// A verified body that is not a DT event, kept under its SHA-256. `200`.
    NotAnEvent,
    /// The write failed; DT retries. `503`.
    Failed(StoreErrorKind),
    /// The deadline passed before the write was durable; DT retries. `503`.
    Deadline,
}

impl StoreOutcome {
    /// A stable, lowercase name for logs and metric labels: `stored`, `duplicate`,
    /// `stored_not_latest`, `not_an_event`, `failed`, `deadline`.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Duplicate => "duplicate",
            Self::StoredNotLatest => "stored_not_latest",
            Self::NotAnEvent => "not_an_event",
            Self::Failed(_) => "failed",
            Self::Deadline => "deadline",
        }
    }

    /// Whether the event is durable: the outcomes answered `200`.
    pub const fn is_durable(self) -> bool {
        matches!(
            self,
            Self::Stored | Self::Duplicate | Self::StoredNotLatest | Self::NotAnEvent
        )
    }
}

impl std::fmt::Display for StoreOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// What [`DtStore`](crate::DtStore) did with a request: inserted into the extensions of
/// every response it gives to a verified request, for logs and metrics (an outer
/// `map_response` or `TraceLayer` reads it).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreReport {
    /// The outcome.
    pub outcome: StoreOutcome,
    /// The tenant the event was stored under.
    pub tenant: String,
    /// The de-duplication key: the event id, or `sha256:<hex>` for a body that is not
    /// an event.
    pub key: String,
    /// `event.eventType`, when the body is an event.
    pub event_type: Option<String>,
    /// The device (or the whole `targetName`), when the body is an event.
    pub device: Option<String>,
    /// A duplicate whose bytes differ from the stored copy (the first copy is kept).
    pub bytes_differ: bool,
}
