//! The job's logic, kept apart from its source and sink so that tests can feed it records.

use cargo_stream_runtime::kafka::ConsumerRecord;
use cargo_stream_runtime::prelude::*;

/// The words of a record's value, each with a count of 1 (invalid UTF-8 replaced by `�`; a
/// record without a value, a tombstone, has none).
pub fn record_words(record: ConsumerRecord) -> Vec<(String, u64)> {
    match record.value() {
        Some(_) => record
            .value_lossy()
            .split_whitespace()
            .map(|w| (w.to_owned(), 1))
            .collect(),
        None => Vec::new(),
    }
}

/// A word's running total and the batch (ms) that last changed it.
pub type Total = (u64, u64);

/// Each word's running total, kept across batches, with the time of the batch that last
/// changed it. On a stream read back from a repartition topic (keyed by word) of a job running
/// as instances, the runtime keeps this state per task (one partition of the topic) and
/// checkpoints it with the task's offsets, so a job stopped at N instances continues exactly
/// at M.
pub fn running_totals(words: &DStream<(String, u64)>) -> DStream<(String, Total)> {
    words.reduce_by_key(|a, b| a + b).update_state_by_key_with_time(
        |time: Time, _word: &String, counts: Vec<u64>, total: Option<Total>| {
            let (before, changed) = total.unwrap_or((0, 0));
            if counts.is_empty() {
                return Some((before, changed));
            }
            Some((before + counts.iter().sum::<u64>(), time.millis()))
        },
        None,
        Vec::new(),
    )
}

/// The totals a batch changed (those to write), from the batch's `totals`.
pub fn changed_at(time: Time, totals: Vec<(String, Total)>) -> Vec<(String, i64)> {
    totals
        .into_iter()
        .filter(|(_, (_, at))| *at == time.millis())
        .map(|(w, (n, _))| (w, n as i64))
        .collect()
}

/// Creates the totals' table if absent.
pub const CREATE_TOTALS: &str = "CREATE TABLE IF NOT EXISTS word_totals (
    word TEXT PRIMARY KEY,
    total BIGINT NOT NULL
)";

/// Writes totals (absolute values, not increments: writing one twice changes nothing), never
/// moving one backwards (a stale writer cannot undo a newer total).
pub const UPSERT_TOTALS: &str = "INSERT INTO word_totals (word, total)
    SELECT * FROM UNNEST($1::text[], $2::bigint[])
    ON CONFLICT (word) DO UPDATE SET total = GREATEST(word_totals.total, EXCLUDED.total)";

/// Writes `totals` into `word_totals` in one transaction.
pub fn write_totals(client: &mut postgres::Client, totals: &[(String, i64)]) -> Result<(), postgres::Error> {
    if totals.is_empty() {
        return Ok(());
    }
    let (words, counts): (Vec<&str>, Vec<i64>) = totals.iter().map(|(w, n)| (w.as_str(), *n)).unzip();
    let mut tx = client.transaction()?;
    tx.execute(UPSERT_TOTALS, &[&words, &counts])?;
    tx.commit()
}
