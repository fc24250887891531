//! What the guard answers by itself: duplicates and refusals.

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{Response, StatusCode};

/// The response header that marks an answer the guard gave instead of the inner service
/// because the event was seen before: `done` or `in-flight`.
pub const X_DT_DUPLICATE: HeaderName = HeaderName::from_static("x-dt-duplicate");

/// An enum of the guard's own answers, as written, and its `ALL` (every variant, in
/// order) for the tests that hold the docs' tables to the answers: a new variant is in
/// `ALL` at once, and fails those tests until the tables have its row.
macro_rules! answers {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident,)*
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $($(#[$variant_meta])* $variant,)*
        }

        impl $name {
            /// Every variant, in order.
            #[cfg(test)]
            pub(crate) const ALL: &'static [Self] = &[$(Self::$variant),*];
        }
    };
}

answers! {
    /// Put in the extensions of a response the guard gave for an event it had seen, so an
    /// outer layer or a test can tell it apart from the inner service's answer.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    #[non_exhaustive]
    pub enum Duplicate {
        /// The event was handled (a 2xx) before: `200 OK`, so DT stops sending it.
        Done,
        /// Another request for the event is being handled right now: `409 Conflict`, so DT
        /// sends it again later and learns the outcome then.
        InFlight,
    }
}

impl Duplicate {
    /// The status the guard answers with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Done => StatusCode::OK,
            Self::InFlight => StatusCode::CONFLICT,
        }
    }

    /// The value of the [`X_DT_DUPLICATE`] header and the response body: `done` or
    /// `in-flight`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::InFlight => "in-flight",
        }
    }
}

crate::error::display_as_str!(Duplicate, as_str);

answers! {
    /// Why the guard refused a request without forwarding it; put in the refusal's
    /// extensions. New reasons may be added, so matches need a wildcard arm.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    #[non_exhaustive]
    pub enum DedupRefusal {
        /// The request carries no [`DtClaims`](crate::DtClaims): the guard is not inside a
        /// `DtSignatureLayer`, and the body is not verified. `500`, because the stack is
        /// misconfigured, and nothing unverified is read.
        Unverified,
        /// The verified body has no `event.eventId` (a non-empty string of at most 128
        /// bytes). `400`: such a request cannot be de-duplicated, and forwarding it
        /// unguarded would break the guard's promise. Every body DT sends has one.
        MissingEventId,
        /// The request body could not be read. `400`. A body verified by `DtSignature` is
        /// already in memory and never fails.
        BodyRead,
        /// The store failed and the guard is set to
        /// [`fail_closed`](super::DedupLayer::fail_closed). `503`, so DT sends it again.
        StoreUnavailable,
        /// The store is full of reservations in flight, none of which may be evicted:
        /// `503` with `Retry-After`, so DT sends it again once some have settled.
        StoreFull,
    }
}

impl DedupRefusal {
    /// The status of the refusal.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Unverified => StatusCode::INTERNAL_SERVER_ERROR,
            Self::MissingEventId | Self::BodyRead => StatusCode::BAD_REQUEST,
            Self::StoreUnavailable | Self::StoreFull => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The refusal's `text/plain` body.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unverified => "dedup guard used without DtSignatureLayer",
            Self::MissingEventId => "missing event id",
            Self::BodyRead => "failed to read request body",
            Self::StoreUnavailable => "dedup store unavailable",
            Self::StoreFull => "dedup store full",
        }
    }
}

crate::error::display_as_str!(DedupRefusal, as_str);

fn text<B: From<&'static str>>(status: StatusCode, body: &'static str) -> Response<B> {
    let mut response = Response::new(B::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pub(crate) fn duplicate<B: From<&'static str>>(duplicate: Duplicate) -> Response<B> {
    let mut response = text(duplicate.status(), duplicate.as_str());
    response
        .headers_mut()
        .insert(X_DT_DUPLICATE, HeaderValue::from_static(duplicate.as_str()));
    response.extensions_mut().insert(duplicate);
    response
}

pub(crate) fn refusal<B: From<&'static str>>(refusal: DedupRefusal) -> Response<B> {
    let mut response = text(refusal.status(), refusal.as_str());
    if refusal == DedupRefusal::StoreFull {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response.extensions_mut().insert(refusal);
    response
}

#[cfg(test)]
mod tests {
    use http::header::CONTENT_TYPE;

    use super::*;

    /// Every answer the guard gives itself: its name (`Duplicate::Done`) and its response.
    fn answers() -> Vec<(String, Response<String>)> {
        let duplicates = Duplicate::ALL
            .iter()
            .map(|&answer| (format!("Duplicate::{answer:?}"), duplicate(answer)));
        let refusals = DedupRefusal::ALL
            .iter()
            .map(|&answer| (format!("DedupRefusal::{answer:?}"), refusal(answer)));
        duplicates.chain(refusals).collect()
    }

    /// How a table states an answer: status and body in one code span, `` `409 in-flight` ``.
    fn stated(response: &Response<String>) -> String {
        format!("{} {}", response.status().as_u16(), response.body())
    }

    /// The rows of the first table after the line `heading` in `text`, a Markdown file or
    /// a module's `//!` docs; the header and its rule are left out.
    fn table(text: &str, heading: &str) -> Vec<String> {
        let lines: Vec<&str> = text
            .lines()
            .map(|line| line.strip_prefix("//!").unwrap_or(line).trim())
            .collect();
        let start = lines
            .iter()
            .position(|line| *line == heading)
            .unwrap_or_else(|| panic!("no heading {heading:?}"));
        let rows: Vec<String> = lines[start..]
            .iter()
            .skip_while(|line| !line.starts_with('|'))
            .take_while(|line| line.starts_with('|'))
            .map(|line| line.to_string())
            .collect();
        assert!(rows.len() > 2, "no table under {heading:?}");
        rows[2..].to_vec()
    }

    /// The code spans of a row that state an answer: a status, a space, a body.
    fn stated_in(row: &str) -> Vec<&str> {
        row.split('`')
            .skip(1)
            .step_by(2)
            .filter(|span| {
                let bytes = span.as_bytes();
                bytes.len() > 4 && bytes[..3].iter().all(u8::is_ascii_digit) && bytes[3] == b' '
            })
            .collect()
    }

    /// What is wrong with a table of the guard's answers: an answer without a row (or in
    /// two), a row without the answer's status, body or headers, a row stating an answer
    /// the guard does not give; with `named`, a row that does not name its answer's
    /// variant (`` [`Duplicate::Done`] ``).
    fn drift(rows: &[String], named: bool) -> Vec<String> {
        let answers = answers();
        let mut wrong = Vec::new();
        for (name, response) in &answers {
            let stated = stated(response);
            let found: Vec<&String> = rows
                .iter()
                .filter(|row| stated_in(row).contains(&stated.as_str()))
                .collect();
            let [row] = found[..] else {
                wrong.push(format!("{name}: {} rows state `{stated}`", found.len()));
                continue;
            };
            for (header, value) in response.headers() {
                if header == CONTENT_TYPE {
                    continue;
                }
                let value = value.to_str().unwrap();
                if !row
                    .to_ascii_lowercase()
                    .contains(&format!("`{header}: {value}`"))
                {
                    wrong.push(format!("{name}: its row lacks `{header}: {value}`"));
                }
            }
            if named && !row.contains(&format!("[`{name}`]")) {
                wrong.push(format!("{name}: its row does not name [`{name}`]"));
            }
        }
        for row in rows {
            for span in stated_in(row) {
                if !answers.iter().any(|(_, response)| stated(response) == span) {
                    wrong.push(format!(
                        "a row states `{span}`, which the guard never answers"
                    ));
                }
            }
        }
        wrong
    }

    #[test]
    fn the_module_docs_table_lists_every_answer() {
        let rows = table(include_str!("mod.rs"), "# What it answers");
        assert_eq!(drift(&rows, true), Vec::<String>::new());
    }

    #[test]
    fn the_readme_table_lists_every_answer() {
        let rows = table(
            include_str!("../../README.md"),
            "## Duplicates and replays: each event handled once",
        );
        assert_eq!(drift(&rows, false), Vec::<String>::new());
    }

    /// The check itself: a missing row, a stale row and a row without its variant are
    /// each found.
    #[test]
    fn drift_is_found() {
        let rows = table(include_str!("mod.rs"), "# What it answers");
        let without = |needle: &str| -> Vec<String> {
            rows.iter()
                .filter(|row| !row.contains(needle))
                .cloned()
                .collect()
        };
        assert_eq!(
            drift(&without("StoreFull"), true),
            ["DedupRefusal::StoreFull: 0 rows state `503 dedup store full`"]
        );
        let mut stale = rows.clone();
        stale.push("| gone | refuses | `418 teapot` | - |".into());
        assert_eq!(
            drift(&stale, true),
            ["a row states `418 teapot`, which the guard never answers"]
        );
        let unnamed: Vec<String> = rows
            .iter()
            .map(|row| row.replace("[`Duplicate::Done`]", "-"))
            .collect();
        assert_eq!(
            drift(&unnamed, true),
            ["Duplicate::Done: its row does not name [`Duplicate::Done`]"]
        );
    }
}
