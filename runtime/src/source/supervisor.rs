//! The thread that runs one receiver: starts it, cuts its blocks every block interval,
//! restarts it with back-off when it asks or fails, fails the job when it fails too often,
//! and stops it, flushing the last block.
//!
//! As Spark's `ReceiverSupervisor.restartReceiver`: a panic in `on_start` or `on_stop`, or a
//! block the write-ahead log did not take, is a failure: reported (tracing, listeners'
//! `on_receiver_error`), counted, and followed by a restart after the back-off delay. The
//! `receiver_max_failures`-th failure within its window fails the job instead.

use crate::sync::{CondvarExt, LockExt};
use std::any::Any;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::batch::Data;
use crate::metrics::{Counters, ReceiverInfo, StreamingListener};
use crate::source::receiver::{Receiver, ReceiverContext};
use crate::source::receiver_state::ReceiverState;

/// Fails the job: the receiver (its name and creation site) and why.
pub(crate) type FailJob = Arc<dyn Fn(String, String) + Send + Sync>;

/// What the supervisor needs from the context.
pub(crate) struct SupervisorConf {
    pub(crate) block_interval: Duration,
    pub(crate) max_restart_delay: Duration,
    pub(crate) listeners: Vec<Arc<dyn StreamingListener>>,
    /// Where the receiver's stream was created (`file:line`), for errors.
    pub(crate) created_at: String,
    /// Failures allowed within `failures_within` before the job fails.
    pub(crate) max_failures: u32,
    pub(crate) failures_within: Duration,
    /// `receiver_max_buffered_bytes`.
    pub(crate) max_buffered_bytes: u64,
    /// `backpressure_initial_rate`.
    pub(crate) initial_rate: Option<u64>,
    /// Stops the context with an error naming the receiver.
    pub(crate) fail_job: FailJob,
    /// The input stream id of the receiver's stream, for listeners.
    pub(crate) stream_id: usize,
}

const FIRST_RESTART_DELAY: Duration = Duration::from_millis(100);

/// Why a run of the receiver ended.
enum Ended {
    Stopped,
    /// The receiver asked (`ReceiverContext::restart`).
    Restart(String),
    /// A panic or a block the log refused: counted against `max_failures`.
    Failed(String),
}

/// The message of a caught panic.
fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panicked".into())
}

pub(crate) fn supervise<R: Receiver>(
    mut receiver: R,
    state: Arc<ReceiverState<R::Item>>,
    conf: SupervisorConf,
) where
    R::Item: Data,
{
    state.configure(
        conf.max_buffered_bytes,
        conf.initial_rate,
        <R as Receiver>::record_bytes,
    );
    let info = |err: Option<String>| ReceiverInfo {
        name: state.name.clone(),
        last_error: err,
        stream_id: conf.stream_id,
        time: crate::clock::wall_ms(),
    };
    let report = |message: &str| {
        tracing::error!(receiver = %state.name, created_at = %conf.created_at, "{message}");
        conf.listeners
            .iter()
            .for_each(|l| l.on_receiver_error(&info(Some(message.to_owned()))));
    };
    // The receiver is stopped: flush its last block and say so.
    let finish = || {
        if let Err(e) = state.cut_block() {
            report(&format!(
                "the last {} records were not processed: the write-ahead log did not take their block: {e}",
                state.unqueued_records()
            ));
        }
        state.finished.store(true, Ordering::SeqCst);
        state.wake.notify_all();
        tracing::info!(receiver = %state.name, "receiver stopped");
        conf.listeners
            .iter()
            .for_each(|l| l.on_receiver_stopped(&info(None)));
    };
    let mut failures: VecDeque<Instant> = VecDeque::new();
    let mut delay = FIRST_RESTART_DELAY;
    let mut next_cut = Instant::now() + conf.block_interval;
    loop {
        let generation = state.generation.load(Ordering::SeqCst);
        state.stored_since_start.store(false, Ordering::Relaxed);
        let started = catch_unwind(AssertUnwindSafe(|| {
            crate::failpoint::failpoint!("receiver::on_start");
            receiver.on_start(ReceiverContext::new(state.clone(), generation));
        }));
        let ended = match started {
            Err(panic) => Ended::Failed(format!("on_start panicked: {}", panic_message(&*panic))),
            Ok(()) => {
                tracing::debug!(receiver = %state.name, "receiver started");
                conf.listeners
                    .iter()
                    .for_each(|l| l.on_receiver_started(&info(None)));
                run(&state, &conf, &mut next_cut, &info)
            }
        };

        // Retire this generation: its threads see `is_stopped()` from now on.
        state.generation.fetch_add(1, Ordering::SeqCst);
        let stopped = catch_unwind(AssertUnwindSafe(|| {
            crate::failpoint::failpoint!("receiver::on_stop");
            receiver.on_stop();
        }));
        let ended = match (stopped, ended) {
            (Ok(()), ended) => ended,
            (Err(panic), Ended::Stopped) => {
                // Stopping anyway: report it and finish.
                report(&format!("on_stop panicked: {}", panic_message(&*panic)));
                Ended::Stopped
            }
            (Err(panic), Ended::Restart(why) | Ended::Failed(why)) => Ended::Failed(format!(
                "on_stop panicked: {} (while restarting: {why})",
                panic_message(&*panic)
            )),
        };
        let (reason, failed) = match ended {
            Ended::Stopped => {
                finish();
                return;
            }
            Ended::Restart(why) => (why, false),
            Ended::Failed(why) => {
                Counters::add(&state.counters.receiver_failures, 1);
                let now = Instant::now();
                failures.push_back(now);
                while failures
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > conf.failures_within)
                {
                    failures.pop_front();
                }
                if failures.len() >= conf.max_failures as usize {
                    let message = format!(
                        "it failed {} times within {} s, the most `receiver_max_failures` allows (last: {why}); fix the receiver, or raise `StreamingConf::receiver_max_failures`",
                        failures.len(),
                        conf.failures_within.as_secs()
                    );
                    report(&format!("failing the job: {message}"));
                    (conf.fail_job)(
                        format!("receiver {} ({})", state.name, conf.created_at),
                        message,
                    );
                    finish();
                    return;
                }
                let reason = format!(
                    "failure {} of {} allowed within {} s: {why}",
                    failures.len(),
                    conf.max_failures,
                    conf.failures_within.as_secs()
                );
                (reason, true)
            }
        };
        if state.stored_since_start.load(Ordering::Relaxed) {
            delay = FIRST_RESTART_DELAY;
        }
        Counters::add(&state.counters.receiver_restarts, 1);
        if failed {
            tracing::error!(
                receiver = %state.name,
                created_at = %conf.created_at,
                delay_ms = delay.as_millis() as u64,
                "receiver failed, restarting it in {} ms: {reason}",
                delay.as_millis()
            );
        } else {
            tracing::warn!(
                receiver = %state.name,
                delay_ms = delay.as_millis() as u64,
                "restarting receiver in {} ms: {reason}",
                delay.as_millis()
            );
        }
        conf.listeners
            .iter()
            .for_each(|l| l.on_receiver_error(&info(Some(reason.clone()))));
        // Wait out the back-off, still cutting blocks (a block the log refused is retried
        // here) and watching for a stop.
        let until = Instant::now() + delay;
        while Instant::now() < until && !state.stop_requested.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10).min(until - Instant::now()));
            if Instant::now() >= next_cut {
                let _ = state.cut_block();
                next_cut = Instant::now() + conf.block_interval;
            }
        }
        delay = (delay * 2).min(conf.max_restart_delay.max(FIRST_RESTART_DELAY));
        if state.stop_requested.load(Ordering::SeqCst) {
            finish();
            return;
        }
    }
}

/// Runs the started receiver until a stop, a restart request or a failure, cutting blocks
/// on time and passing reported errors to the listeners.
fn run<T: Data>(
    state: &ReceiverState<T>,
    conf: &SupervisorConf,
    next_cut: &mut Instant,
    info: &dyn Fn(Option<String>) -> ReceiverInfo,
) -> Ended {
    loop {
        let mut control = state.control.locked();
        let now = Instant::now();
        if now < *next_cut
            && control.restart.is_none()
            && control.failure.is_none()
            && control.errors.is_empty()
        {
            control = state.wake.wait_timeout_locked(control, *next_cut - now).0;
        }
        let errors = std::mem::take(&mut control.errors);
        let restart = control.restart.take();
        let failure = control.failure.take();
        drop(control);
        for e in errors {
            conf.listeners
                .iter()
                .for_each(|l| l.on_receiver_error(&info(Some(e.clone()))));
        }
        let mut cut_failed = None;
        if Instant::now() >= *next_cut {
            if let Err(e) = state.cut_block() {
                cut_failed = Some(format!(
                    "the write-ahead log did not take a block of {} records (kept in memory, retried, never processed unlogged): {e}",
                    state.unqueued_records()
                ));
            }
            *next_cut += conf.block_interval;
            if *next_cut < Instant::now() {
                *next_cut = Instant::now() + conf.block_interval;
            }
        }
        if state.stop_requested.load(Ordering::SeqCst) {
            return Ended::Stopped;
        }
        if let Some(why) = failure.or(cut_failed) {
            return Ended::Failed(why);
        }
        if let Some(why) = restart {
            return Ended::Restart(why);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::metrics::Counters;

    /// Its reading thread fails at every start.
    struct FailsInItsThread(Arc<AtomicUsize>);

    impl Receiver for FailsInItsThread {
        type Item = u32;
        fn on_start(&mut self, ctx: ReceiverContext<u32>) {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || ctx.fail(format!("reader died (start {n})")));
        }
        fn on_stop(&mut self) {}
    }

    type Failed = Arc<Mutex<Option<(String, String)>>>;

    fn run_supervised(
        max_failures: u32,
        within: Duration,
    ) -> (
        Arc<ReceiverState<u32>>,
        Arc<AtomicUsize>,
        Failed,
        std::thread::JoinHandle<()>,
    ) {
        let state = Arc::new(ReceiverState::new(
            "flaky".into(),
            None,
            None,
            Arc::new(Counters::default()),
            Arc::default(),
            None,
        ));
        let failed: Failed = Arc::default();
        let sink = failed.clone();
        let conf = SupervisorConf {
            block_interval: Duration::from_millis(20),
            max_restart_delay: Duration::from_millis(100),
            listeners: Vec::new(),
            created_at: "src/main.rs:7".into(),
            max_failures,
            failures_within: within,
            max_buffered_bytes: u64::MAX,
            initial_rate: None,
            fail_job: Arc::new(move |op, msg| *sink.lock().unwrap() = Some((op, msg))),
            stream_id: 0,
        };
        let starts = Arc::new(AtomicUsize::new(0));
        let receiver = FailsInItsThread(starts.clone());
        let s = state.clone();
        let handle = std::thread::spawn(move || supervise(receiver, s, conf));
        (state, starts, failed, handle)
    }

    #[test]
    fn a_failing_reader_thread_fails_the_job_after_the_allowed_failures() {
        let (state, starts, failed, handle) = run_supervised(2, Duration::from_secs(60));
        handle.join().unwrap();
        let (op, msg) = failed.lock().unwrap().clone().expect("the job was failed");
        assert_eq!(op, "receiver flaky (src/main.rs:7)");
        assert!(msg.contains("failed 2 times within 60 s"), "{msg}");
        assert!(msg.contains("reader died (start 1)"), "{msg}");
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        assert!(state.finished.load(Ordering::SeqCst));
        let c = state.counters.snapshot();
        assert_eq!((c.receiver_failures, c.receiver_restarts), (2, 1));
    }

    #[test]
    fn failures_further_apart_than_the_window_never_fail_the_job() {
        // Restarts wait at least 100 ms: no two failures fall within 50 ms.
        let (state, starts, failed, handle) = run_supervised(2, Duration::from_millis(50));
        let deadline = Instant::now() + Duration::from_secs(10);
        while starts.load(Ordering::SeqCst) < 4 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        state.stop_requested.store(true, Ordering::SeqCst);
        handle.join().unwrap();
        assert!(starts.load(Ordering::SeqCst) >= 4);
        assert!(failed.lock().unwrap().is_none());
        assert!(state.counters.snapshot().receiver_failures >= 3);
    }
}
