//! [`Payload::sample`]: schema-true example payloads of every event type (feature
//! `signer`), for tests and for a local Data Connector.

use std::collections::BTreeMap;

use chrono::{DurationRound, TimeDelta};

use crate::events::*;
use crate::testing::{encode_id, new_id};

/// The project id of every [`Payload::sample`]: an id in DT's format that no real
/// project has.
pub const SAMPLE_PROJECT_ID: &str = "cl0ca1dataconnect0r0";

impl Payload {
    /// An example payload of `event_type` at `at` (a [`Timestamp`] or a `SystemTime`), shaped exactly like DT's (same keys, key
    /// order, value types, timestamp format), from an emulated device of the right kind in
    /// the project [`SAMPLE_PROJECT_ID`]. Feature `signer`.
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
        let micros = u64::from(at.timestamp_subsec_micros());
        let secs = at.timestamp().max(0) as u64;
        // Small variations, so that a run of samples is not all alike.
        let wiggle = (micros % 100) as f64 / 10.0; // 0.0 ..= 9.9
        let flip = micros % 2 == 0;
        let ccon = device_id(0xcc);
        let update_time = at;

        let (data, device_type) = match event_type {
            EventType::Touch => (EventData::Touch(Touch { update_time }), "touch"),
            EventType::Temperature => {
                let value = 18.0 + wiggle;
                let temperature = Temperature {
                    value,
                    update_time,
                    samples: Some(vec![TemperatureSample {
                        value,
                        sample_time: at,
                    }]),
                    is_backfilled: Some(false),
                };
                (EventData::Temperature(temperature), "temperature")
            }
            EventType::ObjectPresent => {
                let state = if flip {
                    PresenceState::Present
                } else {
                    PresenceState::NotPresent
                };
                let data = ObjectPresent { state, update_time };
                (EventData::ObjectPresent(data), "proximity")
            }
            EventType::Humidity => {
                let (temperature, relative_humidity) = (20.0 + wiggle, 40.0 + wiggle);
                let humidity = Humidity {
                    temperature,
                    relative_humidity,
                    update_time,
                    samples: Some(vec![HumiditySample {
                        temperature,
                        relative_humidity,
                        sample_time: at,
                    }]),
                    is_backfilled: Some(false),
                };
                (EventData::Humidity(humidity), "humidity")
            }
            EventType::ObjectPresentCount => {
                let count = Count {
                    total: secs % 100_000,
                    update_time,
                };
                (EventData::ObjectPresentCount(count), "proximityCounter")
            }
            EventType::TouchCount => {
                let count = Count {
                    total: secs % 10_000,
                    update_time,
                };
                (EventData::TouchCount(count), "touchCounter")
            }
            EventType::WaterPresent => {
                let state = if flip {
                    PresenceState::Present
                } else {
                    PresenceState::NotPresent
                };
                let data = WaterPresent { state, update_time };
                (EventData::WaterPresent(data), "waterDetector")
            }
            EventType::NetworkStatus => {
                let signal_strength = 40 + (micros % 50) as u8;
                let rssi = -95 + i32::from(signal_strength) / 4;
                let status = NetworkStatus {
                    signal_strength,
                    rssi,
                    update_time,
                    cloud_connectors: vec![CloudConnector {
                        id: ccon.clone(),
                        signal_strength,
                        rssi,
                    }],
                    transmission_mode: Some(TransmissionMode::LowPowerStandardMode),
                };
                (EventData::NetworkStatus(status), "temperature")
            }
            EventType::BatteryStatus => {
                let status = BatteryStatus {
                    percentage: 50 + (micros % 50) as u8,
                    update_time,
                };
                (EventData::BatteryStatus(status), "temperature")
            }
            EventType::LabelsChanged => {
                let changed = LabelsChanged {
                    added: BTreeMap::from([("floor".to_owned(), "2".to_owned())]),
                    modified: BTreeMap::from([("name".to_owned(), label_name(event_type))]),
                    removed: vec!["old-location".to_owned()],
                };
                (EventData::LabelsChanged(changed), "temperature")
            }
            EventType::ConnectionStatus => {
                let status = ConnectionStatus {
                    connection: Connection::Ethernet,
                    available: vec![Connection::Cellular, Connection::Ethernet],
                    update_time,
                };
                (EventData::ConnectionStatus(status), "ccon")
            }
            EventType::EthernetStatus => {
                let status = EthernetStatus {
                    mac_address: "f0:b5:b7:00:0a:08".to_owned(),
                    ip_address: "10.0.0.1".to_owned(),
                    errors: Vec::new(),
                    update_time,
                };
                (EventData::EthernetStatus(status), "ccon")
            }
            EventType::CellularStatus => {
                let status = CellularStatus {
                    signal_strength: 60 + (micros % 40) as u8,
                    errors: Vec::new(),
                    update_time,
                };
                (EventData::CellularStatus(status), "ccon")
            }
            EventType::Co2 => {
                let co2 = Co2 {
                    ppm: 420 + (micros % 600) as u32,
                    update_time,
                };
                (EventData::Co2(co2), "co2")
            }
            EventType::Pressure => {
                let pressure = Pressure {
                    pascal: 99_000.0 + (micros % 1000) as f64,
                    update_time,
                };
                (EventData::Pressure(pressure), "co2")
            }
            EventType::Motion => {
                let state = if flip {
                    MotionState::MotionDetected
                } else {
                    MotionState::NoMotionDetected
                };
                (EventData::Motion(Motion { state, update_time }), "motion")
            }
            EventType::DeskOccupancy => {
                let state = if flip {
                    DeskOccupancyState::Occupied
                } else {
                    DeskOccupancyState::NotOccupied
                };
                let desk = DeskOccupancy {
                    state,
                    remarks: Some(Vec::new()),
                    update_time,
                };
                (EventData::DeskOccupancy(desk), "deskOccupancy")
            }
            EventType::Contact => {
                let state = if flip {
                    ContactState::Open
                } else {
                    ContactState::Closed
                };
                (
                    EventData::Contact(Contact { state, update_time }),
                    "contact",
                )
            }
            EventType::ProbeWireStatus => {
                let status = ProbeWireStatus {
                    state: ProbeWireState::ThreeWire,
                    update_time,
                };
                (EventData::ProbeWireStatus(status), "temperature")
            }
            EventType::Unknown(_) => return None,
        };

        let device = if device_type == "ccon" {
            ccon
        } else {
            device_id(index as u8)
        };
        Some(Payload {
            event: Event {
                event_id: new_id(secs),
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

/// An emulated device's id, as DT names them: `emu` and 20 id characters, one per kind.
fn device_id(kind: u8) -> String {
    let mut raw = *b"local-sensor";
    raw[11] = kind;
    format!("emu{}", encode_id(&raw))
}

fn label_name(event_type: &EventType) -> String {
    format!("{event_type} sensor")
}
