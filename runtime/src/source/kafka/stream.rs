//! The public face of the direct stream: [`KafkaUtils::create_direct_stream`], the
//! [`DirectKafkaStream`] it returns and the [`OffsetCommitter`] handle (Spark's
//! `CanCommitOffsets`).

use crate::sync::LockExt;
use std::panic::Location;
use std::sync::{Arc, Mutex, Weak};

use crate::StreamingContext;
use crate::dstream::DStream;
use crate::dstream::node::Node;
use crate::engine::Shared;
use crate::error::Error;
use crate::time::Time;

use super::limits::Limits;
use super::params::KafkaParams;
use super::range::OffsetRange;
use super::record::ConsumerRecord;
use super::source::{DirectKafkaSource, Settings};
use super::strategy::ConsumerStrategy;

/// Spark's `KafkaUtils` for the 0-10 integration: the entry point of the direct stream.
pub struct KafkaUtils;

impl KafkaUtils {
    /// A stream of the records of the partitions `strategy` names, read with `params`
    /// (`bootstrap.servers`, `group.id`, `auto.offset.reset`, `isolation.level`, security
    /// settings: librdkafka's names, which are the Java client's), as Spark's
    /// `KafkaUtils.createDirectStream` with `PreferConsistent`.
    ///
    /// At each batch time the driver fixes one [`OffsetRange`] per partition, from where the
    /// last batch ended to the latest offset (the last stable offset with
    /// `isolation.level=read_committed`), capped by
    /// [`kafka_max_rate_per_partition`](crate::StreamingConf::kafka_max_rate_per_partition)
    /// and, with [`backpressure`](crate::StreamingConf::backpressure), by the rate the job
    /// sustains, split across partitions by lag. The batch reads exactly those ranges, one
    /// batch partition per Kafka partition, on the worker threads; in `foreach_rdd` and
    /// `transform` the batch's [`offset_ranges`](crate::Batch::offset_ranges) tell them.
    ///
    /// Each partition starts at the offset in the checkpoint when the job resumes from one
    /// (unfinished batches are first regenerated with the same ranges), else the strategy's
    /// offset, else the group's committed offset, else per `auto.offset.reset` (`latest` by
    /// default, as Kafka's). Offsets the brokers no longer hold fail the job with an error
    /// naming the partition: the stream never jumps over lost records.
    ///
    /// `start()` fails with a message naming the problem when the brokers cannot be reached
    /// within [`kafka_driver_timeout`](crate::StreamingConf::kafka_driver_timeout), a topic
    /// does not exist, two direct streams of the context share a `group.id`, or the group has
    /// active members elsewhere (another job or consumer subscribed with it). The driver does
    /// not join the group: it lists the partitions itself at each batch, so no rebalance can
    /// take partitions away; partitions that disappear fail the batch saying what to do.
    ///
    /// ```no_run
    /// use cargo_stream_runtime::prelude::*;
    /// use cargo_stream_runtime::kafka::{ConsumerStrategy, KafkaParams, KafkaUtils};
    ///
    /// let ssc = StreamingContext::new(StreamingConf::new("kafka-word-count").master("local[2]"), Seconds(1))?;
    /// let params = KafkaParams::new()
    ///     .set("bootstrap.servers", "127.0.0.1:9092")
    ///     .set("group.id", "word-count")
    ///     .set("auto.offset.reset", "earliest");
    /// let stream = KafkaUtils::create_direct_stream(&ssc, ConsumerStrategy::subscribe(["lines"]), params);
    /// let committer = stream.committer();
    /// stream.foreach_rdd(move |batch, _time| {
    ///     let ranges = batch.offset_ranges().unwrap_or_default().to_vec();
    ///     for record in batch.collect() {
    ///         println!("{}: {}", record.offset(), record.value_lossy());
    ///     }
    ///     committer.commit_async(&ranges);
    /// })?;
    /// ssc.start()?;
    /// ssc.await_termination()?;
    /// # Ok::<(), cargo_stream_runtime::Error>(())
    /// ```
    #[track_caller]
    pub fn create_direct_stream(
        ssc: &StreamingContext,
        strategy: ConsumerStrategy,
        params: KafkaParams,
    ) -> DirectKafkaStream {
        let at = Location::caller();
        let sh = &ssc.shared;
        sh.assert_initialized("`create_direct_stream`");
        let conf = &sh.conf;
        let settings = Settings {
            limits: Limits {
                max_rate_per_partition: conf.kafka_max_rate_per_partition,
                min_rate_per_partition: conf.kafka_min_rate_per_partition,
                batch_secs: conf.batch_interval.as_secs_f64(),
            },
            backpressure: conf.backpressure,
            initial_rate: conf.backpressure_initial_rate,
            batch_interval: conf.batch_interval,
            poll_timeout: conf.kafka_poll_timeout,
            driver_timeout: conf.kafka_driver_timeout,
        };
        if let Some(group) = params.get("group.id") {
            check_group(sh, group, at);
        }
        let source = Arc::new(DirectKafkaSource::new(
            strategy,
            params,
            settings,
            sh.exec.clone(),
            (sh.zero_time.clone(), sh.clock.clone()),
            at,
        ));
        if let Some(instance) = conf.instance {
            source.tasks.set_instance(instance);
        }
        sh.add_input(source.clone());
        sh.graph_mut().register_checkpointed_at(source.clone(), at);
        let s = source.clone();
        let compute = Box::new(move |t| s.compute(t));
        let stream = DStream::from_node(
            sh.clone(),
            Node::new("direct_kafka_stream", ssc.batch_interval(), compute),
        );
        sh.graph_mut().lineage.mark_kafka(
            crate::tasks::lineage::node_id(&stream.node),
            at,
            source.clone(),
        );
        DirectKafkaStream { stream, source }
    }
}

/// The group ids of the direct streams of each live context.
static GROUPS: Mutex<Vec<(Weak<Shared>, String, String)>> = Mutex::new(Vec::new());

/// Two direct streams of one context with one `group.id` would commit over each other's
/// offsets (and, in Spark, take each other's partitions): refused by `start()`.
fn check_group(sh: &Arc<Shared>, group: &str, at: &'static Location<'static>) {
    let mut groups = GROUPS.locked();
    groups.retain(|(w, _, _)| w.strong_count() > 0);
    let other = groups
        .iter()
        .find(|(w, g, _)| g == group && std::ptr::eq(w.as_ptr(), Arc::as_ptr(sh)))
        .map(|(_, _, a)| a.clone());
    if let Some(first) = other {
        sh.graph_mut().problems.push(Error::InvalidSetting {
            name: "group.id",
            why: format!(
                "the direct Kafka streams created at {first} and at {at} both use group `{group}`; a group's offsets belong to one stream: give each stream its own `group.id`, or read both topics with one stream (`ConsumerStrategy::subscribe([a, b])`)"
            ),
        });
    }
    groups.push((Arc::downgrade(sh), group.to_owned(), at.to_string()));
}

/// The stream [`KafkaUtils::create_direct_stream`] returns: a `DStream<ConsumerRecord>`
/// (through `Deref`, so every DStream operation applies) that can also commit offsets to the
/// group (Spark's `CanCommitOffsets`) and tell the ranges of a running batch. Cheap to clone.
#[derive(Clone)]
pub struct DirectKafkaStream {
    pub(super) stream: DStream<ConsumerRecord>,
    pub(super) source: Arc<DirectKafkaSource>,
}

impl std::ops::Deref for DirectKafkaStream {
    type Target = DStream<ConsumerRecord>;

    fn deref(&self) -> &DStream<ConsumerRecord> {
        &self.stream
    }
}

impl DirectKafkaStream {
    /// The stream of records, as a plain `DStream` (to store or pass by value).
    pub fn stream(&self) -> DStream<ConsumerRecord> {
        self.stream.clone()
    }

    /// Queues `ranges` to be committed to the stream's `group.id` (each partition at its
    /// range's `until_offset`), as Spark's `commitAsync`: the driver commits them after the
    /// current batch's output operations have all run (and its checkpoint, if due, is
    /// written), never before. Commits are for lag tools and for starting a new job where this
    /// one stopped; a restart from the checkpoint does not read them.
    pub fn commit_async(&self, ranges: &[OffsetRange]) {
        self.committer().commit_async(ranges);
    }

    /// A handle with the same [`commit_async`](OffsetCommitter::commit_async), to move into
    /// `foreach_rdd` closures.
    pub fn committer(&self) -> OffsetCommitter {
        OffsetCommitter {
            queue: self.source.commits.clone(),
        }
    }

    /// The offset ranges of the batch at `time`, while that batch runs (and before, once
    /// generated): for an output on a transformed stream, whose batches no longer carry them.
    ///
    /// ```no_run
    /// # use cargo_stream_runtime::prelude::*;
    /// # use cargo_stream_runtime::kafka::*;
    /// # let ssc = StreamingContext::new(StreamingConf::new("t").master("local[2]"), Seconds(1))?;
    /// # let params = KafkaParams::new().set("bootstrap.servers", "127.0.0.1:9092");
    /// let stream = KafkaUtils::create_direct_stream(&ssc, ConsumerStrategy::subscribe(["lines"]), params);
    /// let ranges = stream.clone();
    /// stream
    ///     .map(|r| r.value_lossy().len())
    ///     .foreach_rdd(move |lengths, time| {
    ///         let read = ranges.offset_ranges_at(time).unwrap_or_default();
    ///         println!("{} records from {read:?}", lengths.count());
    ///     })?;
    /// # Ok::<(), cargo_stream_runtime::Error>(())
    /// ```
    pub fn offset_ranges_at(&self, time: Time) -> Option<Vec<OffsetRange>> {
        self.source.ranges_at(time)
    }
}

/// A handle to queue offset commits of a [`DirectKafkaStream`] from inside output operations
/// (Spark's `CanCommitOffsets`). Clone, send and share it freely.
#[derive(Clone)]
pub struct OffsetCommitter {
    queue: Arc<Mutex<Vec<OffsetRange>>>,
}

impl OffsetCommitter {
    /// As [`DirectKafkaStream::commit_async`].
    pub fn commit_async(&self, ranges: &[OffsetRange]) {
        self.queue.locked().extend_from_slice(ranges);
    }
}
