//! Rate control for receivers: a limiter that spaces stores, and Spark's PID estimator that
//! lowers the rate when batches take longer than the interval (backpressure).

use crate::sync::LockExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Spreads stores so that no more than the current rate is stored per second.
pub(crate) struct RateLimiter {
    /// The configured ceiling (`u64::MAX` for none).
    ceiling: u64,
    per_second: AtomicU64,
    next_free: Mutex<Instant>,
}

impl RateLimiter {
    pub(crate) fn new(per_second: u64) -> Self {
        RateLimiter {
            ceiling: per_second.max(1),
            per_second: AtomicU64::new(per_second.max(1)),
            next_free: Mutex::new(Instant::now()),
        }
    }

    /// Sets the rate (never above the configured ceiling).
    pub(crate) fn set_rate(&self, per_second: u64) {
        self.per_second
            .store(per_second.clamp(1, self.ceiling), Ordering::Relaxed);
    }

    pub(crate) fn rate(&self) -> u64 {
        self.per_second.load(Ordering::Relaxed)
    }

    pub(crate) fn acquire(&self, n: u64) {
        let rate = self.rate();
        if rate == u64::MAX {
            return;
        }
        let wait = {
            let mut next = self.next_free.locked();
            let now = Instant::now();
            let start = (*next).max(now);
            *next = start + Duration::from_secs_f64(n as f64 / rate as f64);
            start - now
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// Spark's `PIDRateEstimator` (proportional 1.0, integral 0.2, derivative 0, minimum rate
/// 100 records/s): from each batch's size and delays, the rate the job can sustain.
pub(crate) struct PidEstimator {
    batch_ms: f64,
    state: Mutex<Pid>,
}

struct Pid {
    first: bool,
    latest_time: u64,
    latest_rate: f64,
    latest_error: f64,
}

const PROPORTIONAL: f64 = 1.0;
const INTEGRAL: f64 = 0.2;
const DERIVATIVE: f64 = 0.0;
const MIN_RATE: f64 = 100.0;

impl PidEstimator {
    pub(crate) fn new(batch_interval: Duration) -> Self {
        PidEstimator {
            batch_ms: batch_interval.as_millis() as f64,
            state: Mutex::new(Pid {
                first: true,
                latest_time: 0,
                latest_rate: -1.0,
                latest_error: -1.0,
            }),
        }
    }

    /// A new rate after the batch at `time_ms` took `elements` records, `processing_ms` to
    /// process and waited `scheduling_ms`; `None` on the first batch or without data.
    pub(crate) fn compute(
        &self,
        time_ms: u64,
        elements: u64,
        processing_ms: u64,
        scheduling_ms: u64,
    ) -> Option<f64> {
        let mut p = self.state.locked();
        if time_ms <= p.latest_time || elements == 0 || processing_ms == 0 {
            return None;
        }
        let since_update = (time_ms - p.latest_time) as f64 / 1000.0;
        let processing_rate = elements as f64 / processing_ms as f64 * 1000.0;
        let error = p.latest_rate - processing_rate;
        let historical_error = scheduling_ms as f64 * processing_rate / self.batch_ms;
        let d_error = (error - p.latest_error) / since_update;
        let new_rate = (p.latest_rate
            - PROPORTIONAL * error
            - INTEGRAL * historical_error
            - DERIVATIVE * d_error)
            .max(MIN_RATE);
        p.latest_time = time_ms;
        if p.first {
            p.latest_rate = processing_rate;
            p.latest_error = 0.0;
            p.first = false;
            None
        } else {
            p.latest_rate = new_rate;
            p.latest_error = error;
            Some(new_rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_spaces_permits() {
        let l = RateLimiter::new(1000);
        let t = Instant::now();
        for _ in 0..5 {
            l.acquire(50);
        }
        // 250 permits at 1000/s: the last acquire waits for the first 200.
        assert!(
            t.elapsed() >= Duration::from_millis(190),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn pid_follows_sparks_arithmetic() {
        let pid = PidEstimator::new(Duration::from_secs(1));
        // First batch: 1000 records in 500 ms, no delay: learns 2000/s, no update.
        assert_eq!(pid.compute(1000, 1000, 500, 0), None);
        // Second: 3000 records in 1500 ms (2000/s), 500 ms behind.
        // error = 2000 - 2000 = 0; historical = 500 * 2000 / 1000 = 1000; rate = 2000 - 0.2 * 1000.
        assert_eq!(pid.compute(2000, 3000, 1500, 500), Some(1800.0));
        // Never below the minimum.
        assert_eq!(pid.compute(3000, 10, 1000, 100_000), Some(100.0));
        assert_eq!(
            pid.compute(3000, 10, 1000, 0),
            None,
            "no going back in time"
        );
    }
}
