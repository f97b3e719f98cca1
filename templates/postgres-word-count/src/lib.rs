//! The job's logic: counting, and writing the counts of each batch to PostgreSQL.

use cargo_stream_runtime::prelude::*;
use postgres::{Client, NoTls};

/// The table the counts go to, one row per batch and word.
pub const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS word_counts (
    batch_time BIGINT NOT NULL,
    word TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (batch_time, word)
)";

/// Keyed by batch time: a batch written again (a retried write) overwrites its rows.
const UPSERT: &str = "INSERT INTO word_counts (batch_time, word, count) VALUES ($1, $2, $3)
    ON CONFLICT (batch_time, word) DO UPDATE SET count = EXCLUDED.count";

/// Counts each word of each batch of lines.
pub fn word_counts(lines: DStream<String>) -> DStream<(String, u64)> {
    lines
        .flat_map(|line: String| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .map(|word| (word, 1u64))
        .reduce_by_key(|a, b| a + b)
}

/// Writes one partition's counts of the batch at `batch_time_ms`, in one transaction.
pub fn write_partition(client: &mut Client, batch_time_ms: i64, counts: &[(String, u64)]) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    let upsert = tx.prepare(UPSERT)?;
    for (word, count) in counts {
        let count = i64::try_from(*count).unwrap_or(i64::MAX);
        tx.execute(&upsert, &[&batch_time_ms, word, &count])?;
    }
    tx.commit()
}

/// Creates the table if needed.
pub fn create_table(url: &str) -> Result<(), postgres::Error> {
    Client::connect(url, NoTls)?.batch_execute(CREATE_TABLE)
}

/// Saves every batch's counts: on the worker threads, each partition opens its own connection
/// (a `postgres::Client` cannot be shared between threads, so one opened on the driver side
/// and captured here would not compile) and writes its rows in one transaction. A failed write
/// fails the batch's job, which stops the job with the error.
pub fn save_to_postgres(counts: &DStream<(String, u64)>, url: String) -> Result<(), cargo_stream_runtime::Error> {
    counts.foreach_rdd(move |batch: &Batch<(String, u64)>, time: Time| {
        batch.foreach_partition_ref(|part| {
            if part.is_empty() {
                return;
            }
            let written = Client::connect(&url, NoTls)
                .and_then(|mut client| write_partition(&mut client, time.millis() as i64, part));
            if let Err(err) = written {
                panic!("writing {} word count(s) of batch {} ms to PostgreSQL failed: {err}", part.len(), time.millis());
            }
        });
    })
}
