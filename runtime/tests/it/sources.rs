//! Sources against real sockets and directories.

use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cargo_stream_runtime::prelude::*;

use crate::support::{Batches, LineServer, collect, context, wait_for};

#[test]
fn socket_receiver_reconnects_until_the_server_comes_and_after_it_closes() {
    // Reserve a port, then free it: the receiver starts with nobody listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = StreamingConf::new("t")
        .master("local[2]")
        .stop_on_signal(false)
        .receiver_restart_delay(Milliseconds(200));
    let ssc = StreamingContext::new(conf, Milliseconds(100)).unwrap();
    let lines = collect(&ssc.socket_text_stream("127.0.0.1", port));
    ssc.start().unwrap();
    assert!(
        wait_for(5, || ssc.counters().receiver_restarts >= 2),
        "retries while the server is absent"
    );
    let first = LineServer::serve(
        TcpListener::bind(("127.0.0.1", port)).unwrap(),
        b"one\ntwo\n".to_vec(),
    );
    assert!(wait_for(10, || lines.lock().unwrap().len() == 2));
    first.close();
    let _second = LineServer::serve(
        TcpListener::bind(("127.0.0.1", port)).unwrap(),
        b"three\n".to_vec(),
    );
    assert!(
        wait_for(10, || lines.lock().unwrap().len() == 3),
        "reconnected after the close"
    );
    ssc.stop(true).unwrap();
    assert_eq!(*lines.lock().unwrap(), vec!["one", "two", "three"]);
}

#[test]
fn socket_lines_that_are_not_utf8_are_kept_with_replacement_characters_and_counted() {
    let mut payload = b"good\r\n".to_vec();
    payload.extend_from_slice(b"bad \xff\xfe\n");
    payload.extend_from_slice(b"also good\nlast \xe9 without newline");
    let server = LineServer::start(payload);
    let ssc = context(100);
    let batches = Batches::default();
    ssc.add_streaming_listener(batches.clone());
    let lines = collect(&ssc.socket_text_stream("127.0.0.1", server.port));
    ssc.start().unwrap();
    assert!(wait_for(10, || lines.lock().unwrap().len() == 3
        && ssc.counters().non_utf8_lines == 1));
    server.close();
    assert!(
        wait_for(10, || lines.lock().unwrap().len() == 4),
        "the unterminated last line is kept on close"
    );
    ssc.stop(true).unwrap();
    assert_eq!(
        *lines.lock().unwrap(),
        vec![
            "good",
            "bad \u{fffd}\u{fffd}",
            "also good",
            "last \u{fffd} without newline"
        ]
    );
    assert_eq!(ssc.counters().non_utf8_lines, 2);
    let in_batches: u64 = batches
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|b| b.non_utf8_records)
        .sum();
    assert_eq!(in_batches, 2, "each replaced line is counted in its batch");
}

#[test]
fn text_file_stream_reads_each_new_file_once_and_ignores_old_and_hidden_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.txt"), "old\n").unwrap();
    let ssc = context(100);
    let batches = Batches::default();
    ssc.add_streaming_listener(batches.clone());
    let lines = collect(&ssc.text_file_stream(dir.path()));
    ssc.start().unwrap();
    let staging = tempfile::tempdir().unwrap();
    let put = |name: &str, body: &[u8]| {
        let tmp = staging.path().join(name);
        std::fs::write(&tmp, body).unwrap();
        std::fs::rename(&tmp, dir.path().join(name)).unwrap();
    };
    put("a.txt", b"a1\na2\n");
    std::fs::write(dir.path().join(".b.txt.tmp"), "hidden\n").unwrap();
    assert!(wait_for(10, || lines.lock().unwrap().len() == 2));
    put("c.txt", b"c1\n\xff\xfe\nc3");
    assert!(wait_for(10, || lines.lock().unwrap().len() == 5));
    std::thread::sleep(Duration::from_millis(300)); // a few more batches: nothing is read twice
    ssc.stop(true).unwrap();
    let mut got = lines.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, vec!["a1", "a2", "c1", "c3", "\u{fffd}\u{fffd}"]);
    assert_eq!(ssc.counters().non_utf8_lines, 1);
    let with_bad: Vec<(u64, u64)> = batches
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|b| b.non_utf8_records > 0)
        .map(|b| (b.num_records, b.non_utf8_records))
        .collect();
    assert_eq!(
        with_bad,
        vec![(3, 1)],
        "the batch that read c.txt counts its replaced line"
    );
}

#[test]
fn text_file_stream_on_a_missing_directory_fails_start_naming_it() {
    let ssc = context(100);
    ssc.text_file_stream("/nonexistent/cargo-stream-input")
        .print(1)
        .unwrap();
    let err = ssc.start().unwrap_err().to_string();
    assert!(
        err.contains("cannot read directory `/nonexistent/cargo-stream-input`"),
        "{err}"
    );
}

/// A receiver that fails on its first start and works on the second.
struct Flaky {
    starts: Arc<AtomicUsize>,
}

impl Receiver for Flaky {
    type Item = u32;
    fn on_start(&mut self, ctx: ReceiverContext<u32>) {
        let n = self.starts.fetch_add(1, Ordering::SeqCst);
        std::thread::spawn(move || {
            if n == 0 {
                ctx.report_error("first start fails");
                ctx.restart("simulated failure");
                return;
            }
            ctx.store_many(vec![1, 2, 3]);
            ctx.store(4);
        });
    }
    fn on_stop(&mut self) {}
}

#[test]
fn a_custom_receiver_can_restart_and_store() {
    let ssc = context(100);
    let starts = Arc::new(AtomicUsize::new(0));
    let got = collect(&ssc.receiver_stream(Flaky {
        starts: starts.clone(),
    }));
    ssc.start().unwrap();
    assert!(wait_for(10, || got.lock().unwrap().len() == 4));
    ssc.stop(true).unwrap();
    assert_eq!(*got.lock().unwrap(), vec![1, 2, 3, 4]);
    assert_eq!(starts.load(Ordering::SeqCst), 2);
    assert_eq!(ssc.counters().receiver_restarts, 1);
}

/// Stores as fast as it can.
struct Firehose;

impl Receiver for Firehose {
    type Item = u8;
    fn on_start(&mut self, ctx: ReceiverContext<u8>) {
        std::thread::spawn(move || {
            while !ctx.is_stopped() {
                ctx.store_many(vec![0u8; 100]);
            }
        });
    }
    fn on_stop(&mut self) {}
}

#[test]
fn receiver_max_rate_caps_what_is_stored() {
    let conf = StreamingConf::new("t")
        .master("local[2]")
        .stop_on_signal(false)
        .receiver_max_rate(2_000);
    let ssc = StreamingContext::new(conf, Milliseconds(100)).unwrap();
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let sink = sizes.clone();
    ssc.receiver_stream(Firehose)
        .foreach_rdd(move |b, _| sink.lock().unwrap().push(b.count()))
        .unwrap();
    ssc.start().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    ssc.stop(false).unwrap();
    let total: u64 = sizes.lock().unwrap().iter().sum();
    // At most the rate for the time it ran plus one burst; without the limit it is millions.
    assert!(total <= 2_000 * 2 + 100, "stored {total}");
    assert!(total >= 100, "stored {total}");
}

#[test]
fn blocks_become_partitions() {
    let mut payload = Vec::new();
    for i in 0..10 {
        writeln!(payload, "{i}").unwrap();
    }
    let server = LineServer::start(payload);
    let conf = StreamingConf::new("t")
        .master("local[2]")
        .stop_on_signal(false)
        .block_interval(Milliseconds(100));
    let ssc = StreamingContext::new(conf, Seconds(1)).unwrap();
    let parts = Arc::new(Mutex::new(Vec::new()));
    let sink = parts.clone();
    ssc.socket_text_stream("127.0.0.1", server.port)
        .glom()
        .foreach_rdd(move |b, _| {
            sink.lock()
                .unwrap()
                .extend(b.collect().into_iter().filter(|p| !p.is_empty()))
        })
        .unwrap();
    ssc.start().unwrap();
    assert!(wait_for(10, || parts
        .lock()
        .unwrap()
        .iter()
        .map(Vec::len)
        .sum::<usize>()
        == 10));
    ssc.stop(true).unwrap();
    // Written in one go, the lines land in one block, hence one partition.
    assert_eq!(parts.lock().unwrap().len(), 1);
}

#[test]
fn an_unresolvable_host_is_retried_and_reported() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    struct Errors(Arc<Mutex<Vec<String>>>);
    impl StreamingListener for Errors {
        fn on_receiver_error(&self, info: &cargo_stream_runtime::ReceiverInfo) {
            self.0.lock().unwrap().extend(info.last_error.clone());
        }
    }
    let conf = StreamingConf::new("t")
        .master("local[2]")
        .stop_on_signal(false)
        .receiver_restart_delay(Milliseconds(100));
    let ssc = StreamingContext::new(conf, Milliseconds(100)).unwrap();
    ssc.add_streaming_listener(Errors(errors.clone()));
    ssc.socket_text_stream("no-such-host.invalid", 9999)
        .print(1)
        .unwrap();
    ssc.start().unwrap();
    assert!(wait_for(10, || ssc.counters().receiver_restarts >= 2));
    ssc.stop(false).unwrap();
    let errors = errors.lock().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("could not connect to no-such-host.invalid:9999")),
        "{errors:?}"
    );
}
