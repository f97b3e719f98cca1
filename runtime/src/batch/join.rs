//! Joins and cogroup of two pair batches, by hash-partitioning both sides alike.

use rustc_hash::FxHashMap;

use super::shuffle::shuffle;
use super::{Batch, Data, Key};

type Grouped<K, V, W> = Batch<(K, (Vec<V>, Vec<W>))>;

impl<K: Key, V: Data> Batch<(K, V)> {
    /// For each key in either batch, its values in this batch and in `other`.
    pub fn cogroup<W: Data>(
        self,
        other: Batch<(K, W)>,
        partitions: Option<usize>,
    ) -> Grouped<K, V, W> {
        let n = partitions.unwrap_or(self.exec.parallelism).max(1);
        let exec = self.exec.clone();
        let buckets: Vec<Vec<(Vec<(K, V)>, Vec<(K, W)>)>> = shuffle(self.parts, n)
            .into_iter()
            .zip(shuffle(other.parts, n))
            .map(|pair| vec![pair])
            .collect();
        Batch::new(buckets, exec).map_parts(|p| {
            let mut groups: FxHashMap<K, (Vec<V>, Vec<W>)> = FxHashMap::default();
            for (left, right) in p {
                for (k, v) in left {
                    groups.entry(k).or_default().0.push(v);
                }
                for (k, w) in right {
                    groups.entry(k).or_default().1.push(w);
                }
            }
            groups.into_iter().collect()
        })
    }

    /// Pairs every value of a key in this batch with every value of it in `other`.
    pub fn join<W: Data>(
        self,
        other: Batch<(K, W)>,
        partitions: Option<usize>,
    ) -> Batch<(K, (V, W))> {
        self.cogroup(other, partitions)
            .flat_map(|(k, (vs, ws))| cross(&k, &vs, &ws))
    }

    /// As [`join`](Self::join), keeping keys of this batch that `other` lacks, with `None`.
    pub fn left_outer_join<W: Data>(
        self,
        other: Batch<(K, W)>,
        partitions: Option<usize>,
    ) -> Batch<(K, (V, Option<W>))> {
        self.cogroup(other, partitions).flat_map(|(k, (vs, ws))| {
            let ws: Vec<Option<W>> = if ws.is_empty() {
                vec![None]
            } else {
                ws.into_iter().map(Some).collect()
            };
            cross(&k, &vs, &ws)
        })
    }

    /// As [`join`](Self::join), keeping keys of `other` that this batch lacks, with `None`.
    pub fn right_outer_join<W: Data>(
        self,
        other: Batch<(K, W)>,
        partitions: Option<usize>,
    ) -> Batch<(K, (Option<V>, W))> {
        self.cogroup(other, partitions).flat_map(|(k, (vs, ws))| {
            let vs: Vec<Option<V>> = if vs.is_empty() {
                vec![None]
            } else {
                vs.into_iter().map(Some).collect()
            };
            cross(&k, &vs, &ws)
        })
    }

    /// As [`join`](Self::join), keeping keys of either side, with `None` for the missing one.
    pub fn full_outer_join<W: Data>(
        self,
        other: Batch<(K, W)>,
        partitions: Option<usize>,
    ) -> Batch<(K, (Option<V>, Option<W>))> {
        self.cogroup(other, partitions).flat_map(|(k, (vs, ws))| {
            let vs: Vec<Option<V>> = if vs.is_empty() {
                vec![None]
            } else {
                vs.into_iter().map(Some).collect()
            };
            let ws: Vec<Option<W>> = if ws.is_empty() {
                vec![None]
            } else {
                ws.into_iter().map(Some).collect()
            };
            cross(&k, &vs, &ws)
        })
    }
}

fn cross<K: Clone, A: Clone, B: Clone>(k: &K, a: &[A], b: &[B]) -> Vec<(K, (A, B))> {
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            out.push((k.clone(), (x.clone(), y.clone())));
        }
    }
    out
}
