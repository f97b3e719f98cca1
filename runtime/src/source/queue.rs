//! `queue_stream`: one queued collection per batch, for tests and exercises.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use crate::batch::{Batch, Data, Executor, split_even};
use crate::source::InputSource;
use crate::time::{Time, forget_upto};

pub(crate) struct QueueSource<T> {
    queue: Mutex<VecDeque<Vec<T>>>,
    allocated: Mutex<BTreeMap<Time, Vec<T>>>,
    exec: Arc<OnceLock<Executor>>,
}

impl<T: Data> QueueSource<T> {
    pub(crate) fn new(queue: VecDeque<Vec<T>>, exec: Arc<OnceLock<Executor>>) -> Self {
        QueueSource {
            queue: Mutex::new(queue),
            allocated: Mutex::default(),
            exec,
        }
    }

    /// The batch at `time`: the collection allocated to it, sliced like `parallelize`.
    pub(crate) fn compute(&self, time: Time) -> Option<Batch<T>> {
        let exec = self.exec.get()?.clone();
        let data = self
            .allocated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&time)
            .unwrap_or_default();
        let n = exec.parallelism;
        Some(Batch::new(split_even(data, n), exec))
    }
}

impl<T: Data> InputSource for QueueSource<T> {
    fn name(&self) -> String {
        "queue_stream".into()
    }

    fn allocate(&self, time: Time) -> u64 {
        let next = self
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        let n = next.as_ref().map_or(0, |v| v.len() as u64);
        if let Some(v) = next {
            self.allocated
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(time, v);
        }
        n
    }

    fn forget(&self, time: Time) {
        forget_upto(
            &mut self.allocated.lock().unwrap_or_else(|p| p.into_inner()),
            time,
        );
    }
}
