//! Prometheus' own checker, `promtool` (Debian's `prometheus` package ships it;
//! `./scripts/test` installs it). A test that needs it fails by name when it is missing.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `promtool args...` with `stdin`, or panics naming what to install.
pub fn promtool(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "promtool is missing ({error}): install Debian's prometheus package \
                 (apt-get install --no-install-recommends prometheus; ./scripts/test does)"
            )
        });
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// `promtool`'s exit code and what it printed.
pub fn shown(output: &Output) -> (i32, String) {
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}
