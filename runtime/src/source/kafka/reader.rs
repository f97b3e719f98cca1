//! The workers' side (Spark's `KafkaRDD` and its cached consumers): each partition of a
//! batch reads exactly its [`OffsetRange`], with a consumer kept per Kafka partition between
//! batches (its prefetched records serve the next range), every wait bounded.

use crate::sync::LockExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::client::{LogContext, base_config, creation_error, reader_group};
use super::params::KafkaParams;
use super::range::{OffsetRange, TopicPartition};
use super::record::ConsumerRecord;

/// The workers' consumer context: librdkafka's logs through `tracing`.
pub(crate) struct ReaderContext(LogContext);

impl rdkafka::ClientContext for ReaderContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        self.0.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.0.error(error, reason);
    }
}

impl rdkafka::consumer::ConsumerContext for ReaderContext {}

/// A consumer assigned to one partition, and the offset its queue continues at.
struct Reader {
    consumer: BaseConsumer<ReaderContext>,
    /// The next offset the consumer's queue gives, when it is known (after a range that
    /// ended exactly at its end); else the next range seeks.
    next: Option<i64>,
}

/// The consumers of one direct stream, one per Kafka partition (at most [`MAX_CACHED`]).
pub(crate) struct Readers {
    params: KafkaParams,
    bootstrap: String,
    poll_timeout: Duration,
    cache: Mutex<HashMap<TopicPartition, Arc<Mutex<Reader>>>>,
    no_headers: Arc<[(String, Option<Vec<u8>>)]>,
}

/// Spark's `spark.streaming.kafka.consumer.cache.maxCapacity` default.
const MAX_CACHED: usize = 64;

/// What a poll waits at most before checking the position and the deadline again.
const POLL_SLICE: Duration = Duration::from_millis(100);

impl Readers {
    pub(crate) fn new(params: KafkaParams, poll_timeout: Duration) -> Self {
        let bootstrap = params.get("bootstrap.servers").unwrap_or("").to_owned();
        Readers {
            params,
            bootstrap,
            poll_timeout,
            cache: Mutex::default(),
            no_headers: Arc::from(Vec::new()),
        }
    }

    fn reader(&self, tp: &TopicPartition) -> Result<Arc<Mutex<Reader>>, String> {
        let mut cache = self.cache.locked();
        if let Some(r) = cache.get(tp) {
            return Ok(r.clone());
        }
        if cache.len() >= MAX_CACHED {
            // Drop an idle one (not in use by another worker).
            if let Some(k) = cache
                .iter()
                .find(|(_, r)| Arc::strong_count(r) == 1)
                .map(|(k, _)| k.clone())
            {
                cache.remove(&k);
            }
        }
        let mut config = base_config(&self.params, false);
        config
            .set("group.id", reader_group(&self.params))
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "error");
        if self.params.get("queued.max.messages.kbytes").is_none() {
            // Bounds the records prefetched per partition (librdkafka's default is 64 MiB).
            config.set("queued.max.messages.kbytes", "16384");
        }
        let consumer = config
            .create_with_context(ReaderContext(LogContext::new(&self.bootstrap)))
            .map_err(|e| {
                format!(
                    "cannot create a Kafka consumer for `{tp}`: {}",
                    creation_error(&e)
                )
            })?;
        let r = Arc::new(Mutex::new(Reader {
            consumer,
            next: None,
        }));
        cache.insert(tp.clone(), r.clone());
        Ok(r)
    }

    /// Exactly the records of `range`: those with offsets from `from_offset` up to (not
    /// including) `until_offset`, whether or not offsets are consecutive (compaction,
    /// transaction markers). Fails when nothing arrives for the poll timeout.
    pub(crate) fn read(&self, range: &OffsetRange) -> Result<Vec<ConsumerRecord>, String> {
        if range.count() <= 0 {
            return Ok(Vec::new());
        }
        let tp = range.topic_partition();
        let reader = self.reader(&tp)?;
        let mut reader = reader.locked();
        let (from, until) = (range.from_offset, range.until_offset);
        if reader.next != Some(from) {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(from))
                .map_err(|e| format!("cannot read `{range}`: {e}"))?;
            reader
                .consumer
                .assign(&tpl)
                .map_err(|e| format!("cannot read `{range}`: {e}"))?;
            reader.next = Some(from);
        }
        let topic: Arc<str> = Arc::from(range.topic.as_str());
        let mut out = Vec::with_capacity(range.count().min(1 << 20) as usize);
        let mut deadline = Instant::now() + self.poll_timeout;
        let mut last_error = None;
        loop {
            let idle = match reader.consumer.poll(POLL_SLICE) {
                Some(Ok(m)) => {
                    let offset = m.offset();
                    if offset < from {
                        continue;
                    }
                    deadline = Instant::now() + self.poll_timeout;
                    if offset >= until {
                        // Past the range (offsets are not consecutive): this record is the
                        // next range's, and it left the queue, so that range seeks.
                        reader.next = None;
                        break;
                    }
                    out.push(self.record(&topic, &m));
                    if offset == until - 1 {
                        reader.next = Some(until);
                        break;
                    }
                    false
                }
                Some(Err(KafkaError::PartitionEOF(_))) | None => true,
                Some(Err(KafkaError::MessageConsumption(code)))
                    if code == RDKafkaErrorCode::OffsetOutOfRange
                        || code == RDKafkaErrorCode::AutoOffsetReset =>
                {
                    reader.next = None;
                    return Err(out_of_range(range, &self.bootstrap));
                }
                Some(Err(e)) => {
                    last_error = Some(e.to_string());
                    true
                }
            };
            if idle {
                // The end may be a transaction marker or a compacted record: the consumer's
                // position passes it without a record.
                if position(&reader.consumer, &tp).is_some_and(|p| p >= until) {
                    reader.next = None;
                    break;
                }
                if Instant::now() >= deadline {
                    reader.next = None;
                    let got = out.last().map_or("no record".to_owned(), |r| {
                        format!("records up to offset {}", r.offset())
                    });
                    return Err(format!(
                        "could not read `{range}` from the Kafka brokers at `{}` within {} ms ({got}){}; check that the brokers are up and hold the partition, or raise `kafka_poll_timeout`",
                        self.bootstrap,
                        self.poll_timeout.as_millis(),
                        last_error
                            .map(|e| format!(", last error: {e}"))
                            .unwrap_or_default()
                    ));
                }
            }
        }
        Ok(out)
    }

    fn record(
        &self,
        topic: &Arc<str>,
        m: &rdkafka::message::BorrowedMessage<'_>,
    ) -> ConsumerRecord {
        let headers = match m.headers() {
            Some(h) if h.count() > 0 => h
                .iter()
                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                .collect::<Vec<_>>()
                .into(),
            _ => self.no_headers.clone(),
        };
        ConsumerRecord::read(
            topic.clone(),
            m.partition(),
            m.offset(),
            m.timestamp().to_millis(),
            m.key(),
            m.payload(),
            headers,
        )
    }
}

/// The consumer's position in `tp` (the offset after the last record or marker it passed).
fn position(consumer: &BaseConsumer<ReaderContext>, tp: &TopicPartition) -> Option<i64> {
    let p = consumer.position().ok()?;
    match p.find_partition(&tp.topic, tp.partition)?.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

/// The error for a range whose records the broker no longer (or not yet) holds.
pub(crate) fn out_of_range(range: &OffsetRange, bootstrap: &str) -> String {
    format!(
        "offsets out of range: `{range}` is not held by the Kafka brokers at `{bootstrap}` (retention deleted the records, or the topic was recreated); the stream does not jump over lost records: to accept the loss, restart without the checkpoint with `auto.offset.reset` set to `earliest` or `latest`, or with starting offsets (`ConsumerStrategy::with_offsets`)"
    )
}
