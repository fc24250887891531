//! The clock rules both tokens share: `exp`, `iat` and `nbf`, with a leeway, against a
//! clock that tests can pin.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{DtSignatureError, ErrorKind};

#[derive(Clone)]
pub(super) enum Clock {
    System,
    Custom(Arc<dyn Fn() -> SystemTime + Send + Sync>),
}

impl Clock {
    pub(super) fn now(&self) -> SystemTime {
        match self {
            Self::System => SystemTime::now(),
            Self::Custom(clock) => clock(),
        }
    }
}

/// Rule 3: expired when `now >= exp + leeway`; `iat` and `nbf` at most `leeway` ahead.
pub(crate) fn check_times(
    now: SystemTime,
    leeway: Duration,
    exp: u64,
    iat: Option<u64>,
    nbf: Option<u64>,
) -> Result<(), DtSignatureError> {
    let now = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    // An overflowing `exp + leeway` lies beyond any clock: not expired.
    if let Some(expires) = Duration::from_secs(exp).checked_add(leeway) {
        if now >= expires {
            return Err(ErrorKind::Expired.into());
        }
    }
    // An overflowing `now + leeway` is beyond any `iat`: not in the future.
    let horizon = now.checked_add(leeway);
    let in_future = |at: u64| horizon.is_some_and(|horizon| Duration::from_secs(at) > horizon);
    if iat.is_some_and(in_future) {
        return Err(ErrorKind::IssuedInFuture.into());
    }
    if nbf.is_some_and(in_future) {
        return Err(ErrorKind::NotYetValid.into());
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use crate::error::ErrorKind;
    use crate::verify::hs256::tests::{verifier_at, with, BODY, NOW, SECRET};
    use crate::verify::Verifier;

    /// The clock rules both schemes share, for a token issued at `iat` that expires at
    /// `exp`: `at(now, leeway)` verifies it at `now` with that leeway.
    pub(crate) fn assert_time_boundaries(
        iat: u64,
        exp: u64,
        at: impl Fn(u64, u64) -> Result<(), ErrorKind>,
    ) {
        // Leeway 0: DT's own rule, a token at exactly exp is expired.
        assert_eq!(at(exp - 1, 0), Ok(()));
        assert_eq!(at(exp, 0), Err(ErrorKind::Expired));
        // Leeway 60 (the default): expired when now >= exp + 60.
        assert_eq!(at(exp + 59, 60), Ok(()));
        assert_eq!(at(exp + 60, 60), Err(ErrorKind::Expired));
        // iat in the future: allowed up to the leeway, not one second more.
        assert_eq!(at(iat, 0), Ok(()));
        assert_eq!(at(iat - 1, 0), Err(ErrorKind::IssuedInFuture));
        assert_eq!(at(iat - 60, 60), Ok(()));
        assert_eq!(at(iat - 61, 60), Err(ErrorKind::IssuedInFuture));
    }

    #[test]
    fn time_boundaries() {
        let exp = NOW + 3600;
        let token = with(|_| {});
        let at = |now: u64, leeway: u64| {
            verifier_at(now)
                .leeway(Duration::from_secs(leeway))
                .verify_token(&token, BODY)
                .map(|_| ())
                .map_err(|e| e.kind())
        };
        assert_time_boundaries(NOW, exp, at);
        // A clock before the epoch reads as zero: the token is from the future.
        let before_epoch = Verifier::new(SECRET)
            .clock(|| UNIX_EPOCH - Duration::from_secs(5))
            .verify_token(&token, BODY);
        assert_eq!(before_epoch.unwrap_err().kind(), ErrorKind::IssuedInFuture);
    }

    #[test]
    fn sub_second_clock_is_exact_at_exp() {
        let exp = NOW + 3600;
        let token = with(|_| {});
        let just_before = UNIX_EPOCH + Duration::from_secs(exp) - Duration::from_millis(1);
        let v = Verifier::new(SECRET).leeway(Duration::ZERO);
        assert!(v
            .clone()
            .clock(move || just_before)
            .verify_token(&token, BODY)
            .is_ok());
        let at_exp = UNIX_EPOCH + Duration::from_secs(exp);
        let err = v
            .clock(move || at_exp)
            .verify_token(&token, BODY)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Expired);
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let far = with(|c| {
            c.insert("exp".into(), u64::MAX.into());
        });
        let verifier = verifier_at(NOW).leeway(Duration::MAX);
        assert!(verifier.verify_token(&far, BODY).is_ok());
        let zero = with(|c| {
            c.insert("exp".into(), 0.into());
        });
        assert_eq!(
            verifier_at(NOW)
                .verify_token(&zero, BODY)
                .unwrap_err()
                .kind(),
            ErrorKind::Expired
        );
    }
}
