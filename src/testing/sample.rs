//! [`Payload::sample`]: schema-true example payloads of every event type (feature
//! `test-util`), for tests and for a local Data Connector.

use std::collections::BTreeMap;

use chrono::{DurationRound, TimeDelta};

use super::signer::{encode_id, new_id};
use crate::events::for_each_event_type;
use crate::events::*;

/// The project id of every [`Payload::sample`]: an id in DT's format that no real
/// project has.
pub const SAMPLE_PROJECT_ID: &str = "cl0ca1dataconnect0r0";

impl Payload {
    /// An example payload of `event_type` at `at` (a [`Timestamp`] or a `SystemTime`), shaped exactly like DT's (same keys, key
    /// order, value types, timestamp format), from an emulated device of the right kind in
    /// the project [`SAMPLE_PROJECT_ID`]. Feature `test-util`.
    ///
    /// The event id is fresh; `at` (truncated to microseconds, as DT sends them) is both the
    /// event's `timestamp` and its data's `updateTime`; the values vary a little with `at`.
    /// `None` for [`EventType::Unknown`].
    ///
    /// ```
    /// use tower_dt_signature::events::{EventType, Payload};
    ///
    /// let now = std::time::SystemTime::now();
    /// for event_type in EventType::ALL {
    ///     let payload = Payload::sample(&event_type, now).unwrap();
    ///     let body = serde_json::to_vec(&payload).unwrap();
    ///     assert_eq!(Payload::from_slice(&body).unwrap(), payload);
    /// }
    /// ```
    pub fn sample(event_type: &EventType, at: impl Into<Timestamp>) -> Option<Payload> {
        let at: Timestamp = at.into();
        let at = at.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(at);
        let index = EventType::ALL.iter().position(|t| t == event_type)?;
        let sample = SampleAt::new(event_type, at);
        let (data, device_type) = sample_data(&sample)?;

        let device = if device_type == "ccon" {
            SampleAt::ccon()
        } else {
            device_id(index as u8)
        };
        Some(Payload {
            event: Event {
                event_id: new_id(sample.secs),
                target_name: format!("projects/{SAMPLE_PROJECT_ID}/devices/{device}"),
                event_type: event_type.clone(),
                data,
                timestamp: at,
            },
            labels: BTreeMap::from([("name".to_owned(), label_name(event_type))]),
            metadata: Some(Metadata {
                device_id: Some(device),
                project_id: Some(SAMPLE_PROJECT_ID.to_owned()),
                device_type: Some(device_type.to_owned()),
                product_number: Some(String::new()),
            }),
        })
    }
}

/// Makes `sample_data` from the table of event types (`events/table.rs`): the data of a
/// sample, as the [`Sample`] of the type's data struct, and the kind of device it comes
/// from.
macro_rules! sample_data {
    ($( $variant:ident = $name:literal, $data:ident, $shape:ident, $device:literal; )+) => {
        /// The data of a sample of `at.event_type` and the `deviceType` that sends it;
        /// `None` for an unknown type.
        fn sample_data(at: &SampleAt<'_>) -> Option<(EventData, &'static str)> {
            Some(match at.event_type {
                $( EventType::$variant => (EventData::$variant($data::sample(at)), $device), )+
                EventType::Unknown(_) => return None,
            })
        }
    };
}

for_each_event_type!(sample_data);

/// What a sample is made from: its event type and time, and small variations made from
/// the time, so that a run of samples is not all alike.
struct SampleAt<'a> {
    event_type: &'a EventType,
    /// The time, in microseconds; the event's `timestamp` and its data's `updateTime`.
    at: Timestamp,
    /// `at`'s microseconds within its second.
    micros: u64,
    /// `at`'s whole seconds since 1970.
    secs: u64,
}

impl<'a> SampleAt<'a> {
    fn new(event_type: &'a EventType, at: Timestamp) -> Self {
        Self {
            event_type,
            at,
            micros: u64::from(at.timestamp_subsec_micros()),
            secs: at.timestamp().max(0) as u64,
        }
    }

    /// 0.0 ..= 9.9, to add to a measured value.
    fn wiggle(&self) -> f64 {
        (self.micros % 100) as f64 / 10.0
    }

    /// `base` plus up to `spread - 1`.
    fn around(&self, base: u64, spread: u64) -> u64 {
        base + self.micros % spread
    }

    /// One of two states, by the time.
    fn either<T>(&self, one: T, other: T) -> T {
        if self.micros.is_multiple_of(2) {
            one
        } else {
            other
        }
    }

    /// The Cloud Connector of every sample.
    fn ccon() -> String {
        device_id(0xcc)
    }
}

/// A schema-true example of an event type's data, for [`Payload::sample`]: every data
/// struct named in the table of event types has one.
trait Sample {
    fn sample(at: &SampleAt<'_>) -> Self;
}

/// `impl Sample` for the data structs that hold one value and `updateTime`: the value,
/// made from the sample's time.
macro_rules! one_value_samples {
    ($( $data:ident { $field:ident: |$at:ident| $value:expr } )+) => {
        $(
            impl Sample for $data {
                fn sample($at: &SampleAt<'_>) -> Self {
                    Self {
                        $field: $value,
                        update_time: $at.at,
                    }
                }
            }
        )+
    };
}

one_value_samples! {
    ObjectPresent { state: |at| at.either(PresenceState::Present, PresenceState::NotPresent) }
    WaterPresent { state: |at| at.either(PresenceState::Present, PresenceState::NotPresent) }
    BatteryStatus { percentage: |at| at.around(50, 50) as u8 }
    Co2 { ppm: |at| at.around(420, 600) as u32 }
    Pressure { pascal: |at| at.around(99_000, 1000) as f64 }
    Motion { state: |at| at.either(MotionState::MotionDetected, MotionState::NoMotionDetected) }
    Contact { state: |at| at.either(ContactState::Open, ContactState::Closed) }
    ProbeWireStatus { state: |_at| ProbeWireState::ThreeWire }
}

impl Sample for Touch {
    fn sample(at: &SampleAt<'_>) -> Self {
        Self { update_time: at.at }
    }
}

impl Sample for Temperature {
    fn sample(at: &SampleAt<'_>) -> Self {
        let value = 18.0 + at.wiggle();
        Self {
            value,
            update_time: at.at,
            samples: Some(vec![TemperatureSample {
                value,
                sample_time: at.at,
            }]),
            is_backfilled: Some(false),
        }
    }
}

impl Sample for Humidity {
    fn sample(at: &SampleAt<'_>) -> Self {
        let (temperature, relative_humidity) = (20.0 + at.wiggle(), 40.0 + at.wiggle());
        Self {
            temperature,
            relative_humidity,
            update_time: at.at,
            samples: Some(vec![HumiditySample {
                temperature,
                relative_humidity,
                sample_time: at.at,
            }]),
            is_backfilled: Some(false),
        }
    }
}

impl Sample for Count {
    fn sample(at: &SampleAt<'_>) -> Self {
        // A touch counter counts less than a proximity counter.
        let range = if *at.event_type == EventType::TouchCount {
            10_000
        } else {
            100_000
        };
        Self {
            total: at.secs % range,
            update_time: at.at,
        }
    }
}

impl Sample for NetworkStatus {
    fn sample(at: &SampleAt<'_>) -> Self {
        let signal_strength = at.around(40, 50) as u8;
        let rssi = -95 + i32::from(signal_strength) / 4;
        Self {
            signal_strength,
            rssi,
            update_time: at.at,
            cloud_connectors: vec![CloudConnector {
                id: SampleAt::ccon(),
                signal_strength,
                rssi,
            }],
            transmission_mode: Some(TransmissionMode::LowPowerStandardMode),
        }
    }
}

impl Sample for LabelsChanged {
    fn sample(at: &SampleAt<'_>) -> Self {
        Self {
            added: BTreeMap::from([("floor".to_owned(), "2".to_owned())]),
            modified: BTreeMap::from([("name".to_owned(), label_name(at.event_type))]),
            removed: vec!["old-location".to_owned()],
        }
    }
}

impl Sample for ConnectionStatus {
    fn sample(at: &SampleAt<'_>) -> Self {
        Self {
            connection: Connection::Ethernet,
            available: vec![Connection::Cellular, Connection::Ethernet],
            update_time: at.at,
        }
    }
}

impl Sample for EthernetStatus {
    fn sample(at: &SampleAt<'_>) -> Self {
        Self {
            mac_address: "f0:b5:b7:00:0a:08".to_owned(),
            ip_address: "10.0.0.1".to_owned(),
            errors: Vec::new(),
            update_time: at.at,
        }
    }
}

impl Sample for CellularStatus {
    fn sample(at: &SampleAt<'_>) -> Self {
        Self {
            signal_strength: at.around(60, 40) as u8,
            errors: Vec::new(),
            update_time: at.at,
        }
    }
}

impl Sample for DeskOccupancy {
    fn sample(at: &SampleAt<'_>) -> Self {
        Self {
            state: at.either(
                DeskOccupancyState::Occupied,
                DeskOccupancyState::NotOccupied,
            ),
            remarks: Some(Vec::new()),
            update_time: at.at,
        }
    }
}

/// An emulated device's id, as DT names them: `emu` and 20 id characters, one per kind.
fn device_id(kind: u8) -> String {
    let mut raw = *b"local-sensor";
    raw[11] = kind;
    format!("emu{}", encode_id(&raw))
}

fn label_name(event_type: &EventType) -> String {
    format!("{event_type} sensor")
}
