//! `scale_wc [WORDS_PER_BATCH [BATCHES [ROUNDS]]]`: the templates' word count (`flat_map` →
//! `map` → `reduce_by_key`) on a queue stream, no receiver, at `local[1]` and at `local[2]`,
//! alternately `ROUNDS` times (default 3): the words per second of batch processing time
//! (from the listener's processing start and end) of each, and the speed-up. Lines are
//! `Line`s sharing 256 KiB blocks, as the socket receiver makes them; the feeder's text (10-word
//! lines of 1 000 distinct words).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cargo_stream_runtime::BatchInfo;
use cargo_stream_runtime::prelude::*;

fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| {
            s.parse()
                .expect("usage: scale_wc [WORDS_PER_BATCH [BATCHES [ROUNDS]]]")
        })
        .collect();
    let words = a.first().copied().unwrap_or(2_000_000);
    let batches = a.get(1).copied().unwrap_or(8);
    let rounds = a.get(2).copied().unwrap_or(3);
    let batch = lines(words);
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (i, threads) in [1, 2].into_iter().enumerate() {
            let rate = run(threads, &batch, batches, words).expect("the job failed");
            println!(
                "round {round}: local[{threads}]: {:.1} M words/s",
                rate / 1e6
            );
            rates[i].push(rate);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (one, two) = (median(&mut rates[0]), median(&mut rates[1]));
    println!(
        "median: local[1] {:.1} M words/s, local[2] {:.1} M words/s, speed-up {:.2}x",
        one / 1e6,
        two / 1e6,
        two / one
    );
}

/// One batch of `words` words, as `Line`s sharing 256 KiB blocks.
fn lines(words: usize) -> Vec<Line> {
    let mut out = Vec::new();
    let mut block = String::new();
    for i in 0..words / 10 {
        for j in 0..10 {
            if j > 0 {
                block.push(' ');
            }
            block.push_str(&format!("w{}", (i * 7 + j * 131) % 1000));
        }
        block.push('\n');
        if block.len() >= 256 * 1024 {
            out.extend(Line::lines_of(&Arc::from(std::mem::take(&mut block))));
        }
    }
    if !block.is_empty() {
        out.extend(Line::lines_of(&Arc::from(block)));
    }
    out
}

struct Times(Arc<Mutex<Vec<u64>>>);

impl StreamingListener for Times {
    fn on_batch_completed(&self, info: &BatchInfo) {
        if let (Some(s), Some(e), true) = (
            info.processing_start_time,
            info.processing_end_time,
            info.num_records > 0,
        ) && let Ok(mut t) = self.0.lock()
        {
            t.push(e - s);
        }
    }
}

/// Words per second of processing time at `local[threads]`.
fn run(
    threads: usize,
    batch: &[Line],
    batches: usize,
    words: usize,
) -> Result<f64, cargo_stream_runtime::Error> {
    let conf = StreamingConf::new("scale-wc").master(format!("local[{threads}]"));
    let ssc = StreamingContext::new(conf, Milliseconds(500))?;
    let times = Arc::new(Mutex::new(Vec::new()));
    ssc.add_streaming_listener(Times(times.clone()));
    let counted = Arc::new(Mutex::new(0u64));
    let sink = counted.clone();
    ssc.queue_stream((0..batches).map(|_| batch.to_vec()))
        .flat_map(Line::words)
        .map(|w| (w, 1u64))
        .reduce_by_key(|a, b| a + b)
        .foreach_rdd(move |rdd: &Batch<(Word, u64)>, _| {
            let n: u64 = rdd.partitions().iter().flatten().map(|(_, c)| c).sum();
            if let Ok(mut c) = sink.lock() {
                *c += n;
            }
        })?;
    ssc.start()?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while times.lock().map(|t| t.len()).unwrap_or(0) < batches && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    ssc.stop(false)?;
    let total = *counted.lock().expect("counts");
    assert_eq!(total, (batches * words) as u64, "every word counted");
    let ms: u64 = times.lock().expect("times").iter().sum();
    Ok((batches * words) as f64 / (ms.max(1) as f64 / 1000.0))
}
