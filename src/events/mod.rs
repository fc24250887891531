//! Typed Data Connector payloads: the JSON body DT pushes, as Rust types.
//!
//! A verified body decodes in one call:
//!
//! ```
//! use tower_dt_signature::events::{EventData, Payload};
//!
//! let body = br#"{"event":{"eventId":"c82gg9catj3vmh4248og","targetName":"projects/c14u9p094l47cdv1o3pg/devices/emuc17m6d7lq0bgk44smcqg","eventType":"touch","data":{"touch":{"updateTime":"2022-02-10T12:42:13.313949Z"}},"timestamp":"2022-02-10T12:42:13.313949Z"},"labels":{"name":"touch"},"metadata":{"deviceId":"emuc17m6d7lq0bgk44smcqg","projectId":"c14u9p094l47cdv1o3pg","deviceType":"touch","productNumber":""}}"#;
//!
//! let payload = Payload::from_slice(body)?;
//! assert_eq!(payload.event.event_id, "c82gg9catj3vmh4248og");
//! assert_eq!(payload.event.device_id(), Some("emuc17m6d7lq0bgk44smcqg"));
//! assert!(matches!(payload.event.data, EventData::Touch(_)));
//! assert_eq!(payload.labels["name"], "touch");
//! # Ok::<(), tower_dt_signature::events::DecodeError>(())
//! ```
//!
//! With the `axum` feature, the `DtPayload` extractor does this inside a handler, and
//! only for requests that [`DtSignatureLayer`](crate::DtSignatureLayer) verified.
//!
//! # Tolerance
//!
//! DT adds event types, fields and states over time, and a receiver is long-lived, so the
//! decoder is lenient where growth is expected and strict where the shape is fixed:
//!
//! - an unknown `eventType` decodes to [`EventData::Unknown`] with the raw `data` JSON,
//!   and [`EventType::Unknown`] with its name;
//! - an unknown state (`"state": "HALF_OPEN"`) decodes to the enum's `Unknown(String)`
//!   variant, keeping the text;
//! - unknown fields are ignored;
//! - fields that older bodies lack are `Option`: `metadata` (before 2022-01),
//!   `isBackfilled` and `samples` (older temperature and humidity events), `remarks`
//!   (older desk occupancy events), and so on;
//! - a field that is present with the wrong type, a missing required field (`eventId`,
//!   `updateTime`, ...) or a timestamp that is not RFC 3339 is an error that names the
//!   field ([`DecodeError::path`]).
//!
//! Types and enums that DT may extend are `#[non_exhaustive]`.
//!
//! # Encoding
//!
//! Every type also implements `Serialize`, in DT's key order, with timestamps in DT's
//! format (RFC 3339, microseconds, `Z`) and whole numbers without a fraction: encoding a
//! decoded DT body gives back the same bytes, unknown fields aside.

// Split by idea: the body and its error (payload), the event and its DT key order
// (event), the table of event types and everything generated from it (table), the data
// struct of each type (data), the enums of states (state), and DT's time and number
// formats (format).
//
// Adding an event type: one line in the table in `table.rs` (variant, DT name, data
// struct, shape, sample device), its data struct in `data.rs`, its `Sample` in
// `../testing/sample.rs`, and an example body in `tests/data/dt-events/<dtName>.json`.
mod data;
mod event;
mod format;
mod payload;
mod state;
mod table;

use chrono::{DateTime, Utc};

pub use data::*;
pub use event::Event;
pub use payload::{DecodeError, Metadata, Payload};
pub use state::*;
#[cfg(feature = "test-util")]
pub(crate) use table::for_each_event_type;
pub use table::{EventData, EventType};

/// A timestamp, as DT sends them: RFC 3339 in UTC.
pub type Timestamp = DateTime<Utc>;
