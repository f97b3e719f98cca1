//! A `cargo stream` client for the cluster tests: its own cluster file
//! (`CARGO_STREAM_CONFIG_DIR`) and its own submission records (`CARGO_STREAM_STATE_DIR`) in a
//! temporary folder, so that tests never see each other's or the user's.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::jobs::{self, checkpoint_times};
use crate::{Run, cargo_stream, run};

/// A client with its own configuration and records.
pub struct Client {
    dir: tempfile::TempDir,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client with no clusters and no records.
    pub fn new() -> Client {
        let dir = tempfile::Builder::new()
            .prefix("cargo-stream-client-")
            .tempdir()
            .expect("a temporary folder");
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        Client { dir }
    }

    /// Its folder (for files a test makes).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The user cluster file, `clusters.toml`.
    pub fn clusters_file(&self) -> PathBuf {
        self.dir.path().join("config/clusters.toml")
    }

    /// Writes `clusters.toml`.
    pub fn set_clusters(&self, toml: &str) {
        std::fs::write(self.clusters_file(), toml).expect("write clusters.toml");
    }

    /// `cargo stream ARGS` with this client's configuration and records.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = cargo_stream(self.dir.path(), args);
        cmd.env("CARGO_STREAM_CONFIG_DIR", self.dir.path().join("config"))
            .env("CARGO_STREAM_STATE_DIR", self.dir.path().join("state"))
            .env_remove("CARGO_STREAM_CLUSTER");
        cmd
    }

    /// Runs `cargo stream ARGS` (two minutes at most).
    pub fn run(&self, args: &[&str]) -> Run {
        run(&mut self.cmd(args), Duration::from_secs(120))
    }

    /// `cargo stream submit --cluster CLUSTER --artifact JAR FLAGS... -- ARGS...`.
    pub fn submit(&self, cluster: &str, jar: &str, flags: &[&str], args: &[&str]) -> Run {
        let mut all = vec!["submit", "--cluster", cluster, "--artifact", jar];
        all.extend_from_slice(flags);
        if !args.is_empty() {
            all.push("--");
            all.extend_from_slice(args);
        }
        self.run(&all)
    }

    /// Submits the running word count ([`jobs::running_word_count`]) to `cluster` with `--json`
    /// and `flags`, reading from the text server on 127.0.0.1:`port`; the run and the ID.
    pub fn submit_word_count(&self, cluster: &str, port: &str, flags: &[&str]) -> (Run, String) {
        let jar = jobs::running_word_count();
        let mut all = vec!["--json"];
        all.extend_from_slice(flags);
        let out = self
            .submit(
                cluster,
                jar.to_str().expect("a UTF-8 path"),
                &all,
                &["127.0.0.1", port],
            )
            .success();
        let id = submitted_id(&out.stdout);
        (out, id)
    }

    /// Submits the job that ends by itself ([`jobs::finite`]) with `--wait`: it must exit 0,
    /// FINISHED, and its log must show its batches. The submit run (its stdout is the ID).
    pub fn submit_finite(&self, cluster: &str) -> Run {
        let jar = jobs::finite().to_str().expect("a UTF-8 path");
        let out = self.submit(cluster, jar, &["--wait"], &[]).success();
        assert!(out.stderr.contains("FINISHED"), "{}", out.stderr);
        let log = self.run(&["logs", out.stdout.trim()]).success();
        assert!(
            log.stdout.contains("done after 3 batches"),
            "{}",
            log.stdout
        );
        out
    }

    /// Submits [`jobs::finite`] asked to fail, with `--wait`: it must exit non-zero, FAILED, and
    /// its stderr log must say why. The submit run (its stdout is the ID).
    pub fn submit_failing(&self, cluster: &str) -> Run {
        let jar = jobs::finite().to_str().expect("a UTF-8 path");
        let out = self.submit(cluster, jar, &["--wait"], &["fail"]).failure();
        assert!(out.stderr.contains("ended FAILED"), "{}", out.stderr);
        let errors = self.run(&["logs", out.stdout.trim(), "--stderr"]).success();
        assert!(errors.stdout.contains("asked to fail"), "{}", errors.stdout);
        out
    }

    /// `cargo stream status ID --json`.
    pub fn status(&self, id: &str) -> serde_json::Value {
        let out = self.run(&["status", id, "--json"]).success();
        serde_json::from_str(out.stdout.trim()).expect("status --json prints one object")
    }

    /// Polls `status` until the state is `state`, failing the test after `limit` or on a
    /// different final state.
    pub fn wait_for_state(&self, id: &str, state: &str, limit: Duration) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let status = self.status(id);
            if status["state"] == state {
                return status;
            }
            let is_final = ["FINISHED", "FAILED", "KILLED", "ERROR"]
                .iter()
                .any(|s| status["state"] == *s);
            assert!(
                !is_final && Instant::now() < deadline,
                "`{id}` did not reach {state} within {limit:?}: {status}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Lets a few batches pass, then `cargo stream kill ID --json`: the job must end KILLED
    /// with a checkpoint in `checkpoints` newer than any before the kill. Returns the run and
    /// its JSON.
    pub fn kill_expecting_final_checkpoint(
        &self,
        id: &str,
        checkpoints: &Path,
    ) -> (Run, serde_json::Value) {
        std::thread::sleep(Duration::from_secs(2));
        let before = checkpoint_times(checkpoints);
        let out = self.run(&["kill", id, "--json"]).success();
        let killed: serde_json::Value =
            serde_json::from_str(out.stdout.trim()).expect("kill --json prints one object");
        assert_eq!(killed["state"], "KILLED", "{killed}\n{}", out.stderr);
        let after = checkpoint_times(checkpoints);
        assert!(
            after.last() > before.last(),
            "no final checkpoint: before {before:?}, after {after:?}\n{}",
            self.run(&["logs", id, "--stderr"]).stdout
        );
        (out, killed)
    }

    /// The `cargo stream list --json` line of `id`.
    pub fn listed(&self, id: &str) -> serde_json::Value {
        let out = self.run(&["list", "--json"]).success();
        let line = out
            .stdout
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("`{id}` is not listed:\n{}", out.stdout));
        serde_json::from_str(line).expect("one JSON object per line")
    }

    /// Polls `logs ID` until its output contains `needle`; returns the output.
    pub fn wait_for_log(&self, id: &str, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let out = self.run(&["logs", id]);
            if out.stdout.contains(needle) {
                return out.stdout;
            }
            assert!(
                Instant::now() < deadline,
                "the log of `{id}` did not show {needle:?} within {limit:?}:\n{}\n--- stderr\n{}",
                out.stdout,
                out.stderr
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// The ID in the `submitted` line that `cargo stream submit --json` prints.
pub fn submitted_id(stdout: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(value["reason"], "submitted", "{value}");
    value["id"].as_str().expect("an id").to_owned()
}
