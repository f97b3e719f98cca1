//! `map_with_state`: Spark's `mapWithState`. Only the keys of the batch (and keys timing out)
//! are touched, so the work per batch follows the batch, not the total state.

use crate::sync::LockExt;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::batch::shuffle::shuffle;
use crate::batch::{Batch, Data, Key};
use crate::dstream::DStream;
use crate::dstream::node::Node;
use crate::state::StateData;
use crate::state::idle::IdleIndex;
use crate::state::store::{Entry, Partition, Store};
use crate::time::{Time, millis};

/// The state of one key inside a `map_with_state` function, as Spark's `State`.
#[derive(Debug)]
pub struct State<S> {
    pub(super) value: Option<S>,
    updated: bool,
    pub(super) removed: bool,
    timing_out: bool,
}

impl<S> State<S> {
    pub(super) fn new(value: Option<S>, timing_out: bool) -> Self {
        State {
            value,
            updated: false,
            removed: false,
            timing_out,
        }
    }

    /// Whether the key has a state.
    pub fn exists(&self) -> bool {
        self.value.is_some()
    }

    /// The state, as Spark's `State.get`.
    ///
    /// # Panics
    /// If the key has none (a new key, or one just removed), as Spark throws
    /// `NoSuchElementException`; the batch then fails. Where a key may have no state, call
    /// [`get_option`](Self::get_option) instead, or check [`exists`](Self::exists) first.
    ///
    /// ```
    /// use cargo_stream_runtime::{State, StateSpec};
    /// let out = cargo_stream_runtime::example_with(vec![vec![("a".to_string(), 1)], vec![("a".to_string(), 2)]], 2, |ssc, s| {
    ///     ssc.checkpoint(std::env::temp_dir().join("doc-state-get")).unwrap();
    ///     let spec = StateSpec::function(|_: &String, v: Option<i32>, state: &mut State<i32>| {
    ///         let before = if state.exists() { *state.get() } else { 0 };
    ///         state.update(before + v.unwrap_or(0));
    ///         before
    ///     });
    ///     s.map_with_state(spec).into_dstream()
    /// });
    /// assert_eq!(out[1].1, vec![1]);
    /// ```
    #[track_caller]
    pub fn get(&self) -> &S {
        match &self.value {
            Some(v) => v,
            None => panic!(
                "State is not set: `State::get` was called for a key without state (a new key, or one just removed); call `state.get_option()` where a key may have no state, or check `state.exists()` first"
            ),
        }
    }

    /// The state, if any.
    pub fn get_option(&self) -> Option<&S> {
        self.value.as_ref()
    }

    /// Sets the state.
    ///
    /// # Panics
    /// After [`remove`](Self::remove), or while the key is timing out (Spark's rules); the
    /// batch then fails with this message.
    #[track_caller]
    pub fn update(&mut self, state: S) {
        assert!(
            !self.removed,
            "Cannot update the state after it has been removed"
        );
        assert!(
            !self.timing_out,
            "Cannot update the state that is timing out"
        );
        self.value = Some(state);
        self.updated = true;
    }

    /// Removes the key's state.
    ///
    /// # Panics
    /// When already removed, or while the key is timing out (it is removed anyway).
    #[track_caller]
    pub fn remove(&mut self) {
        assert!(
            !self.removed,
            "Cannot remove the state that has already been removed"
        );
        assert!(
            !self.timing_out,
            "Cannot remove the state that is timing out"
        );
        self.value = None;
        self.removed = true;
    }

    /// True in the last call for a key that was idle longer than the timeout.
    pub fn is_timing_out(&self) -> bool {
        self.timing_out
    }
}

/// Runs the mapping function on one record of key `k`: the key's state is taken out, handed
/// to `func` with the value, and put back touched at `time` (after `kept` has seen the key)
/// unless `func` removed it or set none; what `func` returns goes to `out`.
pub(crate) fn apply_record<K: Key, V, S, M>(
    func: &MappingFn<K, V, S, M>,
    state: &mut Partition<K, S>,
    time: Time,
    k: K,
    v: V,
    out: &mut Vec<M>,
    kept: impl FnOnce(&K),
) {
    let old = state.remove(&k);
    let mut st = State::new(old.map(|e| e.value), false);
    out.extend(func(time, &k, Some(v), &mut st));
    if let Some(value) = st.value
        && !st.removed
    {
        kept(&k);
        state.insert(
            k,
            Entry {
                value,
                touched: time,
            },
        );
    }
}

pub(crate) type MappingFn<K, V, S, M> =
    dyn Fn(Time, &K, Option<V>, &mut State<S>) -> Option<M> + Send + Sync;

/// What `map_with_state` does: the function, and optionally initial state, partitions and an
/// idle timeout, as Spark's `StateSpec`.
pub struct StateSpec<K, V, S, M> {
    pub(super) func: Arc<MappingFn<K, V, S, M>>,
    pub(super) initial: Vec<(K, S)>,
    partitions: Option<usize>,
    pub(super) timeout: Option<Duration>,
}

impl<K, V, S, M> StateSpec<K, V, S, M> {
    /// A spec calling `f(key, value, state)` for every record of each batch; what it returns
    /// is the mapped stream's record.
    pub fn function(f: impl Fn(&K, Option<V>, &mut State<S>) -> M + Send + Sync + 'static) -> Self {
        Self::function_with_time(move |_, k, v, s| Some(f(k, v, s)))
    }

    /// A spec calling `f(time, key, value, state)` for every record of each batch, Spark's
    /// `StateSpec.function((Time, K, Option[V], State[S]) => Option[M])`: `f` also sees the
    /// batch time, and what it returns is the mapped stream's record when `Some`, nothing
    /// when `None` (the state is kept either way).
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// // Emit a key only the first time it is seen, with the batch time (ms).
    /// let out = cargo_stream_runtime::example_with(vec![vec!["a"], vec!["a", "b"]], 2, |ssc, s| {
    ///     ssc.checkpoint(std::env::temp_dir().join("doc-state-spec-time")).unwrap();
    ///     let spec = StateSpec::function_with_time(
    ///         |time: Time, k: &String, _: Option<i32>, seen: &mut State<bool>| {
    ///             if seen.exists() {
    ///                 return None;
    ///             }
    ///             seen.update(true);
    ///             Some((k.clone(), time.millis()))
    ///         },
    ///     );
    ///     s.map(|w| (w.to_string(), 1)).map_with_state(spec).into_dstream()
    /// });
    /// assert_eq!(out[0].1, vec![("a".to_string(), 1000)]);
    /// assert_eq!(out[1].1, vec![("b".to_string(), 2000)]);
    /// ```
    pub fn function_with_time(
        f: impl Fn(Time, &K, Option<V>, &mut State<S>) -> Option<M> + Send + Sync + 'static,
    ) -> Self {
        StateSpec {
            func: Arc::new(f),
            initial: Vec::new(),
            partitions: None,
            timeout: None,
        }
    }
    /// Starts from this state.
    pub fn initial_state(mut self, initial: Vec<(K, S)>) -> Self {
        self.initial = initial;
        self
    }
    /// Keeps the state in `n` partitions (default: the master's thread count).
    pub fn num_partitions(mut self, n: usize) -> Self {
        self.partitions = Some(n);
        self
    }
    /// Keys with no record for longer than `idle` get a last call with `None` and
    /// `is_timing_out()`, then are removed.
    pub fn timeout(mut self, idle: impl Into<Duration>) -> Self {
        self.timeout = Some(idle.into());
        self
    }
}

/// The stream `map_with_state` returns: the mapped records, plus the whole state each batch
/// through [`state_snapshots`](Self::state_snapshots). Derefs to the mapped `DStream<M>`.
pub struct MapWithStateDStream<K, S, M> {
    pub(super) mapped: DStream<M>,
    pub(super) store: Arc<Store<K, S>>,
    /// With instances, on a keyed Kafka stream: the state, kept per task (`store` is unused).
    pub(super) tasks: Option<Arc<crate::state::task_store::TaskStore<K, S>>>,
    pub(super) checkpoint_interval: Arc<Mutex<Option<Duration>>>,
}

impl<K, S, M> Clone for MapWithStateDStream<K, S, M> {
    fn clone(&self) -> Self {
        MapWithStateDStream {
            mapped: self.mapped.clone(),
            store: self.store.clone(),
            tasks: self.tasks.clone(),
            checkpoint_interval: self.checkpoint_interval.clone(),
        }
    }
}

impl<K, S, M> Deref for MapWithStateDStream<K, S, M> {
    type Target = DStream<M>;
    fn deref(&self) -> &DStream<M> {
        &self.mapped
    }
}

impl<K: Key + StateData, S: StateData, M: Data> MapWithStateDStream<K, S, M> {
    /// Every key's state after each batch.
    #[track_caller]
    pub fn state_snapshots(&self) -> DStream<(K, S)> {
        let store = self.store.clone();
        let tasks = self.tasks.clone();
        self.mapped.derive("state_snapshots", move |b, _| {
            let snapshot = match &tasks {
                Some(t) => t.snapshot(),
                None => store.snapshot(),
            };
            Batch::new(snapshot, b.exec.clone())
        })
    }

    /// Sets how often the state is checkpointed (default: the smallest multiple of the batch
    /// interval from 10 s). As in Spark, idle keys are timed out at these batches only.
    #[track_caller]
    pub fn checkpoint(&self, interval: impl Into<Duration>) -> &Self {
        let interval = interval.into();
        self.mapped.checkpoint(interval);
        *self.checkpoint_interval.locked() = Some(interval);
        self
    }

    /// The mapped stream.
    pub fn into_dstream(self) -> DStream<M> {
        self.mapped
    }
}

impl<K: Key + StateData, V: Data> DStream<(K, V)> {
    /// Maps every record with a per-key state, as Spark's `mapWithState`: the function sees
    /// the key, the value and the key's [`State`], and returns the mapped record. Needs a
    /// checkpoint directory.
    ///
    /// ```
    /// use cargo_stream_runtime::{State, StateSpec};
    /// let out = cargo_stream_runtime::example_with(vec![vec![("a".to_string(), 1)], vec![("a".to_string(), 2)]], 2, |ssc, s| {
    ///     ssc.checkpoint(std::env::temp_dir().join("doc-map-with-state")).unwrap();
    ///     let spec = StateSpec::function(|k: &String, v: Option<i32>, state: &mut State<i32>| {
    ///         let total = v.unwrap_or(0) + state.get_option().copied().unwrap_or(0);
    ///         state.update(total);
    ///         (k.clone(), total)
    ///     });
    ///     s.map_with_state(spec).into_dstream()
    /// });
    /// assert_eq!(out[1].1, vec![("a".to_string(), 3)]);
    /// ```
    #[track_caller]
    pub fn map_with_state<S: StateData, M: Data>(
        &self,
        spec: StateSpec<K, V, S, M>,
    ) -> MapWithStateDStream<K, S, M> {
        self.require_checkpoint("`map_with_state`");
        let n = spec
            .partitions
            .unwrap_or_else(|| self.shared.conf.master.threads())
            .max(1);
        self.shared.assert_initialized("`map_with_state`");
        if let Some(keys) = self.task_keys("map_with_state") {
            return self.map_with_task_state(spec, keys);
        }
        let store = Arc::new(Store::new("map_with_state", n, spec.initial));
        self.shared.register_checkpointed(store.clone());
        let index: Arc<Mutex<Vec<IdleIndex<K>>>> =
            Arc::new(Mutex::new((0..n).map(|_| IdleIndex::default()).collect()));
        let (func, timeout) = (spec.func, spec.timeout);
        let s = store.clone();
        let checkpoint_interval: Arc<Mutex<Option<Duration>>> = Arc::default();
        let (interval, zero) = (checkpoint_interval.clone(), self.shared.zero_time.clone());
        let default_interval = crate::checkpoint::default_interval(self.node.slide);
        let parent = self.node.clone();
        parent.add_consumer();
        let exec_cell = self.shared.exec.clone();
        let compute = Box::new(move |time: Time| {
            // As Spark: no parent batch is an empty one (idle keys still time out).
            let batch = match parent.get(time) {
                Some(b) => b,
                None => Batch::new(Vec::new(), exec_cell.get()?.clone()),
            };
            let exec = batch.exec.clone();
            let buckets = shuffle(batch.into_partitions(), n);
            let mut parts = std::mem::take(&mut *s.lock());
            let mut idx = std::mem::take(&mut *index.locked());
            // Spark looks for idle keys only at checkpoint batches (its "full scan").
            let every = interval.locked().unwrap_or(default_interval);
            let zero = zero.get().copied().unwrap_or_default();
            let scan = (time.0.saturating_sub(zero.0)) % millis(every).max(1) == 0;
            let threshold = timeout
                .filter(|_| scan)
                .map(|d| Time(time.0.saturating_sub(millis(d))));
            if timeout.is_some() {
                // Initial or restored state has no index entries yet: index it once.
                for (state, touched) in parts.iter().zip(idx.iter_mut()) {
                    touched.cover(state);
                }
            }
            let out: Vec<Vec<M>> = exec.install(|| {
                use rayon::prelude::*;
                parts
                    .par_iter_mut()
                    .zip(idx.par_iter_mut())
                    .zip(buckets.into_par_iter())
                    .map(|((state, touched), bucket)| {
                        let mut out = Vec::with_capacity(bucket.len());
                        for (k, v) in bucket {
                            apply_record(&*func, state, time, k, v, &mut out, |k| {
                                if timeout.is_some() {
                                    touched.touch(k.clone(), time);
                                }
                            });
                        }
                        if let Some(limit) = threshold {
                            // Only the keys idle since before `limit`, through the index.
                            touched.time_out(state, limit, |k, value| {
                                let mut st = State::new(Some(value), true);
                                out.extend(func(time, &k, None, &mut st));
                            });
                        }
                        out
                    })
                    .collect()
            });
            *s.lock() = parts;
            *index.locked() = idx;
            Some(Batch::new(out, exec))
        });
        let mapped = DStream::from_node(
            self.shared.clone(),
            Node::new("map_with_state", self.node.slide, compute),
        );
        MapWithStateDStream {
            mapped,
            store,
            tasks: None,
            checkpoint_interval,
        }
    }
}
