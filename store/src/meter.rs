//! What the store reports through the `metrics` facade (feature `metrics`); without the
//! feature every function here compiles to nothing. The names and labels are listed in
//! the crate docs' metrics table ([`crate`], "Metrics").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::outcome::StoreReport;
#[cfg(feature = "metrics")]
use crate::record::DEFAULT_TENANT;

/// The counter of answers, by `outcome`.
#[cfg(feature = "metrics")]
const REQUESTS: &str = "dt_store_requests_total";
/// The counter of duplicates whose bytes differ from the stored copy.
#[cfg(feature = "metrics")]
const OTHER_BYTES: &str = "dt_store_duplicates_with_other_bytes_total";
/// The histogram of event ages at acceptance (receive time minus `event.timestamp`).
#[cfg(feature = "metrics")]
const EVENT_AGE: &str = "dt_store_event_age_seconds";
/// The counter of events whose `timestamp` was ahead of the store's clock.
#[cfg(feature = "metrics")]
const EVENT_AHEAD: &str = "dt_store_event_from_future_total";
/// The gauge of the last accepted event's receive time, by `tenant`.
#[cfg(feature = "metrics")]
const LAST_ACCEPTED: &str = "dt_store_last_accepted_timestamp_seconds";
/// The histogram of write transactions' times, commit included, by `backend`.
#[cfg(feature = "metrics")]
const COMMIT_SECONDS: &str = "dt_store_commit_seconds";
/// The histogram of requests per committed transaction, by `backend`.
#[cfg(feature = "metrics")]
const BATCH_SIZE: &str = "dt_store_batch_size";

/// Describes every metric of the store to the installed recorder (the `# HELP` line of an
/// exporter). Call it once, after installing the recorder; without the feature `metrics`
/// it does nothing.
pub fn describe_metrics() {
    #[cfg(feature = "metrics")]
    {
        use metrics::Unit;
        metrics::describe_counter!(REQUESTS, "Verified requests the store answered, by outcome");
        metrics::describe_counter!(
            OTHER_BYTES,
            "Duplicates whose bytes differ from the stored copy (the first copy is kept)"
        );
        metrics::describe_histogram!(
            EVENT_AGE,
            Unit::Seconds,
            "Accepted events: receive time minus event.timestamp (0 when ahead)"
        );
        metrics::describe_counter!(
            EVENT_AHEAD,
            "Accepted events whose event.timestamp was ahead of the store's clock"
        );
        metrics::describe_gauge!(
            LAST_ACCEPTED,
            Unit::Seconds,
            "Unix time the store last answered 200 to a verified request, by tenant"
        );
        metrics::describe_histogram!(
            COMMIT_SECONDS,
            Unit::Seconds,
            "Time of each committed write transaction, the commit's fsync included"
        );
        metrics::describe_histogram!(
            BATCH_SIZE,
            Unit::Count,
            "Requests written per committed transaction (1 on PostgreSQL)"
        );
    }
}

/// The age of an event (`timestamp_ns`: its `event.timestamp`) received at `received_at`:
/// `Ok(seconds)`, or `Err(())` when its `timestamp` is ahead of the clock (recorded as 0).
fn age(received_at: SystemTime, timestamp_ns: i64) -> Result<f64, ()> {
    let received_ns = received_at.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
    });
    match received_ns.checked_sub(timestamp_ns) {
        Some(ns) if ns >= 0 => Ok(ns as f64 / 1e9),
        _ => Err(()),
    }
}

/// One answer of [`DtStore`](crate::DtStore): its outcome; for a durable one the event's
/// age (`timestamp_ns`: its `event.timestamp`, `None` for a body that is not an event)
/// and the tenant's last accepted time (`tenant_label`: by tenant, else under
/// [`DEFAULT_TENANT`](crate::DEFAULT_TENANT)).
pub(crate) fn answered(
    report: &StoreReport,
    timestamp_ns: Option<i64>,
    received_at: SystemTime,
    tenant_label: bool,
) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!(REQUESTS, "outcome" => report.outcome.code()).increment(1);
        if report.bytes_differ {
            metrics::counter!(OTHER_BYTES).increment(1);
        }
        if !report.outcome.is_durable() {
            return;
        }
        if let Some(timestamp_ns) = timestamp_ns {
            let seconds = age(received_at, timestamp_ns).unwrap_or_else(|()| {
                metrics::counter!(EVENT_AHEAD).increment(1);
                0.0
            });
            metrics::histogram!(EVENT_AGE).record(seconds);
        }
        let tenant = if tenant_label {
            report.tenant.clone()
        } else {
            DEFAULT_TENANT.to_owned()
        };
        let now = received_at
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        metrics::gauge!(LAST_ACCEPTED, "tenant" => tenant).set(now);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (report, timestamp_ns, received_at, tenant_label, age);
}

/// A write transaction of `requests` requests committed on `backend` after `spent`.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn committed(backend: &'static str, requests: usize, spent: Duration) {
    #[cfg(feature = "metrics")]
    {
        metrics::histogram!(COMMIT_SECONDS, "backend" => backend).record(spent.as_secs_f64());
        metrics::histogram!(BATCH_SIZE, "backend" => backend).record(requests as f64);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (backend, requests, spent);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_age_is_the_clock_minus_the_timestamp_and_never_negative() {
        let at = UNIX_EPOCH + Duration::from_millis(10_500);
        assert_eq!(age(at, 10_000_000_000), Ok(0.5));
        assert_eq!(age(at, 10_500_000_000), Ok(0.0));
        assert_eq!(age(at, 11_000_000_000), Err(()));
    }
}
