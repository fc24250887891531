//! `dt-signature`: send DT-signed events to a receiver, serve a local DT identity service,
//! show DT's keys as a receiver gets them, and explain why a captured request is accepted
//! or refused. `dt-signature --help`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dt_signature_cli::{events, explain, identity, keys, send, serve};

/// dt-signature: the Disruptive Technologies Data Connector, played and checked locally.
///
/// Each job is a subcommand; `dt-signature <command> --help` shows its options and an
/// example. Exit status: 0 success, 1 a refusal, a failed delivery or a failed key source,
/// 2 bad usage or unreadable input.
#[derive(Debug, Parser)]
#[command(name = "dt-signature", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Serve(serve::Args),
    Events(events::Args),
    Send(send::Args),
    Identity(identity::Args),
    Keys(keys::Args),
    Explain(explain::Args),
}

fn main() -> ExitCode {
    let command = Cli::parse().command;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("dt-signature: cannot start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        Command::Serve(args) => runtime.block_on(serve::run(args)),
        Command::Events(args) => runtime.block_on(events::run(args)),
        Command::Send(args) => runtime.block_on(send::run(args)),
        Command::Identity(args) => runtime.block_on(identity::run(args)),
        Command::Keys(args) => runtime.block_on(keys::run(args)),
        Command::Explain(args) => {
            // `--discovery`: the keys' refresh task runs on this runtime's workers.
            let _entered = runtime.enter();
            explain::run(args)
        }
    }
}
