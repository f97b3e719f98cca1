//! `socket_text_stream`: a receiver of UTF-8 lines from a TCP server, reconnecting with
//! back-off when the server is absent or closes the connection.

use std::io::{ErrorKind, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::source::receiver::{Receiver, ReceiverContext};

/// How long one read may block before the reader checks for a stop.
const POLL: Duration = Duration::from_millis(100);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct SocketReceiver {
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Receiver for SocketReceiver {
    type Item = String;

    fn on_start(&mut self, ctx: ReceiverContext<String>) {
        let (host, port) = (self.host.clone(), self.port);
        let spawned = std::thread::Builder::new()
            .name(format!("socket-{host}:{port}"))
            .spawn(move || receive(&host, port, &ctx));
        if let Err(e) = spawned {
            tracing::error!("could not start the socket reader thread: {e}");
        }
    }

    fn on_stop(&mut self) {
        // The reader sees `is_stopped()` within one poll and closes the socket itself.
    }

    fn name(&self) -> String {
        format!("socket_text_stream({}:{})", self.host, self.port)
    }
}

fn receive(host: &str, port: u16, ctx: &ReceiverContext<String>) {
    let mut stream = match connect(host, port) {
        Ok(s) => s,
        Err(e) => return ctx.restart(format!("could not connect to {host}:{port}: {e}")),
    };
    tracing::info!("connected to {host}:{port}");
    if let Err(e) = stream.set_read_timeout(Some(POLL)) {
        return ctx.restart(format!(
            "could not set a read timeout on {host}:{port}: {e}"
        ));
    }
    let mut lines = LineSplitter::default();
    let mut buf = vec![0u8; 256 * 1024];
    while !ctx.is_stopped() {
        match stream.read(&mut buf) {
            Ok(0) => {
                lines.finish(ctx);
                return ctx.restart(format!("{host}:{port} closed the connection; reconnecting"));
            }
            Ok(n) => lines.push(&buf[..n], ctx),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                lines.finish(ctx);
                return ctx.restart(format!("error reading from {host}:{port}: {e}"));
            }
        }
    }
}

fn connect(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(ErrorKind::NotFound, "the host name resolved to no address");
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Cuts a byte stream into lines, keeping a partial line across reads; lines that are not
/// UTF-8 are counted and skipped.
#[derive(Default)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
    warned: bool,
}

impl LineSplitter {
    pub(crate) fn push(&mut self, bytes: &[u8], ctx: &ReceiverContext<String>) {
        let mut out = Vec::new();
        let mut rest = bytes;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            let line = if self.partial.is_empty() {
                &rest[..i]
            } else {
                self.partial.extend_from_slice(&rest[..i]);
                &self.partial[..]
            };
            match decode(line) {
                Some(s) => out.push(s),
                None => self.skip(ctx),
            }
            self.partial.clear();
            rest = &rest[i + 1..];
        }
        self.partial.extend_from_slice(rest);
        ctx.store_many(out);
    }

    /// Stores a last line that had no newline.
    pub(crate) fn finish(&mut self, ctx: &ReceiverContext<String>) {
        if !self.partial.is_empty() {
            match decode(&std::mem::take(&mut self.partial)) {
                Some(s) => ctx.store(s),
                None => self.skip(ctx),
            }
        }
    }

    fn skip(&mut self, ctx: &ReceiverContext<String>) {
        ctx.skipped_non_utf8(1);
        if !self.warned {
            self.warned = true;
            tracing::warn!(receiver = %ctx.state.name, "skipped a line that is not UTF-8 (counted; further ones are not logged)");
        }
    }
}

fn decode(line: &[u8]) -> Option<String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    std::str::from_utf8(line).ok().map(str::to_owned)
}
