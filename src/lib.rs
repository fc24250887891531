//! placeholder docs
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

mod body;
mod claims;
mod error;
mod future;
mod layer;
mod rejection;
mod service;
mod verify;

pub use body::DtBody;
pub use claims::DtClaims;
pub use error::{ConfigError, DtSignatureError, ErrorKind};
pub use future::ResponseFuture;
pub use layer::{DtSignatureLayer, DEFAULT_MAX_BODY_SIZE};
pub use rejection::{DefaultRejection, MakeRejection};
pub use service::DtSignature;
pub use verify::{BodyVerifier, Verifier, MAX_HEADER_LEN, X_DT_SIGNATURE};
