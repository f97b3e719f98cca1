//! Keyed state kept per task (one Kafka partition's keys), for `update_state_by_key` on a
//! stream keyed by the record key when the job runs as instances: each task's keys in their
//! own map, saved in the task's checkpoint with its offsets (see [`crate::tasks`]); and
//! `map_with_state` kept the same way.

use crate::sync::LockExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::batch::{Batch, Data, Key};
use crate::checkpoint::Checkpointed;
use crate::dstream::DStream;
use crate::dstream::node::Node;
use crate::error::{Error, Result};
use crate::state::StateData;
use crate::state::map_with_state::{MapWithStateDStream, State, StateSpec, apply_record};
use crate::state::store::{Entry, Partition, store_types};
use crate::tasks::lineage::node_id;
use crate::tasks::store::KeyTasks;
use crate::tasks::{Task, TaskScoped};
use crate::time::{Time, millis};

/// See the module doc.
pub(crate) struct TaskStore<K, S> {
    kind: &'static str,
    pub(crate) keys: Arc<KeyTasks<K>>,
    pub(crate) tasks: Mutex<BTreeMap<Task, Partition<K, S>>>,
    /// As [`Store::computed`](crate::state::store::Store).
    pub(crate) computed: AtomicBool,
    /// The initial state, placed at the first batch unless a task was restored.
    initial: Mutex<Vec<(K, S)>>,
}

impl<K: Key + StateData, S: StateData> TaskStore<K, S> {
    pub(crate) fn new(kind: &'static str, keys: Arc<KeyTasks<K>>) -> Self {
        TaskStore {
            kind,
            keys,
            tasks: Mutex::default(),
            computed: AtomicBool::new(false),
            initial: Mutex::default(),
        }
    }

    /// Starts from `initial`: at the first batch, when no task was restored from a
    /// checkpoint, each key of a task this instance owns goes to that task (the others are
    /// other instances' keys).
    pub(crate) fn with_initial(self, initial: Vec<(K, S)>) -> Self {
        *self.initial.locked() = initial;
        self
    }

    /// The batch's records by the task (of those this instance owns) their key belongs to,
    /// in task order and, within a task, in the batch's order; the initial state placed the
    /// first time. Panics (failing the batch) when a key's task is not this instance's: the
    /// stream's key is not the key the records were partitioned by.
    fn route<V: Data>(&self, batch: Batch<(K, V)>) -> Vec<(Task, Vec<(K, V)>)> {
        let topic = self.keys.source.topic().unwrap_or_else(|e| {
            panic!(
                "`{}` on the stream keyed at {}: {e}",
                self.kind, self.keys.at
            )
        });
        let owned = self.keys.source.owned();
        if !self.computed.load(Ordering::SeqCst) {
            let initial = std::mem::take(&mut *self.initial.locked());
            let mut tasks = self.tasks.locked();
            for (k, value) in initial {
                let task = self.keys.task_of(&k, &topic);
                if owned.contains(&task) {
                    tasks.entry(task).or_default().insert(
                        k,
                        Entry {
                            value,
                            touched: Time(0),
                        },
                    );
                }
            }
        }
        let index: BTreeMap<Task, usize> = owned
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i))
            .collect();
        let mut buckets: Vec<(Task, Vec<(K, V)>)> =
            owned.iter().map(|t| (t.clone(), Vec::new())).collect();
        for (k, v) in batch.into_vec() {
            let task = self.keys.task_of(&k, &topic);
            match index.get(&task) {
                Some(i) => buckets[*i].1.push((k, v)),
                None => panic!(
                    "`{}`: a key of `{task}` reached {}, which owns {}: the stream's key is not the record key its records were partitioned by (the producer used another partitioner than murmur2, or the key was changed); produce with the Java client's partitioner, or `repartition_through` a topic keyed by this key",
                    self.kind,
                    self.keys.source.describe_instance(),
                    owned
                        .iter()
                        .map(|t| format!("`{t}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
        buckets
    }

    /// Runs `step` on each task this instance owns, in parallel, with its state and the
    /// batch's records of its keys (in order); the batch that comes out has one partition per
    /// task, in task order, holding what `step` returned for it. Tasks no longer owned (none,
    /// with a static assignment) are dropped.
    pub(crate) fn apply<V: Data, M: Data>(
        &self,
        batch: Batch<(K, V)>,
        step: &(dyn Fn(&mut Partition<K, S>, Vec<(K, V)>) -> Vec<M> + Send + Sync),
    ) -> Batch<M> {
        let exec = batch.exec.clone();
        let buckets = self.route(batch);
        let mut state = std::mem::take(&mut *self.tasks.locked());
        let mut work: Vec<(Task, Partition<K, S>, Vec<(K, V)>, Vec<M>)> = buckets
            .into_iter()
            .map(|(t, records)| {
                let part = state.remove(&t).unwrap_or_default();
                (t, part, records, Vec::new())
            })
            .collect();
        exec.install(|| {
            use rayon::prelude::*;
            work.par_iter_mut().for_each(|(_, part, records, out)| {
                *out = step(part, std::mem::take(records));
            });
        });
        let mut out = Vec::with_capacity(work.len());
        let mut tasks = BTreeMap::new();
        for (t, part, _, o) in work {
            tasks.insert(t, part);
            out.push(o);
        }
        *self.tasks.locked() = tasks;
        self.computed.store(true, Ordering::SeqCst);
        Batch::new(out, exec)
    }

    /// Runs `step` on each task this instance owns with the batch's values of its keys; the
    /// batch that comes out has one partition per task, in task order, with every key's state.
    pub(crate) fn update<V: Data>(
        &self,
        batch: Batch<(K, V)>,
        time: Time,
        step: &(dyn Fn(&mut Partition<K, S>, FxHashMap<K, Vec<V>>, Time) + Send + Sync),
    ) -> Batch<(K, S)> {
        self.apply(batch, &|part, records| {
            let mut values: FxHashMap<K, Vec<V>> = FxHashMap::default();
            for (k, v) in records {
                values.entry(k).or_default().push(v);
            }
            step(part, values, time);
            part.iter()
                .map(|(k, e)| (k.clone(), e.value.clone()))
                .collect()
        })
    }

    /// Every key's state, a partition per task.
    pub(crate) fn snapshot(&self) -> Vec<Vec<(K, S)>> {
        self.tasks
            .locked()
            .values()
            .map(|p| {
                p.iter()
                    .map(|(k, e)| (k.clone(), e.value.clone()))
                    .collect()
            })
            .collect()
    }
}

impl<K: Key + StateData, S: StateData> Checkpointed for TaskStore<K, S> {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn types(&self) -> Vec<(&'static str, &'static str)> {
        store_types::<K, S>()
    }

    /// The instance's own checkpoint holds no keyed state: it is in the tasks' checkpoints.
    fn save(&self, _time: Time) -> Result<Vec<u8>> {
        Ok(Vec::new())
    }

    fn restore(&self, _bytes: &[u8]) -> Result<()> {
        Ok(())
    }

    fn task_scoped(&self) -> Option<&dyn TaskScoped> {
        Some(self)
    }
}

impl<K: Key + StateData, S: StateData> TaskScoped for TaskStore<K, S> {
    fn tasks(&self) -> Vec<Task> {
        self.tasks.locked().keys().cloned().collect()
    }

    fn save_task(&self, task: &Task, _time: Time) -> Result<Vec<u8>> {
        let tasks = self.tasks.locked();
        let entries: Vec<(&K, &S, u64)> = tasks
            .get(task)
            .into_iter()
            .flatten()
            .map(|(k, e)| (k, &e.value, e.touched.0))
            .collect();
        postcard::to_stdvec(&entries).map_err(|e| {
            Error::IllegalState(format!(
                "could not encode `{}` state of `{task}`: {e}",
                self.kind
            ))
        })
    }

    fn clear_tasks(&self) {
        self.tasks.locked().clear();
    }

    fn restore_task(&self, task: &Task, bytes: &[u8]) -> Result<()> {
        let entries: Vec<(K, S, u64)> = postcard::from_bytes(bytes).map_err(|e| {
            Error::IllegalState(format!(
                "could not decode `{}` state of `{task}`: {e}",
                self.kind
            ))
        })?;
        let part: Partition<K, S> = entries
            .into_iter()
            .map(|(k, value, t)| {
                (
                    k,
                    Entry {
                        value,
                        touched: Time(t),
                    },
                )
            })
            .collect();
        self.tasks.locked().insert(task.clone(), part);
        self.computed.store(true, Ordering::SeqCst);
        Ok(())
    }
}

impl<K: Key + StateData, V: Data> DStream<(K, V)> {
    /// `map_with_state` with the state kept per task (see [`crate::tasks`]): as the instance-
    /// wide form, each record is mapped with its key's state, in the batch's order; idle keys
    /// time out at checkpoint batches (Spark's full scan, here of each task's keys).
    #[track_caller]
    pub(crate) fn map_with_task_state<S: StateData, M: Data>(
        &self,
        spec: StateSpec<K, V, S, M>,
        keys: Arc<KeyTasks<K>>,
    ) -> MapWithStateDStream<K, S, M> {
        let kind = "map_with_state";
        let at = std::panic::Location::caller();
        let tasks = Arc::new(TaskStore::new(kind, keys).with_initial(spec.initial));
        self.shared.register_checkpointed(tasks.clone());
        let (func, timeout) = (spec.func, spec.timeout);
        let checkpoint_interval: Arc<Mutex<Option<Duration>>> = Arc::default();
        let (interval, zero) = (checkpoint_interval.clone(), self.shared.zero_time.clone());
        let default_interval = crate::checkpoint::default_interval(self.node.slide);
        let parent = self.node.clone();
        parent.add_consumer();
        let parent_id = node_id(&parent);
        let exec_cell = self.shared.exec.clone();
        let store = tasks.clone();
        let compute = Box::new(move |time: Time| {
            // As Spark: no parent batch is an empty one (idle keys still time out).
            let batch = match parent.get(time) {
                Some(b) => b,
                None => Batch::new(Vec::new(), exec_cell.get()?.clone()),
            };
            let every = interval.locked().unwrap_or(default_interval);
            let zero = zero.get().copied().unwrap_or_default();
            let scan = (time.0.saturating_sub(zero.0)) % millis(every).max(1) == 0;
            let threshold = timeout
                .filter(|_| scan)
                .map(|d| Time(time.0.saturating_sub(millis(d))));
            let step = |state: &mut Partition<K, S>, records: Vec<(K, V)>| -> Vec<M> {
                let mut out = Vec::with_capacity(records.len());
                for (k, v) in records {
                    apply_record(&*func, state, time, k, v, &mut out, |_| {});
                }
                if let Some(limit) = threshold {
                    let idle: Vec<K> = state
                        .iter()
                        .filter(|(_, e)| e.touched < limit)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in idle {
                        let entry = state.remove(&k).expect("listed above");
                        let mut st = State::new(Some(entry.value), true);
                        out.extend(func(time, &k, None, &mut st));
                    }
                }
                out
            };
            Some(store.apply(batch, &step))
        });
        let mapped = DStream::from_node(
            self.shared.clone(),
            Node::new(kind, self.node.slide, compute),
        );
        self.shared
            .graph_mut()
            .lineage
            .edge(node_id(&mapped.node), parent_id, kind, at);
        MapWithStateDStream {
            mapped,
            store: Arc::new(crate::state::store::Store::new(kind, 1, Vec::new())),
            tasks: Some(tasks),
            checkpoint_interval,
        }
    }
}
