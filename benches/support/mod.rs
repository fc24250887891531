//! What the benchmarks share: a token exactly as DT signs one, minted by the crate's
//! `Signer` (DT's header and claim order, byte for byte).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tower_dt_signature::testing::{SignOptions, Signer};

/// A token as DT signs one for `body`, issued `age` seconds ago.
pub fn dt_token(body: &[u8], age: u64, secret: &str) -> String {
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - age;
    Signer::new(secret).sign_with(
        body,
        &SignOptions::new().iat(iat).jti("cpbg96qngr7ai7ldarrg"),
    )
}

/// The user + system CPU time of process `pid` so far (all its threads), from
/// `/proc/<pid>/stat`: the server CPU per request of the load benchmarks.
#[allow(dead_code)] // the load benchmarks' (benches/load.rs, store/benches/store.rs)
pub fn process_cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}
