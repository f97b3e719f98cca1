//! Calendar dates in UTC for records, folder names and listings, without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// A moment broken into its UTC calendar fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    /// Year.
    pub year: i64,
    /// Month, 1 to 12.
    pub month: u32,
    /// Day of the month, 1 to 31.
    pub day: u32,
    /// Hour, 0 to 23.
    pub hour: u32,
    /// Minute.
    pub minute: u32,
    /// Second.
    pub second: u32,
    /// Millisecond.
    pub millis: u32,
}

impl Utc {
    /// The fields of `secs` seconds since the Unix epoch.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = cargo_stream::cluster::utc::Utc::from_secs(1_795_000_000);
    /// assert_eq!(t.to_string(), "2026-11-18 11:06:40");
    /// ```
    pub fn from_secs(secs: u64) -> Utc {
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let rest = (secs % 86_400) as u32;
        Utc {
            year,
            month,
            day,
            hour: rest / 3600,
            minute: rest / 60 % 60,
            second: rest % 60,
            millis: 0,
        }
    }

    /// The fields of a system time (before the epoch reads as the epoch).
    pub fn from_time(time: SystemTime) -> Utc {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        Utc {
            millis: since.subsec_millis(),
            ..Utc::from_secs(since.as_secs())
        }
    }
}

impl std::fmt::Display for Utc {
    /// `YYYY-MM-DD HH:MM:SS`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Days since 1970-01-01 as (year, month, day), Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(Utc::from_secs(0).to_string(), "1970-01-01 00:00:00");
        // A leap day and the turn of a century.
        assert_eq!(
            Utc::from_secs(951_782_400).to_string(),
            "2000-02-29 00:00:00"
        );
        assert_eq!(
            Utc::from_secs(4_107_542_399).to_string(),
            "2100-02-28 23:59:59"
        );
    }
}
