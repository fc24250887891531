//! Writes one signed Data Connector request per event type, as JSON files, for checking
//! against DT's own Python library (`interop/check_dtintegrations.py`, run by `.ci/run`).
//!
//! ```text
//! cargo run --features test-util --example sign_requests -- <out-dir> <secret>
//! ```
//!
//! Each `<eventType>.json` is `{"eventType", "headers": {...}, "body": "<exact body>"}`,
//! signed now with [`Signer`] over a [`Payload::sample`] body.

use std::time::SystemTime;

use tower_dt_signature::events::{EventType, Payload};
use tower_dt_signature::testing::Signer;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(secret), None) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: sign_requests <out-dir> <secret>");
        std::process::exit(2);
    };
    let signer = Signer::try_new(&secret).unwrap_or_else(|error| {
        eprintln!("sign_requests: {error}");
        std::process::exit(2)
    });
    std::fs::create_dir_all(&dir).expect("create the output directory");
    for event_type in EventType::ALL {
        let payload = Payload::sample(&event_type, SystemTime::now()).expect("a known type");
        let body = serde_json::to_string(&payload).expect("payloads serialize");
        let request = signer
            .request::<bytes::Bytes>("/", body.clone())
            .expect("a valid URI");
        let headers: serde_json::Map<String, serde_json::Value> = request
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = value.to_str().expect("ASCII headers");
                // DT's capitalisation; receivers must not care.
                let name = match name.as_str() {
                    "x-dt-signature" => "X-Dt-Signature".to_owned(),
                    "content-type" => "Content-Type".to_owned(),
                    "content-length" => "Content-Length".to_owned(),
                    other => other.to_owned(),
                };
                (name, value.into())
            })
            .collect();
        let file = serde_json::json!({
            "eventType": event_type.as_str(),
            "headers": headers,
            "body": body,
        });
        let path = format!("{dir}/{event_type}.json");
        std::fs::write(&path, file.to_string()).expect("write a request file");
    }
    println!(
        "sign_requests: wrote {} requests to {dir}",
        EventType::ALL.len()
    );
}
