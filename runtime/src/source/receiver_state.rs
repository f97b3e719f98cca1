//! `ReceiverState`: everything one receiver shares with the runtime, in one place. Its buffer
//! and memory bound, block cutting and the log append (`ReceiverContext` stores through it),
//! the blocks it gives each batch (`InputSource`), what checkpoints record of its log and the
//! replay after a restart (`Checkpointed`), and its stop control for the engine
//! (`ReceiverControl`). The log itself (`receiver_log.rs`) knows nothing of the receiver.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::batch::{Batch, Data, Executor};
use crate::checkpoint::{Checkpointed, KEEP};
use crate::error::{Error, Result};
use crate::metrics::Counters;
use crate::source::InputSource;
use crate::source::rate::{PidEstimator, RateLimiter};
use crate::source::receiver_log::ReceiverLog;
use crate::source::wal::{self, Wal};
use crate::sync::{CondvarExt, LockExt};
use crate::time::{Time, forget_upto};

#[derive(Default)]
pub(crate) struct Control {
    pub(crate) restart: Option<String>,
    /// A failure of the receiver's thread (counted, unlike `restart`).
    pub(crate) failure: Option<String>,
    pub(crate) errors: Vec<String>,
}

/// What the memory bound and the batch metrics need to know of stored records.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Meta {
    bytes: u64,
    non_utf8: u64,
}

impl Meta {
    fn add(&mut self, other: Meta) {
        self.bytes += other.bytes;
        self.non_utf8 += other.non_utf8;
    }
}

/// Records stored since the last cut.
pub(crate) struct Buffer<T> {
    records: Vec<T>,
    meta: Meta,
}

impl<T> Default for Buffer<T> {
    fn default() -> Self {
        Buffer {
            records: Vec::new(),
            meta: Meta::default(),
        }
    }
}

/// A block cut, with its sequence number, not yet in the log.
pub(crate) struct Cut<T> {
    seq: u64,
    records: Vec<T>,
    meta: Meta,
}

/// How long a store waiting for memory sleeps before it looks at `is_stopped` again.
const ROOM_POLL: Duration = Duration::from_millis(100);

/// Everything one receiver shares with the runtime: its buffer, its cut blocks and its controls.
pub(crate) struct ReceiverState<T> {
    pub(crate) name: String,
    pub(crate) buffer: Mutex<Buffer<T>>,
    /// A cut block the write-ahead log has not taken yet: retried at each cut, never given
    /// to a batch before it is logged. Its lock orders cuts (sequence numbers, log appends).
    pub(crate) pending: Mutex<Option<Cut<T>>>,
    /// Cut blocks not yet allocated to a batch, with their sequence numbers.
    pub(crate) blocks: Mutex<VecDeque<(u64, Vec<T>)>>,
    /// Sizes of the cut blocks not yet allocated (none for blocks replayed from the log).
    pub(crate) block_meta: Mutex<HashMap<u64, Meta>>,
    pub(crate) next_seq: AtomicU64,
    pub(crate) allocated: Mutex<BTreeMap<Time, Vec<Vec<T>>>>,
    /// Sizes of the batches allocated and not yet processed.
    pub(crate) by_batch: Mutex<BTreeMap<Time, Meta>>,
    /// The write-ahead log, for receivers whose records can be encoded.
    pub(crate) log: Option<ReceiverLog<T>>,
    pub(crate) control: Mutex<Control>,
    pub(crate) wake: Condvar,
    pub(crate) generation: AtomicU64,
    pub(crate) stop_requested: AtomicBool,
    pub(crate) finished: AtomicBool,
    pub(crate) stored_since_start: AtomicBool,
    /// Caps the store rate: the configured maximum, lowered by backpressure.
    pub(crate) limiter: Option<RateLimiter>,
    /// With backpressure on, the estimator that sets the limiter's rate.
    pub(crate) estimator: Option<PidEstimator>,
    /// Bytes held: buffer, pending and cut blocks, allocated batches not yet processed.
    pub(crate) held: AtomicU64,
    /// The bound on `held` (`receiver_max_buffered_bytes`).
    pub(crate) max_held: AtomicU64,
    pub(crate) room: Condvar,
    pub(crate) room_lock: Mutex<()>,
    pub(crate) warned_full: AtomicBool,
    pub(crate) record_bytes: OnceLock<fn(&T) -> usize>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) exec: Arc<OnceLock<Executor>>,
}

impl<T: Data> ReceiverState<T> {
    pub(crate) fn new(
        name: String,
        max_rate: Option<u64>,
        backpressure: Option<std::time::Duration>,
        counters: Arc<Counters>,
        exec: Arc<OnceLock<Executor>>,
        log: Option<ReceiverLog<T>>,
    ) -> Self {
        ReceiverState {
            name,
            buffer: Mutex::default(),
            pending: Mutex::default(),
            blocks: Mutex::default(),
            block_meta: Mutex::default(),
            next_seq: AtomicU64::new(1),
            allocated: Mutex::default(),
            by_batch: Mutex::default(),
            log,
            control: Mutex::default(),
            wake: Condvar::new(),
            generation: AtomicU64::new(0),
            stop_requested: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            stored_since_start: AtomicBool::new(false),
            limiter: match (max_rate, backpressure) {
                (Some(max), _) => Some(RateLimiter::new(max)),
                (None, Some(_)) => Some(RateLimiter::new(u64::MAX)),
                (None, None) => None,
            },
            estimator: backpressure.map(PidEstimator::new),
            held: AtomicU64::new(0),
            max_held: AtomicU64::new(u64::MAX),
            room: Condvar::new(),
            room_lock: Mutex::new(()),
            warned_full: AtomicBool::new(false),
            record_bytes: OnceLock::new(),
            counters,
            exec,
        }
    }

    /// Settings the supervisor applies before the first start: the memory bound, the
    /// backpressure initial rate, and how to size a record.
    pub(crate) fn configure(
        &self,
        max_held_bytes: u64,
        initial_rate: Option<u64>,
        record_bytes: fn(&T) -> usize,
    ) {
        self.max_held.store(max_held_bytes, Ordering::SeqCst);
        if let (Some(rate), Some(limiter), Some(_)) = (initial_rate, &self.limiter, &self.estimator)
        {
            limiter.set_rate(rate);
        }
        let _ = self.record_bytes.set(record_bytes);
    }

    pub(crate) fn bytes_of(&self, item: &T) -> u64 {
        self.record_bytes
            .get()
            .map_or(std::mem::size_of::<T>(), |f| f(item)) as u64
    }

    /// Waits for the rate limit, then for room under the memory bound (or a stop), and
    /// counts `bytes` as held. A receiver holding nothing may store one oversized chunk.
    pub(crate) fn admit(&self, records: u64, bytes: u64, stopped: impl Fn() -> bool) {
        if let Some(l) = &self.limiter {
            l.acquire(records);
        }
        let max = self.max_held.load(Ordering::Relaxed);
        // Room under the bound: taken without the lock (the compare-and-swap keeps stores
        // racing here within the bound; one racing the slow path below may pass it by a chunk).
        if self
            .held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |h| {
                (h.saturating_add(bytes) <= max).then(|| h + bytes)
            })
            .is_ok()
        {
            return;
        }
        let mut guard = self.room_lock.locked();
        let mut waiting_since: Option<Instant> = None;
        loop {
            let held = self.held.load(Ordering::SeqCst);
            // On a stop, what the receiver read is kept rather than dropped: one chunk more.
            if held == 0 || held.saturating_add(bytes) <= max || stopped() {
                break;
            }
            if waiting_since.is_none() {
                waiting_since = Some(Instant::now());
                Counters::add(&self.counters.receiver_memory_waits, 1);
                if !self.warned_full.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        receiver = %self.name,
                        held_bytes = held,
                        max_bytes = max,
                        "receiver holds {held} bytes, its bound `receiver_max_buffered_bytes`: it stops reading until batches are processed (logged once)"
                    );
                }
            }
            guard = self.room.wait_timeout_locked(guard, ROOM_POLL).0;
        }
        self.held.fetch_add(bytes, Ordering::SeqCst);
        drop(guard);
        if let Some(since) = waiting_since {
            tracing::debug!(receiver = %self.name, waited_ms = since.elapsed().as_millis() as u64, "store waited for memory");
        }
    }

    /// Frees `bytes` of the bound and wakes the stores waiting for room.
    pub(crate) fn release(&self, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let _ = self
            .held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |h| {
                Some(h.saturating_sub(bytes))
            });
        let _guard = self.room_lock.locked();
        self.room.notify_all();
    }

    /// Bytes held now (for tests and logs).
    #[cfg(test)]
    pub(crate) fn held(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }

    pub(crate) fn push(
        &self,
        items: impl IntoIterator<Item = T>,
        n: u64,
        bytes: u64,
        non_utf8: u64,
    ) {
        {
            let mut buf = self.buffer.locked();
            buf.records.extend(items);
            buf.meta.add(Meta { bytes, non_utf8 });
        }
        if non_utf8 > 0 {
            Counters::add(&self.counters.non_utf8_lines, non_utf8);
        }
        self.note_stored(n);
    }

    pub(crate) fn note_stored(&self, n: u64) {
        self.stored_since_start.store(true, Ordering::Relaxed);
        Counters::add(&self.counters.records_received, n);
    }

    /// Moves what was stored since the last cut into a block (one future partition).
    /// With the write-ahead log on, the block is on disk before any batch can take it: a
    /// block the log refused stays pending (in memory, never given to a batch) and is
    /// retried at the next cut, and the error is returned for the supervisor to act on.
    pub(crate) fn cut_block(&self) -> Result<()> {
        let mut pending = self.pending.locked();
        self.cut_locked(&mut pending)
    }

    pub(crate) fn cut_locked(&self, pending: &mut Option<Cut<T>>) -> Result<()> {
        // A block the log refused goes first, under its sequence number.
        self.log_and_queue(pending)?;
        let buf = std::mem::take(&mut *self.buffer.locked());
        if buf.records.is_empty() {
            return Ok(());
        }
        *pending = Some(Cut {
            seq: self.next_seq.fetch_add(1, Ordering::SeqCst),
            records: buf.records,
            meta: buf.meta,
        });
        self.log_and_queue(pending)
    }

    /// Puts records in the buffer as a store would, without waiting (for tests).
    #[cfg(test)]
    pub(crate) fn buffer_records(&self, items: impl IntoIterator<Item = T>) {
        let items: Vec<T> = items.into_iter().collect();
        let n = items.len() as u64;
        self.push(items, n, 0, 0);
    }

    /// Cuts the buffer, then makes `items` a block of their own, both logged.
    pub(crate) fn cut_with(&self, items: Vec<T>, bytes: u64) -> Result<()> {
        let mut pending = self.pending.locked();
        self.cut_locked(&mut pending)?;
        *pending = Some(Cut {
            seq: self.next_seq.fetch_add(1, Ordering::SeqCst),
            records: items,
            meta: Meta { bytes, non_utf8: 0 },
        });
        let logged = self.log_and_queue(&mut pending);
        if logged.is_err() {
            // The caller keeps these records and sends them again: the block is dropped
            // (its sequence number stays unused).
            *pending = None;
        }
        logged
    }

    pub(crate) fn log_and_queue(&self, pending: &mut Option<Cut<T>>) -> Result<()> {
        let Some(cut) = pending.as_ref() else {
            return Ok(());
        };
        if let Some(log) = &self.log {
            log.append(&self.name, cut.seq, &cut.records)?;
        }
        let cut = pending.take().expect("checked above");
        self.block_meta.locked().insert(cut.seq, cut.meta);
        self.blocks.locked().push_back((cut.seq, cut.records));
        Ok(())
    }

    /// Records stored but in no block yet, or in a block the log has not taken.
    pub(crate) fn unqueued_records(&self) -> usize {
        self.buffer.locked().records.len()
            + self
                .pending
                .locked()
                .as_ref()
                .map_or(0, |c| c.records.len())
    }

    /// The batch at `time`: one partition per block allocated to it.
    pub(crate) fn compute(&self, time: Time) -> Option<Batch<T>> {
        let exec = self.exec.get()?.clone();
        let blocks = self.allocated.locked().remove(&time).unwrap_or_default();
        Some(Batch::new(blocks, exec))
    }
}

impl<T: Data> InputSource for ReceiverState<T> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn allocate(&self, time: Time) -> u64 {
        let taken: Vec<(u64, Vec<T>)> = self.blocks.locked().drain(..).collect();
        if let (Some(log), Some((last, _))) = (&self.log, taken.last()) {
            log.allocated(time, *last);
        }
        let mut meta = Meta::default();
        {
            let mut sizes = self.block_meta.locked();
            for (seq, _) in &taken {
                if let Some(m) = sizes.remove(seq) {
                    meta.add(m);
                }
            }
        }
        let blocks: Vec<Vec<T>> = taken.into_iter().map(|(_, b)| b).collect();
        let n = blocks.iter().map(|b| b.len() as u64).sum();
        self.allocated.locked().insert(time, blocks);
        self.by_batch.locked().insert(time, meta);
        n
    }

    fn non_utf8_records(&self, time: Time) -> u64 {
        self.by_batch.locked().get(&time).map_or(0, |m| m.non_utf8)
    }

    fn forget(&self, time: Time) {
        forget_upto(&mut self.allocated.locked(), time);
        // The batches up to `time` are processed: their memory is free again.
        let done = {
            let mut by_batch = self.by_batch.locked();
            let rest = by_batch.split_off(&Time(time.0 + 1));
            std::mem::replace(&mut *by_batch, rest)
        };
        self.release(done.values().map(|m| m.bytes).sum());
    }

    fn on_batch_completed(&self, time: Time, records: u64, processing_ms: u64, scheduling_ms: u64) {
        if let (Some(est), Some(limiter)) = (&self.estimator, &self.limiter)
            && let Some(rate) = est.compute(time.millis(), records, processing_ms, scheduling_ms)
        {
            limiter.set_rate(rate as u64);
            tracing::debug!(receiver = %self.name, rate = limiter.rate(), "backpressure: new receive rate");
        }
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

/// The stop side of a receiver, type-erased.
pub(crate) trait ReceiverControl: Send + Sync {
    fn name(&self) -> &str;
    fn request_stop(&self);
    fn finished(&self) -> bool;
}

impl<T: Data> ReceiverControl for ReceiverState<T> {
    fn name(&self) -> &str {
        &self.name
    }
    fn request_stop(&self) {
        self.stop_requested.store(true, Ordering::SeqCst);
        let _guard = self.control.lock();
        self.wake.notify_all();
    }
    fn finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod checkpoint_tests {
    use crate::source::wal::Codec;
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
