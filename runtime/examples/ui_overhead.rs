//! What the status server costs a running word count: the same socket word count (1 s
//! batches, `local[2]`, the receiver capped at 100 000 ten-word lines a second) with the server
//! on and a client fetching the page, `/metrics`, the statistics and the batches every second,
//! and with it off (`ui(false)`), in alternating runs. It prints the words per second each run
//! processed and the job's CPU time per word, then the medians and the overhead, and the share
//! of the job's CPU the server's own threads used (the direct cost, free of the noise of the
//! machine).
//!
//! The client is a thread of this process (plain `GET`s over std's `TcpStream`): its CPU time
//! is measured on its thread and taken out, as a client's is not the job's. (It used to start
//! `curl` four times a second, whose process starts disturbed the job's caches on a 2-core
//! machine: a cost of the benchmark, not of the server.)
//!
//! `cargo run --release -p cargo-stream-runtime --example ui_overhead -- [ROUNDS] [SECONDS]`
//! (default 5 rounds of 12 s each way). CPU time, not wall time, so that other work on the
//! machine disturbs it less; run it on an idle machine all the same.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cargo_stream_runtime::BatchInfo;
use cargo_stream_runtime::prelude::*;

/// Records (lines) of every completed batch.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<u64>>>);

impl StreamingListener for Seen {
    fn on_batch_completed(&self, i: &BatchInfo) {
        self.0.lock().unwrap().push(i.num_records);
    }
}

/// A local server sending 10-word lines from 1,000 words as fast as the job reads them.
fn feeder() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let words: Vec<String> = (0..1000).map(|i| format!("w{i:03}x")).collect();
    let mut text = String::new();
    let mut k = 0usize;
    for _ in 0..20_000 {
        let line: Vec<&str> = (0..10)
            .map(|j| {
                k = (k * 31 + j + 7) % 1000;
                words[k].as_str()
            })
            .collect();
        text.push_str(&line.join(" "));
        text.push('\n');
    }
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        while s.write_all(text.as_bytes()).is_ok() {}
    });
    port
}

/// One `GET path` with std (HTTP/1.0, the whole answer read); the body's length.
fn get(addr: &str, path: &str) -> usize {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out.len()
}

/// The calling thread's CPU time in ms (user + system).
fn thread_cpu_ms() -> f64 {
    stat_cpu_ms(&std::fs::read_to_string("/proc/thread-self/stat").unwrap())
}

/// This process's CPU time in ms (user + system), every thread's.
fn cpu_ms() -> f64 {
    stat_cpu_ms(&std::fs::read_to_string("/proc/self/stat").unwrap())
}

/// utime + stime of a `/proc/.../stat` line, in ms (clock ticks of 10 ms).
fn stat_cpu_ms(stat: &str) -> f64 {
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) * 10.0
}

/// The CPU ms the status server's own threads (`stream-ui-*`) have used.
fn server_threads_cpu_ms() -> f64 {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("stream-ui"))
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .map(|s| stat_cpu_ms(&s))
        .sum()
}

/// The client: fetches the page, `/metrics`, the statistics and the batches every second
/// until `stop`, on its own thread; returns the CPU ms that thread used, which is the
/// client's, not the job's, and is taken out of the job's.
fn poll(url: String, stop: Arc<AtomicBool>) -> f64 {
    let cpu0 = thread_cpu_ms();
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut apps = Vec::new();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET /api/v1/applications HTTP/1.0\r\nHost: {addr}\r\n\r\n"
    )
    .unwrap();
    s.read_to_end(&mut apps).unwrap();
    let apps = String::from_utf8_lossy(&apps);
    let id = apps
        .split("\"id\": \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("an application id")
        .to_owned();
    let paths = [
        "/".to_owned(),
        "/metrics".into(),
        format!("/api/v1/applications/{id}/streaming/statistics"),
        format!("/api/v1/applications/{id}/streaming/batches"),
    ];
    while !stop.load(Ordering::SeqCst) {
        for p in &paths {
            assert!(get(&addr, p) > 0, "no answer to {p}");
        }
        for _ in 0..10 {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    thread_cpu_ms() - cpu0
}

/// One run: words per second of the steady batches, the job's CPU ns per word (the
/// client's thread left out), and the share of it the server's threads used.
fn run(ui: bool, secs: u64) -> (f64, f64, f64) {
    let port = feeder();
    let conf = StreamingConf::new("wc")
        .master("local[2]")
        .stop_on_signal(false)
        .ui(ui)
        .ui_port(0)
        .receiver_max_rate(100_000);
    let ssc = StreamingContext::new(conf, Seconds(1)).unwrap();
    let seen = Seen::default();
    ssc.add_streaming_listener(seen.clone());
    ssc.socket_text_stream("127.0.0.1", port)
        .flat_map(|l: String| l.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .map(|w| (w, 1u64))
        .reduce_by_key(|a, b| a + b)
        .foreach_rdd(|b, _| {
            std::hint::black_box(b.count());
        })
        .unwrap();
    ssc.start().unwrap();
    let cpu0 = cpu_ms();
    let stop = Arc::new(AtomicBool::new(false));
    let poller = ssc.ui_url().map(|u| {
        let s = stop.clone();
        std::thread::Builder::new()
            .name("ui-client".into())
            .spawn(move || poll(u, s))
            .unwrap()
    });
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::SeqCst);
    let client = poller.map_or(0.0, |p| p.join().unwrap());
    let server = server_threads_cpu_ms();
    let cpu = cpu_ms() - cpu0 - client;
    let _ = ssc.stop(false);
    let batches = seen.0.lock().unwrap().clone();
    let steady = &batches[2.min(batches.len())..batches.len().saturating_sub(1)];
    let words: u64 = batches.iter().sum::<u64>() * 10;
    (
        steady.iter().sum::<u64>() as f64 * 10.0 / steady.len().max(1) as f64,
        cpu * 1e6 / words.max(1) as f64,
        server / cpu.max(1.0) * 100.0,
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(5, |a| a.parse().expect("ROUNDS"));
    let secs: u64 = args.next().map_or(12, |a| a.parse().expect("SECONDS"));
    let (mut on, mut off, mut share) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first, so that a trend in the machine's load favours neither.
        for ui in [round % 2 == 0, round % 2 != 0] {
            let (rate, cpu, server) = run(ui, secs);
            if ui {
                println!(
                    "server on + polling: {rate:.0} words/s, {cpu:.1} ns CPU/word (server threads {server:.2} %)"
                );
                on.push(cpu);
                share.push(server);
            } else {
                println!("server off:          {rate:.0} words/s, {cpu:.1} ns CPU/word");
                off.push(cpu);
            }
        }
    }
    let (on, off, share) = (median(on), median(off), median(share));
    println!(
        "median CPU per word: on {on:.1} ns, off {off:.1} ns; overhead {:.2} % (the server's threads: {share:.2} % of the job's CPU)",
        (on - off) / off * 100.0
    );
}
