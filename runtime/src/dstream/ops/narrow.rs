//! Per-record and per-partition operations, and whole-batch aggregates.

use crate::batch::{Batch, Data, Key};
use std::sync::Arc;

use crate::dstream::DStream;
use crate::dstream::pipeline::Stage;

impl<T: Data> DStream<T> {
    /// Applies `f` to every record.
    ///
    /// ```
    /// let out = cargo_stream_runtime::example(vec![vec![1, 2], vec![3]], |s| s.map(|x| x * 10));
    /// assert_eq!(out, vec![vec![10, 20], vec![30]]);
    /// ```
    #[track_caller]
    pub fn map<U: Data>(&self, f: impl Fn(T) -> U + Send + Sync + 'static) -> DStream<U> {
        let f = Arc::new(f);
        self.derive_narrow("map", move |it| {
            let f = f.clone();
            Box::new(Stage::new(it, move |i: &mut Vec<T>, o: &mut Vec<U>| {
                o.extend(i.drain(..).map(|x| f(x)))
            }))
        })
    }

    /// Applies `f` to every record and flattens the results.
    ///
    /// ```
    /// let out = cargo_stream_runtime::example(vec![vec!["a b".to_string(), "c".into()]], |s| {
    ///     s.flat_map(|l: String| l.split(' ').map(str::to_owned).collect::<Vec<_>>())
    /// });
    /// assert_eq!(out, vec![vec!["a", "b", "c"]]);
    /// ```
    #[track_caller]
    pub fn flat_map<U: Data, I>(&self, f: impl Fn(T) -> I + Send + Sync + 'static) -> DStream<U>
    where
        I: IntoIterator<Item = U> + 'static,
    {
        let f = Arc::new(f);
        self.derive_narrow("flat_map", move |it| {
            let f = f.clone();
            Box::new(Stage::new(it, move |i: &mut Vec<T>, o: &mut Vec<U>| {
                for x in i.drain(..) {
                    o.extend(f(x));
                }
            }))
        })
    }

    /// Keeps the records for which `f` is true.
    #[track_caller]
    pub fn filter(&self, f: impl Fn(&T) -> bool + Send + Sync + 'static) -> DStream<T> {
        let f = Arc::new(f);
        self.derive_narrow("filter", move |it| {
            let f = f.clone();
            Box::new(Stage::new(it, move |i: &mut Vec<T>, o: &mut Vec<T>| {
                o.extend(i.drain(..).filter(|x| f(x)))
            }))
        })
    }

    /// Applies `f` to each whole partition of each batch.
    #[track_caller]
    pub fn map_partitions<U: Data, I>(
        &self,
        f: impl Fn(Vec<T>) -> I + Send + Sync + 'static,
    ) -> DStream<U>
    where
        I: IntoIterator<Item = U>,
    {
        self.derive("map_partitions", move |b, _| b.map_partitions(&f))
    }

    /// Turns each partition into one record holding its elements.
    #[track_caller]
    pub fn glom(&self) -> DStream<Vec<T>> {
        self.derive("glom", |b, _| b.glom())
    }

    /// Redistributes each batch into `partitions` partitions.
    #[track_caller]
    pub fn repartition(&self, partitions: usize) -> DStream<T> {
        self.derive("repartition", move |b, _| b.repartition(partitions))
    }

    /// The records of both streams, batch by batch.
    #[track_caller]
    pub fn union(&self, other: &DStream<T>) -> DStream<T> {
        self.derive2(other, "union", |a, b, _| a.union(b))
    }

    /// One record per batch: its record count (0 for an empty batch, as in Spark).
    ///
    /// ```
    /// let out = cargo_stream_runtime::example(vec![vec!['a', 'b'], vec![]], |s| s.count());
    /// assert_eq!(out, vec![vec![2], vec![0]]);
    /// ```
    #[track_caller]
    pub fn count(&self) -> DStream<u64> {
        self.derive("count", |b, _| {
            let n = b.count();
            b.parallelize(vec![n], 1)
        })
    }

    /// Each batch's records reduced with `f`: one record, or none for an empty batch.
    #[track_caller]
    pub fn reduce(&self, f: impl Fn(T, T) -> T + Send + Sync + 'static) -> DStream<T> {
        self.derive("reduce", move |b, _| {
            let empty: Batch<T> = b.empty();
            let r = b.reduce(&f);
            empty.parallelize(r.into_iter().collect(), 1)
        })
    }

    /// Each distinct record of a batch with its count.
    #[track_caller]
    pub fn count_by_value(&self) -> DStream<(T, u64)>
    where
        T: Key,
    {
        self.derive("count_by_value", |b, _| b.count_by_value(None))
    }

    /// As [`count_by_value`](Self::count_by_value), into `partitions` partitions.
    #[track_caller]
    pub fn count_by_value_with_partitions(&self, partitions: usize) -> DStream<(T, u64)>
    where
        T: Key,
    {
        self.derive("count_by_value", move |b, _| {
            b.count_by_value(Some(partitions))
        })
    }
}
