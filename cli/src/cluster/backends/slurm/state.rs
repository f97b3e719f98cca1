//! Slurm's job states onto cargo-stream's (Spark's driver states), and a job's record (the
//! fields of slurmrestd's `job/ID`, which the `sbatch` way builds from `scontrol show job`) as a
//! [`Status`]: one mapping for both ways of reaching Slurm.
//!
//! [`Job`] reads the fields of every slurmrestd version we may meet: v0.0.38 (Slurm 22.05)
//! gives `job_state` as one string and `exit_code` as a wait(2) status; v0.0.40 and later give
//! `job_state` as a list (the base state and its flags) and `exit_code` as an object
//! (`{"status": [...], "return_code": {"set", "infinite", "number"}, "signal": {...}}`), and
//! wrap numbers that may be unset in `{"set", "infinite", "number"}`.

use serde::Deserialize;

use crate::cluster::backend::{JobState, Status};

/// A job of slurmrestd's `job/ID` (its `jobs` list): the fields read here, every other one
/// ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Job {
    /// The job's ID.
    pub job_id: Option<NoVal>,
    /// Its state: v0.0.38's one string, or later versions' base state and flags.
    #[serde(deserialize_with = "one_or_many")]
    pub job_state: Vec<String>,
    /// Why it is in that state (`Resources`, `NonZeroExitCode`; `None` for no reason).
    pub state_reason: Option<String>,
    /// Slurm's words about the state, if any.
    pub state_description: Option<String>,
    /// How it ended.
    pub exit_code: Option<ExitCode>,
    /// The node running its batch script.
    pub batch_host: Option<String>,
    /// The nodes it holds.
    pub nodes: Option<String>,
    /// Its name.
    pub name: Option<String>,
    /// Its working directory, as the nodes see it (a cargo-stream job's folder).
    pub current_working_directory: Option<String>,
    /// When it was submitted, in seconds since the Unix epoch.
    pub submit_time: Option<NoVal>,
}

/// A number slurmrestd may leave unset: plain in v0.0.38, `{"set", "infinite", "number"}`
/// later (`uint32_no_val_struct` in Slurm's OpenAPI).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum NoVal {
    /// A plain number.
    Plain(u64),
    /// The structure.
    Struct {
        /// Whether `number` is set.
        #[serde(default)]
        set: bool,
        /// Whether the value is infinite.
        #[serde(default)]
        infinite: bool,
        /// The value, when `set` and not `infinite`.
        #[serde(default)]
        number: u64,
    },
}

impl NoVal {
    /// The value, if it is set and finite.
    pub fn get(self) -> Option<u64> {
        match self {
            NoVal::Plain(n) => Some(n),
            NoVal::Struct {
                set: true,
                infinite: false,
                number,
            } => Some(number),
            NoVal::Struct { .. } => None,
        }
    }
}

/// How a job ended: v0.0.38's wait(2) status, or later versions' verbose object
/// (`process_exit_code_verbose`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ExitCode {
    /// A wait(2) status: the exit code in the high byte, a signal in the low bits.
    WaitStatus(u64),
    /// `{"status": ["EXITED"], "return_code": ..., "signal": {"id": ..., "name": ...}}`.
    Verbose {
        /// `EXITED`, `SIGNALED`, `CORE_DUMPED`, ... (a string in some versions).
        #[serde(default, deserialize_with = "one_or_many")]
        status: Vec<String>,
        /// The exit code.
        #[serde(default)]
        return_code: Option<NoVal>,
        /// The signal that ended it, if one did.
        #[serde(default)]
        signal: Option<Signal>,
    },
}

/// The signal of a verbose exit code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Signal {
    /// Its number.
    pub id: Option<NoVal>,
    /// Its name (`TERM`), if given.
    pub name: Option<String>,
}

impl ExitCode {
    /// The exit code and the signal number (0 for none).
    pub fn exit_and_signal(&self) -> (u64, u64) {
        match self {
            ExitCode::WaitStatus(code) => (code >> 8, code & 0x7f),
            ExitCode::Verbose {
                return_code,
                signal,
                ..
            } => (
                return_code.and_then(NoVal::get).unwrap_or(0),
                signal
                    .as_ref()
                    .and_then(|s| s.id)
                    .and_then(NoVal::get)
                    .unwrap_or(0),
            ),
        }
    }
}

/// A string or a list of strings (or `null`) as a list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(one)) => vec![one],
        Some(OneOrMany::Many(many)) => many,
    })
}

/// The flags Slurm's `job_state_string` names in place of the base state, in its order.
const SHOWN_FLAGS: [&str; 12] = [
    "COMPLETING",
    "STAGE_OUT",
    "CONFIGURING",
    "RESIZING",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "SPECIAL_EXIT",
    "STOPPED",
    "REVOKED",
    "RESV_DEL_HOLD",
    "SIGNALING",
];

impl Job {
    /// The job's state as one word, as v0.0.38 and `scontrol` give it: the first flag Slurm
    /// names in place of the base state (`COMPLETING`, ...), else the base state.
    pub fn state(&self) -> &str {
        match self.job_state.as_slice() {
            [] => "UNKNOWN",
            [one] => one,
            [base, ..] => SHOWN_FLAGS
                .iter()
                .find(|flag| self.job_state.iter().any(|s| s == *flag))
                .copied()
                .unwrap_or(base),
        }
    }

    /// Whether this is job `id`.
    pub fn is(&self, id: &str) -> bool {
        self.job_id
            .and_then(NoVal::get)
            .is_some_and(|n| n.to_string() == id)
    }
}

/// A job of `job/ID`'s `jobs` list as a status: `job_state`, `state_reason`,
/// `state_description`, `exit_code`, `batch_host` and `nodes` are read.
pub fn status_of(job: &Job) -> Status {
    let slurm_state = job.state();
    let state = map_state(slurm_state);
    let reason = job
        .state_reason
        .as_deref()
        .filter(|r| !r.is_empty() && *r != "None");
    let description = job.state_description.as_deref().filter(|d| !d.is_empty());
    let mut parts: Vec<String> = Vec::new();
    if state != JobState::Running || slurm_state != "RUNNING" {
        parts.push(format!("Slurm state {slurm_state}"));
    }
    if let Some(reason) = reason {
        parts.push(format!("reason {reason}"));
    }
    if let Some(description) = description {
        parts.push(description.to_owned());
    }
    if state.is_final()
        && state != JobState::Finished
        && let Some(code) = &job.exit_code
    {
        let (exit, signal) = code.exit_and_signal();
        if signal != 0 {
            parts.push(format!("killed by signal {signal}"));
        } else if exit != 0 {
            parts.push(format!("exit code {exit}"));
        }
    }
    let location = [&job.batch_host, &job.nodes]
        .into_iter()
        .flatten()
        .find(|h| !h.is_empty())
        .cloned();
    Status {
        state,
        message: (!parts.is_empty()).then(|| parts.join(", ")),
        location,
    }
}

/// The status of a job of several `srun` tasks: as [`status_of`], except that a job whose
/// tasks all stopped on SIGTERM is `KILLED`. `cargo stream kill` signals such a job's tasks,
/// not the job (so that each gets one SIGTERM and checkpoints), and the job then ends by
/// itself: FAILED with `srun`'s exit code 143 (128 + SIGTERM), where `scancel` would have
/// made it CANCELLED.
pub fn tasks_status_of(job: &Job) -> Status {
    let mut status = status_of(job);
    let exit = job.exit_code.as_ref().map(ExitCode::exit_and_signal);
    if status.state == JobState::Failed && exit == Some((143, 0)) {
        status.state = JobState::Killed;
        status.message = Some("its tasks stopped on SIGTERM (exit code 143)".to_owned());
    }
    status
}

/// Slurm's job states onto Spark's driver states.
pub fn map_state(slurm: &str) -> JobState {
    // v0.0.38 gives the base state; a flag (`COMPLETING`, ...) may stand in its place.
    match slurm {
        "PENDING" | "CONFIGURING" | "REQUEUE_HOLD" | "RESV_DEL_HOLD" => JobState::Submitted,
        "RUNNING" | "COMPLETING" | "SUSPENDED" | "STOPPED" | "RESIZING" | "SIGNALING"
        | "STAGE_OUT" => JobState::Running,
        "REQUEUED" | "REQUEUE_FED" => JobState::Relaunching,
        "COMPLETED" => JobState::Finished,
        "FAILED" | "TIMEOUT" | "OUT_OF_MEMORY" | "NODE_FAIL" | "PREEMPTED" | "DEADLINE"
        | "SPECIAL_EXIT" => JobState::Failed,
        "CANCELLED" | "REVOKED" => JobState::Killed,
        "BOOT_FAIL" | "LAUNCH_FAILED" => JobState::Error,
        _ => JobState::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_stopped_on_sigterm_are_killed() {
        let job = |state: &str, code: u64| Job {
            job_state: vec![state.to_owned()],
            exit_code: Some(ExitCode::WaitStatus(code)),
            ..Job::default()
        };
        assert_eq!(
            tasks_status_of(&job("FAILED", 143 << 8)).state,
            JobState::Killed
        );
        assert_eq!(
            tasks_status_of(&job("FAILED", 1 << 8)).state,
            JobState::Failed
        );
        assert_eq!(tasks_status_of(&job("FAILED", 15)).state, JobState::Failed);
        assert_eq!(
            tasks_status_of(&job("COMPLETED", 0)).state,
            JobState::Finished
        );
        assert_eq!(status_of(&job("FAILED", 143 << 8)).state, JobState::Failed);
    }

    fn job(json: &str) -> Job {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn slurm_states_map_onto_spark_states() {
        for (slurm, ours) in [
            ("PENDING", JobState::Submitted),
            ("RUNNING", JobState::Running),
            ("COMPLETING", JobState::Running),
            ("COMPLETED", JobState::Finished),
            ("FAILED", JobState::Failed),
            ("TIMEOUT", JobState::Failed),
            ("OUT_OF_MEMORY", JobState::Failed),
            ("NODE_FAIL", JobState::Failed),
            ("CANCELLED", JobState::Killed),
            ("BOOT_FAIL", JobState::Error),
            ("WHATEVER", JobState::Unknown),
        ] {
            assert_eq!(map_state(slurm), ours, "{slurm}");
        }
    }

    #[test]
    fn statuses_carry_reason_and_exit_code() {
        // v0.0.38 (Slurm 22.05): one state, the exit code a wait(2) status.
        let status = status_of(&job(
            r#"{"job_id": 7, "job_state": "FAILED", "state_reason": "NonZeroExitCode",
                "state_description": "", "exit_code": 768, "batch_host": "n1", "nodes": "n1",
                "time_limit": 60, "flags": ["JOB_WAS_RUNNING"]}"#,
        ));
        assert_eq!(status.state, JobState::Failed);
        assert_eq!(
            status.message.as_deref(),
            Some("Slurm state FAILED, reason NonZeroExitCode, exit code 3")
        );
        assert_eq!(status.location.as_deref(), Some("n1"));
        let running = status_of(&job(r#"{"job_state": "RUNNING", "state_reason": "None"}"#));
        assert_eq!((running.state, running.message), (JobState::Running, None));
        let pending = status_of(&job(
            r#"{"job_state": "PENDING", "state_reason": "Resources"}"#,
        ));
        assert_eq!(
            pending.message.as_deref(),
            Some("Slurm state PENDING, reason Resources")
        );
        let signalled = status_of(&job(r#"{"job_state": "CANCELLED", "exit_code": 15}"#));
        assert_eq!(
            signalled.message.as_deref(),
            Some("Slurm state CANCELLED, killed by signal 15")
        );
    }

    #[test]
    fn later_api_versions_read_the_same() {
        // v0.0.40 and later: the state a list, the exit code `process_exit_code_verbose`,
        // numbers `uint32_no_val_struct`.
        let failed = job(r#"{
            "job_id": 7, "job_state": ["FAILED"], "state_reason": "NonZeroExitCode",
            "state_description": "", "batch_host": "n1", "nodes": "n1",
            "time_limit": {"set": true, "infinite": false, "number": 60},
            "exit_code": {"status": ["EXITED"],
                          "return_code": {"set": true, "infinite": false, "number": 3},
                          "signal": {"id": {"set": false, "infinite": false, "number": 0},
                                     "name": ""}}
        }"#);
        assert!(failed.is("7"));
        let status = status_of(&failed);
        assert_eq!(status.state, JobState::Failed);
        assert_eq!(
            status.message.as_deref(),
            Some("Slurm state FAILED, reason NonZeroExitCode, exit code 3")
        );
        assert_eq!(status.location.as_deref(), Some("n1"));
        // v0.0.40's plain `return_code`, and a signal.
        let killed = job(r#"{
            "job_id": {"set": true, "infinite": false, "number": 8},
            "job_state": ["CANCELLED"],
            "exit_code": {"status": ["SIGNALED"], "return_code": 0,
                          "signal": {"id": {"set": true, "infinite": false, "number": 9},
                                     "name": "KILL"}}
        }"#);
        assert!(killed.is("8") && !killed.is("80"));
        assert_eq!(
            status_of(&killed).message.as_deref(),
            Some("Slurm state CANCELLED, killed by signal 9")
        );
        // A base state with flags reads as v0.0.38 named it: the flag first.
        let completing = job(r#"{"job_state": ["CANCELLED", "COMPLETING"]}"#);
        assert_eq!(completing.state(), "COMPLETING");
        assert_eq!(status_of(&completing).state, JobState::Running);
        assert_eq!(
            job(r#"{"job_state": ["RUNNING", "FOO"]}"#).state(),
            "RUNNING"
        );
        assert_eq!(job(r#"{"job_state": null}"#).state(), "UNKNOWN");
        let unset = NoVal::Struct {
            set: false,
            infinite: false,
            number: 0,
        };
        assert_eq!(unset.get(), None);
    }
}
