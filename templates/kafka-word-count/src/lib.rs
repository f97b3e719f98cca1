//! The job's logic, kept apart from its source and outputs so that tests can feed it records.

use cargo_stream_runtime::kafka::ConsumerRecord;
use cargo_stream_runtime::prelude::*;

/// The text of each record's value (invalid UTF-8 replaced by `�`; a record without a value,
/// a tombstone, is skipped).
pub fn record_lines(records: &DStream<ConsumerRecord>) -> DStream<String> {
    records.flat_map(|record: ConsumerRecord| record.value().map(|_| record.value_lossy().into_owned()))
}

/// Counts each word of each batch of lines.
pub fn word_counts(lines: DStream<String>) -> DStream<(String, u64)> {
    lines
        .flat_map(|line: String| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .map(|word| (word, 1u64))
        .reduce_by_key(|a, b| a + b)
}
