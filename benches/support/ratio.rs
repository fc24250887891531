//! Ratios of two benchmarks: from criterion's medians, and from interleaved bursts, which
//! load from other processes skews far less. Included by the benches that print ratios
//! (`#[path]`), not by `support`, which every bench includes.

use std::path::PathBuf;
use std::time::Instant;

fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    // target/<profile>/deps/verify-<hash>
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().join("criterion")
}

/// The median of the last run of `group/function`, in nanoseconds.
pub fn median_ns(group: &str, function: &str) -> Option<f64> {
    let path = criterion_home()
        .join(group)
        .join(function)
        .join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

pub const PAIRS: usize = 301;

/// The median over [`PAIRS`] pairs of `a` and `b` bursts of the time of `a` over the time of
/// `b`, in alternating order.
pub fn interleaved_ratio(mut a: impl FnMut(), mut b: impl FnMut()) -> f64 {
    let start = Instant::now();
    a();
    let iterations = (2_000_000 / start.elapsed().as_nanos().max(1)).max(1);
    let burst = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..iterations {
            f();
        }
        start.elapsed().as_secs_f64()
    };
    let mut ratios: Vec<f64> = (0..PAIRS)
        .map(|pair| {
            if pair % 2 == 0 {
                let a = burst(&mut a);
                a / burst(&mut b)
            } else {
                let b = burst(&mut b);
                burst(&mut a) / b
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[PAIRS / 2]
}
