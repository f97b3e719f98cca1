//! Starting, stopping, failing: Spark's lifecycle rules, bounded stops, and a job that dies
//! with its launcher.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use cargo_stream_runtime::prelude::*;
use cargo_stream_runtime::{Error, ManualClock};

use crate::support::{Batches, LineServer, collect, context, wait_for};

#[test]
fn start_without_output_operation_is_an_error_in_sparks_words() {
    let ssc = context(100);
    let _ = ssc.queue_stream(vec![vec![1]]).map(|x| x + 1);
    let err = ssc.start().unwrap_err();
    assert!(matches!(err, Error::NoOutputOperations), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "requirement failed: No output operations registered, so nothing to execute"
        ),
        "{text}"
    );
    assert!(text.contains("foreach_rdd"), "{text}");
}

#[test]
fn a_second_start_is_ignored_and_start_after_stop_is_refused() {
    let ssc = context(100);
    let out = collect(&ssc.queue_stream(vec![vec![1]]));
    ssc.start().unwrap();
    // Spark only warns "StreamingContext has already been started".
    ssc.start().unwrap();
    assert!(wait_for(10, || out.lock().unwrap().len() == 1));
    ssc.stop(false).unwrap();
    let err = ssc.start().unwrap_err().to_string();
    assert!(
        err.starts_with("StreamingContext has already been stopped"),
        "{err}"
    );
    assert!(
        err.contains("lifecycle.rs:") && err.contains("create a new `StreamingContext`"),
        "{err}"
    );
}

/// The message of the panic `f` raises.
fn panic_message(f: impl FnOnce()) -> String {
    let err = std::panic::catch_unwind(AssertUnwindSafe(f)).expect_err("it should panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .expect("a panic with a message")
}

/// Asserts that `$op` panics with Spark's message for `$when` ("starting" or "stopping") and
/// this file's line of the call (keep each on one line).
macro_rules! refused_here {
    ($when:literal, $op:expr) => {{
        let line = line!();
        let msg = panic_message(|| {
            let _ = $op;
        });
        assert!(
            msg.starts_with(concat!(
                "Adding new inputs, transformations, and output operations after ",
                $when,
                " a context is not supported"
            )),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("lifecycle.rs:{line}:")),
            "the panic must name the caller's line {line}: {msg}"
        );
    }};
}

/// A receiver that receives nothing.
struct Idle;

impl Receiver for Idle {
    type Item = u64;
    fn on_start(&mut self, _ctx: ReceiverContext<u64>) {}
    fn on_stop(&mut self) {}
}

#[test]
fn every_operation_after_start_panics_naming_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let ssc = context(100);
    let s = ssc.queue_stream(vec![vec![1u64]]);
    let pairs = s.map(|x| (x, x));
    s.print(1).unwrap();
    // Short names, so that each check stays on one line.
    let (w, sl) = (Milliseconds(200), Milliseconds(100));
    let update = |v: Vec<u64>, st: Option<u64>| st.or(v.first().copied());
    let out = dir.path().join("out").display().to_string();
    let spec = StateSpec::function(|_: &u64, v: Option<u64>, _: &mut State<u64>| v);
    ssc.start().unwrap();
    // Inputs.
    refused_here!("starting", ssc.queue_stream(vec![vec![1]]));
    refused_here!("starting", ssc.socket_text_stream("127.0.0.1", 9));
    refused_here!("starting", ssc.text_file_stream(dir.path()));
    refused_here!("starting", ssc.receiver_stream(Idle));
    // Transformations, windows, state.
    refused_here!("starting", s.map(|x| x + 1));
    refused_here!("starting", s.filter(|x| *x > 1));
    refused_here!("starting", s.flat_map(|x| vec![x, x]));
    refused_here!("starting", s.count());
    refused_here!("starting", s.union(&s));
    refused_here!("starting", s.transform(|b| b));
    refused_here!("starting", s.window_with_slide(w, sl));
    refused_here!("starting", s.count_by_window(w, sl));
    refused_here!("starting", s.reduce_by_window(|a, b| a + b, w, sl));
    refused_here!("starting", s.count_by_value_and_window(w, sl));
    refused_here!("starting", pairs.reduce_by_key(|a, b| a + b));
    refused_here!("starting", pairs.join(&pairs));
    let sum = |a, b| a + b;
    refused_here!("starting", pairs.reduce_by_key_and_window(sum, w, sl));
    refused_here!("starting", pairs.update_state_by_key(update));
    refused_here!("starting", pairs.map_with_state(spec));
    // Outputs: the same failure, not an `Err` some of the time.
    refused_here!("starting", s.print(1));
    refused_here!("starting", s.foreach_rdd(|_, _| {}));
    refused_here!("starting", s.save_as_text_files(out.clone(), ""));
    ssc.stop(false).unwrap();
}

#[test]
fn operations_after_stop_panic_with_sparks_stopping_message() {
    let ssc = context(100);
    let s = ssc.queue_stream(vec![vec![1]]);
    s.print(1).unwrap();
    ssc.start().unwrap();
    ssc.stop(false).unwrap();
    refused_here!("stopping", s.map(|x| x + 1));
    refused_here!("stopping", s.foreach_rdd(|_, _| {}));
    refused_here!("stopping", ssc.queue_stream(vec![vec![2]]));
}

#[test]
fn a_failed_start_leaves_the_context_stopped() {
    let stopped = |ssc: &StreamingContext| {
        assert!(
            ssc.await_termination_or_timeout(Duration::ZERO).unwrap(),
            "a failed start leaves the context stopped"
        );
        let again = ssc.start().unwrap_err().to_string();
        assert!(
            again.starts_with("StreamingContext has already been stopped"),
            "{again}"
        );
    };
    // No output operation.
    let ssc = context(100);
    let _ = ssc.queue_stream(vec![vec![1]]);
    assert!(matches!(ssc.start(), Err(Error::NoOutputOperations)));
    stopped(&ssc);
    refused_here!("stopping", ssc.queue_stream(vec![vec![1]]));
    // No checkpoint directory for a stateful operation.
    let ssc = context(100);
    ssc.queue_stream(vec![vec![("a".to_string(), 1u64)]])
        .update_state_by_key(|v: Vec<u64>, st: Option<u64>| st.or(v.first().copied()))
        .print(1)
        .unwrap();
    assert!(matches!(ssc.start(), Err(Error::CheckpointRequired { .. })));
    stopped(&ssc);
    // Not enough threads for the receivers.
    let conf = StreamingConf::new("t")
        .master("local[1]")
        .stop_on_signal(false);
    let ssc = StreamingContext::new(conf, Seconds(1)).unwrap();
    ssc.socket_text_stream("127.0.0.1", 9).print(1).unwrap();
    assert!(matches!(ssc.start(), Err(Error::NotEnoughThreads { .. })));
    stopped(&ssc);
}

#[test]
#[should_panic(expected = "after starting a context is not supported")]
fn a_transformation_after_start_panics_as_spark_throws() {
    let ssc = context(100);
    let s = ssc.queue_stream(vec![vec![1]]);
    s.print(1).unwrap();
    ssc.start().unwrap();
    let _ = s.map(|x| x + 1);
}

#[test]
fn local_1_with_a_receiver_names_the_fix() {
    let conf = StreamingConf::new("t")
        .master("local[1]")
        .stop_on_signal(false);
    let ssc = StreamingContext::new(conf, Seconds(1)).unwrap();
    let lines = ssc.socket_text_stream("127.0.0.1", 9);
    lines.print(1).unwrap();
    let err = ssc.start().unwrap_err().to_string();
    assert!(
        err.contains("`local` leaves no thread for batches"),
        "{err}"
    );
    assert!(err.contains("socket_text_stream(127.0.0.1:9)"), "{err}");
    assert!(
        err.contains("lifecycle.rs:"),
        "names where the receiver was made: {err}"
    );
    assert!(err.contains("use `local[2]` or more"), "{err}");
}

#[test]
fn bad_settings_are_clear_errors() {
    let e = StreamingContext::new(StreamingConf::new("t").master("local[0]"), Seconds(1))
        .err()
        .unwrap();
    assert!(e.to_string().contains("invalid master `local[0]`"), "{e}");
    let e = StreamingContext::new(StreamingConf::new("t"), Seconds(0))
        .err()
        .unwrap();
    assert!(e.to_string().contains("batch interval"), "{e}");
    let conf = StreamingConf::new("t").block_interval(Milliseconds(500));
    let e = StreamingContext::new(conf, Milliseconds(200))
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("longer than the batch interval"),
        "{e}"
    );
}

#[test]
fn a_failing_batch_stops_the_context_with_its_error() {
    let ssc = context(50);
    let s = ssc.queue_stream(vec![vec![1], vec![2]]);
    s.foreach_rdd(|b, _| {
        if b.collect() == vec![2] {
            panic!("boom on two");
        }
    })
    .unwrap();
    ssc.start().unwrap();
    let err = ssc.await_termination().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::JobFailed { .. }), "{text}");
    assert!(
        text.contains("boom on two") && text.contains("foreach_rdd at"),
        "{text}"
    );
}

#[test]
fn batches_run_in_order_and_a_slow_batch_delays_without_dropping() {
    let clock = ManualClock::new();
    let conf = StreamingConf::new("t")
        .master("local[2]")
        .manual_clock(clock.clone())
        .stop_on_signal(false);
    let ssc = StreamingContext::new(conf, Seconds(1)).unwrap();
    let batches = Batches::default();
    ssc.add_streaming_listener(batches.clone());
    let s = ssc.queue_stream((1..=4).map(|i| vec![i; i]).collect::<Vec<_>>());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let g = gate.clone();
    s.foreach_rdd(move |b, t| {
        let _wait = g.lock().unwrap(); // the first batch waits until the test lets it go
        sink.lock().unwrap().push((t.millis(), b.count()));
    })
    .unwrap();
    ssc.start().unwrap();
    // Four batch times pass while the first batch is stuck.
    for _ in 0..4 {
        clock.advance(Seconds(1));
        std::thread::sleep(Duration::from_millis(30));
    }
    drop(held);
    assert!(
        ssc.await_batch(Time::from_millis(4000), Duration::from_secs(10))
            .unwrap()
    );
    ssc.stop(false).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(1000, 1), (2000, 2), (3000, 3), (4000, 4)]
    );
    let infos = batches.0.lock().unwrap();
    assert_eq!(
        infos.iter().map(|i| i.num_records).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let delays: Vec<_> = infos
        .iter()
        .map(|i| i.scheduling_delay().unwrap())
        .collect();
    // On the manual clock the delays are exact: batches 2 and 3 waited for the first to finish.
    let secs = |s| Duration::from_secs(s);
    assert_eq!(delays, vec![secs(0), secs(2), secs(1), secs(0)]);
}

#[test]
fn graceful_stop_processes_everything_received() {
    let lines: String = (0..20_000).map(|i| format!("w{}\n", i % 7)).collect();
    let server = LineServer::start(lines.into_bytes());
    let ssc = context(200);
    let words = ssc.socket_text_stream("127.0.0.1", server.port);
    let counted = Arc::new(Mutex::new(0u64));
    let sink = counted.clone();
    words
        .map(|w| (w, 1u64))
        .reduce_by_key(|a, b| a + b)
        .foreach_rdd(move |b, _| {
            *sink.lock().unwrap() += b.collect().iter().map(|(_, n)| n).sum::<u64>();
        })
        .unwrap();
    ssc.start().unwrap();
    // Stop as soon as everything is stored by the receiver, most of it not yet in a batch.
    assert!(wait_for(10, || ssc.counters().records_received == 20_000));
    ssc.stop(true).unwrap();
    assert_eq!(*counted.lock().unwrap(), 20_000);
}

#[test]
fn await_termination_or_timeout_returns_false_while_running() {
    let ssc = context(100);
    let out = collect(&ssc.queue_stream(vec![vec![1]]));
    ssc.start().unwrap();
    assert!(
        !ssc.await_termination_or_timeout(Duration::from_millis(50))
            .unwrap()
    );
    ssc.stop(false).unwrap();
    assert!(
        ssc.await_termination_or_timeout(Duration::from_millis(50))
            .unwrap()
    );
    assert!(out.lock().unwrap().len() <= 1);
}

#[test]
fn stateful_operations_without_a_checkpoint_directory_fail_start() {
    let ssc = context(100);
    let s = ssc.queue_stream(vec![vec![("a".to_string(), 1u64)]]);
    s.update_state_by_key(|v: Vec<u64>, st: Option<u64>| {
        Some(v.iter().sum::<u64>() + st.unwrap_or(0))
    })
    .print(1)
    .unwrap();
    let err = ssc.start().unwrap_err().to_string();
    assert!(
        err.starts_with(
            "requirement failed: The checkpoint directory has not been set. Please set it by StreamingContext.checkpoint()."
        ),
        "Spark's words first: {err}"
    );
    assert!(
        err.contains("`update_state_by_key` at") && err.contains("lifecycle.rs:"),
        "{err}"
    );
    assert!(err.contains("call `ssc.checkpoint(dir)`"), "{err}");
    assert!(!err.contains("``"), "no doubled backticks: {err}");
}

#[test]
fn windows_must_be_multiples_of_the_batch_interval() {
    // As Spark's constructor check: the call fails, not `start()` (more in `windows.rs`).
    let ssc = context(1000);
    let s = ssc.queue_stream(vec![vec![1]]);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.window_with_slide(Milliseconds(2500), Seconds(1))
    }))
    .map(|_| ())
    .unwrap_err();
    let err = err.downcast_ref::<String>().unwrap();
    assert!(
        err.contains(
            "The window duration of windowed DStream (2500 ms) must be a multiple of the slide duration of parent DStream (1000 ms)"
        ),
        "{err}"
    );
}

#[test]
fn a_checkpoint_of_another_job_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let totals = |ssc: &StreamingContext| {
        ssc.queue_stream(vec![vec![("a".to_string(), 1u64)]])
            .update_state_by_key(|v: Vec<u64>, st: Option<u64>| {
                Some(v.iter().sum::<u64>() + st.unwrap_or(0))
            })
    };
    // A first job writes a checkpoint as it stops.
    let ssc = StreamingContext::get_or_create(dir.path(), || {
        let ssc = context(100);
        totals(&ssc).print(1)?;
        Ok(ssc)
    })
    .unwrap();
    ssc.start().unwrap();
    std::thread::sleep(Duration::from_millis(250));
    ssc.stop(true).unwrap();
    // A job that has none of its states cannot take it.
    let ssc = StreamingContext::get_or_create(dir.path(), || {
        let ssc = context(100);
        totals(&ssc).name("other").print(1)?;
        Ok(ssc)
    })
    .unwrap();
    let err = ssc.start().unwrap_err().to_string();
    assert!(err.contains("written by a different job"), "{err}");
    assert!(err.contains("use a new checkpoint directory"), "{err}");
}

/// The newest checkpoint's batch time in `dir`, from the file names (`checkpoint-<ms>`).
fn latest_checkpoint(dir: &Path) -> Option<u64> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("checkpoint-")?.parse::<u64>().ok()
        })
        .max()
}

/// Running totals of one `("a", 1)` per batch: the job whose checkpoints these tests check.
fn running_totals(ssc: &StreamingContext, batches: usize) -> DStream<(String, u64)> {
    ssc.queue_stream(vec![vec![("a".to_string(), 1u64)]; batches])
        .update_state_by_key(|v: Vec<u64>, st: Option<u64>| {
            Some(v.iter().sum::<u64>() + st.unwrap_or(0))
        })
}

/// The total restored from the checkpoint in `dir`: a job rebuilt with `get_or_create` runs one
/// more batch of one record on a manual clock, and its total, less that record.
fn restored_total(dir: &Path) -> u64 {
    let clock = ManualClock::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (c, sink) = (clock.clone(), seen.clone());
    let ssc = StreamingContext::get_or_create(dir, move || {
        let conf = StreamingConf::new("restored")
            .master("local[2]")
            .manual_clock(c)
            .stop_on_signal(false);
        let ssc = StreamingContext::new(conf, Milliseconds(100))?;
        running_totals(&ssc, 1)
            .foreach_rdd(move |b, _| sink.lock().unwrap().extend(b.collect()))?;
        Ok(ssc)
    })
    .unwrap();
    ssc.start().unwrap();
    clock.advance(Milliseconds(100));
    assert!(
        ssc.await_batch(Time::from_millis(100), Duration::from_secs(10))
            .unwrap()
    );
    ssc.stop(false).unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    seen[0].1 - 1
}

/// A receiver that stores nothing and whose `on_stop` notes the newest checkpoint in `dir`,
/// then blocks until released (or 30 s).
struct BlockingStop {
    dir: PathBuf,
    saw: Arc<Mutex<Option<Option<u64>>>>,
    release: Arc<(Mutex<bool>, Condvar)>,
}

impl Receiver for BlockingStop {
    type Item = u64;
    fn on_start(&mut self, _ctx: ReceiverContext<u64>) {}
    fn on_stop(&mut self) {
        *self.saw.lock().unwrap() = Some(latest_checkpoint(&self.dir));
        let (released, cv) = &*self.release;
        let _ = cv
            .wait_timeout_while(released.lock().unwrap(), Duration::from_secs(30), |r| !*r)
            .unwrap();
    }
    fn name(&self) -> String {
        "blocking-stop".into()
    }
}

fn release(gate: &(Mutex<bool>, Condvar)) {
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
}

/// Runs `stop` on another thread and waits at most `secs` for it: a stop that hangs fails the
/// test instead of hanging it.
fn stop_within(
    ssc: &Arc<StreamingContext>,
    graceful: bool,
    secs: u64,
) -> (Result<(), Error>, Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    let ssc = ssc.clone();
    std::thread::spawn(move || {
        let started = Instant::now();
        let result = ssc.stop(graceful);
        let _ = tx.send((result, started.elapsed()));
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("stop({graceful}) still waiting after {secs} s"))
}

/// A job of running totals checkpointed in `dir`, with a `BlockingStop` receiver; its outputs'
/// (time, total) pairs.
fn job_with_blocking_receiver(
    dir: &Path,
    timeout: Duration,
    receiver: BlockingStop,
) -> (Arc<StreamingContext>, Arc<Mutex<Vec<(u64, u64)>>>) {
    let conf = StreamingConf::new("t")
        .master("local[3]")
        .stop_on_signal(false)
        .block_interval(Milliseconds(50))
        .graceful_stop_timeout(timeout);
    let ssc = StreamingContext::new(conf, Milliseconds(100)).unwrap();
    ssc.checkpoint(dir).unwrap();
    let totals = Arc::new(Mutex::new(Vec::new()));
    let sink = totals.clone();
    running_totals(&ssc, 10_000)
        .foreach_rdd(move |b, t| {
            let total = b.collect().first().map_or(0, |(_, n)| *n);
            sink.lock().unwrap().push((t.millis(), total));
        })
        .unwrap();
    ssc.receiver_stream(receiver)
        .count()
        .foreach_rdd(|_, _| {})
        .unwrap();
    (Arc::new(ssc), totals)
}

#[test]
fn a_graceful_stop_checkpoints_the_last_batch_before_stopping_receivers() {
    let dir = tempfile::tempdir().unwrap();
    let saw = Arc::new(Mutex::new(None));
    let gate = Arc::new((Mutex::new(true), Condvar::new())); // on_stop does not block
    let receiver = BlockingStop {
        dir: dir.path().to_owned(),
        saw: saw.clone(),
        release: gate,
    };
    let (ssc, totals) = job_with_blocking_receiver(dir.path(), Duration::from_secs(5), receiver);
    ssc.start().unwrap();
    assert!(wait_for(10, || totals.lock().unwrap().len() >= 3));
    let before = totals.lock().unwrap().last().unwrap().0;
    // No checkpoint is due yet (every 10 s by default): only the stop writes one.
    let (result, _) = stop_within(&ssc, true, 10);
    result.unwrap();
    let at_on_stop = saw.lock().unwrap().expect("the receiver was stopped");
    assert!(
        at_on_stop.is_some_and(|t| t >= before),
        "when the receivers were asked to stop, the last completed batch ({before} ms) should already be checkpointed; newest checkpoint then: {at_on_stop:?}"
    );
    // The stop's last batch is checkpointed too: the totals resume exactly.
    let last = totals.lock().unwrap().last().unwrap().1;
    assert_eq!(restored_total(dir.path()), last);
}

#[test]
fn a_receiver_that_does_not_stop_is_named_and_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let saw = Arc::new(Mutex::new(None));
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let receiver = BlockingStop {
        dir: dir.path().to_owned(),
        saw,
        release: gate.clone(),
    };
    let (ssc, totals) = job_with_blocking_receiver(dir.path(), Duration::from_secs(1), receiver);
    ssc.start().unwrap();
    assert!(wait_for(10, || totals.lock().unwrap().len() >= 2));
    let before = totals.lock().unwrap().last().unwrap().0;
    let (result, took) = stop_within(&ssc, true, 10);
    release(&gate);
    let err = result.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::StopTimedOut { .. }), "{text}");
    assert!(
        text.contains("receiver(s) `blocking-stop` had not stopped"),
        "{text}"
    );
    assert!(
        text.contains("`receiver-blocking-stop`") && text.contains("left running"),
        "names the abandoned thread: {text}"
    );
    // 1 s of graceful stop, then 1 s for the threads to end.
    assert!(took < Duration::from_millis(4000), "{took:?}");
    assert!(ssc.await_termination_or_timeout(Duration::ZERO).unwrap());
    // The final checkpoint was written first, so the stuck receiver cost no state.
    assert!(latest_checkpoint(dir.path()).is_some_and(|t| t >= before));
}

#[test]
fn an_output_operation_that_does_not_return_does_not_hang_stop() {
    for graceful in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let conf = StreamingConf::new("t")
            .master("local[2]")
            .stop_on_signal(false)
            .graceful_stop_timeout(Milliseconds(500));
        let ssc = StreamingContext::new(conf, Milliseconds(100)).unwrap();
        ssc.checkpoint(dir.path()).unwrap();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let g = gate.clone();
        let ran = Arc::new(Mutex::new(0));
        let r = ran.clone();
        let line = line!() + 2;
        ssc.queue_stream(vec![vec![1]; 100])
            .foreach_rdd(move |_, _| {
                *r.lock().unwrap() += 1;
                if *r.lock().unwrap() == 3 {
                    let (released, cv) = &*g;
                    let _ = cv
                        .wait_timeout_while(
                            released.lock().unwrap(),
                            Duration::from_secs(30),
                            |r| !*r,
                        )
                        .unwrap();
                }
            })
            .unwrap();
        let ssc = Arc::new(ssc);
        ssc.start().unwrap();
        assert!(wait_for(10, || *ran.lock().unwrap() >= 3));
        let (result, took) = stop_within(&ssc, graceful, 10);
        release(&gate);
        let text = result.unwrap_err().to_string();
        assert!(
            text.contains("`stream-jobs`") && text.contains("left running"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "foreach_rdd at runtime/tests/it/lifecycle.rs:{line}"
            )),
            "names the output operation: {text}"
        );
        if graceful {
            assert!(
                text.contains("the final checkpoint was not written"),
                "{text}"
            );
        }
        // At most 500 ms of graceful stop, then 1 s (2 s without draining) for the threads.
        assert!(took < Duration::from_millis(3500), "{took:?}");
    }
}

/// The job the launcher tests run in a child process (this test binary again, this test
/// only): running totals checkpointed under `$LIFECYCLE_JOB_DIR`, each batch's total written
/// to `progress`, and how it ended to `stopped` once `await_termination` returns. With
/// `$LIFECYCLE_FAIL_POINT`, that failpoint returns its error once the job runs.
#[test]
#[ignore = "the job of the launcher tests, run by them in a child process"]
fn launched_job() {
    // Only as the launcher tests' child (not under `--include-ignored`).
    let Some(dir) = std::env::var_os("LIFECYCLE_JOB_DIR").map(PathBuf::from) else {
        return;
    };
    // Signals on (the default): SIGTERM stops the job gracefully.
    let conf = StreamingConf::new("launched").master("local[2]");
    let ssc = StreamingContext::new(conf, Milliseconds(100)).unwrap();
    ssc.checkpoint(dir.join("checkpoint")).unwrap();
    let progress = dir.join("progress");
    running_totals(&ssc, 100_000)
        .foreach_rdd(move |b, _| {
            let total = b.collect().first().map_or(0, |(_, n)| *n);
            std::fs::write(&progress, total.to_string()).unwrap();
        })
        .unwrap();
    ssc.start().unwrap();
    if let Ok(point) = std::env::var("LIFECYCLE_FAIL_POINT") {
        fail::cfg(point, "return").unwrap();
    }
    let ended = match ssc.await_termination_or_timeout(Duration::from_secs(60)) {
        Ok(stopped) => format!("Ok({stopped})"),
        Err(e) => format!("Err: {e}"),
    };
    std::fs::write(dir.join("stopped"), ended).unwrap();
}

#[cfg(target_os = "linux")]
mod launcher {
    use super::*;
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    /// Whether process `pid` still runs (a zombie, dead but not yet reaped, does not).
    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
                Some(state != 'Z' && state != 'X')
            })
            .unwrap_or(false)
    }

    fn total(dir: &Path) -> u64 {
        std::fs::read_to_string(dir.join("progress"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits at most 15 s for the job `pid` to end; kills it (and fails) if it does not.
    fn ends_by_itself(pid: u32, what: &str) {
        if !wait_for(15, || !alive(pid)) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("the job (pid {pid}) was still running 15 s after {what}");
        }
    }

    /// The child: `launched_job` in this test binary, with its output in `dir`.
    fn job(dir: &Path) -> Command {
        let mut job = Command::new(std::env::current_exe().unwrap());
        job.args([
            "--exact",
            "lifecycle::launched_job",
            "--ignored",
            "--nocapture",
        ])
        .env("LIFECYCLE_JOB_DIR", dir);
        job
    }

    /// Starts the job as a launcher does, from a shell that first runs `env` (the variables the
    /// launcher sets), starts the job in the background and waits; SIGKILLs that shell once
    /// the job runs, and checks the job then stops by itself, gracefully, its last batch
    /// checkpointed.
    fn dies_with_its_launcher(env: &str) {
        let dir = tempfile::tempdir().unwrap();
        let job = job(dir.path());
        let script = format!(r#"{env} "$0" "$@" >"$LIFECYCLE_JOB_DIR/out" 2>&1 & echo $!; wait"#);
        let mut launcher = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(job.get_program())
            .args(job.get_args())
            .env("LIFECYCLE_JOB_DIR", dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(launcher.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pid: u32 = line.trim().parse().unwrap();
        if !wait_for(30, || total(dir.path()) >= 5) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!(
                "the job did not run: {}",
                std::fs::read_to_string(dir.path().join("out")).unwrap_or_default()
            );
        }
        // SIGKILL: the launcher can pass nothing on.
        launcher.kill().unwrap();
        launcher.wait().unwrap();
        ends_by_itself(pid, "its launcher was killed");
        let stopped = std::fs::read_to_string(dir.path().join("stopped")).unwrap_or_default();
        assert_eq!(
            stopped,
            "Ok(true)",
            "the job should stop gracefully: {}",
            std::fs::read_to_string(dir.path().join("out")).unwrap_or_default()
        );
        // Its last batch is checkpointed: the totals resume where it stopped.
        let last = total(dir.path());
        assert_eq!(restored_total(&dir.path().join("checkpoint")), last);
    }

    #[test]
    fn a_job_dies_with_run_sh_killed_by_sigkill() {
        // run.sh names itself in CARGO_STREAM_PARENT_PID.
        dies_with_its_launcher("CARGO_STREAM_PARENT_PID=$$; export CARGO_STREAM_PARENT_PID;");
    }

    #[test]
    fn a_job_dies_with_the_jar_launcher_killed_by_sigkill() {
        // The jar's Java launcher sets CARGO_STREAM_BUNDLE_DIR (and no pid).
        dies_with_its_launcher(
            r#"CARGO_STREAM_BUNDLE_DIR=$LIFECYCLE_JOB_DIR; export CARGO_STREAM_BUNDLE_DIR;"#,
        );
    }

    #[test]
    fn sigterm_stops_gracefully_and_a_failed_final_checkpoint_is_the_outcome() {
        let dir = tempfile::tempdir().unwrap();
        // No periodic checkpoint is due while it runs (every 10 s): the first write is the
        // final one, which fails.
        let mut child = job(dir.path())
            .env("LIFECYCLE_FAIL_POINT", "checkpoint::before_rename")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if !wait_for(30, || total(dir.path()) >= 3) {
            let _ = child.kill();
            panic!("the job did not run");
        }
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        if !wait_for(15, || child.try_wait().unwrap().is_some()) {
            let _ = child.kill();
            panic!("the job was still running 15 s after SIGTERM");
        }
        let stopped = std::fs::read_to_string(dir.path().join("stopped")).unwrap();
        assert!(
            stopped.starts_with("Err: job for batch") && stopped.contains("failed in `checkpoint`"),
            "the failed final checkpoint is how the job ended: {stopped}"
        );
    }

    #[test]
    fn a_job_whose_launcher_is_already_gone_stops_at_start() {
        let dir = tempfile::tempdir().unwrap();
        // The parent is this test, not the launcher named: the launcher died before the job
        // could ask to be signalled (the race `prctl` alone misses).
        let mut child = job(dir.path())
            .env("CARGO_STREAM_PARENT_PID", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        if !wait_for(15, || child.try_wait().unwrap().is_some()) {
            let _ = child.kill();
            panic!("the job ran on for 15 s though its launcher was gone");
        }
        assert!(child.wait().unwrap().success());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("stopped")).unwrap(),
            "Ok(true)",
            "stopped gracefully, after {:?}",
            started.elapsed()
        );
    }
}
