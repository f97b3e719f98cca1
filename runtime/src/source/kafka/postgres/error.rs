//! `OffsetStoreError`: why a batch could not be written to PostgreSQL, or its offsets read;
//! each message names the server, the job, the partitions and offsets involved, and the fix.

/// Why the [`OffsetStore`](super::OffsetStore) could not connect, write a batch, or read the
/// stored offsets.
///
/// PostgreSQL's own errors keep the driver's words and cause (`error connecting to server:
/// Connection refused (os error 111)`, `40001: could not serialize access ...`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OffsetStoreError {
    /// A setting of the store is invalid (the connection string, the table name).
    #[error("invalid offset store setting: {0}")]
    InvalidConfig(String),
    /// The server could not be reached, even after the retries.
    #[error(
        "cannot connect to PostgreSQL at {server} after {attempts} attempt(s): {cause}; check that the server is up and that the connection string is right"
    )]
    Connect {
        /// `host:port` (or the socket folder) of the server.
        server: String,
        /// Attempts made, the first included.
        attempts: u32,
        /// The driver's error and its cause.
        cause: String,
    },
    /// A statement or the commit failed (in the store's SQL or in the write given to
    /// [`write_batch`](super::OffsetStore::write_batch)); nothing of the transaction was kept.
    #[error("{what} on PostgreSQL at {server} failed after {attempts} attempt(s): {cause}")]
    Postgres {
        /// What the store was doing (`writing batch lines-0 [0, 10)`).
        what: String,
        /// `host:port` of the server.
        server: String,
        /// Attempts made, the first included.
        attempts: u32,
        /// The SQLSTATE code, when the server answered with an error.
        code: Option<String>,
        /// The driver's error and its cause.
        cause: String,
    },
    /// PostgreSQL holds an end offset before this batch's start for a partition: the records
    /// between would never be written. Nothing was written.
    #[error(
        "offsets of job `{job}` in table `{table}`: {topic}-{partition} was written up to offset {stored_until}, but this batch reads [{from_offset}, {until_offset}): records {stored_until} to {from_offset} would never be written, so the batch is refused; start the stream from the stored offsets (no checkpoint, and `ConsumerStrategy::with_offsets(store.starting_offsets(..)?)`), or, to accept losing them, run `UPDATE {table} SET until_offset = {from_offset} WHERE job = '{job}' AND topic = '{topic}' AND partition = {partition}`"
    )]
    Gap {
        /// The job name the offsets are stored under.
        job: String,
        /// The offsets table.
        table: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The end stored in PostgreSQL (exclusive).
        stored_until: i64,
        /// The batch's start for the partition.
        from_offset: i64,
        /// The batch's end for the partition (exclusive).
        until_offset: i64,
    },
    /// The ranges given are not a batch's (a partition twice, a range ending before it starts).
    #[error("invalid offset ranges for job `{job}`: {message}")]
    InvalidRanges {
        /// The job name the offsets are stored under.
        job: String,
        /// What is wrong.
        message: String,
    },
}

impl OffsetStoreError {
    /// The SQLSTATE code of PostgreSQL's answer, when the failure is one
    /// (`40001` for a serialization failure, `23505` for a unique violation).
    pub fn code(&self) -> Option<&str> {
        match self {
            OffsetStoreError::Postgres { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// The driver's error in words: the server's SQLSTATE and message, or the driver's message
/// followed by its causes (`error connecting to server: Connection refused (os error 111)`).
pub(super) fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {}", db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            s.push_str(&format!(" ({detail})"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

/// Whether a new attempt of the whole transaction can succeed: the connection failed or broke
/// (no answer, closed, reset, timed out; the server shutting down or starting), or the server
/// gave up the transaction to let a concurrent one go (serialization failure, deadlock, lock
/// timeout). Retrying is safe even when a commit's answer was lost: the guard then finds the
/// batch written and skips it.
pub(super) fn retryable(e: &postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            let code = code.code();
            code.starts_with("08")
                || code.starts_with("57P")
                || code == "40001"
                || code == "40P01"
                || code == "55P03"
        }
        None => {
            e.is_closed()
                || e.to_string().starts_with("timeout")
                || std::error::Error::source(e).is_some_and(|c| c.is::<std::io::Error>())
        }
    }
}
