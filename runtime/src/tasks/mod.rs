//! Past one machine: a job as `N` instances sharing a Kafka input, with the input partition
//! as the unit of work and of keyed state (a *task*, as in Kafka Streams).
//!
//! - **Instances.** Instance `i` of `N` ([`Instance`], from
//!   [`StreamingConf::instance`](crate::StreamingConf::instance) or the launcher's
//!   `CARGO_STREAM_INSTANCE` / `CARGO_STREAM_INSTANCES`, or Slurm's `SLURM_PROCID` /
//!   `SLURM_NTASKS`) reads the partitions `p` of its direct Kafka streams with
//!   `p mod N == i`: a static assignment, the same at every start, with no coordinator.
//! - **Tasks.** A stream read with
//!   [`DirectKafkaStream::keyed`](crate::kafka::DirectKafkaStream::keyed) is keyed by the
//!   record key, and the Kafka partition of a record is its key's ([`KafkaPartitioner`]:
//!   murmur2, as Java producers place keys). Key-preserving operations keep that
//!   (`filter`, `map_values`, `flat_map_values`, `reduce_by_key`, `group_by_key`,
//!   `combine_by_key`), so `update_state_by_key` and `map_with_state` on such a stream keep
//!   one state per task,
//!   and each task's state and its partition's offsets are checkpointed together, in one file,
//!   under `<checkpoint dir>/task-<topic>-<partition>/`. The rest of an instance's checkpoint
//!   (the batch times, non-Kafka state) goes to `<checkpoint dir>/instance-<i>/`.
//! - **Rescaling.** Stopped at `N` instances and started at `M`, each instance loads the
//!   tasks it now owns from the shared directory: totals continue exactly. Each instance
//!   records the tasks it checkpointed in `instance-<i>-of-<N>.json`; an instance that owns
//!   a task another instance recorded but cannot read, or a task of an instance whose record
//!   is missing, refuses to start ([`Error::Checkpoint`](crate::Error::Checkpoint)): the
//!   directory is not shared.
//! - **Co-partitioning.** With instances, a stateful operation on a Kafka stream whose key
//!   is not the record key (after a `map`, `flat_map`, `transform`...) fails `start()` naming
//!   the operation, the key-changing operation and the fix:
//!   [`repartition_through`](crate::DStream::repartition_through) a topic keyed by the new key.
//!   A join of two Kafka streams needs both keyed by the record key and topics of the same
//!   partition count (checked once `start()` has listed them). A window on a Kafka stream,
//!   whose state (its batches) is per instance, not per task, fails `start()`: a rescale
//!   would lose or misplace it.

pub(crate) mod checkpoint;
mod copartition;
mod instance;
pub(crate) mod lineage;
mod partitioner;
pub(crate) mod store;

pub use instance::{INSTANCE_ENV, INSTANCES_ENV, Instance, SLURM_NTASKS_ENV, SLURM_PROCID_ENV};
pub use partitioner::{
    HashPartitioner, KafkaKey, KafkaPartitioner, Partitioner, kafka_partition, murmur2,
};

/// A task: one partition of a Kafka topic, with its state and offsets.
///
/// ```
/// use cargo_stream_runtime::tasks::Task;
/// assert_eq!(Task::new("lines", 2).dir_name(), "task-lines-2");
/// ```
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Task {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

impl Task {
    /// Partition `partition` of `topic`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Task {
            topic: topic.into(),
            partition,
        }
    }

    /// The name of the task's directory in the checkpoint directory: `task-<topic>-<partition>`.
    pub fn dir_name(&self) -> String {
        format!("task-{}-{}", self.topic, self.partition)
    }

    /// The task a directory name names, if it is one.
    pub(crate) fn from_dir_name(name: &str) -> Option<Task> {
        let (topic, p) = name.strip_prefix("task-")?.rsplit_once('-')?;
        Some(Task::new(topic, p.parse().ok()?))
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.dir_name())
    }
}

/// A part of the graph whose state is kept per task (a keyed state store, a direct Kafka
/// stream's positions): saved in each task's own checkpoint and restored task by task.
pub(crate) trait TaskScoped: Send + Sync {
    /// The tasks whose state this part holds now (for a source: the partitions it reads).
    fn tasks(&self) -> Vec<Task>;
    /// The partition count of each topic it reads (a source), for the instance records.
    fn topics(&self) -> Vec<(String, usize)> {
        Vec::new()
    }
    /// The state of `task` as of the end of the batch at `time`.
    fn save_task(&self, task: &Task, time: crate::time::Time) -> crate::error::Result<Vec<u8>>;
    /// Forgets every task's state (what the instance's own checkpoint restored), before the
    /// tasks this instance owns are restored from their own checkpoints.
    fn clear_tasks(&self);
    /// Takes back `task`'s saved state.
    fn restore_task(&self, task: &Task, bytes: &[u8]) -> crate::error::Result<()>;
}

/// Where an instance keeps its own checkpoint inside the shared directory `root`.
pub(crate) fn instance_dir(root: &std::path::Path, instance: &Instance) -> std::path::PathBuf {
    root.join(format!("instance-{}", instance.index))
}
