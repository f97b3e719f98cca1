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
use rdkafka::ClientConfig;

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
    /// The readers' `fetch.wait.max.ms` unless the params set it (see [`fetch_wait`]).
    fetch_wait_ms: u128,
    bootstrap: String,
    poll_timeout: Duration,
    cache: Mutex<HashMap<TopicPartition, Arc<Mutex<Reader>>>>,
    no_headers: Arc<[(String, Option<Vec<u8>>)]>,
}

/// Spark's `spark.streaming.kafka.consumer.cache.maxCapacity` default.
const MAX_CACHED: usize = 64;

/// The readers' `fetch.queue.backoff.ms` unless the params set it.
pub(crate) const FETCH_QUEUE_BACKOFF_MS: &str = "10";

/// How long a reader's fetch may wait at the broker for new records (`fetch.wait.max.ms`):
/// half a batch interval, from 10 to 500 ms (librdkafka's default). A broker that holds an
/// empty fetch for all of it (Tansu does, Kafka answers as soon as a record comes) delays the
/// records produced meanwhile by up to that much: at librdkafka's 500 ms, a batch of 100 ms
/// batches waited 2 to 3 intervals for its records (median produce-to-output 244 ms against
/// 81 ms at 50 ms, measured). An idle partition costs one empty fetch per wait.
pub(crate) fn fetch_wait(batch_interval: Duration) -> Duration {
    (batch_interval / 2).clamp(Duration::from_millis(10), Duration::from_millis(500))
}

/// What a poll waits at most before checking the position and the deadline again.
const POLL_SLICE: Duration = Duration::from_millis(100);

impl Readers {
    pub(crate) fn new(
        params: KafkaParams,
        poll_timeout: Duration,
        batch_interval: Duration,
    ) -> Self {
        let bootstrap = params.get("bootstrap.servers").unwrap_or("").to_owned();
        Readers {
            params,
            fetch_wait_ms: fetch_wait(batch_interval).as_millis(),
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
        let config = reader_config(&self.params, self.fetch_wait_ms);
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

    /// Positions the consumer of each of `ranges` at its start, so that every partition of a
    /// batch is fetched at once, in librdkafka's threads, before (and while) the worker
    /// threads read them; a consumer already there (its queue goes on at the start) is left
    /// as it is. Errors are left for [`Readers::read`] to report.
    pub(crate) fn prefetch(&self, ranges: &[OffsetRange]) {
        for range in ranges.iter().filter(|r| r.count() > 0) {
            let tp = range.topic_partition();
            // A consumer in use (a read of another batch) is left to its reader.
            if let Ok(reader) = self.reader(&tp)
                && let Ok(mut reader) = reader.try_lock()
            {
                let _ = seek(&mut reader, &tp, range);
            }
        }
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
        seek(&mut reader, &tp, range)?;
        let reader = &mut *reader;
        let mut feed = ConsumerFeed {
            consumer: &reader.consumer,
            tp: &tp,
            topic: Arc::from(range.topic.as_str()),
            readers: self,
        };
        read_range(
            &mut feed,
            range,
            &mut reader.next,
            self.poll_timeout,
            &self.bootstrap,
        )
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

/// Assigns `reader` to `tp` from the start of `range`, unless its queue goes on there.
fn seek(reader: &mut Reader, tp: &TopicPartition, range: &OffsetRange) -> Result<(), String> {
    let from = range.from_offset;
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
    Ok(())
}

/// What one poll of a partition's consumer gave.
pub(crate) enum Polled<R> {
    /// A record at this offset.
    Record(i64, R),
    /// Nothing within the poll (or the end of the partition for now).
    Idle,
    /// The broker does not hold the offset asked for.
    OutOfRange,
    /// Another error, kept for the message if the read times out.
    Error(String),
}

/// One partition's records as a read sees them: the seam between [`read_range`] and
/// librdkafka (a fake in the tests gives offsets with gaps).
pub(crate) trait PartitionFeed {
    type Record;
    /// The next record, waiting at most `timeout`.
    fn poll(&mut self, timeout: Duration) -> Polled<Self::Record>;
    /// The offset after the last record or marker the consumer passed, when known.
    fn position(&self) -> Option<i64>;
}

/// A cached consumer, assigned to `tp`, as a [`PartitionFeed`].
struct ConsumerFeed<'a> {
    consumer: &'a BaseConsumer<ReaderContext>,
    tp: &'a TopicPartition,
    topic: Arc<str>,
    readers: &'a Readers,
}

impl PartitionFeed for ConsumerFeed<'_> {
    type Record = ConsumerRecord;

    fn poll(&mut self, timeout: Duration) -> Polled<ConsumerRecord> {
        match self.consumer.poll(timeout) {
            Some(Ok(m)) => Polled::Record(m.offset(), self.readers.record(&self.topic, &m)),
            Some(Err(KafkaError::PartitionEOF(_))) | None => Polled::Idle,
            Some(Err(KafkaError::MessageConsumption(code)))
                if code == RDKafkaErrorCode::OffsetOutOfRange
                    || code == RDKafkaErrorCode::AutoOffsetReset =>
            {
                Polled::OutOfRange
            }
            Some(Err(e)) => Polled::Error(e.to_string()),
        }
    }

    fn position(&self) -> Option<i64> {
        position(self.consumer, self.tp)
    }
}

/// Exactly the records of `range` from `feed`: offsets from `from_offset` up to (not
/// including) `until_offset`, whether or not offsets are consecutive (compaction, transaction
/// markers): a record at or past `until_offset`, or a position there, ends the read.
/// `next` is where the feed's queue continues once the read is done, when known. Fails when
/// nothing arrives for `poll_timeout`.
pub(crate) fn read_range<F: PartitionFeed>(
    feed: &mut F,
    range: &OffsetRange,
    next: &mut Option<i64>,
    poll_timeout: Duration,
    bootstrap: &str,
) -> Result<Vec<F::Record>, String> {
    let (from, until) = (range.from_offset, range.until_offset);
    let mut out = Vec::with_capacity(range.count().clamp(0, 1 << 20) as usize);
    let mut last_offset = None;
    let mut deadline = Instant::now() + poll_timeout;
    let mut last_error = None;
    loop {
        let idle = match feed.poll(POLL_SLICE) {
            Polled::Record(offset, record) => {
                if offset < from {
                    continue;
                }
                deadline = Instant::now() + poll_timeout;
                if offset >= until {
                    // Past the range (offsets are not consecutive): this record is the next
                    // range's, and it left the queue, so that range seeks.
                    *next = None;
                    break;
                }
                out.push(record);
                last_offset = Some(offset);
                if offset == until - 1 {
                    *next = Some(until);
                    break;
                }
                false
            }
            Polled::Idle => true,
            Polled::OutOfRange => {
                *next = None;
                return Err(out_of_range(range, bootstrap));
            }
            Polled::Error(e) => {
                last_error = Some(e);
                true
            }
        };
        if idle {
            // The end may be a transaction marker or a compacted record: the consumer's
            // position passes it without a record.
            if feed.position().is_some_and(|p| p >= until) {
                *next = None;
                break;
            }
            if Instant::now() >= deadline {
                *next = None;
                let got = last_offset.map_or("no record".to_owned(), |o| {
                    format!("records up to offset {o}")
                });
                return Err(format!(
                    "could not read `{range}` from the Kafka brokers at `{bootstrap}` within {} ms ({got}){}; check that the brokers are up and hold the partition, or raise `kafka_poll_timeout`",
                    poll_timeout.as_millis(),
                    last_error
                        .map(|e| format!(", last error: {e}"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    Ok(out)
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

/// The configuration of a partition reader's consumer: the job's params, then the readers'
/// defaults for what the params leave unset (bounded prefetch, the fetch wait, a short fetch
/// back-off).
fn reader_config(params: &KafkaParams, fetch_wait_ms: u128) -> ClientConfig {
    let mut config = base_config(params, false);
    config
        .set("group.id", reader_group(params))
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "error");
    if params.get("queued.max.messages.kbytes").is_none() {
        // Bounds the records prefetched per partition (librdkafka's default is 64 MiB).
        config.set("queued.max.messages.kbytes", "16384");
    }
    if params.get("fetch.wait.max.ms").is_none() {
        config.set("fetch.wait.max.ms", fetch_wait_ms.to_string());
    }
    if params.get("fetch.queue.backoff.ms").is_none() {
        // Once a partition's prefetch queue is full, librdkafka waits this long before it
        // fetches again (1 s by default): a worker that empties the queue in 100 ms would
        // then wait 900 ms for the rest of its range (a 3-4× slower read, measured).
        config.set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS);
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_fetch_again_after_10_ms_not_librdkafkas_second_unless_told() {
        let params = KafkaParams::new().set("bootstrap.servers", "127.0.0.1:1");
        let config = reader_config(&params, 100);
        assert_eq!(
            config.get("fetch.queue.backoff.ms"),
            Some(FETCH_QUEUE_BACKOFF_MS)
        );
        assert_eq!(config.get("fetch.wait.max.ms"), Some("100"));
        assert_eq!(config.get("queued.max.messages.kbytes"), Some("16384"));
        let told = params.set("fetch.queue.backoff.ms", "250");
        assert_eq!(
            reader_config(&told, 100).get("fetch.queue.backoff.ms"),
            Some("250")
        );
    }
    use std::collections::VecDeque;

    /// A partition whose offsets have gaps: `records` in order, then nothing; the position
    /// after the last record is `end` (markers or compacted records the consumer passed).
    struct Gaps {
        records: VecDeque<i64>,
        position: i64,
        end: i64,
        polls: usize,
    }

    impl Gaps {
        fn new(offsets: &[i64], from: i64, end: i64) -> Self {
            Gaps {
                records: offsets.iter().copied().filter(|o| *o >= from).collect(),
                position: from,
                end,
                polls: 0,
            }
        }
    }

    impl PartitionFeed for Gaps {
        type Record = i64;
        fn poll(&mut self, _: Duration) -> Polled<i64> {
            self.polls += 1;
            match self.records.pop_front() {
                Some(o) => {
                    self.position = o + 1;
                    Polled::Record(o, o)
                }
                None => {
                    self.position = self.end;
                    Polled::Idle
                }
            }
        }
        fn position(&self) -> Option<i64> {
            Some(self.position)
        }
    }

    const OFFSETS: &[i64] = &[0, 1, 3, 4, 7, 9, 10];

    fn read(feed: &mut Gaps, from: i64, until: i64) -> (Result<Vec<i64>, String>, Option<i64>) {
        let mut next = Some(from);
        let r = read_range(
            feed,
            &OffsetRange::new("t", 0, from, until),
            &mut next,
            Duration::from_millis(50),
            "127.0.0.1:9092",
        );
        (r, next)
    }

    #[test]
    fn a_read_stops_at_until_offset_when_offsets_have_gaps() {
        // The range ends on a record: the queue goes on at `until` for the next range.
        let mut feed = Gaps::new(OFFSETS, 1, 11);
        assert_eq!(read(&mut feed, 1, 8), (Ok(vec![1, 3, 4, 7]), Some(8)));
        // The range ends in a gap (8 was compacted away): the record at 9 ends it unread,
        // and the next range seeks.
        let mut feed = Gaps::new(OFFSETS, 3, 11);
        assert_eq!(read(&mut feed, 3, 9), (Ok(vec![3, 4, 7]), None));
        assert_eq!(
            feed.records,
            VecDeque::from([10]),
            "9 left the queue, 10 did not"
        );
        // The range's last offsets are markers: no record comes, the position passes them.
        let mut feed = Gaps::new(&[0, 1, 3], 0, 6);
        assert_eq!(read(&mut feed, 0, 6), (Ok(vec![0, 1, 3]), None));
        assert!(
            feed.polls <= 5,
            "no wait for the poll timeout: {} polls",
            feed.polls
        );
        // Records before `from` (a queue that went on from an earlier seek) are skipped.
        let mut feed = Gaps::new(OFFSETS, 0, 11);
        assert_eq!(read(&mut feed, 2, 5), (Ok(vec![3, 4]), Some(5)));
    }

    #[test]
    fn a_reader_fetch_waits_half_a_batch_interval_at_most_500_ms() {
        // librdkafka's 500 ms held by Tansu delayed 100 ms batches by 2 to 3 intervals.
        assert_eq!(
            fetch_wait(Duration::from_millis(100)),
            Duration::from_millis(50)
        );
        assert_eq!(
            fetch_wait(Duration::from_secs(5)),
            Duration::from_millis(500)
        );
        assert_eq!(
            fetch_wait(Duration::from_millis(5)),
            Duration::from_millis(10)
        );
    }

    #[test]
    fn a_range_whose_end_never_comes_fails_naming_it_after_the_poll_timeout() {
        let mut feed = Gaps::new(&[0, 1], 0, 2);
        let (r, next) = read(&mut feed, 0, 5);
        let e = r.unwrap_err();
        assert!(e.contains("could not read `t-0 [0, 5)`"), "{e}");
        assert!(e.contains("records up to offset 1"), "{e}");
        assert_eq!(next, None);
    }
}
