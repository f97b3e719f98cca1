//! The engine under a `StreamingContext`: the state its DStreams, scheduler, signals and
//! threads share (`Shared`), the graph registered before `start()` (`Graph`), the job's state
//! machine (`Lifecycle`), the receivers' stop controls, and the stop / halt / await logic.
//! The user-facing API is `context.rs`, above this module.

use crate::sync::{CondvarExt, LockExt};
use std::collections::VecDeque;
use std::panic::Location;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::batch::Executor;
use crate::checkpoint::Checkpointed;
use crate::clock::Clock;
use crate::conf::Resolved;
use crate::error::{Error, Result};
use crate::metrics::BatchInfo;
use crate::metrics::{Counters, StreamingListener};
use crate::source::InputSource;
use crate::source::receiver_state::ReceiverControl;
use crate::source::supervisor::SupervisorConf;
use crate::time::Time;

/// The job thread's name, which a stop looks for among the threads that did not end.
pub(crate) const JOBS_THREAD: &str = "stream-jobs";

/// A registered output operation: runs the graph for one batch time.
pub(crate) struct Output {
    pub(crate) name: String,
    pub(crate) run: Box<dyn Fn(Time, Time) + Send + Sync>,
}

/// A batch whose input is fixed, waiting for the job thread.
pub(crate) struct PendingBatch {
    pub(crate) info: BatchInfo,
    /// Records each input gave the batch, in input order.
    pub(crate) per_input: Vec<u64>,
    /// The last batch of a graceful stop: it is checkpointed whatever the interval.
    pub(crate) last: bool,
}

/// The type-erased view of a node the context keeps, to clear caches after each batch.
pub(crate) trait AnyNode: Send + Sync {
    fn clear(&self);
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
    pub(crate) jobs: Mutex<VecDeque<PendingBatch>>,
    pub(crate) jobs_cv: Condvar,
    /// Stop now: no new batch, pending ones dropped.
    pub(crate) hard_stop: AtomicBool,
    /// The next batch is the last: it takes every block the stopped receivers left.
    pub(crate) draining: AtomicBool,
    pub(crate) generator_done: AtomicBool,
    /// A batch is being processed.
    pub(crate) job_running: AtomicBool,
    /// Asks the job thread to checkpoint the last completed batch before its next batch
    /// (a graceful stop's first step); the answer goes to `Lifecycle::final_checkpoint`.
    pub(crate) checkpoint_now: AtomicBool,
    /// The output operation the job thread is running and its batch, for a stop to name
    /// when it does not return.
    pub(crate) running_output: Mutex<Option<(Time, String)>>,
    pub(crate) checkpoint_dir: Mutex<Option<PathBuf>>,
    /// A checkpoint found by `get_or_create`, restored by `start()`.
    pub(crate) restore: Mutex<Option<(Time, crate::checkpoint::Parts)>>,
    pub(crate) threads: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) receiver_states: Mutex<Vec<Arc<dyn ReceiverControl>>>,
    pub(crate) stop_lock: Mutex<()>,
    /// The status server and event log, from `start()` until the context is dropped.
    pub(crate) ui: Mutex<Option<crate::ui::Ui>>,
}

/// Everything registered on the graph before `start()`.
#[derive(Default)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<Arc<dyn AnyNode>>,
    pub(crate) outputs: Vec<Output>,
    pub(crate) hooks: Vec<Output>,
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
    pub(crate) receivers: Vec<PendingReceiver>,
    /// Which node each node was made from, for the co-partitioning checks of instances.
    pub(crate) lineage: crate::tasks::lineage::Lineage,
    /// Checks run by `start()` once the inputs have started (the Kafka partition counts of
    /// joined topics, with instances): the first error fails `start()`.
    pub(crate) start_checks: Vec<StartCheck>,
}

/// See [`Graph::start_checks`].
pub(crate) type StartCheck = Box<dyn FnOnce() -> Result<()> + Send>;

pub(crate) struct PendingReceiver {
    pub(crate) name: String,
    /// The input stream id of the receiver's stream.
    pub(crate) stream_id: usize,
    pub(crate) at: &'static Location<'static>,
    pub(crate) launch: Box<dyn FnOnce(SupervisorConf) -> std::io::Result<JoinHandle<()>> + Send>,
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
    /// The job thread's answer to the last `checkpoint_now` request.
    pub(crate) final_checkpoint: Option<FinalCheckpoint>,
}

/// What the job thread did when a stop asked it to checkpoint before draining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FinalCheckpoint {
    /// Written for this batch.
    Written(Time),
    /// Nothing to write: checkpointing is off, no batch completed, or the last completed
    /// batch was already checkpointed.
    NotNeeded,
    /// The write failed (the job fails with this error).
    Failed(String),
}

impl Shared {
    pub(crate) fn lifecycle(&self) -> std::sync::MutexGuard<'_, Lifecycle> {
        self.lifecycle.locked()
    }

    pub(crate) fn graph_mut(&self) -> std::sync::MutexGuard<'_, Graph> {
        self.graph.locked()
    }

    /// Registers a part whose state goes into checkpoints, named after the user's code that
    /// created it (the caller's location, through `#[track_caller]` operations).
    #[track_caller]
    pub(crate) fn register_checkpointed(&self, part: Arc<dyn Checkpointed>) {
        self.graph_mut()
            .register_checkpointed_at(part, Location::caller());
    }

    pub(crate) fn checkpoint_dir(&self) -> Option<PathBuf> {
        self.checkpoint_dir.locked().clone()
    }

    #[track_caller]
    pub(crate) fn add_input(&self, input: Arc<dyn InputSource>) {
        self.assert_initialized("an input stream");
        self.graph_mut().inputs.push(input);
    }

    /// Spark's rule: the graph is fixed once the context started. Every operation (input,
    /// transformation, output) added later panics, as Spark throws `IllegalStateException`,
    /// with Spark's message, then the operation and the caller's file and line.
    #[track_caller]
    pub(crate) fn assert_initialized(&self, what: &str) {
        let state = self.lifecycle().state;
        let after = match state {
            State::Initialized => return,
            State::Active => "starting",
            State::Stopped => "stopping",
        };
        panic!(
            "Adding new inputs, transformations, and output operations after {after} a context is not supported: {what} at {}; build the whole graph before `ssc.start()`",
            Location::caller()
        );
    }

    pub(crate) fn failure_error(life: &Lifecycle) -> Option<Error> {
        life.failure.as_ref().map(|(t, op, msg)| Error::JobFailed {
            batch_time: *t,
            operation: op.clone(),
            message: msg.clone(),
        })
    }

    pub(crate) fn await_stopped(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut life = self.lifecycle();
        while life.state != State::Stopped {
            life = match deadline {
                None => self.lifecycle_cv.wait_locked(life),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Ok(false);
                    }
                    self.lifecycle_cv.wait_timeout_locked(life, d - now).0
                }
            };
        }
        match Self::failure_error(&life) {
            Some(e) => Err(e),
            None => Ok(true),
        }
    }

    pub(crate) fn receivers_finished(&self) -> bool {
        self.receiver_states.locked().iter().all(|r| r.finished())
    }

    pub(crate) fn request_receivers_stop(&self) {
        self.receiver_states
            .locked()
            .iter()
            .for_each(|r| r.request_stop());
    }

    /// The receivers that have not finished stopping, by name.
    pub(crate) fn receivers_running(&self) -> Vec<String> {
        self.receiver_states
            .locked()
            .iter()
            .filter(|r| !r.finished())
            .map(|r| format!("`{}`", r.name()))
            .collect()
    }

    /// Waits until `done()` holds; false at `deadline`, or once the context is halted (a
    /// second signal, a failed batch), when nothing more will come.
    pub(crate) fn wait_until(&self, deadline: Instant, done: impl Fn() -> bool) -> bool {
        while !done() {
            if Instant::now() >= deadline || self.hard_stop.load(Ordering::SeqCst) {
                return done();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// A graceful stop's first step: asks the job thread, which owns checkpoint writes, to
    /// checkpoint the last completed batch before it runs another, and waits for its answer
    /// until `deadline` (`None`: no answer, the job thread is busy or gone).
    pub(crate) fn checkpoint_before_drain(&self, deadline: Instant) -> Option<FinalCheckpoint> {
        self.lifecycle().final_checkpoint = None;
        {
            let _jobs = self.jobs.locked();
            self.checkpoint_now.store(true, Ordering::SeqCst);
            self.jobs_cv.notify_all();
        }
        let mut life = self.lifecycle();
        loop {
            if let Some(answer) = life.final_checkpoint.take() {
                return Some(answer);
            }
            let now = Instant::now();
            if now >= deadline || self.hard_stop.load(Ordering::SeqCst) {
                return None;
            }
            life = self
                .lifecycle_cv
                .wait_timeout_locked(life, (deadline - now).min(Duration::from_millis(20)))
                .0;
        }
    }

    /// What the job thread is doing, for a stop that cannot wait for it any longer.
    pub(crate) fn job_thread_activity(&self) -> String {
        match &*self.running_output.locked() {
            Some((time, op)) => {
                format!("output operation `{op}` of batch {time} was still running")
            }
            None => {
                let queued = self.jobs.locked().len();
                format!("{queued} batch(es) were still queued")
            }
        }
    }

    /// Stops the context (see [`StreamingContext::stop`]). Every wait is bounded: the
    /// graceful part by `graceful_stop_timeout`, then each thread's end by `JOIN_TIMEOUT`
    /// (graceful) or `HALT_JOIN_TIMEOUT`; a thread that does not end in time (a receiver
    /// whose `on_stop` blocks, an output operation that does not return) is left running and
    /// named in the error.
    pub(crate) fn stop(&self, graceful: bool) -> Result<()> {
        let _one_at_a_time = self.stop_lock.locked();
        {
            let mut life = self.lifecycle();
            match life.state {
                State::Stopped => {
                    tracing::debug!("StreamingContext has already been stopped");
                    return Ok(());
                }
                State::Initialized => {
                    // As Spark: the context is stopped even if it never started.
                    tracing::warn!("StreamingContext has not been started yet");
                    life.state = State::Stopped;
                    self.lifecycle_cv.notify_all();
                    return Ok(());
                }
                State::Active => {}
            }
        }
        if std::thread::current().name() == Some(JOBS_THREAD) {
            // Called from an output operation: the job thread cannot wait for itself.
            return Err(Error::IllegalState(
                "`stop` called from inside an output operation; call it from another thread".into(),
            ));
        }
        let started = Instant::now();
        let timeout = self.conf.graceful_stop_timeout;
        let deadline = started + timeout;
        let mut pending = Vec::new();
        let mut checkpoint_failed = false;
        if graceful {
            tracing::info!(
                timeout_ms = timeout.as_millis() as u64,
                "stopping gracefully: checkpointing the last completed batch, then stopping receivers and processing what they received"
            );
            // First the checkpoint, before any more input is drained: a kill from now on
            // loses nothing that this checkpoint (and the write-ahead log) does not cover.
            if self.checkpoint_dir().is_some() {
                match self.checkpoint_before_drain(deadline) {
                    Some(FinalCheckpoint::Written(t)) => {
                        tracing::info!(
                            batch = t.millis(),
                            "final checkpoint written before draining"
                        );
                    }
                    Some(FinalCheckpoint::NotNeeded) => {
                        tracing::debug!("the last completed batch is already checkpointed");
                    }
                    Some(FinalCheckpoint::Failed(_)) => checkpoint_failed = true,
                    None => pending.push(format!(
                        "the final checkpoint was not written ({})",
                        self.job_thread_activity()
                    )),
                }
            }
            if pending.is_empty() && !checkpoint_failed {
                self.request_receivers_stop();
                if !self.wait_until(deadline, || self.receivers_finished()) {
                    pending.push(format!(
                        "receiver(s) {} had not stopped",
                        self.receivers_running().join(", ")
                    ));
                } else {
                    self.draining.store(true, Ordering::SeqCst);
                    if !self.wait_until(deadline, || {
                        self.generator_done.load(Ordering::SeqCst) && self.jobs_idle()
                    }) {
                        pending.push(format!(
                            "not everything received was processed: {}",
                            self.job_thread_activity()
                        ));
                    }
                }
            }
            if self.hard_stop.load(Ordering::SeqCst) {
                // Cut short, not timed out: what was pending then is moot.
                pending.clear();
                pending.push(
                    "the graceful stop was cut short by a stop at once (a second signal, or a failed batch)".to_owned(),
                );
            } else if !pending.is_empty() {
                pending.push(format!(
                    "raise `graceful_stop_timeout` (now {} ms) if that is normal",
                    timeout.as_millis()
                ));
            }
        }
        self.halt();
        let handles = std::mem::take(&mut *self.threads.locked());
        let join_timeout = if graceful {
            JOIN_TIMEOUT
        } else {
            HALT_JOIN_TIMEOUT
        };
        let abandoned = join_bounded(handles, Instant::now() + join_timeout);
        if !abandoned.is_empty() {
            let activity = if abandoned.iter().any(|t| t == JOBS_THREAD) {
                format!(" ({})", self.job_thread_activity())
            } else {
                String::new()
            };
            pending.push(format!(
                "thread(s) {} did not end within {} ms and were left running{activity}: a receiver's `on_stop` or an output operation does not return; make it return once `ReceiverContext::is_stopped()` is true or its work is done",
                abandoned
                    .iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                join_timeout.as_millis()
            ));
        }
        if let Some(ui) = self.ui.locked().as_ref() {
            ui.stopped();
        }
        let mut life = self.lifecycle();
        life.state = State::Stopped;
        self.lifecycle_cv.notify_all();
        let waited_ms = started.elapsed().as_millis() as u64;
        // A batch or the final checkpoint failed during a graceful stop: that is its outcome.
        if graceful && let Some(e) = Self::failure_error(&life) {
            return Err(e);
        }
        if pending.is_empty() {
            tracing::info!(ms = waited_ms, "streaming context stopped");
            Ok(())
        } else {
            let pending = pending.join("; ");
            tracing::warn!("stop timed out after {waited_ms} ms: {pending}");
            Err(Error::StopTimedOut { waited_ms, pending })
        }
    }

    /// Stops every thread without waiting for pending batches.
    pub(crate) fn halt(&self) {
        self.hard_stop.store(true, Ordering::SeqCst);
        self.request_receivers_stop();
        let _guard = self.jobs.lock();
        self.jobs_cv.notify_all();
    }

    pub(crate) fn jobs_idle(&self) -> bool {
        let jobs = self.jobs.locked();
        jobs.is_empty() && !self.job_running.load(Ordering::SeqCst)
    }
}

/// How long a stop waits for each thread to end after a graceful stop (or its timeout): their
/// work is done by then, so this only catches a thread that will not end.
pub(crate) const JOIN_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a stop without draining waits for the threads, the batch running now among them
/// (Spark's `JobScheduler.stop(false)` waits 2 s for running jobs).
pub(crate) const HALT_JOIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Joins `handles` until `deadline`; the names of the threads still running then, which are
/// left running (detached) rather than waited for.
pub(crate) fn join_bounded(handles: Vec<JoinHandle<()>>, deadline: Instant) -> Vec<String> {
    let mut running = handles;
    loop {
        let (done, left): (Vec<_>, Vec<_>) = running.into_iter().partition(|h| h.is_finished());
        for h in done {
            let name = h.thread().name().unwrap_or("unnamed").to_owned();
            if h.join().is_err() {
                tracing::warn!(thread = %name, "a runtime thread panicked");
            }
        }
        if left.is_empty() {
            return Vec::new();
        }
        if Instant::now() >= deadline {
            return left
                .iter()
                .map(|h| h.thread().name().unwrap_or("unnamed").to_owned())
                .collect();
        }
        std::thread::sleep(Duration::from_millis(5));
        running = left;
    }
}

impl Graph {
    /// Registers a part whose state goes into checkpoints, created by the user's code at
    /// `at`. Register it before creating the node that carries it: that node's stream is the
    /// one [`DStream::name`](crate::DStream::name) names it through.
    pub(crate) fn register_checkpointed_at(
        &mut self,
        part: Arc<dyn Checkpointed>,
        at: &'static Location<'static>,
    ) {
        let nodes = self.nodes.len();
        self.checkpointed.register(part, at, nodes);
        let new = self.checkpointed.parts.last().expect("just registered");
        if let Some(other) = self.checkpointed.parts[..self.checkpointed.parts.len() - 1]
            .iter()
            .find(|p| p.name == new.name)
        {
            self.problems.push(Error::InvalidSetting {
                name: "DStream::name",
                why: format!(
                    "{} has the default name of {}; give it another name with `.name(...)`",
                    other.describe(),
                    new.describe()
                ),
            });
        }
    }

    /// Names the state carried by the node at index `node`; a misuse is reported by `start()`.
    pub(crate) fn name_state(&mut self, node: usize, name: &str, at: &Location<'_>) {
        if let Err(e) = self.checkpointed.set_name(node, name, at) {
            self.problems.push(e);
        }
    }
}
