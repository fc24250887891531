//! `dt-signature`, the command-line tool of tower-dt-signature: one module per subcommand.
//! The binary (`src/main.rs`) is a thin clap front; the modules are a library so that the
//! tests in `cli/tests/` can drive the engines (the local Data Connector) in-process as
//! well as the built binary.
//!
//! The tool decides nothing itself: every verdict comes from the library's `Verifier`, so
//! the tool and the layer can never disagree.

#![forbid(unsafe_code)]
#![warn(rust_2018_idioms, missing_debug_implementations)]

pub mod events;
pub mod explain;
pub mod identity;
pub mod key_file;
pub mod keys;
pub mod send;
pub mod serve;
pub mod store_url;

/// The exit status of bad usage or unreadable input (clap's own usage errors use it too).
pub const EXIT_USAGE: u8 = 2;
