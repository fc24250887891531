//! [`Payload`]: the whole body of one request, where decoding starts, and
//! [`DecodeError`], why a body is not one.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::Event;

/// The whole JSON body of one Data Connector request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Payload {
    /// The event.
    pub event: Event,
    /// The device's labels that the connector forwards: label key to value. Empty when it
    /// forwards none.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Where the event came from. `None` in bodies sent before 2022-01.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

impl Payload {
    /// Decodes a body. The error names the field that did not fit
    /// ([`DecodeError::path`]).
    pub fn from_slice(body: &[u8]) -> Result<Self, DecodeError> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let payload: Self = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(DecodeError::from_path_error)?;
        deserializer.end().map_err(|inner| DecodeError {
            path: String::new(),
            inner,
        })?;
        Ok(payload)
    }
}

/// Why a body is not a Data Connector payload.
#[derive(Debug)]
pub struct DecodeError {
    path: String,
    inner: serde_json::Error,
}

impl DecodeError {
    fn from_path_error(error: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = error.path().to_string();
        Self {
            // serde_path_to_error writes "." for the root, "?" where it has no name.
            path: if path == "." || path == "?" {
                String::new()
            } else {
                path
            },
            inner: error.into_inner(),
        }
    }

    /// Where in the body decoding failed, as a dotted path such as
    /// `event.data.temperature.value` or `event` (for a missing `event.eventId`, the
    /// object that lacks it). Empty when the body as a whole is wrong (not JSON, not an
    /// object).
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "invalid Data Connector payload: {}", self.inner)
        } else {
            write!(
                f,
                "invalid Data Connector payload at `{}`: {}",
                self.path, self.inner
            )
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.inner)
    }
}

/// `payload.metadata`: the source device. DT warns that its shape may change for events
/// that do not come from a device, so every field is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Metadata {
    /// The device id, as in `targetName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// The project id, as in `targetName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// The kind of device: `temperature`, `proximity`, `ccon` (Cloud Connector), ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    /// The product number; `""` for emulated devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_number: Option<String>,
}
