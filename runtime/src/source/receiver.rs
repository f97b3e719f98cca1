//! Custom receivers: the `Receiver` trait and the `ReceiverContext` it stores records through.
//!
//! As in Spark, a receiver's [`on_start`](Receiver::on_start) must not block: it starts its own
//! thread that loops while [`ReceiverContext::is_stopped`] is false and stores what it reads.
//! The runtime cuts stored records into a block every block interval; each block is one
//! partition of the next batch. What a receiver holds (stored, cut, and in batches not yet
//! processed) is bounded by `receiver_max_buffered_bytes`: past it, stores wait.

use crate::sync::LockExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::batch::Data;
use crate::error::{Error, Result};
use crate::source::receiver_state::ReceiverState;

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

    /// Passes an error to the listeners without logging it, for a receiver that logs its own
    /// line (the socket receiver's connection retries, logged once then at intervals).
    pub(crate) fn tell_listeners(&self, message: impl Into<String>) {
        self.state.control.locked().errors.push(message.into());
        self.state.wake.notify_all();
    }

    /// True once the receiver is being stopped or restarted: threads started by
    /// `on_start` must then return.
    pub fn is_stopped(&self) -> bool {
        self.state.stop_requested.load(Ordering::SeqCst)
            || self.state.generation.load(Ordering::SeqCst) != self.generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::InputSource;
    use crate::time::Time;
    use std::time::Duration;

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
