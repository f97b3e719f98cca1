//! A throwaway Kafka-compatible broker for tests: Tansu (`tests/support/install-tansu.sh`
//! installs its static binary under `~/.cache/cargo-stream/tansu/`), started on 127.0.0.1 on a
//! free port with in-memory storage, stopped on drop. Used by the runtime's Kafka tests, the
//! examples' and the end-to-end tests.
//!
//! With `KAFKA_BOOTSTRAP=host:port` set, [`Broker::start`] uses that (real) Kafka instead and
//! starts nothing; [`Broker::is_tansu`] tells tests of features Tansu lacks (transactions,
//! rebalances) whether they can run.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, workspace_root};

/// A running broker (or the external one named by `KAFKA_BOOTSTRAP`); a started Tansu is
/// killed when dropped.
///
/// ```no_run
/// let broker = cargo_stream_tests::kafka::Broker::start();
/// broker.create_topic("lines", 3);
/// let servers = broker.bootstrap(); // "127.0.0.1:PORT", for `bootstrap.servers`
/// # let _ = servers;
/// ```
pub struct Broker {
    child: Option<Child>,
    port: u16,
    bootstrap: String,
    log: tempfile::NamedTempFile,
}

impl Broker {
    /// Starts a Tansu broker on a free port of 127.0.0.1 (or takes `KAFKA_BOOTSTRAP`) and waits
    /// until it accepts connections (at most 30 s).
    pub fn start() -> Broker {
        let log = tempfile::Builder::new()
            .prefix("tansu-")
            .suffix(".log")
            .tempfile()
            .expect("create the broker's log file");
        if let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP")
            && !bootstrap.is_empty()
        {
            return Broker {
                child: None,
                port: 0,
                bootstrap,
                log,
            };
        }
        let port = free_port();
        let mut broker = Broker {
            child: None,
            port,
            bootstrap: format!("127.0.0.1:{port}"),
            log,
        };
        broker.start_again();
        broker
    }

    /// `host:port` for the clients' `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }

    /// Whether this is a Tansu started by the test (not a real Kafka from `KAFKA_BOOTSTRAP`).
    pub fn is_tansu(&self) -> bool {
        self.port != 0
    }

    /// Creates `topic` with `partitions` partitions (Tansu's own CLI; with an external Kafka,
    /// create topics with the client's admin API instead).
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        assert!(
            self.is_tansu(),
            "create_topic runs Tansu's CLI; with KAFKA_BOOTSTRAP create `{topic}` with an admin client"
        );
        let out = Command::new(tansu_bin())
            .args(["topic", "create", topic, "--partitions"])
            .arg(partitions.to_string())
            .arg("--broker")
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .output()
            .expect("run `tansu topic create`");
        assert!(
            out.status.success(),
            "`tansu topic create {topic}` failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Kills the broker now (as a crash would); its in-memory topics are lost.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a stopped Tansu again on the same port (empty: storage is in memory).
    pub fn start_again(&mut self) {
        assert!(self.is_tansu(), "an external broker cannot be restarted");
        self.stop();
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(tansu_bin())
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(self.log.reopen().expect("reopen the broker's log"))
            .stderr(self.log.reopen().expect("reopen the broker's log"))
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "tansu exited ({status}) before listening on {url}: {}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {url} within 30 s: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the broker wrote so far (for failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The Tansu binary: `TANSU_BIN`, else the cached one, installed first when missing.
pub fn tansu_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TANSU_BIN") {
        return PathBuf::from(bin);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    let bin = home.join(".cache/cargo-stream/tansu/tansu");
    if !bin.exists() {
        let script = workspace_root().join("tests/support/install-tansu.sh");
        let status = Command::new("bash").arg(&script).status();
        assert!(
            bin.exists(),
            "Tansu is not installed at {} (install script: {status:?}); run `bash {}`",
            bin.display(),
            script.display()
        );
    }
    bin
}
