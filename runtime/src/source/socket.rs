//! `socket_text_stream`: a receiver of UTF-8 lines from a TCP server, reconnecting with
//! back-off when the server is absent or closes the connection. Lines that are not valid
//! UTF-8 are kept with U+FFFD in place of the bad bytes (as Spark's decoder does), counted and
//! logged with the server's address and the line number.
//!
//! A server that is not there is retried without end, as Spark's receiver restarts do, but not
//! silently and not in a flood: the first failure is logged with the address and how to feed
//! it, then one line every [`RETRY_LOG_EVERY`] with the number of attempts (each retry counts
//! as a receiver restart, and each logged line reaches the listeners as a receiver error).

use std::io::{ErrorKind, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::Counters;
use crate::source::receiver::{Receiver, ReceiverContext};
use crate::text::Line;

/// How long one read may block before the reader checks for a stop.
const POLL: Duration = Duration::from_millis(100);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The first wait between connection attempts; it doubles up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);
/// The longest wait between connection attempts (Spark's `spark.streaming.receiverRestartDelay`).
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);
/// While a server stays absent, how often a line says so again.
pub(crate) const RETRY_LOG_EVERY: Duration = Duration::from_secs(30);

pub(crate) struct SocketReceiver<T> {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) record: std::marker::PhantomData<fn() -> T>,
}

/// What a socket receiver stores: Spark's `String` lines (`socket_text_stream`), or [`Line`]s
/// sharing one block per read (`socket_lines`).
pub(crate) trait SocketRecord: crate::StateData {
    /// The `StreamingContext` method that makes this receiver, for its name.
    const METHOD: &'static str;
    /// The records of `lines`.
    fn from_lines(lines: Vec<Line>) -> Vec<Self>;
    /// The memory one record holds, for `receiver_max_buffered_bytes`.
    fn bytes(&self) -> usize;
}

impl SocketRecord for String {
    const METHOD: &'static str = "socket_text_stream";
    fn from_lines(lines: Vec<Line>) -> Vec<Self> {
        lines.into_iter().map(String::from).collect()
    }

    /// A line's bytes, its `String`, and the allocator's bookkeeping for one allocation.
    fn bytes(&self) -> usize {
        std::mem::size_of::<String>() + self.capacity() + ALLOCATION_OVERHEAD
    }
}

impl SocketRecord for Line {
    const METHOD: &'static str = "socket_lines";
    fn from_lines(lines: Vec<Line>) -> Vec<Self> {
        lines
    }

    /// The line's share of its block (its bytes and newline) and the `Line` itself.
    fn bytes(&self) -> usize {
        std::mem::size_of::<Line>() + self.len() + 1
    }
}

impl<T: SocketRecord> Receiver for SocketReceiver<T> {
    type Item = T;

    fn on_start(&mut self, ctx: ReceiverContext<T>) {
        let (host, port) = (self.host.clone(), self.port);
        let spawned = std::thread::Builder::new()
            .name(format!("socket-{host}:{port}"))
            .spawn(move || {
                // A panic here would leave the receiver started but reading nothing.
                let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    receive(&host, port, &ctx)
                }));
                if let Err(panic) = read {
                    let what = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    ctx.fail(format!("the reader of {host}:{port} panicked: {what}"));
                }
            });
        if let Err(e) = spawned {
            tracing::error!("could not start the socket reader thread: {e}");
        }
    }

    fn on_stop(&mut self) {
        // The reader sees `is_stopped()` within one poll and closes the socket itself.
    }

    fn name(&self) -> String {
        format!("{}({}:{})", T::METHOD, self.host, self.port)
    }

    fn record_bytes(line: &T) -> usize {
        line.bytes()
    }
}

/// What one heap allocation costs beyond its bytes (glibc: a 16-byte header and alignment).
const ALLOCATION_OVERHEAD: usize = 16;

fn receive<T: SocketRecord>(host: &str, port: u16, ctx: &ReceiverContext<T>) {
    let mut retries = ConnectRetries::new(format!("{host}:{port}"), port);
    let mut delay = FIRST_RETRY_DELAY;
    let mut stream = loop {
        if ctx.is_stopped() {
            return;
        }
        match connect(host, port) {
            Ok(s) => break s,
            Err(e) => {
                if let Some(line) = retries.failed(Instant::now(), &e) {
                    tracing::warn!(receiver = %ctx.state.name, address = %retries.address, attempts = retries.attempts, "{line}");
                    ctx.tell_listeners(line);
                }
                Counters::add(&ctx.state.counters.receiver_restarts, 1);
                let until = Instant::now() + delay;
                while Instant::now() < until && !ctx.is_stopped() {
                    std::thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
                }
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    };
    match retries.attempts {
        0 => tracing::info!(receiver = %ctx.state.name, "connected to {host}:{port}"),
        n => tracing::info!(
            receiver = %ctx.state.name,
            attempts = n + 1,
            "connected to {host}:{port} after {} attempts",
            n + 1
        ),
    }
    if let Err(e) = stream.set_read_timeout(Some(POLL)) {
        return ctx.restart(format!(
            "could not set a read timeout on {host}:{port}: {e}"
        ));
    }
    let mut lines = LineSplitter::new(ctx.state.name.clone(), format!("{host}:{port}"));
    let store = |(lines, replaced): (Vec<Line>, u64)| {
        ctx.store_counted(T::from_lines(lines), replaced);
    };
    let finish = |lines: &mut LineSplitter| {
        if let Some((line, bad)) = lines.finish() {
            store((vec![line], u64::from(bad)));
        }
    };
    let mut buf = vec![0u8; 256 * 1024];
    while !ctx.is_stopped() {
        match stream.read(&mut buf) {
            Ok(0) => {
                finish(&mut lines);
                return ctx.restart(format!("{host}:{port} closed the connection; reconnecting"));
            }
            Ok(n) => store(lines.push(&buf[..n])),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                finish(&mut lines);
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

/// Counts failed connection attempts and says when one deserves a line: the first, then one
/// every [`RETRY_LOG_EVERY`].
struct ConnectRetries {
    /// `host:port`.
    address: String,
    port: u16,
    /// Failed attempts so far.
    attempts: u64,
    first: Option<Instant>,
    last_logged: Option<Instant>,
}

impl ConnectRetries {
    fn new(address: String, port: u16) -> Self {
        ConnectRetries {
            address,
            port,
            attempts: 0,
            first: None,
            last_logged: None,
        }
    }

    /// Records a failed attempt at `now`; the line to log, if this one gets one.
    fn failed(&mut self, now: Instant, error: &std::io::Error) -> Option<String> {
        self.attempts += 1;
        let first = *self.first.get_or_insert(now);
        match self.last_logged {
            None => {
                self.last_logged = Some(now);
                Some(format!(
                    "could not connect to {}: {error}; retrying every {} s until a server listens there (to try it, run `nc -lk {}` and type lines)",
                    self.address,
                    MAX_RETRY_DELAY.as_secs(),
                    self.port
                ))
            }
            Some(last) if now.duration_since(last) >= RETRY_LOG_EVERY => {
                self.last_logged = Some(now);
                Some(format!(
                    "still could not connect to {} after {} attempts in {} s: {error}",
                    self.address,
                    self.attempts,
                    now.duration_since(first).as_secs()
                ))
            }
            Some(_) => None,
        }
    }
}

/// Cuts a byte stream into [`Line`]s, keeping a partial line across reads; lines that are not
/// UTF-8 are decoded with replacement characters, counted and logged.
///
/// The complete lines of each read are copied once, into one shared block, and each line is a
/// slice of it: no allocation per line.
pub(crate) struct LineSplitter {
    /// The receiver's name, for warnings.
    receiver: String,
    /// Where the bytes come from (`host:port`), for warnings.
    origin: String,
    partial: Vec<u8>,
    /// Lines read so far on this connection.
    line_no: u64,
    warned: u64,
}

/// Non-UTF-8 lines logged one by one per connection; further ones are only counted.
const WARN_LINES: u64 = 10;

impl LineSplitter {
    pub(crate) fn new(receiver: String, origin: String) -> Self {
        LineSplitter {
            receiver,
            origin,
            partial: Vec::new(),
            line_no: 0,
            warned: 0,
        }
    }

    /// The complete lines of `bytes` (after what earlier reads left), and how many of them
    /// were not UTF-8.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> (Vec<Line>, u64) {
        let Some(last) = memchr::memrchr(b'\n', bytes) else {
            self.partial.extend_from_slice(bytes);
            return (Vec::new(), 0);
        };
        let (whole, rest) = bytes.split_at(last + 1);
        let mut region = std::mem::take(&mut self.partial);
        let out = if region.is_empty() {
            self.split(whole)
        } else {
            region.extend_from_slice(whole);
            let out = self.split(&region);
            region.clear();
            out
        };
        self.partial = region;
        self.partial.extend_from_slice(rest);
        out
    }

    /// The lines of `region`, which ends with a newline.
    fn split(&mut self, region: &[u8]) -> (Vec<Line>, u64) {
        let lines = memchr::memchr_iter(b'\n', region).count();
        let mut out = Vec::with_capacity(lines);
        if let Ok(text) = std::str::from_utf8(region) {
            let block: Arc<str> = Arc::from(text);
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', region) {
                let stop = if end > start && region[end - 1] == b'\r' {
                    end - 1
                } else {
                    end
                };
                out.push(Line::in_block(&block, start, stop));
                start = end + 1;
            }
            self.line_no += lines as u64;
            return (out, 0);
        }
        // Some line is not UTF-8: decode line by line, into one block all the same.
        let mut text = String::with_capacity(region.len());
        let mut ranges = Vec::with_capacity(lines);
        let mut replaced = 0;
        for line in region[..region.len() - 1].split(|b| *b == b'\n') {
            self.line_no += 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let start = text.len();
            match String::from_utf8_lossy(line) {
                std::borrow::Cow::Borrowed(s) => text.push_str(s),
                std::borrow::Cow::Owned(s) => {
                    replaced += 1;
                    self.warn();
                    text.push_str(&s);
                }
            }
            ranges.push((start, text.len()));
        }
        let block: Arc<str> = Arc::from(text);
        out.extend(
            ranges
                .into_iter()
                .map(|(a, b)| Line::in_block(&block, a, b)),
        );
        (out, replaced)
    }

    /// A last line that had no newline, and whether it was not UTF-8.
    pub(crate) fn finish(&mut self) -> Option<(Line, bool)> {
        if self.partial.is_empty() {
            return None;
        }
        self.partial.push(b'\n');
        let partial = std::mem::take(&mut self.partial);
        let (mut lines, replaced) = self.split(&partial);
        lines.pop().map(|l| (l, replaced > 0))
    }

    fn warn(&mut self) {
        self.warned += 1;
        if self.warned <= WARN_LINES {
            tracing::warn!(
                receiver = %self.receiver,
                from = %self.origin,
                line = self.line_no,
                "line {} from {} is not valid UTF-8: kept with U+FFFD replacement characters{}",
                self.line_no,
                self.origin,
                if self.warned == WARN_LINES {
                    " (further ones on this connection are counted, not logged)"
                } else {
                    ""
                }
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_is_logged_once_then_at_intervals_with_the_count() {
        let mut r = ConnectRetries::new("127.0.0.1:9999".into(), 9999);
        let refused = std::io::Error::from(ErrorKind::ConnectionRefused);
        let t0 = Instant::now();
        let first = r.failed(t0, &refused).expect("the first failure is logged");
        assert!(
            first.starts_with("could not connect to 127.0.0.1:9999: "),
            "{first}"
        );
        assert!(first.contains("nc -lk 9999"), "{first}");
        // Every 2 s for just under the interval: nothing more.
        let mut t = t0;
        for _ in 0..14 {
            t += MAX_RETRY_DELAY;
            assert_eq!(r.failed(t, &refused), None);
        }
        t += MAX_RETRY_DELAY;
        let again = r.failed(t, &refused).expect("a line at the interval");
        assert!(
            again
                .starts_with("still could not connect to 127.0.0.1:9999 after 16 attempts in 30 s"),
            "{again}"
        );
        assert_eq!(r.failed(t + MAX_RETRY_DELAY, &refused), None);
    }
}
