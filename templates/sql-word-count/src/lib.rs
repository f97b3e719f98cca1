//! The job's logic, kept apart from its sources and outputs so that tests can feed it batches.

use cargo_stream_runtime::prelude::*;
use cargo_stream_runtime::sql::SqlContext;

/// The query run on every batch: the batch is the table `words`, whose one column is `value`.
pub const QUERY: &str =
    "SELECT value AS word, COUNT(*) AS total FROM words GROUP BY value ORDER BY total DESC, word";

/// Each batch's words counted by [`QUERY`], the most frequent first. The query is checked here,
/// before the stream starts: a mistake in it is an error naming it.
pub fn sql_word_counts(sql: &SqlContext, lines: DStream<String>) -> Result<DStream<(String, u64)>, cargo_stream_runtime::Error> {
    lines
        .flat_map(|line: String| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .transform_sql::<(String, u64)>(sql, "words", QUERY)
}
