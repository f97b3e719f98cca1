//! `StreamingConf`: the job's settings, and how the master is resolved.

use std::time::Duration;

use crate::clock::{Clock, ManualClock};
use crate::error::{Error, Result};

/// Environment variable that overrides the master set in code (set by cluster launchers).
pub const MASTER_ENV: &str = "CARGO_STREAM_MASTER";
/// Environment variable naming the deploy mode; `cluster` ignores a local master set in code.
pub const DEPLOY_MODE_ENV: &str = "CARGO_STREAM_DEPLOY_MODE";

/// Where batches run: `local[N]` is N worker threads in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Master {
    /// `local[N]` (or `local` for N = 1).
    Local(usize),
    /// `local[*]`: one thread per available core.
    LocalAll,
}

impl Master {
    /// Parses `local`, `local[N]` or `local[*]`.
    ///
    /// ```
    /// use cargo_stream_runtime::Master;
    /// assert_eq!(Master::parse("local[4]").unwrap(), Master::Local(4));
    /// assert!(Master::parse("spark://host:7077").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Master> {
        let bad = || Error::InvalidMaster {
            master: s.to_owned(),
        };
        let t = s.trim();
        if t == "local" {
            return Ok(Master::Local(1));
        }
        let inner = t
            .strip_prefix("local[")
            .and_then(|r| r.strip_suffix(']'))
            .ok_or_else(bad)?;
        if inner == "*" {
            return Ok(Master::LocalAll);
        }
        match inner.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Master::Local(n)),
            _ => Err(bad()),
        }
    }

    /// The number of worker threads this master gives.
    pub fn threads(self) -> usize {
        match self {
            Master::Local(n) => n,
            Master::LocalAll => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

impl std::fmt::Display for Master {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Master::Local(1) => f.write_str("local"),
            Master::Local(n) => write!(f, "local[{n}]"),
            Master::LocalAll => f.write_str("local[*]"),
        }
    }
}

/// The settings of a streaming job, built like Spark's `SparkConf`.
///
/// ```
/// use cargo_stream_runtime::prelude::*;
/// let conf = StreamingConf::new("clicks").master("local[4]").block_interval(Milliseconds(100));
/// assert_eq!(conf.app_name(), "clicks");
/// ```
#[derive(Debug, Clone)]
pub struct StreamingConf {
    app_name: String,
    master: Option<String>,
    /// Where `master` was called, for the notice when a cluster run ignores it.
    master_set_at: Option<&'static std::panic::Location<'static>>,
    block_interval: Option<Duration>,
    receiver_max_rate: Option<u64>,
    stop_on_signal: bool,
    graceful_stop_timeout: Option<Duration>,
    receiver_restart_delay: Duration,
    write_ahead_log: bool,
    backpressure: bool,
    backpressure_initial_rate: Option<u64>,
    receiver_max_buffered_bytes: u64,
    receiver_max_failures: (u32, Duration),
    ui: bool,
    ui_port: u16,
    ui_host: String,
    event_log: bool,
    kafka_max_rate_per_partition: Option<u64>,
    kafka_min_rate_per_partition: u64,
    kafka_poll_timeout: Duration,
    kafka_driver_timeout: Duration,
    instance: Option<(u32, u32)>,
    pub(crate) clock: Clock,
    /// Incremental checkpoints of keyed state (`state_full_snapshot_every`,
    /// `state_delta_max_ratio`).
    delta_policy: crate::checkpoint::DeltaPolicy,
}

/// Settings after validation, as the context uses them.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) app_name: String,
    pub(crate) master: Master,
    pub(crate) batch_interval: Duration,
    pub(crate) block_interval: Duration,
    pub(crate) receiver_max_rate: Option<u64>,
    pub(crate) stop_on_signal: bool,
    pub(crate) graceful_stop_timeout: Duration,
    pub(crate) receiver_restart_delay: Duration,
    pub(crate) write_ahead_log: bool,
    pub(crate) backpressure: bool,
    pub(crate) backpressure_initial_rate: Option<u64>,
    pub(crate) receiver_max_buffered_bytes: u64,
    pub(crate) receiver_max_failures: u32,
    pub(crate) receiver_failures_within: Duration,
    /// Where the status server listens (host, first port tried), `None` when disabled.
    pub(crate) ui: Option<(String, u16)>,
    pub(crate) event_log: bool,
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) kafka_max_rate_per_partition: Option<u64>,
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) kafka_min_rate_per_partition: u64,
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) kafka_poll_timeout: Duration,
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) kafka_driver_timeout: Duration,
    /// Which instance of a scaled-out job this process is (`tasks::Instance`), if any.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) instance: Option<crate::tasks::Instance>,
    /// When keyed state writes a full snapshot rather than a delta.
    pub(crate) delta_policy: crate::checkpoint::DeltaPolicy,
}

/// The longest default graceful stop: with the final checkpoint and the threads' 1 s to end,
/// it ends before Spark's worker kills a driver, 10 s after asking it to stop.
const MAX_DEFAULT_GRACEFUL_STOP: Duration = Duration::from_secs(8);

/// Spark's `spark.streaming.blockInterval` default.
const DEFAULT_BLOCK_INTERVAL: Duration = Duration::from_millis(200);
/// Default of [`StreamingConf::receiver_max_buffered_bytes`]: 512 MiB per receiver.
const DEFAULT_RECEIVER_MAX_BUFFERED_BYTES: u64 = 512 * 1024 * 1024;
/// Default of [`StreamingConf::receiver_max_failures`]: 4 failures (as Spark's
/// `spark.task.maxFailures`) within 5 minutes.
const DEFAULT_RECEIVER_MAX_FAILURES: (u32, Duration) = (4, Duration::from_secs(300));
/// Spark's `spark.ui.port` default.
pub(crate) const DEFAULT_UI_PORT: u16 = 4040;

impl StreamingConf {
    /// Settings for the application `app_name`, with Spark's defaults.
    pub fn new(app_name: impl Into<String>) -> Self {
        StreamingConf {
            app_name: app_name.into(),
            master: None,
            master_set_at: None,
            block_interval: None,
            receiver_max_rate: None,
            stop_on_signal: true,
            graceful_stop_timeout: None,
            receiver_restart_delay: Duration::from_secs(2),
            write_ahead_log: false,
            backpressure: false,
            backpressure_initial_rate: None,
            receiver_max_buffered_bytes: DEFAULT_RECEIVER_MAX_BUFFERED_BYTES,
            receiver_max_failures: DEFAULT_RECEIVER_MAX_FAILURES,
            ui: true,
            ui_port: DEFAULT_UI_PORT,
            ui_host: "127.0.0.1".into(),
            event_log: true,
            kafka_max_rate_per_partition: None,
            kafka_min_rate_per_partition: 1,
            kafka_poll_timeout: Duration::from_secs(120),
            kafka_driver_timeout: Duration::from_secs(60),
            instance: None,
            clock: Clock::System,
            delta_policy: Default::default(),
        }
    }

    /// Sets the master: `local`, `local[N]` or `local[*]`.
    ///
    /// `CARGO_STREAM_MASTER` in the environment wins over this; in a cluster build
    /// (`--cfg cargo_stream_cluster`, as `cargo stream package` builds, or
    /// `CARGO_STREAM_DEPLOY_MODE=cluster` at run time) a local master set here is
    /// ignored with a logged notice naming the file and line of this call, so a `local[2]`
    /// meant for a laptop never reaches a cluster.
    #[track_caller]
    pub fn master(mut self, master: impl Into<String>) -> Self {
        self.master = Some(master.into());
        self.master_set_at = Some(std::panic::Location::caller());
        self
    }

    /// Alias of [`master`](Self::master) with Spark's name.
    #[track_caller]
    pub fn set_master(self, master: impl Into<String>) -> Self {
        self.master(master)
    }

    /// How often receivers cut what they received into a block (one partition); default
    /// 200 ms, clamped to the batch interval when left unset.
    pub fn block_interval(mut self, interval: impl Into<Duration>) -> Self {
        self.block_interval = Some(interval.into());
        self
    }

    /// The most records per second each receiver stores (`spark.streaming.receiver.maxRate`).
    pub fn receiver_max_rate(mut self, records_per_second: u64) -> Self {
        self.receiver_max_rate = Some(records_per_second);
        self
    }

    /// Whether SIGTERM and SIGINT stop the context gracefully (default true).
    pub fn stop_on_signal(mut self, enabled: bool) -> Self {
        self.stop_on_signal = enabled;
        self
    }

    /// How long a graceful stop may take: its final checkpoint, stopping the receivers and
    /// processing what they received (default: ten batch intervals, at most 8 s). The default
    /// cap fits Spark's standalone worker, which kills a driver 10 s after asking it to stop
    /// (`spark.worker.driverTerminateTimeout`): 8 s of graceful stop, then at most 1 s for the
    /// threads to end, and the job has exited before the kill. A longer timeout needs a
    /// manager that waits longer (Kubernetes' `terminationGracePeriodSeconds`, Slurm's
    /// `KillWait`, both 30 s by default).
    pub fn graceful_stop_timeout(mut self, timeout: impl Into<Duration>) -> Self {
        self.graceful_stop_timeout = Some(timeout.into());
        self
    }

    /// The first delay before a failed receiver restarts; it doubles up to this value from
    /// 100 ms (default 2 s, as Spark's `spark.streaming.receiverRestartDelay`).
    pub fn receiver_restart_delay(mut self, delay: impl Into<Duration>) -> Self {
        self.receiver_restart_delay = delay.into();
        self
    }

    /// Logs every received block to the checkpoint directory before it is processed, and
    /// replays the blocks no checkpoint covers after a restart
    /// (`spark.streaming.receiver.writeAheadLog.enable`). Needs a checkpoint directory; custom
    /// receivers need `receiver_stream_with_wal`.
    pub fn write_ahead_log(mut self, enabled: bool) -> Self {
        self.write_ahead_log = enabled;
        self
    }

    /// Lets receivers slow down when batches take longer than the interval
    /// (`spark.streaming.backpressure.enabled`): after each batch, Spark's PID estimator
    /// sets each receiver's rate from the batch's size, processing time and scheduling delay,
    /// never above [`receiver_max_rate`](Self::receiver_max_rate).
    pub fn backpressure(mut self, enabled: bool) -> Self {
        self.backpressure = enabled;
        self
    }

    /// The rate each receiver stores at with [`backpressure`](Self::backpressure) on, until the
    /// estimator has seen its first batches (`spark.streaming.backpressure.initialRate`);
    /// without it the first batches are limited only by
    /// [`receiver_max_rate`](Self::receiver_max_rate) and
    /// [`receiver_max_buffered_bytes`](Self::receiver_max_buffered_bytes).
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let conf = StreamingConf::new("clicks").backpressure(true).backpressure_initial_rate(10_000);
    /// # let _ = conf;
    /// ```
    pub fn backpressure_initial_rate(mut self, records_per_second: u64) -> Self {
        self.backpressure_initial_rate = Some(records_per_second);
        self
    }

    /// The most memory, in bytes, one receiver may hold: records stored but not yet cut into
    /// a block, cut blocks no batch took yet, and the blocks of batches not yet processed.
    /// Past it, `store`, `store_many` and `store_reliably` wait (a socket receiver stops
    /// reading, so TCP backpressure reaches the sender) until processed batches free memory.
    /// Default 512 MiB per receiver.
    ///
    /// A record's size is [`Receiver::record_bytes`](crate::Receiver::record_bytes): for
    /// `socket_text_stream` a line's bytes plus its `String` and allocation overhead; for
    /// custom receivers `size_of` the record unless they override it. The memory a batch's
    /// transformations, windows and state allocate is not part of the bound.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let conf = StreamingConf::new("clicks").receiver_max_buffered_bytes(64 << 20);
    /// # let _ = conf;
    /// ```
    pub fn receiver_max_buffered_bytes(mut self, bytes: u64) -> Self {
        self.receiver_max_buffered_bytes = bytes;
        self
    }

    /// Fails the job when one receiver fails `failures` times within `within`, as Spark fails
    /// a job after `spark.task.maxFailures` attempts (counted within a window as
    /// `spark.yarn.executor.failuresValidityInterval` does). A failure is a panic in
    /// `on_start` or `on_stop`, or a block the write-ahead log could not take; each one is
    /// reported and the receiver restarted with back-off first. Restarts a receiver asks for
    /// (`ReceiverContext::restart`, as after a lost connection) are not failures. Default:
    /// 4 within 5 minutes.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let conf = StreamingConf::new("clicks").receiver_max_failures(8, Seconds(60));
    /// # let _ = conf;
    /// ```
    pub fn receiver_max_failures(mut self, failures: u32, within: impl Into<Duration>) -> Self {
        self.receiver_max_failures = (failures, within.into());
        self
    }

    /// Whether the context serves its status page, Spark's streaming REST API, `/metrics`,
    /// `/healthz` and `/readyz` while it runs (default true, as `spark.ui.enabled`). The server
    /// listens on [`ui_host`](Self::ui_host) from [`ui_port`](Self::ui_port) up: as Spark's,
    /// the next port is tried when one is taken, 16 times; when none is free the job runs
    /// without it, with a warning. `start()` logs its URL, and
    /// [`StreamingContext::ui_url`](crate::StreamingContext::ui_url) gives it.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let conf = StreamingConf::new("clicks").ui(false);
    /// # let _ = conf;
    /// ```
    pub fn ui(mut self, enabled: bool) -> Self {
        self.ui = enabled;
        self
    }

    /// The first port the status server tries (default 4040, as `spark.ui.port`); 0 lets
    /// the system choose a free one.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let conf = StreamingConf::new("clicks").ui_port(0);
    /// # let _ = conf;
    /// ```
    pub fn ui_port(mut self, port: u16) -> Self {
        self.ui_port = port;
        self
    }

    /// The address the status server binds (default `127.0.0.1`: only this machine sees it;
    /// `0.0.0.0` for every interface, as `spark.driver.bindAddress`). The page has no
    /// authentication: expose it only on a trusted network.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let conf = StreamingConf::new("clicks").ui_host("0.0.0.0");
    /// # let _ = conf;
    /// ```
    pub fn ui_host(mut self, host: impl Into<String>) -> Self {
        self.ui_host = host.into();
        self
    }

    /// Whether a job with a checkpoint directory appends one JSON line per batch, receiver
    /// event and checkpoint to an event log in `<checkpoint>/events/` (default true), from
    /// which [`ui::serve_history`](crate::ui::serve_history) serves the status page after the
    /// job has ended. The log is bounded: files rotate at 8 MiB, the newest 8 are kept.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let conf = StreamingConf::new("clicks").event_log(false);
    /// # let _ = conf;
    /// ```
    pub fn event_log(mut self, enabled: bool) -> Self {
        self.event_log = enabled;
        self
    }

    /// The most records per second each Kafka partition gives a direct stream's batch
    /// (Spark's `spark.streaming.kafka.maxRatePerPartition`): a batch reads at most this
    /// times the batch interval in seconds from each partition. Unlimited by default.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let conf = StreamingConf::new("clicks").kafka_max_rate_per_partition(10_000);
    /// # let _ = conf;
    /// ```
    pub fn kafka_max_rate_per_partition(mut self, records_per_second: u64) -> Self {
        self.kafka_max_rate_per_partition = Some(records_per_second);
        self
    }

    /// The fewest records each Kafka partition may give a batch when a rate limit applies
    /// (Spark's `spark.streaming.kafka.minRatePerPartition`, default 1), so that backpressure
    /// never stops a partition. As in Spark's code, the bound is on the batch's count, not
    /// multiplied by the batch interval.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let conf = StreamingConf::new("clicks").backpressure(true).kafka_min_rate_per_partition(100);
    /// # let _ = conf;
    /// ```
    pub fn kafka_min_rate_per_partition(mut self, records_per_second: u64) -> Self {
        self.kafka_min_rate_per_partition = records_per_second;
        self
    }

    /// How long a worker waits for the records of a Kafka offset range without receiving any
    /// before it fails the batch naming the range (Spark's
    /// `spark.streaming.kafka.consumer.poll.ms`). Default 120 s.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let conf = StreamingConf::new("clicks").kafka_poll_timeout(Seconds(30));
    /// # let _ = conf;
    /// ```
    pub fn kafka_poll_timeout(mut self, timeout: impl Into<Duration>) -> Self {
        self.kafka_poll_timeout = timeout.into();
        self
    }

    /// How long the driver retries (with back-off) a Kafka request it needs to fix a batch
    /// (metadata, latest or committed offsets) before failing with an error naming the
    /// bootstrap servers (Kafka's `default.api.timeout.ms`). Default 60 s.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let conf = StreamingConf::new("clicks").kafka_driver_timeout(Seconds(10));
    /// # let _ = conf;
    /// ```
    pub fn kafka_driver_timeout(mut self, timeout: impl Into<Duration>) -> Self {
        self.kafka_driver_timeout = timeout.into();
        self
    }

    /// Runs this process as instance `index` of `count` of a scaled-out job: its direct Kafka
    /// streams read only the partitions `p` with `p mod count == index`, and with a checkpoint
    /// directory (shared by every instance) the state of each partition (a *task*) is
    /// checkpointed under `<dir>/task-<topic>-<partition>/`, so that the job can be restarted
    /// with another count (see the [`tasks`](crate::tasks) module). Without this setting, the
    /// launcher's `CARGO_STREAM_INSTANCE` and `CARGO_STREAM_INSTANCES` are read, else Slurm's
    /// `SLURM_PROCID` and `SLURM_NTASKS` (more than one task); `index >= count` or `count == 0`
    /// fails `StreamingContext::new`.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let conf = StreamingConf::new("clicks").instance(1, 3);
    /// # let _ = conf;
    /// ```
    pub fn instance(mut self, index: u32, count: u32) -> Self {
        self.instance = Some((index, count));
        self
    }

    /// How often the keyed state of `update_state_by_key` and `map_with_state` is checkpointed
    /// whole: a checkpoint writes only the keys changed since the previous one (and the keys
    /// removed), and a full snapshot at least every `n` checkpoints (Spark writes the whole
    /// state every time).
    /// Recovery reads the last full snapshot and the changes after it, so a larger `n` makes
    /// checkpoints cheaper and recovery longer. `1` writes the whole state every time; `0`
    /// fails `StreamingContext::new`. Default 10.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let conf = StreamingConf::new("totals").state_full_snapshot_every(20);
    /// # let _ = conf;
    /// ```
    pub fn state_full_snapshot_every(mut self, n: u32) -> Self {
        self.delta_policy.full_every = n;
        self
    }

    /// Writes a full snapshot of a keyed state instead of one more delta once its deltas since
    /// the last full snapshot would add up to more than `ratio` of that snapshot's size
    /// (so a state whose keys nearly all change is written whole); a value outside `0.0..=10.0` fails
    /// `StreamingContext::new`. Default 0.5.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let conf = StreamingConf::new("totals").state_delta_max_ratio(0.25);
    /// # let _ = conf;
    /// ```
    pub fn state_delta_max_ratio(mut self, ratio: f64) -> Self {
        self.delta_policy.max_ratio = ratio;
        self
    }

    /// Runs batches on a [`ManualClock`] instead of the system clock (for tests).
    pub fn manual_clock(mut self, clock: ManualClock) -> Self {
        self.clock = Clock::Manual(clock);
        self
    }

    /// The application name.
    pub fn app_name(&self) -> &str {
        &self.app_name
    }

    pub(crate) fn resolve(&self, batch_interval: Duration) -> Result<Resolved> {
        if batch_interval.is_zero() {
            return Err(Error::InvalidDuration {
                what: "batch interval",
                why: "it must be greater than zero, e.g. `Seconds(1)`".into(),
            });
        }
        let block_interval = match self.block_interval {
            Some(b) if b.is_zero() => {
                return Err(Error::InvalidDuration {
                    what: "block interval",
                    why: "it must be greater than zero (default 200 ms)".into(),
                });
            }
            Some(b) if b > batch_interval => {
                return Err(Error::InvalidDuration {
                    what: "block interval",
                    why: format!(
                        "{} ms is longer than the batch interval of {} ms; set it to at most the batch interval",
                        b.as_millis(),
                        batch_interval.as_millis()
                    ),
                });
            }
            Some(b) => b,
            None => DEFAULT_BLOCK_INTERVAL.min(batch_interval),
        };
        if self.receiver_max_rate == Some(0) {
            return Err(Error::InvalidSetting {
                name: "receiver_max_rate",
                why: "must be at least 1 record per second".into(),
            });
        }
        if self.backpressure_initial_rate == Some(0) {
            return Err(Error::InvalidSetting {
                name: "backpressure_initial_rate",
                why: "must be at least 1 record per second".into(),
            });
        }
        if self.receiver_max_buffered_bytes == 0 {
            return Err(Error::InvalidSetting {
                name: "receiver_max_buffered_bytes",
                why: "a receiver must be able to hold at least one record; the default is 512 MiB"
                    .into(),
            });
        }
        if self.receiver_max_failures.0 == 0 || self.receiver_max_failures.1.is_zero() {
            return Err(Error::InvalidSetting {
                name: "receiver_max_failures",
                why: "needs at least 1 failure within a window longer than zero; the default is 4 within 5 minutes".into(),
            });
        }
        if self.ui && self.ui_host.trim().is_empty() {
            return Err(Error::InvalidSetting {
                name: "ui_host",
                why: "the status server needs an address to bind, e.g. `127.0.0.1`; or turn it off with `ui(false)`".into(),
            });
        }
        if self.kafka_max_rate_per_partition == Some(0) {
            return Err(Error::InvalidSetting {
                name: "kafka_max_rate_per_partition",
                why: "must be at least 1 record per second (leave it unset for no limit)".into(),
            });
        }
        if self.kafka_poll_timeout.is_zero() || self.kafka_driver_timeout.is_zero() {
            return Err(Error::InvalidDuration {
                what: "Kafka timeout",
                why: "`kafka_poll_timeout` and `kafka_driver_timeout` must be greater than zero"
                    .into(),
            });
        }
        if self.delta_policy.full_every == 0 {
            return Err(Error::InvalidSetting {
                name: "state_full_snapshot_every",
                why: "must be at least 1 (1 writes the whole state at every checkpoint); the default is 10".into(),
            });
        }
        if !(0.0..=10.0).contains(&self.delta_policy.max_ratio) {
            return Err(Error::InvalidSetting {
                name: "state_delta_max_ratio",
                why: format!(
                    "{} is not a share of a snapshot's size between 0 and 10; the default is 0.5",
                    self.delta_policy.max_ratio
                ),
            });
        }
        if self.app_name.trim().is_empty() {
            return Err(Error::InvalidSetting {
                name: "app_name",
                why: "an application needs a name".into(),
            });
        }
        Ok(Resolved {
            app_name: self.app_name.clone(),
            master: self.resolve_master(std::env::var(MASTER_ENV).ok(), cluster_run())?,
            batch_interval,
            block_interval,
            receiver_max_rate: self.receiver_max_rate,
            stop_on_signal: self.stop_on_signal,
            graceful_stop_timeout: self
                .graceful_stop_timeout
                .unwrap_or((batch_interval * 10).min(MAX_DEFAULT_GRACEFUL_STOP)),
            receiver_restart_delay: self.receiver_restart_delay,
            write_ahead_log: self.write_ahead_log,
            backpressure: self.backpressure,
            backpressure_initial_rate: self.backpressure_initial_rate,
            receiver_max_buffered_bytes: self.receiver_max_buffered_bytes,
            receiver_max_failures: self.receiver_max_failures.0,
            receiver_failures_within: self.receiver_max_failures.1,
            ui: self
                .ui
                .then(|| (self.ui_host.trim().to_owned(), self.ui_port)),
            event_log: self.event_log,
            kafka_max_rate_per_partition: self.kafka_max_rate_per_partition,
            kafka_min_rate_per_partition: self.kafka_min_rate_per_partition,
            kafka_poll_timeout: self.kafka_poll_timeout,
            kafka_driver_timeout: self.kafka_driver_timeout,
            instance: match self.instance {
                Some((index, count)) => Some(crate::tasks::Instance::new(index, count)?),
                None => crate::tasks::Instance::from_env()?,
            },
            delta_policy: self.delta_policy,
        })
    }

    /// The master in force: the environment's, then the code's (unless this runs on a
    /// cluster, `cluster` saying why, and it is local), then `local[*]`.
    fn resolve_master(&self, from_env: Option<String>, cluster: Option<&str>) -> Result<Master> {
        if let Some(m) = from_env.filter(|m| !m.trim().is_empty()) {
            return Master::parse(&m);
        }
        match &self.master {
            Some(m) if cluster.is_some() && m.trim_start().starts_with("local") => {
                let set_at = self
                    .master_set_at
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                tracing::info!(
                    "ignoring the local master `{m}` set in code{set_at}: this is a cluster run ({}); using every core the cluster gave (`local[*]`)",
                    cluster.unwrap_or_default()
                );
                Ok(Master::LocalAll)
            }
            Some(m) => Master::parse(m),
            None => Ok(Master::LocalAll),
        }
    }
}

/// Why this process is a cluster run, if it is: built by `cargo stream package` (the runtime's
/// build script sets `--cfg cargo_stream_cluster` from `CARGO_STREAM_CLUSTER_BUILD=1`), or
/// started by a launcher (`CARGO_STREAM_DEPLOY_MODE=cluster`, which every launcher sets, so a
/// binary built without the cfg still ignores a local master on a cluster).
fn cluster_run() -> Option<&'static str> {
    if cfg!(cargo_stream_cluster) {
        Some("built by `cargo stream package`")
    } else if std::env::var(DEPLOY_MODE_ENV).is_ok_and(|m| m == "cluster") {
        Some("`CARGO_STREAM_DEPLOY_MODE=cluster`")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{Milliseconds, Seconds};

    #[test]
    fn masters_parse_or_explain() {
        assert_eq!(Master::parse("local").unwrap(), Master::Local(1));
        assert_eq!(Master::parse("local[*]").unwrap(), Master::LocalAll);
        for bad in [
            "local[0]",
            "local[x]",
            "yarn",
            "local[2",
            "spark://h:7077",
            "",
        ] {
            let e = Master::parse(bad).unwrap_err().to_string();
            assert!(
                e.contains(&format!("`{bad}`")) && e.contains("local[N]"),
                "{e}"
            );
        }
    }

    #[test]
    fn intervals_are_checked() {
        let conf = StreamingConf::new("t").master("local[2]");
        let e = conf.resolve(Duration::ZERO).unwrap_err().to_string();
        assert!(e.contains("batch interval"), "{e}");
        let e = conf
            .clone()
            .block_interval(Seconds(2))
            .resolve(Seconds(1).into())
            .unwrap_err()
            .to_string();
        assert!(e.contains("longer than the batch interval"), "{e}");
        let r = conf.resolve(Milliseconds(100).into()).unwrap();
        assert_eq!(
            r.block_interval,
            Duration::from_millis(100),
            "default clamps to batch"
        );
        assert_eq!(r.graceful_stop_timeout, Duration::from_secs(1));
        // Ten intervals, but never past what fits in Spark's 10 s before its kill.
        let r = conf.resolve(Seconds(2).into()).unwrap();
        assert_eq!(r.graceful_stop_timeout, Duration::from_secs(8));
    }

    #[test]
    fn receiver_limits_are_checked() {
        let r = StreamingConf::new("t").resolve(Seconds(1).into()).unwrap();
        assert_eq!(r.receiver_max_buffered_bytes, 512 << 20);
        assert_eq!(
            (r.receiver_max_failures, r.receiver_failures_within),
            (4, Duration::from_secs(300))
        );
        assert_eq!(r.backpressure_initial_rate, None);
        for (conf, name) in [
            (
                StreamingConf::new("t").receiver_max_buffered_bytes(0),
                "receiver_max_buffered_bytes",
            ),
            (
                StreamingConf::new("t").receiver_max_failures(0, Seconds(1)),
                "receiver_max_failures",
            ),
            (
                StreamingConf::new("t").receiver_max_failures(1, Duration::ZERO),
                "receiver_max_failures",
            ),
            (
                StreamingConf::new("t").backpressure_initial_rate(0),
                "backpressure_initial_rate",
            ),
        ] {
            let e = conf.resolve(Seconds(1).into()).unwrap_err().to_string();
            assert!(e.contains(&format!("`{name}`")), "{e}");
        }
    }

    #[test]
    fn environment_wins_and_cluster_ignores_local() {
        let conf = StreamingConf::new("t").master("local[2]");
        assert_eq!(
            conf.resolve_master(Some("local[3]".into()), None).unwrap(),
            Master::Local(3)
        );
        assert_eq!(conf.resolve_master(None, None).unwrap(), Master::Local(2));
        assert_eq!(
            conf.resolve_master(None, Some("test")).unwrap(),
            Master::LocalAll
        );
        let here = line!() + 1;
        let conf = StreamingConf::new("t").set_master("local[2]");
        let at = conf.master_set_at.unwrap();
        assert_eq!((at.file(), at.line()), (file!(), here), "the caller's line");
        assert_eq!(
            StreamingConf::new("t").resolve_master(None, None).unwrap(),
            Master::LocalAll
        );
    }
}
