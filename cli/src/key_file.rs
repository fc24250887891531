//! Where the local connector's ES256 test key lives by default: a per-user data directory,
//! so that an installed `dt-signature` keeps one key (and one `kid`) from run to run and
//! from one working directory to another, and never writes under a checkout's `target/`.
//!
//! `$XDG_DATA_HOME/dt-signature/es256-key.p8` when `XDG_DATA_HOME` is an absolute path,
//! else `~/.local/share/dt-signature/es256-key.p8` (`%LOCALAPPDATA%\dt-signature\...` on
//! Windows). `send` and `identity` share it; `--key-file` overrides it.

use std::path::PathBuf;

/// The key file's name inside the data directory.
const FILE: &str = "es256-key.p8";

/// The default key file, or `None` when no data directory can be found (no `HOME`).
pub fn default_path() -> Option<PathBuf> {
    data_dir().map(|dir| dir.join("dt-signature").join(FILE))
}

/// The per-user data directory, as the XDG base directory specification defines it.
fn data_dir() -> Option<PathBuf> {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    if cfg!(windows) {
        return absolute("LOCALAPPDATA");
    }
    absolute("XDG_DATA_HOME").or_else(|| absolute("HOME").map(|home| home.join(".local/share")))
}

/// `--key-file`'s help, for `send` and `identity`.
pub const HELP: &str = "The connector's P-256 key (PKCS#8 DER, a test key), made on the first \
run and read on the next ones, so that its `kid` stays the same (`send` and `identity` share \
it). Default: $XDG_DATA_HOME/dt-signature/es256-key.p8, or ~/.local/share/dt-signature/es256-key.p8";

/// `--key-file`, or the default; the error is the one line to print.
pub fn resolve(explicit: Option<PathBuf>) -> Result<PathBuf, String> {
    explicit.or_else(default_path).ok_or_else(|| {
        "--key-file: no per-user data directory (neither XDG_DATA_HOME nor HOME is set): \
         pass --key-file PATH"
            .to_owned()
    })
}
