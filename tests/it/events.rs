//! The `events` module against DT's bodies: every file in `tests/data/dt-events/` and both
//! `tests/data/dt-vectors/` bodies decode to the right variant with the right values (read
//! from the files by hand), encode back to the same bytes, and the decoder tolerates what
//! DT may add while naming the field of whatever does not fit.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};

use tower_dt_signature::events::*;

use crate::support::Vector;

fn body(name: &str) -> String {
    let path = format!(
        "{}/tests/data/dt-events/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn decode(name: &str) -> Payload {
    Payload::from_slice(body(name).as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `2024-11-05T09:MM:SS.micros Z` and friends, written out by hand.
fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, micros: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
        + chrono::Duration::microseconds(micros.into())
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The envelope every DT event has, as read from its file by hand.
struct Envelope {
    event_id: &'static str,
    project: &'static str,
    device: &'static str,
    event_type: EventType,
    timestamp: DateTime<Utc>,
    name: &'static str,
    device_type: &'static str,
    product_number: &'static str,
}

/// Checks the envelope of `payload` against the values read from the file by hand.
fn check_event(payload: &Payload, want: &Envelope) {
    let event = &payload.event;
    assert_eq!(event.event_id, want.event_id);
    assert_eq!(
        event.target_name,
        format!("projects/{}/devices/{}", want.project, want.device)
    );
    assert_eq!(event.project_id(), Some(want.project));
    assert_eq!(event.device_id(), Some(want.device));
    assert_eq!(event.event_type, want.event_type);
    assert_eq!(event.timestamp, want.timestamp);
    assert_eq!(event.update_time(), want.timestamp);
    assert_eq!(
        payload.labels.get("name").map(String::as_str),
        Some(want.name)
    );
    let metadata = payload.metadata.as_ref().expect("metadata");
    assert_eq!(metadata.device_id.as_deref(), Some(want.device));
    assert_eq!(metadata.project_id.as_deref(), Some(want.project));
    assert_eq!(metadata.device_type.as_deref(), Some(want.device_type));
    assert_eq!(
        metadata.product_number.as_deref(),
        Some(want.product_number)
    );
}

/// The data of a payload, which must be this variant's.
macro_rules! data {
    ($payload:expr, $variant:ident) => {
        match &$payload.event.data {
            EventData::$variant(data) => data,
            other => panic!("{other:?}"),
        }
    };
}

/// One test per file of `tests/data/dt-events/`, a row of data each, so that a file that
/// fails is named: the test's name, then the file, its envelope (eventId, project, device,
/// eventType, timestamp, label `name`, deviceType, productNumber: read from the file by
/// hand, checked by `check_event`), and the assertions on its data, where `p` is the
/// payload, `d` its data (of the variant named by the eventType) and `t` the timestamp.
macro_rules! event_tests {
    (
        |$p:ident, $d:ident, $t:ident|
        $(
            $test:ident(
                $file:literal, $id:literal, $project:expr, $device:literal, $variant:ident,
                $time:expr, $name:literal, $device_type:literal, $product:literal $(,)?
            ) $body:block
        )*
    ) => {
        $(
            #[test]
            fn $test() {
                let $p = decode($file);
                let $t = $time;
                let envelope = Envelope {
                    event_id: $id,
                    project: $project,
                    device: $device,
                    event_type: EventType::$variant,
                    timestamp: $t,
                    name: $name,
                    device_type: $device_type,
                    product_number: $product,
                };
                check_event(&$p, &envelope);
                let $d = data!($p, $variant);
                $body
            }
        )*
    };
}

const P: &str = "c0md3mm0c7pet3vico8g";

event_tests! {
    |p, d, t|
    touch("touch", "c82gg9catj3vmh4248og", "c14u9p094l47cdv1o3pg", "emuc17m6d7lq0bgk44smcqg", Touch, utc(2022, 2, 10, 12, 42, 13, 313_949), "touch", "touch", "") { assert_eq!(d.update_time, t); }
    temperature("temperature", "cpbg96qngr7ai7ldarrg", "ccol8iuk9smqiha4e8l0", "emucdd6ef2eu277bo8f52vg", Temperature, utc(2024, 5, 29, 10, 34, 3, 970_415), "test temp", "temperature", "") {
        assert_eq!(d.value, 27.0);
        assert_eq!(d.update_time, t);
        let samples = d.samples.as_ref().unwrap();
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].value, 27.0);
        assert_eq!(samples[0].sample_time, t);
        assert_eq!(d.is_backfilled, Some(false));
    }
    object_present("objectPresent", "csku38sq7g8h4pqv7pvg", P, "ckd8j8sq7g8h4pqv3u80", ObjectPresent, utc(2024, 11, 5, 9, 13, 7, 618_444), "Meeting room 3 door", "proximity", "102064") { assert_eq!(d.state, PresenceState::NotPresent); assert_eq!(d.update_time, t); }
    humidity("humidity", "csku4lsq7g8h4pqvfheg", P, "ckd8klsq7g8h4pqvbln0", Humidity, utc(2024, 11, 5, 9, 16, 7, 755_655), "Server room", "humidity", "102081") {
        assert_eq!(p.labels, labels(&[("name", "Server room"), ("room-number", "99")]));
        assert_eq!((d.temperature, d.relative_humidity), (22.45, 41.5));
        assert_eq!(d.update_time, t);
        let samples = d.samples.as_ref().unwrap();
        assert_eq!(samples.len(), 1);
        assert_eq!((samples[0].temperature, samples[0].relative_humidity), (22.45, 41.5));
        assert_eq!(samples[0].sample_time, t);
        assert_eq!(d.is_backfilled, Some(false));
    }
    object_present_count("objectPresentCount", "csku5jsq7g8h4pqvn8tg", P, "ckd8ljsq7g8h4pqvjd60", ObjectPresentCount, utc(2024, 11, 5, 9, 18, 7, 892_866), "Entrance door counter", "proximityCounter", "101730") { assert_eq!(d.total, 4176); assert_eq!(d.update_time, t); }
    touch_count("touchCount", "csku6i4q7g8h4pqvv0cg", P, "ckd8mi4q7g8h4pqvr4l0", TouchCount, utc(2024, 11, 5, 9, 20, 8, 30_077), "Feedback button", "touchCounter", "101675") { assert_eq!(d.total, 469); assert_eq!(d.update_time, t); }
    water_present("waterPresent", "csku7g4q7g8h4pr06nrg", P, "ckd8ng4q7g8h4pr02s40", WaterPresent, utc(2024, 11, 5, 9, 22, 8, 167_288), "Basement floor", "waterDetector", "101714") { assert_eq!(d.state, PresenceState::Present); assert_eq!(d.update_time, t); }
    network_status("networkStatus", "csku8e4q7g8h4pr0efag", P, "ckd8oe4q7g8h4pr0ajj0", NetworkStatus, utc(2024, 11, 5, 9, 24, 8, 304_499), "Fridge 2", "temperature", "102067") {
        assert_eq!((d.signal_strength, d.rssi), (45, -83));
        assert_eq!(d.update_time, t);
        assert_eq!(d.cloud_connectors.len(), 1);
        assert_eq!(d.cloud_connectors[0].id, "bdkjbo2v0000uk377c4g");
        assert_eq!((d.cloud_connectors[0].signal_strength, d.cloud_connectors[0].rssi), (45, -83));
        assert_eq!(d.transmission_mode, Some(TransmissionMode::LowPowerStandardMode));
    }
    battery_status("batteryStatus", "csku9c4q7g8h4pr0m6pg", P, "ckd8pc4q7g8h4pr0ib20", BatteryStatus, utc(2024, 11, 5, 9, 26, 8, 441_710), "Fridge 2", "temperature", "102067") { assert_eq!(d.percentage, 87); assert_eq!(d.update_time, t); }
    labels_changed_is_not_keyed_and_takes_the_event_time("labelsChanged", "cskuaa4q7g8h4pr0tu8g", P, "ckd8qa4q7g8h4pr0q2h0", LabelsChanged, utc(2024, 11, 5, 9, 28, 8, 578_921), "Fridge 2 (kitchen)", "temperature", "102067") {
        assert_eq!(d.added, labels(&[("floor", "2")]));
        assert_eq!(d.modified, labels(&[("name", "Fridge 2 (kitchen)")]));
        assert_eq!(d.removed, vec!["old-location".to_owned()]);
        assert_eq!(p.event.data.update_time(), None);
        assert_eq!(p.event.update_time(), t);
    }
    connection_status("connectionStatus", "cskub84q7g8h4pr11q00", P, "bdkjbo2v0000uk377c4g", ConnectionStatus, utc(2024, 11, 5, 9, 30, 8, 716_132), "Cloud Connector 2nd floor", "ccon", "100011") {
        assert_eq!(d.connection, Connection::Ethernet);
        assert_eq!(d.available, vec![Connection::Cellular, Connection::Ethernet]);
        assert_eq!(d.update_time, t);
    }
    ethernet_status("ethernetStatus", "cskuc64q7g8h4pr15lng", P, "bdkjbo2v0000uk377c4g", EthernetStatus, utc(2024, 11, 5, 9, 32, 8, 853_343), "Cloud Connector 2nd floor", "ccon", "100011") {
        assert_eq!(d.mac_address, "f0:b5:b7:00:0a:08");
        assert_eq!(d.ip_address, "10.0.0.1");
        assert!(d.errors.is_empty());
        assert_eq!(d.update_time, t);
    }
    cellular_status("cellularStatus", "cskud44q7g8h4pr19hf0", P, "bdkjbo2v0000uk377c4g", CellularStatus, utc(2024, 11, 5, 9, 34, 8, 990_554), "Cloud Connector 2nd floor", "ccon", "100011") {
        assert_eq!(d.signal_strength, 80);
        assert!(d.errors.is_empty());
        assert_eq!(d.update_time, t);
    }
    co2("co2", "cskue2cq7g8h4pr1h8u0", P, "ckd8t4cq7g8h4pr1dd6g", Co2, utc(2024, 11, 5, 9, 36, 9, 264_976), "Open office CO2", "co2", "") { assert_eq!(d.ppm, 526); assert_eq!(d.update_time, t); }
    pressure("pressure", "cskue2cq7g8h4pr1l4lg", P, "ckd8t4cq7g8h4pr1dd6g", Pressure, utc(2024, 11, 5, 9, 36, 9, 402_187), "Open office CO2", "co2", "") { assert_eq!(d.pascal, 99301.0); assert_eq!(d.update_time, t); }
    motion("motion", "cskuf0cq7g8h4pr1ss4g", P, "ckd8v0cq7g8h4pr1p0d0", Motion, utc(2024, 11, 5, 9, 38, 9, 539_398), "Corridor B", "motion", "") { assert_eq!(d.state, MotionState::MotionDetected); assert_eq!(d.update_time, t); }
    desk_occupancy("deskOccupancy", "cskufucq7g8h4pr24jjg", P, "ckd8vucq7g8h4pr20ns0", DeskOccupancy, utc(2024, 11, 5, 9, 40, 9, 676_609), "Desk 4.12", "deskOccupancy", "") {
        assert_eq!(d.state, DeskOccupancyState::Occupied);
        assert_eq!(d.remarks, Some(vec![]));
        assert_eq!(d.update_time, t);
    }
    contact("contact", "cskugscq7g8h4pr2cb2g", P, "ckd90scq7g8h4pr28fb0", Contact, utc(2024, 11, 5, 9, 42, 9, 813_820), "Back door", "contact", "") { assert_eq!(d.state, ContactState::Closed); assert_eq!(d.update_time, t); }
    probe_wire_status("probeWireStatus", "cskuhqcq7g8h4pr2k2hg", P, "ckd91qcq7g8h4pr2g6q0", ProbeWireStatus, utc(2024, 11, 5, 9, 44, 9, 951_031), "Freezer probe", "temperature", "") { assert_eq!(d.state, ProbeWireState::ThreeWire); assert_eq!(d.update_time, t); }
}

#[test]
fn both_dt_vector_bodies() {
    let cases = [
        (
            "touch-2022-01-12-sha1-only-with-metadata.json",
            "c7fa4e34fet12rl646l0",
            utc(2022, 1, 12, 9, 41, 12, 108_482),
        ),
        (
            "touch-2022-02-10-sha256-valid.json",
            "c82gg9catj3vmh4248og",
            utc(2022, 2, 10, 12, 42, 13, 313_949),
        ),
    ];
    for (file, event_id, t) in cases {
        let p = Payload::from_slice(&Vector::load(file).body).unwrap();
        let envelope = Envelope {
            event_id,
            project: "c14u9p094l47cdv1o3pg",
            device: "emuc17m6d7lq0bgk44smcqg",
            event_type: EventType::Touch,
            timestamp: t,
            name: "touch",
            device_type: "touch",
            product_number: "",
        };
        check_event(&p, &envelope);
        assert_eq!(p.event.data, EventData::Touch(touch_at(t)), "{file}");
    }
}

fn touch_at(t: DateTime<Utc>) -> Touch {
    // Touch is #[non_exhaustive]: build it the way users can, by decoding.
    let json = format!(r#"{{"updateTime":"{}"}}"#, t.to_rfc3339());
    serde_json::from_str(&json).unwrap()
}

/// Every file in the directory is covered by a test above (a new file must get one).
#[test]
fn every_event_file_is_a_known_type_and_reencodes_to_the_same_bytes() {
    let dir = format!("{}/tests/data/dt-events", env!("CARGO_MANIFEST_DIR"));
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let payload = Payload::from_slice(text.as_bytes()).unwrap();
        assert_eq!(payload.event.event_type.as_str(), name);
        assert!(
            !matches!(payload.event.event_type, EventType::Unknown(_)),
            "{name}"
        );
        assert!(
            !matches!(payload.event.data, EventData::Unknown(_)),
            "{name}"
        );
        // DT's key order, timestamp format and number format, byte for byte.
        assert_eq!(serde_json::to_string(&payload).unwrap(), text, "{name}");
        seen.push(name);
    }
    seen.sort();
    let mut all: Vec<String> = EventType::ALL.iter().map(|t| t.to_string()).collect();
    all.sort();
    assert_eq!(seen, all);
    for file in [
        "touch-2022-01-12-sha1-only-with-metadata.json",
        "touch-2022-02-10-sha256-valid.json",
    ] {
        let body = Vector::load(file).body;
        let payload = Payload::from_slice(&body).unwrap();
        assert_eq!(serde_json::to_vec(&payload).unwrap(), body, "{file}");
    }
}

#[test]
fn unknown_event_type_keeps_the_raw_data() {
    let text = body("touch").replace(
        r#""eventType":"touch","data":{"touch":{"updateTime":"2022-02-10T12:42:13.313949Z"}}"#,
        r#""eventType":"doorLock","data":{"doorLock":{"locked":true,"updateTime":"2022-02-10T12:42:14.000001Z"}}"#,
    );
    assert!(text.contains("doorLock"));
    let p = Payload::from_slice(text.as_bytes()).unwrap();
    assert_eq!(p.event.event_type, EventType::Unknown("doorLock".into()));
    assert_eq!(p.event.event_type.as_str(), "doorLock");
    let raw = data!(p, Unknown);
    assert_eq!(raw["doorLock"]["locked"], true);
    // The update time is read from the keyed data when it is there.
    assert_eq!(p.event.update_time(), utc(2022, 2, 10, 12, 42, 14, 1));
    // And it encodes back as it came.
    assert_eq!(serde_json::to_string(&p).unwrap(), text);

    // Unknown data without an updateTime: the event's timestamp.
    let text = body("touch").replace(
        r#""eventType":"touch","data":{"touch":{"updateTime":"2022-02-10T12:42:13.313949Z"}}"#,
        r#""eventType":"doorLock","data":[1,2]"#,
    );
    let p = Payload::from_slice(text.as_bytes()).unwrap();
    assert_eq!(p.event.data, EventData::Unknown(serde_json::json!([1, 2])));
    assert_eq!(p.event.update_time(), utc(2022, 2, 10, 12, 42, 13, 313_949));
}

#[test]
fn unknown_states_are_kept() {
    let cases: [(&str, &str, &str); 6] = [
        ("contact", "CLOSED", "AJAR"),
        ("motion", "MOTION_DETECTED", "MAYBE"),
        ("objectPresent", "NOT_PRESENT", "FLICKER"),
        ("deskOccupancy", "OCCUPIED", "RESERVED"),
        ("probeWireStatus", "THREE_WIRE", "SIX_WIRE"),
        ("networkStatus", "LOW_POWER_STANDARD_MODE", "TURBO_MODE"),
    ];
    for (name, from, to) in cases {
        let text = body(name).replace(from, to);
        assert_ne!(text, body(name));
        let p = Payload::from_slice(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let kept = match &p.event.data {
            EventData::Contact(d) => d.state == ContactState::Unknown(to.into()),
            EventData::Motion(d) => d.state == MotionState::Unknown(to.into()),
            EventData::ObjectPresent(d) => d.state == PresenceState::Unknown(to.into()),
            EventData::DeskOccupancy(d) => d.state == DeskOccupancyState::Unknown(to.into()),
            EventData::ProbeWireStatus(d) => d.state == ProbeWireState::Unknown(to.into()),
            EventData::NetworkStatus(d) => {
                d.transmission_mode == Some(TransmissionMode::Unknown(to.into()))
            }
            other => panic!("{other:?}"),
        };
        assert!(kept, "{name}: {:?}", p.event.data);
        assert_eq!(serde_json::to_string(&p).unwrap(), text, "{name}");
    }
    let text = body("connectionStatus")
        .replace(r#""connection":"ETHERNET""#, r#""connection":"SATELLITE""#);
    let p = Payload::from_slice(text.as_bytes()).unwrap();
    let d = data!(p, ConnectionStatus);
    assert_eq!(d.connection, Connection::Unknown("SATELLITE".into()));
    assert_eq!(d.connection.to_string(), "SATELLITE");
}

#[test]
fn unknown_fields_are_ignored_everywhere() {
    let text = body("temperature")
        .replacen(
            r#"{"event":{"#,
            r#"{"version":2,"event":{"region":"eu","#,
            1,
        )
        .replacen(r#""value":27,"#, r#""value":27,"unit":"celsius","#, 1)
        .replace(
            r#""isBackfilled":false}"#,
            r#""isBackfilled":false},"extra":{"x":1}"#,
        )
        .replace(
            r#""productNumber":"""#,
            r#""productNumber":"","firmware":"1.2""#,
        );
    assert_eq!(text.matches("unit").count(), 1);
    assert_eq!(text.matches("extra").count(), 1);
    let p = Payload::from_slice(text.as_bytes()).unwrap();
    assert_eq!(p, decode("temperature"));
}

#[test]
fn optional_fields_may_be_missing() {
    // A body from before 2022-01: no metadata.
    let text = body("touch");
    let cut = text.find(r#","metadata""#).unwrap();
    let old = format!("{}}}", &text[..cut]);
    let p = Payload::from_slice(old.as_bytes()).unwrap();
    assert_eq!(p.metadata, None);
    assert_eq!(p.event.device_id(), Some("emuc17m6d7lq0bgk44smcqg"));
    assert_eq!(serde_json::to_string(&p).unwrap(), old);

    // No labels at all: empty.
    let text = body("co2").replace(r#","labels":{"name":"Open office CO2"}"#, "");
    let p = Payload::from_slice(text.as_bytes()).unwrap();
    assert!(p.labels.is_empty());

    // Temperature before isBackfilled and samples.
    let text = body("temperature").replace(
        r#","samples":[{"value":27,"sampleTime":"2024-05-29T10:34:03.970415Z"}],"isBackfilled":false"#,
        "",
    );
    let p = Payload::from_slice(text.as_bytes()).unwrap();
    let d = data!(p, Temperature);
    assert_eq!(
        (d.value, d.samples.is_none(), d.is_backfilled),
        (27.0, true, None)
    );
    assert_eq!(serde_json::to_string(&p).unwrap(), text);

    // Desk occupancy before remarks; network status before transmissionMode.
    let text = body("deskOccupancy").replace(r#""remarks":[],"#, "");
    let p = Payload::from_slice(text.as_bytes()).unwrap();
    let d = data!(p, DeskOccupancy);
    assert_eq!(d.remarks, None);
    let text =
        body("networkStatus").replace(r#","transmissionMode":"LOW_POWER_STANDARD_MODE""#, "");
    let p = Payload::from_slice(text.as_bytes()).unwrap();
    let d = data!(p, NetworkStatus);
    assert_eq!(d.transmission_mode, None);

    // Metadata with fields missing (DT: its shape may change for non-device events).
    let text = body("touch").replace(r#","deviceType":"touch","productNumber":"""#, "");
    let p = Payload::from_slice(text.as_bytes()).unwrap();
    let m = p.metadata.unwrap();
    assert_eq!((m.device_type, m.product_number), (None, None));
}

#[test]
fn data_before_event_type_still_decodes() {
    let text = body("co2").replace(
        r#""eventType":"co2","data":{"co2":{"ppm":526,"updateTime":"2024-11-05T09:36:09.264976Z"}}"#,
        r#""data":{"co2":{"ppm":526,"updateTime":"2024-11-05T09:36:09.264976Z"}},"eventType":"co2""#,
    );
    assert_ne!(text, body("co2"));
    assert_eq!(Payload::from_slice(text.as_bytes()).unwrap(), decode("co2"));
}

#[test]
fn target_names_of_other_shapes() {
    let text = body("touch").replace(
        "projects/c14u9p094l47cdv1o3pg/devices/emuc17m6d7lq0bgk44smcqg",
        "projects/c14u9p094l47cdv1o3pg/dataconnectors/abc",
    );
    let p = Payload::from_slice(text.as_bytes()).unwrap();
    assert_eq!(p.event.project_id(), Some("c14u9p094l47cdv1o3pg"));
    assert_eq!(p.event.device_id(), None);
    for odd in [
        "",
        "devices/x",
        "projects//devices/x",
        "projects/p/devices/",
        "projects/p/devices/d/extra",
    ] {
        let text = body("touch").replace(
            "projects/c14u9p094l47cdv1o3pg/devices/emuc17m6d7lq0bgk44smcqg",
            odd,
        );
        let p = Payload::from_slice(text.as_bytes()).unwrap();
        assert_eq!(p.event.device_id(), None, "{odd}");
    }
}

/// One malformation per row: the error's path names the place, and its text the field.
#[test]
fn malformed_shapes_name_the_field() {
    let temperature = body("temperature");
    let touch = body("touch");
    let labels = body("labelsChanged");
    #[rustfmt::skip]
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("not json", "{".into(), "", "EOF"),
        ("not an object", r#""event""#.into(), "", "invalid type"),
        ("trailing bytes", format!("{touch} x"), "", "trailing characters"),
        ("no event", r#"{"labels":{}}"#.into(), "", "missing field `event`"),
        ("event not an object", r#"{"event":1}"#.into(), "event", "invalid type"),
        ("no eventId", touch.replace(r#""eventId":"c82gg9catj3vmh4248og","#, ""), "event", "missing field `eventId`"),
        ("eventId a number", touch.replace(r#""c82gg9catj3vmh4248og""#, "7"), "event.eventId", "invalid type"),
        ("no targetName", touch.replace(r#""targetName":"projects/c14u9p094l47cdv1o3pg/devices/emuc17m6d7lq0bgk44smcqg","#, ""), "event", "missing field `targetName`"),
        ("no eventType", touch.replace(r#""eventType":"touch","#, ""), "event", "missing field `eventType`"),
        ("eventType null", touch.replace(r#""eventType":"touch""#, r#""eventType":null"#), "event.eventType", "invalid type"),
        ("no data", touch.replace(r#""data":{"touch":{"updateTime":"2022-02-10T12:42:13.313949Z"}},"#, ""), "event", "missing field `data`"),
        ("no timestamp", touch.replace(r#","timestamp":"2022-02-10T12:42:13.313949Z""#, ""), "event", "missing field `timestamp`"),
        ("timestamp not RFC 3339", touch.replace(r#""timestamp":"2022-02-10T12:42:13.313949Z""#, r#""timestamp":"yesterday""#), "event.timestamp", "input"),
        ("duplicate eventId", touch.replace(r#""eventId":"c82gg9catj3vmh4248og","#, r#""eventId":"a","eventId":"b","#), "event", "duplicate field `eventId`"),
        ("data keyed by another type", touch.replace(r#""data":{"touch":"#, r#""data":{"motion":"#), "event.data", "missing field `touch`"),
        ("data not an object", touch.replace(r#""data":{"touch":{"updateTime":"2022-02-10T12:42:13.313949Z"}}"#, r#""data":"touch""#), "event.data", "invalid type"),
        ("no updateTime", touch.replace(r#"{"updateTime":"2022-02-10T12:42:13.313949Z"}"#, "{}"), "event.data.touch", "missing field `updateTime`"),
        ("updateTime not a time", touch.replace(r#""updateTime":"2022-02-10T12:42:13.313949Z""#, r#""updateTime":"2022-02-30T00:00:00Z""#), "event.data.touch.updateTime", "out of range"),
        ("value a string", temperature.replace(r#""value":27,"#, r#""value":"27","#), "event.data.temperature.value", "invalid type"),
        ("sample without time", temperature.replace(r#""sampleTime":"2024-05-29T10:34:03.970415Z""#, r#""sampleTime":null"#), "event.data.temperature.samples[0].sampleTime", "invalid type"),
        ("isBackfilled a string", temperature.replace(r#""isBackfilled":false"#, r#""isBackfilled":"no""#), "event.data.temperature.isBackfilled", "invalid type"),
        ("state a number", body("contact").replace(r#""state":"CLOSED""#, r#""state":1"#), "event.data.contact.state", "invalid type"),
        ("count negative", body("touchCount").replace(r#""total":469"#, r#""total":-1"#), "event.data.touchCount.total", "invalid value"),
        ("signal strength > 255", body("networkStatus").replace(r#""signalStrength":45,"rssi""#, r#""signalStrength":300,"rssi""#), "event.data.networkStatus.signalStrength", "invalid value"),
        ("cloud connector without id", body("networkStatus").replace(r#""id":"bdkjbo2v0000uk377c4g","#, ""), "event.data.networkStatus.cloudConnectors[0]", "missing field `id`"),
        ("removed not a list", labels.replace(r#""removed":["old-location"]"#, r#""removed":"old-location""#), "event.data.removed", "invalid type"),
        ("label value a number", touch.replace(r#""labels":{"name":"touch"}"#, r#""labels":{"name":1}"#), "labels.name", "invalid type"),
        ("metadata a string", touch.replace(r#""metadata":{"#, r#""metadata":"x","old":{"#), "metadata", "invalid type"),
        ("metadata deviceId a number", touch.replace(r#""deviceId":"emuc17m6d7lq0bgk44smcqg""#, r#""deviceId":5"#), "metadata.deviceId", "invalid type"),
    ];
    for (what, text, path, message) in cases {
        let error = Payload::from_slice(text.as_bytes())
            .map(|p| panic!("{what}: decoded {p:?}"))
            .unwrap_err();
        assert_eq!(error.path(), path, "{what}: {error}");
        let shown = error.to_string();
        assert!(shown.contains(message), "{what}: {shown}");
        if !path.is_empty() {
            assert!(shown.contains(&format!("at `{path}`")), "{what}: {shown}");
        }
    }
}

#[test]
fn event_type_names_round_trip() {
    assert_eq!(EventType::ALL.len(), 19);
    for event_type in EventType::ALL {
        assert_eq!(EventType::from(event_type.as_str()), event_type);
        assert!(!matches!(event_type, EventType::Unknown(_)));
    }
    assert_eq!(EventType::from("co2"), EventType::Co2);
    assert_eq!(EventType::from("CO2"), EventType::Unknown("CO2".into()));
}
