//! The clocks that drive batches: the system clock, or a manual one for tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A clock that only moves when told to, as Spark's `ManualClock`: tests advance it one batch
/// interval at a time and get exactly one batch per step.
///
/// ```
/// use cargo_stream_runtime::ManualClock;
/// let clock = ManualClock::new();
/// clock.advance(std::time::Duration::from_secs(1));
/// assert_eq!(clock.millis(), 1000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }
    /// Moves the clock forward.
    pub fn advance(&self, by: impl Into<Duration>) {
        self.0
            .fetch_add(by.into().as_millis() as u64, Ordering::SeqCst);
    }
    /// The clock's time in milliseconds.
    pub fn millis(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) enum Clock {
    #[default]
    System,
    Manual(ManualClock),
}

/// The wall clock in milliseconds since the Unix epoch (event times, whatever the batch clock).
pub(crate) fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Clock {
    pub(crate) fn now_ms(&self) -> u64 {
        match self {
            Clock::System => wall_ms(),
            Clock::Manual(m) => m.millis(),
        }
    }

    /// Sleeps until `target` ms or until `interrupted()` says to stop; true when reached.
    pub(crate) fn wait_until(&self, target: u64, interrupted: impl Fn() -> bool) -> bool {
        loop {
            if interrupted() {
                return false;
            }
            let now = self.now_ms();
            if now >= target {
                return true;
            }
            let step = match self {
                Clock::System => (target - now).min(20),
                Clock::Manual(_) => 1,
            };
            std::thread::sleep(Duration::from_millis(step));
        }
    }
}
