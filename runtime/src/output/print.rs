//! `print(n)`: the first records of each batch, in Spark's format.

use std::io::Write;

use crate::batch::Data;
use crate::dstream::DStream;
use crate::error::Result;
use crate::render::Render;
use crate::time::Time;

const RULE: &str = "-------------------------------------------";

/// Spark's `print` text for one batch: a header with the time, the first `n` records, and
/// `...` when there are more.
pub(crate) fn format_batch<T: Render>(time: Time, first: &[T], n: usize) -> String {
    let mut out = format!("{RULE}\nTime: {time}\n{RULE}\n");
    for r in first.iter().take(n) {
        r.render(&mut out);
        out.push('\n');
    }
    if first.len() > n {
        out.push_str("...\n");
    }
    out.push('\n');
    out
}

impl<T: Data + Render> DStream<T> {
    /// Prints the first `n` records of every batch to stdout, as Spark's `print`:
    ///
    /// ```text
    /// -------------------------------------------
    /// Time: 1700000000000 ms
    /// -------------------------------------------
    /// (spark,2)
    /// (rust,1)
    /// ...
    /// ```
    ///
    /// # Panics
    ///
    /// When called after `start()` or `stop()`, naming the caller's file and line.
    #[track_caller]
    pub fn print(&self, n: usize) -> Result<()> {
        self.register_output("print", move |batch, time| {
            let text = format_batch(time, &batch.take(n + 1), n);
            let mut stdout = std::io::stdout().lock();
            // A closed stdout (a pipe to `head`) is not the job's failure.
            let _ = stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush());
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_spark_layout() {
        let text = format_batch(Time(1000), &[("a", 1), ("b", 2), ("c", 3)], 2);
        assert_eq!(
            text,
            "-------------------------------------------\nTime: 1000 ms\n-------------------------------------------\n(a,1)\n(b,2)\n...\n\n"
        );
        let empty: [u8; 0] = [];
        assert_eq!(format_batch(Time(5), &empty, 10).lines().count(), 4);
    }
}
