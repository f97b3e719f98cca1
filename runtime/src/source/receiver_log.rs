//! A receiver's write-ahead log, and what checkpoints record of it: the last block a
//! checkpointed batch took. After a restart, the logged blocks after that one are replayed.
//!
//! Segments are deleted only once a checkpoint covering them is durable
//! ([`Checkpointed::committed`]), and only up to what the oldest checkpoint still kept covers,
//! so that falling back to any kept checkpoint (when a newer one is unreadable) replays
//! everything after it.

use crate::sync::LockExt;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use crate::batch::Data;
use crate::checkpoint::{Checkpointed, KEEP};
use crate::error::{Error, Result};
use crate::source::receiver::ReceiverState;
use crate::source::wal::{self, Codec, Wal};
use crate::time::{Time, forget_upto};

/// A receiver's write-ahead log and what checkpoints record of it: the last block a
/// checkpointed batch took.
pub(crate) struct ReceiverLog<T> {
    /// The log's folder name under `receivedData/` before states had stable names: the
    /// receiver's position and name (`0-SocketReceiver`). A log found there is moved to the
    /// folder of its stable name at start.
    pub(crate) id: String,
    codec: Codec<T>,
    wal: Mutex<Option<Wal>>,
    /// The last block sequence number of each batch not yet in a durable checkpoint.
    by_batch: Mutex<BTreeMap<Time, u64>>,
    positions: Mutex<Positions>,
}

/// Block positions the checkpoints cover.
#[derive(Default)]
struct Positions {
    /// What each checkpoint being written covers, until it is durable.
    saved: BTreeMap<Time, u64>,
    /// What the newest durable checkpoints cover, oldest first, at most [`KEEP`] of them.
    committed: VecDeque<u64>,
}

impl Positions {
    /// Blocks up to this one are in the newest durable checkpoint.
    fn covered(&self) -> u64 {
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

    fn positions(&self) -> std::sync::MutexGuard<'_, Positions> {
        self.positions.locked()
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

    /// The last block the batches up to `time` took, then what the older kept checkpoints
    /// cover (oldest first): `u64`s, little-endian. Deletes nothing: see `committed`.
    fn save(&self, time: Time) -> Result<Vec<u8>> {
        let Some(log) = &self.log else {
            return Ok(0u64.to_le_bytes().to_vec());
        };
        let done = log
            .by_batch
            .locked()
            .range(..=time)
            .map(|(_, seq)| *seq)
            .max();
        let mut positions = log.positions();
        let covered = done.unwrap_or(0).max(positions.covered());
        positions.saved.insert(time, covered);
        let older = positions.committed.len().saturating_sub(KEEP - 1);
        let mut bytes = covered.to_le_bytes().to_vec();
        for seq in positions.committed.iter().skip(older) {
            bytes.extend_from_slice(&seq.to_le_bytes());
        }
        Ok(bytes)
    }

    fn restore(&self, bytes: &[u8]) -> Result<()> {
        let bad = || {
            Error::IllegalState(format!(
                "bad receiver position for `{}` in the checkpoint",
                self.name
            ))
        };
        if bytes.is_empty() || !bytes.len().is_multiple_of(8) {
            return Err(bad());
        }
        let mut seqs = bytes
            .chunks_exact(8)
            .map(|c| c.try_into().map(u64::from_le_bytes).map_err(|_| bad()));
        let covered = seqs.next().ok_or_else(bad)??;
        // Blocks after this one get new sequence numbers: never reuse a covered one.
        self.next_seq.fetch_max(covered + 1, Ordering::SeqCst);
        if let Some(log) = &self.log {
            let mut positions = log.positions();
            positions.committed = seqs.collect::<Result<_>>()?;
            positions.committed.push_back(covered);
        }
        Ok(())
    }

    fn enable(&self, checkpoint_dir: &Path, name: &str) -> Result<()> {
        let Some(log) = &self.log else { return Ok(()) };
        // The log lives under the receiver's stable name, so that receivers added or removed
        // before it in a changed job do not swap logs.
        let folder = wal::dir_for(checkpoint_dir, &wal::folder_name(name));
        let legacy = wal::dir_for(checkpoint_dir, &log.id);
        if !folder.exists() && legacy.is_dir() {
            std::fs::rename(&legacy, &folder)
                .map_err(|e| Error::io("failed to move the write-ahead log into", &folder, e))?;
            tracing::info!(receiver = %self.name, from = %legacy.display(), to = %folder.display(), "write-ahead log moved to the folder of its state's name");
        }
        let wal = Wal::open(folder.clone())?;
        // Blocks written but not in a checkpointed batch: they go to the first batch.
        let replayed = wal.replay(log.positions().covered())?;
        let mut blocks = self.blocks.locked();
        let mut records = 0;
        for (seq, bytes) in &replayed {
            match (log.codec.decode)(bytes) {
                Some(block) => {
                    records += block.len();
                    blocks.push_back((*seq, block));
                }
                None => {
                    return Err(Error::Source {
                        source_name: self.name.clone(),
                        message: format!(
                            "block {seq} of its write-ahead log `{}` cannot be decoded as this job's records: was the job's record type changed? Run the old version until it has checkpointed, or move the log away to start without these blocks",
                            folder.display()
                        ),
                    });
                }
            }
            self.next_seq.fetch_max(seq + 1, Ordering::SeqCst);
        }
        if !replayed.is_empty() {
            tracing::info!(receiver = %self.name, blocks = replayed.len(), records, "replaying blocks from the write-ahead log");
        }
        *log.wal.locked() = Some(wal);
        Ok(())
    }

    /// The checkpoint of `time` is durable: the segments that the oldest kept checkpoint
    /// covers may go. A failure to delete them is reported and retried at the next one.
    fn committed(&self, time: Time) {
        let Some(log) = &self.log else { return };
        let oldest = {
            let mut positions = log.positions();
            let Some(covered) = positions.saved.remove(&time) else {
                return;
            };
            forget_upto(&mut positions.saved, time);
            positions.committed.push_back(covered);
            while positions.committed.len() > KEEP {
                positions.committed.pop_front();
            }
            positions.committed.front().copied().unwrap_or(0)
        };
        forget_upto(&mut log.by_batch.locked(), time);
        if let Some(wal) = log.wal.locked().as_mut()
            && let Err(e) = wal.truncate(oldest)
        {
            crate::warning::warn(format_args!(
                "receiver `{}`: {e}; the segments stay on disk (nothing is lost) and are deleted after the next checkpoint",
                self.name
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, OnceLock};

    use super::*;
    use crate::metrics::Counters;
    use crate::source::InputSource;

    fn receiver() -> ReceiverState<u64> {
        ReceiverState::new(
            "numbers".into(),
            None,
            None,
            Arc::new(Counters::default()),
            Arc::new(OnceLock::new()),
            Some(ReceiverLog::new("0-numbers".into(), Codec::postcard())),
        )
    }

    fn segments(dir: &Path) -> usize {
        std::fs::read_dir(wal::dir_for(dir, "0-numbers"))
            .unwrap()
            .count()
    }

    /// Stores `n` and gives it a batch of its own at `t` seconds.
    fn batch(r: &ReceiverState<u64>, t: u64, n: u64) {
        r.buffer_records([n]);
        r.cut_block().unwrap();
        r.allocate(Time(t * 1000));
    }

    #[test]
    fn save_deletes_nothing_and_committed_keeps_what_the_oldest_kept_checkpoint_needs() {
        let _serial = fail::FailScenario::setup();
        let dir = tempfile::tempdir().unwrap();
        let r = receiver();
        r.enable(dir.path(), "0-numbers").unwrap();
        for t in 1..=6 {
            batch(&r, t, t);
            let before = segments(dir.path());
            r.save(Time(t * 1000)).unwrap();
            // Saved, not yet durable: nothing is deleted.
            assert_eq!(segments(dir.path()), before, "save({t}) deleted a segment");
            r.committed(Time(t * 1000));
        }
        // The checkpoints of 4, 5 and 6 s are kept: falling back to the oldest replays the
        // blocks after 4, so those stay (one segment each, as each commit starts a new one).
        let wal = Wal::open(wal::dir_for(dir.path(), "0-numbers")).unwrap();
        let kept: Vec<u64> = wal.replay(0).unwrap().iter().map(|(s, _)| *s).collect();
        assert_eq!(kept, vec![5, 6]);
        assert_eq!(segments(dir.path()), 2);
        // A restart from the checkpoint of 5 s numbers new blocks after what it covers.
        let saved = r.save(Time(5000)).unwrap();
        let again = receiver();
        again.restore(&saved).unwrap();
        assert_eq!(again.next_seq.load(Ordering::SeqCst), 7);
    }

    #[test]
    fn a_block_the_log_refuses_stays_pending_and_is_logged_first_at_the_next_cut() {
        let _serial = fail::FailScenario::setup();
        let dir = tempfile::tempdir().unwrap();
        let r = receiver();
        r.enable(dir.path(), "0-numbers").unwrap();
        r.buffer_records([1, 2]);
        fail::cfg("wal::append", "return").unwrap();
        let err = r.cut_block().unwrap_err().to_string();
        fail::remove("wal::append");
        assert!(
            err.contains("source `numbers`") && err.contains("2 record(s) could not be written"),
            "{err}"
        );
        assert!(r.blocks.lock().unwrap().is_empty(), "no batch may take it");
        r.buffer_records([3]);
        r.cut_block().unwrap();
        let blocks: Vec<(u64, Vec<u64>)> = r.blocks.lock().unwrap().iter().cloned().collect();
        assert_eq!(
            blocks,
            vec![(1, vec![1, 2]), (2, vec![3])],
            "the refused block keeps its place and number"
        );
        let wal = Wal::open(wal::dir_for(dir.path(), "0-numbers")).unwrap();
        let logged: Vec<u64> = wal.replay(0).unwrap().iter().map(|(s, _)| *s).collect();
        assert_eq!(logged, vec![1, 2]);
    }

    #[test]
    fn a_log_lives_under_its_state_name_and_a_positional_one_is_moved_there() {
        let _serial = fail::FailScenario::setup();
        let dir = tempfile::tempdir().unwrap();
        // A log written before states had names: the receiver's position and name.
        let old = receiver();
        old.enable(dir.path(), "0-numbers").unwrap();
        batch(&old, 1, 7);
        drop(old);
        // (`0-numbers` is also its own folder name: the old folder, as the old code named it.)
        let legacy = wal::dir_for(dir.path(), "0-numbers");
        // Restarted under its stable name: the block is replayed from the moved log.
        let r = receiver();
        r.enable(dir.path(), "main.rs:receiver#1").unwrap();
        let named = wal::dir_for(dir.path(), "main.rs_3a_receiver_23_1");
        assert!(named.is_dir() && !legacy.exists(), "the log was not moved");
        let replayed: Vec<u64> = r
            .blocks
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, b)| b.clone())
            .collect();
        assert_eq!(replayed, vec![7]);
        // Another receiver's name never reads this log.
        let other = receiver();
        other.enable(dir.path(), "main.rs:receiver#2").unwrap();
        assert!(other.blocks.lock().unwrap().is_empty());
    }
}
