//! Helpers shared by the integration tests.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cargo_stream_runtime::BatchInfo;
use cargo_stream_runtime::prelude::*;

/// A context on `local[2]` with short batches, no signal handling.
pub(crate) fn context(batch_ms: u64) -> StreamingContext {
    let conf = StreamingConf::new("test")
        .master("local[2]")
        .stop_on_signal(false)
        .block_interval(Milliseconds(batch_ms.min(50)));
    StreamingContext::new(conf, Milliseconds(batch_ms)).unwrap()
}

/// Collects every record of `stream` into a shared vector.
pub(crate) fn collect<T: cargo_stream_runtime::Data>(stream: &DStream<T>) -> Arc<Mutex<Vec<T>>> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = out.clone();
    stream
        .foreach_rdd(move |b, _| sink.lock().unwrap().extend(b.collect()))
        .unwrap();
    out
}

/// Waits until `cond` holds, for at most `secs` seconds.
pub(crate) fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// A one-connection line server on 127.0.0.1: accepts, writes `payload`, and keeps the
/// connection open until the returned guard is dropped.
pub(crate) struct LineServer {
    pub(crate) port: u16,
    conn: Arc<Mutex<Option<TcpStream>>>,
}

impl LineServer {
    pub(crate) fn start(payload: Vec<u8>) -> LineServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Self::serve(listener, payload)
    }

    pub(crate) fn serve(listener: TcpListener, payload: Vec<u8>) -> LineServer {
        let port = listener.local_addr().unwrap().port();
        let conn = Arc::new(Mutex::new(None));
        let slot = conn.clone();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                s.write_all(&payload).unwrap();
                s.flush().unwrap();
                *slot.lock().unwrap() = Some(s);
            }
        });
        LineServer { port, conn }
    }

    /// Closes the connection (the receiver then reconnects).
    pub(crate) fn close(&self) {
        if let Some(s) = self.conn.lock().unwrap().take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for LineServer {
    fn drop(&mut self) {
        self.close();
    }
}

/// A listener that records every completed batch.
#[derive(Clone, Default)]
pub(crate) struct Batches(pub(crate) Arc<Mutex<Vec<BatchInfo>>>);

impl StreamingListener for Batches {
    fn on_batch_completed(&self, info: &BatchInfo) {
        self.0.lock().unwrap().push(info.clone());
    }
}
