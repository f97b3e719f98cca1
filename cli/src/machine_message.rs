//! Machine-readable output: with `--json`, every verb writes one JSON object per line on
//! stdout, each with a `reason` naming what it is, as cargo's `machine_message.rs` does. Every
//! kind of line is a type here (or a report type elsewhere implementing [`Message`]); no verb
//! builds JSON by hand.

use std::io::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::cluster::backend::{JobState, LogStream, Payload};
use crate::cluster::{Kind, Record};

/// One line of `--json` output.
pub trait Message: Serialize {
    /// The line's `reason`.
    fn reason(&self) -> &'static str;
}

/// Writes `message` as one line on stdout, with its `reason`.
pub fn emit(message: &impl Message) -> std::io::Result<()> {
    let line = line(message)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()
}

/// `message` as one line of JSON, with its `reason`.
pub fn line(message: &impl Message) -> serde_json::Result<String> {
    #[derive(Serialize)]
    struct Line<'a, T> {
        reason: &'static str,
        #[serde(flatten)]
        message: &'a T,
    }
    serde_json::to_string(&Line {
        reason: message.reason(),
        message,
    })
}

/// An error, as `--json` reports it on stdout too (reason `error`).
#[derive(Serialize)]
pub struct Error<'a> {
    /// The error.
    pub message: &'a str,
    /// What caused it, outermost first.
    pub causes: &'a [String],
    /// How to fix it, when known.
    pub help: Option<&'a str>,
}

impl Message for Error<'_> {
    fn reason(&self) -> &'static str {
        "error"
    }
}

/// A job `kill` stopped (reason `killed`).
#[derive(Serialize)]
pub struct Killed<'a> {
    /// The submission ID.
    pub id: &'a str,
    /// Its cluster profile.
    pub cluster: &'a str,
    /// Its state after the stop.
    pub state: JobState,
    /// The cluster's answer.
    pub message: &'a str,
}

impl Message for Killed<'_> {
    fn reason(&self) -> &'static str {
        "killed"
    }
}

/// Which job a line is about.
#[derive(Serialize)]
pub struct Job<'a> {
    /// The submission ID.
    pub id: &'a str,
    /// Its cluster profile.
    pub cluster: &'a str,
    /// The profile's kind.
    pub kind: Kind,
    /// The application name.
    pub name: &'a str,
}

impl<'a> From<&'a Record> for Job<'a> {
    fn from(record: &'a Record) -> Self {
        Job {
            id: &record.id,
            cluster: &record.cluster,
            kind: record.kind,
            name: &record.name,
        }
    }
}

/// A job's status (reason `status`).
#[derive(Serialize)]
pub struct Status<'a> {
    /// The job.
    #[serde(flatten)]
    pub job: Job<'a>,
    /// The state.
    pub state: JobState,
    /// The cluster's message.
    pub message: Option<&'a str>,
    /// Where the job runs.
    pub location: Option<&'a str>,
    /// Seconds since the Unix epoch.
    pub submitted_at: u64,
    /// The running driver's streaming statistics, or why there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<&'a crate::cluster::driver_ui::DriverReport>,
}

impl Message for Status<'_> {
    fn reason(&self) -> &'static str {
        "status"
    }
}

/// One instance of a job of several, after its job's `status` line (reason `instance`).
#[derive(Serialize)]
pub struct InstanceStatus<'a> {
    /// The job's submission ID.
    pub id: &'a str,
    /// The instance's number, `0..instances`.
    pub instance: u32,
    /// How many instances the job has.
    pub instances: u32,
    /// The cluster's ID for the instance (a Spark driver ID; a Slurm job's ID for each task).
    pub cluster_id: &'a str,
    /// Its state.
    pub state: JobState,
    /// The cluster's message about it.
    pub message: Option<&'a str>,
    /// Where it runs.
    pub location: Option<&'a str>,
    /// Its driver's streaming statistics, or why there are none (while it runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<&'a crate::cluster::driver_ui::DriverReport>,
}

impl Message for InstanceStatus<'_> {
    fn reason(&self) -> &'static str {
        "instance"
    }
}

/// One recorded submission, as `list` shows it (reason `submission`).
#[derive(Serialize)]
pub struct Submission<'a> {
    /// The job.
    #[serde(flatten)]
    pub job: Job<'a>,
    /// The last state seen.
    pub state: JobState,
    /// The last message seen.
    pub message: Option<&'a str>,
    /// Seconds since the Unix epoch.
    pub submitted_at: u64,
    /// The artifact submitted.
    pub artifact: &'a Path,
    /// How many instances the job has (`--instances`); left out for one.
    #[serde(skip_serializing_if = "is_one")]
    pub instances: u32,
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl<'a> From<&'a Record> for Submission<'a> {
    fn from(record: &'a Record) -> Self {
        Submission {
            job: Job::from(record),
            state: record.state,
            message: record.message.as_deref(),
            submitted_at: record.submitted_at,
            artifact: &record.artifact,
            instances: record.instance_count(),
        }
    }
}

impl Message for Submission<'_> {
    fn reason(&self) -> &'static str {
        "submission"
    }
}

/// A piece of a job's log (reason `log`).
#[derive(Serialize)]
pub struct Log<'a> {
    /// The submission ID.
    pub id: &'a str,
    /// Which stream.
    pub stream: LogStream,
    /// The byte offset of `text` in the log.
    pub offset: u64,
    /// The bytes, as text.
    pub text: &'a str,
}

impl Message for Log<'_> {
    fn reason(&self) -> &'static str {
        "log"
    }
}

/// A submission's record without its profile: `submitted` after `submit`, `finished` after
/// `submit --wait`.
#[derive(Serialize)]
pub struct Recorded<'a> {
    #[serde(skip)]
    reason: &'static str,
    #[serde(flatten)]
    job: Job<'a>,
    artifact: &'a Path,
    sha256: &'a str,
    location: &'a str,
    submitted_at: u64,
    state: JobState,
    message: Option<&'a str>,
    data: &'a Payload,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    instances: &'a [crate::cluster::record::Instance],
}

impl<'a> Recorded<'a> {
    /// The record just submitted (reason `submitted`).
    pub fn submitted(record: &'a Record) -> Self {
        Recorded::of("submitted", record)
    }

    /// The record of a job waited for to its end (reason `finished`).
    pub fn finished(record: &'a Record) -> Self {
        Recorded::of("finished", record)
    }

    fn of(reason: &'static str, record: &'a Record) -> Self {
        Recorded {
            reason,
            job: Job::from(record),
            artifact: &record.artifact,
            sha256: &record.sha256,
            location: &record.location,
            submitted_at: record.submitted_at,
            state: record.state,
            message: record.message.as_deref(),
            data: &record.data,
            instances: &record.instances,
        }
    }
}

impl Message for Recorded<'_> {
    fn reason(&self) -> &'static str {
        self.reason
    }
}

impl Message for crate::cluster::submit::Plan {
    fn reason(&self) -> &'static str {
        "submit-plan"
    }
}

impl Message for crate::package::PackageReport {
    fn reason(&self) -> &'static str {
        if self.dry_run {
            "package-plan"
        } else {
            "packaged"
        }
    }
}

impl Message for crate::templates::generate::NewReport {
    fn reason(&self) -> &'static str {
        "created"
    }
}

impl Message for crate::templates::Template {
    fn reason(&self) -> &'static str {
        "template"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_carries_its_reason() {
        let text = line(&Killed {
            id: "driver-1",
            cluster: "prod",
            state: JobState::Killed,
            message: "bye",
        })
        .unwrap();
        assert!(!text.contains('\n'), "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["reason"], "killed");
        assert_eq!(value["state"], "KILLED");
        assert_eq!(value["id"], "driver-1");
        let causes = ["because".to_owned()];
        let error = line(&Error {
            message: "failed",
            causes: &causes,
            help: None,
        })
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(&error).unwrap();
        assert_eq!(
            (value["reason"].as_str(), value["causes"][0].as_str()),
            (Some("error"), Some("because"))
        );
    }
}

/// A job the cluster runs that this machine did not submit, as `list --cluster` shows it
/// (reason `cluster-job`).
#[derive(Serialize)]
pub struct ClusterJob<'a> {
    /// The cluster profile.
    pub cluster: &'a str,
    /// The job as the cluster lists it.
    #[serde(flatten)]
    pub job: &'a crate::cluster::Listed,
}

impl Message for ClusterJob<'_> {
    fn reason(&self) -> &'static str {
        "cluster-job"
    }
}
