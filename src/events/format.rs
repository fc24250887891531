//! DT's formats on the wire, for `#[serde(with = "...")]`: timestamps with microseconds
//! and whole numbers without a fraction, so that a decoded body encodes to the same bytes.

/// Serializes a timestamp as DT does: RFC 3339, microseconds, `Z`.
pub(super) mod micros {
    use chrono::SecondsFormat;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::events::Timestamp;

    pub(crate) fn serialize<S: Serializer>(time: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&time.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        Timestamp::deserialize(d)
    }
}

/// Serializes a float as DT does: a whole number without a fraction (`27`, not `27.0`).
pub(super) mod number {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
        if value.fract() == 0.0 && value.abs() < 9.0e15 {
            s.serialize_i64(*value as i64)
        } else {
            s.serialize_f64(*value)
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        f64::deserialize(d)
    }
}
