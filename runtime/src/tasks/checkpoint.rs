//! Task checkpoints in the shared checkpoint directory: each task's state and offsets in
//! `task-<topic>-<partition>/checkpoint-<batch ms>` (the checkpoint file format, written
//! atomically), and, per instance, `instance-<i>-of-<N>.json` naming the tasks it
//! checkpointed, which is how a restarted instance tells a task that never ran from one whose
//! checkpoints it cannot see.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::sync::LockExt;

use crate::checkpoint::names::SavedPart;
use crate::checkpoint::{Parts, Registry};
use crate::error::{Error, Result};
use crate::time::Time;

use super::{Instance, Task};

/// What `instance-<i>-of-<N>.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct InstanceRecord {
    /// The job (the application name), for messages.
    pub(crate) job: String,
    /// The instance that wrote it.
    pub(crate) instance: Instance,
    /// The tasks it checkpointed.
    pub(crate) tasks: BTreeSet<Task>,
    /// The partition count of each topic its tasks are of.
    pub(crate) partitions: BTreeMap<String, usize>,
}

/// An instance's task checkpoints under the shared directory `root`.
pub(crate) struct TaskCheckpoints {
    root: PathBuf,
    instance: Instance,
    job: String,
    /// The tasks this instance has recorded in its `instance-<i>-of-<N>.json`.
    recorded: std::sync::Mutex<BTreeSet<Task>>,
}

fn record_name(i: &Instance) -> String {
    format!("instance-{}-of-{}.json", i.index, i.count)
}

impl TaskCheckpoints {
    pub(crate) fn new(root: &Path, instance: Instance, job: &str) -> Self {
        TaskCheckpoints {
            root: root.to_owned(),
            instance,
            job: job.to_owned(),
            recorded: Default::default(),
        }
    }

    fn refuse(&self, message: String) -> Error {
        Error::Checkpoint {
            dir: self.root.clone(),
            message,
        }
    }

    /// Writes the checkpoint of every task the task-scoped parts hold, as of batch `time`,
    /// then (the first time, or when tasks were added) this instance's record. Returns the
    /// bytes written. Nothing is written when no part is task-scoped.
    pub(crate) fn write(&self, time: Time, parts: &Registry) -> Result<u64> {
        let scoped: Vec<_> = parts
            .into_iter()
            .filter_map(|p| p.task_scoped().map(|t| (p, t)))
            .collect();
        if scoped.is_empty() {
            return Ok(0);
        }
        let tasks: BTreeSet<Task> = scoped.iter().flat_map(|(_, t)| t.tasks()).collect();
        let mut bytes = 0;
        for task in &tasks {
            let saved = scoped
                .iter()
                .map(|(p, t)| Ok(p.saved(t.save_task(task, time)?)))
                .collect::<Result<Vec<SavedPart>>>()?;
            let dir = self.root.join(task.dir_name());
            std::fs::create_dir_all(&dir).map_err(|e| {
                Error::io("failed to create the task's checkpoint directory", &dir, e)
            })?;
            bytes += crate::checkpoint::write(&dir, time, &saved)?;
        }
        let mut recorded = self.recorded.locked();
        if !tasks.is_subset(&recorded) {
            recorded.extend(tasks);
            let record = InstanceRecord {
                job: self.job.clone(),
                instance: self.instance,
                tasks: recorded.clone(),
                partitions: scoped.iter().flat_map(|(_, t)| t.topics()).collect(),
            };
            write_atomically(&self.root.join(record_name(&self.instance)), &record)?;
        }
        Ok(bytes)
    }

    /// The records every instance left in the directory.
    fn records(&self) -> Result<Vec<InstanceRecord>> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.root)
            .map_err(|e| Error::io("failed to list the checkpoint directory", &self.root, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("instance-") && name.ends_with(".json")) {
                continue;
            }
            let path = entry.path();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::io("failed to read", &path, e))?;
            let record: InstanceRecord = serde_json::from_str(&text).map_err(|e| {
                self.refuse(format!(
                    "`{name}` is not an instance record ({e}); it is written by the job's instances: restore it or remove it"
                ))
            })?;
            out.push(record);
        }
        Ok(out)
    }

    /// Gives the task-scoped parts the state of every task this instance owns, from the
    /// tasks' own checkpoints (whatever the instance's own checkpoint restored is dropped
    /// first). Refuses a directory that does not hold what the records say it should: a task
    /// this instance owns that another instance recorded but whose checkpoint is not here, or
    /// a task of an earlier instance whose record is missing.
    pub(crate) fn restore(&self, parts: &Registry) -> Result<()> {
        let scoped: Vec<_> = parts
            .into_iter()
            .filter_map(|p| p.task_scoped().map(|t| (p, t)))
            .collect();
        for (_, t) in &scoped {
            t.clear_tasks();
        }
        if scoped.is_empty() {
            return Ok(());
        }
        let records = self.records()?;
        let mut recorded_by: BTreeMap<Task, Instance> = BTreeMap::new();
        for r in &records {
            for t in &r.tasks {
                recorded_by.insert(t.clone(), r.instance);
            }
        }
        let on_disk: BTreeSet<Task> = std::fs::read_dir(&self.root)
            .map_err(|e| Error::io("failed to list the checkpoint directory", &self.root, e))?
            .flatten()
            .filter_map(|e| Task::from_dir_name(&e.file_name().to_string_lossy()))
            .collect();
        let not_shared = "the checkpoint directory is not one directory shared by every instance (each instance sees its own): give all instances the same directory on a shared filesystem (NFS, a cluster filesystem), with the same path";
        // Earlier layouts whose records are incomplete: their missing instances' tasks.
        let mut counts: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
        let mut partitions: BTreeMap<String, usize> = BTreeMap::new();
        for r in &records {
            partitions.extend(r.partitions.clone());
            counts
                .entry(r.instance.count)
                .or_default()
                .insert(r.instance.index);
        }
        for task in &on_disk {
            if !self.instance.owns(task.partition) || recorded_by.contains_key(task) {
                continue;
            }
            recorded_by.insert(task.clone(), self.instance);
        }
        let mut owned: BTreeSet<Task> = BTreeSet::new();
        for (task, by) in &recorded_by {
            if !self.instance.owns(task.partition) {
                continue;
            }
            let dir = self.root.join(task.dir_name());
            if !dir.is_dir() {
                return Err(self.refuse(format!(
                    "`{task}` was checkpointed by {by} (`{}`) but `{}` is not here: {not_shared}",
                    record_name(by),
                    dir.display()
                )));
            }
            owned.insert(task.clone());
        }
        for (count, present) in &counts {
            if *count == self.instance.count {
                continue;
            }
            let missing: Vec<u32> = (0..*count).filter(|i| !present.contains(i)).collect();
            if missing.is_empty() {
                continue;
            }
            // A task of mine that one of the missing instances owned, recorded by nobody.
            let lost: Vec<Task> = partitions
                .iter()
                .flat_map(|(topic, n)| (0..*n as i32).map(move |p| Task::new(topic.clone(), p)))
                .filter(|t| self.instance.owns(t.partition))
                .filter(|t| missing.contains(&((t.partition as u32) % count)))
                .filter(|t| !recorded_by.contains_key(t))
                .collect();
            if !lost.is_empty() {
                return Err(self.refuse(format!(
                    "the job ran as {count} instances before, but the records of instance(s) {} of {count} are not here (`instance-<i>-of-{count}.json`), so the state of the tasks they owned ({}, owned by {} now) is not here either: {not_shared}; if those instances never wrote a checkpoint, start the job once more with {count} instances",
                    missing
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    lost.iter()
                        .map(|t| format!("`{t}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    self.instance
                )));
            }
        }
        for task in &owned {
            let dir = self.root.join(task.dir_name());
            let Some((time, saved)) = crate::checkpoint::read_latest(&dir)? else {
                return Err(self.refuse(format!(
                    "`{}` holds no readable checkpoint of `{task}`, which {} recorded: {not_shared}",
                    dir.display(),
                    recorded_by[task]
                )));
            };
            let Parts::Named(saved) = saved else {
                return Err(self.refuse(format!(
                    "`{}` holds a checkpoint of format 1, which task checkpoints never are",
                    dir.display()
                )));
            };
            for (part, t) in &scoped {
                let Some(s) = saved.iter().find(|s| s.name == part.name) else {
                    continue;
                };
                if let Some(why) = part.mismatch(s) {
                    return Err(self.refuse(format!("{task}: {why}")));
                }
                t.restore_task(task, &s.state).map_err(|e| {
                    self.refuse(format!(
                        "cannot restore {task} of state {}: {e}",
                        part.describe()
                    ))
                })?;
            }
            tracing::info!(%task, batch = time.millis(), instance = %self.instance, "task restored from its checkpoint");
        }
        *self.recorded.locked() = owned.clone();
        Ok(())
    }
}

/// Writes `value` as JSON to `path` through a temporary file, synced and renamed.
fn write_atomically(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    let text = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::IllegalState(format!("could not encode an instance record: {e}")))?;
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&text).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("failed to write", path, e));
    }
    if let Some(dir) = path.parent() {
        crate::checkpoint::sync_dir(dir)?;
    }
    Ok(())
}
