//! Trending words: see README.md for the task.

use std::time::Duration;

use cargo_stream_runtime::prelude::*;

/// Every `slide`, the `n` most frequent words of the lines received over the last `window`,
/// as `(word, count)`, the most frequent first; words with the same count in alphabetical
/// order. Each output batch holds at most `n` pairs, in that order.
pub fn trending_words(
    lines: DStream<String>,
    n: usize,
    window: impl Into<Duration>,
    slide: impl Into<Duration>,
) -> DStream<(String, u64)> {
    lines
        .flat_map(|line: String| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .map(|word| (word, 1u64))
        .reduce_by_key_and_window(|a, b| a + b, window, slide)
        .transform(move |batch: Batch<(String, u64)>| {
            let mut counts = batch.collect();
            counts.sort_by(|(wa, ca), (wb, cb)| cb.cmp(ca).then_with(|| wa.cmp(wb)));
            counts.truncate(n);
            batch.parallelize(counts, 1)
        })
}
