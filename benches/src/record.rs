//! One JSON line per batch, the format `shared/bench/wc.py` writes:
//! `{"batch": <batch time, s>, "done": <output time, s>, "words": N, "distinct": D}`.

use std::io::Write;

/// One batch's output record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchRecord {
    /// Batch time (end of the batch interval), seconds since the epoch.
    pub batch: f64,
    /// When the batch's output was produced, seconds since the epoch.
    pub done: f64,
    /// Total words counted in the batch.
    pub words: u64,
    /// Distinct words in the batch.
    pub distinct: u64,
}

impl BatchRecord {
    /// Lag from batch end to output, seconds.
    pub fn lag(&self) -> f64 {
        self.done - self.batch
    }

    /// Writes the record as one JSON line and flushes.
    pub fn write_line(&self, w: &mut impl Write) -> std::io::Result<()> {
        writeln!(
            w,
            "{{\"batch\": {:.3}, \"done\": {:.6}, \"words\": {}, \"distinct\": {}}}",
            self.batch, self.done, self.words, self.distinct
        )?;
        w.flush()
    }

    /// Parses one JSON line (ours or wc.py's).
    pub fn parse(line: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        Some(Self {
            batch: v.get("batch")?.as_f64()?,
            done: v.get("done")?.as_f64()?,
            words: v.get("words")?.as_f64()? as u64,
            distinct: v.get("distinct")?.as_f64()? as u64,
        })
    }

    /// Reads all records of a JSONL file, in batch-time order.
    pub fn read_file(path: &std::path::Path) -> Vec<Self> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut v: Vec<Self> = text.lines().filter_map(Self::parse).collect();
        v.sort_by(|a, b| a.batch.total_cmp(&b.batch));
        v
    }
}
