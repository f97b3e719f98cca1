//! What the status server costs a running word count: the same socket word count (1 s
//! batches, `local[2]`, the receiver capped at 100 000 ten-word lines a second) with the server
//! on and a client fetching the page, `/metrics`, the statistics and the batches every second,
//! and with it off (`ui(false)`). In each round both run at once, each in a process of its own,
//! so that both see the same load of the machine (on a shared machine, runs one after the other
//! differed by ±15 % from the load alone); the one started first alternates. It prints each
//! one's words per second and CPU time per word, the median overhead of the rounds, and the
//! share of the job's CPU the server's own threads (`stream-ui-*`) used: its direct cost, to
//! the nanosecond (`/proc/self/task/*/schedstat`), which the machine's noise does not blur.
//!
//! The client is a thread of the job's process (plain `GET`s over std's `TcpStream`); its CPU
//! time is measured on its thread and taken out, as a client's is not the job's. (It used to
//! start `curl` four times a second on the same two cores.)
//!
//! `cargo run --release -p cargo-stream-runtime --example ui_overhead -- [ROUNDS] [SECONDS]`
//! (default 5 rounds of 12 s). CPU time, not wall time, so that other work on the machine
//! disturbs it less; run it on an idle machine all the same. Linux only (`getrusage`,
//! `/proc`).

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

/// CPU time (user + system) in ms of `who`: `RUSAGE_SELF` (every thread of this process, ended
/// ones too) or `RUSAGE_THREAD` (the calling thread), to the microsecond.
fn rusage_ms(who: libc::c_int) -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(who, &mut u) }, 0);
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(u.ru_utime) + ms(u.ru_stime)
}

/// The calling thread's CPU time in ms.
fn thread_cpu_ms() -> f64 {
    rusage_ms(libc::RUSAGE_THREAD)
}

/// This process's CPU time in ms, every thread's.
fn cpu_ms() -> f64 {
    rusage_ms(libc::RUSAGE_SELF)
}

/// The CPU ms the status server's own threads (`stream-ui-*`) have used, to the nanosecond
/// (`/proc/.../schedstat`).
fn server_threads_cpu_ms() -> f64 {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("stream-ui"))
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e6
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

/// One job in a child process (this program with `--child on|off SECONDS`), so that the two
/// of a round run at the same time, under the same load of the machine.
fn spawn(ui: bool, secs: u64) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--child", if ui { "on" } else { "off" }, &secs.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// A child's `rate cpu server` line.
fn result(child: std::process::Child) -> (f64, f64, f64) {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (v[0], v[1], v[2])
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let (rate, cpu, server) = run(args[1] == "on", args[2].parse().unwrap());
        println!("{rate} {cpu} {server}");
        return;
    }
    let rounds: usize = args.first().map_or(5, |a| a.parse().expect("ROUNDS"));
    let secs: u64 = args.get(1).map_or(12, |a| a.parse().expect("SECONDS"));
    let (mut on, mut off, mut over, mut share) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Both at once, the one started first alternating.
        let (a, b) = if round % 2 == 0 {
            let a = spawn(true, secs);
            (a, spawn(false, secs))
        } else {
            let b = spawn(false, secs);
            (spawn(true, secs), b)
        };
        let ((rate_on, cpu_on, server), (rate_off, cpu_off, _)) = (result(a), result(b));
        println!(
            "round {}: server on + polling {rate_on:.0} words/s, {cpu_on:.1} ns CPU/word (server threads {server:.2} %); off {rate_off:.0} words/s, {cpu_off:.1} ns CPU/word; overhead {:.2} %",
            round + 1,
            (cpu_on - cpu_off) / cpu_off * 100.0
        );
        on.push(cpu_on);
        off.push(cpu_off);
        over.push((cpu_on - cpu_off) / cpu_off * 100.0);
        share.push(server);
    }
    println!(
        "median CPU per word: on {:.1} ns, off {:.1} ns; median overhead of the rounds {:.2} % (the server's own threads: {:.2} % of the job's CPU)",
        median(on),
        median(off),
        median(over),
        median(share)
    );
}
