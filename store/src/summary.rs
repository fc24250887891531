//! [`Summary`]: what a store holds, for `dt-signature events` and a look by hand.

use serde::Serialize;

/// What a store holds: how many events of each type, and the newest event of each
/// device and type (`dt_latest`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// Events per `event.eventType`, by type name.
    pub events_by_type: Vec<TypeCount>,
    /// Verified bodies that are not DT events.
    pub not_events: u64,
    /// The newest event per (tenant, device, event type), in that order.
    pub latest: Vec<Latest>,
}

/// How many events of one type a store holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TypeCount {
    /// `event.eventType`.
    pub event_type: String,
    /// How many rows of `dt_event` have it.
    pub count: u64,
}

/// One row of `dt_latest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Latest {
    /// The tenant.
    pub tenant: String,
    /// The device id, or the whole `targetName`.
    pub device: String,
    /// `event.eventType`.
    pub event_type: String,
    /// The newest event's id.
    pub event_id: String,
    /// Its `event.timestamp`, as sent.
    pub event_time: String,
}

impl Summary {
    /// Events of every type, not counting bodies that are not events.
    pub fn events(&self) -> u64 {
        self.events_by_type.iter().map(|count| count.count).sum()
    }
}
