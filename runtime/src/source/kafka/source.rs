//! The driver's side of the direct stream (Spark's `DirectKafkaInputDStream`): at each batch
//! time, fixes one [`OffsetRange`] per partition from the latest offsets and the rate limits;
//! keeps the ranges of every generated, unfinished batch and the next start offsets in the
//! checkpoint, so that a restarted job replays the unfinished batches with the same ranges.
//!
//! Checkpoints are written when a batch completes, every checkpoint interval; Spark also
//! writes one when a batch is generated. So that the ranges of *every* generated batch are
//! durable before it runs, with a checkpoint directory the source keeps a batch log beside the
//! checkpoints (`kafka-batches-<name>`): the ranges of each batch generated since the last
//! durable checkpoint, rewritten atomically and synced before the batch is queued. A restart
//! takes the checkpoint's unfinished batches and the log's newer ones, and the generator runs
//! them first at their own batch times (the zero time comes back with them), as Spark
//! replays its pending times. The log holds at most one checkpoint interval of batches.

use crate::sync::LockExt;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::Location;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::batch::{Batch, Executor};
use crate::checkpoint::Checkpointed;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::source::InputSource;
use crate::source::rate::PidEstimator;
use crate::time::Time;

use super::client::{Driver, Reset, ends};
use super::limits::{Limits, clamp, max_messages_per_partition};
use super::params::KafkaParams;
use super::range::{OffsetRange, TopicPartition};
use super::reader::{Readers, out_of_range};
use super::record::ConsumerRecord;
use super::strategy::{ConsumerStrategy, Strategy};

/// The settings of a direct stream, from the context's configuration.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) limits: Limits,
    pub(crate) backpressure: bool,
    pub(crate) initial_rate: Option<u64>,
    pub(crate) batch_interval: Duration,
    pub(crate) poll_timeout: Duration,
    pub(crate) driver_timeout: Duration,
}

/// What the driver fixed for a batch: its ranges, or why it could not.
type Allocation = std::result::Result<Arc<[OffsetRange]>, String>;

#[derive(Default)]
struct Positions {
    /// Where each partition's next range starts (the end of the last generated one).
    current: BTreeMap<TopicPartition, i64>,
    /// The ranges of each generated batch, until it is done.
    generated: BTreeMap<Time, Allocation>,
    /// Restored from a checkpoint and the batch log: the ranges of batches that were
    /// generated but not done, by batch time, given again to those times after the restart.
    replay: BTreeMap<Time, Vec<OffsetRange>>,
    restored: bool,
    /// The time of the checkpoint restored.
    restored_at: Option<Time>,
    /// The newest offset of each partition when the last batch's ranges were fixed.
    latest: BTreeMap<TopicPartition, i64>,
    /// The ranges of every batch generated since the last durable checkpoint: what the batch
    /// log holds (with `replay`).
    since_checkpoint: BTreeMap<Time, Vec<OffsetRange>>,
    /// The time of the last durable checkpoint written by this run.
    checkpointed: Option<Time>,
    /// The batch log, once checkpoints are enabled.
    log: Option<PathBuf>,
}

impl Positions {
    /// The checkpoint everything in `since_checkpoint` and `replay` comes after.
    fn base(&self) -> Option<Time> {
        self.checkpointed.or(self.restored_at)
    }
}

pub(crate) struct DirectKafkaSource {
    strategy: ConsumerStrategy,
    params: KafkaParams,
    settings: Settings,
    pub(crate) at: &'static Location<'static>,
    driver: OnceLock<Driver>,
    positions: Mutex<Positions>,
    pid: Option<PidEstimator>,
    /// The backpressure rate (records/s for the whole stream), once the estimator has one.
    rate: Mutex<Option<f64>>,
    readers: Readers,
    /// Ranges queued by `commit_async`, committed after the batch's outputs.
    pub(crate) commits: Arc<Mutex<Vec<OffsetRange>>>,
    exec: Arc<OnceLock<Executor>>,
    /// The graph's zero time, saved and given back so that replayed batch times follow it.
    zero: Arc<OnceLock<Time>>,
    clock: Clock,
    /// This instance's share of the partitions, when the job runs as instances.
    pub(crate) tasks: Arc<super::tasks::SourceTasks>,
}

impl DirectKafkaSource {
    pub(crate) fn new(
        strategy: ConsumerStrategy,
        params: KafkaParams,
        settings: Settings,
        exec: Arc<OnceLock<Executor>>,
        (zero, clock): (Arc<OnceLock<Time>>, Clock),
        at: &'static Location<'static>,
    ) -> Self {
        DirectKafkaSource {
            readers: Readers::new(
                params.clone(),
                settings.poll_timeout,
                settings.batch_interval,
            ),
            pid: settings
                .backpressure
                .then(|| PidEstimator::new(settings.batch_interval)),
            strategy,
            params,
            settings,
            at,
            driver: OnceLock::new(),
            positions: Mutex::default(),
            rate: Mutex::new(None),
            commits: Arc::default(),
            exec,
            zero,
            clock,
            tasks: Arc::default(),
        }
    }

    fn bootstrap(&self) -> &str {
        self.params.get("bootstrap.servers").unwrap_or("")
    }

    /// The ranges of the batch at `time`, while it is not done.
    pub(crate) fn ranges_at(&self, time: Time) -> Option<Vec<OffsetRange>> {
        match self.positions.locked().generated.get(&time) {
            Some(Ok(r)) => Some(r.to_vec()),
            _ => None,
        }
    }

    /// The batch at `time`: the records of its ranges, one partition per range, read on the
    /// worker threads. Panics (failing the batch) with the driver's or a reader's error.
    pub(crate) fn compute(&self, time: Time) -> Option<Batch<ConsumerRecord>> {
        let exec = self.exec.get()?.clone();
        let allocation = self.positions.locked().generated.get(&time).cloned();
        let ranges = match allocation {
            Some(Ok(r)) => r,
            Some(Err(message)) => panic!("{message}"),
            None => return None,
        };
        let queued_ms = self.clock.now_ms().saturating_sub(time.millis());
        // Every partition fetched at once, though the worker threads read them in turns.
        self.readers.prefetch(&ranges);
        let parts: Vec<Vec<OffsetRange>> = ranges.iter().map(|r| vec![r.clone()]).collect();
        let errors: Mutex<Vec<String>> = Mutex::default();
        let batch = Batch::new(parts, exec).map_parts(|p| {
            let mut out = Vec::new();
            for r in &p {
                let started = std::time::Instant::now();
                match self.readers.read(r) {
                    Ok(records) => out.extend(records),
                    Err(e) => errors.locked().push(e),
                }
                tracing::debug!(
                    batch = time.millis(),
                    queued_ms,
                    range = %r,
                    read_ms = started.elapsed().as_millis() as u64,
                    "direct Kafka stream: range read"
                );
            }
            out
        });
        if let Some(e) = errors.into_inner().unwrap_or_default().into_iter().next() {
            panic!("{e}");
        }
        Some(batch.with_offset_ranges(ranges))
    }

    fn driver(&self) -> std::result::Result<&Driver, String> {
        self.driver
            .get()
            .ok_or_else(|| "the stream's driver consumer is not started".to_owned())
    }

    /// The partitions the strategy gives now; an unknown topic of `subscribe` or `assign`
    /// is an error.
    fn partitions(&self, driver: &Driver) -> std::result::Result<BTreeSet<TopicPartition>, String> {
        let unknown = |topic: &str| {
            format!(
                "topic `{topic}` does not exist on the Kafka brokers at `{}`: create it (`kafka-topics.sh --create --topic {topic}`, `tansu topic create {topic}`) or fix the name in the `ConsumerStrategy`",
                driver.bootstrap
            )
        };
        let mut out = BTreeSet::new();
        match &self.strategy.kind {
            Strategy::Subscribe(topics) => {
                let found = driver.partitions(Some(topics))?;
                for t in topics {
                    let parts = found.get(t).ok_or_else(|| unknown(t))?;
                    out.extend(parts.iter().map(|p| TopicPartition::new(t.clone(), *p)));
                }
            }
            Strategy::SubscribePattern(pattern) => {
                let re = regex::Regex::new(pattern).map_err(|e| {
                    format!(
                        "`subscribe_pattern(\"{pattern}\")` is not a valid regular expression: {e}"
                    )
                })?;
                for (t, parts) in driver.partitions(None)? {
                    if re.is_match(&t) {
                        out.extend(parts.iter().map(|p| TopicPartition::new(t.clone(), *p)));
                    }
                }
            }
            Strategy::Assign(tps) => {
                let topics: Vec<String> = tps
                    .iter()
                    .map(|tp| tp.topic.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let found = driver.partitions(Some(&topics))?;
                for tp in tps {
                    let parts = found.get(&tp.topic).ok_or_else(|| unknown(&tp.topic))?;
                    if !parts.contains(&tp.partition) {
                        return Err(format!(
                            "partition `{tp}` does not exist on the Kafka brokers at `{}` (topic `{}` has partitions {:?}): fix the partitions given to `ConsumerStrategy::assign`",
                            driver.bootstrap, tp.topic, parts
                        ));
                    }
                    out.insert(tp.clone());
                }
            }
        }
        Ok(self.tasks.own(out))
    }

    /// Where each of `new` partitions starts: the strategy's offset, else the group's
    /// committed one, else `auto.offset.reset`; an offset outside what the broker holds is
    /// an error (never a silent jump).
    fn starting_offsets(
        &self,
        driver: &Driver,
        new: &[TopicPartition],
        use_strategy: bool,
    ) -> std::result::Result<BTreeMap<TopicPartition, i64>, String> {
        let reset = Reset::parse(self.params.get("auto.offset.reset"))?;
        let committed = driver.committed(new)?;
        let offsets = driver.offsets(new)?;
        let mut out = BTreeMap::new();
        for tp in new {
            let (low, high) = offsets[tp];
            let given = use_strategy
                .then(|| self.strategy.offsets.get(tp).copied())
                .flatten();
            let start = match (given, committed.get(tp)) {
                (Some(o), _) => check_in_range(
                    tp,
                    o,
                    low,
                    high,
                    "the strategy's starting offset",
                    &driver.bootstrap,
                )?,
                (None, Some(o)) => check_in_range(
                    tp,
                    *o,
                    low,
                    high,
                    &format!(
                        "the committed offset of group `{}`",
                        driver.group.as_deref().unwrap_or("")
                    ),
                    &driver.bootstrap,
                )?,
                (None, None) => match reset {
                    Reset::Earliest => low,
                    Reset::Latest => high,
                    Reset::None => {
                        return Err(format!(
                            "no starting offset for `{tp}`: none given, none committed by the group, and `auto.offset.reset` is `none`; give one with `ConsumerStrategy::with_offsets`, or set `auto.offset.reset` to `earliest` or `latest`"
                        ));
                    }
                },
            };
            out.insert(tp.clone(), start);
        }
        Ok(out)
    }

    /// The ranges of the batch at `time` (see the module's doc).
    fn next_ranges(&self, time: Time) -> std::result::Result<Vec<OffsetRange>, String> {
        let driver = self.driver()?;
        driver.poll();
        {
            let mut p = self.positions.locked();
            // At its own time; else (a replayed time the generator could not run, before the
            // zero time) at the first batch after the restart.
            let replayed = match p.replay.remove(&time) {
                Some(r) => Some(r),
                None => p.replay.pop_first().map(|(_, r)| r),
            };
            if let Some(r) = replayed {
                tracing::info!(batch = time.millis(), ranges = %describe_short(&r), "batch regenerated from the checkpoint with the ranges it had");
                return Ok(r);
            }
        }
        let partitions = self.partitions(driver)?;
        let known: BTreeSet<TopicPartition> =
            self.positions.locked().current.keys().cloned().collect();
        let lost: Vec<String> = known
            .difference(&partitions)
            .map(|tp| format!("`{tp}`"))
            .collect();
        if !lost.is_empty() {
            return Err(format!(
                "partitions lost: {} read by this stream are no longer there (the topic was deleted, or its partitions reassigned); as Spark, the stream stops rather than skip them: restart the job when the topic is back, or, if they were removed on purpose, change the `ConsumerStrategy` and restart without the checkpoint (starting from the group's committed offsets)",
                lost.join(", ")
            ));
        }
        let new: Vec<TopicPartition> = partitions.difference(&known).cloned().collect();
        if !new.is_empty() {
            let starts = self.starting_offsets(driver, &new, false)?;
            tracing::info!(
                partitions = new.len(),
                "new partitions found, read from {starts:?}"
            );
            self.positions.locked().current.extend(starts);
        }
        let current = self.positions.locked().current.clone();
        let tps: Vec<TopicPartition> = current.keys().cloned().collect();
        let offsets = driver.offsets(&tps)?;
        let mut latest = BTreeMap::new();
        for (tp, (low, high)) in offsets {
            let from = current[&tp];
            if from < low || from > high {
                let r = OffsetRange::new(tp.topic.clone(), tp.partition, from, high.max(from));
                return Err(format!(
                    "{} (the brokers hold offsets {low} to {high})",
                    out_of_range(&r, &driver.bootstrap)
                ));
            }
            latest.insert(tp, high);
        }
        self.positions.locked().latest = latest.clone();
        let rate = if self.pid.is_some() {
            (*self.rate.locked()).or(self.settings.initial_rate.map(|r| r as f64))
        } else {
            None
        };
        let max = max_messages_per_partition(&latest, &current, rate, &self.settings.limits);
        let until = clamp(&latest, &current, max.as_ref());
        Ok(until
            .into_iter()
            .map(|(tp, u)| OffsetRange::new(tp.topic.clone(), tp.partition, current[&tp], u))
            .collect())
    }
}

fn check_in_range(
    tp: &TopicPartition,
    offset: i64,
    low: i64,
    high: i64,
    what: &str,
    bootstrap: &str,
) -> std::result::Result<i64, String> {
    if offset < low || offset > high {
        return Err(format!(
            "offsets out of range: {what} for `{tp}` is {offset}, but the Kafka brokers at `{bootstrap}` hold offsets {low} to {high} (retention deleted older records, or the topic was recreated); the stream does not jump: give a starting offset in that range (`ConsumerStrategy::with_offsets`), or reset the group's offsets (`kafka-consumer-groups.sh --reset-offsets`)"
        ));
    }
    Ok(offset)
}

/// The ranges as Spark's streaming UI describes a batch's input (non-empty ranges only).
pub(crate) fn describe(ranges: &[OffsetRange]) -> String {
    ranges
        .iter()
        .filter(|r| r.from_offset != r.until_offset)
        .map(|r| {
            format!(
                "topic: {}\tpartition: {}\toffsets: {} to {}",
                r.topic, r.partition, r.from_offset, r.until_offset
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn describe_short(ranges: &[OffsetRange]) -> String {
    ranges
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl InputSource for DirectKafkaSource {
    fn name(&self) -> String {
        format!("direct Kafka stream at {} ({})", self.at, self.bootstrap())
    }

    fn start(&self) -> Result<()> {
        let fail = |message: String| Error::Source {
            source_name: self.name(),
            message,
        };
        let driver = Driver::new(&self.params, self.settings.driver_timeout).map_err(fail)?;
        let partitions = self.partitions(&driver).map_err(fail)?;
        let members = driver.active_members();
        if !members.is_empty() {
            // In Spark the driver would join the group and lose partitions to them, and fail.
            return Err(fail(format!(
                "group `{}` has active members ({}): another job or consumer reads with this `group.id`, so the group's offsets are not this stream's alone; give the stream its own `group.id`, or stop the other consumer",
                driver.group.as_deref().unwrap_or(""),
                members.join(", ")
            )));
        }
        let restored = self.positions.locked().restored;
        if restored {
            // The checkpoint says where every partition is; check the broker still holds it.
            let (current, replay) = {
                let p = self.positions.locked();
                (p.current.clone(), p.replay.clone())
            };
            let mut firsts: BTreeMap<TopicPartition, i64> = current.clone();
            for r in replay.values().flatten() {
                let e = firsts.entry(r.topic_partition()).or_insert(r.from_offset);
                *e = (*e).min(r.from_offset);
            }
            let tps: Vec<TopicPartition> = firsts.keys().cloned().collect();
            let offsets = driver.offsets(&tps).map_err(fail)?;
            for (tp, from) in firsts {
                let (low, high) = offsets[&tp];
                let end = current.get(&tp).copied().unwrap_or(from);
                if from < low || end > high {
                    let r = OffsetRange::new(tp.topic.clone(), tp.partition, from, end);
                    return Err(fail(format!(
                        "{} (the checkpoint's offsets; the brokers hold {low} to {high})",
                        out_of_range(&r, &driver.bootstrap)
                    )));
                }
            }
        } else {
            let all: Vec<TopicPartition> = partitions.into_iter().collect();
            let starts = self.starting_offsets(&driver, &all, true).map_err(fail)?;
            tracing::info!(source = %self.name(), "starting offsets: {}", starts.iter().map(|(tp, o)| format!("{tp}@{o}")).collect::<Vec<_>>().join(", "));
            self.positions.locked().current = starts;
        }
        let _ = self.driver.set(driver);
        Ok(())
    }

    fn allocate(&self, time: Time) -> u64 {
        let started = std::time::Instant::now();
        let late_ms = self.clock.now_ms().saturating_sub(time.millis());
        let ranges = self.next_ranges(time);
        // Where a batch's latency goes (with the reads' timings in `compute`).
        tracing::debug!(
            batch = time.millis(),
            late_ms,
            took_ms = started.elapsed().as_millis() as u64,
            "direct Kafka stream: ranges fixed"
        );
        self.fix(time, ranges)
    }

    fn replay_times(&self) -> Vec<Time> {
        // Only times after the zero time run their outputs: the others replay at new times.
        let Some(zero) = self.zero.get().copied() else {
            return Vec::new();
        };
        self.positions
            .locked()
            .replay
            .keys()
            .copied()
            .filter(|t| *t > zero)
            .collect()
    }

    fn description(&self, time: Time) -> Option<String> {
        self.ranges_at(time).map(|r| describe(&r))
    }

    fn lag(&self) -> Vec<crate::metrics::PartitionLag> {
        let p = self.positions.locked();
        p.latest
            .iter()
            .map(|(tp, &latest)| crate::metrics::PartitionLag {
                topic: tp.topic.clone(),
                partition: tp.partition,
                records: (latest - p.current.get(tp).copied().unwrap_or(latest)).max(0),
            })
            .collect()
    }

    fn forget(&self, time: Time) {
        let mut p = self.positions.locked();
        p.generated = p.generated.split_off(&Time(time.0 + 1));
    }

    fn on_batch_completed(&self, time: Time, records: u64, processing_ms: u64, scheduling_ms: u64) {
        if let Some(pid) = &self.pid
            && let Some(rate) = pid.compute(time.millis(), records, processing_ms, scheduling_ms)
        {
            tracing::debug!(rate, "backpressure: new rate for the direct Kafka stream");
            *self.rate.locked() = Some(rate);
        }
        if let Some(read) = self.description(time) {
            tracing::debug!(batch = time.millis(), "direct Kafka stream read:\n{read}");
        }
        let queued = std::mem::take(&mut *self.commits.locked());
        if !queued.is_empty()
            && let Ok(driver) = self.driver()
        {
            driver.commit_async(&ends(&queued));
        }
    }
}

impl DirectKafkaSource {
    /// Gives the batch at `time` its ranges (or the reason it has none), made durable in the
    /// batch log first when checkpoints are enabled; the records allocated.
    fn fix(&self, time: Time, allocation: std::result::Result<Vec<OffsetRange>, String>) -> u64 {
        let mut p = self.positions.locked();

        let n = match &allocation {
            Ok(ranges) => {
                // `max`: a range replayed from the checkpoint ends before the saved position.
                for r in ranges {
                    let e = p
                        .current
                        .entry(r.topic_partition())
                        .or_insert(r.until_offset);
                    *e = (*e).max(r.until_offset);
                }
                ranges.iter().map(|r| r.count().max(0) as u64).sum()
            }
            Err(e) => {
                tracing::error!(batch = time.millis(), "{e}");
                0
            }
        };
        let allocation = match allocation {
            Ok(ranges) => {
                p.since_checkpoint.insert(time, ranges.clone());
                // Durable before the batch is queued, so a crash from now on replays it.
                let written = match p.log.clone() {
                    Some(path) => {
                        let bytes = self.encode(&p, p.base(), p.since_checkpoint.iter());
                        drop(p);
                        let w = bytes.and_then(|b| write_log(&path, &b));
                        p = self.positions.locked();
                        w
                    }
                    None => Ok(()),
                };
                written.map(|()| ranges).map_err(|e| {
                    let e = format!(
                        "the offset ranges of batch {time} could not be made durable, so the batch does not run: {e}"
                    );
                    tracing::error!(batch = time.millis(), "{e}");
                    e
                })
            }
            Err(e) => Err(e),
        };
        p.generated.insert(time, allocation.map(Arc::from));
        n
    }
}

/// What a checkpoint keeps of a direct stream, and what its batch log holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    /// In a checkpoint, its batch time; in the batch log, the last durable checkpoint's when
    /// it was written (the log holds every batch generated after it).
    time: Option<u64>,
    /// The graph's zero time.
    zero: Option<u64>,
    /// The next start offset of each partition.
    current: Vec<(TopicPartition, i64)>,
    /// The ranges of every batch generated after `time` and not known done, by batch time.
    pending: Vec<(u64, Vec<OffsetRange>)>,
}

impl DirectKafkaSource {
    /// Encodes the positions with `pending` (and what is still to replay) after `time`.
    fn encode<'a>(
        &self,
        p: &Positions,
        time: Option<Time>,
        pending: impl Iterator<Item = (&'a Time, &'a Vec<OffsetRange>)>,
    ) -> Result<Vec<u8>> {
        let mut all: BTreeMap<u64, Vec<OffsetRange>> =
            pending.map(|(t, r)| (t.millis(), r.clone())).collect();
        for (t, r) in &p.replay {
            all.entry(t.millis()).or_insert_with(|| r.clone());
        }
        let saved = Saved {
            time: time.map(Time::millis),
            zero: self.zero.get().map(|z| z.millis()),
            current: p.current.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            pending: all.into_iter().collect(),
        };
        postcard::to_stdvec(&saved).map_err(|e| {
            Error::IllegalState(format!("could not encode the Kafka stream's offsets: {e}"))
        })
    }

    /// Takes back the ranges of `saved` after `after`, and its zero time.
    fn take_back(&self, p: &mut Positions, saved: Saved, after: Option<Time>) -> usize {
        let mut n = 0;
        for (t, ranges) in saved.pending {
            if after.is_some_and(|a| Time(t) <= a) || p.replay.contains_key(&Time(t)) {
                continue;
            }
            for r in &ranges {
                let e = p
                    .current
                    .entry(r.topic_partition())
                    .or_insert(r.until_offset);
                *e = (*e).max(r.until_offset);
            }
            p.replay.insert(Time(t), ranges);
            n += 1;
        }
        for (tp, o) in saved.current {
            let e = p.current.entry(tp).or_insert(o);
            *e = (*e).max(o);
        }
        // As a window's state does: before `start()` sets a new zero time, unless the clock is
        // behind it.
        if let Some(z) = saved.zero.filter(|z| *z <= self.clock.now_ms()) {
            let _ = self.zero.set(Time(z));
        }
        n
    }
}

/// Writes the batch log: to a temporary file, synced, renamed over the log, directory synced.
fn write_log(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io("failed to create", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("failed to write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("failed to rename into", path, e))?;
    match path.parent() {
        Some(dir) => crate::checkpoint::sync_dir(dir),
        None => Ok(()),
    }
}

impl Checkpointed for DirectKafkaSource {
    fn kind(&self) -> &'static str {
        "direct_kafka_stream"
    }

    /// 2: batches saved with their times, the zero time and the checkpoint's time.
    fn format(&self) -> u32 {
        2
    }

    fn task_scoped(&self) -> Option<&dyn crate::tasks::TaskScoped> {
        self.tasks
            .instance()
            .map(|_| self as &dyn crate::tasks::TaskScoped)
    }

    fn save(&self, time: Time) -> Result<Vec<u8>> {
        let p = self.positions.locked();
        let pending: Vec<(Time, Vec<OffsetRange>)> = p
            .generated
            .range(Time(time.0 + 1)..)
            .filter_map(|(t, a)| a.as_ref().ok().map(|r| (*t, r.to_vec())))
            .collect();
        self.encode(&p, Some(time), pending.iter().map(|(t, r)| (t, r)))
    }

    fn restore(&self, bytes: &[u8]) -> Result<()> {
        let saved: Saved = postcard::from_bytes(bytes).map_err(|e| {
            Error::IllegalState(format!("could not decode the Kafka stream's offsets: {e}"))
        })?;
        let mut p = self.positions.locked();
        let at = saved.time.map(Time);
        p.current.clear();
        // Every batch a checkpoint names is unfinished, even one replayed late (before the
        // zero time) and so older than the checkpoint.
        self.take_back(&mut p, saved, None);
        p.restored = true;
        p.restored_at = at;
        tracing::info!(
            at = %self.at,
            replayed = p.replay.len(),
            "direct Kafka stream restored: unfinished batches are regenerated with their ranges first"
        );
        Ok(())
    }

    fn enable(&self, dir: &Path, name: &str) -> Result<()> {
        let path = dir.join(format!(
            "kafka-batches-{}",
            crate::source::wal::folder_name(name)
        ));
        let mut p = self.positions.locked();
        if let Ok(bytes) = std::fs::read(&path) {
            let mut saved: Saved = postcard::from_bytes(&bytes).map_err(|e| Error::Checkpoint {
                dir: dir.to_owned(),
                message: format!(
                    "the batch log `{}` of the direct Kafka stream at {} cannot be read ({e}); it holds the ranges of the batches generated after the last checkpoint: delete it to restart from the checkpoint alone",
                    path.display(),
                    self.at
                ),
            })?;
            self.tasks
                .keep_owned(&mut saved.current, &mut saved.pending);
            let base = p.restored_at;
            // The log holds every batch after its own base: complete only from there.
            if saved.time.map(Time) <= base {
                let n = self.take_back(&mut p, saved, base);
                if n > 0 {
                    p.restored = true;
                    tracing::info!(at = %self.at, batches = n, "direct Kafka stream: batches generated after the checkpoint are regenerated with the ranges of its batch log");
                }
            } else {
                crate::warning::warn(format_args!(
                    "the batch log `{}` of the direct Kafka stream at {} follows a newer checkpoint than the one restored (the newer one is missing or unreadable): the batches generated between the two are not regenerated",
                    path.display(),
                    self.at
                ));
            }
        }
        p.log = Some(path);
        Ok(())
    }

    fn committed(&self, time: Time) {
        let mut p = self.positions.locked();
        p.since_checkpoint = p.since_checkpoint.split_off(&Time(time.0 + 1));
        p.checkpointed = Some(time);
    }
}

/// What a task checkpoint keeps of a direct stream: one partition's next start offset and
/// the ranges of the batches generated after the checkpointed one, in order.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedTask {
    next: Option<i64>,
    pending: Vec<(Time, OffsetRange)>,
}

impl crate::tasks::TaskScoped for DirectKafkaSource {
    fn tasks(&self) -> Vec<crate::tasks::Task> {
        self.positions
            .locked()
            .current
            .keys()
            .map(|tp| crate::tasks::Task::new(tp.topic.clone(), tp.partition))
            .collect()
    }

    fn topics(&self) -> Vec<(String, usize)> {
        self.tasks.counts().into_iter().collect()
    }

    fn save_task(&self, task: &crate::tasks::Task, time: Time) -> Result<Vec<u8>> {
        let tp = TopicPartition::new(task.topic.clone(), task.partition);
        let p = self.positions.locked();
        // The task's unfinished batches, each with its batch time, so a restart replays them
        // at their times with the other tasks' ranges of the same batch.
        let pending: Vec<(Time, OffsetRange)> = p
            .generated
            .range(Time(time.0 + 1)..)
            .filter_map(|(t, a)| a.as_ref().ok().map(|r| (*t, &r[..])))
            .chain(p.replay.iter().map(|(t, r)| (*t, &r[..])))
            .flat_map(|(t, r)| r.iter().map(move |r| (t, r)))
            .filter(|(_, r)| r.topic_partition() == tp)
            .map(|(t, r)| (t, r.clone()))
            .collect();
        let saved = SavedTask {
            next: p.current.get(&tp).copied(),
            pending,
        };
        postcard::to_stdvec(&saved).map_err(|e| {
            Error::IllegalState(format!("could not encode the offsets of `{task}`: {e}"))
        })
    }

    fn clear_tasks(&self) {
        let mut p = self.positions.locked();
        p.current.clear();
        p.replay.clear();
        p.restored = false;
    }

    fn restore_task(&self, task: &crate::tasks::Task, bytes: &[u8]) -> Result<()> {
        let saved: SavedTask = postcard::from_bytes(bytes).map_err(|e| {
            Error::IllegalState(format!("could not decode the offsets of `{task}`: {e}"))
        })?;
        let tp = TopicPartition::new(task.topic.clone(), task.partition);
        let mut p = self.positions.locked();
        if let Some(next) = saved.next {
            p.current.insert(tp, next);
        }
        // The task's unfinished batches are replayed at their batch times, with the other
        // tasks' ranges of the same batch.
        for (t, r) in saved.pending {
            p.replay.entry(t).or_default().push(r);
        }
        p.restored = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> DirectKafkaSource {
        let settings = Settings {
            limits: Limits {
                max_rate_per_partition: None,
                min_rate_per_partition: 1,
                batch_secs: 1.0,
            },
            backpressure: false,
            initial_rate: None,
            batch_interval: Duration::from_secs(1),
            poll_timeout: Duration::from_secs(1),
            driver_timeout: Duration::from_secs(1),
        };
        DirectKafkaSource::new(
            ConsumerStrategy::subscribe(["t"]),
            KafkaParams::new().set("bootstrap.servers", "127.0.0.1:1"),
            settings,
            Arc::default(),
            (Arc::default(), Clock::default()),
            Location::caller(),
        )
    }

    #[test]
    fn the_checkpoint_keeps_the_ranges_of_batches_after_it_and_the_next_offsets() {
        let s = source();
        {
            let mut p = s.positions.locked();
            p.current.insert(TopicPartition::new("t", 0), 30);
            for (t, from, until) in [(1000, 0, 10), (2000, 10, 20), (3000, 20, 30)] {
                p.generated.insert(
                    Time(t),
                    Ok(Arc::from(vec![OffsetRange::new("t", 0, from, until)])),
                );
            }
            p.generated.insert(Time(4000), Err("broker down".into()));
        }
        let bytes = s.save(Time(1000)).unwrap();
        let restored = source();
        restored.restore(&bytes).unwrap();
        let p = restored.positions.locked();
        assert!(p.restored);
        assert_eq!(p.current[&TopicPartition::new("t", 0)], 30);
        assert_eq!(
            p.replay,
            BTreeMap::from([
                (Time(2000), vec![OffsetRange::new("t", 0, 10, 20)]),
                (Time(3000), vec![OffsetRange::new("t", 0, 20, 30)])
            ])
        );
        drop(p);
        // Saving again before replaying keeps what is still to replay.
        let again = restored.save(Time(5000)).unwrap();
        let third = source();
        third.restore(&again).unwrap();
        assert_eq!(third.positions.locked().replay.len(), 2);
    }

    fn range(from: i64, until: i64) -> Vec<OffsetRange> {
        vec![OffsetRange::new("t", 0, from, until)]
    }

    #[test]
    fn batches_generated_after_the_last_checkpoint_come_back_from_the_batch_log_at_their_times() {
        let dir = tempfile::tempdir().unwrap();
        let s = source();
        let _ = s.zero.set(Time(0));
        s.enable(dir.path(), "main.rs:direct_kafka_stream#1")
            .unwrap();
        s.positions
            .locked()
            .current
            .insert(TopicPartition::new("t", 0), 0);
        assert_eq!(s.fix(Time(1000), Ok(range(0, 10))), 10);
        let checkpoint = s.save(Time(1000)).unwrap();
        s.committed(Time(1000));
        s.forget(Time(1000));
        // Generated after the checkpoint, then the process dies: only the log has them.
        s.fix(Time(2000), Ok(range(10, 20)));
        s.fix(Time(3000), Ok(range(20, 25)));
        let files: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            files,
            vec!["kafka-batches-main.rs_3a_direct_5f_kafka_5f_stream_23_1"],
            "one log, no temporary file left"
        );

        let restarted = source();
        restarted.restore(&checkpoint).unwrap();
        restarted
            .enable(dir.path(), "main.rs:direct_kafka_stream#1")
            .unwrap();
        let p = restarted.positions.locked();
        assert_eq!(
            p.replay,
            BTreeMap::from([(Time(2000), range(10, 20)), (Time(3000), range(20, 25))])
        );
        assert_eq!(p.current[&TopicPartition::new("t", 0)], 25);
        drop(p);
        assert_eq!(
            restarted.zero.get(),
            Some(&Time(0)),
            "the zero time comes back"
        );
        assert_eq!(restarted.replay_times(), vec![Time(2000), Time(3000)]);

        // Killed again while replaying, before any checkpoint: the log still has both, and
        // without any checkpoint the log alone gives every batch since the start.
        restarted.fix(Time(2000), Ok(range(10, 20)));
        let third = source();
        third.restore(&checkpoint).unwrap();
        third
            .enable(dir.path(), "main.rs:direct_kafka_stream#1")
            .unwrap();
        assert_eq!(third.replay_times(), vec![Time(2000), Time(3000)]);
        let fresh = tempfile::tempdir().unwrap();
        let first = source();
        first.enable(fresh.path(), "x").unwrap();
        first.fix(Time(1000), Ok(range(0, 7)));
        let again = source();
        again.enable(fresh.path(), "x").unwrap();
        assert!(again.positions.locked().restored);
        assert_eq!(
            again.positions.locked().replay,
            BTreeMap::from([(Time(1000), range(0, 7))])
        );
    }

    #[test]
    fn a_batch_whose_ranges_cannot_be_logged_does_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let s = source();
        s.enable(&dir.path().join("gone"), "x").unwrap();
        s.fix(Time(1000), Ok(range(0, 10)));
        match s.positions.locked().generated.get(&Time(1000)) {
            Some(Err(e)) => assert!(e.contains("could not be made durable"), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn forget_drops_the_ranges_of_done_batches_only() {
        let s = source();
        for t in [1000, 2000] {
            s.positions
                .locked()
                .generated
                .insert(Time(t), Ok(Arc::from(vec![OffsetRange::new("t", 0, 0, 1)])));
        }
        assert!(s.ranges_at(Time(1000)).is_some());
        s.forget(Time(1000));
        assert_eq!(s.ranges_at(Time(1000)), None);
        assert_eq!(
            s.ranges_at(Time(2000)),
            Some(vec![OffsetRange::new("t", 0, 0, 1)])
        );
        assert_eq!(
            s.description(Time(2000)).unwrap(),
            "topic: t\tpartition: 0\toffsets: 0 to 1"
        );
    }
}
