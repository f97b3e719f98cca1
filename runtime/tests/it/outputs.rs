//! Output operations: files written atomically, work on worker threads.

use std::sync::{Arc, Mutex};

use cargo_stream_runtime::ManualClock;
use cargo_stream_runtime::prelude::*;

#[test]
fn save_as_text_files_writes_one_directory_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("counts").to_string_lossy().into_owned();
    let clock = ManualClock::new();
    let conf = StreamingConf::new("t")
        .master("local[2]")
        .manual_clock(clock.clone())
        .stop_on_signal(false);
    let ssc = StreamingContext::new(conf, Seconds(1)).unwrap();
    let s = ssc.queue_stream(vec![vec![("a".to_string(), 1u64), ("b".into(), 2)], vec![]]);
    s.save_as_text_files(prefix.clone(), "txt").unwrap();
    s.save_as_text_files(prefix.clone(), "").unwrap();
    ssc.start().unwrap();
    for t in [1000, 2000] {
        clock.advance(Seconds(1));
        assert!(
            ssc.await_batch(Time::from_millis(t), std::time::Duration::from_secs(10))
                .unwrap()
        );
    }
    ssc.stop(false).unwrap();
    let first = dir.path().join("counts-1000.txt");
    let mut text = String::new();
    for part in ["part-00000", "part-00001"] {
        text.push_str(&std::fs::read_to_string(first.join(part)).unwrap());
    }
    assert_eq!(text, "(a,1)\n(b,2)\n");
    assert!(first.join("_SUCCESS").exists());
    assert!(
        dir.path().join("counts-1000/_SUCCESS").exists(),
        "empty suffix: no dot"
    );
    assert!(
        dir.path().join("counts-2000.txt/_SUCCESS").exists(),
        "empty batches are saved too"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no temporary directory left behind");
}

#[test]
fn foreach_partition_runs_on_worker_threads() {
    let threads = Arc::new(Mutex::new(Vec::new()));
    let sink = threads.clone();
    cargo_stream_runtime::example(vec![(0..100).collect::<Vec<i32>>()], move |s| {
        let sink = sink.clone();
        s.foreach_rdd(move |b, _| {
            let sink = sink.clone();
            b.foreach_partition(move |_p| {
                sink.lock()
                    .unwrap()
                    .push(std::thread::current().name().unwrap_or("").to_owned());
            });
        })
        .unwrap();
        s
    });
    let names = threads.lock().unwrap();
    assert_eq!(names.len(), 2, "one call per partition");
    assert!(
        names.iter().all(|n| n.starts_with("stream-worker-")),
        "{names:?}"
    );
}
