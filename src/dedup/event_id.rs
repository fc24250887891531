//! Read `event.eventId` from a verified body, and nothing else.

use std::borrow::Cow;

use serde::Deserialize;

/// The longest event id accepted, in bytes. DT's ids are 20 characters.
pub(crate) const MAX_EVENT_ID_LEN: usize = 128;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    event: EventRef<'a>,
}

#[derive(Deserialize)]
struct EventRef<'a> {
    #[serde(rename = "eventId", borrow)]
    event_id: Cow<'a, str>,
}

/// `event.eventId` of a JSON body: a non-empty string of at most [`MAX_EVENT_ID_LEN`]
/// bytes. Other fields are skipped, not decoded. `None` for anything else, a body that is
/// not JSON included.
pub(crate) fn event_id(body: &[u8]) -> Option<Cow<'_, str>> {
    let envelope: Envelope<'_> = serde_json::from_slice(body).ok()?;
    let id = envelope.event.event_id;
    (!id.is_empty() && id.len() <= MAX_EVENT_ID_LEN).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_event_id_and_ignores_the_rest() {
        let long = "x".repeat(MAX_EVENT_ID_LEN);
        let too_long = format!(r#"{{"event":{{"eventId":"{long}x"}}}}"#);
        let at_limit = format!(r#"{{"event":{{"eventId":"{long}"}}}}"#);
        let rows: &[(&str, Option<&str>)] = &[
            (
                r#"{"event":{"eventId":"c82gg9catj3vmh4248og","data":{"touch":{}}},"labels":{},"metadata":{"x":[1,2]}}"#,
                Some("c82gg9catj3vmh4248og"),
            ),
            (
                r#"{"labels":{},"event":{"data":null,"eventId":"a"}}"#,
                Some("a"),
            ),
            (r#"{"event":{"eventId":"a\u0062"}}"#, Some("ab")),
            (&at_limit, Some(long.as_str())),
            (&too_long, None),
            (r#"{"event":{"eventId":""}}"#, None),
            (r#"{"event":{"eventId":7}}"#, None),
            (r#"{"event":{"eventId":null}}"#, None),
            (r#"{"event":{}}"#, None),
            (r#"{"eventId":"a"}"#, None),
            (r#"{"event":{"eventId":"a"}"#, None),
            (r#"{"event":{"eventId":"a","eventId":"b"}}"#, None),
            ("not json", None),
            ("", None),
        ];
        for (body, expected) in rows {
            assert_eq!(event_id(body.as_bytes()).as_deref(), *expected, "{body}");
        }
    }
}
