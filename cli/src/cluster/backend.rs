//! The one trait every cluster manager implements, and the values that cross it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cluster::record::Record;
use crate::shell::Shell;

/// Everything a backend needs to start a job.
#[derive(Clone, Debug, Serialize)]
pub struct JobSpec {
    /// The application name (Spark's `spark.app.name`, Slurm's job name).
    pub name: String,
    /// The packaged jar on this machine.
    pub artifact: PathBuf,
    /// Its sha256, hex; the copy the cluster reads is checked against it.
    pub sha256: String,
    /// The jar's main class (the Java launcher).
    pub main_class: String,
    /// Arguments for the job.
    pub args: Vec<String>,
    /// Environment variables for the job. Their values are secrets: serialized (a dry run's
    /// plan) as names only, and each backend passes them without a command line.
    #[serde(serialize_with = "crate::cluster::secret::serialize_names_only")]
    pub env: BTreeMap<String, String>,
    /// Driver cores.
    pub driver_cores: u32,
    /// Driver memory, in Spark's notation (`512m`, `2g`).
    pub driver_memory: String,
    /// Whether the cluster restarts a driver that fails.
    pub supervise: bool,
    /// Extra properties (Spark's `--conf K=V`).
    pub conf: BTreeMap<String, String>,
}

/// The environment variable that tells a job which instance it is (`0..N`).
pub const INSTANCE_VAR: &str = "CARGO_STREAM_INSTANCE";
/// The environment variable that tells a job how many instances it has (`N`).
pub const INSTANCES_VAR: &str = "CARGO_STREAM_INSTANCES";

impl JobSpec {
    /// The job as instance `index` of `count`: its environment names both
    /// ([`INSTANCE_VAR`], [`INSTANCES_VAR`]), which the runtime reads to take its share of
    /// the input.
    pub fn instance(&self, index: u32, count: u32) -> JobSpec {
        let mut job = self.clone();
        job.env.insert(INSTANCE_VAR.to_owned(), index.to_string());
        job.env.insert(INSTANCES_VAR.to_owned(), count.to_string());
        job
    }
}

/// What a backend answers to a submission.
#[derive(Clone, Debug)]
pub struct Submitted {
    /// The cluster's ID for the job (a Spark driver ID, a Slurm job ID, ...).
    pub id: String,
    /// The cluster's own words about it.
    pub message: String,
    /// Where the cluster read the artifact from.
    pub location: String,
    /// What the backend needs later to follow the job (which master took it, the remote
    /// folder, ...); kept in the local record.
    pub data: Payload,
}

/// What each backend keeps in a record to follow its job, typed by kind. Only the backend
/// that wrote a payload reads it ([`Record::payload`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Payload {
    /// `spark-rest`.
    SparkRest(crate::cluster::backends::spark_rest::Submission),
    /// `spark-ssh`.
    SparkSsh(crate::cluster::backends::spark_ssh::Submission),
    /// `ssh`.
    Ssh(crate::cluster::backends::ssh_host::Submission),
    /// `slurm`.
    Slurm(crate::cluster::backends::slurm::Submission),
}

/// A backend's own payload type, found in a [`Payload`].
pub trait OwnPayload: Sized {
    /// The payload, if `data` holds this backend's.
    fn of(data: &Payload) -> Option<&Self>;
}

macro_rules! own_payload {
    ($($variant:ident => $ty:ty),*) => {$(
        impl OwnPayload for $ty {
            fn of(data: &Payload) -> Option<&Self> {
                match data {
                    Payload::$variant(own) => Some(own),
                    _ => None,
                }
            }
        }
    )*};
}

own_payload!(
    SparkRest => crate::cluster::backends::spark_rest::Submission,
    SparkSsh => crate::cluster::backends::spark_ssh::Submission,
    Ssh => crate::cluster::backends::ssh_host::Submission,
    Slurm => crate::cluster::backends::slurm::Submission
);

impl Payload {
    /// A record's payload: tagged with its kind, or as records written before the tag were
    /// (the same keys, untagged: the kind is told by the key only its backend writes).
    pub fn from_record<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Payload, D::Error> {
        Ok(match RecordPayload::deserialize(d)? {
            RecordPayload::Tagged(payload) => payload,
            RecordPayload::Untagged(Untagged::SparkRest(own)) => Payload::SparkRest(own),
            RecordPayload::Untagged(Untagged::Slurm(own)) => Payload::Slurm(own),
            RecordPayload::Untagged(Untagged::Ssh(own)) => Payload::Ssh(own),
            RecordPayload::Untagged(Untagged::SparkSsh(own)) => Payload::SparkSsh(own),
        })
    }
}

/// A payload as each version of the record wrote it.
#[derive(Deserialize)]
#[serde(untagged)]
enum RecordPayload {
    /// Tagged with its `kind` (this version).
    Tagged(Payload),
    /// Before the tag.
    Untagged(Untagged),
}

/// An untagged payload: the first kind whose required keys it has, in an order where no
/// kind's keys are a subset of an earlier one's (`spark-rest` has `gateway`, `slurm`
/// `files_on`, `ssh` `dir`; `spark-ssh` only `appResource`, which `spark-rest` has too).
#[derive(Deserialize)]
#[serde(untagged)]
enum Untagged {
    SparkRest(crate::cluster::backends::spark_rest::Submission),
    Slurm(crate::cluster::backends::slurm::Submission),
    Ssh(crate::cluster::backends::ssh_host::Submission),
    SparkSsh(crate::cluster::backends::spark_ssh::Submission),
}

/// A job's state, in Spark's driver states; other cluster managers map onto them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Accepted, not started yet.
    Submitted,
    /// Running.
    Running,
    /// Restarting after a failure (supervised).
    Relaunching,
    /// Ended by itself with exit code 0.
    Finished,
    /// Ended with a non-zero exit code.
    Failed,
    /// Stopped on request.
    Killed,
    /// Could not be started (the cluster says why).
    Error,
    /// The cluster does not know it (any more).
    Unknown,
}

impl JobState {
    /// Whether the job can no longer change state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Finished | JobState::Failed | JobState::Killed | JobState::Error
        )
    }

    /// Whether the job ended well: only `FINISHED` is.
    pub fn is_success(self) -> bool {
        self == JobState::Finished
    }

    /// Parses Spark's spelling (`RUNNING`, ...).
    pub fn parse(text: &str) -> Option<JobState> {
        use serde::de::IntoDeserializer as _;
        let upper = text.to_ascii_uppercase();
        let d: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            upper.as_str().into_deserializer();
        JobState::deserialize(d).ok()
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = serde_json::to_value(self).map_err(|_| std::fmt::Error)?;
        f.write_str(value.as_str().unwrap_or("UNKNOWN"))
    }
}

/// A job's status as the cluster reports it.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The state.
    pub state: JobState,
    /// The cluster's message, if it gave one (the reason of an `ERROR`, say).
    pub message: Option<String>,
    /// Where the job runs (a worker, a node, a host), if known.
    pub location: Option<String>,
}

/// Which of a job's output streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// The job's standard output (what `print` writes).
    Stdout,
    /// The job's standard error (logs and errors).
    Stderr,
}

impl LogStream {
    /// `stdout` or `stderr`.
    pub fn name(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// A cluster manager: starts jobs and follows them.
///
/// Each kind of cluster profile (`spark-rest`, `spark-ssh`, `ssh`, `slurm`) has one
/// implementation in a module of its own under `cluster/backends/`.
pub trait Backend {
    /// Makes the artifact readable by the cluster and starts the job.
    fn submit(&self, shell: &mut Shell, job: &JobSpec) -> anyhow::Result<Submitted>;
    /// Starts `count` instances of the job (`--instances N`), pushing each one started onto
    /// `started` (so that the caller records those that run when a later one fails). By
    /// default, `count` submissions of [`JobSpec::instance`]; a cluster manager that starts
    /// instances as one job (Slurm's tasks) answers one [`Submitted`] per instance, sharing
    /// its ID.
    fn submit_instances(
        &self,
        shell: &mut Shell,
        job: &JobSpec,
        count: u32,
        started: &mut Vec<Submitted>,
    ) -> anyhow::Result<()> {
        for index in 0..count {
            if count > 1 {
                shell.status("Instance", format!("{index} of {count}"));
            }
            let submitted = if count == 1 {
                self.submit(shell, job)?
            } else {
                self.submit(shell, &job.instance(index, count))?
            };
            started.push(submitted);
        }
        Ok(())
    }
    /// The job's current status.
    fn status(&self, record: &Record) -> anyhow::Result<Status>;
    /// Asks the job to stop: SIGTERM first, so that it checkpoints; after `grace` (where the
    /// cluster manager lets us choose), forced. Returns the cluster's message.
    fn kill(&self, record: &Record, grace: Duration) -> anyhow::Result<String>;
    /// The bytes of a log from byte `offset` on (empty when there is nothing new).
    fn logs(&self, record: &Record, stream: LogStream, offset: u64) -> anyhow::Result<Vec<u8>>;
    /// What a record keeps to follow job `id`, for a job this machine has no record of (a
    /// teammate's, CI's): `status`, `kill` and `logs` with `--cluster NAME ID`.
    fn adopt(&self, id: &str) -> anyhow::Result<Payload> {
        anyhow::bail!("this kind of cluster cannot follow `{id}` without a local record")
    }
    /// The jobs the cluster knows, whoever submitted them (`list --cluster NAME`).
    fn jobs(&self) -> anyhow::Result<Vec<Listed>> {
        anyhow::bail!("this kind of cluster cannot list its jobs")
    }
}

/// A job as the cluster lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// The cluster's ID for it.
    pub id: String,
    /// Its state.
    pub state: JobState,
    /// Its name, where the cluster keeps one.
    pub name: Option<String>,
    /// When it was submitted (seconds since the Unix epoch), where the cluster says.
    pub submitted_at: Option<u64>,
}
