//! Test support (feature `test-util`): sign requests exactly as a DT Data Connector does,
//! and build schema-true payloads, so that nobody needs a DT account to test a receiver.
//!
//! - [`Signer`] mints `X-Dt-Signature` tokens and signed requests byte-identical to DT's;
//!   [`SignOptions`] sets `iat`, `exp`, `jti` or a SHA-1-only legacy token.
//! - [`Payload::sample`](crate::events::Payload::sample) gives a schema-true body of any
//!   event type.

mod signer;

pub use crate::sample::SAMPLE_PROJECT_ID;
pub(crate) use signer::{encode_id, new_id};
pub use signer::{SignOptions, Signer};
