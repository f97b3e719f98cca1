//! A TCP text server for the socket jobs: every connection gets the same line every 50 ms
//! until the feed is dropped (a restarted job simply connects again).

use std::io::Write as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A running feed on 127.0.0.1.
pub struct TextFeed {
    /// Its port.
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl TextFeed {
    /// Starts serving `line` on a free port.
    pub fn start(line: &str) -> TextFeed {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the feed");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let line = format!("{line}\n");
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let (line, flag) = (line.clone(), flag.clone());
                        std::thread::spawn(move || {
                            while !flag.load(Ordering::Relaxed)
                                && conn.write_all(line.as_bytes()).is_ok()
                            {
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        TextFeed { port, stop }
    }
}

impl Drop for TextFeed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
