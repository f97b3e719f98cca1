//! The job's logic, kept apart from its source and outputs so that tests can feed it records.

use cargo_stream_runtime::kafka::ConsumerRecord;
use cargo_stream_runtime::prelude::*;

/// The text of each record's value, as a `Line` that shares the record's bytes (invalid UTF-8
/// replaced by `�`; a record without a value, a tombstone, is skipped).
pub fn record_lines(records: &DStream<ConsumerRecord>) -> DStream<Line> {
    records.flat_map(|record: ConsumerRecord| record.value().map(|_| record.value_line()))
}

/// Counts each word of each batch of lines. A `Word` holds a short word inline, so nothing is
/// allocated per word (with a `String` per word, that allocation is most of the work).
pub fn word_counts(lines: DStream<Line>) -> DStream<(Word, u64)> {
    lines
        .flat_map(Line::words)
        .map(|word| (word, 1u64))
        .reduce_by_key(|a, b| a + b)
}
