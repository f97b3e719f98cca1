//! `startup_wc [BATCH_MS [RUNS]]`: how fast `stream_wc` (beside this binary) starts, fed by the
//! feeder at 1 M words/s: from the process's start to its first non-empty batch's output, and
//! that output's lag after the end of its batch interval (median of `RUNS`, default 5); then
//! the driver's resident memory at idle (connected to a server that sends nothing, after 3 s).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use cargo_stream_bench::now_secs;
use cargo_stream_bench::record::BatchRecord;

fn main() {
    let a: Vec<u64> = std::env::args()
        .skip(1)
        .map(|s| s.parse().expect("usage: startup_wc [BATCH_MS [RUNS]]"))
        .collect();
    let batch_ms = a.first().copied().unwrap_or(100);
    let runs = a.get(1).copied().unwrap_or(5);
    let exe = std::env::current_exe().expect("this binary's path");
    let job: PathBuf = exe.with_file_name("stream_wc");
    let dir = std::env::temp_dir().join(format!("startup-wc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let (mut firsts, mut lags) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let port = free_port();
        let feeder = std::thread::spawn(move || cargo_stream_bench::feeder::run(port, 1e6, 4.0));
        std::thread::sleep(Duration::from_millis(200));
        let out = dir.join(format!("{run}.jsonl"));
        let t0 = now_secs();
        let status = Command::new(&job)
            .args([
                &port.to_string(),
                "2",
                &out.to_string_lossy(),
                &batch_ms.to_string(),
            ])
            .status()
            .expect("stream_wc runs");
        assert!(status.success(), "stream_wc failed");
        let _ = feeder.join();
        let first = BatchRecord::read_file(&out)
            .into_iter()
            .find(|r| r.words > 0)
            .expect("a non-empty batch");
        let (to_output, lag) = ((first.done - t0) * 1e3, first.lag() * 1e3);
        println!("run {run}: start -> first output {to_output:.0} ms (its lag {lag:.0} ms)");
        firsts.push(to_output);
        lags.push(lag);
    }
    println!(
        "median of {runs}: start -> first output {:.0} ms, {batch_ms} ms batches; its lag after its batch interval {:.0} ms",
        median(firsts),
        median(lags)
    );

    // Idle: a server that accepts and sends nothing.
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("a port");
    let port = listener.local_addr().expect("its address").port();
    let server = std::thread::spawn(move || listener.accept().map(|(c, _)| c));
    let out = dir.join("idle.jsonl");
    let mut child = Command::new(&job)
        .args([
            &port.to_string(),
            "4",
            &out.to_string_lossy(),
            &batch_ms.to_string(),
        ])
        .spawn()
        .expect("stream_wc runs");
    std::thread::sleep(Duration::from_secs(3));
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("VmRSS: ? kB")
        .to_owned();
    let _ = child.wait();
    let _ = server.join();
    println!("idle driver ({batch_ms} ms batches, 3 s after start): {rss}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
