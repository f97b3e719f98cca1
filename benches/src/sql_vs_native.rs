//! `sql_vs_native [--quick] [--postgres URL]`: per-batch time of the word count in SQL
//! (`transform_sql`, DataFusion) against the native `reduce_by_key` word count, at 100 k and
//! 1 M words a batch; then rows per second into PostgreSQL per partition, with a connection
//! opened per partition and with a pool. Prints a Markdown table.
//!
//! Both word counts run on the same runtime (`local[2]`, manual clock, `queue_stream`), on the
//! same words (10-word lines' worth from 1,000 distinct words, as the socket benchmark's
//! feeder); a batch's time runs from the clock tick to its `foreach_rdd` output, median of the
//! timed batches after one warm-up batch. Without `--postgres`, a throwaway PostgreSQL server is
//! started (Debian's `postgresql` package, by `tests/src/postgres.rs` as in the tests).

#[path = "../../examples/src/bin/postgres_word_count/sink.rs"]
#[allow(dead_code)]
mod sink;

use std::hint::black_box;
use std::time::{Duration, Instant};

use cargo_stream_runtime::prelude::*;
use cargo_stream_runtime::sql::SqlContext;
use cargo_stream_runtime::{ManualClock, Time};

/// 1,000 distinct words, deterministic.
fn vocabulary() -> Vec<String> {
    (0..1000).map(|i| format!("w{:03}x{}", i, i % 7)).collect()
}

/// `n` words drawn from the vocabulary by a fixed LCG.
fn words(n: usize, seed: u64) -> Vec<String> {
    let vocab = vocabulary();
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            vocab[((x >> 33) % 1000) as usize].clone()
        })
        .collect()
}

/// Runs `build` on `batches` batches of input, one per manual tick; the median time from tick
/// to the batch's output, skipping the first (warm-up) batch.
fn per_batch<I, O>(
    input: Vec<Vec<I>>,
    build: impl FnOnce(DStream<I>) -> DStream<O>,
    check: impl Fn(&Batch<O>, Time) + Send + Sync + 'static,
) -> Duration
where
    I: cargo_stream_runtime::Data,
    O: cargo_stream_runtime::Data,
{
    let n = input.len();
    let clock = ManualClock::new();
    let conf = StreamingConf::new("sql_vs_native")
        .master("local[2]")
        .manual_clock(clock.clone())
        .stop_on_signal(false);
    let ssc = StreamingContext::new(conf, Seconds(1)).unwrap();
    let out = build(ssc.queue_stream(input));
    out.foreach_rdd(check).unwrap();
    ssc.start().unwrap();
    let mut times = Vec::new();
    for i in 1..=n as u64 {
        let t0 = Instant::now();
        clock.advance(Seconds(1));
        assert!(
            ssc.await_batch(Time::from_millis(i * 1000), Duration::from_secs(600))
                .unwrap()
        );
        times.push(t0.elapsed());
    }
    ssc.stop(false).unwrap();
    let mut timed = times.split_off(1);
    timed.sort();
    timed[timed.len() / 2]
}

fn word_count_native(rows: usize, batches: usize) -> Duration {
    let input = (0..batches).map(|b| words(rows, b as u64)).collect();
    per_batch(
        input,
        |w| w.map(|w| (w, 1u64)).reduce_by_key(|a, b| a + b),
        |b, _| assert_eq!(black_box(b.count()), 1000),
    )
}

fn word_count_sql(rows: usize, batches: usize) -> Duration {
    let input = (0..batches).map(|b| words(rows, b as u64)).collect();
    let sql = SqlContext::new();
    per_batch(
        input,
        |w| {
            w.transform_sql::<(String, u64)>(
                &sql,
                "words",
                "SELECT value, COUNT(*) FROM words GROUP BY value",
            )
            .unwrap()
        },
        |b, _| assert_eq!(black_box(b.count()), 1000),
    )
}

/// Rows per second per partition written by `foreach_partition` into PostgreSQL, with
/// `rows` word counts per partition (2 partitions a batch, written in parallel).
fn postgres_rows_per_sec(url: &str, pooled: bool, rows: usize, batches: usize) -> f64 {
    let connections = if pooled {
        sink::Connections::pooled(url, 2).unwrap()
    } else {
        sink::Connections::PerPartition(url.to_owned())
    };
    let retry = sink::Retry::default();
    connections
        .with_client(retry, "create", |c| {
            c.batch_execute("DROP TABLE IF EXISTS word_counts")?;
            sink::create_table(c)
        })
        .unwrap();
    let input: Vec<Vec<(String, u64)>> = (0..batches)
        .map(|b| {
            (0..2 * rows)
                .map(|i| (format!("word{i}"), (i + b) as u64))
                .collect()
        })
        .collect();
    let time = per_batch(
        input,
        |s| s,
        move |b: &Batch<(String, u64)>, t: Time| {
            b.foreach_partition_ref(|part| {
                connections
                    .with_client(retry, "write", |c| {
                        sink::write_partition(c, t.millis(), part)
                    })
                    .unwrap();
            })
        },
    );
    rows as f64 / time.as_secs_f64()
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let url = args
        .iter()
        .position(|a| a == "--postgres")
        .and_then(|i| args.get(i + 1).cloned());
    let batches = if quick { 3 } else { 6 };

    println!("## SQL word count vs native `reduce_by_key` (per-batch time, median, local[2])\n");
    println!("| words per batch | native | SQL (DataFusion) | SQL / native |");
    println!("|---:|---:|---:|---:|");
    for rows in [100_000, 1_000_000] {
        let native = word_count_native(rows, batches);
        let sql = word_count_sql(rows, batches);
        println!(
            "| {rows} | {} | {} | {:.2}x |",
            fmt_ms(native),
            fmt_ms(sql),
            sql.as_secs_f64() / native.as_secs_f64()
        );
    }

    let server;
    let url = match url {
        Some(u) => u,
        None => {
            server = cargo_stream_tests::postgres::Postgres::start("bench");
            server.url()
        }
    };
    let pg_batches = if quick { 6 } else { 21 };
    println!("\n## PostgreSQL sink: rows/s per partition (2 partitions written in parallel)\n");
    println!("| rows per partition | connection per partition | pooled | pooled / per partition |");
    println!("|---:|---:|---:|---:|");
    for rows in [100, 1_000, 10_000] {
        let per = postgres_rows_per_sec(&url, false, rows, pg_batches);
        let pooled = postgres_rows_per_sec(&url, true, rows, pg_batches);
        println!(
            "| {rows} | {:.0} | {:.0} | {:.2}x |",
            per,
            pooled,
            pooled / per
        );
    }
}
