//! `ssc.parallelize`: a batch of reference data made once from the context, to join every
//! batch of a stream against inside `transform` (Spark's `ssc.sparkContext.parallelize`).

use std::sync::{Arc, OnceLock};

use super::{Batch, Data, Executor, split_even};

/// A collection cut into partitions once, usable as a [`Batch`] inside `transform` and
/// `foreach_rdd` at every batch (Spark's RDD made with `ssc.sparkContext.parallelize`).
/// Cheap to clone: clones share the records.
pub struct StaticBatch<T> {
    parts: Arc<Vec<Vec<T>>>,
    exec: Arc<OnceLock<Executor>>,
}

impl<T> Clone for StaticBatch<T> {
    fn clone(&self) -> Self {
        StaticBatch {
            parts: self.parts.clone(),
            exec: self.exec.clone(),
        }
    }
}

impl<T: Data> StaticBatch<T> {
    /// `data` cut into `partitions` (at least one) contiguous slices, run on `exec`.
    pub(crate) fn new(data: Vec<T>, partitions: usize, exec: Arc<OnceLock<Executor>>) -> Self {
        StaticBatch {
            parts: Arc::new(split_even(data, partitions.max(1))),
            exec,
        }
    }

    /// The records as a [`Batch`] on the context's workers, to combine with a stream's batch
    /// (`join`, `union`, `cogroup`, ...). Each call copies the records, as each Spark job
    /// reads a cached RDD again; for large reference data looked up by key, a `HashMap`
    /// captured by the closure avoids the copy.
    ///
    /// # Panics
    /// Before the context has started (there are no workers yet): use it inside `transform`
    /// or `foreach_rdd`.
    #[track_caller]
    pub fn batch(&self) -> Batch<T> {
        let exec = self.exec.get().unwrap_or_else(|| {
            panic!(
                "`StaticBatch::batch` called before the streaming context started: call it inside `transform` or `foreach_rdd`, which run after `start()`"
            )
        });
        Batch::new(self.parts.as_ref().clone(), exec.clone())
    }

    /// The number of records.
    pub fn count(&self) -> u64 {
        self.parts.iter().map(|p| p.len() as u64).sum()
    }

    /// The number of partitions.
    pub fn num_partitions(&self) -> usize {
        self.parts.len()
    }
}
