//! Axum extractors (feature `axum`): [`DtPayload`], the typed payload of a verified
//! request.

use std::fmt;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use http::header::{HeaderValue, CONTENT_TYPE};
use http::StatusCode;

use crate::claims::DtClaims;
use crate::events::{DecodeError, Payload};

/// The typed [`Payload`] of a request that [`DtSignatureLayer`](crate::DtSignatureLayer)
/// verified, as an axum extractor (feature `axum`).
///
/// ```
/// use axum::{routing::post, Router};
/// use tower_dt_signature::events::EventData;
/// use tower_dt_signature::{extract::DtPayload, DtSignatureLayer};
///
/// async fn receive(DtPayload(payload): DtPayload) -> &'static str {
///     if let EventData::Temperature(temperature) = &payload.event.data {
///         println!("{:?}: {} °C", payload.event.device_id(), temperature.value);
///     }
///     "ok"
/// }
///
/// let app: Router = Router::new()
///     .route("/", post(receive))
///     .layer(DtSignatureLayer::new("connector secret"));
/// ```
///
/// It fails closed. On a route without `DtSignatureLayer` (no [`DtClaims`] in the
/// request extensions) it answers `500 Internal Server Error` with a text that says the
/// layer is missing, and never reads the body: unverified bytes are never decoded. A
/// verified body that is not a Data Connector payload is answered with `400 Bad Request`
/// and a text that names the field (see [`DecodeError`]). Both are
/// [`DtPayloadRejection`]s; DT retries every non-2xx answer.
///
/// It consumes the body, so it must be the last extractor of the handler. Take
/// `Extension<DtClaims>` beside it for the token's claims.
#[derive(Debug, Clone, PartialEq)]
pub struct DtPayload(pub Payload);

/// Why [`DtPayload`] refused a request.
#[derive(Debug)]
#[non_exhaustive]
pub enum DtPayloadRejection {
    /// The request carries no [`DtClaims`]: `DtSignatureLayer` is not in front of this
    /// handler, so the body is unverified and was not read. Answered with 500: it is a bug
    /// in the server, not in the request.
    MissingLayer,
    /// Reading the verified body failed. Answered with 400.
    BodyRead(axum::Error),
    /// The verified body is not a Data Connector payload. Answered with 400.
    InvalidPayload(DecodeError),
}

const MISSING_LAYER: &str = "DtSignatureLayer is missing: DtPayload only decodes requests \
                             that DtSignatureLayer verified";

impl DtPayloadRejection {
    /// The status code of the response: 500 for
    /// [`MissingLayer`](Self::MissingLayer), 400 otherwise.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BodyRead(_) | Self::InvalidPayload(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for DtPayloadRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingLayer => f.write_str(MISSING_LAYER),
            Self::BodyRead(_) => f.write_str("failed to read request body"),
            Self::InvalidPayload(error) => fmt::Display::fmt(error, f),
        }
    }
}

impl std::error::Error for DtPayloadRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::MissingLayer => None,
            Self::BodyRead(error) => Some(error),
            Self::InvalidPayload(error) => Some(error),
        }
    }
}

impl IntoResponse for DtPayloadRejection {
    fn into_response(self) -> Response {
        match &self {
            Self::MissingLayer => tracing::error!("{MISSING_LAYER}"),
            _ => tracing::debug!(reason = %self, "refused verified Data Connector request"),
        }
        let mut response = Response::new(Body::from(self.to_string()));
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

impl<S: Send + Sync> FromRequest<S> for DtPayload {
    type Rejection = DtPayloadRejection;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if request.extensions().get::<DtClaims>().is_none() {
            return Err(DtPayloadRejection::MissingLayer);
        }
        // DtSignatureLayer already read the whole body, within its own limit.
        let body = axum::body::to_bytes(request.into_body(), usize::MAX)
            .await
            .map_err(DtPayloadRejection::BodyRead)?;
        Payload::from_slice(&body)
            .map(DtPayload)
            .map_err(DtPayloadRejection::InvalidPayload)
    }
}
