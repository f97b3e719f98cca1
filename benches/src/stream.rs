//! The job on our runtime, the same shape as `shared/bench/wc.py`:
//! `socket_text_stream` → `flat_map` → `map` → `reduce_by_key` → `foreach_rdd` writing one JSONL
//! record per batch (batch time, done time, words, distinct). Master `local[2]` (or
//! `CARGO_STREAM_MASTER`).

use crate::now_secs;
use crate::record::BatchRecord;
use cargo_stream_runtime::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs the word count against the feeder on 127.0.0.1:`port` for `secs` seconds with
/// `batch_ms` batches, writing records to `out`.
pub fn run(
    port: u16,
    secs: f64,
    out: &str,
    batch_ms: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let file = Arc::new(Mutex::new(std::io::BufWriter::new(std::fs::File::create(
        out,
    )?)));
    let conf = StreamingConf::new("dstream-wc").master("local[2]");
    let ssc = StreamingContext::new(conf, Milliseconds(batch_ms))?;
    // The templates' word count: lines sharing the received block, words kept inline.
    let lines: DStream<Line> = ssc.socket_lines("127.0.0.1", port);
    let counts = lines
        .flat_map(Line::words)
        .map(|w| (w, 1u64))
        .reduce_by_key(|a, b| a + b);
    let sink = Arc::clone(&file);
    counts.foreach_rdd(move |rdd: &Batch<(Word, u64)>, time: Time| {
        let d: Vec<(Word, u64)> = rdd.collect();
        let words: u64 = d.iter().map(|(_, v)| *v).sum();
        let rec = BatchRecord {
            batch: time.millis() as f64 / 1000.0,
            done: now_secs(),
            words,
            distinct: d.len() as u64,
        };
        if let Ok(mut f) = sink.lock() {
            let _ = rec.write_line(&mut *f);
        }
    })?;
    ssc.start()?;
    ssc.await_termination_or_timeout(Duration::from_secs_f64(secs))?;
    ssc.stop(false)?; // like wc.py: stopGraceFully=False
    Ok(())
}
