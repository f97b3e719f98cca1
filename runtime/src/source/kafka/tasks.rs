//! A direct stream's share of the partitions when the job runs as instances: instance `i` of
//! `N` reads the partitions `p` with `p mod N == i` (see [`crate::tasks`]), and the partition
//! counts it saw, which keyed state needs to place keys.

use crate::sync::LockExt;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

use crate::tasks::store::TaskSource;
use crate::tasks::{Instance, Task};

use super::range::TopicPartition;

/// See the module doc.
#[derive(Default)]
pub(crate) struct SourceTasks {
    instance: OnceLock<Instance>,
    /// The partition count of each topic, at the last listing.
    counts: Mutex<BTreeMap<String, usize>>,
    /// The partitions this instance read at the last listing.
    owned: Mutex<BTreeSet<TopicPartition>>,
}

impl SourceTasks {
    /// Runs the stream as `instance`.
    pub(crate) fn set_instance(&self, instance: Instance) {
        let _ = self.instance.set(instance);
    }

    /// The instance the stream runs as, if the job runs as instances.
    pub(crate) fn instance(&self) -> Option<Instance> {
        self.instance.get().copied()
    }

    /// The partitions of `all` this instance reads (all of them without instances); notes the
    /// partition counts.
    pub(crate) fn own(&self, all: BTreeSet<TopicPartition>) -> BTreeSet<TopicPartition> {
        let mut counts = BTreeMap::new();
        for tp in &all {
            let n = counts.entry(tp.topic.clone()).or_insert(0usize);
            *n = (*n).max(tp.partition as usize + 1);
        }
        *self.counts.locked() = counts;
        let owned: BTreeSet<TopicPartition> = match self.instance.get() {
            Some(i) => all.into_iter().filter(|tp| i.owns(tp.partition)).collect(),
            None => all,
        };
        *self.owned.locked() = owned.clone();
        owned
    }

    /// Whether this instance reads `tp` (every partition without instances).
    pub(crate) fn owns(&self, tp: &TopicPartition) -> bool {
        self.instance.get().is_none_or(|i| i.owns(tp.partition))
    }

    /// Keeps, of what a batch log holds (each partition's next offset, the ranges of the
    /// batches generated after its checkpoint), the partitions this instance reads: a log
    /// written under another instance count holds partitions another instance reads now,
    /// whose offsets come from their tasks' checkpoints.
    pub(crate) fn keep_owned(
        &self,
        current: &mut Vec<(TopicPartition, i64)>,
        pending: &mut Vec<(u64, Vec<super::range::OffsetRange>)>,
    ) {
        current.retain(|(tp, _)| self.owns(tp));
        for (_, ranges) in pending.iter_mut() {
            ranges.retain(|r| self.owns(&r.topic_partition()));
        }
        pending.retain(|(_, ranges)| !ranges.is_empty());
    }

    /// The partition counts seen.
    pub(crate) fn counts(&self) -> BTreeMap<String, usize> {
        self.counts.locked().clone()
    }
}

impl TaskSource for SourceTasks {
    fn topic(&self) -> Result<(String, usize), String> {
        let counts = self.counts.locked();
        let mut it = counts.iter();
        match (it.next(), it.next()) {
            (Some((t, n)), None) => Ok((t.clone(), *n)),
            (None, _) => Err("the direct Kafka stream has not listed its partitions yet".into()),
            (Some(_), Some(_)) => Err(format!(
                "the stream reads {} topics ({}): keyed state is kept per partition of one topic; read each topic with its own direct stream",
                counts.len(),
                counts
                    .keys()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    fn owned(&self) -> Vec<Task> {
        self.owned
            .locked()
            .iter()
            .map(|tp| Task::new(tp.topic.clone(), tp.partition))
            .collect()
    }

    fn describe_instance(&self) -> String {
        match self.instance.get() {
            Some(i) => i.to_string(),
            None => "the only instance".into(),
        }
    }
}
