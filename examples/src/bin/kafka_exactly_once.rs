//! Kafka → word count → PostgreSQL, exactly once, whatever kills the job: each batch's counts
//! are *added* to running totals (`word_totals`, a write that is not idempotent) in the same
//! transaction that moves the job's offsets in `kafka_offsets`, guarded by the stored offsets
//! (`cargo_stream_runtime::kafka::postgres::OffsetStore`). So:
//!
//! - restarted from its checkpoint, the job regenerates the batches after the last checkpoint;
//!   the ones written before are skipped, and one regenerated with other ranges than the
//!   batches written adds the counts of the records after the stored offsets only;
//! - restarted without a checkpoint (deleted, or never written), the stream starts at the
//!   stored offsets.
//!
//! Either way the totals are the counts of the records produced, each once (the test
//! `examples/tests/kafka_exactly_once.rs` kills it with SIGKILL at random points to check).
//! Offsets are also committed to the consumer group after each batch, for lag tools.
//!
//! ```text
//! cargo run -p cargo-stream-examples --features kafka-postgres --bin kafka_exactly_once -- \
//!     127.0.0.1:9092 lines 'host=127.0.0.1 user=postgres dbname=stream' \
//!     [--checkpoint DIR] [--group NAME] [--batch-ms N]
//! ```
//!
//! It prints a line per batch: `batch <ms> ms: applied <n> word count(s) from <ranges>`,
//! `... skipped, written before: <ranges>`.

use cargo_stream_examples::{init_logging, words};
use cargo_stream_runtime::kafka::postgres::{BatchWrite, OffsetStore, Unwritten};
use cargo_stream_runtime::kafka::{
    ConsumerRecord, ConsumerStrategy, KafkaParams, KafkaUtils, OffsetRange,
};
use cargo_stream_runtime::prelude::*;
use postgres::{NoTls, Transaction};

const USAGE: &str = "kafka_exactly_once <bootstrap-servers> <topic> <postgres-url> [--checkpoint DIR] [--group NAME] [--batch-ms N]";

/// The running totals, one row per word.
const CREATE_TOTALS: &str = "CREATE TABLE IF NOT EXISTS word_totals (
    word TEXT PRIMARY KEY,
    total BIGINT NOT NULL
)";

/// Adds a batch's counts to the totals, in one statement.
const ADD: &str = "INSERT INTO word_totals (word, total)
    SELECT * FROM UNNEST($1::text[], $2::bigint[])
    ON CONFLICT (word) DO UPDATE SET total = word_totals.total + EXCLUDED.total";

struct Args {
    bootstrap: String,
    topic: String,
    url: String,
    checkpoint: Option<String>,
    group: String,
    batch_ms: u64,
}

fn main() {
    init_logging();
    // Tests only: `FAILPOINTS=kafka::postgres::no_guard=return` turns the guard off, to check
    // that the kill test catches the double counts.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    if let Err(e) = run(parse_args()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn parse_args() -> Args {
    let usage = || -> ! {
        eprintln!("usage: {USAGE}");
        std::process::exit(2)
    };
    let mut args = std::env::args().skip(1);
    let (Some(bootstrap), Some(topic), Some(url)) = (args.next(), args.next(), args.next()) else {
        usage()
    };
    let mut parsed = Args {
        bootstrap,
        topic,
        url,
        checkpoint: None,
        group: "kafka-exactly-once".into(),
        batch_ms: 1000,
    };
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--checkpoint" => parsed.checkpoint = Some(value),
            "--group" => parsed.group = value,
            "--batch-ms" => {
                parsed.batch_ms = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .unwrap_or_else(|| usage())
            }
            _ => usage(),
        }
    }
    parsed
}

fn run(args: Args) -> Result<(), String> {
    // The offsets live under the group's name, beside the totals.
    let store = OffsetStore::connect(&args.url, &args.group).map_err(|e| e.to_string())?;
    postgres::Client::connect(&args.url, NoTls)
        .and_then(|mut c| c.batch_execute(CREATE_TOTALS))
        .map_err(|e| format!("cannot create table `word_totals`: {e}"))?;
    // Used when the job does not resume from a checkpoint (which takes precedence).
    let starts = store
        .starting_offsets([&args.topic])
        .map_err(|e| e.to_string())?;
    eprintln!(
        "starting offsets from PostgreSQL (unless the checkpoint has some): {}",
        if starts.is_empty() {
            "none stored".to_owned()
        } else {
            starts
                .iter()
                .map(|(tp, o)| format!("{tp} at {o}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );

    let create = || -> cargo_stream_runtime::Result<StreamingContext> {
        let conf = StreamingConf::new("KafkaExactlyOnce").master("local[2]");
        let ssc = StreamingContext::new(conf, Milliseconds(args.batch_ms))?;
        let params = KafkaParams::new()
            .set("bootstrap.servers", args.bootstrap.as_str())
            .set("group.id", args.group.as_str())
            .set("auto.offset.reset", "earliest");
        let strategy = ConsumerStrategy::subscribe([args.topic.as_str()]).with_offsets(starts);
        let stream = KafkaUtils::create_direct_stream(&ssc, strategy, params);
        // A checkpoint every 5 batches: after a crash, the batches since the last one are
        // regenerated, and the guard writes only what PostgreSQL does not hold.
        stream.checkpoint(Milliseconds(args.batch_ms * 5));
        let committer = stream.committer();
        stream.foreach_rdd(move |batch: &Batch<ConsumerRecord>, time| {
            let ranges = batch.offset_ranges().unwrap_or_default().to_vec();
            let written = store
                .write_batch(&ranges, |tx, unwritten| {
                    add_counts(tx, &word_counts(batch, unwritten))
                })
                // Fails the batch: the job stops with the error (the offsets stay unmoved).
                .unwrap_or_else(|e| panic!("{e}"));
            match written {
                BatchWrite::Applied(n) => println!(
                    "batch {} ms: applied {n} word count(s) from {}",
                    time.millis(),
                    list(&ranges)
                ),
                BatchWrite::Skipped { .. } => println!(
                    "batch {} ms: skipped, written before: {}",
                    time.millis(),
                    list(&ranges)
                ),
            }
            committer.commit_async(&ranges);
        })?;
        Ok(ssc)
    };
    let ssc = match &args.checkpoint {
        Some(dir) => StreamingContext::get_or_create(dir, create),
        None => create(),
    }
    .map_err(|e| e.to_string())?;
    ssc.start().map_err(|e| e.to_string())?;
    ssc.await_termination().map_err(|e| e.to_string())
}

/// The batch's word counts, from the records PostgreSQL does not hold yet only.
fn word_counts(batch: &Batch<ConsumerRecord>, unwritten: &Unwritten) -> Vec<(String, i64)> {
    let keep = unwritten.clone();
    batch
        .clone()
        .filter(move |r| keep.contains_record(r))
        .flat_map(|r: ConsumerRecord| words(r.value_lossy().into_owned()))
        .map(|w| (w, 1i64))
        .reduce_by_key(|a, b| a + b, None)
        .collect()
}

fn add_counts(
    tx: &mut Transaction<'_>,
    counts: &[(String, i64)],
) -> Result<usize, postgres::Error> {
    let (words, totals): (Vec<&str>, Vec<i64>) =
        counts.iter().map(|(w, n)| (w.as_str(), *n)).unzip();
    tx.execute(ADD, &[&words, &totals])?;
    Ok(counts.len())
}

fn list(ranges: &[OffsetRange]) -> String {
    if ranges.is_empty() {
        return "no partitions".into();
    }
    ranges
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
