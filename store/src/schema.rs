//! The public schema: table and column names, and the version this build writes.
//!
//! See the crate docs' [schema](crate#the-schema) section for what each column holds.

/// The schema version this build creates and understands. A store whose `dt_schema`
/// says a newer version is refused at start, naming both versions; an older one is
/// migrated forward (there is none yet: 1 is the first release).
pub const SCHEMA_VERSION: i64 = 1;

/// The table of every stored request: one row per (tenant, key).
pub const EVENT_TABLE: &str = "dt_event";

/// The table of the newest event per (tenant, device, event type).
pub const LATEST_TABLE: &str = "dt_latest";

/// The one-row table that holds the schema version.
pub const SCHEMA_TABLE: &str = "dt_schema";

/// The shortest retention a store accepts: DT retries an event for up to 12 hours, and
/// a stored row is also the event's de-duplication key, so pruning it sooner would let
/// a late retry be stored twice. 24 hours is the 12 hours and as many again of margin.
pub const MIN_RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The error of a store whose schema is newer than this build's.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn too_new(found: i64) -> crate::StoreError {
    crate::StoreError::new(
        crate::StoreErrorKind::SchemaTooNew,
        format!(
            "the store's schema is version {found}, newer than this build's version \
             {SCHEMA_VERSION}: upgrade tower-dt-store (dt-signature) before serving from it"
        ),
    )
}
