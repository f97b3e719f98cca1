//! Keyed state kept per task (one Kafka partition's keys), for `update_state_by_key` on a
//! stream keyed by the record key when the job runs as instances: each task's keys in their
//! own map, saved in the task's checkpoint with its offsets (see [`crate::tasks`]).

use crate::sync::LockExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rustc_hash::FxHashMap;

use crate::batch::{Batch, Data, Key};
use crate::checkpoint::Checkpointed;
use crate::error::{Error, Result};
use crate::state::StateData;
use crate::state::store::{Entry, Partition, store_types};
use crate::tasks::store::KeyTasks;
use crate::tasks::{Task, TaskScoped};
use crate::time::Time;

/// See the module doc.
pub(crate) struct TaskStore<K, S> {
    kind: &'static str,
    pub(crate) keys: Arc<KeyTasks<K>>,
    pub(crate) tasks: Mutex<BTreeMap<Task, Partition<K, S>>>,
    /// As [`Store::computed`](crate::state::store::Store).
    pub(crate) computed: AtomicBool,
}

impl<K: Key + StateData, S: StateData> TaskStore<K, S> {
    pub(crate) fn new(kind: &'static str, keys: Arc<KeyTasks<K>>) -> Self {
        TaskStore {
            kind,
            keys,
            tasks: Mutex::default(),
            computed: AtomicBool::new(false),
        }
    }

    /// Runs `step` on each task this instance owns with the batch's values of its keys; the
    /// batch that comes out has one partition per task, in task order. Panics (failing the
    /// batch) when a key's task is not this instance's: the stream's key is not the key the
    /// records were partitioned by.
    pub(crate) fn update<V: Data>(
        &self,
        batch: Batch<(K, V)>,
        time: Time,
        step: &(dyn Fn(&mut Partition<K, S>, FxHashMap<K, Vec<V>>, Time) + Send + Sync),
    ) -> Batch<(K, S)> {
        let topic = self.keys.source.topic().unwrap_or_else(|e| {
            panic!(
                "`{}` on the stream keyed at {}: {e}",
                self.kind, self.keys.at
            )
        });
        let owned = self.keys.source.owned();
        let exec = batch.exec.clone();
        let mut buckets: BTreeMap<Task, FxHashMap<K, Vec<V>>> = owned
            .iter()
            .map(|t| (t.clone(), FxHashMap::default()))
            .collect();
        for (k, v) in batch.into_vec() {
            let task = self.keys.task_of(&k, &topic);
            match buckets.get_mut(&task) {
                Some(b) => b.entry(k).or_default().push(v),
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
        let mut state = std::mem::take(&mut *self.tasks.locked());
        // Tasks no longer owned (none, with a static assignment) are dropped, owned ones made.
        let mut work: Vec<(Task, Partition<K, S>, FxHashMap<K, Vec<V>>)> = buckets
            .into_iter()
            .map(|(t, values)| {
                let part = state.remove(&t).unwrap_or_default();
                (t, part, values)
            })
            .collect();
        exec.install(|| {
            use rayon::prelude::*;
            work.par_iter_mut()
                .for_each(|(_, part, values)| step(part, std::mem::take(values), time));
        });
        let out: Vec<Vec<(K, S)>> = work
            .iter()
            .map(|(_, part, _)| {
                part.iter()
                    .map(|(k, e)| (k.clone(), e.value.clone()))
                    .collect()
            })
            .collect();
        *self.tasks.locked() = work.into_iter().map(|(t, p, _)| (t, p)).collect();
        self.computed.store(true, Ordering::SeqCst);
        Batch::new(out, exec)
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
