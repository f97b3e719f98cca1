//! Pipelining: chains of narrow operations (`map`, `flat_map`, `filter`) run as one pass per
//! partition, record by record, as Spark runs the narrow operations of a stage, instead of
//! building a whole intermediate collection per operation. The chain ends where a batch is
//! needed whole (an output, a shuffle's map side reads it directly).

use crate::batch::{Batch, Data, Executor};

/// One partition's records, produced on demand.
pub(crate) type Records<T> = Box<dyn Iterator<Item = T> + Send>;

/// A batch whose partitions are still iterators.
pub(crate) struct Lazy<T> {
    pub(crate) parts: Vec<Records<T>>,
    pub(crate) exec: Executor,
}

impl<T: Data> Lazy<T> {
    pub(crate) fn from_batch(batch: Batch<T>) -> Self {
        let exec = batch.exec;
        let parts = batch
            .parts
            .into_iter()
            .map(|p| Box::new(p.into_iter()) as Records<T>)
            .collect();
        Lazy { parts, exec }
    }

    /// Applies `f` to each partition's iterator.
    pub(crate) fn then<U: Data>(self, f: impl Fn(Records<T>) -> Records<U>) -> Lazy<U> {
        Lazy {
            parts: self.parts.into_iter().map(f).collect(),
            exec: self.exec,
        }
    }

    /// Runs each partition's chain to its end on the worker threads, with `finish`.
    pub(crate) fn run<U: Send>(
        self,
        finish: impl Fn(Records<T>) -> Vec<U> + Send + Sync,
    ) -> (Vec<Vec<U>>, Executor) {
        use rayon::prelude::*;
        let parts = if self.parts.len() <= 1 {
            self.parts.into_iter().map(finish).collect()
        } else {
            self.exec
                .install(|| self.parts.into_par_iter().map(&finish).collect())
        };
        (parts, self.exec)
    }

    /// The records, collected.
    pub(crate) fn materialize(self) -> Batch<T> {
        let (parts, exec) = self.run(|it| it.collect());
        Batch::new(parts, exec)
    }
}
