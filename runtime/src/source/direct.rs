//! `input_stream`: a custom direct input, as a subclass of Spark's `InputDStream`: asked for
//! its records at each batch time, it may also give no batch at all for that time.

use crate::sync::LockExt;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::sync::{Arc, Mutex, OnceLock};

use crate::batch::{Batch, Data, Executor, split_even};
use crate::context::StreamingContext;
use crate::dstream::DStream;
use crate::dstream::node::Node;
use crate::source::InputSource;
use crate::time::{Time, forget_upto};

type ComputeFn<T> = dyn FnMut(Time) -> Option<Vec<T>> + Send;

/// What the input gave a batch time: records, no batch, or the panic of its function.
type Allocated<T> = Result<Option<Vec<T>>, String>;

pub(crate) struct DirectSource<T> {
    compute: Mutex<Box<ComputeFn<T>>>,
    allocated: Mutex<BTreeMap<Time, Allocated<T>>>,
    exec: Arc<OnceLock<Executor>>,
    at: &'static Location<'static>,
}

impl<T: Data> DirectSource<T> {
    /// The batch at `time`: what the input gave it, `None` when it gave no batch.
    fn batch(&self, time: Time) -> Option<Batch<T>> {
        let exec = self.exec.get()?.clone();
        let given = self.allocated.locked().remove(&time);
        match given {
            Some(Ok(Some(data))) => Some(Batch::new(split_even(data, exec.parallelism), exec)),
            Some(Ok(None)) | None => None,
            // Fails the batch (on the job thread), naming the input.
            Some(Err(message)) => panic!(
                "`input_stream` created at {} panicked at batch {} ms: {message}",
                self.at,
                time.millis()
            ),
        }
    }
}

impl<T: Data> InputSource for DirectSource<T> {
    fn name(&self) -> String {
        format!("input_stream at {}", self.at)
    }

    fn allocate(&self, time: Time) -> u64 {
        let mut f = self.compute.locked();
        let given = catch_unwind(AssertUnwindSafe(|| f(time))).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into())
        });
        let n = match &given {
            Ok(Some(v)) => v.len() as u64,
            _ => 0,
        };
        self.allocated.locked().insert(time, given);
        n
    }

    fn forget(&self, time: Time) {
        forget_upto(&mut self.allocated.locked(), time);
    }
}

impl StreamingContext {
    /// A custom direct input, as a subclass of Spark's `InputDStream`: at each batch time
    /// `compute(time)` gives the batch's records, cut into the default number of partitions,
    /// or `None` for no batch at all at that time. It runs on the batch timer's thread when
    /// the batch is generated, so a slow batch never changes what the input gave.
    ///
    /// With no batch, as in Spark, the operations downstream produce nothing for that time
    /// and outputs do not run (`print` prints nothing, not even its header), while
    /// `update_state_by_key` still visits its keys and `map_with_state` its idle keys;
    /// `ssc.union` and `ssc.transform` fail the job, as Spark's do. A panic in `compute` fails
    /// the batch.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// # use std::sync::{Arc, Mutex};
    /// # let clock = cargo_stream_runtime::ManualClock::new();
    /// let conf = StreamingConf::new("direct").master("local[2]").manual_clock(clock.clone());
    /// let ssc = StreamingContext::new(conf, Seconds(1))?;
    /// // A batch every other second.
    /// let input = ssc.input_stream(|time: Time| (time.millis() % 2000 == 0).then(|| vec![time.millis()]));
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// input.foreach_rdd(move |b, t| sink.lock().unwrap().push((t.millis(), b.collect())))?;
    /// ssc.start()?;
    /// for s in 1..=4 {
    ///     clock.advance(Seconds(1));
    ///     ssc.await_batch(Time::from_millis(s * 1000), std::time::Duration::from_secs(10))?;
    /// }
    /// ssc.stop(false)?;
    /// assert_eq!(*seen.lock().unwrap(), vec![(2000, vec![2000]), (4000, vec![4000])]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn input_stream<T: Data>(
        &self,
        compute: impl FnMut(Time) -> Option<Vec<T>> + Send + 'static,
    ) -> DStream<T> {
        let at = Location::caller();
        self.shared.assert_initialized("an input stream");
        let source = Arc::new(DirectSource {
            compute: Mutex::new(Box::new(compute)),
            allocated: Mutex::default(),
            exec: self.shared.exec.clone(),
            at,
        });
        self.shared.graph_mut().inputs.push(source.clone());
        let compute = Box::new(move |t| source.batch(t));
        DStream::from_node(
            self.shared.clone(),
            Node::new("input_stream", self.batch_interval(), compute),
        )
    }
}
