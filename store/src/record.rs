//! [`EventRecord`]: what the store keeps of one verified request, read from its body.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tower_dt_signature::DtClaims;

/// The tenant of a request that no gateway resolved: a layer with one connector's
/// secrets. A fixed value, never NULL: a NULL tenant would defeat the unique key of
/// `dt_event` in SQLite and PostgreSQL alike (two NULLs are never equal).
pub const DEFAULT_TENANT: &str = "-";

/// The prefix of the key of a verified body that is not a DT event (no `event.eventId`,
/// or not JSON): `sha256:` and the body's SHA-256 in lowercase hex.
pub const BODY_KEY_PREFIX: &str = "sha256:";

/// One verified request as the store keeps it: the exact body DT sent and the columns
/// read from it. Built by [`DtStore`](crate::DtStore) from a request that
/// `DtSignatureLayer` verified; a backend writes it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EventRecord {
    /// The tenant ([`TenantId`](tower_dt_signature::gateway::TenantId) of a gateway),
    /// or [`DEFAULT_TENANT`].
    pub tenant: String,
    /// The de-duplication key: `event.eventId`, or [`BODY_KEY_PREFIX`] and the body's
    /// SHA-256 for a body that is not a DT event.
    pub key: String,
    /// The fields of a DT event; `None` for a body that is not one.
    pub event: Option<EventFields>,
    /// The body, byte for byte as DT sent it.
    pub body: Bytes,
    /// The body's SHA-256.
    pub body_sha256: [u8; 32],
    /// The verified schemes: `hmac`, `asymmetric` or `hmac,asymmetric`.
    pub schemes: String,
    /// The `DT-Asymmetric-Signature` header as received, when the request had one: DT's
    /// signature over this body, kept as evidence.
    pub asymmetric_token: Option<String>,
    /// The verified asymmetric token's `kid`.
    pub asymmetric_kid: Option<String>,
    /// When the store received the request, in microseconds since the Unix epoch.
    pub received_at_us: i64,
}

/// What the store reads from a DT event's body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventFields {
    /// `event.eventId`.
    pub event_id: String,
    /// `event.eventType`, e.g. `temperature`.
    pub event_type: String,
    /// `event.targetName`, e.g. `projects/<project>/devices/<device>`.
    pub target_name: String,
    /// The device id from `targetName`; `None` when `targetName` names no device.
    pub device: Option<String>,
    /// The project id from `targetName`.
    pub project: Option<String>,
    /// `event.timestamp` as sent (RFC 3339).
    pub timestamp: String,
    /// `event.timestamp` in nanoseconds since the Unix epoch: DT's version of the
    /// event, compared as an instant, never as text.
    pub timestamp_ns: i64,
}

impl EventFields {
    /// The key of `dt_latest`'s device column: the device id, or the whole `targetName`
    /// when it names no device.
    pub fn device_key(&self) -> &str {
        self.device.as_deref().unwrap_or(&self.target_name)
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    event: Option<RawEvent<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent<'a> {
    #[serde(borrow)]
    event_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    event_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    target_name: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Option<std::borrow::Cow<'a, str>>,
}

/// Reads the event's fields, or `None` when the body is not a DT event the store can
/// key and order: not JSON, no `event`, or an empty `eventId`, `eventType`,
/// `targetName`, or a `timestamp` that is not RFC 3339.
pub(crate) fn parse_event(body: &[u8]) -> Option<EventFields> {
    let envelope: Envelope<'_> = serde_json::from_slice(body).ok()?;
    let event = envelope.event?;
    let nonempty = |field: Option<std::borrow::Cow<'_, str>>| {
        field
            .filter(|value| !value.is_empty())
            .map(|value| value.into_owned())
    };
    let event_id = nonempty(event.event_id)?;
    let event_type = nonempty(event.event_type)?;
    let target_name = nonempty(event.target_name)?;
    let timestamp = nonempty(event.timestamp)?;
    let timestamp_ns = chrono::DateTime::parse_from_rfc3339(&timestamp)
        .ok()?
        .timestamp_nanos_opt()?;
    let (project, device) = split_target(&target_name);
    Some(EventFields {
        event_id,
        event_type,
        device,
        project,
        target_name,
        timestamp,
        timestamp_ns,
    })
}

/// `projects/<project>/devices/<device>` into its project and device ids.
fn split_target(target: &str) -> (Option<String>, Option<String>) {
    let mut parts = target.split('/');
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
            (Some(project.to_owned()), Some(device.to_owned()))
        }
        (Some("projects"), Some(project), None, None, None) if !project.is_empty() => {
            (Some(project.to_owned()), None)
        }
        (Some("projects"), Some(project), ..) if !project.is_empty() => {
            (Some(project.to_owned()), None)
        }
        _ => (None, None),
    }
}

impl EventRecord {
    /// The record of a verified body.
    pub(crate) fn new(
        tenant: Option<&str>,
        body: Bytes,
        claims: &DtClaims,
        asymmetric_token: Option<String>,
        received_at: SystemTime,
    ) -> Self {
        let body_sha256: [u8; 32] = Sha256::digest(&body).into();
        let event = parse_event(&body);
        let key = match &event {
            Some(event) => event.event_id.clone(),
            None => format!("{BODY_KEY_PREFIX}{}", hex::encode(body_sha256)),
        };
        let schemes = claims
            .schemes()
            .iter()
            .map(|scheme| scheme.code())
            .collect::<Vec<_>>()
            .join(",");
        let received_at_us = received_at.duration_since(UNIX_EPOCH).map_or(0, |since| {
            i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
        });
        Self {
            tenant: tenant.unwrap_or(DEFAULT_TENANT).to_owned(),
            key,
            event,
            body,
            body_sha256,
            schemes,
            // The token is only evidence when a scheme that reads it was verified.
            asymmetric_kid: claims.kid().map(str::to_owned),
            asymmetric_token: asymmetric_token.filter(|_| claims.kid().is_some()),
            received_at_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dt_event_is_read() {
        let body = br#"{"event":{"eventId":"c82gg9catj3vmh4248og","targetName":"projects/p1/devices/d1","eventType":"touch","data":{"touch":{"updateTime":"2022-02-10T12:42:13.313949Z"}},"timestamp":"2022-02-10T12:42:13.313949Z"},"labels":{}}"#;
        let fields = parse_event(body).unwrap();
        assert_eq!(fields.event_id, "c82gg9catj3vmh4248og");
        assert_eq!(fields.event_type, "touch");
        assert_eq!(fields.device.as_deref(), Some("d1"));
        assert_eq!(fields.project.as_deref(), Some("p1"));
        assert_eq!(fields.device_key(), "d1");
        // 2022-02-10T12:42:13.313949Z
        assert_eq!(fields.timestamp_ns, 1_644_496_933_313_949_000);
    }

    #[test]
    fn offsets_are_compared_as_instants() {
        let utc = br#"{"event":{"eventId":"a","targetName":"projects/p/devices/d","eventType":"touch","timestamp":"2022-02-10T12:00:00Z"}}"#;
        let plus_one = br#"{"event":{"eventId":"b","targetName":"projects/p/devices/d","eventType":"touch","timestamp":"2022-02-10T13:00:00+01:00"}}"#;
        assert_eq!(
            parse_event(utc).unwrap().timestamp_ns,
            parse_event(plus_one).unwrap().timestamp_ns
        );
    }

    #[test]
    fn a_target_without_a_device_is_keyed_by_the_whole_target() {
        let body = br#"{"event":{"eventId":"a","targetName":"projects/p/dataconnectors/x","eventType":"touch","timestamp":"2022-02-10T12:00:00Z"}}"#;
        let fields = parse_event(body).unwrap();
        assert_eq!(fields.device, None);
        assert_eq!(fields.project.as_deref(), Some("p"));
        assert_eq!(fields.device_key(), "projects/p/dataconnectors/x");
    }

    #[test]
    fn what_is_not_an_event() {
        for body in [
            &b"not json"[..],
            b"{}",
            b"[]",
            br#"{"event":{}}"#,
            br#"{"event":{"eventId":"","targetName":"t","eventType":"x","timestamp":"2022-02-10T12:00:00Z"}}"#,
            br#"{"event":{"eventId":"a","targetName":"t","eventType":"x","timestamp":"yesterday"}}"#,
            br#"{"event":{"eventId":1,"targetName":"t","eventType":"x","timestamp":"2022-02-10T12:00:00Z"}}"#,
        ] {
            assert_eq!(parse_event(body), None, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let body = br#"{"event":{"eventId":"a\u0062","targetName":"projects/p/devices/d","eventType":"touch","timestamp":"2022-02-10T12:00:00Z"}}"#;
        assert_eq!(parse_event(body).unwrap().event_id, "ab");
    }
}
