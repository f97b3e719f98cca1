//! `Unwritten`: the parts of a batch's offset ranges that PostgreSQL does not hold yet, the
//! records a write must take its results from.

use std::sync::Arc;

use super::super::range::OffsetRange;
use super::super::record::ConsumerRecord;

/// The records of a batch still to be written: for each partition, from the end PostgreSQL
/// holds (or the range's start) to the range's end. The batch's own ranges, unless it was
/// written in part before under other ranges (a restart from a checkpoint older than the last
/// batch written regenerates the batches after it with new ranges): then the write must take
/// its results from these records only, or count the others twice.
///
/// Cheap to clone (to move into a batch's closures).
///
/// A job adding the bytes of each batch's records to a table, exactly once:
///
/// ```no_run
/// use cargo_stream_runtime::kafka::postgres::OffsetStore;
/// use cargo_stream_runtime::kafka::{ConsumerRecord, ConsumerStrategy, KafkaParams, KafkaUtils};
/// use cargo_stream_runtime::prelude::*;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = OffsetStore::connect("host=127.0.0.1 user=postgres dbname=stream", "volume")?;
/// let ssc = StreamingContext::new(StreamingConf::new("volume").master("local[2]"), Seconds(1))?;
/// let params = KafkaParams::new()
///     .set("bootstrap.servers", "127.0.0.1:9092")
///     .set("group.id", "volume");
/// let strategy =
///     ConsumerStrategy::subscribe(["clicks"]).with_offsets(store.starting_offsets(["clicks"])?);
/// let stream = KafkaUtils::create_direct_stream(&ssc, strategy, params);
/// stream.foreach_rdd(move |batch: &Batch<ConsumerRecord>, _time| {
///     let ranges = batch.offset_ranges().unwrap_or_default().to_vec();
///     store
///         .write_batch(&ranges, |tx, unwritten| {
///             let keep = unwritten.clone();
///             let bytes: i64 = batch
///                 .clone()
///                 .filter(move |r| keep.contains_record(r))
///                 .map(|r| r.value().map_or(0, |v| v.len() as i64))
///                 .collect()
///                 .iter()
///                 .sum();
///             tx.execute("INSERT INTO volume (bytes) VALUES ($1)", &[&bytes])?;
///             Ok(())
///         })
///         // Fails the batch, and the job, with the error; nothing of the batch is written.
///         .unwrap_or_else(|e| panic!("{e}"));
/// })?;
/// ssc.start()?;
/// ssc.await_termination()?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unwritten {
    ranges: Arc<[OffsetRange]>,
    whole: bool,
}

impl Unwritten {
    pub(super) fn new(ranges: Vec<OffsetRange>, batch: &[OffsetRange]) -> Self {
        Unwritten {
            whole: ranges == batch,
            ranges: ranges.into(),
        }
    }

    /// The ranges still to be written, one per partition of the batch (empty for a partition
    /// written to its end before).
    pub fn ranges(&self) -> &[OffsetRange] {
        &self.ranges
    }

    /// Whether they are the batch's own ranges, whole (the usual case: no filtering needed).
    pub fn is_whole(&self) -> bool {
        self.whole
    }

    /// Whether the record at `offset` of `topic`'s partition `partition` is to be written.
    pub fn contains(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.ranges.iter().any(|r| {
            r.partition == partition
                && r.topic == topic
                && r.from_offset <= offset
                && offset < r.until_offset
        })
    }

    /// Whether `record` is to be written.
    pub fn contains_record(&self, record: &ConsumerRecord) -> bool {
        self.contains(record.topic(), record.partition(), record.offset())
    }
}
