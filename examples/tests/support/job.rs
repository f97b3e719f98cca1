//! An example binary run as a child process: its stdout collected, its stderr echoed and
//! watched for the "started" log line, stopped with SIGTERM; and a TCP server feeding it text.

#![allow(dead_code)] // each test binary uses its own part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// A running example.
pub(crate) struct Job {
    child: Child,
    started: mpsc::Receiver<()>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Job {
    pub(crate) fn spawn(bin: &str, args: &[&str]) -> Job {
        let mut child = Command::new(bin)
            .args(args)
            .env("RUST_LOG", "cargo_stream_runtime=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (pipe, stderr) = (
            child.stderr.take().unwrap(),
            Arc::new(Mutex::new(String::new())),
        );
        let (tx, started) = mpsc::channel();
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("[job] {line}");
                log.lock().unwrap().push_str(&line);
                log.lock().unwrap().push('\n');
                if line.contains("streaming context started") {
                    let _ = tx.send(());
                }
            }
        });
        let stdout = Arc::new(Mutex::new(String::new()));
        let (mut pipe, sink) = (child.stdout.take().unwrap(), stdout.clone());
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Job {
            child,
            started,
            stdout,
            stderr,
            reader: Some(reader),
        }
    }

    pub(crate) fn wait_started(&self) {
        self.started
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("job did not start: {}", self.stderr()));
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until the job printed `text` (for at most a minute).
    pub(crate) fn wait_printed(&self, text: &str) {
        for _ in 0..600 {
            if self.stdout.lock().unwrap().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "the job never printed {text}: {}",
            self.stdout.lock().unwrap()
        );
    }

    /// SIGTERM, then the job's stdout once it exited by itself with success.
    pub(crate) fn terminate(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        assert!(status.success(), "graceful stop exits 0, got {status}");
        self.reader.take().unwrap().join().unwrap();
        self.stdout.lock().unwrap().clone()
    }

    /// SIGKILL: the job dies without a chance to stop; what it printed.
    pub(crate) fn kill(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        self.stdout.lock().unwrap().clone()
    }

    /// Waits for the job to exit by itself; its status, stdout and stderr.
    pub(crate) fn wait_exit(mut self) -> (std::process::ExitStatus, String, String) {
        let status = self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        // Let the stderr thread drain.
        std::thread::sleep(Duration::from_millis(200));
        let out = self.stdout.lock().unwrap().clone();
        (status, out, self.stderr())
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves `text` once to the first client when the returned sender says go, then keeps the
/// connection open until the job closes it.
pub(crate) fn text_server(text: &'static str) -> (u16, mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (go, wait) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        wait.recv().unwrap();
        conn.write_all(text.as_bytes()).unwrap();
        let mut sink = Vec::new();
        let _ = conn.read_to_end(&mut sink);
    });
    (port, go)
}

const RULE: &str = "-------------------------------------------";

/// The text the examples are fed, three lines of Hamlet.
pub(crate) const TEXT: &str = "to be or not to be\nthat is the question\nto be\n";

/// The word counts of [`TEXT`] as `print` shows them, sorted.
pub(crate) const COUNTS: [&str; 8] = [
    "(be,3)",
    "(is,1)",
    "(not,1)",
    "(or,1)",
    "(question,1)",
    "(that,1)",
    "(the,1)",
    "(to,3)",
];

/// `print`'s output as (batch time in ms, records) per printed batch, in printed order,
/// checking Spark's layout exactly.
pub(crate) fn printed_batches(out: &str) -> Vec<(u64, Vec<String>)> {
    let mut lines = out.lines();
    let mut batches = Vec::new();
    while let Some(first) = lines.next() {
        assert_eq!(first, RULE, "output: {out}");
        let time = lines
            .next()
            .and_then(|l| l.strip_prefix("Time: "))
            .and_then(|t| t.strip_suffix(" ms"))
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no `Time: N ms` line after a rule in output: {out}"));
        assert_eq!(lines.next(), Some(RULE));
        let records: Vec<String> = lines
            .by_ref()
            .take_while(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        batches.push((time, records));
    }
    batches
}

/// The records of each printed batch that has any, in printed order, checking the layout.
pub(crate) fn nonempty_batches(out: &str) -> Vec<Vec<String>> {
    printed_batches(out)
        .into_iter()
        .map(|(_, records)| records)
        .filter(|records| !records.is_empty())
        .collect()
}
