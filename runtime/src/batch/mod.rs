//! `Batch<T>`: one batch of a stream, a partitioned collection like Spark's RDD.
//!
//! Every DStream operation is a batch operation applied at each batch time, as in Spark, so the
//! operations live here: narrow ones in [`narrow`], shuffles in [`shuffle`], joins in [`join`].
//! Work on partitions runs on the context's worker threads.

mod executor;
mod join;
mod narrow;
pub(crate) mod shuffle;
mod sort;
mod static_batch;

pub(crate) use executor::Executor;
pub use static_batch::StaticBatch;

/// What a stream may carry: owned, shareable data (Spark's "serializable").
pub trait Data: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> Data for T {}

/// A key of a pair stream.
pub trait Key: Data + Eq + std::hash::Hash {}
impl<T: Data + Eq + std::hash::Hash> Key for T {}

/// One batch of a stream: partitions of records, processed in parallel on worker threads.
///
/// Inside `transform` and `foreach_rdd` it plays the part of Spark's RDD.
///
/// ```
/// use cargo_stream_runtime::prelude::*;
/// let out = cargo_stream_runtime::example(vec![vec![1, 2, 3, 4]], |s| {
///     s.transform(|batch: Batch<i32>| batch.filter(|x| x % 2 == 0).map(|x| x * 10))
/// });
/// assert_eq!(out, vec![vec![20, 40]]);
/// ```
#[derive(Clone)]
pub struct Batch<T> {
    pub(crate) parts: Vec<Vec<T>>,
    pub(crate) exec: Executor,
    /// The Kafka offset ranges the batch was read from: only on a batch straight from a
    /// direct stream (Spark's `KafkaRDD`), dropped by every transformation.
    #[cfg(feature = "kafka")]
    pub(crate) offset_ranges: Option<std::sync::Arc<[crate::source::kafka::OffsetRange]>>,
}

impl<T: std::fmt::Debug> std::fmt::Debug for Batch<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("partitions", &self.parts)
            .finish()
    }
}

impl<T: Data> Batch<T> {
    pub(crate) fn new(parts: Vec<Vec<T>>, exec: Executor) -> Self {
        Batch {
            parts,
            exec,
            #[cfg(feature = "kafka")]
            offset_ranges: None,
        }
    }

    /// The same batch, read from the Kafka offset `ranges`.
    #[cfg(feature = "kafka")]
    pub(crate) fn with_offset_ranges(
        mut self,
        ranges: std::sync::Arc<[crate::source::kafka::OffsetRange]>,
    ) -> Self {
        self.offset_ranges = Some(ranges);
        self
    }

    /// The Kafka offset ranges this batch holds, one per partition of the batch, in order
    /// (Spark's `HasOffsetRanges`): `Some` on a batch straight from a direct Kafka stream,
    /// as `foreach_rdd` and `transform` on that stream get it; `None` on any other batch,
    /// a transformed one included (use
    /// [`DirectKafkaStream::offset_ranges_at`](crate::kafka::DirectKafkaStream::offset_ranges_at)
    /// there). Feature `kafka`.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let out = cargo_stream_runtime::example(vec![vec![1]], |s| {
    ///     s.transform(|b: Batch<i32>| {
    ///         assert!(b.offset_ranges().is_none(), "not read from Kafka");
    ///         b
    ///     })
    /// });
    /// assert_eq!(out, vec![vec![1]]);
    /// ```
    #[cfg(feature = "kafka")]
    pub fn offset_ranges(&self) -> Option<&[crate::source::kafka::OffsetRange]> {
        self.offset_ranges.as_deref()
    }

    /// A batch of `data` cut into `partitions` contiguous slices on this batch's workers,
    /// as Spark's `parallelize` (for static data joined inside `transform`).
    pub fn parallelize<U: Data>(&self, data: Vec<U>, partitions: usize) -> Batch<U> {
        Batch::new(split_even(data, partitions.max(1)), self.exec.clone())
    }

    /// An empty batch on this batch's workers.
    pub fn empty<U: Data>(&self) -> Batch<U> {
        Batch::new(Vec::new(), self.exec.clone())
    }

    /// The number of partitions.
    pub fn num_partitions(&self) -> usize {
        self.parts.len()
    }

    /// The partitions, in order.
    pub fn partitions(&self) -> &[Vec<T>] {
        &self.parts
    }

    /// Takes the partitions out.
    pub fn into_partitions(self) -> Vec<Vec<T>> {
        self.parts
    }

    /// The number of records.
    pub fn count(&self) -> u64 {
        self.parts.iter().map(|p| p.len() as u64).sum()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(Vec::is_empty)
    }

    /// Every record, partition by partition.
    pub fn collect(&self) -> Vec<T> {
        self.parts.iter().flatten().cloned().collect()
    }

    /// Every record, without copying.
    pub fn into_vec(self) -> Vec<T> {
        if self.parts.len() == 1 {
            return self.parts.into_iter().next().unwrap_or_default();
        }
        self.parts.into_iter().flatten().collect()
    }

    /// The first `n` records.
    pub fn take(&self, n: usize) -> Vec<T> {
        self.parts.iter().flatten().take(n).cloned().collect()
    }

    /// Runs `f` on each partition on the worker threads: open a connection per partition here,
    /// not on the driver. The closure must be `Send + Sync`, so a connection made outside that
    /// cannot be shared between threads does not compile.
    ///
    /// ```compile_fail
    /// use cargo_stream_runtime::prelude::*;
    /// use std::rc::Rc;
    /// let conn = Rc::new(std::cell::RefCell::new(Vec::new())); // not thread-safe
    /// cargo_stream_runtime::example(vec![vec![1]], move |s| {
    ///     let conn = conn.clone();
    ///     s.foreach_rdd(move |b: &Batch<i32>, _| {
    ///         b.foreach_partition(|p| conn.borrow_mut().extend(p))
    ///     }).unwrap();
    ///     s
    /// });
    /// ```
    pub fn foreach_partition<F>(&self, f: F)
    where
        F: Fn(Vec<T>) + Send + Sync,
    {
        use rayon::prelude::*;
        let parts = self.parts.clone();
        self.exec.install(|| parts.into_par_iter().for_each(&f));
    }

    /// Runs `f` on each partition by reference on the worker threads (no copy).
    pub fn foreach_partition_ref<F>(&self, f: F)
    where
        F: Fn(&[T]) + Send + Sync,
    {
        use rayon::prelude::*;
        self.exec
            .install(|| self.parts.par_iter().for_each(|p| f(p)));
    }

    /// Applies `f` to each partition in parallel, keeping partition order.
    pub(crate) fn map_parts<U: Data, F>(self, f: F) -> Batch<U>
    where
        F: Fn(Vec<T>) -> Vec<U> + Send + Sync,
    {
        use rayon::prelude::*;
        let exec = self.exec;
        let parts = if self.parts.len() <= 1 {
            self.parts.into_iter().map(f).collect()
        } else {
            exec.install(|| self.parts.into_par_iter().map(f).collect())
        };
        Batch::new(parts, exec)
    }
}

/// Splits `data` into `n` contiguous, nearly equal slices (Spark's `parallelize`).
pub(crate) fn split_even<T>(data: Vec<T>, n: usize) -> Vec<Vec<T>> {
    let len = data.len();
    let mut out = Vec::with_capacity(n);
    let mut it = data.into_iter();
    for i in 0..n {
        let start = i * len / n;
        let end = (i + 1) * len / n;
        out.push(it.by_ref().take(end - start).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_even_matches_parallelize() {
        assert_eq!(
            split_even((1..=5).collect(), 2),
            vec![vec![1, 2], vec![3, 4, 5]]
        );
        assert_eq!(split_even(Vec::<i32>::new(), 3), vec![Vec::<i32>::new(); 3]);
    }
}
