//! Runnable cargo-stream jobs, one per capability (see `src/bin/`), and what they share.

use cargo_stream_runtime::DStream;
use cargo_stream_runtime::prelude::*;

/// Logs to stderr under `RUST_LOG` (default `info` for the runtime), as every job should.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("cargo_stream_runtime=info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Splits a line into words on whitespace.
pub fn words(line: String) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

/// `arg` as a TCP port, or an error message and exit code 2.
pub fn port_or_exit(arg: &str) -> u16 {
    arg.parse().unwrap_or_else(|_| {
        eprintln!("error: port `{arg}` is not a number from 1 to 65535");
        std::process::exit(2)
    })
}

/// The course's word count: each line split into words, counted per batch.
pub fn word_counts(lines: &DStream<String>) -> DStream<(String, u64)> {
    lines
        .flat_map(words)
        .map(|w| (w, 1u64))
        .reduce_by_key(|a, b| a + b)
}

/// The running total of every word since the start, checkpointed every 4 s (rather than
/// Spark's default 10 s: less to redo after a crash) and printed after each batch.
pub fn print_running_totals(lines: &DStream<String>) -> cargo_stream_runtime::Result<()> {
    let totals = lines
        .flat_map(words)
        .map(|w| (w, 1u64))
        .update_state_by_key(add_to_total);
    totals.checkpoint(Seconds(4));
    totals.print(1000)
}

/// `update_state_by_key`'s function for running totals: the batch's counts added to the total.
pub fn add_to_total(counts: Vec<u64>, total: Option<u64>) -> Option<u64> {
    Some(counts.iter().sum::<u64>() + total.unwrap_or(0))
}

/// The arguments after the program name, or a usage message and exit code 2.
pub fn args_or_usage(count: usize, usage: &str) -> Vec<String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != count {
        eprintln!("usage: {usage}");
        std::process::exit(2);
    }
    args
}
