//! `dt-signature identity`: the local OpenID Connect identity service of the local Data
//! Connector, standalone. It serves the connector's public key (the key file `send`
//! signs with) through discovery, prints the discovery URL and the environment to give a
//! receiver, and stays up until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use tower_dt_signature::testing::{AsymmetricSigner, IdentityServer};

use crate::send::connector;
use crate::{key_file, EXIT_USAGE};

/// The name on every line the command prints.
const NAME: &str = "dt-signature identity";

/// `--help` of the command: what it does, with examples (clap prints it as is).
const IDENTITY_HELP: &str = r#"Serve the local connector's public key through OpenID Connect discovery until Ctrl-C.

It prints the discovery URL and the variables a receiver of this crate's examples
reads (DT_SIGNATURE_SCHEME, DT_ORG_ID, DT_OIDC_DISCOVERY_URL). The key is the one
`dt-signature send --scheme asymmetric` signs with (same --key-file), and the issuer
depends only on --addr, so a receiver configured from this output also accepts what
`send --identity-addr` (same address) signs later. `send` serves the key itself while it
runs: stop this server first, or use `send --serve-identity` to send and serve at once.

Example:

    dt-signature identity --org-id local-org
    # in another terminal, with the variables it printed:
    DT_SIGNATURE_SCHEME=asymmetric DT_ORG_ID=local-org \
    DT_OIDC_DISCOVERY_URL=http://127.0.0.1:8090/data-connector/.well-known/openid-configuration \
        cargo run --features jwks --example axum_receiver

Exit status: 0 after Ctrl-C, 2 when the address cannot be bound or the key file cannot
be read or made."#;

/// The options of `dt-signature identity` (`--help` prints them with examples).
#[derive(Debug, clap::Args)]
#[command(
    about = "Serve the local connector's public key through OpenID Connect discovery until Ctrl-C",
    long_about = IDENTITY_HELP
)]
pub struct Args {
    /// Where the identity server listens: an IPv4 address (port 0 picks a free one). Its
    /// issuer is http://ADDR/data-connector.
    #[arg(long, default_value = "127.0.0.1:8090")]
    addr: SocketAddr,

    /// The DT organization to tell the receiver (DT_ORG_ID): the `sub` that
    /// `dt-signature send --org-id` puts in its tokens.
    #[arg(long, default_value = "local-org")]
    org_id: String,

    #[arg(long, value_name = "PATH", help = key_file::HELP)]
    key_file: Option<PathBuf>,
}

/// The identity server on `addr` (named by the option `flag` in errors), serving the
/// connector's key from `key_file` (or the default one) for `org_id`: the server, the
/// signer, the key file and whether the key is new. The error is the line to print (exit
/// status 2). Shared by `identity` and `send`.
pub async fn serve_key(
    addr: SocketAddr,
    flag: &str,
    key_file: Option<PathBuf>,
    org_id: &str,
) -> Result<(IdentityServer, AsymmetricSigner, PathBuf, bool), String> {
    let key_file = key_file::resolve(key_file)?;
    let server = IdentityServer::try_start_on(addr).await.map_err(|error| {
        format!("cannot start the identity server on {addr} ({error}): choose another {flag}")
    })?;
    let (signer, new) = connector::load_key(&key_file, server.issuer(), org_id)
        .map_err(|error| format!("--key-file: {error}"))?;
    server.add_signer(&signer);
    Ok((server, signer, key_file, new))
}

/// Runs `dt-signature identity` and returns its exit status.
pub async fn run(args: Args) -> ExitCode {
    let served = serve_key(args.addr, "--addr", args.key_file, &args.org_id).await;
    let (server, signer, key_file, new) = match served {
        Ok(served) => served,
        Err(error) => {
            eprintln!("{NAME}: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    println!(
        "{NAME}: serving key {} ({} {}) on http://{}",
        signer.kid(),
        if new { "new, saved to" } else { "read from" },
        key_file.display(),
        server.addr(),
    );
    println!("  discovery: {}", server.discovery_url());
    println!("  jwks:      {}", server.jwks_url());
    println!("  give the receiver:");
    println!("    DT_SIGNATURE_SCHEME=asymmetric");
    println!("    DT_ORG_ID={}", args.org_id);
    println!("    DT_OIDC_DISCOVERY_URL={}", server.discovery_url());
    // Listen for Ctrl-C before saying so: a SIGINT sent on reading the line below must
    // stop the server cleanly, not kill the process.
    let interrupted = match interrupt() {
        Ok(interrupted) => interrupted,
        Err(error) => {
            eprintln!("{NAME}: cannot wait for Ctrl-C: {error}");
            server.shutdown().await;
            return ExitCode::FAILURE;
        }
    };
    println!("{NAME}: up until Ctrl-C");
    let status = match interrupted.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{NAME}: cannot wait for Ctrl-C: {error}");
            ExitCode::FAILURE
        }
    };
    server.shutdown().await;
    println!("{NAME}: stopped");
    status
}

/// A future of the next Ctrl-C, its handler installed already when this returns.
#[cfg(unix)]
fn interrupt() -> std::io::Result<impl std::future::Future<Output = std::io::Result<()>>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupts = signal(SignalKind::interrupt())?;
    Ok(async move {
        interrupts.recv().await;
        Ok(())
    })
}

/// A future of the next Ctrl-C (installed on its first poll, at once below).
#[cfg(not(unix))]
fn interrupt() -> std::io::Result<impl std::future::Future<Output = std::io::Result<()>>> {
    Ok(tokio::signal::ctrl_c())
}
