//! What the guard answers by itself: duplicates and refusals.

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{Response, StatusCode};

/// The response header that marks an answer the guard gave instead of the inner service
/// because the event was seen before: `done` or `in-flight`.
pub const X_DT_DUPLICATE: HeaderName = HeaderName::from_static("x-dt-duplicate");

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
    /// bytes). `400`: such a request cannot be de-duplicated, and forwarding it unguarded
    /// would break the guard's promise. Every body DT sends has one.
    MissingEventId,
    /// The request body could not be read. `400`. A body verified by `DtSignature` is
    /// already in memory and never fails.
    BodyRead,
    /// The store failed and the guard is set to
    /// [`fail_closed`](super::DedupLayer::fail_closed). `503`, so DT sends it again.
    StoreUnavailable,
    /// The store is full of reservations in flight, none of which may be evicted: `503`
    /// with `Retry-After`, so DT sends it again once some have settled.
    StoreFull,
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
