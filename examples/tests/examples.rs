//! Runs each example binary against real sockets and files, stops it with SIGTERM, and checks
//! its exact output: every batch printed in Spark's format, and the counts.

#[path = "support/job.rs"]
mod job;

use std::io::Write;
use std::net::TcpListener;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use job::{COUNTS, Job, TEXT, printed_batches, text_server};

/// Parses `print` output into (time, records) per batch, checking Spark's layout exactly.
/// Outputs come every `interval_ms` (a window's slide), at batch times: multiples of 1 s.
fn parse_batches(out: &str, interval_ms: u64) -> Vec<(u64, Vec<String>)> {
    let batches = printed_batches(out);
    for (i, (time, _)) in batches.iter().enumerate() {
        assert_eq!(
            time % 1000,
            0,
            "batch times are multiples of the batch interval"
        );
        if i > 0 {
            assert_eq!(
                *time,
                batches[i - 1].0 + interval_ms,
                "every batch is printed, in order"
            );
        }
    }
    batches
}

/// The records of each non-empty batch, sorted.
fn nonempty_batches(out: &str, interval_ms: u64) -> Vec<Vec<String>> {
    parse_batches(out, interval_ms)
        .into_iter()
        .map(|(_, mut r)| {
            r.sort();
            r
        })
        .filter(|r| !r.is_empty())
        .collect()
}

/// The records of the only non-empty batch, sorted.
fn only_nonempty_batch(out: &str, interval_ms: u64) -> Vec<String> {
    let batches = parse_batches(out, interval_ms);
    let mut nonempty: Vec<Vec<String>> = batches
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| !r.is_empty())
        .collect();
    assert_eq!(
        nonempty.len(),
        1,
        "data written at once lands in one batch: {out}"
    );
    let mut records = nonempty.remove(0);
    records.sort();
    records
}

fn socket_example(bin: &str) {
    let (port, go) = text_server(TEXT);
    let job = Job::spawn(bin, &["127.0.0.1", &port.to_string()]);
    job.wait_started();
    go.send(()).unwrap();
    job.wait_printed("(to,3)");
    let out = job.terminate();
    assert_eq!(only_nonempty_batch(&out, 1000), COUNTS);
}

#[test]
fn socket_word_count_prints_the_counts_of_each_batch() {
    socket_example(env!("CARGO_BIN_EXE_socket_word_count"));
}

#[test]
fn custom_receiver_prints_the_counts_of_each_batch() {
    socket_example(env!("CARGO_BIN_EXE_custom_receiver"));
}

#[test]
fn directory_word_count_counts_each_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let incoming = dir.path().join("incoming");
    std::fs::create_dir(&incoming).unwrap();
    std::fs::write(
        incoming.join("before.txt"),
        "ignored because it was there first\n",
    )
    .unwrap();
    let job = Job::spawn(
        env!("CARGO_BIN_EXE_directory_word_count"),
        &[incoming.to_str().unwrap()],
    );
    job.wait_started();
    let staged = dir.path().join("hamlet.txt");
    std::fs::write(&staged, TEXT).unwrap();
    std::fs::rename(&staged, incoming.join("hamlet.txt")).unwrap();
    job.wait_printed("(to,3)");
    let out = job.terminate();
    assert_eq!(only_nonempty_batch(&out, 2000), COUNTS);
}

#[test]
fn a_missing_argument_prints_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_socket_word_count"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("usage: socket_word_count <host> <port>")
    );
}

#[test]
fn windowed_word_count_shows_each_batch_in_the_windows_that_cover_it() {
    let checkpoints = tempfile::tempdir().unwrap();
    let (port, go) = text_server(TEXT);
    let job = Job::spawn(
        env!("CARGO_BIN_EXE_windowed_word_count"),
        &[
            "127.0.0.1",
            &port.to_string(),
            checkpoints.path().to_str().unwrap(),
        ],
    );
    job.wait_started();
    go.send(()).unwrap();
    job.wait_printed("(to,3)");
    // Wait until a window no longer covers the data: the words then drop out.
    std::thread::sleep(Duration::from_secs(8));
    let out = job.terminate();
    let windows = parse_batches(&out, 4000);
    let nonempty = nonempty_batches(&out, 4000);
    // 6 s windows sliding by 4 s hold 3 of the 2 s batches, so a batch is in one or two windows.
    assert!(
        (1..=2).contains(&nonempty.len()),
        "the data batch is in one or two windows: {out}"
    );
    assert!(nonempty.iter().all(|w| w == &COUNTS), "{out}");
    assert!(
        windows.len() > nonempty.len(),
        "later windows are empty: {out}"
    );
    assert!(
        std::fs::read_dir(checkpoints.path()).unwrap().count() > 0,
        "the incremental window checkpoints its state"
    );
}

/// The totals printed in the last batch of `out`.
fn last_totals(out: &str) -> Vec<String> {
    let mut last = parse_batches(out, 1000)
        .pop()
        .map(|(_, r)| r)
        .unwrap_or_default();
    last.sort();
    last
}

#[test]
fn running_totals_survive_sigkill_with_nothing_lost_or_counted_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (incoming, checkpoints, staging) = (
        dir.path().join("in"),
        dir.path().join("ckpt"),
        dir.path().join("stage"),
    );
    for d in [&incoming, &staging] {
        std::fs::create_dir(d).unwrap();
    }
    let args = [incoming.to_str().unwrap(), checkpoints.to_str().unwrap()];
    let put = |i: usize| {
        let body = format!("w{} common\n", i % 3);
        std::fs::write(staging.join(format!("f{i}")), body).unwrap();
        std::fs::rename(
            staging.join(format!("f{i}")),
            incoming.join(format!("f{i}")),
        )
        .unwrap();
    };

    let job = Job::spawn(env!("CARGO_BIN_EXE_running_totals"), &args);
    job.wait_started();
    for i in 0..6 {
        put(i);
        std::thread::sleep(Duration::from_millis(400));
    }
    job.wait_printed("(common,6)");
    // Right after a checkpoint, two more files arrive and are counted; the job then dies
    // before the next checkpoint (4 s later) covers them.
    let checkpoints_now = || {
        std::fs::read_dir(&checkpoints)
            .unwrap()
            .filter_map(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .strip_prefix("checkpoint-")?
                    .parse::<u64>()
                    .ok()
            })
            .max()
    };
    let (before, mut waited) = (checkpoints_now(), 0);
    while checkpoints_now() == before && waited < 100 {
        std::thread::sleep(Duration::from_millis(50));
        waited += 1;
    }
    put(6);
    put(7);
    job.wait_printed("(common,8)");
    let before_crash = job.kill();
    let counted_at = parse_batches(&before_crash, 1000)
        .into_iter()
        .find(|(_, r)| r.iter().any(|l| l == "(common,8)"))
        .map(|(t, _)| t)
        .unwrap();

    put(8);
    let job = Job::spawn(env!("CARGO_BIN_EXE_running_totals"), &args);
    job.wait_started();
    put(9);
    job.wait_printed("(common,10)");
    let log = job.stderr();
    let restored: u64 = log
        .lines()
        .find(|l| l.contains("recovering from checkpoint"))
        .and_then(|l| l.split("batch=").nth(1))
        .and_then(|b| b.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("the restarted job recovers from a checkpoint: {log}"));
    assert!(
        restored < counted_at,
        "the crash came after f6 and f7 were counted ({counted_at}) but before a checkpoint covered them ({restored})"
    );
    std::thread::sleep(Duration::from_millis(2500));
    let out = job.terminate();
    // Ten files: w0 in f0 f3 f6 f9, w1 in f1 f4 f7, w2 in f2 f5 f8; "common" in all.
    assert_eq!(
        last_totals(&out),
        vec!["(common,10)", "(w0,4)", "(w1,3)", "(w2,3)"],
        "{out}"
    );
}

/// Total size of the files under `dir`, recursively.
fn tree_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => tree_size(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The newest checkpoint's batch time in `dir`.
fn newest_checkpoint(dir: &std::path::Path) -> Option<u64> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("checkpoint-")?
                .parse()
                .ok()
        })
        .max()
}

#[test]
fn socket_running_totals_replay_the_write_ahead_log_after_sigkill() {
    let checkpoints = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (send, lines) = mpsc::channel::<&'static str>();
    // One connection per job run; each sends what the test says, when it says it.
    std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut conn, _) = listener.accept().unwrap();
            loop {
                match lines.recv() {
                    Ok("next connection") | Err(_) => break,
                    Ok(text) => conn.write_all(text.as_bytes()).unwrap(),
                }
            }
        }
    });
    let ckpt = checkpoints.path().to_str().unwrap();
    let args = ["127.0.0.1", &port.to_string(), ckpt];

    let job = Job::spawn(env!("CARGO_BIN_EXE_socket_running_totals"), &args);
    job.wait_started();
    send.send("x y\nx y\nx y\n").unwrap();
    job.wait_printed("(x,3)");
    let first = newest_checkpoint(checkpoints.path());
    while newest_checkpoint(checkpoints.path()) == first {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Right after a checkpoint: these words are received and logged, then the job dies
    // before any checkpoint covers them. The server does not send them again.
    let logged = tree_size(&checkpoints.path().join("receivedData"));
    send.send("x z\nx z\n").unwrap();
    while tree_size(&checkpoints.path().join("receivedData")) == logged {
        std::thread::sleep(Duration::from_millis(5));
    }
    job.kill();
    send.send("next connection").unwrap();

    let job = Job::spawn(env!("CARGO_BIN_EXE_socket_running_totals"), &args);
    job.wait_started();
    send.send("y z\n").unwrap();
    job.wait_printed("(z,3)");
    let log = job.stderr();
    assert!(
        log.contains("replaying blocks from the write-ahead log"),
        "{log}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let out = job.terminate();
    assert_eq!(last_totals(&out), vec!["(x,5)", "(y,4)", "(z,3)"], "{out}");
}
