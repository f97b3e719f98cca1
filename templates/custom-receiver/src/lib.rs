//! A custom receiver, written by hand: it connects to a TCP server, stores each line it reads,
//! and asks to be restarted when the connection fails, as Spark's `CustomReceiver` example does.

use std::io::{BufRead, BufReader, ErrorKind};
use std::net::TcpStream;
use std::time::Duration;

use cargo_stream_runtime::prelude::*;

/// Receives the lines sent by a TCP server at `host:port`.
pub struct LineReceiver {
    host: String,
    port: u16,
}

impl LineReceiver {
    /// A receiver for the server at `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        LineReceiver { host: host.into(), port }
    }
}

impl Receiver for LineReceiver {
    type Item = String;

    /// Called once per (re)start: it must not block, so the reading happens on a thread of its
    /// own, which ends when the receiver is stopped.
    fn on_start(&mut self, ctx: ReceiverContext<String>) {
        let (host, port) = (self.host.clone(), self.port);
        std::thread::spawn(move || receive(&host, port, &ctx));
    }

    /// Nothing to do: the reading thread sees `ctx.is_stopped()` and ends by itself.
    fn on_stop(&mut self) {}
}

fn receive(host: &str, port: u16, ctx: &ReceiverContext<String>) {
    let stream = match TcpStream::connect((host, port)) {
        Ok(stream) => stream,
        Err(err) => {
            ctx.restart(&format!("cannot connect to {host}:{port}: {err}"));
            return;
        }
    };
    // A read timeout lets the loop notice a stop even when no data comes.
    if let Err(err) = stream.set_read_timeout(Some(Duration::from_millis(200))) {
        ctx.report_error(&format!("cannot set a read timeout: {err}"));
    }
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    while !ctx.is_stopped() {
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => {
                ctx.restart(&format!("{host}:{port} closed the connection"));
                return;
            }
            Ok(_) if line.ends_with(b"\n") => {
                let text = String::from_utf8_lossy(&line);
                ctx.store(text.trim_end_matches(['\r', '\n']).to_owned());
                line.clear();
            }
            // A partial line stays in `line` until the rest arrives.
            Ok(_) => {}
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(err) => {
                ctx.restart(&format!("reading from {host}:{port} failed: {err}"));
                return;
            }
        }
    }
}

/// Counts each word of each batch of lines.
pub fn word_counts(lines: DStream<String>) -> DStream<(String, u64)> {
    lines
        .flat_map(|line: String| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .map(|word| (word, 1u64))
        .reduce_by_key(|a, b| a + b)
}
