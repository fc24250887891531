//! The table of event types, and what is made from it: [`EventType`] (with
//! [`EventType::ALL`]), [`EventData`], and the dispatch of `event.data` by type on the way
//! in and out. `Payload::sample` (feature `test-util`, `testing/sample.rs`) is made from it
//! too.

use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::state::string_enum;
use super::*;

/// The event types this crate knows, one line each, in the order of DT's documentation:
///
/// ```text
/// Variant = "dtName", DataStruct, shape, "sample device";
/// ```
///
/// - `Variant` names both the [`EventType`] and the [`EventData`] variant;
/// - `"dtName"` is `event.eventType` as DT sends it, and the key of a keyed `event.data`;
/// - `DataStruct` is the variant's data, a struct in `data.rs` (two types may share one);
/// - `shape` is `keyed` (`"data": {"<dtName>": {..., "updateTime": ...}}`) or `unkeyed`
///   (`"data": {...}` as it is, without `updateTime`: `labelsChanged`);
/// - `"sample device"` is the `metadata.deviceType` of `Payload::sample` (feature
///   `test-util`); `"ccon"` makes the sample come from a Cloud Connector.
///
/// `for_each_event_type!(then)` calls the macro `then!` with the table; each place that
/// needs every type (here, `testing/sample.rs`, the tests) generates its part that way.
/// Adding a type is one line here, its data struct in `data.rs`, its `Sample` impl in
/// `testing/sample.rs` and its body in `tests/data/dt-events/<dtName>.json` (the tests
/// fail without it).
macro_rules! for_each_event_type {
    ($then:ident) => {
        $then! {
            // variant           DT name               data struct       shape     sample device
            Touch              = "touch",              Touch,            keyed,    "touch";
            Temperature        = "temperature",        Temperature,      keyed,    "temperature";
            ObjectPresent      = "objectPresent",      ObjectPresent,    keyed,    "proximity";
            Humidity           = "humidity",           Humidity,         keyed,    "humidity";
            ObjectPresentCount = "objectPresentCount", Count,            keyed,    "proximityCounter";
            TouchCount         = "touchCount",         Count,            keyed,    "touchCounter";
            WaterPresent       = "waterPresent",       WaterPresent,     keyed,    "waterDetector";
            NetworkStatus      = "networkStatus",      NetworkStatus,    keyed,    "temperature";
            BatteryStatus      = "batteryStatus",      BatteryStatus,    keyed,    "temperature";
            LabelsChanged      = "labelsChanged",      LabelsChanged,    unkeyed,  "temperature";
            ConnectionStatus   = "connectionStatus",   ConnectionStatus, keyed,    "ccon";
            EthernetStatus     = "ethernetStatus",     EthernetStatus,   keyed,    "ccon";
            CellularStatus     = "cellularStatus",     CellularStatus,   keyed,    "ccon";
            Co2                = "co2",                Co2,              keyed,    "co2";
            Pressure           = "pressure",           Pressure,         keyed,    "co2";
            Motion             = "motion",             Motion,           keyed,    "motion";
            DeskOccupancy      = "deskOccupancy",      DeskOccupancy,    keyed,    "deskOccupancy";
            Contact            = "contact",            Contact,          keyed,    "contact";
            ProbeWireStatus    = "probeWireStatus",    ProbeWireStatus,  keyed,    "temperature";
        }
    };
}
// For `testing/sample.rs`; the rest of this module uses the macro in place.
#[cfg(feature = "test-util")]
pub(crate) use for_each_event_type;

/// What a `shape` of the table means for one variant's data: its `updateTime`, and how it
/// is written and read under the event type's name.
macro_rules! shape {
    (keyed, update_time, $data:ident) => {
        Some($data.update_time)
    };
    (unkeyed, update_time, $data:ident) => {{
        let _ = $data;
        None
    }};
    (keyed, serialize, $data:ident, $key:expr, $serializer:ident) => {{
        use serde::ser::SerializeMap;
        let mut map = $serializer.serialize_map(Some(1))?;
        map.serialize_entry($key, $data)?;
        map.end()
    }};
    (unkeyed, serialize, $data:ident, $key:expr, $serializer:ident) => {
        $data.serialize($serializer)
    };
    (keyed, deserialize, $ty:ident, $key:expr, $deserializer:ident) => {
        $deserializer.deserialize_map(KeyedVisitor::<$ty>::new($key))
    };
    (unkeyed, deserialize, $ty:ident, $key:expr, $deserializer:ident) => {
        $ty::deserialize($deserializer)
    };
}

/// Makes [`EventType`], [`EventData`] and their dispatch from the table.
macro_rules! event_types {
    ($( $variant:ident = $name:literal, $data:ident, $shape:ident, $device:literal; )+) => {
        string_enum! {
            /// `event.eventType`.
            pub enum EventType {
                $( #[doc = concat!("`", $name, "`")] $variant = $name, )+
            }
        }

        impl EventType {
            /// Every event type this crate knows (not [`EventType::Unknown`]), in the order
            /// of DT's documentation: one entry per line of the crate's table of types.
            pub const ALL: [EventType; [$($name),+].len()] = [$(Self::$variant),+];
        }

        /// `event.data`, one variant per event type.
        ///
        /// Every keyed type arrives as `"data": {"<eventType>": {...}}`; `labelsChanged`
        /// arrives as `"data": {"added": ..., "modified": ..., "removed": ...}`.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum EventData {
            $( #[doc = concat!("`", $name, "`")] $variant($data), )+
            /// An event type this version of the crate does not know: `event.data` as sent.
            Unknown(Value),
        }

        impl EventData {
            /// The data's `updateTime`; `None` for `labelsChanged`, and for an unknown type
            /// whose data has no RFC 3339 `data.<eventType>.updateTime` (see
            /// [`Event::update_time`]).
            pub fn update_time(&self) -> Option<Timestamp> {
                match self {
                    $( Self::$variant(data) => shape!($shape, update_time, data), )+
                    Self::Unknown(value) => unknown_update_time(value),
                }
            }

            /// Writes `event.data`: keyed by `event_type`'s name, or as it is.
            pub(super) fn serialize_data<S: Serializer>(
                &self,
                event_type: &EventType,
                serializer: S,
            ) -> Result<S::Ok, S::Error> {
                match self {
                    $( Self::$variant(data) => {
                        shape!($shape, serialize, data, event_type.as_str(), serializer)
                    } )+
                    Self::Unknown(value) => value.serialize(serializer),
                }
            }

            /// Reads `event.data` of `event_type`; the raw JSON for an unknown type.
            pub(super) fn deserialize_data<'de, D: Deserializer<'de>>(
                event_type: &EventType,
                deserializer: D,
            ) -> Result<Self, D::Error> {
                match event_type {
                    $( EventType::$variant => {
                        shape!($shape, deserialize, $data, event_type.as_str(), deserializer)
                            .map(Self::$variant)
                    } )+
                    EventType::Unknown(_) => Value::deserialize(deserializer).map(Self::Unknown),
                }
            }
        }
    };
}

for_each_event_type!(event_types);

/// `updateTime` of an unknown type's data, if it is keyed like the known types:
/// `{"<eventType>": {"updateTime": ...}}`.
fn unknown_update_time(value: &Value) -> Option<Timestamp> {
    let mut values = value.as_object()?.values();
    let (Some(inner), None) = (values.next(), values.next()) else {
        return None;
    };
    let text = inner.get("updateTime")?.as_str()?;
    Some(DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc))
}

/// `{"<key>": T, ...}`: decodes `T` under `key` (other keys are ignored), so that the
/// error path runs through `data.<eventType>`.
struct KeyedVisitor<'a, T> {
    key: &'a str,
    marker: PhantomData<T>,
}

impl<'a, T> KeyedVisitor<'a, T> {
    fn new(key: &'a str) -> Self {
        Self {
            key,
            marker: PhantomData,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes, from the table, its lines and a check that a data is the variant of a type.
    macro_rules! lines {
        ($( $variant:ident = $name:literal, $data:ident, $shape:ident, $device:literal; )+) => {
            /// Every line of the table: the type and its DT name.
            const LINES: &[(EventType, &str)] = &[$( (EventType::$variant, $name), )+];

            /// Whether `data` is the variant of `event_type`.
            fn is_variant_of(data: &EventData, event_type: &EventType) -> bool {
                match (data, event_type) {
                    $( (EventData::$variant(_), EventType::$variant) => true, )+
                    _ => false,
                }
            }
        };
    }

    for_each_event_type!(lines);

    /// `payload` is an event of `event_type`, with the data of its variant.
    fn assert_event_of(payload: &Payload, event_type: &EventType, name: &str) {
        assert_eq!(&payload.event.event_type, event_type, "{name}");
        assert!(
            is_variant_of(&payload.event.data, event_type),
            "{name}: {:?}",
            payload.event.data
        );
    }

    fn example_body(name: &str) -> String {
        let path = format!(
            "{}/tests/data/dt-events/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{name}: no example body {path}: {e}"))
    }

    /// For every line of the table: the name goes both ways, `ALL` holds the type, and
    /// the example body decodes to the type's variant and encodes back to the same bytes.
    #[test]
    fn every_event_type_in_the_table_round_trips() {
        assert_eq!(EventType::ALL.len(), LINES.len());
        for (index, (event_type, name)) in LINES.iter().enumerate() {
            assert_eq!(&EventType::ALL[index], event_type, "{name}: ALL's order");
            assert_eq!(event_type.as_str(), *name);
            assert_eq!(event_type.to_string(), *name);
            assert_eq!(&EventType::from(*name), event_type);
            let json = serde_json::to_string(event_type).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(
                &serde_json::from_str::<EventType>(&json).unwrap(),
                event_type
            );

            let body = example_body(name);
            let payload =
                Payload::from_slice(body.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_event_of(&payload, event_type, name);
            assert_eq!(serde_json::to_string(&payload).unwrap(), body, "{name}");
        }
        assert!(!is_variant_of(
            &EventData::Unknown(Value::Null),
            &EventType::Unknown("doorLock".into())
        ));
    }

    /// For every line of the table: a sample of the type is the type's variant, and
    /// decodes back to itself.
    #[cfg(feature = "test-util")]
    #[test]
    fn every_event_type_in_the_table_has_a_sample() {
        let at = DateTime::parse_from_rfc3339("2024-11-05T09:13:07.618444Z")
            .unwrap()
            .with_timezone(&Utc);
        for (event_type, name) in LINES {
            let payload = Payload::sample(event_type, at).unwrap_or_else(|| panic!("{name}"));
            assert_event_of(&payload, event_type, name);
            assert_eq!(payload.event.update_time(), at, "{name}");
            let body = serde_json::to_vec(&payload).unwrap();
            let decoded = Payload::from_slice(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(decoded, payload, "{name}");
        }
        assert_eq!(
            Payload::sample(&EventType::Unknown("doorLock".into()), at),
            None
        );
    }
}
