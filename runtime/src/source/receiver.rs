//! Custom receivers: the `Receiver` trait and the `ReceiverContext` it stores records through.
//!
//! As in Spark, a receiver's [`on_start`](Receiver::on_start) must not block: it starts its own
//! thread that loops while [`ReceiverContext::is_stopped`] is false and stores what it reads.
//! The runtime cuts stored records into a block every block interval; each block is one
//! partition of the next batch. What a receiver holds (stored, cut, and in batches not yet
//! processed) is bounded by `receiver_max_buffered_bytes`: past it, stores wait.

use crate::sync::{CondvarExt, LockExt};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::batch::{Batch, Data, Executor};
use crate::error::{Error, Result};
use crate::metrics::Counters;
use crate::source::InputSource;
use crate::source::rate::{PidEstimator, RateLimiter};
use crate::source::receiver_log::ReceiverLog;
use crate::time::{Time, forget_upto};

/// A custom source of records, as Spark's `Receiver`.
///
/// ```
/// use cargo_stream_runtime::prelude::*;
///
/// /// Counts up from zero, one number every millisecond.
/// struct Counter;
///
/// impl Receiver for Counter {
///     type Item = u64;
///     fn on_start(&mut self, ctx: ReceiverContext<u64>) {
///         std::thread::spawn(move || {
///             let mut n = 0;
///             while !ctx.is_stopped() {
///                 ctx.store(n);
///                 n += 1;
///                 std::thread::sleep(std::time::Duration::from_millis(1));
///             }
///         });
///     }
///     fn on_stop(&mut self) {}
/// }
///
/// let ssc = StreamingContext::new(StreamingConf::new("count").master("local[2]"), Milliseconds(100))?;
/// let numbers = ssc.receiver_stream(Counter);
/// numbers.count().print(1)?;
/// # Ok::<(), cargo_stream_runtime::Error>(())
/// ```
pub trait Receiver: Send + 'static {
    /// What the receiver stores.
    type Item: Data;

    /// Starts receiving: spawn a thread that stores records through `ctx`; must not block.
    /// A panic here is a receiver failure: it is reported, and the receiver restarted with
    /// back-off, until `StreamingConf::receiver_max_failures` fails the job.
    fn on_start(&mut self, ctx: ReceiverContext<Self::Item>);

    /// Stops receiving: release what `on_start` opened. Threads it started see
    /// `is_stopped()` turn true. A panic here is reported and does not stop the runtime from
    /// finishing the receiver.
    fn on_stop(&mut self);

    /// The receiver's name in logs and errors (its kind and address).
    fn name(&self) -> String {
        std::any::type_name::<Self>()
            .rsplit("::")
            .next()
            .unwrap_or("receiver")
            .to_owned()
    }

    /// The bytes one record holds in memory, counted against
    /// `StreamingConf::receiver_max_buffered_bytes`. The default, `size_of` the record, is
    /// right for numbers and plain structs; override it when records own heap memory.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    ///
    /// struct Lines;
    ///
    /// impl Receiver for Lines {
    ///     type Item = String;
    ///     fn on_start(&mut self, _ctx: ReceiverContext<String>) {}
    ///     fn on_stop(&mut self) {}
    ///     fn record_bytes(line: &String) -> usize {
    ///         std::mem::size_of::<String>() + line.capacity()
    ///     }
    /// }
    ///
    /// assert_eq!(Lines::record_bytes(&"abc".to_owned()), 27);
    /// ```
    fn record_bytes(record: &Self::Item) -> usize
    where
        Self: Sized,
    {
        std::mem::size_of_val(record)
    }
}

/// The handle a receiver stores records through, and asks for a restart with. Cheap to clone.
pub struct ReceiverContext<T> {
    pub(crate) state: Arc<ReceiverState<T>>,
    generation: u64,
}

impl<T> Clone for ReceiverContext<T> {
    fn clone(&self) -> Self {
        ReceiverContext {
            state: self.state.clone(),
            generation: self.generation,
        }
    }
}

impl<T: Data> ReceiverContext<T> {
    pub(crate) fn new(state: Arc<ReceiverState<T>>, generation: u64) -> Self {
        ReceiverContext { state, generation }
    }

    /// Stores one record, into the block being filled (Spark's unreliable `store(item)`: a
    /// crash before the block is cut loses it). Waits while a rate limit is reached or the
    /// receiver holds `receiver_max_buffered_bytes`.
    pub fn store(&self, item: T) {
        let bytes = self.state.bytes_of(&item);
        self.state.admit(1, bytes, || self.is_stopped());
        self.state.push(std::iter::once(item), 1, bytes, 0);
    }

    /// Stores many records at once (cheaper than one by one), into the block being filled;
    /// waits as [`store`](Self::store) does.
    pub fn store_many(&self, items: impl IntoIterator<Item = T>) {
        self.store_counted(items.into_iter().collect(), 0);
    }

    /// Stores `items` as a block of their own and returns once the block is safe, as Spark's
    /// reliable `store(ArrayBuffer)`: with the write-ahead log on, once it is appended and
    /// synced. Acknowledge your source only after `Ok`. On `Err` the records are not kept and
    /// the receiver failed: it is restarted (its threads see `is_stopped()`) and reads them
    /// again from the source, until `receiver_max_failures` fails the job.
    /// Records stored before with `store`/`store_many` go into a block before these.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    ///
    /// struct Acked;
    ///
    /// impl Receiver for Acked {
    ///     type Item = u64;
    ///     fn on_start(&mut self, ctx: ReceiverContext<u64>) {
    ///         std::thread::spawn(move || {
    ///             let mut next = 0;
    ///             while !ctx.is_stopped() {
    ///                 let batch: Vec<u64> = (next..next + 10).collect();
    ///                 match ctx.store_reliably(batch) {
    ///                     Ok(()) => next += 10, // acknowledge the source here
    ///                     Err(_) => return,     // not acknowledged; restarted by the runtime
    ///                 }
    ///                 std::thread::sleep(std::time::Duration::from_millis(10));
    ///             }
    ///         });
    ///     }
    ///     fn on_stop(&mut self) {}
    /// }
    ///
    /// let ssc = StreamingContext::new(StreamingConf::new("acked").master("local[2]"), Milliseconds(100))?;
    /// ssc.receiver_stream(Acked).count().print(1)?;
    /// # Ok::<(), cargo_stream_runtime::Error>(())
    /// ```
    pub fn store_reliably(&self, items: impl IntoIterator<Item = T>) -> Result<()> {
        let items: Vec<T> = items.into_iter().collect();
        if items.is_empty() {
            return Ok(());
        }
        let n = items.len() as u64;
        let bytes = items.iter().map(|i| self.state.bytes_of(i)).sum();
        self.state.admit(n, bytes, || self.is_stopped());
        match self.state.cut_with(items, bytes) {
            Ok(()) => {
                self.state.note_stored(n);
                Ok(())
            }
            Err(e) => {
                self.state.release(bytes);
                // A failure, as a block the log refused at a cut: counted, and the receiver
                // restarted to read the records again from its source.
                self.fail(format!(
                    "the write-ahead log did not take a block of {n} records: {e}"
                ));
                Err(Error::Source {
                    source_name: self.state.name.clone(),
                    message: format!(
                        "{n} records were not stored, so they must not be acknowledged: {e}"
                    ),
                })
            }
        }
    }

    /// Stores `items`, of which `non_utf8` were decoded with replacement characters.
    pub(crate) fn store_counted(&self, items: Vec<T>, non_utf8: u64) {
        if items.is_empty() {
            return;
        }
        let n = items.len() as u64;
        let bytes = items.iter().map(|i| self.state.bytes_of(i)).sum();
        self.state.admit(n, bytes, || self.is_stopped());
        self.state.push(items, n, bytes, non_utf8);
    }

    /// Asks the runtime to stop this receiver and start it again after a back-off delay
    /// (for example after a lost connection); `reason` is logged. Such restarts are not
    /// failures: they never fail the job.
    pub fn restart(&self, reason: impl Into<String>) {
        if self.is_stopped() {
            return;
        }
        let mut c = self.state.control.locked();
        c.restart = Some(reason.into());
        self.state.wake.notify_all();
    }

    /// Reports a failure of the receiver's own thread: counted against
    /// `receiver_max_failures`, and the receiver restarted.
    pub(crate) fn fail(&self, reason: impl Into<String>) {
        if self.is_stopped() {
            return;
        }
        let mut c = self.state.control.locked();
        c.failure = Some(reason.into());
        self.state.wake.notify_all();
    }

    /// Reports an error without restarting: logged and passed to listeners.
    pub fn report_error(&self, message: impl Into<String>) {
        let message = message.into();
        tracing::error!(receiver = %self.state.name, "{message}");
        self.state.control.locked().errors.push(message);
        self.state.wake.notify_all();
    }

    /// True once the receiver is being stopped or restarted: threads started by
    /// `on_start` must then return.
    pub fn is_stopped(&self) -> bool {
        self.state.stop_requested.load(Ordering::SeqCst)
            || self.state.generation.load(Ordering::SeqCst) != self.generation
    }
}

#[derive(Default)]
pub(crate) struct Control {
    pub(crate) restart: Option<String>,
    /// A failure of the receiver's thread (counted, unlike `restart`).
    pub(crate) failure: Option<String>,
    pub(crate) errors: Vec<String>,
}

/// What the memory bound and the batch metrics need to know of stored records.
#[derive(Debug, Default, Clone, Copy)]
struct Meta {
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
struct Buffer<T> {
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
struct Cut<T> {
    seq: u64,
    records: Vec<T>,
    meta: Meta,
}

/// How long a store waiting for memory sleeps before it looks at `is_stopped` again.
const ROOM_POLL: Duration = Duration::from_millis(100);

/// Everything one receiver shares with the runtime: its buffer, its cut blocks and its controls.
pub(crate) struct ReceiverState<T> {
    pub(crate) name: String,
    buffer: Mutex<Buffer<T>>,
    /// A cut block the write-ahead log has not taken yet: retried at each cut, never given
    /// to a batch before it is logged. Its lock orders cuts (sequence numbers, log appends).
    pending: Mutex<Option<Cut<T>>>,
    /// Cut blocks not yet allocated to a batch, with their sequence numbers.
    pub(crate) blocks: Mutex<VecDeque<(u64, Vec<T>)>>,
    /// Sizes of the cut blocks not yet allocated (none for blocks replayed from the log).
    block_meta: Mutex<HashMap<u64, Meta>>,
    pub(crate) next_seq: AtomicU64,
    allocated: Mutex<BTreeMap<Time, Vec<Vec<T>>>>,
    /// Sizes of the batches allocated and not yet processed.
    by_batch: Mutex<BTreeMap<Time, Meta>>,
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
    estimator: Option<PidEstimator>,
    /// Bytes held: buffer, pending and cut blocks, allocated batches not yet processed.
    held: AtomicU64,
    /// The bound on `held` (`receiver_max_buffered_bytes`).
    max_held: AtomicU64,
    room: Condvar,
    room_lock: Mutex<()>,
    warned_full: AtomicBool,
    record_bytes: OnceLock<fn(&T) -> usize>,
    pub(crate) counters: Arc<Counters>,
    exec: Arc<OnceLock<Executor>>,
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

    fn bytes_of(&self, item: &T) -> u64 {
        self.record_bytes
            .get()
            .map_or(std::mem::size_of::<T>(), |f| f(item)) as u64
    }

    /// Waits for the rate limit, then for room under the memory bound (or a stop), and
    /// counts `bytes` as held. A receiver holding nothing may store one oversized chunk.
    fn admit(&self, records: u64, bytes: u64, stopped: impl Fn() -> bool) {
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
    fn release(&self, bytes: u64) {
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
    fn held(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }

    fn push(&self, items: impl IntoIterator<Item = T>, n: u64, bytes: u64, non_utf8: u64) {
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

    fn note_stored(&self, n: u64) {
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

    fn cut_locked(&self, pending: &mut Option<Cut<T>>) -> Result<()> {
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
    fn cut_with(&self, items: Vec<T>, bytes: u64) -> Result<()> {
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

    fn log_and_queue(&self, pending: &mut Option<Cut<T>>) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn state(max_held: u64) -> Arc<ReceiverState<String>> {
        let s = Arc::new(ReceiverState::new(
            "test".into(),
            None,
            None,
            Arc::default(),
            Arc::default(),
            None,
        ));
        s.configure(max_held, None, |l: &String| l.len());
        s
    }

    #[test]
    fn stores_wait_at_the_memory_bound_until_a_processed_batch_frees_it() {
        let s = state(10);
        let ctx = ReceiverContext::new(s.clone(), 0);
        ctx.store("12345".into());
        ctx.store("12345".into());
        assert_eq!(s.held(), 10);
        let (tx, rx) = std::sync::mpsc::channel();
        let c2 = ctx.clone();
        std::thread::spawn(move || {
            c2.store("x".into());
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "the store waits: the receiver holds its bound"
        );
        s.cut_block().unwrap();
        s.allocate(Time(100));
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "allocated but unprocessed batches still count"
        );
        assert!(s.compute(Time(100)).is_none(), "no executor in this test");
        s.forget(Time(100));
        rx.recv_timeout(Duration::from_secs(2))
            .expect("a processed batch frees room");
        assert_eq!(s.held(), 1);
        assert_eq!(s.counters.snapshot().receiver_memory_waits, 1);
    }

    #[test]
    fn a_stop_releases_a_waiting_store_and_keeps_its_records() {
        let s = state(4);
        let ctx = ReceiverContext::new(s.clone(), 0);
        ctx.store("1234".into());
        let c2 = ctx.clone();
        let t = std::thread::spawn(move || c2.store("5".into()));
        std::thread::sleep(Duration::from_millis(50));
        s.stop_requested.store(true, Ordering::SeqCst);
        t.join().unwrap();
        assert_eq!(s.unqueued_records(), 2);
    }

    #[test]
    fn an_oversized_chunk_is_admitted_when_nothing_is_held() {
        let s = state(4);
        let ctx = ReceiverContext::new(s.clone(), 0);
        ctx.store_many(vec!["123456".to_owned()]);
        assert_eq!(s.held(), 6);
    }
}
