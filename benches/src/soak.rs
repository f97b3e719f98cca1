//! The soak test's job and its bookkeeping (`src/bin/soak.rs` drives them): a stateful,
//! windowed socket job with the write-ahead log, whose every output is a file per batch time
//! written atomically, so that a batch computed again overwrites its file (an idempotent
//! sink); and the reading of those files back into what was counted.
//!
//! Records are lines `k<key> <seq>`: `seq` numbers every record the feeder sent, once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cargo_stream_runtime::prelude::*;

/// The batch interval of the job, in ms.
pub const BATCH_MS: u64 = 500;
/// The window of the windowed count, in ms: 20 batches, sliding by one.
pub const WINDOW_MS: u64 = 10_000;
/// How many keys the records spread over.
pub const KEYS: u64 = 8;

/// The line the feeder sends for record `seq`.
pub fn record_line(seq: u64) -> String {
    format!("k{} {seq}\n", seq % KEYS)
}

/// Runs the soak job until it is killed or stopped: reads records from `127.0.0.1:port`,
/// checkpoints to `checkpoint` after every batch (restoring from it first, if it holds a
/// checkpoint), and writes into `out`, per batch time T: `batch-T` (the records of the batch,
/// `key seq` per line), `totals-T` (every key's running count since the first start) and
/// `window-T` (each key's count over the last [`WINDOW_MS`]).
pub fn run_job(port: u16, checkpoint: &Path, out: &Path) -> cargo_stream_runtime::Result<()> {
    let out = out.to_owned();
    let ssc = StreamingContext::get_or_create(checkpoint, || {
        let conf = StreamingConf::new("soak")
            .master("local[2]")
            .write_ahead_log(true);
        let ssc = StreamingContext::new(conf, Milliseconds(BATCH_MS))?;
        let records = ssc
            .socket_text_stream("127.0.0.1", port)
            .flat_map(|line: String| parse(&line).into_iter().collect::<Vec<_>>());
        let dir = out.clone();
        records.foreach_rdd(move |batch: &Batch<(String, u64)>, time: Time| {
            let text: String = batch
                .collect()
                .iter()
                .map(|(k, seq)| format!("{k} {seq}\n"))
                .collect();
            write_atomically(&dir, &format!("batch-{}", time.millis()), &text);
        })?;
        let ones = records.map(|(k, _)| (k, 1u64));
        let totals = ones.update_state_by_key(|new: Vec<u64>, total: Option<u64>| {
            Some(total.unwrap_or(0) + new.iter().sum::<u64>())
        });
        totals.checkpoint(Milliseconds(BATCH_MS));
        let dir = out.clone();
        totals.foreach_rdd(move |batch: &Batch<(String, u64)>, time: Time| {
            write_counts(&dir, "totals", time, batch.collect());
        })?;
        let window = ones.reduce_by_key_and_window(
            |a, b| a + b,
            Milliseconds(WINDOW_MS),
            Milliseconds(BATCH_MS),
        );
        window.checkpoint(Milliseconds(BATCH_MS));
        let dir = out.clone();
        window.foreach_rdd(move |batch: &Batch<(String, u64)>, time: Time| {
            write_counts(&dir, "window", time, batch.collect());
        })?;
        Ok(ssc)
    })?;
    ssc.start()?;
    ssc.await_termination()
}

fn parse(line: &str) -> Option<(String, u64)> {
    let (key, seq) = line.split_once(' ')?;
    Some((key.to_owned(), seq.trim().parse().ok()?))
}

fn write_counts(dir: &Path, what: &str, time: Time, mut counts: Vec<(String, u64)>) {
    counts.sort();
    let text: String = counts.iter().map(|(k, n)| format!("{k} {n}\n")).collect();
    write_atomically(dir, &format!("{what}-{}", time.millis()), &text);
}

/// Writes `name` in `dir` through a temporary file and a rename: a batch computed again
/// replaces its file whole. A failure fails the batch (and the job), as a sink should.
fn write_atomically(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, dir.join(name)))
        .unwrap_or_else(|e| panic!("cannot write `{}`: {e}", dir.join(name).display()));
}

/// The output files in `dir` of kind `what` (`batch`, `totals`, `window`), by batch time.
pub fn outputs(dir: &Path, what: &str) -> BTreeMap<u64, PathBuf> {
    let prefix = format!("{what}-");
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            Some((name.strip_prefix(&prefix)?.parse().ok()?, e.path()))
        })
        .collect()
}

/// The `key value` lines of an output file.
pub fn read_pairs(path: &Path) -> Vec<(String, u64)> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()))
        .lines()
        .filter_map(parse)
        .collect()
}

/// The batch time of the newest checkpoint in `dir` (`checkpoint-<ms>`): the one a restart
/// restores.
pub fn newest_checkpoint(dir: &Path) -> Option<u64> {
    cargo_stream_tests::jobs::checkpoint_times(dir)
        .last()
        .copied()
}
