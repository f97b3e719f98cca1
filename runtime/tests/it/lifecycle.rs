//! Starting, stopping, failing: Spark's lifecycle rules.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cargo_stream_runtime::prelude::*;
use cargo_stream_runtime::{Error, ManualClock};

use crate::support::{Batches, LineServer, collect, context, wait_for};

#[test]
fn start_without_output_operation_is_an_error() {
    let ssc = context(100);
    let _ = ssc.queue_stream(vec![vec![1]]).map(|x| x + 1);
    let err = ssc.start().unwrap_err();
    assert!(matches!(err, Error::NoOutputOperations), "{err}");
    assert!(err.to_string().contains("foreach_rdd"), "{err}");
}

#[test]
fn output_after_start_is_an_error_and_restart_is_refused() {
    let ssc = context(100);
    let s = ssc.queue_stream(vec![vec![1]]);
    s.print(1).unwrap();
    ssc.start().unwrap();
    let err = s.print(1).unwrap_err().to_string();
    assert!(
        err.contains("after starting a context is not supported"),
        "{err}"
    );
    assert!(
        ssc.start()
            .unwrap_err()
            .to_string()
            .contains("already been started")
    );
    ssc.stop(false).unwrap();
    assert!(
        ssc.start()
            .unwrap_err()
            .to_string()
            .contains("cannot be started again")
    );
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
        err.contains("`update_state_by_key` at") && err.contains("lifecycle.rs:"),
        "{err}"
    );
    assert!(err.contains("call `ssc.checkpoint(dir)`"), "{err}");
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
    // A changed job with two stateful operations cannot take it.
    let ssc = StreamingContext::get_or_create(dir.path(), || {
        let ssc = context(100);
        totals(&ssc).print(1)?;
        totals(&ssc).print(1)?;
        Ok(ssc)
    })
    .unwrap();
    let err = ssc.start().unwrap_err().to_string();
    assert!(err.contains("written by a different job"), "{err}");
    assert!(err.contains("use a new checkpoint directory"), "{err}");
}
