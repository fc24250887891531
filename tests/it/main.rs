//! The integration tests, through the public API only, in one binary (one link of axum,
//! hyper and tokio instead of one per file): a module per subject, and [`support`] with
//! every shared helper. Modules that need an optional feature are compiled with it only,
//! so the binary builds under any feature set that has `test-util` (which mints the tokens).
//!
//! Two kinds of test live in binaries of their own, because they set process-wide state
//! that tests running beside them on other threads would disturb or be disturbed by:
//! `tests/logging/` (tracing's per-callsite interest cache) and `tests/soak.rs` (a
//! counting global allocator).

mod support;

#[cfg(feature = "asymmetric")]
mod asymmetric;
#[cfg(feature = "axum")]
mod axum_router;
#[cfg(all(feature = "jwks", feature = "asymmetric"))]
mod decoy;
#[cfg(feature = "dedup")]
mod dedup;
#[cfg(feature = "redis")]
mod dedup_redis;
mod docs_tables;
mod events;
#[cfg(feature = "axum")]
mod extract;
#[cfg(all(feature = "metrics", feature = "dedup"))]
mod gateway;
#[cfg(feature = "dedup")]
mod hostile_reader;
mod hyper_server;
#[cfg(all(feature = "jwks", feature = "asymmetric"))]
mod jwks;
mod layer;
#[cfg(feature = "metrics")]
mod metrics_facade;
mod property;
mod report_only;
mod resolver;
mod signer;
mod stacking;
mod tower_plumbing;
