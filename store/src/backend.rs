//! [`Backend`]: what a store does with an [`EventRecord`](crate::EventRecord).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::StoreError;
use crate::record::EventRecord;
use crate::summary::Summary;

/// A boxed, `Send` future: the return type of [`Backend`]'s methods (the trait is object
/// safe, so `serve` can pick a backend at run time).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a backend did with one record, once it is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Put {
    /// A new event, and now the newest of its device and type.
    Stored,
    /// A new event, older than the newest of its device and type: kept, but
    /// `dt_latest` is unchanged.
    StoredNotLatest,
    /// A verified body that is not a DT event, kept under its SHA-256.
    NotAnEvent,
    /// The (tenant, key) was already stored, durably. `same_bytes` says whether the
    /// stored body is this one byte for byte; the first copy is kept either way.
    Duplicate {
        /// Whether the stored body equals this one.
        same_bytes: bool,
    },
}

/// A place that keeps events: a database or a queue.
///
/// The contract, which [`DtStore`](crate::DtStore) relies on to answer DT:
/// - [`put`](Self::put) resolves `Ok` only once the record is durable (the backend's own
///   durability point: a WAL fsync, a commit, a publish acknowledgement), or once an
///   earlier copy with the same (tenant, key) is. A copy that races the first write
///   resolves only after that write is durable, and fails if it fails.
/// - It keeps at most one record per (tenant, key), on every replica: the
///   de-duplication is the backend's own key, not a check before the write.
/// - It keeps the newest event per (tenant, device, event type) by
///   [`timestamp_ns`](crate::EventFields::timestamp_ns), whatever the arrival order.
/// - A `put` whose caller gave up (the future dropped at the deadline) may still
///   complete: the retry then finds the record stored.
///
/// Nothing here is SQL: a queue backend keys its messages and its latest-per-device
/// state by the same rules.
pub trait Backend: Send + Sync + 'static {
    /// Keep `record`; see the contract above.
    fn put(&self, record: EventRecord) -> BoxFuture<'_, Result<Put, StoreError>>;

    /// Whether the backend can take writes now; the error says why not. Backs
    /// `GET /ready`.
    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// A short description for logs and `/ready`: the backend and its place, never a
    /// password (e.g. `sqlite:/var/lib/dt/events.db`).
    fn describe(&self) -> String;

    /// Finish what is queued and stop taking writes. The default does nothing.
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// What the store holds. The default answers [`StoreErrorKind::Unsupported`]
    /// (a queue keeps no counts).
    ///
    /// [`StoreErrorKind::Unsupported`]: crate::StoreErrorKind::Unsupported
    fn summary(&self) -> BoxFuture<'_, Result<Summary, StoreError>> {
        Box::pin(async {
            Err(StoreError::new(
                crate::StoreErrorKind::Unsupported,
                "this backend cannot list what it holds",
            ))
        })
    }
}

/// `Backend` for a pointer to one: every method forwards.
macro_rules! forward_backend {
    ($($pointer:ident),+) => {$(
        impl<T: Backend + ?Sized> Backend for $pointer<T> {
            fn put(&self, record: EventRecord) -> BoxFuture<'_, Result<Put, StoreError>> {
                (**self).put(record)
            }

            fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
                (**self).ready()
            }

            fn describe(&self) -> String {
                (**self).describe()
            }

            fn close(&self) -> BoxFuture<'_, ()> {
                (**self).close()
            }

            fn summary(&self) -> BoxFuture<'_, Result<Summary, StoreError>> {
                (**self).summary()
            }
        }
    )+};
}

forward_backend!(Arc, Box);
