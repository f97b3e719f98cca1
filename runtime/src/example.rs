//! `example`: run a stream on fixed input batches and collect each batch's output, on a
//! manual clock, so docs and tests are exact and fast (as `timely::example`).

use crate::sync::LockExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::batch::Data;
use crate::clock::ManualClock;
use crate::conf::StreamingConf;
use crate::context::StreamingContext;
use crate::dstream::DStream;
use crate::time::{Seconds, Time};

/// Runs `build` on a `queue_stream` of `batches` (one per 1 s batch, `local[2]`) and returns
/// what the built stream produced at each batch, in order. Panics if the job fails.
///
/// ```
/// let out = cargo_stream_runtime::example(vec![vec![1, 2, 3], vec![]], |s| s.filter(|x| x % 2 == 1));
/// assert_eq!(out, vec![vec![1, 3], vec![]]);
/// ```
pub fn example<I: Data, O: Data>(
    batches: Vec<Vec<I>>,
    build: impl FnOnce(DStream<I>) -> DStream<O>,
) -> Vec<Vec<O>> {
    let n = batches.len();
    example_with(batches, n, |_, s| build(s))
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

/// As [`example`], but runs `batches_to_run` batches (more than the input to see windows
/// drain), gives `build` the context too, and returns each output batch with its index
/// (1 for the first batch), as the conformance fixtures record them.
pub fn example_with<I: Data, O: Data>(
    batches: Vec<Vec<I>>,
    batches_to_run: usize,
    build: impl FnOnce(&StreamingContext, DStream<I>) -> DStream<O>,
) -> Vec<(u64, Vec<O>)> {
    example_every(Seconds(1), batches, batches_to_run, build)
}

/// As [`example_with`], with batches every `interval` instead of every second.
pub fn example_every<I: Data, O: Data>(
    interval: impl Into<Duration>,
    batches: Vec<Vec<I>>,
    batches_to_run: usize,
    build: impl FnOnce(&StreamingContext, DStream<I>) -> DStream<O>,
) -> Vec<(u64, Vec<O>)> {
    let interval: Duration = interval.into();
    let ms = interval.as_millis() as u64;
    let clock = ManualClock::new();
    let conf = StreamingConf::new("example")
        .master("local[2]")
        .manual_clock(clock.clone())
        .stop_on_signal(false);
    let ssc = StreamingContext::new(conf, interval).expect("valid example configuration");
    let input = ssc.queue_stream(batches);
    let output = build(&ssc, input);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    output
        .foreach_rdd(move |b, t| sink.locked().push((t.millis() / ms, b.collect())))
        .expect("example output");
    ssc.start().expect("example start");
    for i in 1..=batches_to_run as u64 {
        clock.advance(interval);
        let done = ssc
            .await_batch(Time(i * ms), Duration::from_secs(60))
            .expect("example batch failed");
        assert!(done, "example batch {i} did not complete");
    }
    ssc.stop(false).expect("example stop");
    let mut out = seen.locked();
    std::mem::take(&mut *out)
}
