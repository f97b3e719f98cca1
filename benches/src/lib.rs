//! Socket word-count benchmark pieces shared by the binaries of `cargo-stream-bench`:
//! a feeder byte-identical to `shared/bench/feeder.py`, the hand-written single-pass word count
//! (the practical limit), the job on our runtime, and JSONL batch records; and the soak test's
//! job (`soak`); a deterministic key generator (`rng`).

pub mod feeder;
pub mod handwritten;
pub mod record;
pub mod rng;
#[cfg(feature = "runtime")]
pub mod soak;
#[cfg(feature = "runtime")]
pub mod stream;

use std::time::{SystemTime, UNIX_EPOCH};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Wall-clock seconds since the Unix epoch, as `time.time()` in Python.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Parses the common consumer arguments `PORT SECONDS OUT.jsonl [BATCH_MS]`.
pub fn consumer_args(args: &[String], usage: &str) -> (u16, f64, String, u64) {
    let die = || -> ! {
        eprintln!("usage: {usage}");
        std::process::exit(2)
    };
    if args.len() < 3 {
        die();
    }
    let port = args[0].parse().unwrap_or_else(|_| die());
    let secs = args[1].parse().unwrap_or_else(|_| die());
    let out = args[2].clone();
    let batch_ms = match args.get(3) {
        Some(s) => s.parse().unwrap_or_else(|_| die()),
        None => 1000,
    };
    (port, secs, out, batch_ms)
}
