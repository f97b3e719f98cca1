//! Word counts written to PostgreSQL from `foreach_rdd` + `foreach_partition`, the output
//! operation jobs really use: each partition opens its own connection on its worker thread
//! (or takes one from a pool with `--pool`) and writes its counts in one transaction, keyed by
//! batch time, so a batch written again (a write retried after its connection broke)
//! overwrites its rows instead of adding to them. It keeps no checkpoint: killed with SIGKILL
//! it loses what it had received and not yet written (at most about a batch), and the table
//! holds every batch written, once. With the write-ahead log the lost lines would come back
//! after a restart, but in a new batch time, so the sum per word would be at-least-once:
//! exactly-once takes absolute values, e.g. running totals upserted by word.
//! A failed write is retried with back-off; when it keeps failing the batch's job fails and the
//! job exits with the error, so no batch is taken as done before its writes committed.
//!
//! ```text
//! cargo run -p cargo-stream-examples --features postgres --bin postgres_word_count -- \
//!     'host=127.0.0.1 user=postgres dbname=stream' localhost 9999 [--pool] [--attempts N]
//! ```
//!
//! A connection opened on the driver side and captured by `foreach_partition` does not
//! compile (`postgres::Client` cannot be shared between threads); see the runtime's `sql`
//! module docs for the `compile_fail` example.

mod sink;

use std::sync::atomic::{AtomicU64, Ordering};

use cargo_stream_examples::{init_logging, words};
use cargo_stream_runtime::prelude::*;
use sink::{Connections, Retry};

const USAGE: &str = "postgres_word_count <postgres-url> <host> <port> [--pool] [--attempts N]";

fn main() {
    init_logging();
    if let Err(e) = run() {
        eprintln!("error: {e}");
        if e.contains("attempt(s)") {
            eprintln!(
                "help: check that PostgreSQL is up and reachable at the URL given; `--attempts N` waits longer"
            );
        }
        std::process::exit(1);
    }
}

fn usage() -> ! {
    eprintln!("usage: {USAGE}");
    std::process::exit(2)
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(host), Some(port)) = (args.next(), args.next(), args.next()) else {
        usage()
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port `{port}` is not a number from 1 to 65535"))?;
    let (mut pooled, mut retry) = (false, Retry::default());
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--pool" => pooled = true,
            "--attempts" => {
                retry.attempts = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n >= 1)
                    .unwrap_or_else(|| usage())
            }
            _ => usage(),
        }
    }

    let connections = if pooled {
        // As many connections as partitions written at once: one per worker thread.
        Connections::pooled(&url, 2)?
    } else {
        Connections::PerPartition(url.clone())
    };
    connections.with_client(retry, "creating table `word_counts`", sink::create_table)?;

    let conf = StreamingConf::new("PostgresWordCount").master("local[3]");
    let ssc = StreamingContext::new(conf, Seconds(1)).map_err(|e| e.to_string())?;
    let counts = ssc
        .socket_text_stream(host, port)
        .flat_map(words)
        .map(|w| (w, 1u64))
        .reduce_by_key(|a, b| a + b);
    counts
        .foreach_rdd(move |batch: &Batch<(String, u64)>, time| {
            let written = AtomicU64::new(0);
            // On the worker threads, a partition each; `connections` is shared by reference,
            // which compiles because it is `Sync` (a `String`, or an `r2d2::Pool`).
            batch.foreach_partition_ref(|part| {
                let what = format!("writing {} word count(s) of batch {time}", part.len());
                let rows = connections
                    .with_client(retry, &what, |client| {
                        sink::write_partition(client, time.millis(), part)
                    })
                    // Fails this batch's job: the context stops and `run` returns the error.
                    .unwrap_or_else(|e| panic!("{e}"));
                written.fetch_add(rows, Ordering::Relaxed);
            });
            if !batch.is_empty() {
                println!(
                    "batch {} ms: wrote {} word count(s)",
                    time.millis(),
                    written.load(Ordering::Relaxed)
                );
            }
        })
        .map_err(|e| e.to_string())?;
    ssc.start().map_err(|e| e.to_string())?;
    ssc.await_termination().map_err(|e| e.to_string())
}
