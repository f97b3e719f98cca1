//! What a Spark standalone master answers, typed: its REST submission gateway's answers
//! (Spark's `SubmitRestProtocolResponse` family, one struct since they share their fields) and
//! its web UI's `/json/` state (`JsonProtocol.writeMasterState`), the fields the `spark-rest`
//! and `spark-ssh` backends read. Every field is optional: masters of other versions leave
//! some out, and unknown ones are ignored.

use serde::Deserialize;

use crate::cluster::backend::{JobState, Listed};

/// An answer of the REST gateway (`CreateSubmissionResponse`, `SubmissionStatusResponse`,
/// `KillSubmissionResponse`, `ErrorResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RestAnswer {
    /// Whether the master did what was asked.
    pub success: Option<bool>,
    /// Its words.
    pub message: Option<String>,
    /// The new driver's ID (create).
    pub submission_id: Option<String>,
    /// The master's Spark version.
    pub server_spark_version: Option<String>,
    /// The driver's state, in Spark's spelling (status).
    pub driver_state: Option<String>,
    /// The worker running the driver (status).
    pub worker_id: Option<String>,
    /// That worker's `host:port` (status).
    pub worker_host_port: Option<String>,
    /// The newest protocol version the master speaks (an error of version).
    pub highest_protocol_version: Option<String>,
}

impl RestAnswer {
    /// The driver's state, `UNKNOWN` when missing or not Spark's.
    pub fn state(&self) -> JobState {
        self.driver_state
            .as_deref()
            .and_then(JobState::parse)
            .unwrap_or(JobState::Unknown)
    }
}

/// The master's `/json/`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct MasterState {
    /// Its workers.
    pub workers: Vec<Worker>,
    /// Drivers running or waiting.
    pub activedrivers: Vec<Driver>,
    /// Drivers that ended.
    pub completeddrivers: Vec<Driver>,
}

/// A worker of [`MasterState`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Worker {
    /// `worker-...`.
    pub id: String,
    /// Its web UI, `http://host:port`.
    pub webuiaddress: String,
}

/// A driver of [`MasterState`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Driver {
    /// `driver-...`.
    pub id: String,
    /// Its state, in Spark's spelling.
    pub state: String,
    /// The worker running it: its ID, or `None` while it waits for one.
    pub worker: Option<String>,
    /// When it was submitted, in milliseconds since the Unix epoch (as text).
    pub starttime: String,
}

impl MasterState {
    /// Driver `id`, active or completed, if the master lists it.
    pub fn driver(&self, id: &str) -> Option<&Driver> {
        self.activedrivers
            .iter()
            .chain(&self.completeddrivers)
            .find(|d| d.id == id)
    }

    /// Every driver the master lists, active and completed, as `list --cluster` shows them
    /// (the `spark-rest` and `spark-ssh` backends' [`crate::cluster::backend::Backend::jobs`]).
    pub fn listed(&self) -> Vec<Listed> {
        self.activedrivers
            .iter()
            .chain(&self.completeddrivers)
            .map(|driver| Listed {
                id: driver.id.clone(),
                state: driver.state(),
                name: None,
                submitted_at: driver.started_at(),
            })
            .collect()
    }

    /// The web UI of worker `id` (no trailing `/`), if the master lists it.
    pub fn worker_ui(&self, id: &str) -> Option<String> {
        self.workers
            .iter()
            .find(|w| w.id == id)
            .map(|w| w.webuiaddress.trim_end_matches('/').to_owned())
    }
}

impl Driver {
    /// The worker running it, if it has one (the master writes `None` when not).
    pub fn worker(&self) -> Option<&str> {
        self.worker.as_deref().filter(|w| *w != "None")
    }

    /// When it was submitted, in seconds since the Unix epoch, if the master says.
    pub fn started_at(&self) -> Option<u64> {
        self.starttime
            .trim()
            .parse::<u64>()
            .ok()
            .map(|ms| ms / 1000)
    }

    /// Its state, `UNKNOWN` when not Spark's.
    pub fn state(&self) -> JobState {
        JobState::parse(&self.state).unwrap_or(JobState::Unknown)
    }
}

/// The start of the line the jar's launcher writes last on the driver's stderr when the job
/// exits non-zero (`cargo-stream launcher: the job exited with code N`): Spark's status of a
/// FAILED driver carries no exit code.
pub const LAUNCHER_EXIT: &str = "cargo-stream launcher: the job exited with code ";

/// The job's exit code, from the launcher's last line in `stderr` (its tail).
pub fn launcher_exit_code(stderr: &str) -> Option<i32> {
    stderr
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix(LAUNCHER_EXIT))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// For a FAILED driver `id`: `the job exited with code N`, read from the tail of its stderr on
/// its worker's web UI (Spark's `/log` without an offset gives the last bytes), `get` fetching
/// the page; `None` when the master, the worker or the launcher does not say.
pub fn failure_message(
    get: impl Fn(&str) -> anyhow::Result<String>,
    master: &MasterState,
    id: &str,
) -> Option<String> {
    let ui = master
        .driver(id)
        .and_then(Driver::worker)
        .and_then(|worker| master.worker_ui(worker))?;
    let url = format!("{ui}/log?driverId={id}&logType=stderr&byteLength=4096");
    match get(&url) {
        Ok(tail) => {
            launcher_exit_code(&tail).map(|code| format!("the job exited with code {code}"))
        }
        Err(e) => {
            tracing::debug!("no exit code for `{id}` from {url}: {e:#}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_answers_read_as_spark_writes_them() {
        let created: RestAnswer = serde_json::from_str(
            r#"{"action": "CreateSubmissionResponse", "message": "Driver successfully submitted as driver-20261124112248-0000",
                "serverSparkVersion": "4.0.0", "submissionId": "driver-20261124112248-0000", "success": true}"#,
        )
        .unwrap();
        assert_eq!(created.success, Some(true));
        assert_eq!(
            created.submission_id.as_deref(),
            Some("driver-20261124112248-0000")
        );
        let status: RestAnswer = serde_json::from_str(
            r#"{"action": "SubmissionStatusResponse", "driverState": "RUNNING", "serverSparkVersion": "4.0.0",
                "submissionId": "driver-1", "success": true, "workerHostPort": "10.0.0.2:35000",
                "workerId": "worker-20261124112200-10.0.0.2-35000"}"#,
        )
        .unwrap();
        assert_eq!(status.state(), JobState::Running);
        assert_eq!(status.worker_host_port.as_deref(), Some("10.0.0.2:35000"));
        let error: RestAnswer = serde_json::from_str(
            r#"{"action": "ErrorResponse", "highestProtocolVersion": "v1", "message": "Unknown protocol version 'v9'.", "serverSparkVersion": "4.0.0"}"#,
        )
        .unwrap();
        assert_eq!(error.highest_protocol_version.as_deref(), Some("v1"));
        assert_eq!((error.success, error.state()), (None, JobState::Unknown));
    }

    #[test]
    fn the_master_state_finds_drivers_and_workers() {
        let state: MasterState = serde_json::from_str(
            r#"{"url": "spark://m:7077", "workers": [{"id": "worker-1", "host": "w", "port": 35000,
                "webuiaddress": "http://w:8081/", "cores": 2, "state": "ALIVE"}],
                "aliveworkers": 1, "activeapps": [], "completedapps": [],
                "activedrivers": [{"id": "driver-2", "starttime": "1", "state": "SUBMITTED",
                                   "cores": 1, "memory": 512, "submitdate": "x", "worker": "None",
                                   "mainclass": "cargostream.Launcher"}],
                "completeddrivers": [{"id": "driver-1", "state": "FINISHED", "worker": "worker-1"}],
                "status": "ALIVE"}"#,
        )
        .unwrap();
        let done = state.driver("driver-1").unwrap();
        assert_eq!(
            (done.state(), done.worker()),
            (JobState::Finished, Some("worker-1"))
        );
        let waiting = state.driver("driver-2").unwrap();
        assert_eq!(
            (waiting.state(), waiting.worker()),
            (JobState::Submitted, None)
        );
        assert_eq!(state.driver("driver-3"), None);
        let listed: Vec<(String, JobState)> = state
            .listed()
            .into_iter()
            .map(|l| (l.id, l.state))
            .collect();
        assert_eq!(
            listed,
            [
                ("driver-2".to_owned(), JobState::Submitted),
                ("driver-1".to_owned(), JobState::Finished)
            ]
        );
        assert_eq!(
            state.worker_ui("worker-1").as_deref(),
            Some("http://w:8081")
        );
        assert_eq!(state.worker_ui("worker-9"), None);
        let tail = "==== Bytes 10-20 of 20 of /w/driver-1/stderr ====\nthread 'main' panicked\n\
                    cargo-stream launcher: the job exited with code 101\n\
                    INFO ShutdownHookManager: Shutdown hook called\n";
        assert_eq!(launcher_exit_code(tail), Some(101));
        assert_eq!(launcher_exit_code("exited with code 1\n"), None);
        let get = |url: &str| {
            assert_eq!(
                url,
                "http://w:8081/log?driverId=driver-1&logType=stderr&byteLength=4096"
            );
            Ok(tail.to_owned())
        };
        assert_eq!(
            failure_message(get, &state, "driver-1").as_deref(),
            Some("the job exited with code 101")
        );
        assert_eq!(failure_message(get, &state, "driver-2"), None);
    }
}
