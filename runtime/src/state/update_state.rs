//! `update_state_by_key`: Spark's running state, every key visited every batch.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::batch::shuffle::shuffle;
use crate::batch::{Batch, Data, Key};
use crate::dstream::DStream;
use crate::state::StateData;
use crate::state::store::{Entry, Store};

impl<K: Key + StateData, V: Data> DStream<(K, V)> {
    /// Keeps a state per key across batches: at each batch `f` gets the batch's values of a key
    /// (empty when it had none) and its previous state (`None` for a new key) and returns the
    /// new state, or `None` to drop the key. Every key is visited every batch, as in Spark; the
    /// stream carries every key's state. Needs a checkpoint directory.
    ///
    /// ```
    /// let out = cargo_stream_runtime::example_with(
    ///     vec![vec![("a", 1), ("b", 1)], vec![("a", 1)]],
    ///     2,
    ///     |ssc, s| {
    ///         ssc.checkpoint(std::env::temp_dir().join("doc-update-state")).unwrap();
    ///         s.map(|(k, v)| (k.to_string(), v))
    ///             .update_state_by_key(|vals: Vec<i32>, total: Option<i32>| Some(vals.iter().sum::<i32>() + total.unwrap_or(0)))
    ///     },
    /// );
    /// let mut last = out[1].1.clone();
    /// last.sort();
    /// assert_eq!(last, vec![("a".to_string(), 2), ("b".to_string(), 1)]);
    /// ```
    #[track_caller]
    pub fn update_state_by_key<S: StateData>(
        &self,
        f: impl Fn(Vec<V>, Option<S>) -> Option<S> + Send + Sync + 'static,
    ) -> DStream<(K, S)> {
        self.update_state_by_key_with(f, None, Vec::new())
    }

    /// As [`update_state_by_key`](Self::update_state_by_key), with the state in `partitions`
    /// partitions and starting from `initial`.
    #[track_caller]
    pub fn update_state_by_key_with<S: StateData>(
        &self,
        f: impl Fn(Vec<V>, Option<S>) -> Option<S> + Send + Sync + 'static,
        partitions: Option<usize>,
        initial: Vec<(K, S)>,
    ) -> DStream<(K, S)> {
        self.require_checkpoint("`update_state_by_key`");
        let n = partitions
            .unwrap_or_else(|| self.shared.conf.master.threads())
            .max(1);
        let store = Arc::new(Store::new("update_state_by_key", n, initial));
        self.shared.register_checkpointed(store.clone());
        self.derive("update_state_by_key", move |batch: Batch<(K, V)>, time| {
            let exec = batch.exec.clone();
            let buckets = shuffle(batch.into_partitions(), n);
            let mut parts = std::mem::take(&mut *store.lock());
            let out: Vec<Vec<(K, S)>> = exec.install(|| {
                use rayon::prelude::*;
                parts
                    .par_iter_mut()
                    .zip(buckets.into_par_iter())
                    .map(|(state, bucket)| {
                        let mut values: FxHashMap<K, Vec<V>> = FxHashMap::default();
                        for (k, v) in bucket {
                            values.entry(k).or_default().push(v);
                        }
                        let keys: Vec<K> = state.keys().cloned().collect();
                        for k in keys {
                            let vals = values.remove(&k).unwrap_or_default();
                            let old = state.remove(&k).map(|e| e.value);
                            if let Some(value) = f(vals, old) {
                                state.insert(
                                    k,
                                    Entry {
                                        value,
                                        touched: time,
                                    },
                                );
                            }
                        }
                        for (k, vals) in values {
                            if let Some(value) = f(vals, None) {
                                state.insert(
                                    k,
                                    Entry {
                                        value,
                                        touched: time,
                                    },
                                );
                            }
                        }
                        state
                            .iter()
                            .map(|(k, e)| (k.clone(), e.value.clone()))
                            .collect()
                    })
                    .collect()
            });
            *store.lock() = parts;
            Batch::new(out, exec)
        })
    }
}
