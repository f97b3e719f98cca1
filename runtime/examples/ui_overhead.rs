//! What the status server costs a running word count: the same socket word count (1 s
//! batches, `local[2]`, the receiver capped at 100 000 ten-word lines a second) with the server
//! on and `curl` fetching the page, `/metrics`, the statistics and the batches every second, and
//! with it off (`ui(false)`), in alternating runs. It prints the words per second each run
//! processed and the job's CPU time per word (the client's is not the job's: it is another
//! process), then the medians and the overhead.
//!
//! `cargo run --release -p cargo-stream-runtime --example ui_overhead -- [ROUNDS] [SECONDS]`
//! (default 5 rounds of 12 s each way; needs `curl`). CPU time, not wall time, so that other
//! work on the machine disturbs it less; run it on an idle machine all the same.

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

/// One GET with std, for the application id.
fn get(url: &str, path: &str) -> String {
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Fetches the page and the API every second with `curl` until `stop`.
fn poll(url: String, stop: Arc<AtomicBool>) {
    let apps = get(&url, "/api/v1/applications");
    let id = apps
        .split("\"id\": \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("an application id")
        .to_owned();
    let paths = [
        String::new(),
        "metrics".into(),
        format!("api/v1/applications/{id}/streaming/statistics"),
        format!("api/v1/applications/{id}/streaming/batches"),
    ];
    while !stop.load(Ordering::SeqCst) {
        for p in &paths {
            let _ = std::process::Command::new("curl")
                .args(["-s", "-o", "/dev/null", &format!("{url}{p}")])
                .status();
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// This process's CPU time (user + system) in ms.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) * 10.0
}

/// One run: words per second of the steady batches, CPU ns per word.
fn run(ui: bool, secs: u64) -> (f64, f64) {
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
        std::thread::spawn(move || poll(u, s))
    });
    std::thread::sleep(Duration::from_secs(secs));
    let cpu = cpu_ms() - cpu0;
    stop.store(true, Ordering::SeqCst);
    let _ = ssc.stop(false);
    if let Some(p) = poller {
        p.join().unwrap();
    }
    let batches = seen.0.lock().unwrap().clone();
    let steady = &batches[2.min(batches.len())..batches.len().saturating_sub(1)];
    let words: u64 = batches.iter().sum::<u64>() * 10;
    (
        steady.iter().sum::<u64>() as f64 * 10.0 / steady.len().max(1) as f64,
        cpu * 1e6 / words.max(1) as f64,
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
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (rate, cpu) = run(true, secs);
        println!("server on + polling: {rate:.0} words/s, {cpu:.1} ns CPU/word");
        on.push(cpu);
        let (rate, cpu) = run(false, secs);
        println!("server off:          {rate:.0} words/s, {cpu:.1} ns CPU/word");
        off.push(cpu);
    }
    let (on, off) = (median(on), median(off));
    println!(
        "median CPU per word: on {on:.1} ns, off {off:.1} ns; overhead {:.2} %",
        (on - off) / off * 100.0
    );
}
