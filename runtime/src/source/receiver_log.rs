//! A receiver's write-ahead log, and what checkpoints record of it: the last block a
//! checkpointed batch took. After a restart, the logged blocks after that one are replayed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::batch::Data;
use crate::checkpoint::Checkpointed;
use crate::error::{Error, Result};
use crate::source::receiver::ReceiverState;
use crate::source::wal::{self, Codec, Wal};
use crate::time::{Time, forget_upto};

/// A receiver's write-ahead log and what checkpoints record of it: the last block a
/// checkpointed batch took.
pub(crate) struct ReceiverLog<T> {
    /// The log's folder name under `receivedData/`.
    pub(crate) id: String,
    codec: Codec<T>,
    wal: Mutex<Option<Wal>>,
    /// The last block sequence number of each batch not yet checkpointed.
    by_batch: Mutex<BTreeMap<Time, u64>>,
    /// Blocks up to this one are in checkpointed batches.
    covered: AtomicU64,
}

impl<T: Data> ReceiverLog<T> {
    pub(crate) fn new(id: String, codec: Codec<T>) -> Self {
        ReceiverLog {
            id,
            codec,
            wal: Mutex::default(),
            by_batch: Mutex::default(),
            covered: AtomicU64::new(0),
        }
    }

    pub(crate) fn append(&self, receiver: &str, seq: u64, block: &[T]) {
        let mut wal = self.wal.lock().unwrap_or_else(|p| p.into_inner());
        let Some(wal) = wal.as_mut() else { return };
        let written = (self.codec.encode)(block)
            .ok_or_else(|| "could not encode the block".to_owned())
            .and_then(|bytes| wal.append(seq, &bytes).map_err(|e| e.to_string()));
        if let Err(e) = written {
            tracing::error!(
                receiver,
                "write-ahead log: {e}; this block would be lost in a crash"
            );
        }
    }

    pub(crate) fn allocated(&self, time: Time, last_seq: u64) {
        self.by_batch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(time, last_seq);
    }
}

impl<T: Data> Checkpointed for ReceiverState<T> {
    fn kind(&self) -> &'static str {
        "receiver"
    }

    fn types(&self) -> Vec<(&'static str, &'static str)> {
        // The logged blocks hold records of this type.
        vec![("record", std::any::type_name::<T>())]
    }

    fn save(&self, time: Time) -> Result<Vec<u8>> {
        let Some(log) = &self.log else {
            return Ok(0u64.to_le_bytes().to_vec());
        };
        let done = {
            let mut by_batch = log.by_batch.lock().unwrap_or_else(|p| p.into_inner());
            let done = by_batch.range(..=time).map(|(_, seq)| *seq).max();
            forget_upto(&mut by_batch, time);
            done
        };
        if let Some(d) = done {
            log.covered.fetch_max(d, Ordering::SeqCst);
        }
        let covered = log.covered.load(Ordering::SeqCst);
        if let Some(wal) = log.wal.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            wal.truncate(covered);
        }
        Ok(covered.to_le_bytes().to_vec())
    }

    fn restore(&self, bytes: &[u8]) -> Result<()> {
        let covered = bytes.try_into().map(u64::from_le_bytes).map_err(|_| {
            Error::IllegalState(format!(
                "bad receiver position for `{}` in the checkpoint",
                self.name
            ))
        })?;
        if let Some(log) = &self.log {
            log.covered.store(covered, Ordering::SeqCst);
        }
        Ok(())
    }

    fn enable(&self, checkpoint_dir: &Path) -> Result<()> {
        let Some(log) = &self.log else { return Ok(()) };
        let wal = Wal::open(wal::dir_for(checkpoint_dir, &log.id))?;
        // Blocks written but not in a checkpointed batch: they go to the first batch.
        let replayed = wal.replay(log.covered.load(Ordering::SeqCst));
        let mut blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        let mut records = 0;
        for (seq, bytes) in &replayed {
            match (log.codec.decode)(bytes) {
                Some(block) => {
                    records += block.len();
                    blocks.push_back((*seq, block));
                }
                None => {
                    tracing::warn!(receiver = %self.name, seq, "undecodable block in the write-ahead log; skipped")
                }
            }
            self.next_seq.fetch_max(seq + 1, Ordering::SeqCst);
        }
        if !replayed.is_empty() {
            tracing::info!(receiver = %self.name, blocks = replayed.len(), records, "replaying blocks from the write-ahead log");
        }
        *log.wal.lock().unwrap_or_else(|p| p.into_inner()) = Some(wal);
        Ok(())
    }
}
