//! The job's logic, kept apart from its sources and outputs so that tests can feed it batches.

use std::time::Duration;

use cargo_stream_runtime::prelude::*;

/// Every `slide`, counts each word of the lines received over the last `window`. Both must be
/// multiples of the batch interval.
pub fn windowed_word_counts(
    lines: DStream<String>,
    window: impl Into<Duration>,
    slide: impl Into<Duration>,
) -> DStream<(String, u64)> {
    lines
        .flat_map(|line: String| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .map(|word| (word, 1u64))
        .reduce_by_key_and_window(|a, b| a + b, window, slide)
}
