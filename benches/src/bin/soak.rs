//! The soak test (a benchmark binary, not CI): a stateful windowed socket job with the
//! write-ahead log (`cargo_stream_bench::soak::run_job`, this binary run as `soak job ...`),
//! killed with SIGKILL at random moments (seeded) and restarted each time from its checkpoint,
//! fed by a thread that records every record it sends. At the end it reports the records fed,
//! counted, lost and duplicated, whether the running totals and the windows agree with the
//! records counted, and the job's peak memory.
//!
//! ```text
//! cargo run --release -p cargo-stream-bench --bin soak -- [--quick] [--kills N] [--seed S]
//!     [--rate RECORDS_PER_S] [--min-ms MS] [--max-ms MS] [--out DIR]
//! ```
//!
//! What counts: the job's outputs are files per batch time written atomically. A batch whose
//! time is after the checkpoint a restart restores was computed by a run that then died; its
//! records are counted again by the next run (they come back from the write-ahead log), so its
//! files are *superseded* (moved to `superseded/`: what an at-least-once output showed twice).
//! The files left are the committed outputs: every record fed must be in exactly one of their
//! `batch-*` files. Records the job had read but not yet logged when it was killed (the last
//! block interval, 200 ms) are lost with it, as for any unreliable receiver; they are counted
//! apart ("in flight at a kill": sent less than a second before the kill that ended their
//! connection), and every other loss is a bug.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cargo_stream_bench::soak::{self, BATCH_MS, WINDOW_MS};

const USAGE: &str = "soak [--quick] [--kills N] [--seed S] [--rate RECORDS_PER_S] [--min-ms MS] [--max-ms MS] [--out DIR]";

/// A record sent: when, and on which run's connection.
struct Sent {
    at: Instant,
    run: usize,
}

struct Options {
    kills: usize,
    seed: u64,
    rate: u64,
    min_ms: u64,
    max_ms: u64,
    out: PathBuf,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("job") {
        let (Some(port), Some(ckpt), Some(out)) = (args.get(1), args.get(2), args.get(3)) else {
            die()
        };
        let port = port.parse().unwrap_or_else(|_| die());
        if let Err(e) = soak::run_job(port, Path::new(ckpt), Path::new(out)) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        return;
    }
    let opts = options(&args);
    if let Err(e) = soak_test(&opts) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn die() -> ! {
    eprintln!("usage: {USAGE}");
    std::process::exit(2)
}

fn options(args: &[String]) -> Options {
    let mut opts = Options {
        kills: 50,
        seed: 1,
        rate: 200,
        min_ms: 1000,
        max_ms: 6000,
        out: PathBuf::from(format!(
            "target/soak/{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        )),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_else(|| die());
        match flag.as_str() {
            "--quick" => opts.kills = 5,
            "--kills" => opts.kills = value().parse().unwrap_or_else(|_| die()),
            "--seed" => opts.seed = value().parse().unwrap_or_else(|_| die()),
            "--rate" => opts.rate = value().parse().unwrap_or_else(|_| die()),
            "--min-ms" => opts.min_ms = value().parse().unwrap_or_else(|_| die()),
            "--max-ms" => opts.max_ms = value().parse().unwrap_or_else(|_| die()),
            "--out" => opts.out = PathBuf::from(value()),
            _ => die(),
        }
    }
    if opts.rate == 0 || opts.min_ms > opts.max_ms {
        die()
    }
    opts
}

/// splitmix64: the kill moments from the seed, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// The feeder: one connection at a time (each run of the job connects once), records
/// numbered from 0 at `rate` per second across connections, each recorded as it is written.
struct Feeder {
    port: u16,
    sent: Arc<Mutex<Vec<Sent>>>,
    run: Arc<AtomicUsize>,
    paused: Arc<Mutex<bool>>,
    stop: Arc<AtomicBool>,
}

impl Feeder {
    fn start(rate: u64) -> std::io::Result<Feeder> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let feeder = Feeder {
            port,
            sent: Arc::default(),
            run: Arc::default(),
            paused: Arc::default(),
            stop: Arc::default(),
        };
        let (sent, run, paused, stop) = (
            feeder.sent.clone(),
            feeder.run.clone(),
            feeder.paused.clone(),
            feeder.stop.clone(),
        );
        std::thread::spawn(move || {
            let start = Instant::now();
            listener
                .set_nonblocking(true)
                .expect("a non-blocking listener");
            while !stop.load(Ordering::Relaxed) {
                let Ok((conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                feed(conn, rate, start, &sent, &run, &paused, &stop);
            }
        });
        Ok(feeder)
    }

    /// No record is being written once this returns.
    fn pause(&self) {
        *self.paused.lock().unwrap() = true;
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Writes records to `conn` at `rate` (counted from `start`, over every connection) until
/// the job is gone.
fn feed(
    mut conn: TcpStream,
    rate: u64,
    start: Instant,
    sent: &Mutex<Vec<Sent>>,
    run: &AtomicUsize,
    paused: &Mutex<bool>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        let due = (start.elapsed().as_secs_f64() * rate as f64) as usize;
        {
            let paused = paused.lock().unwrap();
            let mut sent = sent.lock().unwrap();
            if !*paused {
                // Behind after a restart: what was not sent while no job listened is sent now,
                // at most a second's worth at once.
                let n = due.saturating_sub(sent.len()).min(rate as usize);
                if n > 0 {
                    if cargo_stream_tests::feed::peer_closed(&conn) {
                        return;
                    }
                    let first = sent.len() as u64;
                    let text: String = (first..first + n as u64).map(soak::record_line).collect();
                    if conn.write_all(text.as_bytes()).is_err() {
                        return;
                    }
                    let (at, run) = (Instant::now(), run.load(Ordering::SeqCst));
                    sent.extend((0..n).map(|_| Sent { at, run }));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The peak resident memory seen of one run of the job.
#[derive(Default, Clone, Copy)]
struct Memory {
    /// The kernel's high-water mark (`VmHWM`), kB.
    hwm_kb: u64,
    /// The largest `VmRSS` sampled every 100 ms, kB.
    rss_kb: u64,
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Lets `job` run for `time` (or until it exits, an error), sampling its memory.
fn watch(job: &mut Child, time: Duration, mem: &mut Memory) -> Result<(), String> {
    let until = Instant::now() + time;
    while Instant::now() < until {
        if let Some(status) = job.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("the job exited by itself ({status})"));
        }
        let pid = job.id();
        mem.rss_kb = mem.rss_kb.max(status_kb(pid, "VmRSS").unwrap_or(0));
        mem.hwm_kb = mem.hwm_kb.max(status_kb(pid, "VmHWM").unwrap_or(0));
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn soak_test(opts: &Options) -> Result<(), String> {
    let (ckpt, outputs, superseded) = (
        opts.out.join("checkpoint"),
        opts.out.join("outputs"),
        opts.out.join("superseded"),
    );
    for d in [&outputs, &superseded] {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create `{}`: {e}", d.display()))?;
    }
    if ckpt.exists() {
        return Err(format!(
            "`{}` holds a checkpoint of an earlier run: use another `--out`",
            ckpt.display()
        ));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let feeder = Feeder::start(opts.rate).map_err(|e| format!("feeder: {e}"))?;
    let mut rng = Rng(opts.seed);
    let mut kills: Vec<Instant> = Vec::new();
    let mut mem = Memory::default();
    let mut superseded_files = 0;
    let began = Instant::now();
    println!(
        "soak: {} SIGKILLs (seed {}), {} records/s, runs of {}-{} ms; output in {}",
        opts.kills,
        opts.seed,
        opts.rate,
        opts.min_ms,
        opts.max_ms,
        opts.out.display()
    );
    for run in 0..=opts.kills {
        // What the restart will restore: outputs of later batches were computed by the run
        // that died, and will be computed again from the write-ahead log.
        if run > 0 {
            let restored = soak::newest_checkpoint(&ckpt).unwrap_or(0);
            for what in ["batch", "totals", "window"] {
                for (time, path) in soak::outputs(&outputs, what) {
                    if time > restored {
                        let name = path.file_name().unwrap().to_owned();
                        std::fs::rename(
                            &path,
                            superseded.join(format!("{run}-{}", name.to_string_lossy())),
                        )
                        .map_err(|e| e.to_string())?;
                        superseded_files += 1;
                    }
                }
            }
        }
        feeder.run.store(run, Ordering::SeqCst);
        let log = std::fs::File::create(opts.out.join(format!("run-{run}.log")))
            .map_err(|e| e.to_string())?;
        let mut job = Command::new(&exe)
            .arg("job")
            .arg(feeder.port.to_string())
            .arg(&ckpt)
            .arg(&outputs)
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the job: {e}"))?;
        if run < opts.kills {
            let after = Duration::from_millis(rng.between(opts.min_ms, opts.max_ms));
            watch(&mut job, after, &mut mem).map_err(|e| format!("run {run}: {e}"))?;
            job.kill().map_err(|e| e.to_string())?;
            kills.push(Instant::now());
            let _ = job.wait();
            print!(".");
            let _ = std::io::stdout().flush();
        } else {
            // The last run: fed for longer than a window (its last windows span no restart),
            // then nothing more sent, then a graceful stop.
            let fed_for = Duration::from_millis(WINDOW_MS + 3000);
            watch(&mut job, fed_for, &mut mem).map_err(|e| format!("last run: {e}"))?;
            feeder.pause();
            watch(&mut job, Duration::from_secs(3), &mut mem)
                .map_err(|e| format!("last run: {e}"))?;
            let _ = Command::new("kill")
                .args(["-TERM", &job.id().to_string()])
                .status();
            let until = Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(status) = job.try_wait().map_err(|e| e.to_string())? {
                    if !status.success() {
                        return Err(format!("the last run exited with {status} after SIGTERM"));
                    }
                    break;
                }
                if Instant::now() > until {
                    let _ = job.kill();
                    return Err("the last run did not stop within 60 s of SIGTERM".into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    println!();
    let sent = std::mem::take(&mut *feeder.sent.lock().unwrap());
    let report = analyse(&sent, &kills, &outputs, &superseded, superseded_files, mem);
    let text = format!(
        "{report}\nwall time {:.0} s; machine load (uptime): {}\n",
        began.elapsed().as_secs_f64(),
        uptime()
    );
    print!("{text}");
    std::fs::write(opts.out.join("report.md"), &text).map_err(|e| e.to_string())?;
    Ok(())
}

fn uptime() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().take(3).collect();
            format!("load average {}", f.join(", "))
        })
        .unwrap_or_default()
}

/// Compares the committed outputs with what was sent.
fn analyse(
    sent: &[Sent],
    kills: &[Instant],
    outputs: &Path,
    superseded: &Path,
    superseded_files: usize,
    mem: Memory,
) -> String {
    // Every record of the committed batches, and how often.
    let batches = soak::outputs(outputs, "batch");
    let mut seen: HashMap<u64, u32> = HashMap::new();
    let mut per_batch: BTreeMap<u64, HashMap<String, u64>> = BTreeMap::new();
    let mut per_key: BTreeMap<String, u64> = BTreeMap::new();
    for (time, path) in &batches {
        let counts = per_batch.entry(*time).or_default();
        for (key, seq) in soak::read_pairs(path) {
            *seen.entry(seq).or_default() += 1;
            *counts.entry(key.clone()).or_default() += 1;
            *per_key.entry(key).or_default() += 1;
        }
    }
    let fed = sent.len() as u64;
    let counted = seen.len() as u64;
    let duplicated: u64 = seen.values().map(|n| u64::from(n - 1)).sum();
    let unknown = seen.keys().filter(|s| **s >= fed).count();
    let (mut in_flight, mut lost) = (vec![0u64; kills.len()], Vec::new());
    let mut oldest_in_flight = Duration::ZERO;
    for (seq, s) in sent.iter().enumerate() {
        if seen.contains_key(&(seq as u64)) {
            continue;
        }
        let before_kill = kills.get(s.run).map(|k| k.saturating_duration_since(s.at));
        match before_kill {
            Some(age) if age < Duration::from_secs(1) => {
                in_flight[s.run] += 1;
                oldest_in_flight = oldest_in_flight.max(age);
            }
            _ => lost.push(seq),
        }
    }
    let most_in_flight = in_flight.iter().copied().max().unwrap_or(0);
    let in_flight: u64 = in_flight.iter().sum();
    // Records of superseded batches: shown by an output, then counted again after the
    // restart (at-least-once outputs; an idempotent sink overwrites them).
    let mut again = 0u64;
    for entry in std::fs::read_dir(superseded)
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry.file_name().to_string_lossy().contains("-batch-") {
            again += soak::read_pairs(&entry.path()).len() as u64;
        }
    }
    // The running totals of the last batch against the records counted.
    let totals = soak::outputs(outputs, "totals")
        .into_iter()
        .next_back()
        .map(|(_, p)| soak::read_pairs(&p).into_iter().collect::<BTreeMap<_, _>>())
        .unwrap_or_default();
    let totals_ok = totals == per_key;
    // Every committed window against the committed batches it covers.
    let windows = soak::outputs(outputs, "window");
    let mut wrong: Vec<String> = Vec::new();
    for (time, path) in &windows {
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        for (_, counts) in per_batch.range(time.saturating_sub(WINDOW_MS - 1)..=*time) {
            for (k, n) in counts {
                *expected.entry(k.clone()).or_default() += n;
            }
        }
        let got: BTreeMap<String, u64> = soak::read_pairs(path).into_iter().collect();
        if got != expected {
            wrong.push(format!("window at {time}: {got:?}, expected {expected:?}"));
        }
    }
    let mut out = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "| SIGKILLs | fed | counted | lost (in flight at a kill) | lost (other) | duplicated | counted twice by outputs (superseded) | totals = records | windows wrong | peak RSS (VmHWM) |"
    );
    let _ = writeln!(
        out,
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"
    );
    let _ = writeln!(
        out,
        "| {} | {fed} | {counted} | {in_flight} | {} | {duplicated} | {again} ({superseded_files} files) | {} | {} of {} | {:.1} MB (VmRSS max {:.1} MB) |",
        kills.len(),
        lost.len(),
        if totals_ok { "yes" } else { "NO" },
        wrong.len(),
        windows.len(),
        mem.hwm_kb as f64 / 1024.0,
        mem.rss_kb as f64 / 1024.0,
    );
    let _ = writeln!(
        out,
        "\nbatches of {BATCH_MS} ms, window {WINDOW_MS} ms sliding every batch, checkpoint every batch, write-ahead log on"
    );
    let _ = writeln!(
        out,
        "in flight at a kill: at most {most_in_flight} records at one kill, sent at most {} ms before it",
        oldest_in_flight.as_millis()
    );
    if unknown > 0 {
        let _ = writeln!(out, "{unknown} record(s) counted that were never sent");
    }
    if !lost.is_empty() {
        let _ = writeln!(
            out,
            "lost records (first 20): {:?}",
            &lost[..lost.len().min(20)]
        );
    }
    if !totals_ok {
        let _ = writeln!(out, "last totals {totals:?}\nrecords counted {per_key:?}");
    }
    for w in wrong.iter().take(5) {
        let _ = writeln!(out, "{w}");
    }
    out
}
