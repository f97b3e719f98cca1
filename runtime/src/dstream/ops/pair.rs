//! Operations on pair streams `DStream<(K, V)>`, as Spark's `PairDStreamFunctions`. Each
//! shuffle has a `_with_partitions` form; the default is the master's thread count.

use crate::batch::shuffle::{combine, combined, combiner, reduce_combined};
use crate::batch::{Data, Key};
use crate::dstream::DStream;
use crate::dstream::pipeline::{self, Records, Stage};

use std::sync::Arc;
impl<K: Key, V: Data> DStream<(K, V)> {
    /// Merges the values of each key in each batch with `f`.
    ///
    /// ```
    /// let out = cargo_stream_runtime::example(vec![vec![("a", 1), ("b", 1), ("a", 1)]], |s| {
    ///     s.reduce_by_key(|x, y| x + y)
    /// });
    /// let mut batch = out[0].clone();
    /// batch.sort();
    /// assert_eq!(batch, vec![("a", 2), ("b", 1)]);
    /// ```
    #[track_caller]
    pub fn reduce_by_key(&self, f: impl Fn(V, V) -> V + Send + Sync + 'static) -> DStream<(K, V)> {
        self.reduce_by_key_in(f, None)
    }

    /// As [`reduce_by_key`](Self::reduce_by_key), into `partitions` partitions.
    #[track_caller]
    pub fn reduce_by_key_with_partitions(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        partitions: usize,
    ) -> DStream<(K, V)> {
        self.reduce_by_key_in(f, Some(partitions))
    }

    #[track_caller]
    fn reduce_by_key_in(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        n: Option<usize>,
    ) -> DStream<(K, V)> {
        // The map side combines straight from the pipeline of narrow operations before it.
        self.derive_from_lazy("reduce_by_key", move |records, _| {
            let parts = n.unwrap_or(records.exec.parallelism).max(1);
            let (combined, exec) = records.run(|it| combine_records(it, &f));
            reduce_combined(combined, exec, parts, &f)
        })
    }

    /// Gathers the values of each key in each batch.
    #[track_caller]
    pub fn group_by_key(&self) -> DStream<(K, Vec<V>)> {
        self.derive("group_by_key", |b, _| b.group_by_key(None))
    }

    /// As [`group_by_key`](Self::group_by_key), into `partitions` partitions.
    #[track_caller]
    pub fn group_by_key_with_partitions(&self, partitions: usize) -> DStream<(K, Vec<V>)> {
        self.derive("group_by_key", move |b, _| b.group_by_key(Some(partitions)))
    }

    /// Combines the values of each key, as Spark's `combineByKey`.
    #[track_caller]
    pub fn combine_by_key<C: Data>(
        &self,
        create: impl Fn(V) -> C + Send + Sync + 'static,
        merge_value: impl Fn(C, V) -> C + Send + Sync + 'static,
        merge_combiners: impl Fn(C, C) -> C + Send + Sync + 'static,
    ) -> DStream<(K, C)> {
        self.derive("combine_by_key", move |b, _| {
            b.combine_by_key(&create, &merge_value, &merge_combiners, None)
        })
    }

    /// As [`combine_by_key`](Self::combine_by_key), into `partitions` partitions.
    #[track_caller]
    pub fn combine_by_key_with_partitions<C: Data>(
        &self,
        create: impl Fn(V) -> C + Send + Sync + 'static,
        merge_value: impl Fn(C, V) -> C + Send + Sync + 'static,
        merge_combiners: impl Fn(C, C) -> C + Send + Sync + 'static,
        partitions: usize,
    ) -> DStream<(K, C)> {
        self.derive("combine_by_key", move |b, _| {
            b.combine_by_key(&create, &merge_value, &merge_combiners, Some(partitions))
        })
    }

    /// Applies `f` to each value.
    #[track_caller]
    pub fn map_values<U: Data>(
        &self,
        f: impl Fn(V) -> U + Send + Sync + 'static,
    ) -> DStream<(K, U)> {
        let f = Arc::new(f);
        self.derive_narrow("map_values", move |it| {
            let f = f.clone();
            Box::new(Stage::new(
                it,
                move |i: &mut Vec<(K, V)>, o: &mut Vec<(K, U)>| {
                    o.extend(i.drain(..).map(|(k, v)| (k, f(v))))
                },
            ))
        })
    }

    /// Applies `f` to each value and pairs each result with the key.
    #[track_caller]
    pub fn flat_map_values<U: Data, I>(
        &self,
        f: impl Fn(V) -> I + Send + Sync + 'static,
    ) -> DStream<(K, U)>
    where
        I: IntoIterator<Item = U>,
    {
        self.derive("flat_map_values", move |b, _| b.flat_map_values(&f))
    }
}

/// The map side of `reduce_by_key` on a piece of the pipeline: each record goes straight from
/// the narrow operations before it into the piece's map (no collected pairs).
fn combine_records<K: Key, V: Data>(
    records: Records<(K, V)>,
    f: &(impl Fn(V, V) -> V + ?Sized),
) -> Vec<(K, V)> {
    // Sized up front for a few thousand distinct keys (fewer for a small piece), so it
    // rarely grows while the piece runs.
    let mut m = combiner(records.remaining().saturating_mul(8));
    pipeline::for_each(records, |(k, v)| combine(&mut m, k, v, f));
    combined(m)
}
