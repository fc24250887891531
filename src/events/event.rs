//! [`Event`]: `payload.event`, its accessors, and its encoding in DT's key order; on the
//! way in, the event type picks how `data` decodes.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::format::micros;
use super::{EventData, EventType, Timestamp};

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

// ---- DT's key order on the way out, the event type picks the data on the way in.

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;

        struct Data<'a>(&'a EventType, &'a EventData);

        impl Serialize for Data<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.1.serialize_data(self.0, serializer)
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

/// Decodes `event.data` of the event type it holds.
struct DataSeed<'a>(&'a EventType);

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = EventData;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<EventData, D::Error> {
        EventData::deserialize_data(self.0, deserializer)
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
