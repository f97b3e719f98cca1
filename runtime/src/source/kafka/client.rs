//! The driver's Kafka client (Spark's driver consumer): partitions from metadata, latest and
//! committed offsets, commits of the ranges `commit_async` queued; every call bounded in time
//! and retried with back-off, then failing with a message naming the bootstrap servers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use super::params::KafkaParams;
use super::range::{OffsetRange, TopicPartition};

/// librdkafka's logs and errors, through `tracing`, tagged with the bootstrap servers.
pub(crate) struct LogContext {
    bootstrap: String,
}

impl LogContext {
    pub(crate) fn new(bootstrap: &str) -> Self {
        LogContext {
            bootstrap: bootstrap.to_owned(),
        }
    }

    pub(crate) fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let b = &self.bootstrap;
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(bootstrap = %b, "librdkafka {fac}: {message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(bootstrap = %b, "librdkafka {fac}: {message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::debug!(bootstrap = %b, "librdkafka {fac}: {message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::trace!(bootstrap = %b, "librdkafka {fac}: {message}")
            }
        }
    }

    pub(crate) fn error(&self, error: KafkaError, reason: &str) {
        // Broker connection errors are retried by librdkafka and by our calls' retries.
        tracing::debug!(bootstrap = %self.bootstrap, "librdkafka: {error}: {reason}");
    }
}

/// The driver consumer's context: logs, and reports the outcome of asynchronous commits.
pub(crate) struct DriverContext {
    pub(crate) log: LogContext,
    pub(crate) group: Option<String>,
}

impl rdkafka::ClientContext for DriverContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.log.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }
}

impl ConsumerContext for DriverContext {
    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        offsets: &TopicPartitionList,
    ) {
        let group = self.group.as_deref().unwrap_or("");
        match result {
            Ok(()) => tracing::debug!(group, partitions = offsets.count(), "offsets committed"),
            Err(e) => tracing::warn!(
                group,
                "committing offsets to group `{group}` failed: {e}; the next `commit_async` commits newer offsets (the checkpoint, not the group, is what the job resumes from)"
            ),
        }
    }
}

/// A client's creation error without the value of the setting it names when that value is a
/// secret (librdkafka's configuration errors repeat the value).
pub(crate) fn creation_error(e: &KafkaError) -> String {
    match e {
        // librdkafka's description may quote the value too.
        KafkaError::ClientConfig(_, _, key, _) if KafkaParams::is_secret(key) => format!(
            "invalid or unknown setting `{key}` (its value is not shown; librdkafka's names are listed in its CONFIGURATION.md, e.g. `sasl.username` and `sasl.password` for Java's `sasl.jaas.config`)"
        ),
        KafkaError::ClientConfig(_, desc, key, _) => format!("invalid setting `{key}`: {desc}"),
        other => other.to_string(),
    }
}

/// Java-client settings that librdkafka does not know (Spark jobs set them): dropped.
const JAVA_ONLY: &[&str] = &["key.deserializer", "value.deserializer"];

/// Settings the runtime sets itself on every consumer it makes.
const OWNED: &[&str] = &[
    "enable.auto.commit",
    "enable.partition.eof",
    "auto.offset.reset",
];

/// A librdkafka configuration from the user's params: Java-only settings dropped, the ones
/// the runtime owns left out (set by the caller).
pub(crate) fn base_config(params: &KafkaParams, with_group: bool) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (k, v) in params.iter() {
        if JAVA_ONLY.contains(&k) || OWNED.contains(&k) || (k == "group.id" && !with_group) {
            continue;
        }
        config.set(k, v);
    }
    config.set("enable.auto.commit", "false");
    config
}

/// Where a partition with no known offset starts: Kafka's `auto.offset.reset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reset {
    Earliest,
    Latest,
    None,
}

impl Reset {
    /// `auto.offset.reset` as given (Kafka's default `latest`).
    pub(crate) fn parse(value: Option<&str>) -> Result<Reset, String> {
        match value.unwrap_or("latest") {
            "earliest" | "smallest" | "beginning" => Ok(Reset::Earliest),
            "latest" | "largest" | "end" => Ok(Reset::Latest),
            "none" | "error" => Ok(Reset::None),
            other => Err(format!(
                "`auto.offset.reset` is `{other}`: use `earliest`, `latest` or `none`"
            )),
        }
    }
}

/// The driver's consumer: never subscribed, never consuming; only metadata, offsets and
/// commits, each bounded by `timeout` overall.
pub(crate) struct Driver {
    consumer: BaseConsumer<DriverContext>,
    /// Checks the ends ListOffsets gives by fetching from them (see [`Driver::latest`]).
    probe: BaseConsumer<DriverContext>,
    pub(crate) bootstrap: String,
    pub(crate) group: Option<String>,
    timeout: Duration,
}

/// How long the check of the ends waits for the brokers' answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The `group.id` of the consumers that only read assigned partitions (librdkafka needs one
/// to assign): never joined, never committed, so it touches no group's offsets.
pub(crate) fn reader_group(params: &KafkaParams) -> String {
    format!(
        "cargo-stream-reader-{}",
        params.get("group.id").unwrap_or("none")
    )
}

/// One call's longest wait, within the overall timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

impl Driver {
    pub(crate) fn new(params: &KafkaParams, timeout: Duration) -> Result<Driver, String> {
        let bootstrap = params.get("bootstrap.servers").unwrap_or("").to_owned();
        if bootstrap.is_empty() {
            return Err(
                "`bootstrap.servers` is not set: set it in `KafkaParams` (`host:port,...`)".into(),
            );
        }
        let group = params.get("group.id").map(str::to_owned);
        let mut config = base_config(params, true);
        config.set("enable.partition.eof", "false");
        let ctx = DriverContext {
            log: LogContext::new(&bootstrap),
            group: group.clone(),
        };
        let consumer = config.create_with_context(ctx).map_err(|e| {
            format!(
                "cannot create the driver's Kafka consumer: {}; check `KafkaParams`",
                creation_error(&e)
            )
        })?;
        let mut probe = base_config(params, false);
        probe
            .set("group.id", reader_group(params))
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "latest")
            .set("fetch.wait.max.ms", "10");
        let probe = probe
            .create_with_context(DriverContext {
                log: LogContext::new(&bootstrap),
                group: None,
            })
            .map_err(|e| {
                format!(
                    "cannot create the driver's Kafka consumer: {}; check `KafkaParams`",
                    creation_error(&e)
                )
            })?;
        Ok(Driver {
            consumer,
            probe,
            bootstrap,
            group,
            timeout,
        })
    }

    /// Serves librdkafka's callbacks (commit results, logs).
    pub(crate) fn poll(&self) {
        let _ = self.consumer.poll(Duration::ZERO);
    }

    /// Runs `call` with retries and back-off (100 ms doubling to 2 s) for at most the
    /// driver's timeout; the last error then, naming what was tried and the brokers.
    fn retrying<T>(
        &self,
        what: &str,
        mut call: impl FnMut(Duration) -> Result<T, Retry>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + self.timeout;
        let mut backoff = Duration::from_millis(100);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            match call(left.clamp(Duration::from_millis(100), CALL_TIMEOUT)) {
                Ok(v) => return Ok(v),
                Err(Retry::Fatal(message)) => return Err(message),
                Err(Retry::Transient(message)) => {
                    if Instant::now() + backoff >= deadline {
                        return Err(format!(
                            "cannot {what} from the Kafka brokers at `{}` ({attempts} attempt(s) in {} ms): {message}; check that the brokers are up and that `bootstrap.servers` is right (or raise `kafka_driver_timeout`)",
                            self.bootstrap,
                            self.timeout.as_millis()
                        ));
                    }
                    tracing::debug!(bootstrap = %self.bootstrap, "{what} failed, retrying in {} ms: {message}", backoff.as_millis());
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// The partitions of every topic in `topics` (`None`: all topics), by topic; a topic the
    /// broker does not know is absent.
    pub(crate) fn partitions(
        &self,
        topics: Option<&[String]>,
    ) -> Result<BTreeMap<String, Vec<i32>>, String> {
        let mut out = BTreeMap::new();
        let lists: Vec<Option<&str>> = match topics {
            None => vec![None],
            Some(t) => t.iter().map(|t| Some(t.as_str())).collect(),
        };
        for topic in lists {
            let md = self.retrying("read the topics' metadata", |t| {
                self.consumer
                    .fetch_metadata(topic, t)
                    .map_err(|e| Retry::Transient(e.to_string()))
            })?;
            for t in md.topics() {
                if t.error().is_some() || t.name().starts_with("__") {
                    continue;
                }
                let mut parts: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
                parts.sort_unstable();
                out.insert(t.name().to_owned(), parts);
            }
        }
        Ok(out)
    }

    /// The (low, high) watermarks of `tp` as ListOffsets answers: the first offset still
    /// held and the end; with `isolation.level=read_committed` the end is the last stable
    /// offset.
    fn watermarks(&self, tp: &TopicPartition) -> Result<(i64, i64), String> {
        self.retrying(&format!("read the offsets of `{tp}`"), |t| {
            self.consumer
                .fetch_watermarks(&tp.topic, tp.partition, t)
                .map_err(|e| Retry::Transient(e.to_string()))
        })
    }

    /// The (low, high) watermarks of each of `tps`, the high ones checked by [`latest`].
    pub(crate) fn offsets(
        &self,
        tps: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, (i64, i64)>, String> {
        let mut listed = BTreeMap::new();
        let mut lows = BTreeMap::new();
        for tp in tps {
            let (low, high) = self.watermarks(tp)?;
            listed.insert(tp.clone(), high);
            lows.insert(tp.clone(), low);
        }
        Ok(self
            .latest(&listed)
            .into_iter()
            .map(|(tp, high)| {
                let low = lows[&tp];
                (tp, (low, high))
            })
            .collect())
    }

    /// The end of each partition of `listed` (its high watermark, or last stable offset),
    /// checked by fetching from there: a broker whose ListOffsets answers short (Tansu
    /// answers the base offset of the last record batch plus one, not the end) gives the
    /// records past it, and the end is moved after the last one the first answers hold (see
    /// [`probe_ends`]). On a correct broker the fetch is empty: one short round trip per topic.
    pub(crate) fn latest(
        &self,
        listed: &BTreeMap<TopicPartition, i64>,
    ) -> BTreeMap<TopicPartition, i64> {
        let mut ends = listed.clone();
        let mut by_topic: BTreeMap<&str, BTreeMap<i32, i64>> = BTreeMap::new();
        for (tp, end) in listed {
            by_topic
                .entry(&tp.topic)
                .or_default()
                .insert(tp.partition, *end);
        }
        for (topic, parts) in by_topic {
            let mut tpl = TopicPartitionList::new();
            for (partition, end) in &parts {
                let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*end));
            }
            if self.probe.assign(&tpl).is_err() {
                continue;
            }
            let mut feed = ProbeConsumer(&self.probe);
            for (partition, end) in probe_ends(&mut feed, &parts, PROBE_TIMEOUT) {
                ends.insert(TopicPartition::new(topic, partition), end);
            }
            let _ = self.probe.unassign();
        }
        ends
    }

    /// The group's committed offset of each of `tps` (absent: none committed).
    pub(crate) fn committed(
        &self,
        tps: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>, String> {
        if self.group.is_none() || tps.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut tpl = TopicPartitionList::new();
        for tp in tps {
            tpl.add_partition(&tp.topic, tp.partition);
        }
        let got = self.retrying("read the group's committed offsets", |t| {
            self.consumer
                .committed_offsets(tpl.clone(), t)
                .map_err(|e| Retry::Transient(e.to_string()))
        })?;
        let mut out = BTreeMap::new();
        for e in got.elements() {
            if let Offset::Offset(o) = e.offset() {
                out.insert(TopicPartition::new(e.topic(), e.partition()), o);
            }
        }
        Ok(out)
    }

    /// The members of the stream's group that are consuming now (other jobs or consumers
    /// subscribed with the same `group.id`), as `client.id@host`; empty when the broker cannot
    /// tell (the check is best effort).
    pub(crate) fn active_members(&self) -> Vec<String> {
        let Some(group) = &self.group else {
            return Vec::new();
        };
        match self.consumer.fetch_group_list(Some(group), CALL_TIMEOUT) {
            Ok(list) => list
                .groups()
                .iter()
                .filter(|g| g.name() == group)
                .flat_map(|g| g.members())
                .map(|m| format!("`{}` at {}", m.client_id(), m.client_host()))
                .collect(),
            Err(e) => {
                tracing::debug!(group = %group, "cannot list the group's members: {e}");
                Vec::new()
            }
        }
    }

    /// Commits the end of each range to the group, asynchronously (the outcome is logged).
    pub(crate) fn commit_async(&self, ranges: &BTreeMap<TopicPartition, i64>) {
        let Some(group) = &self.group else {
            tracing::warn!(
                "`commit_async` without `group.id` in the stream's `KafkaParams`: nothing committed; set `group.id`"
            );
            return;
        };
        let mut tpl = TopicPartitionList::new();
        for (tp, until) in ranges {
            let _ = tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*until));
        }
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            tracing::warn!(group = %group, "committing offsets to group `{group}` failed: {e}");
        }
    }
}

/// What one poll of the end check's consumer gave.
pub(crate) enum Probed {
    /// A record of this partition at this offset.
    Record(i32, i64),
    /// This partition has no record past the fetch position (for now).
    End(i32),
    /// Nothing within the poll.
    Idle,
}

/// The end check's consumer, as [`probe_ends`] sees it (a fake in the tests keeps producing).
pub(crate) trait ProbeFeed {
    /// The next record or end, waiting at most `timeout`.
    fn poll(&mut self, timeout: Duration) -> Probed;
}

struct ProbeConsumer<'a>(&'a BaseConsumer<DriverContext>);

impl ProbeFeed for ProbeConsumer<'_> {
    fn poll(&mut self, timeout: Duration) -> Probed {
        use rdkafka::Message;
        match self.0.poll(timeout) {
            Some(Ok(m)) => Probed::Record(m.partition(), m.offset()),
            Some(Err(KafkaError::PartitionEOF(p))) => Probed::End(p),
            _ => Probed::Idle,
        }
    }
}

/// The ends of the partitions `listed` (partition → the end ListOffsets gave, where `feed`
/// was assigned to fetch from), moved after the records the brokers' first answers hold: once
/// every partition has answered (a record, or its end), the records already received are
/// taken and the check stops. The end is the one at the batch time: records produced while
/// the check runs are the next batch's (waiting for a partition's end while a producer keeps
/// writing to it held a batch until the 2 s `timeout`, and made it as much longer). A
/// partition that does not answer within `timeout` keeps its listed end.
pub(crate) fn probe_ends(
    feed: &mut impl ProbeFeed,
    listed: &BTreeMap<i32, i64>,
    timeout: Duration,
) -> BTreeMap<i32, i64> {
    let mut ends = listed.clone();
    let mut waiting: std::collections::BTreeSet<i32> = listed.keys().copied().collect();
    let take = |ends: &mut BTreeMap<i32, i64>, partition: i32, offset: i64| {
        if let Some(e) = ends.get_mut(&partition) {
            *e = (*e).max(offset + 1);
        }
    };
    let deadline = Instant::now() + timeout;
    while !waiting.is_empty() && Instant::now() < deadline {
        match feed.poll(Duration::from_millis(20)) {
            Probed::Record(partition, offset) => {
                take(&mut ends, partition, offset);
                waiting.remove(&partition);
            }
            Probed::End(partition) => {
                waiting.remove(&partition);
            }
            Probed::Idle => {}
        }
    }
    // The rest of the answers already received (an answer is queued whole), not later ones.
    while Instant::now() < deadline {
        match feed.poll(Duration::ZERO) {
            Probed::Record(partition, offset) => take(&mut ends, partition, offset),
            Probed::End(_) => {}
            Probed::Idle => break,
        }
    }
    ends
}

/// Why a call failed: worth retrying, or not.
pub(crate) enum Retry {
    Transient(String),
    #[allow(dead_code)]
    Fatal(String),
}

/// The ends of `ranges` per partition (the last one given wins), as Spark merges the ranges
/// queued by `commitAsync`.
pub(crate) fn ends(ranges: &[OffsetRange]) -> BTreeMap<TopicPartition, i64> {
    ranges
        .iter()
        .map(|r| (r.topic_partition(), r.until_offset))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three partitions a producer keeps writing to: the broker's first answers (after 5 ms)
    /// hold 10 records past the listed end of each, and every 50 ms another answer brings 5
    /// more; a partition's end never comes.
    struct Producing {
        started: Instant,
        /// (arrival, partition, offset), in arrival order.
        queued: std::collections::VecDeque<(Duration, i32, i64)>,
    }

    impl Producing {
        fn new(listed: &BTreeMap<i32, i64>) -> Self {
            let mut queued = std::collections::VecDeque::new();
            for answer in 0..60u32 {
                let at = Duration::from_millis(5 + 50 * answer as u64);
                for (&p, &end) in listed {
                    let (from, n) = match answer {
                        0 => (end, 10),
                        k => (end + 10 + 5 * (k as i64 - 1), 5),
                    };
                    queued.extend((from..from + n).map(|o| (at, p, o)));
                }
            }
            Producing {
                started: Instant::now(),
                queued,
            }
        }
    }

    impl ProbeFeed for Producing {
        fn poll(&mut self, timeout: Duration) -> Probed {
            let Some(&(at, p, o)) = self.queued.front() else {
                return Probed::Idle;
            };
            let now = self.started.elapsed();
            if at > now + timeout {
                std::thread::sleep(timeout);
                return Probed::Idle;
            }
            std::thread::sleep(at.saturating_sub(now));
            self.queued.pop_front();
            Probed::Record(p, o)
        }
    }

    #[test]
    fn the_end_check_takes_the_first_answers_not_what_is_produced_meanwhile() {
        let listed: BTreeMap<i32, i64> = [(0, 100), (1, 50), (2, 7)].into();
        let mut feed = Producing::new(&listed);
        let started = Instant::now();
        let ends = probe_ends(&mut feed, &listed, Duration::from_secs(2));
        let took = started.elapsed();
        // Each end is after the first answer's 10 records (an answer that came while the
        // first ones were taken may add its 5), never the records of the 2 s that follow.
        for (p, end) in &ends {
            let past = end - listed[p];
            assert!(
                (10..=15).contains(&past),
                "partition {p}: {past} past the listed end"
            );
        }
        assert!(took < Duration::from_millis(500), "took {took:?}");
    }

    /// A correct broker: every partition is at its end at once.
    struct AtTheEnd(Vec<i32>);

    impl ProbeFeed for AtTheEnd {
        fn poll(&mut self, _: Duration) -> Probed {
            self.0.pop().map_or(Probed::Idle, Probed::End)
        }
    }

    #[test]
    fn on_a_broker_whose_ends_are_right_the_listed_ends_stand() {
        let listed: BTreeMap<i32, i64> = [(0, 100), (1, 50)].into();
        let ends = probe_ends(&mut AtTheEnd(vec![0, 1]), &listed, Duration::from_secs(2));
        assert_eq!(ends, listed);
    }
}
