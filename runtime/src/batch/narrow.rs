//! Narrow operations: each output partition comes from one input partition, no shuffle.

use super::{Batch, Data};

impl<T: Data> Batch<T> {
    /// Applies `f` to every record.
    pub fn map<U: Data, F>(self, f: F) -> Batch<U>
    where
        F: Fn(T) -> U + Send + Sync,
    {
        self.map_parts(|p| p.into_iter().map(&f).collect())
    }

    /// Applies `f` to every record and flattens the results.
    pub fn flat_map<U: Data, I, F>(self, f: F) -> Batch<U>
    where
        I: IntoIterator<Item = U>,
        F: Fn(T) -> I + Send + Sync,
    {
        self.map_parts(|p| p.into_iter().flat_map(&f).collect())
    }

    /// Keeps the records for which `f` is true.
    pub fn filter<F>(self, f: F) -> Batch<T>
    where
        F: Fn(&T) -> bool + Send + Sync,
    {
        self.map_parts(|mut p| {
            p.retain(&f);
            p
        })
    }

    /// Applies `f` to each whole partition.
    pub fn map_partitions<U: Data, I, F>(self, f: F) -> Batch<U>
    where
        I: IntoIterator<Item = U>,
        F: Fn(Vec<T>) -> I + Send + Sync,
    {
        self.map_parts(|p| f(p).into_iter().collect())
    }

    /// Turns each partition into one record holding its elements.
    pub fn glom(self) -> Batch<Vec<T>> {
        self.map_parts(|p| vec![p])
    }

    /// This batch's partitions followed by `other`'s.
    pub fn union(mut self, other: Batch<T>) -> Batch<T> {
        self.parts.extend(other.parts);
        self
    }

    /// Redistributes the records round-robin into `n` partitions.
    pub fn repartition(self, n: usize) -> Batch<T> {
        let n = n.max(1);
        let total = self.count() as usize;
        let mut out: Vec<Vec<T>> = (0..n).map(|_| Vec::with_capacity(total / n + 1)).collect();
        for (i, x) in self.parts.into_iter().flatten().enumerate() {
            out[i % n].push(x);
        }
        Batch::new(out, self.exec)
    }

    /// Reduces all records with `f` (associative and commutative); `None` for an empty batch.
    pub fn reduce<F>(self, f: F) -> Option<T>
    where
        F: Fn(T, T) -> T + Send + Sync,
    {
        let partials = self.map_parts(|p| p.into_iter().reduce(&f).into_iter().collect());
        partials.parts.into_iter().flatten().reduce(&f)
    }
}
