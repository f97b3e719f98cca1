//! Kafka direct stream benchmark (issue 12), against a broker started here (Tansu on 127.0.0.1,
//! as the tests do; or the Kafka named by `KAFKA_BOOTSTRAP`, whose topics must then exist):
//!
//! - **throughput**: N records of 100-byte values in a 3-partition topic, read from offset 0
//!   by a bare `rdkafka` consumer loop (one `BaseConsumer` assigned the three partitions,
//!   touching every payload: the practical limit), then by the direct stream (`local[2]`,
//!   counting every batch in `foreach_rdd`), in one run;
//! - **latency**: 100 ms batches while a producer sends at a fixed rate (100 k records/s by
//!   default), each value starting with its send time; for every record, output time (the
//!   batch's `foreach_rdd`) minus send time: median, p99, max after a 2 s warm-up.
//!
//! `cargo run --release -p cargo-stream-bench --features kafka --bin kafka_bench --
//! [--records N] [--rate R] [--seconds S] [--master local[2]]` prints a markdown table and the machine's load.

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
    let records = opt("--records", 1_000_000);
    let rate = opt("--rate", 100_000);
    let seconds = opt("--seconds", 20);
    // `local[2]` is the setting; another master shows what the worker threads cost.
    let master = args
        .iter()
        .position(|a| a == "--master")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "local[2]".to_owned());

    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    if broker.is_tansu() {
        broker.create_topic("bench-throughput", PARTITIONS);
        broker.create_topic("bench-latency", PARTITIONS);
    }
    let load_before = loadavg();

    eprintln!("producing {records} records of {VALUE_BYTES} bytes to `bench-throughput`");
    let started = Instant::now();
    produce_all(&bootstrap, "bench-throughput", records);
    let produce_rate = records as f64 / started.elapsed().as_secs_f64();

    let bare = bare_loop(&bootstrap, "bench-throughput", records);
    let ours = direct_stream(&bootstrap, "bench-throughput", records, &master);
    let latency = latency(&bootstrap, "bench-latency", rate, seconds, &master);
    let load_after = loadavg();

    let ratio = ours / bare * 100.0;
    println!("| measure | result | target |");
    println!("|---|---|---|");
    println!(
        "| bare rdkafka loop ({records} records, 3 partitions) | {:.0} records/s | – |",
        bare
    );
    println!(
        "| direct stream, {master} (same records) | {:.0} records/s = **{ratio:.0} %** of the bare loop | ≥ 70 % |",
        ours
    );
    match latency {
        Some(l) => println!(
            "| produce-to-output, 100 ms batches, {rate} records/s for {seconds} s | median {:.0} ms, **p99 {:.0} ms**, max {:.0} ms ({} records, {} sent) | p99 < 300 ms |",
            l.median_ms, l.p99_ms, l.max_ms, l.measured, l.sent
        ),
        None => println!("| produce-to-output | no record came out | p99 < 300 ms |"),
    }
    println!(
        "\nproducer (rdkafka, linger 5 ms): {produce_rate:.0} records/s; broker: {}; machine load before: {load_before}; after: {load_after}",
        if broker.is_tansu() {
            "Tansu (in memory)"
        } else {
            "KAFKA_BOOTSTRAP"
        }
    );
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

fn produce_all(bootstrap: &str, topic: &str, records: u64) {
    let producer = producer(bootstrap);
    for i in 0..records {
        send(&producer, topic, i.to_string().as_bytes(), &value(0)[..]);
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

/// Records/s of the direct stream (`master`, 200 ms batches) counting `records` from offset 0.
fn direct_stream(bootstrap: &str, topic: &str, records: u64, master: &str) -> f64 {
    let conf = StreamingConf::new("kafka-bench")
        .master(master)
        .stop_on_signal(false);
    let ssc = StreamingContext::new(conf, Milliseconds(200)).expect("a streaming context");
    let params = KafkaParams::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-stream")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    let strategy =
        ConsumerStrategy::subscribe([topic]).with_offsets((0..PARTITIONS as i32).map(|p| {
            (
                cargo_stream_runtime::kafka::TopicPartition::new(topic, p),
                0,
            )
        }));
    let stream = KafkaUtils::create_direct_stream(&ssc, strategy, params);
    let seen = Arc::new(AtomicU64::new(0));
    let done: Arc<Mutex<Option<Instant>>> = Arc::default();
    let (seen2, done2) = (Arc::clone(&seen), Arc::clone(&done));
    stream
        .foreach_rdd(move |batch: &Batch<ConsumerRecord>, _: Time| {
            let bytes: usize = batch
                .partitions()
                .iter()
                .flatten()
                .map(|r| r.value().map_or(0, <[u8]>::len))
                .sum();
            let n = batch.count();
            assert_eq!(bytes as u64, n * VALUE_BYTES as u64);
            if seen2.fetch_add(n, Ordering::SeqCst) + n >= records {
                done2.lock().unwrap().get_or_insert_with(Instant::now);
            }
        })
        .expect("register the output");
    let started = Instant::now();
    ssc.start().expect("start the stream");
    let deadline = started + Duration::from_secs(600);
    while done.lock().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    ssc.stop(false).expect("stop the stream");
    let done = done.lock().unwrap().expect("the stream read every record");
    let secs = (done - started).as_secs_f64();
    eprintln!(
        "direct stream: {} records in {secs:.2} s",
        seen.load(Ordering::SeqCst)
    );
    records as f64 / secs
}

struct Latency {
    median_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    measured: usize,
    sent: u64,
}

/// Produce-to-output latency with 100 ms batches (`master`) at `rate` records/s for `seconds`.
fn latency(bootstrap: &str, topic: &str, rate: u64, seconds: u64, master: &str) -> Option<Latency> {
    let conf = StreamingConf::new("kafka-latency")
        .master(master)
        .stop_on_signal(false);
    let ssc = StreamingContext::new(conf, Milliseconds(100)).expect("a streaming context");
    let params = KafkaParams::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-latency")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    let stream =
        KafkaUtils::create_direct_stream(&ssc, ConsumerStrategy::subscribe([topic]), params);
    let warm_until = now_micros() + 2_000_000;
    let latencies: Arc<Mutex<Vec<u64>>> = Arc::default();
    let sink = Arc::clone(&latencies);
    stream
        .foreach_rdd(move |batch: &Batch<ConsumerRecord>, _: Time| {
            let out = now_micros();
            let mut sink = sink.lock().unwrap();
            for record in batch.partitions().iter().flatten() {
                let Some(v) = record.value().filter(|v| v.len() >= 8) else {
                    continue;
                };
                let sent = u64::from_le_bytes(v[..8].try_into().expect("8 bytes"));
                if sent >= warm_until {
                    sink.push(out.saturating_sub(sent));
                }
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

    let mut all = latencies.lock().unwrap().clone();
    if all.is_empty() {
        return None;
    }
    all.sort_unstable();
    let at = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    Some(Latency {
        median_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        measured: all.len(),
        sent,
    })
}

/// `/proc/loadavg`'s three figures.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}
