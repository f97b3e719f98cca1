//! Running totals per user: see README.md for the task.

use cargo_stream_runtime::prelude::*;

/// Parses a line `<user> <clicks>` into `(user, clicks)`; anything else is skipped.
pub fn parse_clicks(line: &str) -> Option<(String, u64)> {
    let mut parts = line.split_whitespace();
    let user = parts.next()?;
    let clicks = parts.next()?.parse().ok()?;
    parts.next().is_none().then(|| (user.to_owned(), clicks))
}

/// For every record `(user, clicks)`, the user's new running total of clicks since the start,
/// as `(user, total)`: one output record per input record, in the batch where it arrived.
/// The context needs a checkpoint directory.
pub fn running_totals(clicks: DStream<(String, u64)>) -> DStream<(String, u64)> {
    // TODO(exercise): keep a total per user with `map_with_state` and `StateSpec::function`.
    let _ = clicks;
    todo!("keep a running total per user with map_with_state")
}
