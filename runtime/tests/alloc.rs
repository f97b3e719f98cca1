//! Allocations per word of the templates' word count, counted by a global allocator of this
//! test binary (its own binary, so that no other test's allocations are counted): the job
//! reads a real socket, so the receiver's line splitting is counted too. A `String` per line
//! or per word comes back as at least 0.1 or 1 allocation per word and fails the test.

use std::io::Write as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cargo_stream_runtime::prelude::*;

#[path = "support/counting.rs"]
mod counting;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

const LINES: usize = 100_000;
const WORDS_PER_LINE: usize = 10;

#[test]
fn socket_word_count_allocates_nothing_per_word() -> Result<(), Box<dyn std::error::Error>> {
    // 1 M words of 1 000 distinct ones (as the benchmark's feeder sends), made before counting.
    let mut text = String::new();
    for i in 0..LINES {
        for j in 0..WORDS_PER_LINE {
            let w = (i * 7 + j * 131) % 1000;
            text.push_str(if j == 0 { "" } else { " " });
            text.push_str(&format!("word{w}"));
        }
        text.push('\n');
    }
    let words = (LINES * WORDS_PER_LINE) as u64;
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let port = listener.local_addr()?.port();
    let done = Arc::new(AtomicBool::new(false));
    let server_done = done.clone();
    let server = std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let _ = conn.write_all(text.as_bytes());
            // Keep the connection open (no reconnect) until the test is done.
            while !server_done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });

    let conf = StreamingConf::new("alloc-per-word").master("local[2]");
    let ssc = StreamingContext::new(conf, Milliseconds(200))?;
    let counted = Arc::new(AtomicU64::new(0));
    let sink = counted.clone();
    ssc.socket_lines("127.0.0.1", port)
        .flat_map(Line::words)
        .map(|w| (w, 1u64))
        .reduce_by_key(|a, b| a + b)
        .foreach_rdd(move |rdd: &Batch<(Word, u64)>, _| {
            let n: u64 = rdd.partitions().iter().flatten().map(|(_, c)| c).sum();
            sink.fetch_add(n, Ordering::SeqCst);
        })?;
    counting::start();
    ssc.start()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while counted.load(Ordering::SeqCst) < words && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let allocations = counting::stop();
    ssc.stop(false)?;
    done.store(true, Ordering::SeqCst);
    let _ = server.join();

    assert_eq!(counted.load(Ordering::SeqCst), words, "every word counted");
    let per_word = allocations as f64 / words as f64;
    eprintln!("{allocations} allocations for {words} words: {per_word:.4} per word");
    // The start, the batches' maps and vectors and the block per socket read: a few thousand.
    assert!(
        per_word < 0.02,
        "{allocations} allocations for {words} words ({per_word:.3} per word): something allocates per line or per word"
    );
    Ok(())
}
