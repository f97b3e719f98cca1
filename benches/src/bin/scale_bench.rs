//! Scale-out benchmark (issue 15), against a Tansu broker started here (or `KAFKA_BOOTSTRAP`):
//!
//! - **instances**: a topic of 6 partitions holding `--lines` lines of 10 words, keyed by line;
//!   the keyed count (`keyed` → `map_values` → `reduce_by_key` → `update_state_by_key`, state
//!   per task, checkpointed every batch) run as 1, 2 and 3 instance *processes* (started with
//!   `CARGO_STREAM_INSTANCE` / `CARGO_STREAM_INSTANCES`, as a launcher does): lines/s from the
//!   first start to the last instance having applied its share;
//! - **repartition hop**: one process counting the words of the same lines, without the hop
//!   (`flat_map` → `reduce_by_key` → `update_state_by_key`) and through a 6-partition
//!   repartition topic (`flat_map` → `repartition_through` → ...): words/s of each.
//!
//! `cargo run --release -p cargo-stream-bench --features kafka --bin scale_bench -- [--lines N]`
//! prints a markdown table and the machine's load.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cargo_stream_runtime::kafka::{ConsumerStrategy, KafkaParams, KafkaProducer, KafkaUtils};
use cargo_stream_runtime::prelude::*;
use cargo_stream_runtime::tasks::kafka_partition;
use cargo_stream_tests::kafka::Broker;

const PARTITIONS: u32 = 6;
const WORDS_PER_LINE: usize = 10;

fn line(i: usize) -> String {
    (0..WORDS_PER_LINE)
        .map(|j| format!("w{}", (i * 7 + j * 13) % 1000))
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        child(&args[1..]);
        return;
    }
    let lines: usize = args
        .iter()
        .position(|a| a == "--lines")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("--lines takes a number"))
        .unwrap_or(60_000);
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    broker.create_topic("scale-lines", PARTITIONS);
    let producer = KafkaProducer::new(&bootstrap).unwrap();
    let mut per_partition = vec![0u64; PARTITIONS as usize];
    for i in 0..lines {
        let key = format!("line-{i}");
        per_partition[kafka_partition(key.as_bytes(), PARTITIONS as i32) as usize] += 1;
        producer
            .send("scale-lines", Some(key.as_bytes()), line(i).as_bytes())
            .unwrap();
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{lines} lines of {WORDS_PER_LINE} words in {PARTITIONS} partitions; load before: {}",
        load.trim()
    );
    println!();
    println!("| run | processes | records | seconds | records/s |");
    println!("|---|---|---|---|---|");
    let exe = std::env::current_exe().unwrap();
    let mut per_instance = BTreeMap::new();
    for count in 1..=3u32 {
        let dir = scratch(&format!("instances-{count}"));
        let started = Instant::now();
        let children: Vec<_> = (0..count)
            .map(|i| {
                let expected: u64 = (0..PARTITIONS)
                    .filter(|p| p % count == i)
                    .map(|p| per_partition[p as usize])
                    .sum();
                std::process::Command::new(&exe)
                    .args(["--child", "keyed", &bootstrap, &expected.to_string()])
                    .arg(&dir)
                    .env("CARGO_STREAM_INSTANCE", i.to_string())
                    .env("CARGO_STREAM_INSTANCES", count.to_string())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success(), "an instance failed");
        }
        let secs = started.elapsed().as_secs_f64();
        let rate = lines as f64 / secs;
        per_instance.insert(count, rate);
        let _ = std::fs::remove_dir_all(&dir);
        println!("| keyed count, instances | {count} | {lines} lines | {secs:.1} | {rate:.0} |");
    }
    let words = (lines * WORDS_PER_LINE) as u64;
    let mut hop = BTreeMap::new();
    for mode in ["no-hop", "hop"] {
        let dir = scratch(mode);
        if mode == "hop" {
            broker.create_topic("scale-words", PARTITIONS);
        }
        let started = Instant::now();
        let mut c = std::process::Command::new(&exe)
            .args(["--child", mode, &bootstrap, &words.to_string()])
            .arg(&dir)
            .spawn()
            .unwrap();
        assert!(c.wait().unwrap().success(), "the {mode} run failed");
        let secs = started.elapsed().as_secs_f64();
        let rate = words as f64 / secs;
        hop.insert(mode, rate);
        let _ = std::fs::remove_dir_all(&dir);
        println!("| word count, {mode} | 1 | {words} words | {secs:.1} | {rate:.0} |");
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!(
        "2 vs 1 instance: {:.2}x, 3 vs 1: {:.2}x; the hop keeps {:.0} % of the words/s; load after: {}",
        per_instance[&2] / per_instance[&1],
        per_instance[&3] / per_instance[&1],
        100.0 * hop["hop"] / hop["no-hop"],
        load.trim()
    );
}

/// A fresh scratch directory for one run's checkpoints.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("scale-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One job process: `--child MODE BOOTSTRAP EXPECTED DIR`; exits once it has applied
/// `EXPECTED` records (lines for `keyed`, words otherwise) to its state.
fn child(args: &[String]) {
    let (mode, bootstrap, expected, dir) = (
        args[0].clone(),
        args[1].clone(),
        args[2].parse::<u64>().unwrap(),
        Path::new(&args[3]).to_owned(),
    );
    let hop = mode == "hop";
    let conf = StreamingConf::new("scale-bench")
        .master("local[2]")
        .stop_on_signal(false);
    let conf = if hop { conf.instance(0, 1) } else { conf };
    let ssc = StreamingContext::new(conf, Milliseconds(250)).unwrap();
    ssc.checkpoint(&dir).unwrap();
    let params = KafkaParams::new()
        .set("bootstrap.servers", bootstrap)
        .set("auto.offset.reset", "earliest");
    let lines = KafkaUtils::create_direct_stream(
        &ssc,
        ConsumerStrategy::subscribe(["scale-lines"]),
        params.clone(),
    );
    let applied = Arc::new(AtomicU64::new(0));
    let sum =
        |new: Vec<u64>, total: Option<u64>| Some(total.unwrap_or(0) + new.iter().sum::<u64>());
    let totals = match mode.as_str() {
        "keyed" => lines
            .keyed::<String>()
            .map_values(|_| 1u64)
            .reduce_by_key(|a, b| a + b)
            .update_state_by_key(sum),
        _ => {
            let words = lines.flat_map(|r| {
                r.value_lossy()
                    .split_whitespace()
                    .map(|w| (w.to_owned(), 1u64))
                    .collect::<Vec<_>>()
            });
            let words = if hop {
                words.repartition_through(&params, "scale-words", PARTITIONS)
            } else {
                words
            };
            words.reduce_by_key(|a, b| a + b).update_state_by_key(sum)
        }
    };
    totals.checkpoint(Milliseconds(250));
    let a = applied.clone();
    totals
        .foreach_rdd(move |b, _| {
            a.store(b.collect().iter().map(|(_, v)| v).sum(), Ordering::SeqCst);
        })
        .unwrap();
    ssc.start().unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    while applied.load(Ordering::SeqCst) < expected {
        assert!(Instant::now() < deadline, "{mode}: not done within 600 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    ssc.stop(false).unwrap();
}
