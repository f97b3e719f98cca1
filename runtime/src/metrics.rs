//! Per-batch metrics, counters of skipped or repaired input, and the `StreamingListener` trait.
//!
//! The listener events carry what the status page and its REST API serve (`crate::ui`), so a
//! user's listener sees what the page shows; they serialize to the lines of the event log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::time::Time;

/// What happened to one batch, as Spark's `BatchInfo`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchInfo {
    /// The batch time.
    pub batch_time: Time,
    /// Records the batch took from its inputs.
    pub num_records: u64,
    /// When the batch was queued (wall-clock ms).
    pub submission_time: u64,
    /// When its first job started.
    pub processing_start_time: Option<u64>,
    /// When its last job ended.
    pub processing_end_time: Option<u64>,
    /// Records of the batch that were not valid UTF-8 (socket lines, lines of new files):
    /// kept, with each invalid sequence replaced by U+FFFD, as Spark decodes them.
    pub non_utf8_records: u64,
    /// Each input's part of the batch, by input stream id (Spark's `streamIdToInputInfo`).
    #[serde(default)]
    pub input_infos: Vec<StreamInputInfo>,
    /// The batch's output operations, by id (Spark's `outputOperationInfos`): filled in as
    /// they run, complete in `on_batch_completed` and `on_batch_failed`.
    #[serde(default)]
    pub output_operation_infos: Vec<OutputOperationInfo>,
    /// Why the batch failed: the first failed output operation's reason, or the failed step
    /// (checkpoint, internal operation) and its message. `None` for a batch that succeeded.
    #[serde(default)]
    pub failure_reason: Option<String>,
}

/// What one input gave one batch, as Spark's `StreamInputInfo`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamInputInfo {
    /// The input's id: its rank among the context's inputs, in creation order (Spark's
    /// `inputStreamId`).
    pub input_stream_id: usize,
    /// The input's name, with its address or path.
    pub name: String,
    /// Records the input gave the batch.
    pub num_records: u64,
    /// What the batch read, when the source says (Kafka offset ranges, files); Spark's
    /// `metadata("Description")`.
    pub description: Option<String>,
    /// Records each partition of the input still held after this batch's input was fixed
    /// (the newest offset minus the batch's end), for the inputs that know it (Kafka).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lag: Vec<PartitionLag>,
}

/// How far one partition of an input is behind: records the brokers hold past the end of the
/// newest batch's range.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Records not yet given to a batch.
    pub records: i64,
}

/// One output operation of one batch, as Spark's `OutputOperationInfo`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutputOperationInfo {
    /// The batch time.
    pub batch_time: Time,
    /// The operation's id: its rank among the context's output operations.
    pub id: usize,
    /// The operation (`print`, `foreach_rdd`, ...).
    pub name: String,
    /// The operation and where the job's code registered it (`print at src/main.rs:14:5`).
    pub description: String,
    /// When it started (wall-clock ms, or the manual clock's).
    pub start_time: Option<u64>,
    /// When it ended.
    pub end_time: Option<u64>,
    /// Why it failed (its panic message), if it did.
    pub failure_reason: Option<String>,
}

impl OutputOperationInfo {
    /// How long it ran.
    pub fn duration(&self) -> Option<Duration> {
        Some(Duration::from_millis(
            self.end_time?.saturating_sub(self.start_time?),
        ))
    }
}

/// A checkpoint written after a batch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointInfo {
    /// The batch whose state it holds.
    pub batch_time: Time,
    /// Its size in bytes.
    pub bytes: u64,
    /// How long writing it took, in milliseconds.
    pub duration_ms: u64,
    /// The checkpoint directory.
    pub dir: String,
}

impl BatchInfo {
    /// Time from the batch time to the start of processing: grows when batches fall behind.
    pub fn scheduling_delay(&self) -> Option<Duration> {
        self.processing_start_time
            .map(|s| Duration::from_millis(s.saturating_sub(self.batch_time.0)))
    }
    /// Time spent processing.
    pub fn processing_delay(&self) -> Option<Duration> {
        Some(Duration::from_millis(
            self.processing_end_time?
                .saturating_sub(self.processing_start_time?),
        ))
    }
    /// Time from the batch time to the end of processing.
    pub fn total_delay(&self) -> Option<Duration> {
        self.processing_end_time
            .map(|e| Duration::from_millis(e.saturating_sub(self.batch_time.0)))
    }
}

/// A receiver as listeners see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReceiverInfo {
    /// The receiver's name (its kind and address).
    pub name: String,
    /// The last error or restart reason, if any.
    pub last_error: Option<String>,
    /// The input stream id of the receiver's stream (Spark's `streamId`).
    #[serde(default)]
    pub stream_id: usize,
    /// When the event happened (wall-clock ms since the Unix epoch).
    #[serde(default)]
    pub time: u64,
}

/// Callbacks on batches and receivers, as Spark's `StreamingListener`; every method has an
/// empty default. They run on the runtime's threads: keep them quick.
pub trait StreamingListener: Send + Sync {
    /// The context started; `time` is the first batch time.
    fn on_streaming_started(&self, _time: Time) {}
    /// A batch was queued.
    fn on_batch_submitted(&self, _info: &BatchInfo) {}
    /// A batch started processing.
    fn on_batch_started(&self, _info: &BatchInfo) {}
    /// A batch finished processing.
    fn on_batch_completed(&self, _info: &BatchInfo) {}
    /// A batch failed (an output operation panicked, its checkpoint failed): the context
    /// stops. `info.failure_reason` says why.
    fn on_batch_failed(&self, _info: &BatchInfo) {}
    /// An output operation of a batch started.
    fn on_output_operation_started(&self, _info: &OutputOperationInfo) {}
    /// An output operation of a batch ended (`failure_reason` set if it failed).
    fn on_output_operation_completed(&self, _info: &OutputOperationInfo) {}
    /// A checkpoint was written and is durable.
    fn on_checkpoint_written(&self, _info: &CheckpointInfo) {}
    /// A receiver started (or restarted).
    fn on_receiver_started(&self, _info: &ReceiverInfo) {}
    /// A receiver reported an error or asked to restart.
    fn on_receiver_error(&self, _info: &ReceiverInfo) {}
    /// A receiver stopped.
    fn on_receiver_stopped(&self, _info: &ReceiverInfo) {}
}

/// Running totals of input the sources skipped or could not read, for alerting and tests.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) non_utf8_lines: AtomicU64,
    pub(crate) receiver_failures: AtomicU64,
    pub(crate) receiver_memory_waits: AtomicU64,
    pub(crate) vanished_files: AtomicU64,
    pub(crate) unreadable_files: AtomicU64,
    pub(crate) listing_errors: AtomicU64,
    pub(crate) receiver_restarts: AtomicU64,
    pub(crate) records_received: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CounterSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            non_utf8_lines: get(&self.non_utf8_lines),
            receiver_failures: get(&self.receiver_failures),
            receiver_memory_waits: get(&self.receiver_memory_waits),
            vanished_files: get(&self.vanished_files),
            unreadable_files: get(&self.unreadable_files),
            listing_errors: get(&self.listing_errors),
            receiver_restarts: get(&self.receiver_restarts),
            records_received: get(&self.records_received),
        }
    }
}

/// A snapshot of the context's counters of skipped input and receiver restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CounterSnapshot {
    /// Lines that were not valid UTF-8: kept, with each invalid sequence replaced by U+FFFD.
    pub non_utf8_lines: u64,
    /// Receiver failures: panics in `on_start`/`on_stop`, blocks the write-ahead log did not
    /// take (see `StreamingConf::receiver_max_failures`).
    pub receiver_failures: u64,
    /// Times a receiver's store waited because the receiver held
    /// `StreamingConf::receiver_max_buffered_bytes`.
    pub receiver_memory_waits: u64,
    /// Files listed but gone before they could be read.
    pub vanished_files: u64,
    /// Files that could not be read for another reason.
    pub unreadable_files: u64,
    /// Failed directory listings.
    pub listing_errors: u64,
    /// Receiver restarts (asked for by the receiver, or after a failure).
    pub receiver_restarts: u64,
    /// Records stored by receivers.
    pub records_received: u64,
}
