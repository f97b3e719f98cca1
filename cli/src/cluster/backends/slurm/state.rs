//! Slurm's job states onto cargo-stream's (Spark's driver states), and a job's record (the
//! fields of slurmrestd's `job/ID`, which the `sbatch` way builds from `scontrol show job`) as a
//! [`Status`]: one mapping for both ways of reaching Slurm.

use serde_json::Value;

use crate::cluster::backend::{JobState, Status};

/// A job of `job/ID`'s `jobs` list as a status: `job_state`, `state_reason`,
/// `state_description`, `exit_code` (a wait(2) status), `batch_host` and `nodes` are read.
pub fn status_of(job: &Value) -> Status {
    let slurm_state = job["job_state"].as_str().unwrap_or("UNKNOWN");
    let state = map_state(slurm_state);
    let reason = job["state_reason"]
        .as_str()
        .filter(|r| !r.is_empty() && *r != "None");
    let description = job["state_description"].as_str().filter(|d| !d.is_empty());
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
        && let Some(code) = job["exit_code"].as_u64()
    {
        // A wait(2) status: the exit code in the high byte, a signal in the low bits.
        let (exit, signal) = (code >> 8, code & 0x7f);
        if signal != 0 {
            parts.push(format!("killed by signal {signal}"));
        } else if exit != 0 {
            parts.push(format!("exit code {exit}"));
        }
    }
    let location = job["batch_host"]
        .as_str()
        .or(job["nodes"].as_str())
        .filter(|h| !h.is_empty())
        .map(str::to_owned);
    Status {
        state,
        message: (!parts.is_empty()).then(|| parts.join(", ")),
        location,
    }
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
    use serde_json::json;

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
        let status = status_of(&json!({
            "job_state": "FAILED", "state_reason": "NonZeroExitCode", "state_description": "",
            "exit_code": 768, "batch_host": "n1", "nodes": "n1"
        }));
        assert_eq!(status.state, JobState::Failed);
        assert_eq!(
            status.message.as_deref(),
            Some("Slurm state FAILED, reason NonZeroExitCode, exit code 3")
        );
        assert_eq!(status.location.as_deref(), Some("n1"));
        let running = status_of(&json!({"job_state": "RUNNING", "state_reason": "None"}));
        assert_eq!((running.state, running.message), (JobState::Running, None));
        let pending = status_of(&json!({"job_state": "PENDING", "state_reason": "Resources"}));
        assert_eq!(
            pending.message.as_deref(),
            Some("Slurm state PENDING, reason Resources")
        );
    }
}
