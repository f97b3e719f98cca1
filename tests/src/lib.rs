//! Support for the end-to-end tests in `tests/e2e/`: the built `cargo-stream` binary, temporary
//! projects, commands with time limits, and jobs read line by line while they run; and the
//! throwaway servers tests start on 127.0.0.1 (PostgreSQL in [`postgres`], a Kafka-compatible
//! broker in [`kafka`], also used by the runtime's and the examples' tests as a dev-dependency).
//!
//! Every generated crate builds into one shared target folder, `<workspace>/target/e2e`, so
//! that the runtime and its dependencies compile once for the whole suite.

pub mod slurm;

pub mod client;
pub mod feed;
pub mod jobs;
pub mod kafka;
pub mod postgres;
pub mod proxy;
pub mod spark;
pub mod sshd;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_owned()
}

/// The target folder the generated crates share.
pub fn e2e_target_dir() -> PathBuf {
    workspace_root().join("target").join("e2e")
}

/// The `cargo-stream` binary under test: `CARGO_STREAM_EXE` if set, else built once with
/// `cargo build -p cargo-stream` (a no-op when `cargo test --workspace` built it already).
pub fn cargo_stream_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("CARGO_STREAM_EXE") {
            return PathBuf::from(bin);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "-p",
                "cargo-stream",
                "--bin",
                "cargo-stream",
                "--message-format=json",
            ])
            .current_dir(workspace_root())
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build -p cargo-stream");
        assert!(out.status.success(), "building cargo-stream failed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "cargo-stream")
            .find_map(|v| v["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported the cargo-stream executable")
    })
}

/// A command for `cargo stream ARGS` run in `dir`, with the shared target folder.
pub fn cargo_stream(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(cargo_stream_bin());
    cmd.arg("stream").args(args).current_dir(dir);
    isolate(&mut cmd);
    cmd
}

/// A `cargo ARGS` command in `dir`, with the shared target folder.
pub fn cargo(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(args).current_dir(dir);
    isolate(&mut cmd);
    cmd
}

fn isolate(cmd: &mut Command) {
    cmd.env("CARGO_TARGET_DIR", e2e_target_dir())
        .env("CARGO_TERM_COLOR", "never")
        // Help texts wrap at a fixed width, whatever the terminal.
        .env("COLUMNS", "100")
        .env_remove("RUST_LOG")
        .env_remove("CARGO_STREAM_LOG")
        .env_remove("CARGO_STREAM_MASTER")
        .env_remove("CARGO_STREAM_EXE")
        .env_remove("CARGO_STREAM_DEPLOY_MODE")
        .env_remove("CARGO_STREAM_RUNTIME_PATH")
        // `cargo test` sets these for its own package; a nested build must not see them.
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO_PKG_NAME")
        .env_remove("CARGO_PRIMARY_PACKAGE");
}

/// The result of a finished command, with its output as text.
#[derive(Debug)]
pub struct Run {
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Panics with the output unless the command succeeded.
    pub fn success(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "command failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics with the output unless the command failed.
    pub fn failure(self) -> Self {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "command should have failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics unless the command failed with each of `needles` and a `help:` line in its
    /// stderr.
    pub fn refused(&self, needles: &[&str]) -> &Self {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "command should have failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "expected {needle:?} in:\n{}",
                self.stderr
            );
        }
        assert!(
            self.stderr.contains("help: "),
            "no help line:\n{}",
            self.stderr
        );
        self
    }
}

/// Runs `cmd` to its end, killing it after `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Run {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("failed to start {cmd:?}: {e}"));
    let out_pipe = child.stdout.take().unwrap();
    let err_pipe = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || read_all(out_pipe));
    let err = std::thread::spawn(move || read_all(err_pipe));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish within {limit:?}\n--- stderr\n{}",
                err.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn read_all(mut r: impl Read) -> String {
    let mut s = String::new();
    let mut bytes = Vec::new();
    let _ = r.read_to_end(&mut bytes);
    s.push_str(&String::from_utf8_lossy(&bytes));
    s
}

/// A running job whose stdout is read line by line.
pub struct Job {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Job {
    /// Starts `cmd`.
    pub fn start(cmd: &mut Command) -> Job {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {cmd:?}: {e}"));
        let (tx, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err_pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || read_all(err_pipe));
        Job {
            child,
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// Reads stdout until a line satisfies `pred`, or panics after `limit`.
    pub fn wait_for(&mut self, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "no expected line within {limit:?}; stdout so far:\n{}",
                        self.seen.join("\n")
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.child.wait();
                    panic!("the job ended first; stdout:\n{}", self.seen.join("\n"));
                }
            }
        }
    }

    /// Sends SIGTERM and waits (up to `limit`) for the exit code; returns it with the rest of
    /// stdout and all of stderr.
    pub fn terminate(mut self, limit: Duration) -> Run {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        match self.exit_within(limit) {
            Some(status) => self.ended(status),
            None => panic!("the job did not stop within {limit:?} of SIGTERM"),
        }
    }

    /// The job's exit status once it ends within `limit`; `None` (the job killed and reaped)
    /// when it does not.
    fn exit_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the ended job printed: the lines still in flight, then its stderr.
    fn ended(mut self, status: std::process::ExitStatus) -> Run {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        Run {
            code: status.code(),
            stdout: self.seen.join("\n"),
            stderr,
        }
    }

    /// Waits (up to `limit`) for the job to end by itself; returns its exit code with the
    /// rest of stdout and all of stderr.
    pub fn wait(mut self, limit: Duration) -> Run {
        match self.exit_within(limit) {
            Some(status) => self.ended(status),
            None => {
                let run = self.ended_partial();
                panic!(
                    "the job did not end within {limit:?}\n--- stderr\n{}",
                    run.stderr
                );
            }
        }
    }

    fn ended_partial(&mut self) -> Run {
        Run {
            code: None,
            stdout: self.seen.join("\n"),
            stderr: self
                .stderr
                .take()
                .map(|h| h.join().unwrap())
                .unwrap_or_default(),
        }
    }

    /// Kills the job with SIGKILL (no chance to stop or checkpoint, as when a machine or the
    /// OOM killer takes it) and returns what it had printed, with its stderr.
    pub fn kill(mut self) -> Run {
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for the killed job");
        self.ended(status)
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every file under `dir`, relative, sorted: to check that a failed command changed nothing.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path.strip_prefix(base).unwrap().display().to_string();
                out.push((rel, std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Copies a folder's files over another, creating folders as needed.
pub fn copy_over(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_over(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Writes a small crate that does not use the runtime (for the error cases of `package`).
pub fn write_plain_crate(dir: &Path, name: &str, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n"
        ),
    )
    .unwrap();
    write_files(dir, files);
}

/// A [`write_plain_crate`] named `name` in a new temporary folder: the folder (removed when
/// dropped) and the crate's path in it.
pub fn temp_plain_crate(name: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    write_plain_crate(&dir, name, files);
    (tmp, dir)
}

/// Writes `(path, text)` files under `dir`, creating their folders.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// A free TCP port on 127.0.0.1 (bound then released: good enough for a test's servers).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port on 127.0.0.1")
}

/// The body of `GET url` (plain `http://127.0.0.1:PORT/...`), or `None` if the server cannot
/// be reached or does not answer 200.
pub fn http_get(url: &str) -> Option<String> {
    use std::io::Write as _;
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.split_whitespace().nth(1).filter(|c| *c == "200")?;
    Some(body.to_owned())
}
