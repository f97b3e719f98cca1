//! The job's logic, kept apart from its sources and outputs so that tests can feed it batches;
//! and the `--demo` text server.

use cargo_stream_runtime::prelude::*;

/// Counts each word of each batch of lines.
pub fn word_counts(lines: DStream<String>) -> DStream<(String, u64)> {
    lines
        .flat_map(|line: String| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .map(|word| (word, 1u64))
        .reduce_by_key(|a, b| a + b)
}

pub mod demo;
