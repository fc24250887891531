//! The tests that read the crate's log lines, in a binary of their own: each sets a
//! tracing subscriber for its own thread only (`tracing::subscriber::with_default`), but
//! tracing caches per callsite, for the whole process, whether anyone listens. While just
//! one subscriber is registered, a callsite first reached on another thread takes that
//! thread's answer (tracing-core 0.1, `callsite::dispatchers::Rebuilder::JustOne` asks the
//! current thread's default): a test without a subscriber, running beside one of these,
//! would cache "never" for the very line this one waits for. Here every test that reaches
//! a callsite has a subscriber of its own.

#[path = "../it/support/mod.rs"]
mod support;

mod dedup;
mod gateway;
#[cfg(feature = "jwks")]
mod keys;
mod layer;
#[cfg(feature = "asymmetric")]
mod notice;
