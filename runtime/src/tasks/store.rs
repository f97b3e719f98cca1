//! How a keyed stream's keys map to tasks: [`KeyTasks`], made by the Kafka source's keyed
//! stream and found by stateful operations through the graph's lineage.

use std::sync::Arc;

use super::Task;

/// The tasks of a source: the topic its keys are partitioned over and the tasks this
/// instance owns, known once the source has listed its partitions (at `start()`).
pub(crate) trait TaskSource: Send + Sync {
    /// The one topic the stream reads and its partition count; an error when it reads
    /// several topics (keyed state needs one) or has not listed them yet.
    fn topic(&self) -> Result<(String, usize), String>;
    /// The tasks this instance owns, in order.
    fn owned(&self) -> Vec<Task>;
    /// Which instance this is, for messages.
    fn describe_instance(&self) -> String;
}

/// Maps a key of type `K` to its task: `murmur2(key bytes) mod partitions` of the source's
/// topic, as the records were placed.
pub(crate) struct KeyTasks<K> {
    pub(crate) source: Arc<dyn TaskSource>,
    /// The Kafka partition of a key among `n`.
    pub(crate) partition: Box<dyn Fn(&K, usize) -> i32 + Send + Sync>,
    /// Where the keyed stream was made, for messages.
    pub(crate) at: String,
}

impl<K> KeyTasks<K> {
    /// The task of `key`, given the topic and partition count from [`TaskSource::topic`].
    pub(crate) fn task_of(&self, key: &K, topic: &(String, usize)) -> Task {
        Task::new(topic.0.clone(), (self.partition)(key, topic.1))
    }
}
