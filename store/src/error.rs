//! [`StoreError`]: why a store could not keep an event, or could not start.

use std::fmt;

/// What kind of failure a [`StoreError`] is. Every kind of a write answers `503`, so
/// that DT retries; at start-up, [`Config`](Self::Config) and
/// [`SchemaTooNew`](Self::SchemaTooNew) are bad configuration (`dt-signature serve`
/// exits 2), [`Unavailable`](Self::Unavailable) is not (it starts and retries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The database cannot be reached or used now: connection refused or lost, the
    /// file replaced or gone, a server shutting down. Retried on the next write.
    Unavailable,
    /// The disk, the database file's size cap, or the server's space is full.
    Full,
    /// The store's queue stayed full until the deadline.
    Busy,
    /// The request's deadline passed before the write was durable.
    Deadline,
    /// The store holds a schema newer than this build understands.
    SchemaTooNew,
    /// The configuration is wrong: bad path or URL, refused credentials, a file that
    /// cannot be created.
    Config,
    /// The store was shut down.
    Closed,
    /// Any other database error.
    Database,
    /// The backend cannot do what was asked (e.g. a summary of a queue).
    Unsupported,
}

impl StoreErrorKind {
    /// A stable, lowercase name for logs and metric labels.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::Full => "full",
            Self::Busy => "busy",
            Self::Deadline => "deadline",
            Self::SchemaTooNew => "schema_too_new",
            Self::Config => "config",
            Self::Closed => "closed",
            Self::Database => "database",
            Self::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why a store could not keep an event, or could not start. Its message names the
/// failure (the database's own error text, a path, a host) and never holds body bytes,
/// a token or a password.
#[derive(Clone, Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
}

impl StoreError {
    /// A new error of `kind`. `message` must not contain secrets or body bytes.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for StoreError {}
