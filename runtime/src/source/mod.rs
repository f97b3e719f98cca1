//! Input sources: what feeds batches. Receivers ([`receiver`]) run on their own threads and
//! cut blocks; direct sources (queues, directories) are asked for data at each batch time.

pub(crate) mod direct;
pub(crate) mod file;
#[cfg(feature = "kafka")]
pub mod kafka;
pub(crate) mod queue;
pub(crate) mod rate;
pub(crate) mod receiver;
pub(crate) mod receiver_log;
pub(crate) mod receiver_state;
pub(crate) mod socket;
pub(crate) mod supervisor;
pub(crate) mod wal;

use crate::error::Result;
use crate::time::Time;

/// The context's view of an input: allocate data to a batch when it is generated, so that a
/// batch's input is fixed before its jobs run, however late they run.
pub(crate) trait InputSource: Send + Sync {
    /// The source's name for messages, with its address or path.
    fn name(&self) -> String;
    /// Called once by `start()`; an error here fails `start()`.
    fn start(&self) -> Result<()> {
        Ok(())
    }
    /// Fixes the input of the batch at `time`; returns the records allocated, when known now.
    fn allocate(&self, time: Time) -> u64;
    /// Records read for `time` while computing it (sources that read at compute time).
    fn records_read(&self, _time: Time) -> u64 {
        0
    }
    /// Records of the batch at `time` that were not valid UTF-8 (decoded with U+FFFD).
    fn non_utf8_records(&self, _time: Time) -> u64 {
        0
    }
    /// What the batch at `time` read, for people (Spark's `StreamInputInfo` description):
    /// the Kafka offset ranges of a direct stream; `None` when there is nothing to tell.
    fn description(&self, _time: Time) -> Option<String> {
        None
    }
    /// Records each partition still holds past what was given to batches, as of the last
    /// `allocate` (Kafka's consumer lag); empty for inputs that do not know.
    fn lag(&self) -> Vec<crate::metrics::PartitionLag> {
        Vec::new()
    }
    /// Batch times generated before a restart whose batches did not finish, which this input
    /// gives the same input again (the direct Kafka stream's ranges, from its checkpoint and
    /// its batch log): the generator runs them first, at these times, as Spark replays the
    /// pending batch times of its checkpoint. Asked once, after `start()`.
    fn replay_times(&self) -> Vec<Time> {
        Vec::new()
    }
    /// Drops what was allocated to batches up to `time`, once they are done.
    fn forget(&self, time: Time);
    /// After a batch: how many records this input gave it and how it went (for backpressure).
    fn on_batch_completed(
        &self,
        _time: Time,
        _records: u64,
        _processing_ms: u64,
        _scheduling_ms: u64,
    ) {
    }
}
