//! Topic partitions and the offset ranges a batch reads (Spark's `OffsetRange`).

use serde::{Deserialize, Serialize};

/// A partition of a topic (Kafka's `TopicPartition`).
///
/// ```
/// use cargo_stream_runtime::kafka::TopicPartition;
/// let tp = TopicPartition::new("lines", 2);
/// assert_eq!(tp.to_string(), "lines-2");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// Partition `partition` of `topic`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    /// `topic-partition`, as Kafka prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// The records of one partition a batch reads: offsets `from_offset` (inclusive) to
/// `until_offset` (exclusive), as Spark's `OffsetRange`.
///
/// ```
/// use cargo_stream_runtime::kafka::OffsetRange;
/// let r = OffsetRange::new("lines", 0, 10, 25);
/// assert_eq!(r.count(), 15);
/// assert_eq!(r.to_string(), "lines-0 [10, 25)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OffsetRange {
    /// The topic.
    pub topic: String,
    /// The partition number.
    pub partition: i32,
    /// The first offset of the range.
    pub from_offset: i64,
    /// The offset after the range's last (exclusive end).
    pub until_offset: i64,
}

impl OffsetRange {
    /// The range `[from_offset, until_offset)` of `topic`'s partition `partition`.
    pub fn new(
        topic: impl Into<String>,
        partition: i32,
        from_offset: i64,
        until_offset: i64,
    ) -> Self {
        OffsetRange {
            topic: topic.into(),
            partition,
            from_offset,
            until_offset,
        }
    }

    /// The partition the range is of.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.topic.clone(), self.partition)
    }

    /// The number of offsets in the range (records, unless the partition is compacted or holds
    /// transaction markers).
    pub fn count(&self) -> i64 {
        self.until_offset - self.from_offset
    }
}

impl std::fmt::Display for OffsetRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{} [{}, {})",
            self.topic, self.partition, self.from_offset, self.until_offset
        )
    }
}
