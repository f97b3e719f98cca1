//! The practical limit: a hand-written, single-thread, single-pass word count over the bytes the
//! feeder sends, cut into batch windows on the wall clock like a DStream (windows end on
//! multiples of the batch interval since the epoch; batch time = window end).

use crate::now_secs;
use crate::record::BatchRecord;
use rustc_hash::FxHashMap;
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Per-batch word counts keyed by the word's bytes (fx hash).
#[derive(Default)]
pub struct Counter {
    map: FxHashMap<Box<[u8]>, u64>,
    words: u64,
}

impl Counter {
    /// Counts the whitespace-separated words of `bytes` (must end at a word boundary).
    #[inline]
    pub fn count(&mut self, bytes: &[u8]) {
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b' ' || b == b'\n' || b == b'\t' || b == b'\r' {
                if i > start {
                    self.add(&bytes[start..i]);
                }
                start = i + 1;
            }
        }
        if start < bytes.len() {
            self.add(&bytes[start..]);
        }
    }

    #[inline]
    fn add(&mut self, w: &[u8]) {
        self.words += 1;
        match self.map.get_mut(w) {
            Some(c) => *c += 1,
            None => {
                self.map.insert(w.into(), 1);
            }
        }
    }

    /// Total words and distinct words so far; resets the counter.
    pub fn take(&mut self) -> (u64, u64) {
        let r = (self.words, self.map.len() as u64);
        self.words = 0;
        self.map.clear();
        r
    }
}

/// In-memory rate: counts `reps` copies of the feeder chunk in one thread; returns words/s.
pub fn in_memory_rate(reps: usize) -> f64 {
    let chunk = crate::feeder::chunk();
    let mut c = Counter::default();
    c.count(&chunk); // warm
    c.take();
    let t = Instant::now();
    let mut words = 0;
    for _ in 0..reps {
        c.count(&chunk);
        words += c.take().0;
    }
    words as f64 / t.elapsed().as_secs_f64()
}

fn connect(port: u16, deadline: Instant) -> std::io::Result<TcpStream> {
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Connects to the feeder on 127.0.0.1:`port`, counts words per `batch_ms` window for `secs`
/// seconds, writes one JSONL record per window to `out`.
pub fn run(port: u16, secs: f64, out: &str, batch_ms: u64) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(out)?);
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(secs);
    let mut sock = connect(port, end)?;
    sock.set_read_timeout(Some(Duration::from_millis(5)))?;
    let interval = batch_ms as f64 / 1000.0;
    let mut next_end = ((now_secs() / interval).floor() + 1.0) * interval;
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0usize;
    let mut counter = Counter::default();
    let mut eof = false;
    loop {
        let n = if eof {
            std::thread::sleep(Duration::from_millis(5));
            0
        } else {
            match sock.read(&mut buf[filled..]) {
                Ok(0) => {
                    eof = true;
                    0
                }
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) =>
                {
                    0
                }
                Err(e) => return Err(e),
            }
        };
        // Bytes read after the window closed belong to the next window: close it first.
        let now = now_secs();
        if now >= next_end {
            let (words, distinct) = counter.take();
            BatchRecord {
                batch: next_end,
                done: now_secs(),
                words,
                distinct,
            }
            .write_line(&mut out)?;
            next_end += interval;
            while next_end <= now {
                // Idle windows (no read returned in them) still get a record.
                BatchRecord {
                    batch: next_end,
                    done: now_secs(),
                    words: 0,
                    distinct: 0,
                }
                .write_line(&mut out)?;
                next_end += interval;
            }
        }
        filled += n;
        // Count complete lines; keep a trailing partial line for the next read.
        let upto = if eof {
            filled
        } else {
            buf[..filled]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1)
        };
        if upto > 0 {
            counter.count(&buf[..upto]);
            buf.copy_within(upto..filled, 0);
            filled -= upto;
        }
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0); // a line longer than the buffer
        }
        if Instant::now() >= end {
            break;
        }
    }
    Ok(())
}
