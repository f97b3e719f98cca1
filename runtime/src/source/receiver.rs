//! Custom receivers: the `Receiver` trait and the `ReceiverContext` it stores records through.
//!
//! As in Spark, a receiver's [`on_start`](Receiver::on_start) must not block: it starts its own
//! thread that loops while [`ReceiverContext::is_stopped`] is false and stores what it reads.
//! The runtime cuts stored records into a block every block interval; each block is one
//! partition of the next batch.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use crate::batch::{Batch, Data, Executor};
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
    fn on_start(&mut self, ctx: ReceiverContext<Self::Item>);

    /// Stops receiving: release what `on_start` opened. Threads it started see
    /// `is_stopped()` turn true.
    fn on_stop(&mut self);

    /// The receiver's name in logs and errors (its kind and address).
    fn name(&self) -> String {
        std::any::type_name::<Self>()
            .rsplit("::")
            .next()
            .unwrap_or("receiver")
            .to_owned()
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

    /// Stores one record (waits when a rate limit is set and reached).
    pub fn store(&self, item: T) {
        if let Some(l) = &self.state.limiter {
            l.acquire(1);
        }
        self.state
            .buffer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(item);
        self.state.note_stored(1);
    }

    /// Stores many records at once (cheaper than one by one).
    pub fn store_many(&self, items: impl IntoIterator<Item = T>) {
        let items: Vec<T> = items.into_iter().collect();
        if items.is_empty() {
            return;
        }
        if let Some(l) = &self.state.limiter {
            l.acquire(items.len() as u64);
        }
        let n = items.len() as u64;
        {
            let mut buf = self.state.buffer.lock().unwrap_or_else(|p| p.into_inner());
            if buf.is_empty() {
                *buf = items;
            } else {
                buf.extend(items);
            }
        }
        self.state.note_stored(n);
    }

    /// Asks the runtime to stop this receiver and start it again after a back-off delay
    /// (for example after a lost connection); `reason` is logged.
    pub fn restart(&self, reason: impl Into<String>) {
        if self.is_stopped() {
            return;
        }
        let mut c = self.state.control.lock().unwrap_or_else(|p| p.into_inner());
        c.restart = Some(reason.into());
        self.state.wake.notify_all();
    }

    /// Reports an error without restarting: logged and passed to listeners.
    pub fn report_error(&self, message: impl Into<String>) {
        let message = message.into();
        tracing::error!(receiver = %self.state.name, "{message}");
        self.state
            .control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .errors
            .push(message);
        self.state.wake.notify_all();
    }

    /// True once the receiver is being stopped or restarted: threads started by
    /// `on_start` must then return.
    pub fn is_stopped(&self) -> bool {
        self.state.stop_requested.load(Ordering::SeqCst)
            || self.state.generation.load(Ordering::SeqCst) != self.generation
    }

    /// Counts a line skipped because it was not UTF-8 (logged once per receiver start).
    pub(crate) fn skipped_non_utf8(&self, n: u64) {
        Counters::add(&self.state.counters.non_utf8_lines, n);
    }
}

#[derive(Default)]
pub(crate) struct Control {
    pub(crate) restart: Option<String>,
    pub(crate) errors: Vec<String>,
}

/// Everything one receiver shares with the runtime: its buffer, its cut blocks and its controls.
pub(crate) struct ReceiverState<T> {
    pub(crate) name: String,
    pub(crate) buffer: Mutex<Vec<T>>,
    /// Cut blocks not yet allocated to a batch, with their sequence numbers.
    pub(crate) blocks: Mutex<VecDeque<(u64, Vec<T>)>>,
    pub(crate) next_seq: AtomicU64,
    allocated: Mutex<BTreeMap<Time, Vec<Vec<T>>>>,
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
            blocks: Mutex::default(),
            next_seq: AtomicU64::new(1),
            allocated: Mutex::default(),
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
            counters,
            exec,
        }
    }

    fn note_stored(&self, n: u64) {
        self.stored_since_start.store(true, Ordering::Relaxed);
        Counters::add(&self.counters.records_received, n);
    }

    /// Moves what was stored since the last cut into a block (one future partition).
    /// With the write-ahead log on, the block is on disk before any batch can take it; when
    /// the log fails, the records go back to the front of the buffer (no batch takes them)
    /// and the error is returned.
    pub(crate) fn cut_block(&self) -> crate::Result<()> {
        let block = std::mem::take(&mut *self.buffer.lock().unwrap_or_else(|p| p.into_inner()));
        if block.is_empty() {
            return Ok(());
        }
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        if let Some(log) = &self.log
            && let Err(e) = log.append(&self.name, seq, &block)
        {
            let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
            let newer = std::mem::replace(&mut *buffer, block);
            buffer.extend(newer);
            return Err(e);
        }
        self.blocks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back((seq, block));
        Ok(())
    }

    /// The batch at `time`: one partition per block allocated to it.
    pub(crate) fn compute(&self, time: Time) -> Option<Batch<T>> {
        let exec = self.exec.get()?.clone();
        let blocks = self
            .allocated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&time)
            .unwrap_or_default();
        Some(Batch::new(blocks, exec))
    }
}

impl<T: Data> InputSource for ReceiverState<T> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn allocate(&self, time: Time) -> u64 {
        let taken: Vec<(u64, Vec<T>)> = self
            .blocks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        if let (Some(log), Some((last, _))) = (&self.log, taken.last()) {
            log.allocated(time, *last);
        }
        let blocks: Vec<Vec<T>> = taken.into_iter().map(|(_, b)| b).collect();
        let n = blocks.iter().map(|b| b.len() as u64).sum();
        self.allocated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(time, blocks);
        n
    }

    fn forget(&self, time: Time) {
        forget_upto(
            &mut self.allocated.lock().unwrap_or_else(|p| p.into_inner()),
            time,
        );
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
