//! Verifies recorded `DT-Asymmetric-Signature` requests, JSON files in a folder, with
//! pinned keys: [`Verifier::asymmetric`] over [`DtKeys::from_jwks`]. The other side of
//! `interop/check_pyjwt_es256.py sign`, whose PyJWT-made tokens it checks (`scripts/test`).
//!
//! ```text
//! cargo run --features asymmetric --example verify_requests -- <dir>
//! ```
//!
//! `<dir>/keys.json` is `{"issuer", "org_id", "jwks": {"keys": [...]}, "requests": N}`;
//! every other `<dir>/*.json` is one request, `{"name", "expect": "accept" | "refuse",
//! "error": "<ErrorKind code>" (with "refuse"), "headers": {...}, "body"}`. A request
//! expected to be accepted must verify (and name `org_id` in `sub`); one expected to be
//! refused must fail with exactly that error code.
//!
//! Exits 0 when every request went as expected and there were `N` of them, 1 otherwise, 2
//! on bad arguments or files.

use std::path::Path;
use std::process::ExitCode;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use tower_dt_signature::keys::DtKeys;
use tower_dt_signature::Verifier;

#[derive(Deserialize)]
struct Keys {
    issuer: String,
    org_id: String,
    jwks: serde_json::Value,
    requests: usize,
}

#[derive(Deserialize)]
struct Recorded {
    name: String,
    expect: Expect,
    #[serde(default)]
    error: Option<String>,
    headers: serde_json::Map<String, serde_json::Value>,
    body: String,
}

#[derive(Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Expect {
    Accept,
    Refuse,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir] = args.as_slice() else {
        eprintln!("usage: verify_requests <dir>");
        return ExitCode::from(2);
    };
    match run(Path::new(dir)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("verify_requests: {error}");
            ExitCode::from(2)
        }
    }
}

/// Whether every request in `dir` went as expected.
fn run(dir: &Path) -> Result<bool, String> {
    let keys: Keys = read_json(&dir.join("keys.json"))?;
    let pinned = DtKeys::from_jwks(keys.issuer.as_str(), &keys.jwks.to_string())
        .map_err(|error| format!("keys.json: {error}"))?;
    let verifier = Verifier::asymmetric(pinned, keys.org_id.as_str());

    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|error| format!("cannot read {}: {error}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .filter(|path| path.file_name().is_some_and(|name| name != "keys.json"))
        .collect();
    paths.sort();

    let (mut accepted, mut refused, mut wrong) = (0, 0, 0);
    for path in &paths {
        let request: Recorded = read_json(path)?;
        let headers =
            header_map(&request.headers).map_err(|error| format!("{}: {error}", path.display()))?;
        let outcome = verifier.verify(&headers, request.body.as_bytes());
        match (&request.expect, outcome) {
            (Expect::Accept, Ok(claims)) if claims.org_id() == Some(keys.org_id.as_str()) => {
                accepted += 1;
            }
            (Expect::Accept, Ok(claims)) => {
                wrong += 1;
                println!("FAIL {}: accepted for {:?}", request.name, claims.org_id());
            }
            (Expect::Accept, Err(error)) => {
                wrong += 1;
                println!(
                    "FAIL {}: refused: {} ({error})",
                    request.name,
                    error.kind().code()
                );
            }
            (Expect::Refuse, Ok(_)) => {
                wrong += 1;
                println!("FAIL {}: accepted, must be refused", request.name);
            }
            (Expect::Refuse, Err(error)) => {
                let code = error.kind().code();
                if request.error.as_deref() == Some(code) {
                    refused += 1;
                } else {
                    wrong += 1;
                    println!(
                        "FAIL {}: refused with {code}, expected {:?}",
                        request.name, request.error
                    );
                }
            }
        }
    }
    if paths.len() != keys.requests {
        wrong += 1;
        println!(
            "FAIL request files: found {}, keys.json says {}",
            paths.len(),
            keys.requests
        );
    }
    println!("verify_requests: {accepted} accepted and {refused} refused as expected, {wrong} not");
    Ok(wrong == 0 && accepted > 0)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))
}

fn header_map(headers: &serde_json::Map<String, serde_json::Value>) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let value = value
            .as_str()
            .ok_or_else(|| format!("header {name} is not a string"))?;
        let name = HeaderName::try_from(name.as_str()).map_err(|error| error.to_string())?;
        let value = HeaderValue::try_from(value).map_err(|error| error.to_string())?;
        map.append(name, value);
    }
    Ok(map)
}
