//! `StreamingContext`: the user-facing API over the engine (`engine.rs`): inputs, checkpointing,
//! listeners, and the job's lifecycle calls (`start`, `await_termination`, `stop`).

use crate::sync::{CondvarExt, LockExt, RwLockExt};
use std::panic::Location;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::batch::{Batch, Key, StaticBatch};
use crate::batch::{Data, Executor};
use crate::checkpoint::names::Migration;
use crate::conf::StreamingConf;
use crate::dstream::DStream;
use crate::dstream::node::Node;
use crate::engine::{JOIN_TIMEOUT, Lifecycle, PendingReceiver, Shared, State, join_bounded};
use crate::error::{Error, Result};
use crate::metrics::{CounterSnapshot, StreamingListener};
use crate::scheduler;
use crate::source::direct::DirectSource;
use crate::source::file::FileSource;
use crate::source::queue::QueueSource;
use crate::source::receiver::Receiver;
use crate::source::receiver_log::ReceiverLog;
use crate::source::receiver_state::ReceiverState;
use crate::source::socket::SocketReceiver;
use crate::source::supervisor::{SupervisorConf, supervise};
use crate::source::wal::Codec;
use crate::state::StateData;
use crate::state::store::{STORE_KINDS, migration, store_types};
use crate::text::Line;
use crate::time::{Time, millis};

/// The entry point of a streaming job, as Spark's `StreamingContext`.
///
/// ```no_run
/// use cargo_stream_runtime::prelude::*;
///
/// fn main() -> Result<(), cargo_stream_runtime::Error> {
///     let conf = StreamingConf::new("NetworkWordCount").master("local[2]");
///     let ssc = StreamingContext::new(conf, Seconds(1))?;
///     let lines = ssc.socket_text_stream("localhost", 9999);
///     let words = lines.flat_map(|l: String| l.split(' ').map(str::to_owned).collect::<Vec<_>>());
///     let counts = words.map(|w| (w, 1u64)).reduce_by_key(|a, b| a + b);
///     counts.print(10)?;
///     ssc.start()?;
///     ssc.await_termination()
/// }
/// ```
pub struct StreamingContext {
    pub(crate) shared: Arc<Shared>,
}

impl StreamingContext {
    /// A context that runs a batch every `batch_interval` (`Seconds(1)`, `Milliseconds(500)`).
    pub fn new(conf: StreamingConf, batch_interval: impl Into<Duration>) -> Result<Self> {
        let resolved = conf.resolve(batch_interval.into())?;
        tracing::debug!(app = %resolved.app_name, master = %resolved.master, "streaming context created");
        Ok(StreamingContext {
            shared: Arc::new(Shared {
                conf: resolved,
                clock: conf.clock.clone(),
                counters: Arc::default(),
                exec: Arc::default(),
                zero_time: Arc::default(),
                graph: Mutex::default(),
                listeners: RwLock::default(),
                lifecycle: Mutex::new(Lifecycle {
                    state: State::Initialized,
                    failure: None,
                    last_completed: None,
                    final_checkpoint: None,
                }),
                lifecycle_cv: Condvar::new(),
                jobs: Mutex::default(),
                jobs_cv: Condvar::new(),
                hard_stop: AtomicBool::new(false),
                draining: AtomicBool::new(false),
                generator_done: AtomicBool::new(false),
                job_running: AtomicBool::new(false),
                checkpoint_now: AtomicBool::new(false),
                running_output: Mutex::default(),
                checkpoint_dir: Mutex::default(),
                restore: Mutex::default(),
                threads: Mutex::default(),
                receiver_states: Mutex::default(),
                stop_lock: Mutex::new(()),
                ui: Mutex::default(),
            }),
        })
    }

    /// The batch interval.
    pub fn batch_interval(&self) -> Duration {
        self.shared.conf.batch_interval
    }

    /// The master in force after the environment and cluster-build rules.
    pub fn master(&self) -> crate::Master {
        self.shared.conf.master
    }

    /// A stream with one batch per queued collection, then empty batches (Spark's
    /// `queueStream` with `oneAtATime`).
    ///
    /// # Panics
    ///
    /// As every operation, when the context was already started or stopped (Spark's
    /// `IllegalStateException`), naming the caller's file and line.
    #[track_caller]
    pub fn queue_stream<T: Data>(&self, batches: impl IntoIterator<Item = Vec<T>>) -> DStream<T> {
        self.shared.assert_initialized("`queue_stream`");
        let source = Arc::new(QueueSource::new(
            batches.into_iter().collect(),
            self.shared.exec.clone(),
        ));
        self.shared.add_input(source.clone());
        let compute = Box::new(move |t| source.compute(t));
        DStream::from_node(
            self.shared.clone(),
            Node::new("queue_stream", self.batch_interval(), compute),
        )
    }

    /// Lines of UTF-8 text from a TCP server at `host:port`, as Spark's `socketTextStream`.
    /// The receiver reconnects with back-off while the server is absent or after it closes.
    #[track_caller]
    pub fn socket_text_stream(&self, host: impl Into<String>, port: u16) -> DStream<String> {
        let receiver = SocketReceiver {
            host: host.into(),
            port,
            record: std::marker::PhantomData,
        };
        self.add_receiver(receiver, Some(Codec::postcard()), Location::caller())
    }

    /// As [`socket_text_stream`](Self::socket_text_stream), with each line a [`Line`]: a slice
    /// of one block per socket read instead of a `String` of its own, so that no line is
    /// copied or allocated; [`Line::words`] then cuts it into [`Word`](crate::text::Word)s
    /// without allocating. The fast way to read text, for the word count of the templates.
    ///
    /// ```no_run
    /// use cargo_stream_runtime::prelude::*;
    /// let ssc = StreamingContext::new(StreamingConf::new("wc").master("local[2]"), Seconds(1))?;
    /// let counts = ssc
    ///     .socket_lines("localhost", 9999)
    ///     .flat_map(Line::words)
    ///     .map(|w| (w, 1))
    ///     .reduce_by_key(|a, b| a + b);
    /// counts.print(10)?;
    /// # Ok::<(), cargo_stream_runtime::Error>(())
    /// ```
    #[track_caller]
    pub fn socket_lines(&self, host: impl Into<String>, port: u16) -> DStream<Line> {
        let receiver = SocketReceiver {
            host: host.into(),
            port,
            record: std::marker::PhantomData,
        };
        self.add_receiver(receiver, Some(Codec::postcard()), Location::caller())
    }

    /// The lines of new files moved into `dir` after `start()` (names starting with `.` are
    /// ignored, files already there too); each file is read once, as one partition.
    #[track_caller]
    pub fn text_file_stream(&self, dir: impl Into<PathBuf>) -> DStream<String> {
        self.shared.assert_initialized("`text_file_stream`");
        let source = Arc::new(FileSource::new(
            dir.into(),
            self.shared.counters.clone(),
            self.shared.exec.clone(),
        ));
        self.shared.add_input(source.clone());
        self.shared.register_checkpointed(source.clone());
        let compute = Box::new(move |t| source.compute(t));
        DStream::from_node(
            self.shared.clone(),
            Node::new("text_file_stream", self.batch_interval(), compute),
        )
    }

    /// A stream fed by a custom [`Receiver`], which holds one of the master's threads.
    #[track_caller]
    pub fn receiver_stream<R: Receiver>(&self, receiver: R) -> DStream<R::Item> {
        self.add_receiver(receiver, None, Location::caller())
    }

    /// As [`receiver_stream`](Self::receiver_stream), for records that can be serialized, so
    /// that with [`StreamingConf::write_ahead_log`] every block is logged before it is
    /// processed and replayed after a crash.
    #[track_caller]
    pub fn receiver_stream_with_wal<R: Receiver>(&self, receiver: R) -> DStream<R::Item>
    where
        R::Item: crate::StateData,
    {
        self.add_receiver(receiver, Some(Codec::postcard()), Location::caller())
    }

    #[track_caller]
    fn add_receiver<R: Receiver>(
        &self,
        receiver: R,
        codec: Option<Codec<R::Item>>,
        at: &'static Location<'static>,
    ) -> DStream<R::Item> {
        let name = receiver.name();
        self.shared
            .assert_initialized(&format!("receiver `{name}`"));
        let index = self.shared.receiver_states.locked().len();
        let log = match (self.shared.conf.write_ahead_log, codec) {
            (false, _) => None,
            (true, Some(codec)) => {
                let id: String = format!("{index}-{name}")
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                Some(ReceiverLog::new(id, codec))
            }
            (true, None) => {
                self.shared.graph_mut().problems.push(Error::InvalidSetting {
                    name: "write_ahead_log",
                    why: format!(
                        "receiver `{name}` ({at}) cannot log its records; create it with `receiver_stream_with_wal`, whose records implement serde's `Serialize` and `Deserialize`"
                    ),
                });
                None
            }
        };
        let state = Arc::new(ReceiverState::new(
            name.clone(),
            self.shared.conf.receiver_max_rate,
            self.shared
                .conf
                .backpressure
                .then_some(self.shared.conf.batch_interval),
            self.shared.counters.clone(),
            self.shared.exec.clone(),
            log,
        ));
        if state.log.is_some() {
            let mut graph = self.shared.graph_mut();
            graph
                .needs_checkpoint
                .push(format!("the write-ahead log of `{name}` at {at}"));
            graph.register_checkpointed_at(state.clone(), at);
        }
        let stream_id = self.shared.graph_mut().inputs.len();
        self.shared.add_input(state.clone());
        let s = state.clone();
        let launch = Box::new(move |conf: SupervisorConf| {
            let thread_name = format!("receiver-{}", s.name);
            std::thread::Builder::new()
                .name(thread_name)
                .spawn(move || supervise(receiver, s, conf))
        });
        let mut graph = self.shared.graph_mut();
        graph.receivers.push(PendingReceiver {
            name: name.clone(),
            stream_id,
            at,
            launch,
        });
        drop(graph);
        self.shared.receiver_states.locked().push(state.clone());
        let compute = Box::new(move |t| state.compute(t));
        DStream::from_node(
            self.shared.clone(),
            Node::new(name, self.batch_interval(), compute),
        )
    }

    /// Sets the directory where state and input positions are checkpointed, so that a job
    /// restarted with [`get_or_create`](Self::get_or_create) resumes where it stopped. Needed
    /// by stateful and inverse-window operations.
    pub fn checkpoint(&self, dir: impl Into<PathBuf>) -> Result<()> {
        let mut dir = dir.into();
        // Instances share `dir` for their tasks; each keeps the rest in its own subdirectory.
        if let Some(instance) = &self.shared.conf.instance {
            dir = crate::tasks::instance_dir(&dir, instance);
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io("failed to create checkpoint directory", &dir, e))?;
        *self.shared.checkpoint_dir.locked() = Some(dir);
        Ok(())
    }

    /// The context of a job that may have run before: builds the graph with `create` (the
    /// graph is code, so it is built each time), then, when `dir` holds a checkpoint, restores
    /// the state of its stateful operations and the positions of its inputs from the newest
    /// readable one, so that nothing is lost and nothing counted twice. A corrupt newest
    /// checkpoint falls back to the one before; none readable is an error.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let dir = tempfile::tempdir()?;
    /// let ssc = StreamingContext::get_or_create(dir.path(), || {
    ///     let ssc = StreamingContext::new(StreamingConf::new("totals").master("local[2]"), Seconds(1))?;
    ///     let totals = ssc
    ///         .queue_stream(vec![vec![("a".to_string(), 1u64)]])
    ///         .update_state_by_key(|v: Vec<u64>, s: Option<u64>| Some(v.iter().sum::<u64>() + s.unwrap_or(0)));
    ///     totals.print(10)?;
    ///     Ok(ssc)
    /// })?;
    /// ssc.start()?;
    /// ssc.stop(true)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_or_create(
        dir: impl Into<PathBuf>,
        create: impl FnOnce() -> Result<StreamingContext>,
    ) -> Result<StreamingContext> {
        let dir = dir.into();
        let ssc = create()?;
        ssc.checkpoint(&dir)?;
        // With instances, the instance's own checkpoint is in its subdirectory of `dir`.
        let own = ssc.shared.checkpoint_dir().unwrap_or_else(|| dir.clone());
        let found = crate::checkpoint::read_latest(&own)?;
        if let Some((time, parts)) = found {
            tracing::info!(dir = %dir.display(), batch = time.millis(), "recovering from checkpoint");
            *ssc.shared.restore.locked() = Some((time, parts));
        }
        Ok(ssc)
    }

    /// Adds a listener for batch and receiver events.
    pub fn add_streaming_listener(&self, listener: impl StreamingListener + 'static) {
        self.shared
            .listeners
            .write_locked()
            .push(Arc::new(listener));
    }

    /// Counters of input skipped (non-UTF-8 lines, vanished files) and receiver restarts.
    pub fn counters(&self) -> CounterSnapshot {
        self.shared.counters.snapshot()
    }

    /// Starts receiving and processing, as Spark's `start()`.
    ///
    /// Errors, leaving the context stopped as Spark does, if there is no output operation,
    /// if an operation needs a checkpoint directory and none is set, if the receivers would
    /// leave no thread for batches, or if a source cannot start. A second `start()` of a
    /// running context is ignored with a warning; `start()` after `stop()` is an error.
    ///
    /// With [`StreamingConf::stop_on_signal`] (the default), SIGTERM and SIGINT stop the
    /// context gracefully from now on; under a launcher (`CARGO_STREAM_PARENT_PID` or
    /// `CARGO_STREAM_BUNDLE_DIR` set, as `run.sh` and the jar's launcher do) the process also
    /// gets SIGTERM when its launcher dies, so that it is never left running alone (on Linux;
    /// without `stop_on_signal` that SIGTERM ends the process at once).
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let conf = StreamingConf::new("t").master("local[2]").stop_on_signal(false);
    /// let ssc = StreamingContext::new(conf, Seconds(1))?;
    /// ssc.queue_stream(vec![vec![1]]).print(10)?;
    /// ssc.start()?;
    /// ssc.start()?; // ignored, as in Spark
    /// ssc.stop(false)?;
    /// assert!(ssc.start().is_err());
    /// # Ok::<(), cargo_stream_runtime::Error>(())
    /// ```
    #[track_caller]
    pub fn start(&self) -> Result<()> {
        let at = Location::caller();
        let sh = &self.shared;
        let mut life = sh.lifecycle();
        match life.state {
            State::Initialized => {}
            State::Active => {
                tracing::warn!(
                    "StreamingContext has already been started (`start()` again at {at}, ignored)"
                );
                return Ok(());
            }
            State::Stopped => {
                return Err(Error::IllegalState(format!(
                    "StreamingContext has already been stopped: `start()` at {at} cannot start it again; create a new `StreamingContext` (with `StreamingContext::get_or_create` to resume from its checkpoint)"
                )));
            }
        }
        self.start_ui();
        let mut handles = Vec::new();
        let first = match self.launch(&mut handles) {
            Ok(first) => first,
            Err(e) => {
                sh.ui.locked().take();
                // As Spark: "Error starting the context, marking it as stopped".
                tracing::error!("error starting the context, marking it as stopped: {e}");
                sh.halt();
                let abandoned = join_bounded(handles, Instant::now() + JOIN_TIMEOUT);
                if !abandoned.is_empty() {
                    tracing::warn!(
                        "threads left running after the failed start: {}",
                        abandoned.join(", ")
                    );
                }
                life.state = State::Stopped;
                sh.lifecycle_cv.notify_all();
                return Err(e);
            }
        };
        sh.threads.locked().extend(handles);
        life.state = State::Active;
        drop(life);
        if sh.conf.stop_on_signal {
            crate::signals::install(Arc::downgrade(sh));
        }
        crate::signals::die_with_launcher();
        tracing::info!(
            app = %sh.conf.app_name,
            master = %sh.conf.master,
            batch_ms = millis(sh.conf.batch_interval),
            first_batch = first.millis(),
            "streaming context started"
        );
        sh.listeners
            .read_locked()
            .iter()
            .for_each(|l| l.on_streaming_started(first));
        if let Some(url) = self.ui_url() {
            tracing::info!(url = %url, "status page at {url}");
        }
        Ok(())
    }

    /// The status page's URL (`http://127.0.0.1:4040/`) while the context runs and until it
    /// is dropped; `None` before `start()`, with [`StreamingConf::ui`]`(false)`, or when no
    /// port was free. Spark's streaming REST API is under it at `api/v1/applications`.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let conf = StreamingConf::new("t").master("local[2]").stop_on_signal(false).ui_port(0);
    /// let ssc = StreamingContext::new(conf, Seconds(1))?;
    /// ssc.queue_stream(vec![vec![1]]).print(10)?;
    /// assert_eq!(ssc.ui_url(), None);
    /// ssc.start()?;
    /// assert!(ssc.ui_url().unwrap().starts_with("http://127.0.0.1:"));
    /// ssc.stop(false)?;
    /// # Ok::<(), cargo_stream_runtime::Error>(())
    /// ```
    pub fn ui_url(&self) -> Option<String> {
        self.shared.ui.locked().as_ref().and_then(|u| u.url())
    }

    /// Starts the status server and the event log's listener, before the threads that report
    /// to it.
    fn start_ui(&self) {
        let sh = &self.shared;
        let event_dir = sh
            .checkpoint_dir()
            .filter(|_| sh.conf.event_log)
            .map(|d| d.join(crate::ui::EVENTS_DIR));
        if sh.conf.ui.is_none() && event_dir.is_none() {
            return;
        }
        let (inputs, receivers, output_ops) = {
            let graph = sh.graph_mut();
            (
                graph.inputs.iter().map(|i| i.name()).collect(),
                graph
                    .receivers
                    .iter()
                    .map(|r| (r.stream_id, r.name.clone()))
                    .collect(),
                graph.outputs.len(),
            )
        };
        let ui = crate::ui::Ui::start(crate::ui::UiSetup {
            app_name: sh.conf.app_name.clone(),
            batch_ms: millis(sh.conf.batch_interval),
            bind: sh.conf.ui.clone(),
            event_dir,
            counters: sh.counters.clone(),
            inputs,
            receivers,
            output_ops,
        });
        sh.listeners.write_locked().push(ui.listener());
        *sh.ui.locked() = Some(ui);
    }

    /// Validates the graph and starts the threads that run it (into `handles`, so that a
    /// failure part-way can stop the ones already running); the first batch's time.
    fn launch(&self, handles: &mut Vec<JoinHandle<()>>) -> Result<Time> {
        let sh = &self.shared;
        let mut graph = sh.graph_mut();
        if let Some(problem) = graph.problems.drain(..).next() {
            return Err(problem);
        }
        if graph.outputs.is_empty() {
            return Err(Error::NoOutputOperations);
        }
        if let Some(op) = graph.needs_checkpoint.first()
            && sh.checkpoint_dir().is_none()
        {
            return Err(Error::CheckpointRequired {
                operation: op.clone(),
            });
        }
        let threads = sh.conf.master.threads();
        let receivers = graph.receivers.len();
        if receivers > 0 && threads < receivers + 1 {
            let names: Vec<String> = graph
                .receivers
                .iter()
                .map(|r| format!("`{}` ({}:{})", r.name, r.at.file(), r.at.line()))
                .collect();
            return Err(Error::NotEnoughThreads {
                master: sh.conf.master.to_string(),
                threads,
                receivers,
                names: names.join(", "),
                needed: receivers + 1,
            });
        }
        let checkpoint = match sh.checkpoint_dir() {
            Some(dir) => {
                let lock = crate::checkpoint::lock(&dir)?;
                let mut parts = std::mem::take(&mut graph.checkpointed);
                parts.set_policy(sh.conf.delta_policy);
                if let Some((time, saved)) = sh.restore.locked().take() {
                    restore(&dir, time, &parts, saved)?;
                }
                // With instances, the tasks this instance owns come from their own checkpoints.
                let tasks = match (&sh.conf.instance, dir.parent()) {
                    (Some(instance), Some(root)) => {
                        let tasks = crate::tasks::checkpoint::TaskCheckpoints::new(
                            root,
                            *instance,
                            &sh.conf.app_name,
                        );
                        tasks.restore(&parts)?;
                        Some(tasks)
                    }
                    _ => None,
                };
                for p in &parts {
                    p.enable(&dir)?;
                }
                let interval = graph
                    .checkpoint_intervals
                    .iter()
                    .copied()
                    .min()
                    .unwrap_or_else(|| crate::checkpoint::default_interval(sh.conf.batch_interval));
                Some(scheduler::CheckpointPlan {
                    dir,
                    interval,
                    parts,
                    _lock: lock,
                    tasks,
                })
            }
            None => None,
        };
        for input in &graph.inputs {
            input.start()?;
        }
        for check in graph.start_checks.drain(..) {
            check()?;
        }
        // Every thread of `local[N]` runs batch tasks: a receiver waits on I/O nearly all the
        // time (7 % of a core at 16 M words/s), so reserving it a whole core, as Spark's
        // executor slots do, left one of two cores idle. The rule above is kept all the same.
        let _ = sh.exec.set(Executor::new(threads, threads));
        let interval = millis(sh.conf.batch_interval);
        let start = (sh.clock.now_ms() / interval + 1) * interval;
        let zero = Time(start - interval);
        let _ = sh.zero_time.set(zero);

        let listeners = sh.listeners.read_locked().clone();
        // A receiver that failed too often stops the job as a failed batch does.
        let fail_job: crate::source::supervisor::FailJob = {
            let weak = Arc::downgrade(sh);
            Arc::new(move |operation, message| {
                let Some(sh) = weak.upgrade() else { return };
                // The batch being received when the receiver failed.
                let interval = millis(sh.conf.batch_interval);
                let batch = sh.clock.now_ms() / interval * interval;
                let mut life = sh.lifecycle();
                life.failure.get_or_insert((batch, operation, message));
                drop(life);
                sh.halt();
                let _ = std::thread::Builder::new()
                    .name("stream-stopper".into())
                    .spawn(move || {
                        let _ = sh.stop(false);
                    });
            })
        };
        for r in graph.receivers.drain(..) {
            let conf = SupervisorConf {
                block_interval: sh.conf.block_interval,
                max_restart_delay: sh.conf.receiver_restart_delay,
                listeners: listeners.clone(),
                created_at: format!("{}:{}", r.at.file(), r.at.line()),
                max_failures: sh.conf.receiver_max_failures,
                failures_within: sh.conf.receiver_failures_within,
                max_buffered_bytes: sh.conf.receiver_max_buffered_bytes,
                initial_rate: sh.conf.backpressure_initial_rate,
                fail_job: fail_job.clone(),
                stream_id: r.stream_id,
            };
            handles.push((r.launch)(conf).map_err(|e| Error::Source {
                source_name: r.name.clone(),
                message: format!("could not start its thread: {e}"),
            })?);
        }
        let run = Arc::new(scheduler::RunGraph {
            checkpoint,
            nodes: std::mem::take(&mut graph.nodes),
            hooks: std::mem::take(&mut graph.hooks),
            outputs: std::mem::take(&mut graph.outputs),
            inputs: std::mem::take(&mut graph.inputs),
        });
        drop(graph);
        handles.push(scheduler::spawn_generator(
            sh.clone(),
            run.clone(),
            Time(start),
        )?);
        handles.push(scheduler::spawn_jobs(sh.clone(), run)?);
        Ok(Time(start))
    }

    /// Waits until the context stops; the error of a failed batch if one stopped it.
    pub fn await_termination(&self) -> Result<()> {
        self.shared.await_stopped(None).map(|_| ())
    }

    /// Waits until the context stops or `timeout` passes; true if it stopped.
    pub fn await_termination_or_timeout(&self, timeout: impl Into<Duration>) -> Result<bool> {
        self.shared.await_stopped(Some(timeout.into()))
    }

    /// Waits until the batch at `time` has been processed (for tests on a manual clock).
    pub fn await_batch(&self, time: Time, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let mut life = self.shared.lifecycle();
        loop {
            if life.last_completed.is_some_and(|t| t >= time) {
                return Ok(true);
            }
            if let Some(e) = Shared::failure_error(&life) {
                return Err(e);
            }
            let now = Instant::now();
            if now >= deadline || life.state == State::Stopped {
                return Ok(false);
            }
            life = self
                .shared
                .lifecycle_cv
                .wait_timeout_locked(life, deadline - now)
                .0;
        }
    }

    /// Stops the context; a stopped context cannot be started again.
    ///
    /// A graceful stop (`true`, as SIGTERM does) first checkpoints the last completed batch,
    /// when checkpointing is on and it is not checkpointed yet, so that a kill during the rest
    /// of the stop loses nothing; then it stops the receivers and processes every record they
    /// received, its last batch checkpointed too, all within
    /// [`graceful_stop_timeout`](StreamingConf::graceful_stop_timeout). Otherwise pending
    /// batches are dropped (the batch running now still completes).
    ///
    /// Every wait is bounded: after the graceful part, each thread gets 1 s to end (2 s
    /// without draining, as Spark waits for running jobs); a thread that does not end (a
    /// receiver whose `on_stop` blocks, an output operation that does not return) is left
    /// running and the stop returns [`Error::StopTimedOut`] naming it, as it does when the
    /// graceful part times out.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let conf = StreamingConf::new("t").master("local[2]").stop_on_signal(false);
    /// let ssc = StreamingContext::new(conf, Milliseconds(100))?;
    /// ssc.queue_stream(vec![vec![1, 2]]).print(10)?;
    /// ssc.start()?;
    /// ssc.stop(true)?;
    /// assert!(ssc.await_termination_or_timeout(Milliseconds(0))?);
    /// # Ok::<(), cargo_stream_runtime::Error>(())
    /// ```
    pub fn stop(&self, graceful: bool) -> Result<()> {
        self.shared.stop(graceful)
    }
}

impl Drop for StreamingContext {
    fn drop(&mut self) {
        if self.shared.lifecycle().state == State::Active {
            let _ = self.shared.stop(false);
        }
        // The status server lives as long as the context, stopped or not.
        self.shared.ui.locked().take();
    }
}

/// Gives each checkpointed part its saved state, matched by name (`checkpoint/names.rs`).
fn restore(
    dir: &std::path::Path,
    time: Time,
    parts: &crate::checkpoint::Registry,
    saved: crate::checkpoint::Parts,
) -> Result<()> {
    parts.restore(dir, time, saved)
}

// Entry points of `source/queue.rs`.
impl StreamingContext {
    /// As [`queue_stream`](Self::queue_stream), with every batch cut into `partitions`
    /// contiguous slices, as Spark's `queueStream` of RDDs made with
    /// `sc.makeRDD(seq, partitions)` (the default is the master's thread count).
    ///
    /// ```
    /// let out = cargo_stream_runtime::example_with(Vec::<Vec<i32>>::new(), 2, |ssc, _| {
    ///     ssc.queue_stream_with_partitions(vec![vec![1, 2, 3, 4, 5], vec![6]], 3).glom()
    /// });
    /// assert_eq!(out[0].1, vec![vec![1], vec![2, 3], vec![4, 5]]);
    /// assert_eq!(out[1].1, vec![vec![], vec![], vec![6]]);
    /// ```
    #[track_caller]
    pub fn queue_stream_with_partitions<T: Data>(
        &self,
        batches: impl IntoIterator<Item = Vec<T>>,
        partitions: usize,
    ) -> DStream<T> {
        self.shared.assert_initialized("an input stream");
        let source = Arc::new(
            QueueSource::new(batches.into_iter().collect(), self.shared.exec.clone())
                .with_partitions(partitions),
        );
        self.shared.graph_mut().inputs.push(source.clone());
        let compute = Box::new(move |t| source.compute(t));
        DStream::from_node(
            self.shared.clone(),
            Node::new("queue_stream", self.batch_interval(), compute),
        )
    }
}

// Entry points of `source/direct.rs`.
impl StreamingContext {
    /// A custom direct input, as a subclass of Spark's `InputDStream`: at each batch time
    /// `compute(time)` gives the batch's records, cut into the default number of partitions,
    /// or `None` for no batch at all at that time. It runs on the batch timer's thread when
    /// the batch is generated, so a slow batch never changes what the input gave.
    ///
    /// With no batch, as in Spark, the operations downstream produce nothing for that time
    /// and outputs do not run (`print` prints nothing, not even its header), while
    /// `update_state_by_key` still visits its keys and `map_with_state` its idle keys;
    /// `ssc.union` and `ssc.transform` fail the job, as Spark's do. A panic in `compute` fails
    /// the batch.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// # use std::sync::{Arc, Mutex};
    /// # let clock = cargo_stream_runtime::ManualClock::new();
    /// let conf = StreamingConf::new("direct").master("local[2]").manual_clock(clock.clone());
    /// let ssc = StreamingContext::new(conf, Seconds(1))?;
    /// // A batch every other second.
    /// let input = ssc.input_stream(|time: Time| (time.millis() % 2000 == 0).then(|| vec![time.millis()]));
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// input.foreach_rdd(move |b, t| sink.lock().unwrap().push((t.millis(), b.collect())))?;
    /// ssc.start()?;
    /// for s in 1..=4 {
    ///     clock.advance(Seconds(1));
    ///     ssc.await_batch(Time::from_millis(s * 1000), std::time::Duration::from_secs(10))?;
    /// }
    /// ssc.stop(false)?;
    /// assert_eq!(*seen.lock().unwrap(), vec![(2000, vec![2000]), (4000, vec![4000])]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn input_stream<T: Data>(
        &self,
        compute: impl FnMut(Time) -> Option<Vec<T>> + Send + 'static,
    ) -> DStream<T> {
        let at = Location::caller();
        self.shared.assert_initialized("an input stream");
        let source = Arc::new(DirectSource::new(
            Box::new(compute),
            self.shared.exec.clone(),
            at,
        ));
        self.shared.graph_mut().inputs.push(source.clone());
        let compute = Box::new(move |t| source.batch(t));
        DStream::from_node(
            self.shared.clone(),
            Node::new("input_stream", self.batch_interval(), compute),
        )
    }
}

// `ssc.union` and `ssc.transform`: operations over several streams of the same context and
// interval, as Spark's `StreamingContext.union` and `StreamingContext.transform`.
impl StreamingContext {
    /// The records of all `streams`, batch by batch (each batch's partitions one stream after
    /// the other), as Spark's `StreamingContext.union`.
    ///
    /// # Panics
    /// As Spark fails: when `streams` is empty, or holds streams of another context or with
    /// different intervals (slides). A stream that gives no batch at a time (a custom
    /// [`input_stream`](Self::input_stream) returning `None`) fails that batch, as in Spark.
    ///
    /// ```
    /// let out = cargo_stream_runtime::example_with(vec![vec![1, 2]], 1, |ssc, s| {
    ///     ssc.union(vec![s.clone(), s.map(|x| x + 10), s.map(|x| x + 20)])
    /// });
    /// let mut all = out[0].1.clone();
    /// all.sort();
    /// assert_eq!(all, vec![1, 2, 11, 12, 21, 22]);
    /// ```
    #[track_caller]
    pub fn union<T: Data>(&self, streams: Vec<DStream<T>>) -> DStream<T> {
        let at = Location::caller();
        self.combine("union", streams, at, move |batches, time| {
            let mut parts = Vec::new();
            let mut exec = None;
            for (i, b) in batches.into_iter().enumerate() {
                let Some(b) = b else {
                    panic!(
                        "Could not generate RDD from a parent for unifying at time {} ms: stream {} of the `union` created at {at} gave no batch",
                        time.millis(),
                        i + 1
                    );
                };
                exec.get_or_insert_with(|| b.exec.clone());
                parts.extend(b.parts);
            }
            exec.map(|e| Batch::new(parts, e))
        })
    }

    /// Applies `f` to the batches of all `streams` at each time, as Spark's
    /// `StreamingContext.transform` (whose streams may differ in type, which here is one
    /// `T`: map them to an enum first for mixed streams).
    ///
    /// # Panics
    /// As [`union`](Self::union): when `streams` is empty, mixes contexts or intervals; and a
    /// stream that gives no batch at a time fails that batch.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let out = cargo_stream_runtime::example_with(vec![vec![1, 2, 3]], 1, |ssc, s| {
    ///     ssc.transform(vec![s.clone(), s.map(|x| x * 10)], |batches: Vec<Batch<i32>>, _time| {
    ///         let mut all: Vec<i32> = batches.iter().flat_map(|b| b.collect()).collect();
    ///         all.sort();
    ///         batches[0].parallelize(all, 1)
    ///     })
    /// });
    /// assert_eq!(out[0].1, vec![1, 2, 3, 10, 20, 30]);
    /// ```
    #[track_caller]
    pub fn transform<T: Data, U: Data>(
        &self,
        streams: Vec<DStream<T>>,
        f: impl Fn(Vec<Batch<T>>, Time) -> Batch<U> + Send + Sync + 'static,
    ) -> DStream<U> {
        let at = Location::caller();
        self.combine("transform", streams, at, move |batches, time| {
            let batches = batches
                .into_iter()
                .enumerate()
                .map(|(i, b)| {
                    b.unwrap_or_else(|| {
                        panic!(
                            "Couldn't generate RDD from parent at time {} ms: stream {} of the `transform` created at {at} gave no batch",
                            time.millis(),
                            i + 1
                        )
                    })
                })
                .collect();
            Some(f(batches, time))
        })
    }

    /// A node computed from the batches of `streams` at each time, after Spark's checks.
    fn combine<T: Data, U: Data>(
        &self,
        op: &str,
        streams: Vec<DStream<T>>,
        at: &'static Location<'static>,
        f: impl Fn(Vec<Option<Batch<T>>>, Time) -> Option<Batch<U>> + Send + Sync + 'static,
    ) -> DStream<U> {
        self.shared.assert_initialized(&format!("`{op}`"));
        let Some(first) = streams.first() else {
            panic!("requirement failed: List of DStreams to {op} is empty (`ssc.{op}` at {at})");
        };
        if streams
            .iter()
            .any(|s| !Arc::ptr_eq(&s.shared, &self.shared))
        {
            panic!(
                "requirement failed: Some of the DStreams have different contexts (`ssc.{op}` at {at})"
            );
        }
        let slide = first.node.slide;
        if let Some(other) = streams.iter().find(|s| s.node.slide != slide) {
            panic!(
                "requirement failed: Some of the DStreams have different slide durations (`ssc.{op}` at {at}: {} ms and {} ms)",
                slide.as_millis(),
                other.node.slide.as_millis()
            );
        }
        let parents: Vec<_> = streams.iter().map(|s| s.node.clone()).collect();
        parents.iter().for_each(|p| p.add_consumer());
        let compute = Box::new(move |t| f(parents.iter().map(|p| p.get(t)).collect(), t));
        DStream::from_node(self.shared.clone(), Node::new(op, slide, compute))
    }
}

// Entry points of `state/name.rs`.
impl StreamingContext {
    /// Starts the state named `name` empty at this start, whatever the checkpoint holds for
    /// it: the escape hatch when its type changed, or to drop the saved state of an operation
    /// that was removed. The environment variable
    /// [`RESET_STATE_ENV`](crate::RESET_STATE_ENV) (`CARGO_STREAM_RESET_STATE=a,b`) does the
    /// same for a packaged job. A name that is neither in this job nor in its checkpoint makes
    /// `start()` fail, so that a typo is not silently ignored.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let dir = tempfile::tempdir()?;
    /// let ssc = StreamingContext::get_or_create(dir.path(), || {
    ///     let ssc = StreamingContext::new(StreamingConf::new("totals").master("local[2]"), Seconds(1))?;
    ///     ssc.queue_stream(vec![vec![("a".to_string(), 1u64)]])
    ///         .update_state_by_key(|v: Vec<u64>, s: Option<u64>| Some(v.iter().sum::<u64>() + s.unwrap_or(0)))
    ///         .name("totals")
    ///         .print(10)?;
    ///     Ok(ssc)
    /// })?;
    /// ssc.reset_state("totals");
    /// ssc.start()?;
    /// ssc.stop(true)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reset_state(&self, name: impl AsRef<str>) {
        self.shared.graph_mut().checkpointed.reset(name.as_ref());
    }

    /// Converts the saved state named `name` of an `update_state_by_key` or `map_with_state`
    /// whose state type changed from `Old` to `New` (keys of type `K` unchanged), at this
    /// start: `f` gets each key and its old state and returns its new state, or `None` to drop
    /// the key. The alternative to [`reset_state`](Self::reset_state) when the old totals can
    /// be carried over. `start()` refuses, naming the state, when the checkpoint does not
    /// hold `K` and `Old`, or the operation does not hold `K` and `New`.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let dir = tempfile::tempdir()?;
    /// let job = |dir: &std::path::Path, migrate: bool| -> Result<(), Error> {
    ///     let ssc = StreamingContext::get_or_create(dir, || {
    ///         let ssc = StreamingContext::new(StreamingConf::new("totals").master("local[2]"), Seconds(1))?;
    ///         let pairs = ssc.queue_stream(vec![vec![("a".to_string(), 1u64)]]);
    ///         if migrate {
    ///             // Version 2 keeps the totals as floats.
    ///             pairs.update_state_by_key(|v: Vec<u64>, s: Option<f64>| Some(v.len() as f64 + s.unwrap_or(0.0)))
    ///                 .name("totals")
    ///                 .print(10)?;
    ///         } else {
    ///             pairs.update_state_by_key(|v: Vec<u64>, s: Option<u64>| Some(v.len() as u64 + s.unwrap_or(0)))
    ///                 .name("totals")
    ///                 .print(10)?;
    ///         }
    ///         Ok(ssc)
    ///     })?;
    ///     if migrate {
    ///         ssc.migrate_state("totals", |_: &String, total: u64| Some(total as f64));
    ///     }
    ///     ssc.start()?;
    ///     ssc.stop(true)
    /// };
    /// job(dir.path(), false)?;
    /// job(dir.path(), true)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn migrate_state<K: Key + StateData, Old: StateData, New: StateData>(
        &self,
        name: impl AsRef<str>,
        f: impl Fn(&K, Old) -> Option<New> + Send + Sync + 'static,
    ) {
        let migration = Migration {
            kinds: &STORE_KINDS,
            from: store_types::<K, Old>(),
            to: store_types::<K, New>(),
            convert: Box::new(migration(f)),
            at: Location::caller(),
        };
        self.shared
            .graph_mut()
            .checkpointed
            .migrate(name.as_ref(), migration);
    }
}

// Entry point of `batch/static_batch.rs`.
impl StreamingContext {
    /// Reference data cut once into `partitions` contiguous slices, to use inside `transform`
    /// at every batch, as Spark's `ssc.sparkContext.parallelize(seq, numSlices)`.
    ///
    /// ```
    /// let out = cargo_stream_runtime::example_with(vec![vec![("fr", 3), ("de", 1)]], 1, |ssc, clicks| {
    ///     let countries = ssc.parallelize(vec![("fr", "France"), ("de", "Germany")], 2);
    ///     clicks.transform(move |b| b.join(countries.batch(), None).map(|(_, (n, name))| (name, n)))
    /// });
    /// let mut joined = out[0].1.clone();
    /// joined.sort();
    /// assert_eq!(joined, vec![("France", 3), ("Germany", 1)]);
    /// ```
    pub fn parallelize<T: Data>(&self, data: Vec<T>, partitions: usize) -> StaticBatch<T> {
        StaticBatch::new(data, partitions, self.shared.exec.clone())
    }
}
