//! Receiver failures: panics in `on_start`/`on_stop` and blocks the write-ahead log refused
//! are reported, restarted with back-off, and fail the job after `receiver_max_failures`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cargo_stream_runtime::prelude::*;
use cargo_stream_runtime::{Error, ReceiverInfo};

use crate::support::{collect, wait_for};

fn conf() -> StreamingConf {
    StreamingConf::new("t")
        .master("local[2]")
        .stop_on_signal(false)
        .block_interval(Milliseconds(50))
        .receiver_restart_delay(Milliseconds(200))
}

/// Panics in `on_start` for its first `panics` starts, then stores `1, 2, 3`.
struct PanicsOnStart {
    starts: Arc<AtomicUsize>,
    panics: usize,
}

impl Receiver for PanicsOnStart {
    type Item = u32;
    fn on_start(&mut self, ctx: ReceiverContext<u32>) {
        let n = self.starts.fetch_add(1, Ordering::SeqCst);
        if n < self.panics {
            panic!("cannot open the source (start {n})");
        }
        std::thread::spawn(move || ctx.store_many(vec![1, 2, 3]));
    }
    fn on_stop(&mut self) {}
    fn name(&self) -> String {
        "panicky".into()
    }
}

/// Receiver errors as listeners see them.
#[derive(Clone, Default)]
struct Errors(Arc<Mutex<Vec<String>>>);

impl StreamingListener for Errors {
    fn on_receiver_error(&self, info: &ReceiverInfo) {
        let e = info.last_error.clone().unwrap_or_default();
        self.0.lock().unwrap().push(format!("{}: {e}", info.name));
    }
}

#[test]
fn a_receiver_that_always_panics_in_on_start_fails_the_job_naming_it() {
    let ssc = StreamingContext::new(
        conf().receiver_max_failures(3, Seconds(60)),
        Milliseconds(100),
    )
    .unwrap();
    let errors = Errors::default();
    ssc.add_streaming_listener(errors.clone());
    let starts = Arc::new(AtomicUsize::new(0));
    let line = line!() + 1;
    let stream = ssc.receiver_stream(PanicsOnStart {
        starts: starts.clone(),
        panics: usize::MAX,
    });
    let got = collect(&stream);
    ssc.start().unwrap();
    let started = Instant::now();
    let stopped = ssc.await_termination_or_timeout(Seconds(10));
    let err = match stopped {
        Err(e) => e,
        Ok(done) => panic!("the job kept running (stopped: {done}) instead of failing"),
    };
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let msg = err.to_string();
    assert!(matches!(err, Error::JobFailed { .. }), "{msg}");
    assert!(msg.contains("receiver panicky"), "{msg}");
    assert!(
        msg.contains(&format!("receiver_failures.rs:{line}")),
        "names where the stream was created: {msg}"
    );
    assert!(msg.contains("failed 3 times within 60 s"), "{msg}");
    assert!(
        msg.contains("on_start panicked: cannot open the source"),
        "{msg}"
    );
    assert!(
        msg.contains("receiver_max_failures"),
        "names the setting: {msg}"
    );
    assert_eq!(starts.load(Ordering::SeqCst), 3);
    let counters = ssc.counters();
    assert_eq!(counters.receiver_failures, 3);
    assert_eq!(counters.receiver_restarts, 2, "restarted between failures");
    let errors = errors.0.lock().unwrap();
    assert!(
        errors
            .iter()
            .filter(|e| e.starts_with("panicky: ") && e.contains("on_start panicked"))
            .count()
            >= 3,
        "each failure is reported to listeners: {errors:?}"
    );
    assert!(got.lock().unwrap().is_empty());
    // Stopping a failed context again is harmless.
    ssc.stop(true).unwrap();
}

#[test]
fn a_receiver_that_panics_once_in_on_start_is_restarted_and_delivers() {
    let ssc = StreamingContext::new(conf(), Milliseconds(100)).unwrap();
    let starts = Arc::new(AtomicUsize::new(0));
    let got = collect(&ssc.receiver_stream(PanicsOnStart {
        starts: starts.clone(),
        panics: 1,
    }));
    ssc.start().unwrap();
    assert!(wait_for(10, || got.lock().unwrap().len() == 3));
    assert!(
        !ssc.await_termination_or_timeout(Milliseconds(300)).unwrap(),
        "one failure of the default four does not stop the job"
    );
    ssc.stop(true).unwrap();
    assert_eq!(*got.lock().unwrap(), vec![1, 2, 3]);
    let counters = ssc.counters();
    assert_eq!(
        (counters.receiver_failures, counters.receiver_restarts),
        (1, 1)
    );
    assert_eq!(starts.load(Ordering::SeqCst), 2);
}

/// Stores `0..n` from `on_start` itself, then panics in `on_stop`.
struct PanicsOnStop(u32);

impl Receiver for PanicsOnStop {
    type Item = u32;
    fn on_start(&mut self, ctx: ReceiverContext<u32>) {
        ctx.store_many(0..self.0);
    }
    fn on_stop(&mut self) {
        panic!("cannot close the source");
    }
}

#[test]
fn a_panic_in_on_stop_does_not_keep_a_graceful_stop_from_finishing() {
    let ssc = StreamingContext::new(conf().graceful_stop_timeout(Seconds(5)), Seconds(1)).unwrap();
    let errors = Errors::default();
    ssc.add_streaming_listener(errors.clone());
    let got = collect(&ssc.receiver_stream(PanicsOnStop(100)));
    ssc.start().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    ssc.stop(true).expect("the graceful stop completes");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        got.lock().unwrap().len(),
        100,
        "what was stored is processed"
    );
    let errors = errors.0.lock().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("on_stop panicked: cannot close the source")),
        "{errors:?}"
    );
}

/// Stores `0..total` in chunks of 10 with `store_reliably`, acknowledging (moving `acked`)
/// only after `Ok`; a restart resumes from the last acknowledged record, as a source would.
struct Reliable {
    total: u32,
    acked: Arc<std::sync::atomic::AtomicU32>,
    refused: Arc<AtomicUsize>,
}

impl Receiver for Reliable {
    type Item = u32;
    fn on_start(&mut self, ctx: ReceiverContext<u32>) {
        let (total, acked, refused) = (self.total, self.acked.clone(), self.refused.clone());
        std::thread::spawn(move || {
            while !ctx.is_stopped() {
                let next = acked.load(Ordering::SeqCst);
                if next >= total {
                    return;
                }
                let chunk: Vec<u32> = (next..(next + 10).min(total)).collect();
                match ctx.store_reliably(chunk) {
                    Ok(()) => acked.store(next + 10, Ordering::SeqCst),
                    Err(e) => {
                        assert!(e.to_string().contains("must not be acknowledged"), "{e}");
                        refused.fetch_add(1, Ordering::SeqCst);
                        assert!(ctx.is_stopped(), "a refused block restarts the receiver");
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
    }
    fn on_stop(&mut self) {}
}

fn logged_context(dir: &std::path::Path, failures: u32) -> StreamingContext {
    let ssc = StreamingContext::new(
        conf()
            .write_ahead_log(true)
            .receiver_max_failures(failures, Seconds(60)),
        Milliseconds(100),
    )
    .unwrap();
    ssc.checkpoint(dir).unwrap();
    ssc
}

#[test]
fn store_reliably_reports_a_refused_block_and_the_restarted_receiver_sends_it_once() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let ssc = logged_context(dir.path(), 4);
    let refused = Arc::new(AtomicUsize::new(0));
    let got = collect(&ssc.receiver_stream_with_wal(Reliable {
        total: 100,
        acked: Arc::default(),
        refused: refused.clone(),
    }));
    fail::cfg("wal::append", "2*return").unwrap();
    ssc.start().unwrap();
    assert!(wait_for(10, || got.lock().unwrap().len() >= 100));
    ssc.stop(true).unwrap();
    assert_eq!(
        refused.load(Ordering::SeqCst),
        2,
        "both refusals reached the receiver"
    );
    assert_eq!(
        *got.lock().unwrap(),
        (0..100).collect::<Vec<u32>>(),
        "every record once, in order"
    );
    let counters = ssc.counters();
    assert_eq!(
        (counters.receiver_failures, counters.receiver_restarts),
        (2, 2),
        "each refusal is a failure, followed by a restart"
    );
    scenario.teardown();
}

/// Stores `0..n` with `store` on its first start only.
struct Once {
    n: u32,
    starts: Arc<AtomicUsize>,
}

impl Receiver for Once {
    type Item = u32;
    fn on_start(&mut self, ctx: ReceiverContext<u32>) {
        if self.starts.fetch_add(1, Ordering::SeqCst) == 0 {
            ctx.store_many(0..self.n);
        }
    }
    fn on_stop(&mut self) {}
    fn name(&self) -> String {
        "once".into()
    }
}

#[test]
fn a_block_the_log_refused_is_kept_retried_and_processed_once_after_a_restart() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let ssc = logged_context(dir.path(), 4);
    let starts = Arc::new(AtomicUsize::new(0));
    let got = collect(&ssc.receiver_stream_with_wal(Once {
        n: 50,
        starts: starts.clone(),
    }));
    fail::cfg("wal::append", "1*return").unwrap();
    ssc.start().unwrap();
    assert!(wait_for(10, || got.lock().unwrap().len() >= 50
        && starts.load(Ordering::SeqCst) == 2));
    ssc.stop(true).unwrap();
    assert_eq!(*got.lock().unwrap(), (0..50).collect::<Vec<u32>>());
    let counters = ssc.counters();
    assert_eq!(
        (counters.receiver_failures, counters.receiver_restarts),
        (1, 1),
        "the refused append failed the receiver once"
    );
    scenario.teardown();
}

#[test]
fn a_log_that_keeps_refusing_fails_the_job_and_nothing_unlogged_is_processed() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let ssc = logged_context(dir.path(), 2);
    let got = collect(&ssc.receiver_stream_with_wal(Once {
        n: 50,
        starts: Arc::default(),
    }));
    fail::cfg("wal::append", "return").unwrap();
    ssc.start().unwrap();
    let err = match ssc.await_termination_or_timeout(Seconds(10)) {
        Err(e) => e.to_string(),
        Ok(done) => panic!("the job kept running (stopped: {done}) instead of failing"),
    };
    assert!(err.contains("receiver once"), "{err}");
    assert!(err.contains("failed 2 times"), "{err}");
    assert!(
        err.contains("write-ahead log did not take a block of 50 records"),
        "{err}"
    );
    assert!(
        got.lock().unwrap().is_empty(),
        "no block reached a batch before the log took it: {:?}",
        got.lock().unwrap()
    );
    scenario.teardown();
}
