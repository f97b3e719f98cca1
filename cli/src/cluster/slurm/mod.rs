//! `slurm`: jobs run as Slurm batch jobs, submitted through slurmrestd's REST API with the
//! user's JWT (`scontrol token`).
//!
//! ```toml
//! [clusters.hpc]
//! kind = "slurm"
//! url = "http://login1:6820"              # slurmrestd
//! user = "alice"                          # default: the token's user
//! token-env = "SLURM_JWT"                 # the default; or token-file = "~/.slurm-token"
//! partition = "batch"
//! api-version = "v0.0.38"                 # the default (Slurm 22.05)
//! upload = { to = "dir", path = "/shared/alice/jobs" }
//! kill-grace = 30
//! ```
//!
//! The jar is staged in the upload folder (`dir`: a folder of this machine; `sftp`: a folder
//! of an SSH host, a login node say), which the nodes must see (at the same path, or at the
//! `file://` base given as `upload.url`). Each submission gets a folder `jobs/<name>-<time>/`
//! there ([`folder`]): the job's working directory, with its `stdout` and `stderr` files (read
//! back by `logs`, over SSH for `sftp`) and the unzipped bundle. The batch script ([`script`])
//! `exec`s the job's binary, so that `kill`'s cancel (SIGTERM) reaches the job once and it
//! stops gracefully; Slurm sends SIGKILL after the cluster's `KillWait`.
//!
//! `--conf slurm.FIELD=VALUE` sets a field of the REST API's job description
//! (`slurm.time_limit=60`, `slurm.qos=debug`); other `conf` keys are Spark's, ignored here.

pub mod folder;
pub mod rest;
pub mod script;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::cluster::backend::{Backend, JobSpec, JobState, LogStream, Status, Submitted};
use crate::cluster::profile::{Profile, Upload, expand_home};
use crate::cluster::record::Record;
use crate::cluster::stage;
use crate::error::with_help;
use crate::shell::Shell;

use folder::Holder;
use rest::{Rest, TokenSource};
use script::Script;

/// The REST API version spoken unless the profile says otherwise (Slurm 22.05's newest).
pub const DEFAULT_API_VERSION: &str = "v0.0.38";

/// The `PATH` a job gets unless its `env` sets one: slurmrestd passes no environment on.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A Slurm cluster reached through slurmrestd.
#[derive(Debug)]
pub struct Slurm {
    cluster: String,
    rest: Rest,
    partition: Option<String>,
    profile: Profile,
}

impl Slurm {
    /// The backend for a `slurm` profile. Checks the keys; reads the token only when a
    /// request is made (so `logs` of a shared folder works without one).
    pub fn new(profile: &Profile) -> anyhow::Result<Slurm> {
        let l = &profile.layer;
        let url = profile.required("url", l.url.as_deref())?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(with_help(
                anyhow::anyhow!(
                    "cluster `{}`: `url = \"{url}\"` is not an HTTP URL",
                    profile.name
                ),
                "write slurmrestd's address as `url = \"http://HOST:6820\"`",
            ));
        }
        let source = match (&l.token_env, &l.token_file) {
            (Some(var), _) => TokenSource::Env(var.clone()),
            (None, Some(file)) => TokenSource::File(expand_home(file)),
            (None, None) => TokenSource::Env("SLURM_JWT".into()),
        };
        let api = l
            .api_version
            .clone()
            .unwrap_or_else(|| DEFAULT_API_VERSION.into());
        Ok(Slurm {
            cluster: profile.name.clone(),
            rest: Rest::new(&profile.name, url, &api, l.user.clone(), source)?,
            partition: l.partition.clone(),
            profile: profile.clone(),
        })
    }

    /// The job description sent to `job/submit`.
    fn description(
        &self,
        shell: &mut Shell,
        job: &JobSpec,
        jar: &str,
        dir: &str,
    ) -> anyhow::Result<Value> {
        let memory = self.memory(job)?;
        let mut environment = serde_json::Map::new();
        environment.insert("PATH".into(), DEFAULT_PATH.into());
        for (k, v) in &job.env {
            environment.insert(k.clone(), Value::String(v.clone()));
        }
        let mut description = json!({
            "name": job.name,
            "current_working_directory": dir,
            "standard_output": format!("{dir}/stdout"),
            "standard_error": format!("{dir}/stderr"),
            "standard_input": "/dev/null",
            "tasks": 1,
            "cpus_per_task": job.driver_cores.max(1),
            "memory_per_node": memory,
            "environment": environment,
        });
        if let Some(partition) = &self.partition {
            description["partition"] = Value::String(partition.clone());
        }
        if job.supervise {
            shell.warn(format!(
                "cluster `{}` is Slurm, which does not restart a job that fails: `supervise` is ignored",
                self.cluster
            ));
        }
        let mut ignored = Vec::new();
        for (key, value) in &job.conf {
            match key.strip_prefix("slurm.") {
                Some(field) if !field.is_empty() => {
                    // Numbers and booleans as JSON reads them; anything else a string.
                    let value = serde_json::from_str::<Value>(value)
                        .unwrap_or_else(|_| Value::String(value.clone()));
                    description[field] = value;
                }
                _ => ignored.push(format!("`{key}`")),
            }
        }
        if !ignored.is_empty() {
            shell.warn(format!(
                "{} only apply to Spark; a Slurm job takes `slurm.FIELD=VALUE` (slurmrestd's job fields)",
                ignored.join(", ")
            ));
        }
        let script = Script {
            jar,
            sha256: &job.sha256,
            dir,
            args: &job.args,
        }
        .render();
        Ok(json!({ "job": description, "script": script }))
    }

    /// The job's memory in MiB, or an error naming the bad value.
    fn memory(&self, job: &JobSpec) -> anyhow::Result<u64> {
        memory_mib(&job.driver_memory).map_err(|e| {
            with_help(
                e.context(format!("cluster `{}`: bad driver memory", self.cluster)),
                "write memory as Spark does: `512m`, `2g`",
            )
        })
    }

    /// `job/ID` as a status; `None` when Slurm does not know the job.
    fn query(&self, id: &str) -> anyhow::Result<Option<Value>> {
        let answer = self
            .rest
            .send(reqwest::Method::GET, &format!("job/{id}"), None)?;
        if answer.errors.iter().any(|e| e.is_unknown_job()) {
            return Ok(None);
        }
        let value = self.rest.check(answer)?;
        Ok(value["jobs"]
            .as_array()
            .and_then(|jobs| {
                jobs.iter()
                    .find(|j| j["job_id"].as_u64().is_some_and(|n| n.to_string() == id))
            })
            .cloned())
    }
}

impl Backend for Slurm {
    fn submit(&self, shell: &mut Shell, job: &JobSpec) -> anyhow::Result<Submitted> {
        let artifact = job
            .artifact
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let context = || {
            format!(
                "failed to submit `{artifact}` to cluster `{}`",
                self.cluster
            )
        };
        // A bad value, a missing or refused token, or an unreachable slurmrestd is found
        // before anything is copied: `ping` goes through slurmrestd to slurmctld with the token.
        self.memory(job).with_context(context)?;
        self.rest.check_token().with_context(context)?;
        // Slurm's nodes read the jar from a file system they share with the upload folder.
        let upload = self.profile.upload().with_context(context)?;
        self.rest.get("ping").with_context(context)?;
        let holder = Holder::of(&upload);
        let staged =
            stage::stage(shell, &upload, &job.artifact, &job.sha256).with_context(context)?;
        let (here_base, jar_name) = match staged.path.rsplit_once('/') {
            Some((dir, name)) => (dir.to_owned(), name.to_owned()),
            None => (".".to_owned(), staged.path.clone()),
        };
        // The nodes need an absolute path (`upload.path` may be relative to here).
        let here_base = match holder {
            Holder::Local => std::fs::canonicalize(&here_base)
                .with_context(|| format!("failed to resolve `{here_base}`"))
                .with_context(context)?
                .display()
                .to_string(),
            Holder::Sftp(_) => here_base,
        };
        let url_base = match &upload {
            Upload::Dir { url, .. } | Upload::Sftp { url, .. } => url.as_deref(),
        };
        let node_base = folder::node_base(&here_base, url_base).with_context(context)?;
        let dir =
            folder::create(&holder, &here_base, &node_base, &job.name).with_context(context)?;
        let node_jar = format!("{node_base}/{jar_name}");
        let body = self.description(shell, job, &node_jar, &dir.node)?;
        let answer = match self.rest.post("job/submit", &body) {
            Ok(answer) => answer,
            Err(e) => {
                // Nothing runs in it: leave no empty folder behind.
                folder::remove(&holder, &dir.here);
                return Err(e).with_context(context);
            }
        };
        let id = match &answer["job_id"] {
            Value::Number(n) => n.to_string(),
            Value::String(s) if !s.is_empty() => s.clone(),
            _ => anyhow::bail!(
                "slurmrestd accepted `{artifact}` but gave no job_id: {}",
                answer
            ),
        };
        let mut message = format!("Submitted batch job {id}");
        if let Some(note) = answer["job_submit_user_msg"]
            .as_str()
            .filter(|m| !m.is_empty())
        {
            message.push_str(&format!(" ({note})"));
        }
        Ok(Submitted {
            id,
            message,
            data: json!({
                "location": staged.url,
                "jar": node_jar,
                "files_on": holder.name(),
                "job_dir": dir.here,
                "node_job_dir": dir.node,
                "stdout": format!("{}/stdout", dir.here),
                "stderr": format!("{}/stderr", dir.here),
            }),
        })
    }

    fn status(&self, record: &Record) -> anyhow::Result<Status> {
        let job = self.query(&record.id).with_context(|| {
            format!(
                "failed to get the status of job `{}` from cluster `{}`",
                record.id, self.cluster
            )
        })?;
        Ok(match job {
            Some(job) => status_of(&job),
            None => Status {
                state: JobState::Unknown,
                message: Some(format!(
                    "Slurm does not know job {} (any more: the controller forgets ended jobs after its `MinJobAge`)",
                    record.id
                )),
                location: None,
            },
        })
    }

    fn kill(&self, record: &Record, grace: Duration) -> anyhow::Result<String> {
        // Slurm's cancel (what `scancel` does): SIGCONT and SIGTERM to every process of the
        // job (the job's binary only: the script `exec`s it), then SIGKILL after the cluster's
        // `KillWait`. The job is CANCELLED either way. We wait for its end up to `grace`.
        let context = || {
            format!(
                "failed to kill job `{}` on cluster `{}`",
                record.id, self.cluster
            )
        };
        let before = self.status(record).with_context(context)?;
        if before.state.is_final() {
            return Ok(format!(
                "job {} had already ended {}",
                record.id, before.state
            ));
        }
        let answer = self
            .rest
            .send(reqwest::Method::DELETE, &format!("job/{}", record.id), None)
            .with_context(context)?;
        if answer.errors.iter().any(|e| e.is_unknown_job()) {
            return Ok(format!("Slurm does not know job {} (any more)", record.id));
        }
        self.rest.check(answer).with_context(context)?;
        let deadline = Instant::now() + grace;
        loop {
            let status = self.status(record)?;
            if status.state.is_final() {
                return Ok(format!(
                    "job {} cancelled: SIGTERM sent; it ended {}",
                    record.id, status.state
                ));
            }
            if Instant::now() >= deadline {
                return Ok(format!(
                    "job {} cancelled: SIGTERM sent; Slurm sends SIGKILL after the cluster's KillWait if it has not stopped by then",
                    record.id
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn logs(&self, record: &Record, stream: LogStream, offset: u64) -> anyhow::Result<Vec<u8>> {
        let Some(path) = record.data[stream.name()].as_str() else {
            anyhow::bail!(
                "the record of job `{}` does not say where its {} is",
                record.id,
                stream.name()
            );
        };
        let holder = match record.data["files_on"].as_str() {
            Some("sftp") => Holder::of(&self.profile.upload()?),
            _ => Holder::Local,
        };
        folder::read_from(&holder, path, offset).with_context(|| {
            format!(
                "failed to read the {} of job `{}` of cluster `{}`",
                stream.name(),
                record.id,
                self.cluster
            )
        })
    }
}

/// Spark's memory notation (`512m`, `2g`, `1024k`; a bare number is MiB) in MiB.
pub fn memory_mib(text: &str) -> anyhow::Result<u64> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "m"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| anyhow::anyhow!("`{text}` is not an amount of memory"))?;
    let mib = match unit {
        "k" => n.div_ceil(1024),
        "m" => n,
        "g" => n * 1024,
        "t" => n * 1024 * 1024,
        _ => anyhow::bail!("`{text}` has an unknown unit (use k, m, g or t)"),
    };
    if mib == 0 {
        anyhow::bail!("`{text}` is no memory at all");
    }
    Ok(mib)
}

/// A job of `job/ID`'s `jobs` list as a status.
fn status_of(job: &Value) -> Status {
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
fn map_state(slurm: &str) -> JobState {
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
    fn memory_in_spark_notation() {
        assert_eq!(memory_mib("512m").unwrap(), 512);
        assert_eq!(memory_mib("2g").unwrap(), 2048);
        assert_eq!(memory_mib("2GB").unwrap(), 2048);
        assert_eq!(memory_mib("1536k").unwrap(), 2);
        assert_eq!(memory_mib("300").unwrap(), 300);
        assert!(memory_mib("lots").is_err());
        assert!(memory_mib("0m").is_err());
        assert!(memory_mib("3x").is_err());
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
