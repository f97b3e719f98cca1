//! `input_stream`: a custom direct input, as a subclass of Spark's `InputDStream`: asked for
//! its records at each batch time, it may also give no batch at all for that time.

use crate::sync::LockExt;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::sync::{Arc, Mutex, OnceLock};

use crate::batch::{Batch, Data, Executor, split_even};
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
    /// An input asking `compute` for each batch time's records, created at `at`.
    pub(crate) fn new(
        compute: Box<ComputeFn<T>>,
        exec: Arc<OnceLock<Executor>>,
        at: &'static Location<'static>,
    ) -> Self {
        DirectSource {
            compute: Mutex::new(compute),
            allocated: Mutex::default(),
            exec,
            at,
        }
    }

    /// The batch at `time`: what the input gave it, `None` when it gave no batch.
    pub(crate) fn batch(&self, time: Time) -> Option<Batch<T>> {
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
