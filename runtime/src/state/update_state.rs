//! `update_state_by_key`: Spark's running state, every key visited every batch, in its three
//! forms: per key (`update_state_by_key`), per key with the batch time
//! (`update_state_by_key_with_time`), and per partition over an iterator
//! (`update_state_by_key_iter`).

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use rustc_hash::FxHashMap;

use crate::batch::shuffle::{partition_of, shuffle};
use crate::batch::{Batch, Data, Executor, Key};
use crate::dstream::DStream;
use crate::dstream::node::Node;
use crate::state::StateData;
use crate::state::store::{Entry, Partition, Store};
use crate::state::task_store::TaskStore;
use crate::tasks::lineage::{Upstream, node_id};
use crate::tasks::store::KeyTasks;
use crate::time::Time;

/// What one partition's update does: the partition's state, the batch's values of its keys,
/// the batch time.
type Step<K, V, S> = dyn Fn(&mut Partition<K, S>, FxHashMap<K, Vec<V>>, Time) + Send + Sync;

/// The records the iterator form of `update_state_by_key` gets: each key with its values in
/// the batch (empty when it had none) and its previous state (`None` for a new key).
pub type UpdateInput<K, V, S> = std::vec::IntoIter<(K, Vec<V>, Option<S>)>;

impl<K: Key + StateData, V: Data> DStream<(K, V)> {
    /// Keeps a state per key across batches: at each batch `f` gets the batch's values of a key
    /// (empty when it had none) and its previous state (`None` for a new key) and returns the
    /// new state, or `None` to drop the key. Every key is visited every batch, as in Spark; the
    /// stream carries every key's state. Needs a checkpoint directory.
    ///
    /// As in Spark, a batch time at which the input produced no batch at all (a custom
    /// [`input_stream`](crate::StreamingContext::input_stream) returning `None`) still visits
    /// every key, with no values, once the state exists.
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
        self.update_state_by_key_with_time(move |_, _, v, s| f(v, s), partitions, initial)
    }

    /// As [`update_state_by_key_with`](Self::update_state_by_key_with), with a function that
    /// also gets the batch time and the key: Spark's
    /// `updateStateByKey((Time, K, Seq[V], Option[S]) => Option[S], partitioner, rememberPartitioner, initialRDD)`.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// // The sum of the batch times (ms) at which a key was seen.
    /// let out = cargo_stream_runtime::example_with(vec![vec!["a"], vec!["a", "b"]], 2, |ssc, s| {
    ///     ssc.checkpoint(std::env::temp_dir().join("doc-update-state-time")).unwrap();
    ///     s.map(|w| (w.to_string(), 1)).update_state_by_key_with_time(
    ///         |time: Time, _key: &String, values: Vec<i32>, state: Option<u64>| {
    ///             let seen = if values.is_empty() { 0 } else { time.millis() };
    ///             Some(state.unwrap_or(0) + seen)
    ///         },
    ///         None,
    ///         Vec::new(),
    ///     )
    /// });
    /// let mut last = out[1].1.clone();
    /// last.sort();
    /// assert_eq!(last, vec![("a".to_string(), 3000), ("b".to_string(), 2000)]);
    /// ```
    #[track_caller]
    pub fn update_state_by_key_with_time<S: StateData>(
        &self,
        f: impl Fn(Time, &K, Vec<V>, Option<S>) -> Option<S> + Send + Sync + 'static,
        partitions: Option<usize>,
        initial: Vec<(K, S)>,
    ) -> DStream<(K, S)> {
        let step =
            move |state: &mut Partition<K, S>, mut values: FxHashMap<K, Vec<V>>, time: Time| {
                // Every key is visited: take the entries out and put back those `f` keeps.
                // A `remove` + `insert` per key would leave tombstones that force a rehash of
                // the whole partition every few batches (the run-to-run spread this form
                // showed), and cloning every key would allocate per key.
                let previous: Vec<(K, Entry<S>)> = state.drain().collect();
                for (k, e) in previous {
                    let vals = values.remove(&k).unwrap_or_default();
                    if let Some(value) = f(time, &k, vals, Some(e.value)) {
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
                    if let Some(value) = f(time, &k, vals, None) {
                        state.insert(
                            k,
                            Entry {
                                value,
                                touched: time,
                            },
                        );
                    }
                }
            };
        self.update_state(partitions, initial, Arc::new(step), false)
    }

    /// The iterator form of `update_state_by_key`, Spark's
    /// `updateStateByKey(Iterator[(K, Seq[V], Option[S])] => Iterator[(K, S)], partitioner, rememberPartitioner, initialRDD)`:
    /// `f` is called once per state partition with every key of that partition (its values in
    /// the batch and its previous state) and returns the partition's new state; a key it does
    /// not return is dropped. Useful to set up something once per partition.
    ///
    /// ```
    /// let out = cargo_stream_runtime::example_with(vec![vec![("a", 1), ("b", 2)], vec![("a", 3)]], 2, |ssc, s| {
    ///     ssc.checkpoint(std::env::temp_dir().join("doc-update-state-iter")).unwrap();
    ///     s.map(|(k, v)| (k.to_string(), v)).update_state_by_key_iter(
    ///         |keys: cargo_stream_runtime::UpdateInput<String, i32, i32>| {
    ///             keys.map(|(k, values, state)| (k, values.iter().sum::<i32>() + state.unwrap_or(0)))
    ///         },
    ///         None,
    ///         Vec::new(),
    ///     )
    /// });
    /// let mut last = out[1].1.clone();
    /// last.sort();
    /// assert_eq!(last, vec![("a".to_string(), 4), ("b".to_string(), 2)]);
    /// ```
    #[track_caller]
    pub fn update_state_by_key_iter<S: StateData, I>(
        &self,
        f: impl Fn(UpdateInput<K, V, S>) -> I + Send + Sync + 'static,
        partitions: Option<usize>,
        initial: Vec<(K, S)>,
    ) -> DStream<(K, S)>
    where
        I: IntoIterator<Item = (K, S)>,
    {
        let step =
            move |state: &mut Partition<K, S>, mut values: FxHashMap<K, Vec<V>>, time: Time| {
                let mut input: Vec<(K, Vec<V>, Option<S>)> =
                    Vec::with_capacity(state.len() + values.len());
                for (k, e) in state.drain() {
                    let vals = values.remove(&k).unwrap_or_default();
                    input.push((k, vals, Some(e.value)));
                }
                input.extend(values.into_iter().map(|(k, vals)| (k, vals, None)));
                for (k, value) in f(input.into_iter()) {
                    state.insert(
                        k,
                        Entry {
                            value,
                            touched: time,
                        },
                    );
                }
            };
        // `f` may return keys of other partitions: move them home.
        self.update_state(partitions, initial, Arc::new(step), true)
    }

    /// The node of every form: shuffles the batch like the state, runs `step` on each
    /// partition in parallel (then moves keys to their partitions when `rehome_keys`), and
    /// carries every key's state.
    #[track_caller]
    fn update_state<S: StateData>(
        &self,
        partitions: Option<usize>,
        initial: Vec<(K, S)>,
        step: Arc<Step<K, V, S>>,
        rehome_keys: bool,
    ) -> DStream<(K, S)> {
        let kind = "update_state_by_key";
        self.shared.assert_initialized(&format!("`{kind}`"));
        self.require_checkpoint("`update_state_by_key`");
        if let Some(keys) = self.task_keys(kind) {
            return self.update_task_state(kind, keys, step);
        }
        let n = partitions
            .unwrap_or_else(|| self.shared.conf.master.threads())
            .max(1);
        let store = Arc::new(Store::new(kind, n, initial));
        self.shared.register_checkpointed(store.clone());
        let parent = self.node.clone();
        parent.add_consumer();
        let exec = self.shared.exec.clone();
        let compute = Box::new(move |time: Time| {
            let batch = state_input(parent.get(time), &store.computed, &exec)?;
            store.computed.store(true, Ordering::SeqCst);
            let exec = batch.exec.clone();
            let buckets = shuffle(batch.into_partitions(), n);
            let mut parts = std::mem::take(&mut *store.lock());
            let out: Vec<Vec<(K, S)>> = exec.install(|| {
                use rayon::prelude::*;
                parts
                    .par_iter_mut()
                    .zip(buckets.into_par_iter())
                    .for_each(|(state, bucket)| {
                        let mut values: FxHashMap<K, Vec<V>> = FxHashMap::default();
                        for (k, v) in bucket {
                            values.entry(k).or_default().push(v);
                        }
                        step(state, values, time);
                    });
                if rehome_keys {
                    rehome(&mut parts);
                }
                parts
                    .par_iter()
                    .map(|state| {
                        state
                            .iter()
                            .map(|(k, e)| (k.clone(), e.value.clone()))
                            .collect()
                    })
                    .collect()
            });
            *store.lock() = parts;
            Some(Batch::new(out, exec))
        });
        DStream::from_node(
            self.shared.clone(),
            Node::new(kind, self.node.slide, compute),
        )
    }

    /// With instances, on a Kafka stream: how this stream's keys map to tasks, when the key is
    /// still the record key; a stream whose key may have changed is a problem `start()`
    /// reports (co-partitioning). `None` without instances or without Kafka input.
    #[track_caller]
    pub(crate) fn task_keys(&self, kind: &str) -> Option<Arc<KeyTasks<K>>> {
        self.shared.conf.instance?;
        let at = std::panic::Location::caller();
        let mut graph = self.shared.graph_mut();
        let problem = match graph.lineage.upstream(node_id(&self.node)) {
            Upstream::NotKafka => return None,
            Upstream::Keyed(any) => match any.downcast::<KeyTasks<K>>() {
                Ok(keys) => return Some(keys),
                Err(_) => "its key type is not the one the stream was keyed with".to_owned(),
            },
            Upstream::Changed { op, at: op_at } => format!(
                "its key may not be the record key: `{op}` at {op_at} may change it, so a key's records may be in another instance's partitions"
            ),
            Upstream::Unkeyed => "its records are not keyed by the record key: read them with `.keyed::<K>()` on the direct Kafka stream".to_owned(),
        };
        graph.problems.push(crate::error::Error::NotCoPartitioned {
            operation: format!("{kind} at {at}"),
            why: problem,
        });
        None
    }

    /// `update_state_by_key` with the state kept per task (see [`crate::tasks`]).
    #[track_caller]
    fn update_task_state<S: StateData>(
        &self,
        kind: &'static str,
        keys: Arc<KeyTasks<K>>,
        step: Arc<Step<K, V, S>>,
    ) -> DStream<(K, S)> {
        let at = std::panic::Location::caller();
        let store = Arc::new(TaskStore::new(kind, keys));
        self.shared.register_checkpointed(store.clone());
        let parent = self.node.clone();
        parent.add_consumer();
        let parent_id = node_id(&parent);
        let exec = self.shared.exec.clone();
        let compute = Box::new(move |time: Time| {
            let batch = state_input(parent.get(time), &store.computed, &exec)?;
            Some(store.update(batch, time, &*step))
        });
        let out = DStream::from_node(
            self.shared.clone(),
            Node::new(kind, self.node.slide, compute),
        );
        self.shared
            .graph_mut()
            .lineage
            .edge(node_id(&out.node), parent_id, kind, at);
        out
    }
}

/// Moves keys that are not in their own partition (the iterator form may return any key)
/// to it; a key returned more than once keeps one of its states.
fn rehome<K: Key, S>(parts: &mut [Partition<K, S>]) {
    let n = parts.len();
    let mut strays = Vec::new();
    for (i, part) in parts.iter_mut().enumerate() {
        if part.keys().any(|k| partition_of(k, n) != i) {
            let keys: Vec<K> = part
                .keys()
                .filter(|k| partition_of(*k, n) != i)
                .cloned()
                .collect();
            for k in keys {
                if let Some(e) = part.remove(&k) {
                    strays.push((k, e));
                }
            }
        }
    }
    for (k, e) in strays {
        parts[partition_of(&k, n)].insert(k, e);
    }
}

/// The batch a state update runs on at a batch time, as Spark's `StateDStream`: the parent's;
/// with no parent batch but a previous state (`computed`), an empty one, so every key is visited
/// with no values; neither: no batch.
fn state_input<T: Data>(
    parent: Option<Batch<T>>,
    computed: &AtomicBool,
    exec: &OnceLock<Executor>,
) -> Option<Batch<T>> {
    match parent {
        Some(b) => Some(b),
        None if computed.load(Ordering::SeqCst) => {
            Some(Batch::new(Vec::new(), exec.get()?.clone()))
        }
        None => None,
    }
}
