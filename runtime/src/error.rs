//! The runtime's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the runtime, from a bad configuration to a failed batch.
///
/// Messages name the setting, file or host involved and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The master string is not `local`, `local[N]` or `local[*]`.
    #[error("invalid master `{master}`: expected `local`, `local[N]` (N >= 1) or `local[*]`")]
    InvalidMaster {
        /// The string as given.
        master: String,
    },
    /// A duration setting is zero or inconsistent with another.
    #[error("invalid {what}: {why}")]
    InvalidDuration {
        /// Which setting (for example `batch interval`).
        what: &'static str,
        /// What is wrong and how to fix it.
        why: String,
    },
    /// A setting other than a duration or the master is invalid.
    #[error("invalid setting `{name}`: {why}")]
    InvalidSetting {
        /// The setting's name.
        name: &'static str,
        /// What is wrong and how to fix it.
        why: String,
    },
    /// Receivers would take every worker thread, so no batch could ever run.
    #[error(
        "`{master}` leaves no thread for batches: {receivers} receiver(s) ({names}) hold {receivers} of its {threads} thread(s); use `local[{needed}]` or more, or `local[*]`"
    )]
    NotEnoughThreads {
        /// The master as configured.
        master: String,
        /// Worker threads the master gives.
        threads: usize,
        /// Number of receivers.
        receivers: usize,
        /// The receivers' names.
        names: String,
        /// The smallest thread count that works.
        needed: usize,
    },
    /// `start()` was called on a context without any output operation (Spark's
    /// `DStreamGraph.validate` message, then the fix).
    #[error(
        "requirement failed: No output operations registered, so nothing to execute; add `print`, `save_as_text_files` or `foreach_rdd` before `start()`"
    )]
    NoOutputOperations,
    /// A stateful or inverse-window operation, or a write-ahead log, runs without a checkpoint
    /// directory (Spark's `DStream.validateAtStart` message, then which operation and the fix).
    #[error(
        "requirement failed: The checkpoint directory has not been set. Please set it by StreamingContext.checkpoint(). {operation} keeps what it needs there: call `ssc.checkpoint(dir)` before `start()`, or build the context with `StreamingContext::get_or_create(dir, ..)`"
    )]
    CheckpointRequired {
        /// The operation, in backticks, and where it was created (`` `update_state_by_key` at
        /// src/main.rs:12 ``).
        operation: String,
    },
    /// A checkpoint could not be written, read or matched to the graph.
    #[error("checkpoint directory `{}`: {message}", dir.display())]
    Checkpoint {
        /// The checkpoint directory.
        dir: PathBuf,
        /// What went wrong and what to do.
        message: String,
    },
    /// A stateful operation or join of a job running as instances reads a Kafka stream whose
    /// key may not be the record key: its keys' records may be in other instances' partitions.
    #[error(
        "`{operation}` is not co-partitioned with its Kafka input: {why}\nhelp: keep the record key (`.keyed::<K>()`, then `map_values`, `filter`, `reduce_by_key`...), or send the pairs through a topic keyed by the new key with `.repartition_through(topic, partitions)` before it"
    )]
    NotCoPartitioned {
        /// The operation and where it was called.
        operation: String,
        /// Why its key is not the record key.
        why: String,
    },
    /// The context is not in the state the call needs.
    #[error("{0}")]
    IllegalState(String),
    /// A source could not be set up (for example an unreadable directory).
    #[error("source `{source_name}`: {message}")]
    Source {
        /// The source, with its address or path.
        source_name: String,
        /// What went wrong and what to do.
        message: String,
    },
    /// A batch's job failed; the context stopped.
    #[error("job for batch {batch_time} ms failed in `{operation}`: {message}")]
    JobFailed {
        /// The batch time in milliseconds.
        batch_time: u64,
        /// The operation that failed.
        operation: String,
        /// The panic or error message.
        message: String,
    },
    /// An I/O error on a path.
    #[error("{action} `{}`: {source}", path.display())]
    Io {
        /// What the runtime was doing (for example `failed to write`).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A stop did not finish within its bounds: a graceful stop within
    /// `graceful_stop_timeout`, or a thread (a receiver, the job thread running an output
    /// operation) within the time a stop waits for it; the stop went on without it.
    #[error("stop timed out after {waited_ms} ms: {pending}")]
    StopTimedOut {
        /// How long the stop waited.
        waited_ms: u64,
        /// What was still pending, the threads left running, and what to do.
        pending: String,
    },
    /// A SQL query failed to parse, plan or run, or its result does not fit the row type it is
    /// read into (feature `sql`).
    #[error("SQL query `{query}` failed: {message}")]
    Sql {
        /// The query as given.
        query: String,
        /// What is wrong (DataFusion's message, or the missing or mistyped column).
        message: String,
    },
    /// A table could not be registered for SQL (feature `sql`).
    #[error("cannot register SQL table `{table}`: {message}")]
    SqlTable {
        /// The table's name.
        table: String,
        /// What is wrong.
        message: String,
    },
    /// Rows could not be converted to or from Arrow record batches (feature `sql`).
    #[error("cannot convert rows of `{type_name}` to or from Arrow: {message}")]
    SqlConversion {
        /// The row type.
        type_name: &'static str,
        /// What is wrong, naming the field.
        message: String,
    },
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// `Result` with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
