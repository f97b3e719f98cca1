//! A small HTTP/1.1 server on `std::net` for the status page: GET and HEAD only, one request
//! per connection, a fixed pool of worker threads behind a bounded queue (a connection that
//! finds the queue full is closed at once), and read and write timeouts on every connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::sync::LockExt;

/// Worker threads answering requests.
const WORKERS: usize = 4;
/// Accepted connections waiting for a worker.
const QUEUE: usize = 64;
/// The longest a request may take to arrive, or a response to be taken.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head read.
const MAX_HEAD: usize = 16 * 1024;
/// How long a stop's wake-up connection may take.
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// Ports tried after the first one, as Spark's `spark.port.maxRetries`.
pub(crate) const PORT_RETRIES: u16 = 16;

/// A parsed request: its path and query parameters, percent-decoded.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
}

/// What a handler answers.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type,
            body: body.into(),
        }
    }

    pub(crate) fn text(status: u16, body: impl Into<String>) -> Self {
        let mut body = body.into();
        body.push('\n');
        Self::new(status, "text/plain; charset=utf-8", body)
    }
}

pub(crate) type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// Binds `host:port`, or the next free port up to `PORT_RETRIES` later (port 0: any free
/// port), as Spark's `Utils.startServiceOnPort`.
pub(crate) fn bind(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let mut last = None;
    let tries = if port == 0 { 1 } else { PORT_RETRIES + 1 };
    for i in 0..tries {
        let Some(p) = port.checked_add(i) else { break };
        match TcpListener::bind((host, p)) {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                tracing::debug!(port = p, "status server port in use, trying the next");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::from(std::io::ErrorKind::AddrInUse)))
}

/// A running server; dropping it stops accepting (queued and running requests finish). The
/// accept loop blocks in `accept` (no polling while idle); a stop wakes it with a connection.
pub(crate) struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Serves `handler` on `listener`.
    pub(crate) fn start(listener: TcpListener, handler: Handler) -> std::io::Result<HttpServer> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = sync_channel::<TcpStream>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..WORKERS {
            let (rx, handler) = (rx.clone(), handler.clone());
            std::thread::Builder::new()
                .name(format!("stream-ui-{i}"))
                .spawn(move || work(&rx, &*handler))?;
        }
        let flag = stop.clone();
        let accept = std::thread::Builder::new()
            .name("stream-ui-accept".into())
            .spawn(move || accept_loop(listener, tx, &flag))?;
        Ok(HttpServer {
            addr,
            stop,
            accept: Some(accept),
        })
    }

    /// The address it listens on.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        match TcpStream::connect_timeout(&wake, WAKE_TIMEOUT) {
            Ok(_) => {
                if let Some(h) = self.accept.take() {
                    let _ = h.join();
                }
            }
            Err(e) => tracing::warn!(
                "the status server on {} did not stop accepting (could not wake it: {e}); its thread is left running",
                self.addr
            ),
        }
    }
}

fn accept_loop(listener: TcpListener, tx: SyncSender<TcpStream>, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        match tx.try_send(stream) {
            Ok(()) => {}
            Err(TrySendError::Full(mut s)) => {
                let _ = write_response(&mut s, &Response::text(503, "busy, try again"), false);
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
    // Dropping `tx` ends the workers once the queue is empty.
}

fn work(rx: &Mutex<Receiver<TcpStream>>, handler: &(dyn Fn(&Request) -> Response + Send + Sync)) {
    loop {
        let next = rx.locked().recv();
        let Ok(mut stream) = next else { return };
        let (response, head_only) = match read_request(&mut stream) {
            Ok((method, request)) if method == "GET" || method == "HEAD" => {
                (handler(&request), method == "HEAD")
            }
            Ok(_) => (Response::text(405, "only GET and HEAD"), false),
            Err(e) => (Response::text(400, format!("bad request: {e}")), false),
        };
        let _ = write_response(&mut stream, &response, head_only);
    }
}

fn read_request(stream: &mut TcpStream) -> Result<(String, Request), String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() > MAX_HEAD {
            return Err("request head too long".into());
        }
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(format!("no request line in `{line}`"));
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    Ok((
        method.to_owned(),
        Request {
            path: decode(path),
            query,
        },
    ))
}

/// Percent-decoding (and `+` as a space in query strings).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn write_response(stream: &mut TcpStream, r: &Response, head_only: bool) -> std::io::Result<()> {
    let reason = match r.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        r.status,
        r.content_type,
        r.body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(&r.body)?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_decoded() {
        assert_eq!(decode("a%20b+c%2"), "a b c%2");
        assert_eq!(decode("%E2%9C%93"), "✓");
    }
}
