//! The data struct of each event type (`event.data.<eventType>`), and the structs they
//! hold. Which type uses which struct is said once, in the table in `table.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::format::{micros, number};
use super::{
    Connection, ContactState, DeskOccupancyState, MotionState, PresenceState, ProbeWireState,
    Timestamp, TransmissionMode,
};

/// A data struct: camelCase keys in the declared order (DT's), `#[non_exhaustive]`.
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
    // A sampled measurement: its fields, then `updateTime`, `samples` and `isBackfilled`.
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
        sampled by $sample:ty
    ) => {
        data_struct! {
            $(#[$meta])*
            pub struct $name {
                $( $(#[$fmeta])* pub $field: $ty, )*
                /// When it was measured (the last sample's time).
                #[serde(with = "micros")]
                pub update_time: Timestamp,
                /// The samples this event carries; `None` in bodies that have no `samples`.
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub samples: Option<Vec<$sample>>,
                /// Whether the event was sent late, after the device lost its connection;
                /// `None` in older bodies.
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub is_backfilled: Option<bool>,
            }
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
    }
    sampled by TemperatureSample
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
    }
    sampled by HumiditySample
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
    /// `updateTime`: [`Event::update_time`](super::Event::update_time) gives the event's `timestamp`.
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
