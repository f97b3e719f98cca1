//! A TCP text server for the socket jobs: every connection gets the same line at a steady pace
//! (every 50 ms unless told otherwise) until the feed is dropped (a restarted job simply
//! connects again). It counts the lines it wrote and can be paused, so that a test knows
//! exactly how many lines a job was sent.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running feed on 127.0.0.1.
pub struct TextFeed {
    /// Its port.
    pub port: u16,
    stop: Arc<AtomicBool>,
    /// Held while a line is written; `true` while paused.
    paused: Arc<Mutex<bool>>,
    sent: Arc<AtomicU64>,
}

impl TextFeed {
    /// Starts serving `line` every 50 ms on a free port.
    pub fn start(line: &str) -> TextFeed {
        TextFeed::every(line, Duration::from_millis(50))
    }

    /// Starts serving `line` every `period` on a free port.
    pub fn every(line: &str, period: Duration) -> TextFeed {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the feed");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(Mutex::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let line = format!("{line}\n");
        let (flag, pause, count) = (stop.clone(), paused.clone(), sent.clone());
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (line, flag, pause, count) =
                            (line.clone(), flag.clone(), pause.clone(), count.clone());
                        std::thread::spawn(move || {
                            serve(conn, &line, period, &flag, &pause, &count)
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        TextFeed {
            port,
            stop,
            paused,
            sent,
        }
    }

    /// The lines written so far, to every connection.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Stops writing: once this returns, no line is being written and [`sent`](Self::sent)
    /// stays as it is until [`resume`](Self::resume).
    pub fn pause(&self) {
        *self.paused.lock().unwrap() = true;
    }

    /// Writes lines again.
    pub fn resume(&self) {
        *self.paused.lock().unwrap() = false;
    }
}

/// Writes `line` to `conn` every `period` until the feed stops or the peer is gone.
fn serve(
    mut conn: TcpStream,
    line: &str,
    period: Duration,
    stop: &AtomicBool,
    paused: &Mutex<bool>,
    sent: &AtomicU64,
) {
    while !stop.load(Ordering::Relaxed) {
        {
            let paused = paused.lock().unwrap();
            if !*paused {
                // A job that died closed its end: a write could still succeed once (into the
                // kernel's buffer) and be counted as sent, so look first.
                if peer_closed(&conn) || conn.write_all(line.as_bytes()).is_err() {
                    return;
                }
                sent.fetch_add(1, Ordering::SeqCst);
            }
        }
        std::thread::sleep(period);
    }
}

/// Whether the other end closed the connection (jobs never write to the feed): a write could
/// still succeed once into the kernel's buffer, and would be counted as sent.
pub fn peer_closed(conn: &TcpStream) -> bool {
    if conn.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let closed = match conn.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    closed || conn.set_nonblocking(false).is_err()
}

impl Drop for TextFeed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
