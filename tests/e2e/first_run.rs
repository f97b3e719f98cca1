//! The first five minutes of a new user: the README's first command, run as written (but for
//! the install, which the suite's built `cargo-stream` stands in for) in an empty folder, shows
//! word counts within seconds of the job starting, with nothing else started; a job with
//! nothing to connect to says so with the address; logs are on by default (JSON on request);
//! errors reach the user as messages, not Debug structs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use cargo_stream_tests::{Job, cargo, cargo_stream, cargo_stream_bin, run, workspace_root};

const BUILD: Duration = Duration::from_secs(900);
/// How long after the job starts its first word counts may take: the demo server sends a
/// line every 100 ms and a batch is 1 s, so 2 s is usual; 15 s leaves room for a loaded machine.
const COUNTS_WITHIN: Duration = Duration::from_secs(15);

/// The shell command of the README's "Two commands" section, the first fenced block after it.
fn readme_first_command() -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Two commands")
        .nth(1)
        .expect("README.md has a `## Two commands` section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("the section has a ```sh block");
    block.trim().to_owned()
}

/// A folder holding `cargo-stream`, the suite's build, for `cargo stream` to find on `PATH`.
fn path_with_this_cargo_stream(tmp: &Path) -> std::ffi::OsString {
    let bin = tmp.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(cargo_stream_bin(), bin.join("cargo-stream")).unwrap();
    let mut dirs = vec![bin];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

/// Which stream a line came from.
#[derive(Debug, PartialEq)]
enum From {
    Out,
    Err,
}

#[test]
fn readme_first_command_shows_word_counts_within_seconds() {
    let command = readme_first_command();
    let install = "cargo install --locked --path cli && ";
    let rest = command
        .strip_prefix(install)
        .unwrap_or_else(|| panic!("the README's first command starts with `{install}`: {command}"));
    assert!(
        !rest.contains("nc ") && !rest.contains('|'),
        "the first command needs nothing else started: {rest}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", rest])
        .current_dir(&work)
        .env("PATH", path_with_this_cargo_stream(tmp.path()))
        // The generated crate builds in the suite's shared target folder (the runtime is
        // compiled once for every test); a user's builds in its own `target/`.
        .env("CARGO_TARGET_DIR", cargo_stream_tests::e2e_target_dir())
        .env("CARGO_TERM_COLOR", "never")
        .env_remove("RUST_LOG")
        .env_remove("CARGO_STREAM_MASTER")
        .env_remove("CARGO_STREAM_RUNTIME_PATH")
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO_PKG_NAME")
        .env_remove("CARGO_PRIMARY_PACKAGE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().unwrap();
    let group = child.id();
    // Kills the whole group (sh, cargo, the job) however the test ends.
    struct Group(u32);
    impl Drop for Group {
        fn drop(&mut self) {
            signal_group("KILL", self.0);
        }
    }
    let _group = Group(group);

    let (tx, lines) = channel();
    for (pipe, from) in [
        (
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            From::Out,
        ),
        (Box::new(child.stderr.take().unwrap()), From::Err),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send((from == From::Out, line)).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);

    // `cargo run` says `Running `...`` when the job starts; counts must follow within seconds.
    let deadline = Instant::now() + BUILD;
    let mut started: Option<Instant> = None;
    let mut seen = Vec::new();
    let first_count = loop {
        let limit = match started {
            Some(t) => t + COUNTS_WITHIN,
            None => deadline,
        };
        // Checked before each line too: logs arriving every second must not keep it waiting.
        let left = limit.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left).and_then(|l| {
            if Instant::now() > limit {
                Err(RecvTimeoutError::Timeout)
            } else {
                Ok(l)
            }
        }) {
            Ok((stdout, line)) => {
                seen.push(format!("{}{line}", if stdout { "out| " } else { "err| " }));
                if !stdout && line.trim_start().starts_with("Running `") {
                    started = Some(Instant::now());
                }
                if stdout && is_count(&line) {
                    break line;
                }
            }
            Err(RecvTimeoutError::Timeout) => panic!(
                "no word count within {:?} of {}:\n{}",
                if started.is_some() {
                    COUNTS_WITHIN
                } else {
                    BUILD
                },
                if started.is_some() {
                    "the job's start"
                } else {
                    "the command's start"
                },
                seen.join("\n")
            ),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the command ended first:\n{}", seen.join("\n"))
            }
        }
    };
    let after = started
        .expect("cargo said `Running` before the job printed")
        .elapsed();
    eprintln!("first count `{first_count}` {after:?} after the job started");
    // A word of the bundled text, counted.
    let text =
        std::fs::read_to_string(workspace_root().join("templates/socket-word-count/src/demo.txt"))
            .unwrap();
    let (word, _) = first_count[1..].rsplit_once(',').unwrap();
    assert!(
        text.split_whitespace().any(|w| w == word),
        "`{word}` is not in the demo's text:\n{}",
        seen.join("\n")
    );
    // It says where the lines come from and how to count one's own.
    let stderr: Vec<&String> = seen.iter().filter(|l| l.starts_with("err| ")).collect();
    assert!(
        stderr.iter().any(|l| l.contains("nc -lk 9999")),
        "no hint on a real source:\n{}",
        seen.join("\n")
    );
    // And it was this build of cargo-stream that made the crate.
    let manifest = std::fs::read_to_string(work.join("word-count/Cargo.toml")).unwrap();
    let runtime = workspace_root().join("runtime").canonicalize().unwrap();
    assert!(
        manifest.contains(&runtime.display().to_string()),
        "{manifest}"
    );
    // Ctrl-C's signal to the whole group, as a terminal sends it; `_group` kills what is left.
    signal_group("TERM", group);
    let stop = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() && Instant::now() < stop {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `signal` to the process group `group` (`kill -s SIG -- -PGID`: without `--`, procps'
/// `kill` takes `-PGID` for an option and signals nothing).
fn signal_group(signal: &str, group: u32) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{group}")])
        .status();
}

/// A `(word,N)` line of `print`.
fn is_count(line: &str) -> bool {
    line.starts_with('(')
        && line.ends_with(')')
        && line
            .rsplit_once(',')
            .is_some_and(|(_, n)| n.trim_end_matches(')').parse::<u64>().is_ok())
}

/// The socket template, generated and built under `name` in `dir`: its binary.
fn socket_job(dir: &Path, name: &str) -> PathBuf {
    run(
        &mut cargo_stream(dir, &["new", name, "--template", "socket-word-count"]),
        Duration::from_secs(60),
    )
    .success();
    run(&mut cargo(&dir.join(name), &["build"]), BUILD).success();
    cargo_stream_tests::e2e_target_dir()
        .join("debug")
        .join(name)
}

#[test]
fn a_job_with_nothing_to_read_says_so_once_with_the_address_and_logs_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = socket_job(tmp.path(), "first-run-absent");
    let port = cargo_stream_tests::free_port().to_string();
    let mut job = Job::start(
        Command::new(&exe)
            .args(["127.0.0.1", &port])
            .env_remove("RUST_LOG")
            .env_remove("CARGO_STREAM_LOG_FORMAT"),
    );
    // Batches run (empty) while the receiver retries: 5 s is a couple of retries at 2 s.
    job.wait_for(Duration::from_secs(20), |l| l.starts_with("Time: "));
    std::thread::sleep(Duration::from_secs(5));
    let end = job.terminate(Duration::from_secs(20));
    assert_eq!(end.code, Some(0), "{}", end.stderr);
    let address = format!("127.0.0.1:{port}");
    let refused: Vec<&str> = end
        .stderr
        .lines()
        .filter(|l| l.contains(&format!("could not connect to {address}")))
        .collect();
    assert_eq!(refused.len(), 1, "said once:\n{}", end.stderr);
    assert!(
        refused[0].contains(&format!("nc -lk {port}")),
        "{}",
        refused[0]
    );
    // Logs by default, at info: every batch has its line.
    assert!(
        end.stderr.contains("batch completed"),
        "no batch line at the default level:\n{}",
        end.stderr
    );
}

#[test]
fn json_logs_on_request_and_errors_as_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = socket_job(tmp.path(), "first-run-errors");

    // CARGO_STREAM_LOG_FORMAT=json: every line of stderr is a JSON object with a level.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port().to_string();
    let mut job = Job::start(
        Command::new(&exe)
            .args(["127.0.0.1", &port])
            .env("CARGO_STREAM_LOG_FORMAT", "json")
            .env_remove("RUST_LOG"),
    );
    let (mut conn, _) = server.accept().unwrap();
    std::io::Write::write_all(&mut conn, b"json json\n").unwrap();
    job.wait_for(Duration::from_secs(20), |l| l == "(json,2)");
    let end = job.terminate(Duration::from_secs(20));
    assert_eq!(end.code, Some(0), "{}", end.stderr);
    let mut events = 0;
    for line in end.stderr.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string(), "{line}");
        events += 1;
        if v["message"] == "batch completed" {
            assert!(v["records"].is_u64(), "{line}");
        }
    }
    assert!(
        end.stderr.contains("\"message\":\"batch completed\""),
        "{}",
        end.stderr
    );
    assert!(events > 2, "{}", end.stderr);

    // A runtime error: its message, exit code 1, no Debug struct.
    let out = run(
        Command::new(&exe).env("CARGO_STREAM_MASTER", "local[0]"),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("error: invalid master `local[0]`"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("InvalidMaster") && !out.stderr.contains("Error: "),
        "a Debug error:\n{}",
        out.stderr
    );

    // A usage error: the same.
    let out = run(
        Command::new(&exe).args(["127.0.0.1", "abc"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("error: PORT must be a number from 1 to 65535, got `abc`"),
        "{}",
        out.stderr
    );
}
