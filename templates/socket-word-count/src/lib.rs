//! The job's logic, kept apart from its sources and outputs so that tests can feed it batches;
//! and the `--demo` text server.

use cargo_stream_runtime::prelude::*;

/// Counts each word of each batch of lines: Spark's
/// `flatMap(_.split(" ")).map((_, 1)).reduceByKey(_ + _)`. A `Line` shares the block it was
/// received in and a `Word` holds a short word inline, so nothing is allocated per line or
/// word (with `String`s, that allocation is most of the work).
pub fn word_counts(lines: DStream<Line>) -> DStream<(Word, u64)> {
    lines
        .flat_map(Line::words)
        .map(|word| (word, 1u64))
        .reduce_by_key(|a, b| a + b)
}

pub mod demo;
