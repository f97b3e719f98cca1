//! `transform`: any batch-to-batch function, Spark's escape hatch to the RDD API.

use crate::batch::{Batch, Data};
use crate::dstream::DStream;
use crate::time::Time;

impl<T: Data> DStream<T> {
    /// Applies `f` to each batch.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let out = cargo_stream_runtime::example(vec![vec![3, 1, 2]], |s| {
    ///     s.transform(|b: Batch<i32>| {
    ///         let mut v = b.collect();
    ///         v.sort();
    ///         b.parallelize(v, 1)
    ///     })
    /// });
    /// assert_eq!(out, vec![vec![1, 2, 3]]);
    /// ```
    #[track_caller]
    pub fn transform<U: Data>(
        &self,
        f: impl Fn(Batch<T>) -> Batch<U> + Send + Sync + 'static,
    ) -> DStream<U> {
        self.derive("transform", move |b, _| f(b))
    }

    /// Applies `f` to each batch and its time.
    #[track_caller]
    pub fn transform_with_time<U: Data>(
        &self,
        f: impl Fn(Batch<T>, Time) -> Batch<U> + Send + Sync + 'static,
    ) -> DStream<U> {
        self.derive("transform", f)
    }

    /// Applies `f` to this stream's and `other`'s batches of the same time (Spark's
    /// `transformWith`).
    #[track_caller]
    pub fn transform_with<U: Data, V: Data>(
        &self,
        other: &DStream<U>,
        f: impl Fn(Batch<T>, Batch<U>, Time) -> Batch<V> + Send + Sync + 'static,
    ) -> DStream<V> {
        self.derive2(other, "transform_with", f)
    }
}
