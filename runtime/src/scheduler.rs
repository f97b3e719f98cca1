//! The batch timer (Spark's JobGenerator) and the job thread (JobScheduler): the timer fixes
//! each batch's input at its time and queues it; the job thread runs the output operations of
//! queued batches one after another, in time order, so a slow batch delays the next but
//! nothing is dropped.

use crate::sync::{CondvarExt, LockExt, RwLockExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use crate::checkpoint;
use crate::engine::{AnyNode, FinalCheckpoint, JOBS_THREAD, Output, PendingBatch, Shared};
use crate::error::{Error, Result};
use crate::metrics::{
    BatchInfo, CheckpointInfo, OutputOperationInfo, StreamInputInfo, StreamingListener,
};
use crate::source::InputSource;
use crate::time::Time;

/// The graph as it runs: fixed at `start()`, read without locks by the timer and job thread.
pub(crate) struct RunGraph {
    pub(crate) nodes: Vec<Arc<dyn AnyNode>>,
    /// Run before the outputs at every batch: nodes that must see every batch (windows).
    pub(crate) hooks: Vec<Output>,
    pub(crate) outputs: Vec<Output>,
    pub(crate) inputs: Vec<Arc<dyn InputSource>>,
    pub(crate) checkpoint: Option<CheckpointPlan>,
}

/// Where and how often the graph's state is checkpointed.
pub(crate) struct CheckpointPlan {
    pub(crate) dir: std::path::PathBuf,
    pub(crate) interval: std::time::Duration,
    pub(crate) parts: checkpoint::Registry,
    /// The directory is this job's while the plan lives (until the job's threads end).
    pub(crate) _lock: checkpoint::DirLock,
    /// With instances: the tasks' own checkpoints in the shared directory.
    pub(crate) tasks: Option<crate::tasks::checkpoint::TaskCheckpoints>,
}

impl CheckpointPlan {
    /// Writes the state as of the end of batch `time`. The parts hear `committed` only once
    /// the checkpoint is durable; a failed write leaves them (and their logs) as they were.
    fn write(&self, time: Time) -> Result<CheckpointInfo> {
        let started = std::time::Instant::now();
        let parts = self.parts.save(time)?;
        // The tasks first: the instance's own checkpoint never covers more than they do.
        let task_bytes = match &self.tasks {
            Some(tasks) => tasks.write(time, &self.parts)?,
            None => 0,
        };
        let bytes = self.parts.write(&self.dir, time, &parts)? + task_bytes;
        for p in &self.parts {
            p.committed(time);
        }
        let duration_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            batch = time.millis(),
            bytes,
            ms = duration_ms,
            "checkpoint written"
        );
        Ok(CheckpointInfo {
            batch_time: time,
            bytes,
            duration_ms,
            dir: self.dir.display().to_string(),
        })
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| Error::IllegalState(format!("could not start thread `{name}`: {e}")))
}

pub(crate) fn spawn_generator(
    sh: Arc<Shared>,
    run: Arc<RunGraph>,
    first: Time,
) -> Result<JoinHandle<()>> {
    spawn("stream-generator", move || {
        // Batches generated before a restart that did not finish come first, at their times
        // (Spark's pending times); the timer's batches then go on after the last of them.
        let mut replay: std::collections::VecDeque<Time> = run
            .inputs
            .iter()
            .flat_map(|i| i.replay_times())
            .collect::<std::collections::BTreeSet<Time>>()
            .into_iter()
            .collect();
        let mut tick = first;
        while replay.back().is_some_and(|last| tick <= *last) {
            tick = tick.plus(sh.conf.batch_interval);
        }
        loop {
            let replayed = replay.pop_front();
            let time = match replayed {
                Some(t) if !sh.hard_stop.load(Ordering::SeqCst) => t,
                None if sh
                    .clock
                    .wait_until(tick.millis(), || sh.hard_stop.load(Ordering::SeqCst)) =>
                {
                    let t = tick;
                    tick = tick.plus(sh.conf.batch_interval);
                    t
                }
                _ => break,
            };
            // Read before allocating: when set, the receivers have flushed their last block,
            // so this batch takes everything left.
            let last = replayed.is_none() && sh.draining.load(Ordering::SeqCst);
            let per_input: Vec<u64> = run.inputs.iter().map(|i| i.allocate(time)).collect();
            let records = per_input.iter().sum();
            let input_infos = run
                .inputs
                .iter()
                .zip(&per_input)
                .enumerate()
                .map(|(id, (input, &records))| StreamInputInfo {
                    input_stream_id: id,
                    name: input.name(),
                    num_records: records,
                    description: input.description(time),
                    lag: input.lag(),
                })
                .collect();
            let info = BatchInfo {
                batch_time: time,
                num_records: records,
                submission_time: sh.clock.now_ms(),
                processing_start_time: None,
                processing_end_time: None,
                non_utf8_records: 0,
                input_infos,
                output_operation_infos: Vec::new(),
                failure_reason: None,
            };
            listeners(&sh)
                .iter()
                .for_each(|l| l.on_batch_submitted(&info));
            sh.jobs.locked().push_back(PendingBatch {
                info,
                per_input,
                last,
            });
            sh.jobs_cv.notify_all();
            if last {
                break;
            }
        }
        sh.generator_done.store(true, Ordering::SeqCst);
        let _guard = sh.jobs.lock();
        sh.jobs_cv.notify_all();
    })
}

fn listeners(sh: &Shared) -> Vec<Arc<dyn StreamingListener>> {
    sh.listeners.read_locked().clone()
}

/// What the job thread does next.
enum Next {
    /// A stop asked for a checkpoint of the last completed batch.
    Checkpoint,
    Batch(PendingBatch),
    Exit,
}

pub(crate) fn spawn_jobs(sh: Arc<Shared>, run: Arc<RunGraph>) -> Result<JoinHandle<()>> {
    spawn(JOBS_THREAD, move || {
        let zero = *sh
            .zero_time
            .get()
            .expect("zero time is set before the job thread starts");
        // The last batch that completed, and the last one whose checkpoint is durable.
        let mut completed: Option<Time> = None;
        let mut checkpointed: Option<Time> = None;
        loop {
            let next = {
                let mut jobs = sh.jobs.locked();
                loop {
                    // Served before anything else, even a halt: a stop's checkpoint comes first.
                    if sh.checkpoint_now.swap(false, Ordering::SeqCst) {
                        break Next::Checkpoint;
                    }
                    if sh.hard_stop.load(Ordering::SeqCst) {
                        break Next::Exit;
                    }
                    if let Some(b) = jobs.pop_front() {
                        sh.job_running.store(true, Ordering::SeqCst);
                        break Next::Batch(b);
                    }
                    if sh.generator_done.load(Ordering::SeqCst) {
                        break Next::Exit;
                    }
                    jobs = sh.jobs_cv.wait_locked(jobs);
                }
            };
            let failed = match next {
                Next::Exit => break,
                Next::Checkpoint => {
                    let answer = checkpoint_now(&sh, &run, completed, &mut checkpointed);
                    let failed = match &answer {
                        FinalCheckpoint::Failed(message) => {
                            let t = completed.map_or(0, Time::millis);
                            tracing::error!(
                                batch = t,
                                "final checkpoint failed, stopping the context: {message}"
                            );
                            sh.lifecycle().failure =
                                Some((t, "checkpoint".to_owned(), message.clone()));
                            true
                        }
                        _ => false,
                    };
                    let mut life = sh.lifecycle();
                    life.final_checkpoint = Some(answer);
                    sh.lifecycle_cv.notify_all();
                    failed
                }
                Next::Batch(batch) => {
                    let (time, last) = (batch.info.batch_time, batch.last);
                    let failed = run_batch(&sh, &run, batch, zero);
                    if !failed {
                        completed = Some(time);
                        if run
                            .checkpoint
                            .as_ref()
                            .is_some_and(|plan| checkpoint_due(plan, time, zero, last))
                        {
                            checkpointed = Some(time);
                        }
                    }
                    sh.job_running.store(false, Ordering::SeqCst);
                    failed
                }
            };
            if failed {
                // Stop everything from another thread: `stop` joins this one.
                sh.halt();
                let sh2 = sh.clone();
                let _ = std::thread::Builder::new()
                    .name("stream-stopper".into())
                    .spawn(move || {
                        let _ = sh2.stop(false);
                    });
                break;
            }
        }
    })
}

/// Whether the batch at `time` is checkpointed: every checkpoint interval, and the last batch
/// of a graceful stop whatever the interval.
fn checkpoint_due(plan: &CheckpointPlan, time: Time, zero: Time, last: bool) -> bool {
    // `checked_sub`: a batch replayed after a restart may precede a new zero time.
    last || time
        .0
        .checked_sub(zero.0)
        .is_some_and(|d| d.is_multiple_of(plan.interval.as_millis() as u64))
}

/// Serves a stop's request: checkpoints the last completed batch unless it already is.
fn checkpoint_now(
    sh: &Shared,
    run: &RunGraph,
    completed: Option<Time>,
    checkpointed: &mut Option<Time>,
) -> FinalCheckpoint {
    let (Some(plan), Some(time)) = (&run.checkpoint, completed) else {
        return FinalCheckpoint::NotNeeded;
    };
    if *checkpointed == Some(time) {
        return FinalCheckpoint::NotNeeded;
    }
    // A panic while saving a part is a failed checkpoint, as in `run_batch`.
    match catch_unwind(AssertUnwindSafe(|| plan.write(time))) {
        Ok(Ok(written)) => {
            *checkpointed = Some(time);
            listeners(sh)
                .iter()
                .for_each(|l| l.on_checkpoint_written(&written));
            FinalCheckpoint::Written(time)
        }
        Ok(Err(e)) => FinalCheckpoint::Failed(e.to_string()),
        Err(panic) => FinalCheckpoint::Failed(panic_message(panic)),
    }
}

/// Runs every output operation for one batch; true if one failed.
fn run_batch(sh: &Shared, graph: &RunGraph, batch: PendingBatch, zero: Time) -> bool {
    let PendingBatch {
        mut info,
        per_input,
        last,
    } = batch;
    let time = info.batch_time;
    let listeners = listeners(sh);
    info.processing_start_time = Some(sh.clock.now_ms());
    listeners.iter().for_each(|l| l.on_batch_started(&info));
    let mut failure = failpoint_at("batch::before_outputs").map(|m| (time.millis(), m.0, m.1));
    let hooks = graph.hooks.len();
    for (index, out) in graph.hooks.iter().chain(&graph.outputs).enumerate() {
        if failure.is_some() {
            break;
        }
        // Output operations (not the internal hooks) are reported, as Spark's.
        let op = index.checked_sub(hooks).map(|id| {
            let op = OutputOperationInfo {
                batch_time: time,
                id,
                name: out
                    .name
                    .split(" at ")
                    .next()
                    .unwrap_or(&out.name)
                    .to_owned(),
                description: out.name.clone(),
                start_time: Some(sh.clock.now_ms()),
                end_time: None,
                failure_reason: None,
            };
            listeners
                .iter()
                .for_each(|l| l.on_output_operation_started(&op));
            op
        });
        *sh.running_output.locked() = Some((time, out.name.clone()));
        let ran = catch_unwind(AssertUnwindSafe(|| (out.run)(time, zero)));
        *sh.running_output.locked() = None;
        let reason = ran.err().map(panic_message);
        if let Some(mut op) = op {
            op.end_time = Some(sh.clock.now_ms());
            op.failure_reason = reason.clone();
            listeners
                .iter()
                .for_each(|l| l.on_output_operation_completed(&op));
            info.output_operation_infos.push(op);
        }
        if let Some(message) = reason {
            failure = Some((time.millis(), out.name.clone(), message));
        }
    }
    graph.nodes.iter().for_each(|n| n.clear());
    for (id, input) in graph.inputs.iter().enumerate() {
        let read = input.records_read(time);
        info.num_records += read;
        info.non_utf8_records += input.non_utf8_records(time);
        if let Some(i) = info.input_infos.get_mut(id) {
            i.num_records += read;
            if i.description.is_none() {
                i.description = input.description(time);
            }
        }
        input.forget(time);
    }
    if failure.is_none()
        && let Some(plan) = &graph.checkpoint
        && checkpoint_due(plan, time, zero, last)
    {
        failure = failpoint_at("batch::before_checkpoint").map(|m| (time.millis(), m.0, m.1));
        if failure.is_none() {
            // A panic while saving a part fails the batch like any other: the job thread
            // must not die with the job still reported running.
            match catch_unwind(AssertUnwindSafe(|| plan.write(time))) {
                Ok(Ok(written)) => listeners
                    .iter()
                    .for_each(|l| l.on_checkpoint_written(&written)),
                Ok(Err(e)) => failure = Some((time.millis(), "checkpoint".into(), e.to_string())),
                Err(panic) => {
                    failure = Some((time.millis(), "checkpoint".into(), panic_message(panic)))
                }
            }
        }
    }
    info.processing_end_time = Some(sh.clock.now_ms());
    let failed = failure.is_some();
    if let Some((t, op, msg)) = failure {
        tracing::error!(batch = t, operation = %op, "job failed, stopping the context: {msg}");
        info.failure_reason = Some(
            info.output_operation_infos
                .iter()
                .find_map(|o| o.failure_reason.clone())
                .unwrap_or_else(|| format!("{op}: {msg}")),
        );
        listeners.iter().for_each(|l| l.on_batch_failed(&info));
        sh.lifecycle().failure = Some((t, op, msg));
    } else {
        tracing::info!(
            batch = time.millis(),
            records = info.num_records,
            scheduling_delay_ms = info.scheduling_delay().map_or(0, |d| d.as_millis() as u64),
            processing_ms = info.processing_delay().map_or(0, |d| d.as_millis() as u64),
            total_delay_ms = info.total_delay().map_or(0, |d| d.as_millis() as u64),
            "batch completed"
        );
        let processing = info.processing_delay().map_or(0, |d| d.as_millis() as u64);
        let scheduling = info.scheduling_delay().map_or(0, |d| d.as_millis() as u64);
        for (input, records) in graph.inputs.iter().zip(per_input) {
            input.on_batch_completed(time, records, processing, scheduling);
        }
        listeners.iter().for_each(|l| l.on_batch_completed(&info));
    }
    let mut life = sh.lifecycle();
    life.last_completed = Some(time);
    sh.lifecycle_cv.notify_all();
    failed
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panicked".into())
}

/// A failpoint on the job thread (for the fault-injection tests): its `return` or `panic`
/// fails the batch as a failed output does, with the failpoint's name as the operation.
#[cfg_attr(not(feature = "failpoints"), allow(unused_variables))]
fn failpoint_at(name: &'static str) -> Option<(String, String)> {
    let hit = || -> std::result::Result<(), String> {
        crate::failpoint::failpoint!(name, |_| Err(format!("failpoint {name}")));
        Ok(())
    };
    match catch_unwind(hit) {
        Ok(Ok(())) => None,
        Ok(Err(message)) => Some((format!("failpoint `{name}`"), message)),
        Err(panic) => Some((format!("failpoint `{name}`"), panic_message(panic))),
    }
}
