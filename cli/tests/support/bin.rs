//! The built `dt-signature` binary, run as a user runs it: its arguments, environment
//! and output, for `cli.rs`, `explain.rs` and `keys.rs`.

use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_dt-signature");

/// `dt-signature` with `args`, its environment cleared of the receivers' `DT_*` variables
/// (plus `env`), and its output.
pub fn run_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).stdin(Stdio::null());
    for name in [
        "DT_SIGNATURE_SECRET",
        "DT_SIGNATURE_SCHEME",
        "DT_ORG_ID",
        "DT_JWKS_FILE",
        "DT_ISSUER",
        "DT_OIDC_DISCOVERY_URL",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().expect("the binary runs")
}

pub fn run(args: &[&str]) -> Output {
    run_with(args, &[])
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that `output` exited with `code` and printed each of `expected` on stdout.
/// Returns the output as `status` shows it, for further assertions.
pub fn expect(output: &Output, code: i32, expected: &[&str]) -> String {
    let (status, shown) = status(output);
    assert_eq!(status, code, "{shown}");
    for text in expected {
        assert!(stdout(output).contains(text), "no {text:?} in\n{shown}");
    }
    shown
}

/// The exit status, with the output shown when an assertion on it fails.
pub fn status(output: &Output) -> (i32, String) {
    let shown = format!("stdout:\n{}stderr:\n{}", stdout(output), stderr(output));
    (output.status.code().expect("exited, not killed"), shown)
}

/// `dt-signature` with `args` (separated by spaces; no argument holds one) in a blocking
/// task (a receiver or an identity server runs on the test's runtime meanwhile), with
/// `env` added.
pub async fn run_beside(args: String, env: &[(&str, &str)]) -> Output {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.split_whitespace().collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_with(&args, &env)
    })
    .await
    .unwrap()
}
