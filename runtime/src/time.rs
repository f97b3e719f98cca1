//! Batch times and the `Seconds`/`Milliseconds`/`Minutes` duration helpers.

use std::fmt;
use std::time::Duration;

/// A point on the streaming clock, in milliseconds since the Unix epoch (or since zero on a
/// [`ManualClock`](crate::ManualClock)); batch times are multiples of the batch interval.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Time(pub(crate) u64);

impl Time {
    /// A time from milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Time(ms)
    }
    /// The time in milliseconds.
    pub const fn millis(self) -> u64 {
        self.0
    }
    pub(crate) fn plus(self, d: Duration) -> Time {
        Time(self.0 + d.as_millis() as u64)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms", self.0)
    }
}

macro_rules! duration_helper {
    ($(#[$doc:meta])* $name:ident, $ctor:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(pub u64);

        impl From<$name> for Duration {
            fn from(v: $name) -> Duration {
                $ctor(v.0)
            }
        }
    };
}

duration_helper!(
    /// `Milliseconds(200)`: a duration, as Spark's `Milliseconds`.
    Milliseconds,
    Duration::from_millis
);
duration_helper!(
    /// `Seconds(1)`: a duration, as Spark's `Seconds`.
    Seconds,
    Duration::from_secs
);
duration_helper!(
    /// `Minutes(1)`: a duration, as Spark's `Minutes`.
    Minutes,
    |m: u64| Duration::from_secs(m * 60)
);

/// Drops the entries of `map` up to and including `time`.
pub(crate) fn forget_upto<V>(map: &mut std::collections::BTreeMap<Time, V>, time: Time) {
    *map = map.split_off(&Time(time.0 + 1));
}

pub(crate) fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_convert() {
        assert_eq!(Duration::from(Seconds(2)), Duration::from_millis(2000));
        assert_eq!(Duration::from(Minutes(1)), Duration::from_secs(60));
        assert_eq!(Duration::from(Milliseconds(5)), Duration::from_millis(5));
        assert_eq!(Time(1000).to_string(), "1000 ms");
    }
}
