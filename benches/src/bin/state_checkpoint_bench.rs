//! Incremental against full checkpoints of a large keyed state (issue 17): `map_with_state`
//! over 10 M `u64 -> u64` keys, 1 % of them changed between checkpoints (100 k keys per 1 s
//! batch, a checkpoint every batch), on a manual clock so that only processing is timed:
//!
//! - the time and size of each checkpoint with deltas (the default: a full snapshot every 10)
//!   against a full snapshot every time (`state_full_snapshot_every(1)`);
//! - the recovery of each directory (`get_or_create` + `start()`): its time and the bytes the
//!   process read (`rchar` of `/proc/self/io`).
//!
//! Each figure is the median of several checkpoints or recoveries, with the smallest and
//! largest. `cargo run --release -p cargo-stream-bench --bin state_checkpoint_bench [keys]`
//! prints a markdown table and the machine's load (`/proc/loadavg`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cargo_stream_bench::rng::XorShift;
use cargo_stream_runtime::prelude::*;
use cargo_stream_runtime::{CheckpointInfo, ManualClock, OutputOperationInfo};

/// Each checkpoint's time, from the end of the batch's output to the checkpoint written, and
/// its size.
#[derive(Clone, Default)]
struct Checkpoints {
    output_done: Arc<Mutex<Option<Instant>>>,
    written: Arc<Mutex<Vec<(Duration, u64)>>>,
}

impl StreamingListener for Checkpoints {
    fn on_output_operation_completed(&self, _: &OutputOperationInfo) {
        *self.output_done.lock().unwrap() = Some(Instant::now());
    }
    fn on_checkpoint_written(&self, info: &CheckpointInfo) {
        if let Some(s) = self.output_done.lock().unwrap().take() {
            self.written.lock().unwrap().push((s.elapsed(), info.bytes));
        }
    }
}

const BATCHES: u64 = 9;

fn conf(clock: &ManualClock, full_every: u32) -> StreamingConf {
    StreamingConf::new("state-checkpoint-bench")
        .master("local[2]")
        .manual_clock(clock.clone())
        .stop_on_signal(false)
        .ui(false)
        .event_log(false)
        .state_full_snapshot_every(full_every)
}

fn spec(initial: Vec<(u64, u64)>) -> StateSpec<u64, u64, u64, u64> {
    StateSpec::function(|_k: &u64, v: Option<u64>, st: &mut State<u64>| {
        let n = st.get_option().copied().unwrap_or(0) + v.unwrap_or(0);
        st.update(n);
        n
    })
    .initial_state(initial)
}

/// Runs `BATCHES` batches of `keys / 100` keys each over a state of `keys` keys, a
/// checkpoint after each; returns each checkpoint's time and size.
fn run(dir: &std::path::Path, keys: u64, full_every: u32) -> Vec<(Duration, u64)> {
    let clock = ManualClock::new();
    let ssc = StreamingContext::new(conf(&clock, full_every), Seconds(1)).unwrap();
    ssc.checkpoint(dir).unwrap();
    let listener = Checkpoints::default();
    ssc.add_streaming_listener(listener.clone());
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let per_batch = (keys / 100) as usize;
    let batches: Vec<Vec<(u64, u64)>> = (0..BATCHES)
        .map(|_| (0..per_batch).map(|_| (rng.next() % keys, 1)).collect())
        .collect();
    let mapped = ssc
        .queue_stream(batches)
        .map_with_state(spec((0..keys).map(|k| (k, 0)).collect()));
    mapped.checkpoint(Seconds(1));
    mapped
        .foreach_rdd(|b, _| {
            std::hint::black_box(b.count());
        })
        .unwrap();
    ssc.start().unwrap();
    for i in 1..=BATCHES {
        clock.advance(Seconds(1));
        assert!(
            ssc.await_batch(Time::from_millis(i * 1000), Duration::from_secs(1200))
                .unwrap()
        );
    }
    ssc.stop(false).unwrap();
    listener.written.lock().unwrap().clone()
}

/// Bytes this process has read so far (`rchar`: every `read`, cached or not).
fn bytes_read() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("rchar: ")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Restores the job from `dir` and starts it (no batch runs on the manual clock); returns the
/// time and the bytes read.
fn recover(dir: &std::path::Path) -> (Duration, u64) {
    let clock = ManualClock::new();
    let (started, read) = (Instant::now(), bytes_read());
    let ssc = StreamingContext::get_or_create(dir, || {
        let ssc = StreamingContext::new(conf(&clock, 10), Seconds(1))?;
        let mapped = ssc
            .queue_stream(Vec::<Vec<(u64, u64)>>::new())
            .map_with_state(spec(Vec::new()));
        mapped.checkpoint(Seconds(1));
        mapped.foreach_rdd(|b, _| {
            std::hint::black_box(b.count());
        })?;
        Ok(ssc)
    })
    .unwrap();
    ssc.start().unwrap();
    let took = (started.elapsed(), bytes_read() - read);
    ssc.stop(false).unwrap();
    took
}

/// Median, smallest and largest.
fn spread<T: Copy + Ord>(mut v: Vec<T>) -> (T, T, T) {
    v.sort();
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn mb(b: u64) -> String {
    format!("{:.2} MB", b as f64 / 1e6)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    let keys: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let root = std::env::temp_dir().join(format!("cargo-stream-ckpt-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    eprintln!("load before: {}", load());

    let full_dir = root.join("full");
    let full = run(&full_dir, keys, 1);
    eprintln!("full run done, load {}", load());
    let delta_dir = root.join("delta");
    let incremental = run(&delta_dir, keys, 10);
    eprintln!("incremental run done, load {}", load());
    // The first checkpoint of each run is a full one; the incremental run's others are deltas.
    let fulls: Vec<(Duration, u64)> = full[1..].to_vec();
    let deltas: Vec<(Duration, u64)> = incremental[1..].to_vec();
    let (ft, ft0, ft1) = spread(fulls.iter().map(|c| c.0).collect());
    let (fb, _, _) = spread(fulls.iter().map(|c| c.1).collect());
    let (dt, dt0, dt1) = spread(deltas.iter().map(|c| c.0).collect());
    let (db, db0, db1) = spread(deltas.iter().map(|c| c.1).collect());

    let recoveries =
        |dir: &std::path::Path| -> Vec<(Duration, u64)> { (0..3).map(|_| recover(dir)).collect() };
    let rf = recoveries(&full_dir);
    let rd = recoveries(&delta_dir);
    let (rft, rft0, rft1) = spread(rf.iter().map(|r| r.0).collect());
    let (rdt, rdt0, rdt1) = spread(rd.iter().map(|r| r.0).collect());
    let (rfb, _, _) = spread(rf.iter().map(|r| r.1).collect());
    let (rdb, _, _) = spread(rd.iter().map(|r| r.1).collect());

    let m = keys as f64 / 1e6;
    println!("| {m} M keys, 1 % changed per checkpoint | median (min–max) | ratio |");
    println!("| --- | --- | --- |");
    println!(
        "| full checkpoint (`state_full_snapshot_every(1)`), {} of them | {} ({}–{}), {} | 1 |",
        fulls.len(),
        ms(ft),
        ms(ft0),
        ms(ft1),
        mb(fb)
    );
    println!(
        "| incremental checkpoint (default), {} deltas | {} ({}–{}), {} ({}–{}) | {:.0}x less time, {:.0}x fewer bytes |",
        deltas.len(),
        ms(dt),
        ms(dt0),
        ms(dt1),
        mb(db),
        mb(db0),
        mb(db1),
        ft.as_secs_f64() / dt.as_secs_f64(),
        fb as f64 / db as f64
    );
    println!(
        "| recovery from a full snapshot, 3 times | {} ({}–{}), {} read | |",
        ms(rft),
        ms(rft0),
        ms(rft1),
        mb(rfb)
    );
    println!(
        "| recovery from a full snapshot + {} deltas, 3 times | {} ({}–{}), {} read | {:.2}x the time |",
        deltas.len(),
        ms(rdt),
        ms(rdt0),
        ms(rdt1),
        mb(rdb),
        rdt.as_secs_f64() / rft.as_secs_f64()
    );
    println!("\nload average (1, 5, 15 min) at the end: {}", load());
    let _ = std::fs::remove_dir_all(&root);
}
