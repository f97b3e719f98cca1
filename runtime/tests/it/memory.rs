//! The receivers' memory bound (`receiver_max_buffered_bytes`), measured as the RSS of a
//! child process: a socket feed ten times what the job sustains must not grow the job's
//! memory past the bound plus a stated allowance, with or without backpressure, and the
//! sender must be held back (TCP backpressure) instead.
//!
//! The child is this test binary run again on the ignored test `memory::rss_child`, so the
//! RSS measured is the job's alone.

use std::io::{ErrorKind, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cargo_stream_runtime::prelude::*;

/// Tells `rss_child` to run: `<port> <backpressure 0|1> <bound bytes>`.
const CHILD_ENV: &str = "CARGO_STREAM_IT_RSS_CHILD";

/// The bound the child runs with.
const BOUND: u64 = 32 << 20;
/// What the job may use beyond the bound: the socket read buffer, the block being filled
/// while a store waits, allocator slack (glibc arenas keep freed chunks).
const ALLOWANCE: u64 = 24 << 20;
/// Lines of 1 000 bytes (with the newline).
const LINE: usize = 1_000;
/// The job processes a record in 200 µs: 5 000 lines/s, 5 MB/s.
const MICROS_PER_RECORD: u64 = 200;
/// The feed offers ten times that.
const OFFERED_LINES_PER_SEC: u64 = 10 * 1_000_000 / MICROS_PER_RECORD;
const FEED: Duration = Duration::from_secs(5);

/// The job the parent measures (runs only when spawned by `feed_and_measure`).
#[test]
#[ignore = "the child process of the memory-bound tests"]
fn rss_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let args: Vec<u64> = spec.split(' ').map(|a| a.parse().unwrap()).collect();
    let (port, backpressure, bound) = (args[0] as u16, args[1] == 1, args[2]);
    let conf = StreamingConf::new("rss")
        .master("local[2]")
        .stop_on_signal(false)
        .backpressure(backpressure)
        .receiver_max_buffered_bytes(bound);
    let ssc = StreamingContext::new(conf, Milliseconds(200)).unwrap();
    ssc.socket_text_stream("127.0.0.1", port)
        .foreach_rdd(|b, _| {
            std::thread::sleep(Duration::from_micros(MICROS_PER_RECORD * b.count()));
        })
        .unwrap();
    ssc.start().unwrap();
    // The parent kills this process when it has measured.
    ssc.await_termination_or_timeout(Seconds(60)).unwrap();
}

fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

struct Measured {
    baseline: u64,
    peak: u64,
    offered: u64,
    sent: u64,
}

/// Kills the child even when an assertion fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the job in a child, feeds it ten times what it sustains for `FEED`, and samples its
/// RSS: before the feed (baseline) and the peak during it.
fn feed_and_measure(backpressure: bool) -> Measured {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "memory::rss_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!("{port} {} {BOUND}", u8::from(backpressure)),
        )
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let child = Killed(child);
    let pid = child.0.id();
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("the child job did not connect: {e}"),
        }
    };
    conn.set_nonblocking(false).unwrap();
    conn.set_write_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let baseline = rss_bytes(pid).expect("the child runs");

    let mut line = vec![b'x'; LINE - 1];
    line.push(b'\n');
    let chunk: Vec<u8> = line.repeat(50);
    let (mut offered, mut sent) = (0u64, 0u64);
    let mut peak = baseline;
    let mut pending: &[u8] = &[];
    let started = Instant::now();
    let mut next_sample = started;
    while started.elapsed() < FEED {
        let due = started.elapsed().as_secs_f64() * (OFFERED_LINES_PER_SEC * LINE as u64) as f64;
        if pending.is_empty() && (offered as f64) < due {
            pending = &chunk;
            offered += chunk.len() as u64;
        }
        if pending.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
        } else {
            match conn.write(pending) {
                Ok(n) => {
                    sent += n as u64;
                    pending = &pending[n..];
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("the child job closed the connection: {e}"),
            }
        }
        if Instant::now() >= next_sample {
            peak = peak.max(rss_bytes(pid).expect("the child runs"));
            next_sample += Duration::from_millis(20);
        }
    }
    // What could be offered in time: the schedule, not what a blocked write let through.
    let offered =
        offered.max((FEED.as_secs_f64() * (OFFERED_LINES_PER_SEC * LINE as u64) as f64) as u64);
    peak = peak.max(rss_bytes(pid).expect("the child runs"));
    drop(child);
    Measured {
        baseline,
        peak,
        offered,
        sent,
    }
}

fn check(backpressure: bool) {
    let m = feed_and_measure(backpressure);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    eprintln!(
        "backpressure {backpressure}: baseline {:.1} MiB, peak {:.1} MiB (growth {:.1} MiB, bound {:.0} + allowance {:.0}); sent {:.1} of {:.1} MiB offered",
        mib(m.baseline),
        mib(m.peak),
        mib(m.peak.saturating_sub(m.baseline)),
        mib(BOUND),
        mib(ALLOWANCE),
        mib(m.sent),
        mib(m.offered)
    );
    assert!(
        m.peak <= m.baseline + BOUND + ALLOWANCE,
        "RSS grew past the bound: baseline {:.1} MiB, peak {:.1} MiB",
        mib(m.baseline),
        mib(m.peak)
    );
    assert!(
        m.sent < m.offered / 2,
        "the sender was held back by TCP backpressure: sent {:.1} of {:.1} MiB",
        mib(m.sent),
        mib(m.offered)
    );
}

#[test]
fn a_feed_ten_times_too_fast_stays_under_the_memory_bound_without_backpressure() {
    check(false);
}

#[test]
fn a_feed_ten_times_too_fast_stays_under_the_memory_bound_with_backpressure() {
    check(true);
}
