//! Allocations per word of the Kafka word count (`kafka-word-count` template's job), counted
//! by a global allocator of this test binary (its own binary, so that no other test's
//! allocations are counted), against a real broker (Tansu, or `KAFKA_BOOTSTRAP`). A record
//! costs two allocations: its payload copied once from librdkafka, and rdkafka's handle of
//! the message (`BorrowedMessage` holds an `Arc`); the batch adds its share (2.11 per record
//! measured, in one batch of 20 000 records); none per word. A second copy per record makes
//! it 3 or more, a `String` per word 22, and fails the test.
#![cfg(feature = "kafka")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cargo_stream_runtime::ManualClock;
use cargo_stream_runtime::kafka::{
    ConsumerRecord, ConsumerStrategy, KafkaParams, KafkaProducer, KafkaUtils,
};
use cargo_stream_runtime::prelude::*;
use cargo_stream_tests::kafka::Broker;

#[path = "support/counting.rs"]
mod counting;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

const RECORDS: usize = 20_000;
const WORDS_PER_RECORD: usize = 20;

#[test]
fn kafka_word_count_allocates_nothing_per_word() -> Result<(), Box<dyn std::error::Error>> {
    let broker = Broker::start();
    let topic = format!("alloc-words-{}", std::process::id());
    if broker.is_tansu() {
        broker.create_topic(&topic, 3);
    }
    // Two lines of 10 words of 1 000 distinct ones a record, as the benchmark sends.
    let producer = KafkaProducer::new(&broker.bootstrap())?;
    for i in 0..RECORDS {
        let mut value = String::new();
        for j in 0..WORDS_PER_RECORD {
            let w = (i * 7 + j * 131) % 1000;
            value.push_str(match j {
                0 => "",
                10 => "\n",
                _ => " ",
            });
            value.push_str(&format!("word{w}"));
        }
        producer.send(&topic, None, value.as_bytes())?;
    }
    producer.flush(Duration::from_secs(30))?;
    let words = (RECORDS * WORDS_PER_RECORD) as u64;

    // One batch, on a manual clock, so that the count holds one batch's fixed costs.
    let clock = ManualClock::new();
    let conf = StreamingConf::new("kafka-alloc-per-word")
        .master("local[2]")
        .stop_on_signal(false)
        .manual_clock(clock.clone());
    let ssc = StreamingContext::new(conf, Seconds(1))?;
    let params = KafkaParams::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "alloc-words")
        .set("auto.offset.reset", "earliest");
    let counted = Arc::new(AtomicU64::new(0));
    let sink = counted.clone();
    KafkaUtils::create_direct_stream(&ssc, ConsumerStrategy::subscribe([topic]), params)
        .flat_map(|r: ConsumerRecord| r.value_line().words())
        .map(|w| (w, 1u64))
        .reduce_by_key(|a, b| a + b)
        .foreach_rdd(move |rdd: &Batch<(Word, u64)>, _| {
            let n: u64 = rdd.partitions().iter().flatten().map(|(_, c)| c).sum();
            sink.fetch_add(n, Ordering::SeqCst);
        })?;
    // From the start on: what the batches cost, not the consumers' and threads' creation.
    ssc.start()?;
    counting::start();
    clock.advance(Seconds(1));
    let done = ssc.await_batch(Time::from_millis(1000), Duration::from_secs(60))?;
    let allocations = counting::stop();
    assert!(done, "the batch did not complete in 60 s");
    ssc.stop(false)?;

    assert_eq!(counted.load(Ordering::SeqCst), words, "every word counted");
    let per_record = allocations as f64 / RECORDS as f64;
    eprintln!(
        "{allocations} allocations for {RECORDS} records of {WORDS_PER_RECORD} words: {per_record:.3} per record, {:.4} per word",
        per_record / WORDS_PER_RECORD as f64
    );
    // 2.11 per record measured (the module's doc); a copy per record more would be 3.1.
    assert!(
        per_record < 2.5,
        "{allocations} allocations for {RECORDS} records ({per_record:.2} per record): something allocates per word, or copies each record again"
    );
    Ok(())
}
