//! State, window and checkpoint benchmarks (issues 3 and 17), on a manual clock so that only
//! processing is timed:
//!
//! - `headline`: `map_with_state` against `update_state_by_key` with 1 M `u64` keys of state and
//!   10 k keys per batch, and `map_with_state` per touched key against a bare hash-map
//!   get+insert of the same keys in the same process (FxHash, the runtime's hasher, and std's
//!   SipHash); each run in its own process, median of the runs with the min-max spread;
//! - `scale`: `map_with_state` and `update_state_by_key` at 1 M, 10 M and 50 M keys (`u64` keys
//!   and 10-byte string keys, `u64` state): memory per key against a plain
//!   `HashMap<u64, u64>`, per-batch time (10 k keys per batch), full checkpoint time and size,
//!   recovery time; each case in its own process, the 50 M cases once (`u64` keys only: string
//!   keys there would pass the 6 GB this shared machine allows);
//! - `windows`: the incremental (inverse-function) window against the plain window.
//!
//! `cargo run --release -p cargo-stream-bench --bin state_bench -- [headline|scale|windows|all]
//! [--runs N] [--min-keys N] [--max-keys N]` prints markdown tables and the load average before and after.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cargo_stream_bench::rng::XorShift;
use cargo_stream_runtime::prelude::*;
use cargo_stream_runtime::{BatchInfo, CheckpointInfo, ManualClock};
use rustc_hash::FxBuildHasher;

/// Wall-clock time of each batch, from its start to its end, the CPU time the process spent
/// meanwhile (all threads: robust to other processes' load, which only adds wall time), and
/// the checkpoints written.
#[derive(Clone, Default)]
struct Timer {
    started: Arc<Mutex<Option<(Instant, u64)>>>,
    took: Arc<Mutex<Vec<Duration>>>,
    cpu: Arc<Mutex<Vec<Duration>>>,
    checkpoints: Arc<Mutex<Vec<(u64, u64)>>>,
}

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

unsafe extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// A CPU clock of Linux (`CLOCK_PROCESS_CPUTIME_ID` = 2, `CLOCK_THREAD_CPUTIME_ID` = 3), in ns.
fn cpu_clock(clock: i32) -> u64 {
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid, writable `struct timespec` (two 64-bit fields on x86-64 Linux).
    unsafe { clock_gettime(clock, &mut ts) };
    ts.sec as u64 * 1_000_000_000 + ts.nsec as u64
}

/// CPU time of every thread of this process so far, in nanoseconds.
fn cpu_ns() -> u64 {
    cpu_clock(2)
}

/// CPU time of the calling thread so far, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    cpu_clock(3)
}

impl StreamingListener for Timer {
    fn on_batch_started(&self, _: &BatchInfo) {
        *self.started.lock().unwrap() = Some((Instant::now(), cpu_ns()));
    }
    fn on_batch_completed(&self, _: &BatchInfo) {
        if let Some((s, c)) = self.started.lock().unwrap().take() {
            self.took.lock().unwrap().push(s.elapsed());
            let cpu = Duration::from_nanos(cpu_ns().saturating_sub(c));
            self.cpu.lock().unwrap().push(cpu);
        }
    }
    fn on_checkpoint_written(&self, info: &CheckpointInfo) {
        self.checkpoints
            .lock()
            .unwrap()
            .push((info.duration_ms, info.bytes));
    }
}

/// A context on a manual clock (1 s batches, `local[2]`) checkpointing to `dir`.
fn context(dir: &Path) -> (StreamingContext, ManualClock, Timer) {
    let clock = ManualClock::new();
    let conf = StreamingConf::new("bench")
        .master("local[2]")
        .manual_clock(clock.clone())
        .stop_on_signal(false);
    let ssc = StreamingContext::new(conf, Seconds(1)).unwrap();
    ssc.checkpoint(dir).unwrap();
    let timer = Timer::default();
    ssc.add_streaming_listener(timer.clone());
    (ssc, clock, timer)
}

/// Runs the context's batches `times` (in seconds), waiting for each.
fn drive(ssc: &StreamingContext, clock: &ManualClock, times: std::ops::RangeInclusive<u64>) {
    for i in times {
        clock.advance(Seconds(1));
        assert!(
            ssc.await_batch(Time::from_millis(i * 1000), Duration::from_secs(1800))
                .unwrap()
        );
    }
}

/// Runs `batches` through `build` and returns each batch's processing time and CPU time.
fn run<I: cargo_stream_runtime::Data>(
    batches: Vec<Vec<I>>,
    checkpoint: &Path,
    build: impl FnOnce(DStream<I>),
) -> (Vec<Duration>, Vec<Duration>) {
    let (ssc, clock, timer) = context(checkpoint);
    let n = batches.len() as u64;
    build(ssc.queue_stream(batches));
    ssc.start().unwrap();
    drive(&ssc, &clock, 1..=n);
    stop(&ssc);
    let took = timer.took.lock().unwrap().clone();
    (took, timer.cpu.lock().unwrap().clone())
}

/// Stops the context; on this shared machine a stop may outlast the runtime's 2 s bound
/// (`StopTimedOut`), which does not change what was measured.
fn stop(ssc: &StreamingContext) {
    if let Err(e) = ssc.stop(false) {
        eprintln!("note: {e}");
    }
}

fn median_of<T: Copy + PartialOrd>(v: &[T]) -> T {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn median(v: Vec<Duration>) -> Duration {
    median_of(&v)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `median (min-max)` of `v`, with `digits` decimals.
fn spread(v: &[f64], digits: usize) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if v.len() == 1 {
        return format!("{:.digits$} (1 run)", v[0]);
    }
    format!("{:.digits$} ({lo:.digits$}-{hi:.digits$})", median_of(v))
}

/// A key of the benchmark's state: `u64`, or a short string made from one.
trait BenchKey: cargo_stream_runtime::StateData + cargo_stream_runtime::Key + Hash + Eq {
    fn from_u64(k: u64) -> Self;
}
impl BenchKey for u64 {
    fn from_u64(k: u64) -> Self {
        k
    }
}
impl BenchKey for String {
    fn from_u64(k: u64) -> Self {
        format!("k{k:09}")
    }
}

/// `count` batches of `per_batch` keys drawn from `0..keys`, value 1.
fn batches<K: BenchKey>(keys: u64, per_batch: usize, count: usize) -> Vec<Vec<(K, u64)>> {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    (0..count)
        .map(|_| {
            (0..per_batch)
                .map(|_| (K::from_u64(rng.next() % keys), 1))
                .collect()
        })
        .collect()
}

fn initial<K: BenchKey>(keys: u64) -> Vec<(K, u64)> {
    (0..keys).map(|k| (K::from_u64(k), 0)).collect()
}

/// The running count of `map_with_state` in the benchmark.
fn count_spec<K: BenchKey>(initial: Vec<(K, u64)>) -> StateSpec<K, u64, u64, u64> {
    StateSpec::function(|_k: &K, v: Option<u64>, st: &mut State<u64>| {
        let n = st.get_option().copied().unwrap_or(0) + v.unwrap_or(0);
        st.update(n);
        n
    })
    .initial_state(initial)
}

fn count_update(v: Vec<u64>, old: Option<u64>) -> Option<u64> {
    Some(old.unwrap_or(0) + v.iter().sum::<u64>())
}

/// This process's resident and peak resident memory in bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Nanoseconds per key (wall, CPU) of a bare `get` + `insert` of the batches' keys into a map
/// that already holds `keys` keys: the limit for a per-key state update.
fn bare_loop<K: BenchKey, H: BuildHasher + Default>(
    keys: u64,
    input: &[Vec<(K, u64)>],
) -> (f64, f64) {
    let mut map: HashMap<K, u64, H> = HashMap::with_hasher(H::default());
    for (k, v) in initial::<K>(keys) {
        map.insert(k, v);
    }
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for batch in input {
        let batch = batch.clone();
        let n = batch.len() as f64;
        let (start, c) = (Instant::now(), thread_cpu_ns());
        for (k, v) in batch {
            let old = map.get(&k).copied().unwrap_or(0);
            map.insert(k, old + v);
        }
        wall.push(start.elapsed().as_nanos() as f64 / n);
        cpu.push((thread_cpu_ns() - c) as f64 / n);
    }
    std::hint::black_box(&map);
    (median_of(&wall[1..]), median_of(&cpu[1..]))
}

// ---------------------------------------------------------------------------------------------
// headline

const HEADLINE_KEYS: u64 = 1_000_000;
const PER_BATCH: usize = 10_000;
const BIG_BATCH: usize = 100_000;
// Nine, so that no batch is a checkpoint batch (the default interval is 10 s).
const HEADLINE_BATCHES: usize = 9;

/// One headline run (in its own process): ubk and mws per batch at 10 k keys, mws at 100 k
/// keys, and the bare loops; prints one `RESULT` line.
fn headline_case(dir: &Path) {
    let small = batches::<u64>(HEADLINE_KEYS, PER_BATCH, HEADLINE_BATCHES);
    let big = batches::<u64>(HEADLINE_KEYS, BIG_BATCH, HEADLINE_BATCHES);
    let (ubk, ubk_cpu) = run(small.clone(), &dir.join("ubk"), |s| {
        s.update_state_by_key_with(count_update, None, initial(HEADLINE_KEYS))
            .foreach_rdd(|b, _| {
                std::hint::black_box(b.count());
            })
            .unwrap();
    });
    let mws = |input: Vec<Vec<(u64, u64)>>, name: &str| {
        run(input, &dir.join(name), |s| {
            s.map_with_state(count_spec(initial(HEADLINE_KEYS)))
                .foreach_rdd(|b, _| {
                    std::hint::black_box(b.count());
                })
                .unwrap();
        })
    };
    let ((m_small, c_small), (m_big, c_big)) = (mws(small.clone(), "mws"), mws(big, "mws-big"));
    let fx = bare_loop::<u64, FxBuildHasher>(HEADLINE_KEYS, &small);
    let sip = bare_loop::<u64, std::hash::RandomState>(HEADLINE_KEYS, &small);
    // The first batch loads the initial state: timed from the second on.
    let m = |v: Vec<Duration>| ms(median(v[1..].to_vec()));
    println!(
        "RESULT {} {} {} {} {} {} {} {} {} {}",
        m(ubk),
        m(m_small),
        m(m_big),
        fx.0,
        sip.0,
        m(c_small),
        m(c_big),
        fx.1,
        sip.1,
        m(ubk_cpu)
    );
}

fn headline(runs: usize) {
    let before = load();
    let rows: Vec<Vec<f64>> = (0..runs).map(|_| child(&["headline-case"])).collect();
    let col = |i: usize| rows.iter().map(|r| r[i]).collect::<Vec<_>>();
    let of = |f: &dyn Fn(&[f64]) -> f64| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
    let (small, big) = (PER_BATCH as f64, BIG_BATCH as f64);
    println!(
        "\nheadline: 1 M u64 keys of state, median of {runs} runs (min-max), load {before} before, {} after\n",
        load()
    );
    println!("| figure | wall | CPU (all threads) | target |\n| --- | --- | --- | --- |");
    println!(
        "| update_state_by_key, 10 k keys per batch | {} ms per batch | {} ms | |",
        spread(&col(0), 1),
        spread(&col(9), 1)
    );
    println!(
        "| map_with_state, same input | {} ms per batch | {} ms | |",
        spread(&col(1), 2),
        spread(&col(5), 2)
    );
    println!(
        "| map_with_state vs update_state_by_key | {}x faster | {}x less CPU | >= 20x |",
        spread(&of(&|r| r[0] / r[1]), 1),
        spread(&of(&|r| r[9] / r[5]), 1)
    );
    println!(
        "| map_with_state per touched key, 10 k per batch (whole batch / keys) | {} ns | {} ns | |",
        spread(&of(&|r| r[1] * 1e6 / small), 0),
        spread(&of(&|r| r[5] * 1e6 / small), 0)
    );
    println!(
        "| map_with_state per touched key, 100 k per batch | {} ns | {} ns | |",
        spread(&of(&|r| r[2] * 1e6 / big), 0),
        spread(&of(&|r| r[6] * 1e6 / big), 0)
    );
    println!(
        "| bare FxHashMap get+insert, same keys (one thread) | {} ns | {} ns | |",
        spread(&col(3), 0),
        spread(&col(7), 0)
    );
    println!(
        "| bare std HashMap (SipHash) get+insert | {} ns | {} ns | |",
        spread(&col(4), 0),
        spread(&col(8), 0)
    );
    println!(
        "| map_with_state per key / bare FxHashMap, 10 k per batch | {}x | {}x | <= 3x |",
        spread(&of(&|r| r[1] * 1e6 / small / r[3]), 1),
        spread(&of(&|r| r[5] * 1e6 / small / r[7]), 1)
    );
    println!(
        "| map_with_state per key / bare FxHashMap, 100 k per batch | {}x | {}x | <= 3x |",
        spread(&of(&|r| r[2] * 1e6 / big / r[3]), 1),
        spread(&of(&|r| r[6] * 1e6 / big / r[7]), 1)
    );
}

// ---------------------------------------------------------------------------------------------
// scale

const SCALE_BATCHES: u64 = 6;

/// One scale case in this process: `op` (`mws`, `ubk` or `hashmap`) with `keys` keys of type
/// `K`; prints `RESULT bytes_per_key batch_ms checkpoint_ms checkpoint_bytes recovery_ms
/// batch_cpu_ms`.
fn scale_case<K: BenchKey>(op: &str, keys: u64, dir: &Path) {
    let (base, _) = rss();
    if op == "hashmap" {
        let mut map: HashMap<K, u64, FxBuildHasher> = HashMap::default();
        map.extend(initial::<K>(keys));
        std::thread::sleep(Duration::from_millis(200));
        let (now, _) = rss();
        std::hint::black_box(&map);
        println!("RESULT {} 0 0 0 0 0", (now - base) as f64 / keys as f64);
        return;
    }
    // Batches 2..SCALE_BATCHES-1 are timed; the last one checkpoints.
    let input = batches::<K>(keys, PER_BATCH, SCALE_BATCHES as usize);
    let checkpoint = dir.join("ckpt");
    let build = |ssc: &StreamingContext, input: Vec<Vec<(K, u64)>>, init: Vec<(K, u64)>| {
        let s = ssc.queue_stream(input);
        let out = if op == "mws" {
            let mapped = s.map_with_state(count_spec(init));
            mapped.checkpoint(Seconds(SCALE_BATCHES));
            mapped.into_dstream().map(|_| ())
        } else {
            let out = s.update_state_by_key_with(count_update, None, init);
            out.checkpoint(Seconds(SCALE_BATCHES));
            out.map(|_| ())
        };
        out.foreach_rdd(|b, _| {
            std::hint::black_box(b.count());
        })
        .unwrap();
    };
    let (ssc, clock, timer) = context(&checkpoint);
    build(&ssc, input, initial::<K>(keys));
    ssc.start().unwrap();
    drive(&ssc, &clock, 1..=1);
    std::thread::sleep(Duration::from_millis(200));
    let (loaded, _) = rss();
    drive(&ssc, &clock, 2..=SCALE_BATCHES);
    stop(&ssc);
    let took = timer.took.lock().unwrap().clone();
    let batch = ms(median(took[1..took.len() - 1].to_vec()));
    let cpu = timer.cpu.lock().unwrap().clone();
    let cpu = ms(median(cpu[1..cpu.len() - 1].to_vec()));
    let (ckpt_ms, ckpt_bytes) = timer
        .checkpoints
        .lock()
        .unwrap()
        .first()
        .copied()
        .unwrap_or((0, 0));
    drop(ssc);
    // Recovery: a new context from the checkpoint (no initial state), restored in `start`.
    let start = Instant::now();
    let ssc = StreamingContext::get_or_create(&checkpoint, || {
        let (ssc, _, _) = context(&checkpoint);
        build(&ssc, Vec::new(), Vec::new());
        Ok(ssc)
    })
    .unwrap();
    ssc.start().unwrap();
    let recovery = ms(start.elapsed());
    stop(&ssc);
    println!(
        "RESULT {} {batch} {ckpt_ms} {ckpt_bytes} {recovery} {cpu}",
        (loaded - base) as f64 / keys as f64
    );
}

fn scale(runs: usize, min_keys: u64, max_keys: u64) {
    println!("\nscale: 10 k keys per batch, load before {}\n", load());
    println!(
        "| case | keys | memory per key (RSS) | vs HashMap<K, u64> | per batch (wall / CPU) | full checkpoint | checkpoint size | recovery | runs |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for keys in [1_000_000u64, 10_000_000, 50_000_000] {
        if keys > max_keys || keys < min_keys {
            continue;
        }
        let runs = if keys >= 50_000_000 { 1 } else { runs };
        let types: &[&str] = if keys >= 50_000_000 {
            &["u64"]
        } else {
            &["u64", "string"]
        };
        for ty in types {
            let n = keys.to_string();
            let bare: Vec<f64> = (0..runs)
                .map(|_| child(&["scale-case", "hashmap", ty, &n])[0])
                .collect();
            for op in ["mws", "ubk"] {
                let rows: Vec<Vec<f64>> = (0..runs)
                    .map(|_| child(&["scale-case", op, ty, &n]))
                    .collect();
                let col = |i: usize| rows.iter().map(|r| r[i]).collect::<Vec<_>>();
                let vs: Vec<f64> = rows.iter().zip(&bare).map(|(r, b)| r[0] / b).collect();
                let mb: Vec<f64> = col(3).iter().map(|b| b / 1e6).collect();
                println!(
                    "| {} {ty} | {} M | {} B | {}x (HashMap: {} B) | {} / {} ms | {} ms | {} MB | {} ms | {} |",
                    if op == "mws" {
                        "map_with_state"
                    } else {
                        "update_state_by_key"
                    },
                    keys / 1_000_000,
                    spread(&col(0), 1),
                    spread(&vs, 2),
                    spread(&bare, 1),
                    spread(&col(1), 1),
                    spread(&col(5), 1),
                    spread(&col(2), 0),
                    spread(&mb, 1),
                    spread(&col(4), 0),
                    rows.len(),
                );
            }
        }
    }
    println!("\nload after {}", load());
}

// ---------------------------------------------------------------------------------------------
// windows

fn windows(dir: &Path) {
    let window_batches = |n: usize| -> Vec<Vec<(u64, u64)>> {
        let mut rng = XorShift(7);
        (0..n)
            .map(|_| (0..100_000).map(|_| (rng.next() % 10_000, 1)).collect())
            .collect()
    };
    println!("\nwindows, load {}\n", load());
    println!("| benchmark | measured | ratio |\n| --- | --- | --- |");
    let mut per_window = Vec::new();
    for w in [6u64, 60] {
        let batches = (w + 5) as usize;
        let (plain, _) = run(
            window_batches(batches),
            &dir.join(format!("plain{w}")),
            |s| {
                s.reduce_by_key_and_window(|a, b| a + b, Seconds(w), Seconds(1))
                    .foreach_rdd(|b, _| {
                        std::hint::black_box(b.count());
                    })
                    .unwrap();
            },
        );
        let (inv, _) = run(window_batches(batches), &dir.join(format!("inv{w}")), |s| {
            s.reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, Seconds(w), Seconds(1))
                .foreach_rdd(|b, _| {
                    std::hint::black_box(b.count());
                })
                .unwrap();
        });
        // Once the window is full: the last five batches.
        let tail = |v: Vec<Duration>| median(v[v.len() - 5..].to_vec());
        per_window.push((w, tail(plain), tail(inv)));
    }
    for (w, plain, inv) in &per_window {
        println!(
            "| plain window {w} s (100 k records/batch, 10 k keys) | {:.1} ms per batch | |",
            ms(*plain)
        );
        println!(
            "| inverse window {w} s, same input | {:.1} ms per batch | {:.1}x faster than plain |",
            ms(*inv),
            plain.as_secs_f64() / inv.as_secs_f64()
        );
    }
    let (i6, i60) = (per_window[0].2, per_window[1].2);
    println!(
        "| inverse window: 60 s against 6 s | {:.1} ms vs {:.1} ms | {:.2} (target <= 1.5) |",
        ms(i60),
        ms(i6),
        i60.as_secs_f64() / i6.as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------

/// Runs this binary with `args` in a fresh process (its own heap, so memory and timing of one
/// case do not leak into the next) and parses its `RESULT` line.
fn child(args: &[&str]) -> Vec<f64> {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "`state_bench {}` printed no result: {}\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    line[7..]
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect()
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cargo-stream-state-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let runs = flag("--runs").unwrap_or(5) as usize;
    let max_keys = flag("--max-keys").unwrap_or(50_000_000);
    let min_keys = flag("--min-keys").unwrap_or(0);
    let dir = scratch();
    match args.first().map(String::as_str).unwrap_or("all") {
        "headline-case" => headline_case(&dir),
        // For `perf record`: `map_with_state` alone, 200 batches of 10 k keys.
        "profile-mws" => {
            let (took, _) = run(batches::<u64>(HEADLINE_KEYS, PER_BATCH, 200), &dir, |s| {
                s.map_with_state(count_spec(initial(HEADLINE_KEYS)))
                    .checkpoint(Seconds(1000))
                    .foreach_rdd(|b, _| {
                        std::hint::black_box(b.count());
                    })
                    .unwrap();
            });
            println!("median {:.3} ms", ms(median(took[1..].to_vec())));
        }
        "scale-case" => {
            let keys: u64 = args[3].parse().unwrap();
            match args[2].as_str() {
                "u64" => scale_case::<u64>(&args[1], keys, &dir),
                _ => scale_case::<String>(&args[1], keys, &dir),
            }
        }
        "headline" => headline(runs),
        "scale" => scale(runs, min_keys, max_keys),
        "windows" => windows(&dir),
        "all" => {
            headline(runs);
            scale(runs, min_keys, max_keys);
            windows(&dir);
        }
        other => {
            eprintln!(
                "usage: state_bench [headline|scale|windows|all] [--runs N] [--min-keys N] [--max-keys N] (got `{other}`)"
            );
            std::process::exit(2);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
