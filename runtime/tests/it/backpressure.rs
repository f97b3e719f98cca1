//! Backpressure: under a feed twice what the job sustains, the PID rate controller slows the
//! receiver, so scheduling delay and buffered records stay bounded.

use std::time::Duration;

use cargo_stream_runtime::prelude::*;

use crate::support::Batches;

/// Offers 100 000 records/s in chunks of 1 000, as long as the runtime takes them.
struct Feed;

impl Receiver for Feed {
    type Item = u32;
    fn on_start(&mut self, ctx: ReceiverContext<u32>) {
        std::thread::spawn(move || {
            while !ctx.is_stopped() {
                ctx.store_many(vec![7u32; 1_000]);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
    }
    fn on_stop(&mut self) {}
}

#[test]
fn a_feed_twice_the_sustainable_rate_keeps_delay_bounded() {
    let conf = StreamingConf::new("t")
        .master("local[2]")
        .stop_on_signal(false)
        .backpressure(true);
    let ssc = StreamingContext::new(conf, Milliseconds(200)).unwrap();
    let batches = Batches::default();
    ssc.add_streaming_listener(batches.clone());
    // The job sustains 50 000 records/s: 20 µs of work per record.
    ssc.receiver_stream(Feed)
        .foreach_rdd(|b, _| std::thread::sleep(Duration::from_micros(20 * b.count())))
        .unwrap();
    ssc.start().unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let received = ssc.counters().records_received;
    ssc.stop(false).unwrap();

    let infos = batches.0.lock().unwrap().clone();
    assert!(infos.len() >= 12, "{} batches", infos.len());
    let tail = &infos[infos.len() - 5..];
    let delays: Vec<u128> = tail
        .iter()
        .map(|i| i.scheduling_delay().unwrap().as_millis())
        .collect();
    let sizes: Vec<u64> = tail.iter().map(|i| i.num_records).collect();
    // Without backpressure each batch brings 20 000 records, takes 400 ms for a 200 ms
    // interval, and the delay grows by 200 ms a batch (over 3 s by now).
    assert!(
        delays.iter().all(|d| *d < 1_000),
        "scheduling delays stay bounded: {delays:?} (sizes {sizes:?})"
    );
    assert!(
        sizes.iter().all(|n| *n < 16_000),
        "the receiver was slowed: {sizes:?}"
    );
    let processed: u64 = infos.iter().map(|i| i.num_records).sum();
    assert!(
        received - processed < 40_000,
        "buffered records stay bounded: {received} received, {processed} processed"
    );
}

/// Stores chunks of 100 as fast as the runtime lets it.
struct Firehose;

impl Receiver for Firehose {
    type Item = u32;
    fn on_start(&mut self, ctx: ReceiverContext<u32>) {
        std::thread::spawn(move || {
            while !ctx.is_stopped() {
                ctx.store_many(vec![1u32; 100]);
            }
        });
    }
    fn on_stop(&mut self) {}
}

#[test]
fn the_initial_rate_holds_until_the_estimator_has_batches() {
    let conf = StreamingConf::new("t")
        .master("local[2]")
        .stop_on_signal(false)
        .backpressure(true)
        .backpressure_initial_rate(2_000);
    let ssc = StreamingContext::new(conf, Milliseconds(200)).unwrap();
    let batches = Batches::default();
    ssc.add_streaming_listener(batches.clone());
    ssc.receiver_stream(Firehose)
        .foreach_rdd(|b, _| {
            b.count();
        })
        .unwrap();
    ssc.start().unwrap();
    assert!(crate::support::wait_for(10, || {
        batches
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b.num_records > 0)
            .count()
            >= 2
    }));
    ssc.stop(false).unwrap();
    let first: Vec<u64> = batches
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|b| b.num_records > 0)
        .take(2)
        .map(|b| b.num_records)
        .collect();
    // 2 000 records/s for a 200 ms batch, plus one chunk; without the initial rate the
    // first batches take whatever the receiver stores, millions of records.
    assert!(
        first.iter().all(|n| *n <= 400 + 100),
        "first batches {first:?}"
    );
}
