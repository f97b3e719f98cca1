//! The thread that runs one receiver: starts it, cuts its blocks every block interval,
//! restarts it with back-off when it asks, and stops it, flushing the last block.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::batch::Data;
use crate::metrics::{Counters, ReceiverInfo, StreamingListener};
use crate::source::receiver::{Receiver, ReceiverContext, ReceiverState};

/// What the supervisor needs from the context.
pub(crate) struct SupervisorConf {
    pub(crate) block_interval: Duration,
    pub(crate) max_restart_delay: Duration,
    pub(crate) listeners: Vec<Arc<dyn StreamingListener>>,
}

const FIRST_RESTART_DELAY: Duration = Duration::from_millis(100);

/// Cuts a block; a block the write-ahead log refused stays in the receiver's buffer.
fn cut<T: Data>(state: &ReceiverState<T>) {
    if let Err(e) = state.cut_block() {
        tracing::error!(receiver = %state.name, "{e}; its records are kept for the next block");
    }
}

pub(crate) fn supervise<R: Receiver>(
    mut receiver: R,
    state: Arc<ReceiverState<R::Item>>,
    conf: SupervisorConf,
) where
    R::Item: Data,
{
    // The receiver is stopped: flush its last block and say so.
    let finish = || {
        cut(&state);
        state.finished.store(true, Ordering::SeqCst);
        state.wake.notify_all();
        tracing::info!(receiver = %state.name, "receiver stopped");
        let info = ReceiverInfo {
            name: state.name.clone(),
            last_error: None,
        };
        conf.listeners
            .iter()
            .for_each(|l| l.on_receiver_stopped(&info));
    };
    let info = |err: Option<String>| ReceiverInfo {
        name: state.name.clone(),
        last_error: err,
    };
    let mut delay = FIRST_RESTART_DELAY;
    let mut next_cut = Instant::now() + conf.block_interval;
    loop {
        let generation = state.generation.load(Ordering::SeqCst);
        state.stored_since_start.store(false, Ordering::Relaxed);
        receiver.on_start(ReceiverContext::new(state.clone(), generation));
        tracing::debug!(receiver = %state.name, "receiver started");
        conf.listeners
            .iter()
            .for_each(|l| l.on_receiver_started(&info(None)));

        // Run until a stop or a restart request, cutting blocks on time.
        let reason = loop {
            let mut control = state.control.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if now < next_cut && control.restart.is_none() && control.errors.is_empty() {
                control = state
                    .wake
                    .wait_timeout(control, next_cut - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            let errors = std::mem::take(&mut control.errors);
            let restart = control.restart.take();
            drop(control);
            for e in errors {
                conf.listeners
                    .iter()
                    .for_each(|l| l.on_receiver_error(&info(Some(e.clone()))));
            }
            if Instant::now() >= next_cut {
                cut(&state);
                next_cut += conf.block_interval;
                if next_cut < Instant::now() {
                    next_cut = Instant::now() + conf.block_interval;
                }
            }
            if state.stop_requested.load(Ordering::SeqCst) {
                break None;
            }
            if restart.is_some() {
                break restart;
            }
        };

        // Retire this generation: its threads see `is_stopped()` from now on.
        state.generation.fetch_add(1, Ordering::SeqCst);
        receiver.on_stop();
        let Some(reason) = reason else {
            finish();
            return;
        };
        if state.stored_since_start.load(Ordering::Relaxed) {
            delay = FIRST_RESTART_DELAY;
        }
        Counters::add(&state.counters.receiver_restarts, 1);
        tracing::warn!(
            receiver = %state.name,
            delay_ms = delay.as_millis() as u64,
            "restarting receiver in {} ms: {reason}",
            delay.as_millis()
        );
        conf.listeners
            .iter()
            .for_each(|l| l.on_receiver_error(&info(Some(reason.clone()))));
        // Wait out the back-off, still cutting blocks and watching for a stop.
        let until = Instant::now() + delay;
        while Instant::now() < until && !state.stop_requested.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10).min(until - Instant::now()));
            if Instant::now() >= next_cut {
                cut(&state);
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
