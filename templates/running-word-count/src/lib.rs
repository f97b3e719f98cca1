//! The job's logic, kept apart from its sources and outputs so that tests can feed it batches.

use cargo_stream_runtime::prelude::*;

/// The new running total of a word: its previous total plus this batch's counts.
pub fn add_counts(counts: Vec<u64>, total: Option<u64>) -> Option<u64> {
    Some(total.unwrap_or(0) + counts.iter().sum::<u64>())
}

/// The running count of every word seen since the start, after each batch. The context needs
/// a checkpoint directory (`ssc.checkpoint(dir)`), where the totals are saved.
pub fn running_word_counts(lines: DStream<String>) -> DStream<(String, u64)> {
    lines
        .flat_map(|line: String| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .map(|word| (word, 1u64))
        .update_state_by_key(add_counts)
}
