//! Shuffles: hash-partition records by key, with map-side combining where it applies.

use std::hash::{BuildHasher, Hash};

use rustc_hash::{FxBuildHasher, FxHashMap};
use std::collections::hash_map::Entry;

use super::{Batch, Data, Executor, Key};

/// The partition of `key` among `n`, with a hash that is the same in every run.
pub(crate) fn partition_of<K: Hash>(key: &K, n: usize) -> usize {
    (FxBuildHasher.hash_one(key) % n as u64) as usize
}

/// Splits each partition's records into `n` buckets by key, then gathers bucket i of every
/// partition into output partition i (in partition order, so results are deterministic).
pub(crate) fn shuffle<K: Hash, X: Send>(parts: Vec<Vec<(K, X)>>, n: usize) -> Vec<Vec<(K, X)>> {
    let mut out: Vec<Vec<(K, X)>> = (0..n).map(|_| Vec::new()).collect();
    for part in parts {
        for (k, x) in part {
            let i = partition_of(&k, n);
            out[i].push((k, x));
        }
    }
    out
}

/// Merges the values of equal keys with `f`, moving values (no clone on the hot path).
pub(crate) fn merge_by_key<K: Key, V>(
    p: impl IntoIterator<Item = (K, V)>,
    f: &(impl Fn(V, V) -> V + ?Sized),
) -> Vec<(K, V)> {
    let p = p.into_iter();
    let mut m = combiner(p.size_hint().0);
    for (k, v) in p {
        combine(&mut m, k, v, f);
    }
    combined(m)
}

/// The capacity a piece's combiner starts with when the piece is large.
const COMBINER_MIN: usize = 1 << 11;

/// A combiner map for about `hint` records (at most [`COMBINER_MIN`] slots up front).
pub(crate) fn combiner<K, V>(hint: usize) -> FxHashMap<K, Option<V>> {
    FxHashMap::with_capacity_and_hasher(hint.min(COMBINER_MIN), FxBuildHasher)
}

/// Merges `v` into `k`'s value in `m`: one hash per record; a repeated key is dropped here (a
/// `Word` or a shared `Line` frees nothing).
#[inline]
pub(crate) fn combine<K: Key, V>(
    m: &mut FxHashMap<K, Option<V>>,
    k: K,
    v: V,
    f: &(impl Fn(V, V) -> V + ?Sized),
) {
    match m.entry(k) {
        Entry::Occupied(mut e) => {
            let slot = e.get_mut();
            *slot = slot.take().map(|acc| f(acc, v));
        }
        Entry::Vacant(e) => {
            e.insert(Some(v));
        }
    }
}

/// The merged pairs of a combiner.
pub(crate) fn combined<K, V>(m: FxHashMap<K, Option<V>>) -> Vec<(K, V)> {
    m.into_iter().filter_map(|(k, v)| Some((k, v?))).collect()
}

/// The reduce side of `reduce_by_key`, after map-side combining: shuffle into `n` partitions
/// and merge again.
pub(crate) fn reduce_combined<K: Key, V: Data>(
    combined: Vec<Vec<(K, V)>>,
    exec: Executor,
    n: usize,
    f: &(impl Fn(V, V) -> V + Send + Sync + ?Sized),
) -> Batch<(K, V)> {
    Batch::new(shuffle(combined, n), exec).map_parts(|p| merge_by_key(p, f))
}

impl<T: Data> Batch<T> {
    fn partitions_or_default(&self, n: Option<usize>) -> usize {
        n.unwrap_or(self.exec.parallelism).max(1)
    }

    /// Counts each distinct record, as `(record, count)`.
    pub fn count_by_value(self, partitions: Option<usize>) -> Batch<(T, u64)>
    where
        T: Key,
    {
        self.map(|x| (x, 1u64))
            .reduce_by_key(|a, b| a + b, partitions)
    }
}

impl<K: Key, V: Data> Batch<(K, V)> {
    /// Combines the values of each key with `create`, `merge_value` and `merge_combiners`, as
    /// Spark's `combineByKey`, into `partitions` partitions (default: the parallelism).
    pub fn combine_by_key<C: Data, F1, F2, F3>(
        self,
        create: F1,
        merge_value: F2,
        merge_combiners: F3,
        partitions: Option<usize>,
    ) -> Batch<(K, C)>
    where
        F1: Fn(V) -> C + Send + Sync,
        F2: Fn(C, V) -> C + Send + Sync,
        F3: Fn(C, C) -> C + Send + Sync,
    {
        let n = self.partitions_or_default(partitions);
        let exec = self.exec.clone();
        // Map side: one combiner per key and partition.
        let combined = self.map_parts(|p| {
            let mut m: FxHashMap<K, Option<C>> = FxHashMap::default();
            for (k, v) in p {
                match m.get_mut(&k) {
                    Some(slot) => *slot = slot.take().map(|c| merge_value(c, v)),
                    None => {
                        m.insert(k, Some(create(v)));
                    }
                }
            }
            m.into_iter().filter_map(|(k, c)| Some((k, c?))).collect()
        });
        let buckets = shuffle(combined.parts, n);
        Batch::new(buckets, exec).map_parts(|p| merge_by_key(p, &merge_combiners))
    }

    /// Merges the values of each key with `f` (associative and commutative).
    pub fn reduce_by_key<F>(self, f: F, partitions: Option<usize>) -> Batch<(K, V)>
    where
        F: Fn(V, V) -> V + Send + Sync,
    {
        let n = self.partitions_or_default(partitions);
        let exec = self.exec.clone();
        let combined = self.map_parts(|p| merge_by_key(p, &f));
        reduce_combined(combined.parts, exec, n, &f)
    }

    /// Gathers the values of each key, as Spark's `groupByKey`.
    pub fn group_by_key(self, partitions: Option<usize>) -> Batch<(K, Vec<V>)> {
        let n = self.partitions_or_default(partitions);
        let exec = self.exec.clone();
        Batch::new(shuffle(self.parts, n), exec).map_parts(|p| {
            let mut m: FxHashMap<K, Vec<V>> = FxHashMap::default();
            for (k, v) in p {
                m.entry(k).or_default().push(v);
            }
            m.into_iter().collect()
        })
    }

    /// Applies `f` to each value, keeping keys and partitioning.
    pub fn map_values<U: Data, F>(self, f: F) -> Batch<(K, U)>
    where
        F: Fn(V) -> U + Send + Sync,
    {
        self.map(move |(k, v)| (k, f(v)))
    }

    /// Applies `f` to each value and pairs every result with the key.
    pub fn flat_map_values<U: Data, I, F>(self, f: F) -> Batch<(K, U)>
    where
        I: IntoIterator<Item = U>,
        F: Fn(V) -> I + Send + Sync,
    {
        self.map_parts(|p| {
            let mut out = Vec::with_capacity(p.len());
            for (k, v) in p {
                for u in f(v) {
                    out.push((k.clone(), u));
                }
            }
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::batch::Executor;

    use super::*;

    fn batch<T: Data>(parts: Vec<Vec<T>>) -> Batch<T> {
        Batch::new(parts, Executor::new(2, 2))
    }

    fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
        v.sort();
        v
    }

    #[test]
    fn reduce_by_key_merges_across_partitions() {
        let b = batch(vec![vec![("a", 1), ("b", 1), ("a", 1)], vec![("a", 5)]]);
        let r = b.reduce_by_key(|x, y| x + y, Some(3));
        assert_eq!(r.num_partitions(), 3);
        assert_eq!(sorted(r.collect()), vec![("a", 7), ("b", 1)]);
    }

    #[test]
    fn combine_by_key_averages() {
        let b = batch(vec![vec![("a", 1), ("a", 3)], vec![("a", 5), ("b", 2)]]);
        let r = b.combine_by_key(
            |v| (v, 1),
            |c, v| (c.0 + v, c.1 + 1),
            |x, y| (x.0 + y.0, x.1 + y.1),
            None,
        );
        assert_eq!(sorted(r.collect()), vec![("a", (9, 3)), ("b", (2, 1))]);
    }

    #[test]
    fn group_by_key_keeps_partition_order() {
        let b = batch(vec![vec![("a", 1)], vec![("a", 2), ("b", 3)]]);
        assert_eq!(
            sorted(b.group_by_key(Some(1)).collect()),
            vec![("a", vec![1, 2]), ("b", vec![3])]
        );
    }
}
