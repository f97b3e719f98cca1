//! `ConsumerStrategy`: which partitions a direct stream reads, and from where (Spark's
//! `ConsumerStrategies.Subscribe`, `SubscribePattern` and `Assign`).

use std::collections::BTreeMap;

use super::range::TopicPartition;

/// Which partitions the stream reads, each form with optional starting offsets.
///
/// Where each partition starts: the offsets in the checkpoint when the job resumes from one,
/// else the offsets given here, else the group's committed offset, else `auto.offset.reset`.
///
/// ```
/// use cargo_stream_runtime::kafka::{ConsumerStrategy, TopicPartition};
/// let all = ConsumerStrategy::subscribe(["lines", "more-lines"]);
/// let matching = ConsumerStrategy::subscribe_pattern("^logs-.*");
/// let fixed = ConsumerStrategy::assign([TopicPartition::new("lines", 0)])
///     .with_offsets([(TopicPartition::new("lines", 0), 42)]);
/// assert_eq!(fixed.offsets()[&TopicPartition::new("lines", 0)], 42);
/// # let _ = (all, matching);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerStrategy {
    pub(crate) kind: Strategy,
    pub(crate) offsets: BTreeMap<TopicPartition, i64>,
}

/// The three ways of choosing partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Every partition of these topics (new partitions included, as they appear).
    Subscribe(Vec<String>),
    /// Every partition of every topic whose name matches this regular expression.
    SubscribePattern(String),
    /// Exactly these partitions.
    Assign(Vec<TopicPartition>),
}

impl ConsumerStrategy {
    /// Every partition of `topics` (Spark's `Subscribe`).
    pub fn subscribe<S: Into<String>>(topics: impl IntoIterator<Item = S>) -> Self {
        Self::of(Strategy::Subscribe(
            topics.into_iter().map(Into::into).collect(),
        ))
    }

    /// Every partition of the topics whose names match `regex` (Spark's `SubscribePattern`),
    /// topics created later included.
    pub fn subscribe_pattern(regex: impl Into<String>) -> Self {
        Self::of(Strategy::SubscribePattern(regex.into()))
    }

    /// Exactly `partitions` (Spark's `Assign`).
    pub fn assign(partitions: impl IntoIterator<Item = TopicPartition>) -> Self {
        Self::of(Strategy::Assign(partitions.into_iter().collect()))
    }

    /// The same strategy starting the given partitions at the given offsets (when the job does
    /// not resume from a checkpoint).
    pub fn with_offsets(
        mut self,
        offsets: impl IntoIterator<Item = (TopicPartition, i64)>,
    ) -> Self {
        self.offsets.extend(offsets);
        self
    }

    /// The starting offsets given.
    pub fn offsets(&self) -> &BTreeMap<TopicPartition, i64> {
        &self.offsets
    }

    fn of(kind: Strategy) -> Self {
        ConsumerStrategy {
            kind,
            offsets: BTreeMap::new(),
        }
    }
}
