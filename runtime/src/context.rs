//! `StreamingContext`: owns the DStream graph, the receivers, the batch timer and the job
//! thread, and the job's lifecycle (`start`, `await_termination`, `stop`).

use std::collections::VecDeque;
use std::panic::Location;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::batch::{Data, Executor};
use crate::checkpoint::Checkpointed;
use crate::conf::{Resolved, StreamingConf};
use crate::dstream::DStream;
use crate::dstream::node::{AnyNode, Node};
use crate::error::{Error, Result};
use crate::metrics::{CounterSnapshot, Counters, StreamingListener};
use crate::source::InputSource;
use crate::source::file::FileSource;
use crate::source::queue::QueueSource;
use crate::source::receiver::{Receiver, ReceiverState};
use crate::source::receiver_log::ReceiverLog;
use crate::source::socket::SocketReceiver;
use crate::source::supervisor::{SupervisorConf, supervise};
use crate::source::wal::Codec;
use crate::time::{Time, millis};
use crate::{clock::Clock, scheduler};

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

/// What the context, its DStreams and its threads share.
pub(crate) struct Shared {
    pub(crate) conf: Resolved,
    pub(crate) clock: Clock,
    pub(crate) counters: Arc<Counters>,
    pub(crate) exec: Arc<OnceLock<Executor>>,
    pub(crate) zero_time: Arc<OnceLock<Time>>,
    pub(crate) graph: Mutex<Graph>,
    pub(crate) listeners: RwLock<Vec<Arc<dyn StreamingListener>>>,
    pub(crate) lifecycle: Mutex<Lifecycle>,
    pub(crate) lifecycle_cv: Condvar,
    pub(crate) jobs: Mutex<VecDeque<scheduler::PendingBatch>>,
    pub(crate) jobs_cv: Condvar,
    /// Stop now: no new batch, pending ones dropped.
    pub(crate) hard_stop: AtomicBool,
    /// The next batch is the last: it takes every block the stopped receivers left.
    pub(crate) draining: AtomicBool,
    pub(crate) generator_done: AtomicBool,
    /// A batch is being processed.
    pub(crate) job_running: AtomicBool,
    checkpoint_dir: Mutex<Option<PathBuf>>,
    /// A checkpoint found by `get_or_create`, restored by `start()`.
    restore: Mutex<Option<(Time, crate::checkpoint::Parts)>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    receiver_states: Mutex<Vec<Arc<dyn ReceiverControl>>>,
    stop_lock: Mutex<()>,
}

/// Everything registered on the graph before `start()`.
#[derive(Default)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<Arc<dyn AnyNode>>,
    pub(crate) outputs: Vec<scheduler::Output>,
    pub(crate) hooks: Vec<scheduler::Output>,
    /// Errors found while building the graph (a window not a multiple of the batch
    /// interval, ...), reported by `start()`.
    pub(crate) problems: Vec<Error>,
    /// Operations that need a checkpoint directory, with where they were created.
    pub(crate) needs_checkpoint: Vec<String>,
    /// What goes into checkpoints, in creation order, with the names it is saved under.
    pub(crate) checkpointed: crate::checkpoint::Registry,
    /// Checkpoint intervals asked for with `DStream::checkpoint`.
    pub(crate) checkpoint_intervals: Vec<Duration>,
    pub(crate) inputs: Vec<Arc<dyn InputSource>>,
    receivers: Vec<PendingReceiver>,
}

struct PendingReceiver {
    name: String,
    at: &'static Location<'static>,
    launch: Box<dyn FnOnce(SupervisorConf) -> std::io::Result<JoinHandle<()>> + Send>,
}

/// The stop side of a receiver, type-erased.
trait ReceiverControl: Send + Sync {
    fn request_stop(&self);
    fn finished(&self) -> bool;
}

impl<T: Data> ReceiverControl for ReceiverState<T> {
    fn request_stop(&self) {
        self.stop_requested.store(true, Ordering::SeqCst);
        let _guard = self.control.lock();
        self.wake.notify_all();
    }
    fn finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Initialized,
    Active,
    Stopped,
}

pub(crate) struct Lifecycle {
    pub(crate) state: State,
    pub(crate) failure: Option<(u64, String, String)>,
    pub(crate) last_completed: Option<Time>,
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
                }),
                lifecycle_cv: Condvar::new(),
                jobs: Mutex::default(),
                jobs_cv: Condvar::new(),
                hard_stop: AtomicBool::new(false),
                draining: AtomicBool::new(false),
                generator_done: AtomicBool::new(false),
                job_running: AtomicBool::new(false),
                checkpoint_dir: Mutex::default(),
                restore: Mutex::default(),
                threads: Mutex::default(),
                receiver_states: Mutex::default(),
                stop_lock: Mutex::new(()),
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
    pub fn queue_stream<T: Data>(&self, batches: impl IntoIterator<Item = Vec<T>>) -> DStream<T> {
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
        };
        self.add_receiver(receiver, Some(Codec::postcard()), Location::caller())
    }

    /// The lines of new files moved into `dir` after `start()` (names starting with `.` are
    /// ignored, files already there too); each file is read once, as one partition.
    #[track_caller]
    pub fn text_file_stream(&self, dir: impl Into<PathBuf>) -> DStream<String> {
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

    fn add_receiver<R: Receiver>(
        &self,
        receiver: R,
        codec: Option<Codec<R::Item>>,
        at: &'static Location<'static>,
    ) -> DStream<R::Item> {
        let name = receiver.name();
        let index = self
            .shared
            .receiver_states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len();
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
            at,
            launch,
        });
        drop(graph);
        self.shared
            .receiver_states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(state.clone());
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
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io("failed to create checkpoint directory", &dir, e))?;
        *self
            .shared
            .checkpoint_dir
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(dir);
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
        let found = if dir.exists() {
            crate::checkpoint::read_latest(&dir)?
        } else {
            None
        };
        let ssc = create()?;
        ssc.checkpoint(&dir)?;
        if let Some((time, parts)) = found {
            tracing::info!(dir = %dir.display(), batch = time.millis(), "recovering from checkpoint");
            *ssc.shared.restore.lock().unwrap_or_else(|p| p.into_inner()) = Some((time, parts));
        }
        Ok(ssc)
    }

    /// Adds a listener for batch and receiver events.
    pub fn add_streaming_listener(&self, listener: impl StreamingListener + 'static) {
        self.shared
            .listeners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::new(listener));
    }

    /// Counters of input skipped (non-UTF-8 lines, vanished files) and receiver restarts.
    pub fn counters(&self) -> CounterSnapshot {
        self.shared.counters.snapshot()
    }

    /// Starts receiving and processing. Errors if there is no output operation, if the
    /// receivers would leave no thread for batches, or if a source cannot start.
    pub fn start(&self) -> Result<()> {
        let sh = &self.shared;
        let mut life = sh.lifecycle();
        match life.state {
            State::Initialized => {}
            State::Active => {
                return Err(Error::IllegalState(
                    "the streaming context has already been started".into(),
                ));
            }
            State::Stopped => {
                return Err(Error::IllegalState(
                    "a stopped streaming context cannot be started again; create a new one".into(),
                ));
            }
        }
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
                let parts = std::mem::take(&mut graph.checkpointed);
                if let Some((time, saved)) =
                    sh.restore.lock().unwrap_or_else(|p| p.into_inner()).take()
                {
                    restore(&dir, time, &parts, saved)?;
                }
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
                })
            }
            None => None,
        };
        for input in &graph.inputs {
            input.start()?;
        }
        let _ = sh.exec.set(Executor::new(threads - receivers, threads));
        let interval = millis(sh.conf.batch_interval);
        let start = (sh.clock.now_ms() / interval + 1) * interval;
        let zero = Time(start - interval);
        let _ = sh.zero_time.set(zero);

        let listeners = sh
            .listeners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut handles = Vec::new();
        for r in graph.receivers.drain(..) {
            let conf = SupervisorConf {
                block_interval: sh.conf.block_interval,
                max_restart_delay: sh.conf.receiver_restart_delay,
                listeners: listeners.clone(),
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
        sh.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(handles);
        life.state = State::Active;
        drop(life);
        if sh.conf.stop_on_signal {
            crate::signals::install(Arc::downgrade(sh));
        }
        tracing::info!(
            app = %sh.conf.app_name,
            master = %sh.conf.master,
            batch_ms = interval,
            first_batch = start,
            "streaming context started"
        );
        listeners
            .iter()
            .for_each(|l| l.on_streaming_started(Time(start)));
        Ok(())
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
                .wait_timeout(life, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Stops the context. A graceful stop first stops the receivers and processes every record
    /// they received, within the graceful-stop timeout; otherwise pending batches are dropped
    /// (the batch running now still completes).
    pub fn stop(&self, graceful: bool) -> Result<()> {
        self.shared.stop(graceful)
    }
}

impl Drop for StreamingContext {
    fn drop(&mut self) {
        if self.shared.lifecycle().state == State::Active {
            let _ = self.shared.stop(false);
        }
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

impl Shared {
    pub(crate) fn lifecycle(&self) -> std::sync::MutexGuard<'_, Lifecycle> {
        self.lifecycle.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn graph_mut(&self) -> std::sync::MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a part whose state goes into checkpoints, named after the user's code that
    /// created it (the caller's location, through `#[track_caller]` operations).
    #[track_caller]
    pub(crate) fn register_checkpointed(&self, part: Arc<dyn Checkpointed>) {
        self.graph_mut()
            .register_checkpointed_at(part, Location::caller());
    }

    pub(crate) fn checkpoint_dir(&self) -> Option<PathBuf> {
        self.checkpoint_dir
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn is_initialized(&self) -> bool {
        self.lifecycle().state == State::Initialized
    }

    fn add_input(&self, input: Arc<dyn InputSource>) {
        self.assert_initialized("an input stream");
        self.graph_mut().inputs.push(input);
    }

    /// Spark's rule: the graph is fixed once the context started.
    #[track_caller]
    pub(crate) fn assert_initialized(&self, what: &str) {
        if !self.is_initialized() {
            panic!(
                "cannot add {what} at {}: adding inputs, transformations and output operations after starting a context is not supported",
                Location::caller()
            );
        }
    }

    fn failure_error(life: &Lifecycle) -> Option<Error> {
        life.failure.as_ref().map(|(t, op, msg)| Error::JobFailed {
            batch_time: *t,
            operation: op.clone(),
            message: msg.clone(),
        })
    }

    fn await_stopped(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut life = self.lifecycle();
        while life.state != State::Stopped {
            life = match deadline {
                None => self
                    .lifecycle_cv
                    .wait(life)
                    .unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Ok(false);
                    }
                    self.lifecycle_cv
                        .wait_timeout(life, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
        match Self::failure_error(&life) {
            Some(e) => Err(e),
            None => Ok(true),
        }
    }

    fn receivers_finished(&self) -> bool {
        self.receiver_states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .all(|r| r.finished())
    }

    pub(crate) fn request_receivers_stop(&self) {
        self.receiver_states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .for_each(|r| r.request_stop());
    }

    pub(crate) fn stop(&self, graceful: bool) -> Result<()> {
        let _one_at_a_time = self.stop_lock.lock().unwrap_or_else(|p| p.into_inner());
        {
            let mut life = self.lifecycle();
            match life.state {
                State::Stopped => return Ok(()),
                State::Initialized => {
                    life.state = State::Stopped;
                    self.lifecycle_cv.notify_all();
                    return Ok(());
                }
                State::Active => {}
            }
        }
        if std::thread::current().name() == Some(scheduler::JOBS_THREAD) {
            // Called from an output operation: the job thread cannot wait for itself.
            return Err(Error::IllegalState(
                "`stop` called from inside an output operation; call it from another thread".into(),
            ));
        }
        let started = Instant::now();
        let timeout = self.conf.graceful_stop_timeout;
        let mut result = Ok(());
        if graceful {
            tracing::info!(
                "stopping gracefully: stopping receivers, then processing what they received"
            );
            self.request_receivers_stop();
            let in_time = |cond: &dyn Fn() -> bool| {
                while !cond() {
                    if started.elapsed() >= timeout {
                        return false;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                true
            };
            let done = in_time(&|| self.receivers_finished()) && {
                self.draining.store(true, Ordering::SeqCst);
                in_time(&|| self.generator_done.load(Ordering::SeqCst) && self.jobs_idle())
            };
            if !done {
                result = Err(Error::StopTimedOut {
                    waited_ms: started.elapsed().as_millis() as u64,
                });
                tracing::warn!(
                    "graceful stop timed out after {} ms; stopping now",
                    started.elapsed().as_millis()
                );
            }
        }
        self.halt();
        let handles = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for h in handles {
            let _ = h.join();
        }
        let mut life = self.lifecycle();
        life.state = State::Stopped;
        self.lifecycle_cv.notify_all();
        tracing::info!("streaming context stopped");
        result
    }

    /// Stops every thread without waiting for pending batches.
    pub(crate) fn halt(&self) {
        self.hard_stop.store(true, Ordering::SeqCst);
        self.request_receivers_stop();
        let _guard = self.jobs.lock();
        self.jobs_cv.notify_all();
    }

    fn jobs_idle(&self) -> bool {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.is_empty() && !self.job_running.load(Ordering::SeqCst)
    }
}
