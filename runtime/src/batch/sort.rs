//! Sorting a batch, as Spark's `sortByKey` and `sortBy`: the result's partitions hold
//! consecutive ranges of the order (as a range partitioner makes them), so the records read
//! partition by partition are sorted, and equal keys are never split across partitions.

use super::{Batch, Data};

impl<T: Data> Batch<T> {
    /// The records ordered by `key(record)`, ascending or not, in as many partitions as this
    /// batch has (Spark's `sortBy(f, ascending)`); records with equal keys keep their order.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let out = cargo_stream_runtime::example(vec![vec!["ccc", "a", "bb"]], |s| {
    ///     s.transform(|b: Batch<&str>| b.sort_by(|w| w.len(), false))
    /// });
    /// assert_eq!(out, vec![vec!["ccc", "bb", "a"]]);
    /// ```
    pub fn sort_by<K: Ord + Send, F>(self, key: F, ascending: bool) -> Batch<T>
    where
        F: Fn(&T) -> K + Send + Sync,
    {
        let n = self.num_partitions();
        self.sort_by_with_partitions(key, ascending, n)
    }

    /// As [`sort_by`](Self::sort_by), into `partitions` partitions (Spark's
    /// `sortBy(f, ascending, numPartitions)`).
    pub fn sort_by_with_partitions<K: Ord + Send, F>(
        self,
        key: F,
        ascending: bool,
        partitions: usize,
    ) -> Batch<T>
    where
        F: Fn(&T) -> K + Send + Sync,
    {
        use rayon::prelude::*;
        let exec = self.exec.clone();
        let records: Vec<T> = self.into_vec();
        let sorted = exec.install(|| {
            let mut keyed: Vec<(K, T)> = records.into_par_iter().map(|r| (key(&r), r)).collect();
            if ascending {
                keyed.par_sort_by(|a, b| a.0.cmp(&b.0));
            } else {
                keyed.par_sort_by(|a, b| b.0.cmp(&a.0));
            }
            keyed
        });
        let parts = split_ranges(sorted, partitions.max(1));
        Batch::new(parts, exec)
    }
}

impl<K: Ord + Data, V: Data> Batch<(K, V)> {
    /// The records ordered by key, ascending or not, in as many partitions as this batch has
    /// (Spark's `sortByKey(ascending)`); records with equal keys keep their order.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let out = cargo_stream_runtime::example(vec![vec![("b", 1), ("a", 2), ("c", 3)]], |s| {
    ///     s.transform(|b: Batch<(&str, i32)>| b.sort_by_key(true))
    /// });
    /// assert_eq!(out, vec![vec![("a", 2), ("b", 1), ("c", 3)]]);
    /// ```
    pub fn sort_by_key(self, ascending: bool) -> Batch<(K, V)> {
        let n = self.num_partitions();
        self.sort_by_key_with_partitions(ascending, n)
    }

    /// As [`sort_by_key`](Self::sort_by_key), into `partitions` partitions (Spark's
    /// `sortByKey(ascending, numPartitions)`).
    pub fn sort_by_key_with_partitions(self, ascending: bool, partitions: usize) -> Batch<(K, V)> {
        use rayon::prelude::*;
        let exec = self.exec.clone();
        let mut records = self.into_vec();
        exec.install(|| {
            if ascending {
                records.par_sort_by(|a, b| a.0.cmp(&b.0));
            } else {
                records.par_sort_by(|a, b| b.0.cmp(&a.0));
            }
        });
        let keyed = records.into_iter().map(|r| (r.0.clone(), r)).collect();
        Batch::new(split_ranges(keyed, partitions.max(1)), exec)
    }
}

/// Cuts sorted `(key, record)` pairs into `n` consecutive ranges of nearly equal size, moving
/// each cut past records equal to the one before it, so a key lies in one partition.
fn split_ranges<K: Ord, T>(sorted: Vec<(K, T)>, n: usize) -> Vec<Vec<T>> {
    let len = sorted.len();
    let mut cuts = Vec::with_capacity(n + 1);
    cuts.push(0);
    for i in 1..n {
        let mut cut = (i * len / n).max(*cuts.last().unwrap_or(&0));
        while cut > 0 && cut < len && sorted[cut].0 == sorted[cut - 1].0 {
            cut += 1;
        }
        cuts.push(cut);
    }
    cuts.push(len);
    let mut out: Vec<Vec<T>> = Vec::with_capacity(n);
    let mut it = sorted.into_iter().map(|(_, r)| r);
    for w in cuts.windows(2) {
        out.push(it.by_ref().take(w[1] - w[0]).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_stay_in_one_partition_and_ranges_are_consecutive() {
        let sorted: Vec<(i32, i32)> = [1, 1, 1, 1, 2, 3, 3, 4].iter().map(|&k| (k, k)).collect();
        let parts = split_ranges(sorted, 3);
        assert_eq!(parts, vec![vec![1, 1, 1, 1], vec![2], vec![3, 3, 4]]);
        let parts = split_ranges(vec![(7, 'a'), (7, 'b'), (7, 'c')], 2);
        assert_eq!(parts, vec![vec!['a', 'b', 'c'], vec![]]);
        assert_eq!(
            split_ranges(Vec::<(i32, i32)>::new(), 2),
            vec![Vec::<i32>::new(), Vec::new()]
        );
    }

    #[test]
    fn sort_by_key_orders_across_partitions_stably() {
        let out = crate::example(
            vec![vec![(3, 'a'), (1, 'b'), (2, 'c'), (1, 'd'), (3, 'e')]],
            |s| s.transform(|b| b.repartition(3).sort_by_key(false).glom()),
        );
        let parts = &out[0];
        assert_eq!(parts.len(), 3);
        let flat: Vec<(i32, char)> = parts.iter().flatten().copied().collect();
        let keys: Vec<i32> = flat.iter().map(|r| r.0).collect();
        assert_eq!(keys, vec![3, 3, 2, 1, 1]);
        // Each partition's keys come before every key of the next (descending ranges).
        for (i, p) in parts.iter().enumerate() {
            for q in &parts[i + 1..] {
                assert!(p.iter().all(|a| q.iter().all(|b| a.0 > b.0)), "{parts:?}");
            }
        }
    }
}
