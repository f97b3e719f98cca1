//! Kafka direct stream benchmark (issue 12), against a broker started here (Tansu on 127.0.0.1,
//! as the tests do; or the Kafka named by `KAFKA_BOOTSTRAP`, whose topics must then exist):
//!
//! - **throughput**: N records of 100-byte values in a 3-partition topic, read from offset 0
//!   by a bare `rdkafka` consumer loop (one `BaseConsumer` assigned the three partitions,
//!   touching every payload: the practical limit), then by the direct stream (`local[2]`,
//!   counting every batch in `foreach_rdd`), alternated `--rounds` times; medians;
//! - **latency**: 100 ms batches while a producer sends at a fixed rate (100 k records/s by
//!   default), each value starting with its send time; for every record, output time (the
//!   batch's `foreach_rdd`) minus send time: median, p99, max after a 2 s warm-up; `--rounds`
//!   runs, medians;
//! - **word count**: N records of two 10-word lines each (the words of
//!   `shared/bench/feeder.py`), counted by the `kafka-word-count` template's job
//!   (`value_line().words()` → `map` → `reduce_by_key`, nothing allocated per word) with 1 s
//!   batches: words/s, to set beside the PySpark socket-DStream
//!   figure of `wordcount_bench` (`--pyspark-words-per-s`, printed as a ratio).
//!
//! `cargo run --release -p cargo-stream-bench --features kafka --bin kafka_bench --
//! [--records N] [--rate R] [--seconds S] [--rounds K] [--wc-records N]
//! [--pyspark-words-per-s W] [--only throughput,latency,wordcount] [--master local[2]]`
//! prints a markdown table and the machine's load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cargo_stream_runtime::kafka::{ConsumerRecord, ConsumerStrategy, KafkaParams, KafkaUtils};
use cargo_stream_runtime::prelude::*;
use cargo_stream_tests::kafka::Broker;
use rdkafka::ClientConfig;
use rdkafka::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};

const VALUE_BYTES: usize = 100;
const PARTITIONS: u32 = 3;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| {
                v.parse().unwrap_or_else(|_| {
                    eprintln!("error: {name} takes a number, got `{v}`");
                    std::process::exit(2)
                })
            })
            .unwrap_or(default)
    };
    let text = |name: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    let records = opt("--records", 1_000_000);
    let rate = opt("--rate", 100_000);
    let seconds = opt("--seconds", 20);
    let rounds = opt("--rounds", 3).max(1);
    let wc_records = opt("--wc-records", 1_000_000);
    let pyspark = opt("--pyspark-words-per-s", 0);
    let only = text("--only", "throughput,latency,wordcount");
    let run = |what: &str| only.split(',').any(|o| o == what);
    // `local[2]` is the setting; another master shows what the worker threads cost.
    let master = text("--master", "local[2]");

    // `RUST_LOG=cargo_stream_runtime::source::kafka=debug`: each batch's timings (when its
    // ranges were fixed, how long that took, each range's read).
    if std::env::var_os("RUST_LOG").is_some() {
        cargo_stream_runtime::logging::init();
    }
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    if broker.is_tansu() {
        broker.create_topic("bench-throughput", PARTITIONS);
        broker.create_topic("bench-words", PARTITIONS);
    }
    let load_before = loadavg();
    println!("| measure | result | target |");
    println!("|---|---|---|");

    if run("throughput") {
        eprintln!("producing {records} records of {VALUE_BYTES} bytes to `bench-throughput`");
        let started = Instant::now();
        produce_all(&bootstrap, "bench-throughput", records, |_| {
            value(0).to_vec()
        });
        let produce_rate = records as f64 / started.elapsed().as_secs_f64();
        eprintln!("producer (rdkafka, linger 5 ms): {produce_rate:.0} records/s");
        let (mut bares, mut ours, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternated, so that a change in the machine's load hits both.
            let bare = bare_loop(&bootstrap, "bench-throughput", records);
            let direct = direct_stream(&bootstrap, "bench-throughput", records, &master, round);
            eprintln!(
                "round {round}: bare loop {bare:.0} records/s, direct stream {direct:.0} records/s ({:.0} %), load {}",
                direct / bare * 100.0,
                loadavg()
            );
            bares.push(bare);
            ours.push(direct);
            ratios.push(direct / bare * 100.0);
        }
        println!(
            "| bare rdkafka loop ({records} records, 3 partitions), median of {rounds} | {:.0} records/s | – |",
            median(&bares)
        );
        println!(
            "| direct stream, {master} (same records), median of {rounds} | {:.0} records/s = **{:.0} %** of the bare loop (rounds: {}) | ≥ 70 % |",
            median(&ours),
            median(&ratios),
            ratios
                .iter()
                .map(|r| format!("{r:.0} %"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if run("latency") {
        let mut runs = Vec::new();
        for round in 0..rounds {
            // A fresh topic each round: Tansu's fetches slow down as a partition grows.
            let topic = format!("bench-latency-{round}");
            if broker.is_tansu() {
                broker.create_topic(&topic, PARTITIONS);
            }
            match latency(&bootstrap, &topic, rate, seconds, &master, round) {
                Some(l) => {
                    eprintln!(
                        "latency round {round}: median {:.0} ms, p99 {:.0} ms, max {:.0} ms; after the batch time: median {:.0} ms, p99 {:.0} ms; load {}",
                        l.median_ms,
                        l.p99_ms,
                        l.max_ms,
                        l.after_batch_median_ms,
                        l.after_batch_p99_ms,
                        loadavg()
                    );
                    runs.push(l);
                }
                None => eprintln!("latency round {round}: no record came out"),
            }
        }
        if runs.is_empty() {
            println!("| produce-to-output | no record came out | p99 < 300 ms |");
        } else {
            let m = |f: fn(&Latency) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
            println!(
                "| produce-to-output, 100 ms batches, {rate} records/s for {seconds} s, median of {} runs | median {:.0} ms, **p99 {:.0} ms** (runs: {}), max {:.0} ms; of which after the batch time: median {:.0} ms, p99 {:.0} ms | p99 < 300 ms |",
                runs.len(),
                m(|l| l.median_ms),
                m(|l| l.p99_ms),
                runs.iter()
                    .map(|l| format!("{:.0}", l.p99_ms))
                    .collect::<Vec<_>>()
                    .join(", "),
                m(|l| l.max_ms),
                m(|l| l.after_batch_median_ms),
                m(|l| l.after_batch_p99_ms),
            );
        }
    }
    if run("wordcount") {
        eprintln!("producing {wc_records} records of two 10-word lines to `bench-words`");
        let lines = feeder_lines();
        produce_all(&bootstrap, "bench-words", wc_records, |i| {
            let i = i as usize * 2;
            format!(
                "{}\n{}",
                lines[i % lines.len()],
                lines[(i + 1) % lines.len()]
            )
            .into_bytes()
        });
        let (mut rates, mut before) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternated: the job before `value_line` (a `String` per word), then the template's.
            let old = word_count(
                &bootstrap,
                "bench-words",
                wc_records * 20,
                &master,
                2 * round,
                true,
            );
            let r = word_count(
                &bootstrap,
                "bench-words",
                wc_records * 20,
                &master,
                2 * round + 1,
                false,
            );
            eprintln!(
                "word count round {round}: {r:.0} words/s (a String per word: {old:.0}), load {}",
                loadavg()
            );
            rates.push(r);
            before.push(old);
        }
        println!(
            "| the same job with a `String` per word (before `value_line`), median of {rounds} | {:.2} M words/s (rounds: {}) | – |",
            median(&before) / 1e6,
            before
                .iter()
                .map(|r| format!("{:.2}", r / 1e6))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let r = median(&rates);
        let vs = if pyspark > 0 {
            format!(
                " = **{:.1}×** the PySpark socket DStream's {:.2} M words/s",
                r / pyspark as f64,
                pyspark as f64 / 1e6
            )
        } else {
            String::new()
        };
        println!(
            "| Kafka → word count (`value_line().words()` → `map` → `reduce_by_key`, 1 s batches, {master}), {wc_records} records of 20 words, median of {rounds} | {:.2} M words/s{vs} (rounds: {}) | ≥ 20× PySpark |",
            r / 1e6,
            rates
                .iter()
                .map(|r| format!("{:.2}", r / 1e6))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "\nbroker: {}; machine load (1, 5, 15 min) before: {load_before}; after: {}",
        if broker.is_tansu() {
            "Tansu (in memory)"
        } else {
            "KAFKA_BOOTSTRAP"
        },
        loadavg()
    );
}

/// `params` with the settings of `KAFKA_PARAMS="k=v,k=v"` (librdkafka's names), for
/// experiments with the stream's consumers.
fn extra_params(params: KafkaParams) -> KafkaParams {
    std::env::var("KAFKA_PARAMS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .fold(params, |p, (k, v)| p.set(k, v))
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The 5 000 lines of `shared/bench/feeder.py`'s shape: 10 words of a 1 000-word vocabulary.
fn feeder_lines() -> Vec<String> {
    // A small xorshift: the words, not Python's exact sequence, are what matters.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..5000)
        .map(|_| {
            (0..10)
                .map(|_| format!("w{}", next() % 1000))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// A 100-byte value whose first 8 bytes are `micros` (little-endian).
fn value(micros: u64) -> [u8; VALUE_BYTES] {
    let mut v = [b'x'; VALUE_BYTES];
    v[..8].copy_from_slice(&micros.to_le_bytes());
    v
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn producer(bootstrap: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap_or_else(|e| panic!("cannot create a producer for {bootstrap}: {e}"))
}

/// Sends one record, waiting while the producer's queue is full.
fn send(producer: &BaseProducer, topic: &str, key: &[u8], payload: &[u8]) {
    let mut record = BaseRecord::to(topic).key(key).payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                back,
            )) => {
                record = back;
                producer.poll(Duration::from_millis(10));
            }
            Err((err, _)) => panic!("producing to `{topic}` failed: {err}"),
        }
    }
}

fn produce_all(bootstrap: &str, topic: &str, records: u64, payload: impl Fn(u64) -> Vec<u8>) {
    let producer = producer(bootstrap);
    for i in 0..records {
        send(&producer, topic, i.to_string().as_bytes(), &payload(i));
        if i % 10_000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("flushing to `{topic}` failed: {e}"));
}

/// Records/s of one `BaseConsumer` reading the three partitions from offset 0 to `records`.
fn bare_loop(bootstrap: &str, topic: &str, records: u64) -> f64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-bare")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .unwrap_or_else(|e| panic!("cannot create a consumer for {bootstrap}: {e}"));
    let mut list = rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS as i32 {
        list.add_partition_offset(topic, p, rdkafka::Offset::Offset(0))
            .expect("a valid offset");
    }
    consumer.assign(&list).expect("assign the partitions");
    let (mut seen, mut bytes) = (0u64, 0u64);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    while seen < records && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.unwrap_or_else(|e| panic!("bare loop: {e}"));
            bytes += message.payload().map_or(0, |p| p.len() as u64);
            seen += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(seen, records, "the bare loop read {seen} of {records}");
    assert_eq!(bytes, records * VALUE_BYTES as u64);
    eprintln!("bare loop: {records} records in {secs:.2} s");
    records as f64 / secs
}

/// Records/s of the direct stream (`master`, 200 ms batches) counting `records` from offset 0,
/// timed from its first batch's time (the batch interval before it is the scheduler's wait,
/// not reading) to the output of the batch that completes the count.
fn direct_stream(bootstrap: &str, topic: &str, records: u64, master: &str, round: u64) -> f64 {
    let conf = StreamingConf::new("kafka-bench")
        .master(master)
        .stop_on_signal(false);
    let ssc = StreamingContext::new(conf, Milliseconds(200)).expect("a streaming context");
    let params = KafkaParams::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("bench-stream-{round}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    let params = extra_params(params);
    let strategy =
        ConsumerStrategy::subscribe([topic]).with_offsets((0..PARTITIONS as i32).map(|p| {
            (
                cargo_stream_runtime::kafka::TopicPartition::new(topic, p),
                0,
            )
        }));
    let stream = KafkaUtils::create_direct_stream(&ssc, strategy, params);
    let seen = Arc::new(AtomicU64::new(0));
    // (first non-empty batch's time in µs since the epoch, when the count was complete)
    let timing: Arc<Mutex<(Option<u64>, Option<u64>)>> = Arc::default();
    let (seen2, timing2) = (Arc::clone(&seen), Arc::clone(&timing));
    stream
        .foreach_rdd(move |batch: &Batch<ConsumerRecord>, time: Time| {
            let bytes: usize = batch
                .partitions()
                .iter()
                .flatten()
                .map(|r| r.value().map_or(0, <[u8]>::len))
                .sum();
            let n = batch.count();
            assert_eq!(bytes as u64, n * VALUE_BYTES as u64);
            let mut timing = timing2.lock().unwrap();
            if n > 0 {
                timing.0.get_or_insert(time.millis() * 1000);
            }
            if seen2.fetch_add(n, Ordering::SeqCst) + n >= records {
                timing.1.get_or_insert_with(now_micros);
            }
        })
        .expect("register the output");
    let started = Instant::now();
    ssc.start().expect("start the stream");
    let deadline = started + Duration::from_secs(600);
    while timing.lock().unwrap().1.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let from_start = started.elapsed().as_secs_f64();
    ssc.stop(false).expect("stop the stream");
    let (Some(first), Some(done)) = *timing.lock().unwrap() else {
        panic!("the stream did not read every record");
    };
    let secs = done.saturating_sub(first) as f64 / 1e6;
    eprintln!(
        "direct stream: {} records in {secs:.2} s from the first batch time ({from_start:.2} s from start())",
        seen.load(Ordering::SeqCst)
    );
    records as f64 / secs
}

/// Words/s of the Kafka → word count job (1 s batches) counting the `words` of the topic from
/// offset 0, timed from its first batch's time: the template's job, or with `strings` the job
/// before `value_line` (a `String` per word), for the A/B in one run.
fn word_count(
    bootstrap: &str,
    topic: &str,
    words: u64,
    master: &str,
    round: u64,
    strings: bool,
) -> f64 {
    let conf = StreamingConf::new("kafka-word-count")
        .master(master)
        .stop_on_signal(false);
    let ssc = StreamingContext::new(conf, Seconds(1)).expect("a streaming context");
    let params = KafkaParams::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("bench-words-{round}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    let strategy =
        ConsumerStrategy::subscribe([topic]).with_offsets((0..PARTITIONS as i32).map(|p| {
            (
                cargo_stream_runtime::kafka::TopicPartition::new(topic, p),
                0,
            )
        }));
    let records = KafkaUtils::create_direct_stream(&ssc, strategy, params);
    let seen = Arc::new(AtomicU64::new(0));
    let timing: Arc<Mutex<(Option<u64>, Option<u64>)>> = Arc::default();
    let (seen2, timing2) = (Arc::clone(&seen), Arc::clone(&timing));
    let output = move |n: u64, time: Time| {
        let mut timing = timing2.lock().unwrap();
        if n > 0 {
            timing.0.get_or_insert(time.millis() * 1000);
        }
        if seen2.fetch_add(n, Ordering::SeqCst) + n >= words {
            timing.1.get_or_insert_with(now_micros);
        }
    };
    if strings {
        // The job before `value_line`: a `String` per word.
        records
            .flat_map(|record: ConsumerRecord| {
                record
                    .value_lossy()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .map(|w| (w, 1u64))
            .reduce_by_key(|a, b| a + b)
            .foreach_rdd(move |batch: &Batch<(String, u64)>, time: Time| {
                output(batch.collect().iter().map(|(_, c)| c).sum(), time)
            })
            .expect("register the output");
    } else {
        // The template's job: `Line`s sharing the records' bytes, `Word`s held inline.
        records
            .flat_map(|record: ConsumerRecord| record.value_line().words())
            .map(|w| (w, 1u64))
            .reduce_by_key(|a, b| a + b)
            .foreach_rdd(move |batch: &Batch<(Word, u64)>, time: Time| {
                output(batch.collect().iter().map(|(_, c)| c).sum(), time)
            })
            .expect("register the output");
    }
    let started = Instant::now();
    ssc.start().expect("start the stream");
    let deadline = started + Duration::from_secs(600);
    while timing.lock().unwrap().1.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    ssc.stop(false).expect("stop the stream");
    let (Some(first), Some(done)) = *timing.lock().unwrap() else {
        panic!("the word count did not count every word");
    };
    assert_eq!(seen.load(Ordering::SeqCst), words);
    let secs = done.saturating_sub(first) as f64 / 1e6;
    eprintln!("word count: {words} words in {secs:.2} s from the first batch time");
    words as f64 / secs
}

struct Latency {
    median_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Output time minus the batch's time: what the driver and the read add to the wait for
    /// the batch boundary.
    after_batch_median_ms: f64,
    after_batch_p99_ms: f64,
}

/// Produce-to-output latency with 100 ms batches (`master`) at `rate` records/s for `seconds`.
fn latency(
    bootstrap: &str,
    topic: &str,
    rate: u64,
    seconds: u64,
    master: &str,
    round: u64,
) -> Option<Latency> {
    let conf = StreamingConf::new("kafka-latency")
        .master(master)
        .stop_on_signal(false);
    let ssc = StreamingContext::new(conf, Milliseconds(100)).expect("a streaming context");
    let params = KafkaParams::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("bench-latency-{round}"))
        // From the end: the records of earlier rounds are not this round's.
        .set("auto.offset.reset", "latest")
        .set("enable.auto.commit", "false");
    let params = extra_params(params);
    let stream =
        KafkaUtils::create_direct_stream(&ssc, ConsumerStrategy::subscribe([topic]), params);
    let warm_until = now_micros() + 2_000_000;
    let trace = std::env::var_os("KAFKA_BENCH_TRACE").is_some();
    let latencies: Arc<Mutex<Vec<u64>>> = Arc::default();
    let after_batch: Arc<Mutex<Vec<u64>>> = Arc::default();
    let (sink, after) = (Arc::clone(&latencies), Arc::clone(&after_batch));
    stream
        .foreach_rdd(move |batch: &Batch<ConsumerRecord>, time: Time| {
            let out = now_micros();
            if time.millis() * 1000 >= warm_until {
                after
                    .lock()
                    .unwrap()
                    .push(out.saturating_sub(time.millis() * 1000));
            }
            let mut sink = sink.lock().unwrap();
            let mut first_sent = u64::MAX;
            for record in batch.partitions().iter().flatten() {
                let Some(v) = record.value().filter(|v| v.len() >= 8) else {
                    continue;
                };
                let sent = u64::from_le_bytes(v[..8].try_into().expect("8 bytes"));
                first_sent = first_sent.min(sent);
                if sent >= warm_until {
                    sink.push(out.saturating_sub(sent));
                }
            }
            if trace {
                // Per batch: when it was output, and how long before its time its oldest
                // record was sent (with RUST_LOG, the runtime's timings of the same batch).
                let t = time.millis() as i64 * 1000;
                eprintln!(
                    "batch {}: {} records, output at +{} ms, oldest sent at {:+} ms",
                    time.millis(),
                    batch.count(),
                    (out as i64 - t) / 1000,
                    if first_sent == u64::MAX {
                        0
                    } else {
                        (first_sent as i64 - t) / 1000
                    }
                );
            }
        })
        .expect("register the output");
    ssc.start().expect("start the stream");

    // Paced in 10 ms ticks.
    let producer = producer(bootstrap);
    let per_tick = (rate / 100).max(1);
    let started = Instant::now();
    let mut sent = 0u64;
    for tick in 0..seconds * 100 {
        let at = started + Duration::from_millis(tick * 10);
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for _ in 0..per_tick {
            send(
                &producer,
                topic,
                sent.to_string().as_bytes(),
                &value(now_micros())[..],
            );
            sent += 1;
        }
        producer.poll(Duration::ZERO);
    }
    let _ = producer.flush(Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    ssc.stop(false).expect("stop the stream");

    let quantiles = |mut all: Vec<u64>| -> Option<(f64, f64, f64)> {
        if all.is_empty() {
            return None;
        }
        all.sort_unstable();
        let at = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        Some((at(0.5), at(0.99), at(1.0)))
    };
    let all = latencies.lock().unwrap().clone();
    let measured = all.len();
    let (median_ms, p99_ms, max_ms) = quantiles(all)?;
    let (after_batch_median_ms, after_batch_p99_ms, _) =
        quantiles(after_batch.lock().unwrap().clone()).unwrap_or_default();
    eprintln!("latency: {measured} records measured of {sent} sent");
    Some(Latency {
        median_ms,
        p99_ms,
        max_ms,
        after_batch_median_ms,
        after_batch_p99_ms,
    })
}

/// `/proc/loadavg`'s three figures.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}
