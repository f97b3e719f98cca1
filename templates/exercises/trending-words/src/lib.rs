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
    // TODO(exercise): count the words over the window, then keep the top `n` of each batch.
    let _ = (lines, n, window.into(), slide.into());
    todo!("count the words of each window and keep the top n")
}
