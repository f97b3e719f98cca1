//! `queue_stream`: one queued collection per batch, for tests and exercises; and
//! `queue_stream_with_partitions`, each batch cut into a given number of partitions.

use crate::sync::LockExt;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use crate::batch::{Batch, Data, Executor, split_even};
use crate::source::InputSource;
use crate::time::{Time, forget_upto};

pub(crate) struct QueueSource<T> {
    queue: Mutex<VecDeque<Vec<T>>>,
    allocated: Mutex<BTreeMap<Time, Vec<T>>>,
    exec: Arc<OnceLock<Executor>>,
    /// Partitions per batch; the default parallelism when unset.
    partitions: Option<usize>,
}

impl<T: Data> QueueSource<T> {
    pub(crate) fn new(queue: VecDeque<Vec<T>>, exec: Arc<OnceLock<Executor>>) -> Self {
        QueueSource {
            queue: Mutex::new(queue),
            allocated: Mutex::default(),
            exec,
            partitions: None,
        }
    }

    /// Cuts every batch into `n` partitions (at least one).
    pub(crate) fn with_partitions(mut self, n: usize) -> Self {
        self.partitions = Some(n.max(1));
        self
    }

    /// The batch at `time`: the collection allocated to it, sliced like `parallelize`.
    pub(crate) fn compute(&self, time: Time) -> Option<Batch<T>> {
        let exec = self.exec.get()?.clone();
        let data = self.allocated.locked().remove(&time).unwrap_or_default();
        let n = self.partitions.unwrap_or(exec.parallelism);
        Some(Batch::new(split_even(data, n), exec))
    }
}

impl<T: Data> InputSource for QueueSource<T> {
    fn name(&self) -> String {
        "queue_stream".into()
    }

    fn allocate(&self, time: Time) -> u64 {
        let next = self.queue.locked().pop_front();
        let n = next.as_ref().map_or(0, |v| v.len() as u64);
        if let Some(v) = next {
            self.allocated.locked().insert(time, v);
        }
        n
    }

    fn forget(&self, time: Time) {
        forget_upto(&mut self.allocated.locked(), time);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_batch_has_the_partitions_asked_for() {
        let out = crate::example_with(Vec::<Vec<i32>>::new(), 3, |ssc, _| {
            ssc.queue_stream_with_partitions(vec![vec![1, 2, 3, 4], vec![]], 4)
                .glom()
        });
        assert_eq!(out[0].1, vec![vec![1], vec![2], vec![3], vec![4]]);
        // An empty collection, and the empty batches after the queue, have the same count.
        assert_eq!(out[1].1, vec![Vec::<i32>::new(); 4]);
        assert_eq!(out[2].1, vec![Vec::<i32>::new(); 4]);
    }
}
