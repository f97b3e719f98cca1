//! A receiver's write-ahead log, and what checkpoints record of it: the last block a
//! checkpointed batch took. After a restart, the logged blocks after that one are replayed.
//!
//! Segments are deleted only once a checkpoint covering them is durable
//! ([`Checkpointed::committed`](crate::checkpoint::Checkpointed::committed)), and only up to
//! what the oldest checkpoint still kept covers, so that falling back to any kept checkpoint
//! (when a newer one is unreadable) replays everything after it. The receiver's side of this
//! (what a checkpoint records, the replay) is in `receiver_state.rs`; this log knows nothing
//! of the receiver.

use crate::sync::LockExt;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use crate::batch::Data;
use crate::error::{Error, Result};
use crate::source::wal::{Codec, Wal};
use crate::time::Time;

/// A receiver's write-ahead log and what checkpoints record of it: the last block a
/// checkpointed batch took.
pub(crate) struct ReceiverLog<T> {
    /// The log's folder name under `receivedData/` before states had stable names: the
    /// receiver's position and name (`0-SocketReceiver`). A log found there is moved to the
    /// folder of its stable name at start.
    pub(crate) id: String,
    pub(crate) codec: Codec<T>,
    pub(crate) wal: Mutex<Option<Wal>>,
    /// The last block sequence number of each batch not yet in a durable checkpoint.
    pub(crate) by_batch: Mutex<BTreeMap<Time, u64>>,
    pub(crate) positions: Mutex<Positions>,
}

/// Block positions the checkpoints cover.
#[derive(Default)]
pub(crate) struct Positions {
    /// What each checkpoint being written covers, until it is durable.
    pub(crate) saved: BTreeMap<Time, u64>,
    /// What the newest durable checkpoints cover, oldest first, at most [`KEEP`] of them.
    pub(crate) committed: VecDeque<u64>,
}

impl Positions {
    /// Blocks up to this one are in the newest durable checkpoint.
    pub(crate) fn covered(&self) -> u64 {
        self.committed.back().copied().unwrap_or(0)
    }
}

impl<T: Data> ReceiverLog<T> {
    pub(crate) fn new(id: String, codec: Codec<T>) -> Self {
        ReceiverLog {
            id,
            codec,
            wal: Mutex::default(),
            by_batch: Mutex::default(),
            positions: Mutex::default(),
        }
    }

    /// Logs block `seq` and syncs it. An error means the block is not in the log: it must
    /// not be processed (or acknowledged) as if it were.
    pub(crate) fn append(&self, receiver: &str, seq: u64, block: &[T]) -> Result<()> {
        let mut wal = self.wal.locked();
        let Some(wal) = wal.as_mut() else {
            return Ok(());
        };
        let not_logged = |why: String| Error::Source {
            source_name: receiver.to_owned(),
            message: format!(
                "a block of {} record(s) could not be written to the write-ahead log: {why}",
                block.len()
            ),
        };
        let bytes = (self.codec.encode)(block)
            .ok_or_else(|| not_logged("the records could not be encoded".into()))?;
        wal.append(seq, &bytes)
            .map_err(|e| not_logged(e.to_string()))
    }

    pub(crate) fn allocated(&self, time: Time, last_seq: u64) {
        self.by_batch.locked().insert(time, last_seq);
    }

    pub(crate) fn positions(&self) -> std::sync::MutexGuard<'_, Positions> {
        self.positions.locked()
    }
}
