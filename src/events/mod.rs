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

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A timestamp, as DT sends them: RFC 3339 in UTC.
pub type Timestamp = DateTime<Utc>;

/// The whole JSON body of one Data Connector request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Payload {
    /// The event.
    pub event: Event,
    /// The device's labels that the connector forwards: label key to value. Empty when it
    /// forwards none.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Where the event came from. `None` in bodies sent before 2022-01.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

impl Payload {
    /// Decodes a body. The error names the field that did not fit
    /// ([`DecodeError::path`]).
    pub fn from_slice(body: &[u8]) -> Result<Self, DecodeError> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let payload: Self = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(DecodeError::from_path_error)?;
        deserializer.end().map_err(|inner| DecodeError {
            path: String::new(),
            inner,
        })?;
        Ok(payload)
    }
}

/// Why a body is not a Data Connector payload.
#[derive(Debug)]
pub struct DecodeError {
    path: String,
    inner: serde_json::Error,
}

impl DecodeError {
    fn from_path_error(error: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = error.path().to_string();
        Self {
            // serde_path_to_error writes "." for the root, "?" where it has no name.
            path: if path == "." || path == "?" {
                String::new()
            } else {
                path
            },
            inner: error.into_inner(),
        }
    }

    /// Where in the body decoding failed, as a dotted path such as
    /// `event.data.temperature.value` or `event` (for a missing `event.eventId`, the
    /// object that lacks it). Empty when the body as a whole is wrong (not JSON, not an
    /// object).
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "invalid Data Connector payload: {}", self.inner)
        } else {
            write!(
                f,
                "invalid Data Connector payload at `{}`: {}",
                self.path, self.inner
            )
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.inner)
    }
}

/// `payload.metadata`: the source device. DT warns that its shape may change for events
/// that do not come from a device, so every field is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Metadata {
    /// The device id, as in `targetName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// The project id, as in `targetName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// The kind of device: `temperature`, `proximity`, `ccon` (Cloud Connector), ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    /// The product number; `""` for emulated devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_number: Option<String>,
}

/// `payload.event`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Event {
    /// A unique id per event (20 characters). DT delivers at least once: de-duplicate on
    /// it.
    pub event_id: String,
    /// `projects/<project>/devices/<device>`; see [`project_id`](Self::project_id) and
    /// [`device_id`](Self::device_id).
    pub target_name: String,
    /// The event type, which also selects the variant of [`data`](Self::data).
    pub event_type: EventType,
    /// What happened.
    pub data: EventData,
    /// When DT recorded the event; DT tells receivers to treat it as a version.
    pub timestamp: Timestamp,
}

impl Event {
    /// The project id out of `targetName` (`projects/<project>/...`), or `None` if it has
    /// another shape.
    pub fn project_id(&self) -> Option<&str> {
        let mut parts = self.target_name.split('/');
        match (parts.next(), parts.next()) {
            (Some("projects"), Some(project)) if !project.is_empty() => Some(project),
            _ => None,
        }
    }

    /// The device id out of `targetName` (`projects/<project>/devices/<device>`), or
    /// `None` if the event does not name a device.
    pub fn device_id(&self) -> Option<&str> {
        let mut parts = self.target_name.split('/');
        match (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) {
            (Some("projects"), Some(project), Some("devices"), Some(device), None)
                if !project.is_empty() && !device.is_empty() =>
            {
                Some(device)
            }
            _ => None,
        }
    }

    /// When the value in the event was measured: the data's `updateTime`, or the event's
    /// `timestamp` when the data has none (`labelsChanged`, an unknown type without one).
    /// DT's Python library answers the same.
    pub fn update_time(&self) -> Timestamp {
        self.data.update_time().unwrap_or(self.timestamp)
    }
}

macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        ///
        /// A value this crate does not know is kept in `Unknown`, not refused.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version of the crate does not know, as sent.
            Unknown(String),
        }

        impl $name {
            /// The text DT sends for this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Unknown(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct TextVisitor;
                impl Visitor<'_> for TextVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: de::Error>(self, text: &str) -> Result<$name, E> {
                        Ok($name::from(text))
                    }
                }
                deserializer.deserialize_str(TextVisitor)
            }
        }
    };
}

string_enum! {
    /// `event.eventType`.
    pub enum EventType {
        /// `touch`
        Touch = "touch",
        /// `temperature`
        Temperature = "temperature",
        /// `objectPresent`
        ObjectPresent = "objectPresent",
        /// `humidity`
        Humidity = "humidity",
        /// `objectPresentCount`
        ObjectPresentCount = "objectPresentCount",
        /// `touchCount`
        TouchCount = "touchCount",
        /// `waterPresent`
        WaterPresent = "waterPresent",
        /// `networkStatus`
        NetworkStatus = "networkStatus",
        /// `batteryStatus`
        BatteryStatus = "batteryStatus",
        /// `labelsChanged`
        LabelsChanged = "labelsChanged",
        /// `connectionStatus`
        ConnectionStatus = "connectionStatus",
        /// `ethernetStatus`
        EthernetStatus = "ethernetStatus",
        /// `cellularStatus`
        CellularStatus = "cellularStatus",
        /// `co2`
        Co2 = "co2",
        /// `pressure`
        Pressure = "pressure",
        /// `motion`
        Motion = "motion",
        /// `deskOccupancy`
        DeskOccupancy = "deskOccupancy",
        /// `contact`
        Contact = "contact",
        /// `probeWireStatus`
        ProbeWireStatus = "probeWireStatus",
    }
}

impl EventType {
    /// The 19 event types this crate knows, in the order of DT's documentation.
    pub const ALL: [EventType; 19] = [
        Self::Touch,
        Self::Temperature,
        Self::ObjectPresent,
        Self::Humidity,
        Self::ObjectPresentCount,
        Self::TouchCount,
        Self::WaterPresent,
        Self::NetworkStatus,
        Self::BatteryStatus,
        Self::LabelsChanged,
        Self::ConnectionStatus,
        Self::EthernetStatus,
        Self::CellularStatus,
        Self::Co2,
        Self::Pressure,
        Self::Motion,
        Self::DeskOccupancy,
        Self::Contact,
        Self::ProbeWireStatus,
    ];
}

string_enum! {
    /// The `state` of an `objectPresent` or `waterPresent` event.
    pub enum PresenceState {
        /// `PRESENT`
        Present = "PRESENT",
        /// `NOT_PRESENT`
        NotPresent = "NOT_PRESENT",
    }
}

string_enum! {
    /// `networkStatus.transmissionMode`.
    pub enum TransmissionMode {
        /// `LOW_POWER_STANDARD_MODE`
        LowPowerStandardMode = "LOW_POWER_STANDARD_MODE",
        /// `HIGH_POWER_BOOST_MODE`
        HighPowerBoostMode = "HIGH_POWER_BOOST_MODE",
    }
}

string_enum! {
    /// A Cloud Connector's uplink, in `connectionStatus`.
    pub enum Connection {
        /// `SDS`
        Sds = "SDS",
        /// `ETHERNET`
        Ethernet = "ETHERNET",
        /// `CELLULAR`
        Cellular = "CELLULAR",
        /// `OFFLINE`
        Offline = "OFFLINE",
    }
}

string_enum! {
    /// `motion.state`.
    pub enum MotionState {
        /// `MOTION_DETECTED`
        MotionDetected = "MOTION_DETECTED",
        /// `NO_MOTION_DETECTED`
        NoMotionDetected = "NO_MOTION_DETECTED",
    }
}

string_enum! {
    /// `deskOccupancy.state`.
    pub enum DeskOccupancyState {
        /// `OCCUPIED`
        Occupied = "OCCUPIED",
        /// `NOT_OCCUPIED`
        NotOccupied = "NOT_OCCUPIED",
    }
}

string_enum! {
    /// `contact.state`.
    pub enum ContactState {
        /// `OPEN`
        Open = "OPEN",
        /// `CLOSED`
        Closed = "CLOSED",
    }
}

string_enum! {
    /// `probeWireStatus.state`.
    pub enum ProbeWireState {
        /// `INVALID_WIRE_CONFIGURATION`
        InvalidWireConfiguration = "INVALID_WIRE_CONFIGURATION",
        /// `INVALID_COEFFICIENT_CONFIGURATION`
        InvalidCoefficientConfiguration = "INVALID_COEFFICIENT_CONFIGURATION",
        /// `TWO_WIRE`
        TwoWire = "TWO_WIRE",
        /// `THREE_WIRE`
        ThreeWire = "THREE_WIRE",
        /// `FOUR_WIRE`
        FourWire = "FOUR_WIRE",
    }
}

/// `event.data`, one variant per event type.
///
/// Every keyed type arrives as `"data": {"<eventType>": {...}}`; `labelsChanged` arrives
/// as `"data": {"added": ..., "modified": ..., "removed": ...}`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventData {
    /// `touch`
    Touch(Touch),
    /// `temperature`
    Temperature(Temperature),
    /// `objectPresent`
    ObjectPresent(ObjectPresent),
    /// `humidity`
    Humidity(Humidity),
    /// `objectPresentCount`
    ObjectPresentCount(Count),
    /// `touchCount`
    TouchCount(Count),
    /// `waterPresent`
    WaterPresent(WaterPresent),
    /// `networkStatus`
    NetworkStatus(NetworkStatus),
    /// `batteryStatus`
    BatteryStatus(BatteryStatus),
    /// `labelsChanged` (not keyed by the type)
    LabelsChanged(LabelsChanged),
    /// `connectionStatus`
    ConnectionStatus(ConnectionStatus),
    /// `ethernetStatus`
    EthernetStatus(EthernetStatus),
    /// `cellularStatus`
    CellularStatus(CellularStatus),
    /// `co2`
    Co2(Co2),
    /// `pressure`
    Pressure(Pressure),
    /// `motion`
    Motion(Motion),
    /// `deskOccupancy`
    DeskOccupancy(DeskOccupancy),
    /// `contact`
    Contact(Contact),
    /// `probeWireStatus`
    ProbeWireStatus(ProbeWireStatus),
    /// An event type this version of the crate does not know: `event.data` as sent.
    Unknown(Value),
}

impl EventData {
    /// The data's `updateTime`; `None` for `labelsChanged`, and for an unknown type whose
    /// data has no RFC 3339 `data.<eventType>.updateTime` (see [`Event::update_time`]).
    pub fn update_time(&self) -> Option<Timestamp> {
        Some(match self {
            Self::Touch(d) => d.update_time,
            Self::Temperature(d) => d.update_time,
            Self::ObjectPresent(d) => d.update_time,
            Self::Humidity(d) => d.update_time,
            Self::ObjectPresentCount(d) | Self::TouchCount(d) => d.update_time,
            Self::WaterPresent(d) => d.update_time,
            Self::NetworkStatus(d) => d.update_time,
            Self::BatteryStatus(d) => d.update_time,
            Self::LabelsChanged(_) => return None,
            Self::ConnectionStatus(d) => d.update_time,
            Self::EthernetStatus(d) => d.update_time,
            Self::CellularStatus(d) => d.update_time,
            Self::Co2(d) => d.update_time,
            Self::Pressure(d) => d.update_time,
            Self::Motion(d) => d.update_time,
            Self::DeskOccupancy(d) => d.update_time,
            Self::Contact(d) => d.update_time,
            Self::ProbeWireStatus(d) => d.update_time,
            Self::Unknown(value) => {
                // Keyed like the known types: {"<eventType>": {"updateTime": ...}}.
                let mut values = value.as_object()?.values();
                let (Some(inner), None) = (values.next(), values.next()) else {
                    return None;
                };
                let text = inner.get("updateTime")?.as_str()?;
                DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc)
            }
        })
    }
}

/// Serializes a timestamp as DT does: RFC 3339, microseconds, `Z`.
mod micros {
    use super::*;

    pub(super) fn serialize<S: Serializer>(time: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&time.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        Timestamp::deserialize(d)
    }
}

/// Serializes a float as DT does: a whole number without a fraction (`27`, not `27.0`).
mod number {
    use super::*;

    pub(super) fn serialize<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
        if value.fract() == 0.0 && value.abs() < 9.0e15 {
            s.serialize_i64(*value as i64)
        } else {
            s.serialize_f64(*value)
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        f64::deserialize(d)
    }
}

macro_rules! data_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        #[non_exhaustive]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }
    };
}

data_struct! {
    /// `touch`: the sensor was touched.
    pub struct Touch {
        /// When it was touched.
        #[serde(with = "micros")]
        pub update_time: Timestamp,
    }
}

data_struct! {
    /// `temperature`.
    pub struct Temperature {
        /// Degrees Celsius.
        #[serde(with = "number")]
        pub value: f64,
        /// When it was measured (the last sample's time).
        #[serde(with = "micros")]
        pub update_time: Timestamp,
        /// The samples this event carries; `None` in bodies that have no `samples`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub samples: Option<Vec<TemperatureSample>>,
        /// Whether the event was sent late, after the device lost its connection; `None` in
        /// older bodies.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub is_backfilled: Option<bool>,
    }
}

data_struct! {
    /// One sample of a `temperature` event.
    pub struct TemperatureSample {
        /// Degrees Celsius.
        #[serde(with = "number")]
        pub value: f64,
        /// When it was measured.
        #[serde(with = "micros")]
        pub sample_time: Timestamp,
    }
}

data_struct! {
    /// `objectPresent`: a proximity sensor's state changed.
    pub struct ObjectPresent {
        /// `PRESENT` or `NOT_PRESENT`.
        pub state: PresenceState,
        /// When it changed.
        #[serde(with = "micros")]
        pub update_time: Timestamp,
    }
}

data_struct! {
    /// `humidity`.
    pub struct Humidity {
        /// Degrees Celsius.
        #[serde(with = "number")]
        pub temperature: f64,
        /// Percent relative humidity.
        #[serde(with = "number")]
        pub relative_humidity: f64,
        /// When it was measured.
        #[serde(with = "micros")]
        pub update_time: Timestamp,
        /// The samples this event carries; `None` in bodies that have no `samples`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub samples: Option<Vec<HumiditySample>>,
        /// Whether the event was sent late; `None` in older bodies.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub is_backfilled: Option<bool>,
    }
}

data_struct! {
    /// One sample of a `humidity` event.
    pub struct HumiditySample {
        /// Degrees Celsius.
        #[serde(with = "number")]
        pub temperature: f64,
        /// Percent relative humidity.
        #[serde(with = "number")]
        pub relative_humidity: f64,
        /// When it was measured.
        #[serde(with = "micros")]
        pub sample_time: Timestamp,
    }
}

data_struct! {
    /// `objectPresentCount` and `touchCount`: a running total.
    pub struct Count {
        /// How many times since the sensor started counting.
        pub total: u64,
        /// When the total was last updated.
        #[serde(with = "micros")]
        pub update_time: Timestamp,
    }
}

data_struct! {
    /// `waterPresent`.
    pub struct WaterPresent {
        /// `PRESENT` or `NOT_PRESENT`.
        pub state: PresenceState,
        /// When it changed.
        #[serde(with = "micros")]
        pub update_time: Timestamp,
    }
}

data_struct! {
    /// `networkStatus`: how well the sensor reached the Cloud Connectors.
    pub struct NetworkStatus {
        /// 0-100, of the strongest Cloud Connector.
        pub signal_strength: u8,
        /// Received signal strength, dBm.
        pub rssi: i32,
        /// When it was measured.
        #[serde(with = "micros")]
        pub update_time: Timestamp,
        /// The Cloud Connectors that heard the sensor.
        #[serde(default)]
        pub cloud_connectors: Vec<CloudConnector>,
        /// The radio mode.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub transmission_mode: Option<TransmissionMode>,
    }
}

data_struct! {
    /// One Cloud Connector in a `networkStatus` event.
    pub struct CloudConnector {
        /// The Cloud Connector's device id.
        pub id: String,
        /// 0-100.
        pub signal_strength: u8,
        /// dBm.
        pub rssi: i32,
    }
}

data_struct! {
    /// `batteryStatus`.
    pub struct BatteryStatus {
        /// Battery left, percent.
        pub percentage: u8,
        /// When it was measured.
        #[serde(with = "micros")]
        pub update_time: Timestamp,
    }
}

data_struct! {
    /// `labelsChanged`: the device's labels were edited. Not keyed by the type, and without
    /// `updateTime`: [`Event::update_time`] gives the event's `timestamp`.
    pub struct LabelsChanged {
        /// New labels.
        #[serde(default)]
        pub added: BTreeMap<String, String>,
        /// Changed labels, with their new values.
        #[serde(default)]
        pub modified: BTreeMap<String, String>,
        /// Keys of removed labels.
        #[serde(default)]
        pub removed: Vec<String>,
    }
}

data_struct! {
    /// `connectionStatus`: a Cloud Connector's uplink.
    pub struct ConnectionStatus {
        /// The uplink in use.
        pub connection: Connection,
        /// The uplinks available.
        #[serde(default)]
        pub available: Vec<Connection>,
        /// When it changed.
        #[serde(with = "micros")]
        pub update_time: Timestamp,
    }
}

data_struct! {
    /// `ethernetStatus`: a Cloud Connector's Ethernet link.
    pub struct EthernetStatus {
        /// The MAC address, `aa:bb:cc:dd:ee:ff`.
        pub mac_address: String,
        /// The IP address.
        pub ip_address: String,
        /// Link errors, as DT reports them.
        #[serde(default)]
        pub errors: Vec<Value>,
        /// When it changed.
        #[serde(with = "micros")]
        pub update_time: Timestamp,
    }
}

data_struct! {
    /// `cellularStatus`: a Cloud Connector's cellular link.
    pub struct CellularStatus {
        /// 0-100.
        pub signal_strength: u8,
        /// Link errors, as DT reports them.
        #[serde(default)]
        pub errors: Vec<Value>,
        /// When it changed.
        #[serde(with = "micros")]
        pub update_time: Timestamp,
    }
}

data_struct! {
    /// `co2`.
    pub struct Co2 {
        /// Parts per million.
        pub ppm: u32,
        /// When it was measured.
        #[serde(with = "micros")]
        pub update_time: Timestamp,
    }
}

data_struct! {
    /// `pressure`.
    pub struct Pressure {
        /// Pascal.
        #[serde(with = "number")]
        pub pascal: f64,
        /// When it was measured.
        #[serde(with = "micros")]
        pub update_time: Timestamp,
    }
}

data_struct! {
    /// `motion`.
    pub struct Motion {
        /// `MOTION_DETECTED` or `NO_MOTION_DETECTED`.
        pub state: MotionState,
        /// When it changed.
        #[serde(with = "micros")]
        pub update_time: Timestamp,
    }
}

data_struct! {
    /// `deskOccupancy`.
    pub struct DeskOccupancy {
        /// `OCCUPIED` or `NOT_OCCUPIED`.
        pub state: DeskOccupancyState,
        /// Notes on the reading, as DT sends them; `None` in older bodies.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub remarks: Option<Vec<Value>>,
        /// When it changed.
        #[serde(with = "micros")]
        pub update_time: Timestamp,
    }
}

data_struct! {
    /// `contact`.
    pub struct Contact {
        /// `OPEN` or `CLOSED`.
        pub state: ContactState,
        /// When it changed.
        #[serde(with = "micros")]
        pub update_time: Timestamp,
    }
}

data_struct! {
    /// `probeWireStatus`: how a temperature probe is wired.
    pub struct ProbeWireStatus {
        /// The wiring, or a configuration error.
        pub state: ProbeWireState,
        /// When it changed.
        #[serde(with = "micros")]
        pub update_time: Timestamp,
    }
}

// ---- Event: DT's key order on the way out, the event type picks the data on the way in.

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;

        struct Data<'a>(&'a EventType, &'a EventData);

        impl Serialize for Data<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let key = self.0.as_str();
                macro_rules! keyed {
                    ($data:expr) => {{
                        let mut map = serializer.serialize_map(Some(1))?;
                        map.serialize_entry(key, $data)?;
                        map.end()
                    }};
                }
                match self.1 {
                    EventData::Touch(d) => keyed!(d),
                    EventData::Temperature(d) => keyed!(d),
                    EventData::ObjectPresent(d) => keyed!(d),
                    EventData::Humidity(d) => keyed!(d),
                    EventData::ObjectPresentCount(d) | EventData::TouchCount(d) => keyed!(d),
                    EventData::WaterPresent(d) => keyed!(d),
                    EventData::NetworkStatus(d) => keyed!(d),
                    EventData::BatteryStatus(d) => keyed!(d),
                    EventData::LabelsChanged(d) => d.serialize(serializer),
                    EventData::ConnectionStatus(d) => keyed!(d),
                    EventData::EthernetStatus(d) => keyed!(d),
                    EventData::CellularStatus(d) => keyed!(d),
                    EventData::Co2(d) => keyed!(d),
                    EventData::Pressure(d) => keyed!(d),
                    EventData::Motion(d) => keyed!(d),
                    EventData::DeskOccupancy(d) => keyed!(d),
                    EventData::Contact(d) => keyed!(d),
                    EventData::ProbeWireStatus(d) => keyed!(d),
                    EventData::Unknown(value) => value.serialize(serializer),
                }
            }
        }

        struct Micros<'a>(&'a Timestamp);

        impl Serialize for Micros<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                micros::serialize(self.0, serializer)
            }
        }

        let mut event = serializer.serialize_struct("Event", 5)?;
        event.serialize_field("eventId", &self.event_id)?;
        event.serialize_field("targetName", &self.target_name)?;
        event.serialize_field("eventType", &self.event_type)?;
        event.serialize_field("data", &Data(&self.event_type, &self.data))?;
        event.serialize_field("timestamp", &Micros(&self.timestamp))?;
        event.end()
    }
}

/// Decodes `event.data` for a known event type.
struct DataSeed<'a>(&'a EventType);

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = EventData;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<EventData, D::Error> {
        macro_rules! keyed {
            ($variant:ident, $ty:ty) => {
                deserializer
                    .deserialize_map(KeyedVisitor::<$ty>::new(self.0.as_str()))
                    .map(EventData::$variant)
            };
        }
        match self.0 {
            EventType::Touch => keyed!(Touch, Touch),
            EventType::Temperature => keyed!(Temperature, Temperature),
            EventType::ObjectPresent => keyed!(ObjectPresent, ObjectPresent),
            EventType::Humidity => keyed!(Humidity, Humidity),
            EventType::ObjectPresentCount => keyed!(ObjectPresentCount, Count),
            EventType::TouchCount => keyed!(TouchCount, Count),
            EventType::WaterPresent => keyed!(WaterPresent, WaterPresent),
            EventType::NetworkStatus => keyed!(NetworkStatus, NetworkStatus),
            EventType::BatteryStatus => keyed!(BatteryStatus, BatteryStatus),
            EventType::LabelsChanged => {
                LabelsChanged::deserialize(deserializer).map(EventData::LabelsChanged)
            }
            EventType::ConnectionStatus => keyed!(ConnectionStatus, ConnectionStatus),
            EventType::EthernetStatus => keyed!(EthernetStatus, EthernetStatus),
            EventType::CellularStatus => keyed!(CellularStatus, CellularStatus),
            EventType::Co2 => keyed!(Co2, Co2),
            EventType::Pressure => keyed!(Pressure, Pressure),
            EventType::Motion => keyed!(Motion, Motion),
            EventType::DeskOccupancy => keyed!(DeskOccupancy, DeskOccupancy),
            EventType::Contact => keyed!(Contact, Contact),
            EventType::ProbeWireStatus => keyed!(ProbeWireStatus, ProbeWireStatus),
            EventType::Unknown(_) => Value::deserialize(deserializer).map(EventData::Unknown),
        }
    }
}

/// `{"<key>": T, ...}`: decodes `T` under `key` (other keys are ignored), so that the
/// error path runs through `data.<eventType>`.
struct KeyedVisitor<'a, T> {
    key: &'a str,
    marker: std::marker::PhantomData<T>,
}

impl<'a, T> KeyedVisitor<'a, T> {
    fn new(key: &'a str) -> Self {
        Self {
            key,
            marker: std::marker::PhantomData,
        }
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for KeyedVisitor<'_, T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with the key `{}`", self.key)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == self.key {
                if found.is_some() {
                    return Err(de::Error::custom(format_args!(
                        "duplicate field `{}`",
                        self.key
                    )));
                }
                found = Some(map.next_value::<T>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        found.ok_or_else(|| de::Error::custom(format_args!("missing field `{}`", self.key)))
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EventVisitor)
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Data Connector event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        let mut event_id = None;
        let mut target_name = None;
        let mut event_type: Option<EventType> = None;
        let mut data = None;
        // `data` seen before `eventType` (DT sends eventType first): decoded at the end.
        let mut early_data: Option<Value> = None;
        let mut timestamp = None;

        fn once<T, E: de::Error>(slot: &Option<T>, name: &'static str) -> Result<(), E> {
            if slot.is_some() {
                Err(E::duplicate_field(name))
            } else {
                Ok(())
            }
        }

        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "eventId" => {
                    once(&event_id, "eventId")?;
                    event_id = Some(map.next_value::<String>()?);
                }
                "targetName" => {
                    once(&target_name, "targetName")?;
                    target_name = Some(map.next_value::<String>()?);
                }
                "eventType" => {
                    once(&event_type, "eventType")?;
                    event_type = Some(map.next_value::<EventType>()?);
                }
                "data" => {
                    if data.is_some() || early_data.is_some() {
                        return Err(de::Error::duplicate_field("data"));
                    }
                    match &event_type {
                        Some(event_type) => data = Some(map.next_value_seed(DataSeed(event_type))?),
                        None => early_data = Some(map.next_value::<Value>()?),
                    }
                }
                "timestamp" => {
                    once(&timestamp, "timestamp")?;
                    timestamp = Some(map.next_value::<Timestamp>()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }

        let event_type = event_type.ok_or_else(|| de::Error::missing_field("eventType"))?;
        let data = match (data, early_data) {
            (Some(data), _) => data,
            (None, Some(value)) => DataSeed(&event_type)
                .deserialize(value)
                .map_err(|error| de::Error::custom(format_args!("data: {error}")))?,
            (None, None) => return Err(de::Error::missing_field("data")),
        };
        Ok(Event {
            event_id: event_id.ok_or_else(|| de::Error::missing_field("eventId"))?,
            target_name: target_name.ok_or_else(|| de::Error::missing_field("targetName"))?,
            event_type,
            data,
            timestamp: timestamp.ok_or_else(|| de::Error::missing_field("timestamp"))?,
        })
    }
}
