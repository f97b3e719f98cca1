//! State, window and checkpoint benchmarks (issue 3), on a manual clock so that only
//! processing is timed:
//!
//! - `map_with_state` against `update_state_by_key`: per-batch time with 1 M keys of state and
//!   10 k keys per batch;
//! - the incremental (inverse-function) window against the plain window, 6 s and 60 s windows
//!   on 1 s batches;
//! - checkpoint write time and size for 1 M keys.
//!
//! `cargo run --release -p cargo-stream-bench --bin state_bench` prints a markdown table.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cargo_stream_runtime::prelude::*;
use cargo_stream_runtime::{BatchInfo, ManualClock};

/// Wall-clock time of each batch, from its start to its end.
#[derive(Clone, Default)]
struct Timer {
    started: Arc<Mutex<Option<Instant>>>,
    took: Arc<Mutex<Vec<Duration>>>,
}

impl StreamingListener for Timer {
    fn on_batch_started(&self, _: &BatchInfo) {
        *self.started.lock().unwrap() = Some(Instant::now());
    }
    fn on_batch_completed(&self, _: &BatchInfo) {
        if let Some(s) = self.started.lock().unwrap().take() {
            self.took.lock().unwrap().push(s.elapsed());
        }
    }
}

/// Runs `batches` through `build` on a manual clock (1 s batches, `local[2]`) and returns each
/// batch's processing time.
fn run<I: cargo_stream_runtime::Data>(
    batches: Vec<Vec<I>>,
    checkpoint: &std::path::Path,
    build: impl FnOnce(DStream<I>),
) -> Vec<Duration> {
    let clock = ManualClock::new();
    let conf = StreamingConf::new("bench")
        .master("local[2]")
        .manual_clock(clock.clone())
        .stop_on_signal(false);
    let ssc = StreamingContext::new(conf, Seconds(1)).unwrap();
    ssc.checkpoint(checkpoint).unwrap();
    let timer = Timer::default();
    ssc.add_streaming_listener(timer.clone());
    let n = batches.len() as u64;
    build(ssc.queue_stream(batches));
    ssc.start().unwrap();
    for i in 1..=n {
        clock.advance(Seconds(1));
        assert!(
            ssc.await_batch(Time::from_millis(i * 1000), Duration::from_secs(600))
                .unwrap()
        );
    }
    ssc.stop(false).unwrap();
    timer.took.lock().unwrap().clone()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A small deterministic generator (xorshift), so both sides see the same keys.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const KEYS: u64 = 1_000_000;
const PER_BATCH: usize = 10_000;
const BATCHES: usize = 8;

fn state_batches() -> Vec<Vec<(u64, u64)>> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..BATCHES)
        .map(|_| (0..PER_BATCH).map(|_| (rng.next() % KEYS, 1)).collect())
        .collect()
}

fn initial() -> Vec<(u64, u64)> {
    (0..KEYS).map(|k| (k, 0)).collect()
}

fn main() {
    let dir = std::env::temp_dir().join(format!("cargo-stream-state-bench-{}", std::process::id()));
    let fresh = |name: &str| {
        let d = dir.join(name);
        let _ = std::fs::remove_dir_all(&d);
        d
    };
    println!("| benchmark | measured | ratio |\n| --- | --- | --- |");

    // 1. map_with_state vs update_state_by_key.
    let ubk = run(state_batches(), &fresh("ubk"), |s| {
        s.update_state_by_key_with(
            |v: Vec<u64>, old: Option<u64>| Some(old.unwrap_or(0) + v.iter().sum::<u64>()),
            None,
            initial(),
        )
        .foreach_rdd(|b, _| {
            std::hint::black_box(b.count());
        })
        .unwrap();
    });
    let mws = run(state_batches(), &fresh("mws"), |s| {
        let spec = StateSpec::function(|_k: &u64, v: Option<u64>, st: &mut State<u64>| {
            let n = st.get_option().copied().unwrap_or(0) + v.unwrap_or(0);
            st.update(n);
            n
        })
        .initial_state(initial());
        s.map_with_state(spec)
            .foreach_rdd(|b, _| {
                std::hint::black_box(b.count());
            })
            .unwrap();
    });
    let (u, m) = (median(ubk[1..].to_vec()), median(mws[1..].to_vec()));
    println!(
        "| update_state_by_key, 1 M keys, 10 k per batch | {} per batch | 1 |",
        ms(u)
    );
    println!(
        "| map_with_state, same input | {} per batch | {:.1}x faster |",
        ms(m),
        u.as_secs_f64() / m.as_secs_f64()
    );

    // 2. Inverse-function window vs plain window, 6 s and 60 s on 1 s batches.
    let window_batches = |n: usize| -> Vec<Vec<(u64, u64)>> {
        let mut rng = Rng(7);
        (0..n)
            .map(|_| (0..100_000).map(|_| (rng.next() % 10_000, 1)).collect())
            .collect()
    };
    let mut per_window = Vec::new();
    for w in [6u64, 60] {
        let batches = (w + 5) as usize;
        let plain = run(window_batches(batches), &fresh("plain"), |s| {
            s.reduce_by_key_and_window(|a, b| a + b, Seconds(w), Seconds(1))
                .foreach_rdd(|b, _| {
                    std::hint::black_box(b.count());
                })
                .unwrap();
        });
        let inv = run(window_batches(batches), &fresh("inv"), |s| {
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
            "| plain window {w} s (100 k records/batch, 10 k keys) | {} per batch | |",
            ms(*plain)
        );
        println!(
            "| inverse window {w} s, same input | {} per batch | {:.1}x faster than plain |",
            ms(*inv),
            plain.as_secs_f64() / inv.as_secs_f64()
        );
    }
    let (i6, i60) = (per_window[0].2, per_window[1].2);
    println!(
        "| inverse window: 60 s against 6 s | {} vs {} | {:.2} (target <= 1.5) |",
        ms(i60),
        ms(i6),
        i60.as_secs_f64() / i6.as_secs_f64()
    );

    // 3. Checkpoint write time and size, 1 M keys.
    let ckpt = fresh("ckpt");
    let with = run(state_batches()[..4].to_vec(), &ckpt, |s| {
        let spec = StateSpec::function(|_k: &u64, v: Option<u64>, st: &mut State<u64>| {
            let n = st.get_option().copied().unwrap_or(0) + v.unwrap_or(0);
            st.update(n);
            n
        })
        .initial_state(initial());
        let mapped = s.map_with_state(spec);
        mapped.checkpoint(Seconds(1));
        mapped
            .foreach_rdd(|b, _| {
                std::hint::black_box(b.count());
            })
            .unwrap();
    });
    let size = std::fs::read_dir(&ckpt)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("checkpoint-"))
        .map(|e| e.metadata().unwrap().len())
        .max()
        .unwrap_or(0);
    let cost = median(with[1..].to_vec()).saturating_sub(m);
    println!(
        "| checkpoint of 1 M keys (map_with_state) | {} to write, {:.1} MB | {:.0} bytes/key |",
        ms(cost),
        size as f64 / 1e6,
        size as f64 / KEYS as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
}
