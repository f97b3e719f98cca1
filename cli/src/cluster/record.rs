//! The submissions this machine made, one JSON file each under the state folder
//! (`$CARGO_STREAM_STATE_DIR`, else `$XDG_STATE_HOME/cargo-stream/submissions`, else
//! `~/.local/state/cargo-stream/submissions`), so that `status`, `kill`, `logs` and `list` know
//! which cluster holds a job.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::cluster::backend::{JobState, OwnPayload, Payload};
use crate::cluster::profile::{Kind, ProfileKeys, expand_home};
use crate::error::with_help;

/// One submission.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The cluster's ID for the job.
    pub id: String,
    /// The profile it was submitted with.
    pub cluster: String,
    /// The profile's kind.
    pub kind: Kind,
    /// The profile as it was at submission, so that the job can be followed from anywhere:
    /// names of secret variables, never secrets (the job's `env` is written names only, each
    /// value `***`: see [`ProfileKeys::without_secrets`]).
    #[serde(
        deserialize_with = "ProfileKeys::from_record",
        serialize_with = "serialize_profile"
    )]
    pub profile: ProfileKeys,
    /// The application name.
    pub name: String,
    /// The artifact submitted (on this machine).
    pub artifact: PathBuf,
    /// Its sha256.
    pub sha256: String,
    /// Where the cluster read it from.
    pub location: String,
    /// Seconds since the Unix epoch.
    pub submitted_at: u64,
    /// The last state seen.
    pub state: JobState,
    /// The last message seen.
    pub message: Option<String>,
    /// The backend's own data (which master took it, the remote folder, ...).
    #[serde(deserialize_with = "Payload::from_record")]
    pub data: Payload,
    /// The instances of a job submitted with `--instances N` (N > 1), instance 0 first: each
    /// with the cluster's own ID and payload (the record's `id` and `data` are instance 0's,
    /// so the user follows one job by one ID). Empty for a job of one instance, and in records
    /// written before instances.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<Instance>,
    /// `Some(i)` for instance `i`'s view of a job of several ([`Record::instance`]): what its
    /// backend reads; never saved (the job's record is).
    #[serde(skip)]
    pub view: Option<u32>,
}

/// One instance of a job of several (`--instances N`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Its number, `0..N` (the job's `CARGO_STREAM_INSTANCE`, Slurm's `SLURM_PROCID`).
    pub index: u32,
    /// The cluster's ID for it (a Spark driver ID; all of a Slurm job's tasks share the
    /// job's ID).
    pub id: String,
    /// The last state seen.
    pub state: JobState,
    /// The last message seen.
    #[serde(default)]
    pub message: Option<String>,
    /// Where it runs, as last seen (a worker, a host, a node).
    #[serde(default)]
    pub location: Option<String>,
    /// The backend's own data for it.
    #[serde(deserialize_with = "Payload::from_record")]
    pub data: Payload,
}

/// The first of the instances a backend started, and the record's instances for them (empty
/// for one instance); `None` when none started.
pub fn of_instances(
    started: Vec<crate::cluster::backend::Submitted>,
) -> Option<(crate::cluster::backend::Submitted, Vec<Instance>)> {
    let first = started.first()?.clone();
    let instances = if started.len() > 1 {
        started
            .into_iter()
            .enumerate()
            .map(|(index, one)| Instance {
                index: index as u32,
                id: one.id,
                state: JobState::Submitted,
                message: Some(one.message).filter(|m| !m.is_empty()),
                location: None,
                data: one.data,
            })
            .collect()
    } else {
        Vec::new()
    };
    Some((first, instances))
}

/// The state of a job of several instances, from theirs: `FAILED` (or `ERROR`) if any
/// instance is, else while any runs on `RELAUNCHING`, `RUNNING`, `SUBMITTED` in that order of
/// precedence; once all have ended, `KILLED` if any was killed, else `FINISHED`; `UNKNOWN` if
/// the cluster knows none of them.
pub fn combined_state(states: &[JobState]) -> JobState {
    let any = |s: JobState| states.contains(&s);
    if states.is_empty() {
        return JobState::Unknown;
    }
    if any(JobState::Failed) {
        return JobState::Failed;
    }
    if any(JobState::Error) {
        return JobState::Error;
    }
    if states.iter().all(|s| s.is_final()) {
        return if any(JobState::Killed) {
            JobState::Killed
        } else {
            JobState::Finished
        };
    }
    for state in [
        JobState::Relaunching,
        JobState::Running,
        JobState::Submitted,
    ] {
        if any(state) {
            return state;
        }
    }
    JobState::Unknown
}

/// The profile, its `env` values left out, wherever a record is written (its file, `--json`).
fn serialize_profile<S: serde::Serializer>(keys: &ProfileKeys, s: S) -> Result<S::Ok, S::Error> {
    keys.without_secrets().serialize(s)
}

/// The folder the records live in.
pub fn dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_STREAM_STATE_DIR") {
        return PathBuf::from(dir);
    }
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| expand_home(Path::new("~/.local/state")))
        .join("cargo-stream")
        .join("submissions")
}

fn file(id: &str) -> anyhow::Result<PathBuf> {
    // IDs come from clusters and from users: keep them to one plain file name.
    if id.is_empty()
        || id.starts_with('.')
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        anyhow::bail!("`{id}` is not a submission ID");
    }
    Ok(dir().join(format!("{id}.json")))
}

impl Record {
    /// How many instances the job has (1 for a job submitted without `--instances`).
    pub fn instance_count(&self) -> u32 {
        (self.instances.len() as u32).max(1)
    }

    /// The record as one instance's backend sees it: its ID, payload and state, no instances
    /// (a record of one instance is its own instance 0). An error names the instances there
    /// are.
    pub fn instance(&self, index: u32) -> anyhow::Result<Record> {
        if self.instances.is_empty() {
            if index == 0 {
                return Ok(self.clone());
            }
            return Err(with_help(
                anyhow::anyhow!("`{}` has one instance, not an instance {index}", self.id),
                "leave out `--instance`, or give `--instance 0`",
            ));
        }
        let Some(one) = self.instances.iter().find(|i| i.index == index) else {
            return Err(with_help(
                anyhow::anyhow!(
                    "`{}` has {} instances (0 to {}), not an instance {index}",
                    self.id,
                    self.instances.len(),
                    self.instances.len() - 1
                ),
                format!(
                    "give `--instance` a number from 0 to {}",
                    self.instances.len() - 1
                ),
            ));
        };
        let mut view = self.clone();
        view.id = one.id.clone();
        view.data = one.data.clone();
        view.state = one.state;
        view.message = one.message.clone();
        view.instances = Vec::new();
        view.view = Some(index);
        Ok(view)
    }

    /// Each instance as [`Record::instance`] gives it (the record itself for a job of one).
    pub fn instance_views(&self) -> Vec<Record> {
        if self.instances.is_empty() {
            return vec![self.clone()];
        }
        self.instances
            .iter()
            .filter_map(|i| self.instance(i.index).ok())
            .collect()
    }

    /// The backend's own payload, or an error when the record holds another kind's.
    pub fn payload<T: OwnPayload>(&self) -> anyhow::Result<&T> {
        T::of(&self.data).ok_or_else(|| {
            anyhow::anyhow!(
                "the record of `{}` holds a payload of another kind than `{}`",
                self.id,
                self.kind
            )
        })
    }

    /// Writes the record (atomically: a temporary file renamed over the old one).
    pub fn save(&self) -> anyhow::Result<()> {
        if self.view.is_some() {
            return Ok(());
        }
        let path = file(&self.id)?;
        let dir = path.parent().expect("records live in a folder");
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create `{}`", dir.display()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("failed to write in `{}`", dir.display()))?;
        serde_json::to_writer_pretty(&mut tmp, self)?;
        tmp.persist(&path)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        Ok(())
    }

    /// The record of submission `id`.
    pub fn load(id: &str) -> anyhow::Result<Record> {
        let path = file(id)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(with_help(
                    anyhow::anyhow!("no submission `{id}` was made from this machine"),
                    format!(
                        "`cargo stream list` shows the submissions recorded in `{}`",
                        dir().display()
                    ),
                ));
            }
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("failed to read `{}`", path.display()))
                );
            }
        };
        serde_json::from_str(&text).with_context(|| format!("`{}` is damaged", path.display()))
    }

    /// Every record, newest first.
    pub fn all() -> anyhow::Result<Vec<Record>> {
        let dir = dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("failed to read `{}`", dir.display()))
                );
            }
        };
        let mut records = Vec::new();
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("failed to read `{}`", path.display()))?;
                match serde_json::from_str::<Record>(&text) {
                    Ok(record) => records.push(record),
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "damaged record skipped")
                    }
                }
            }
        }
        records.sort_by(|a, b| {
            b.submitted_at
                .cmp(&a.submitted_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        Ok(records)
    }
}

/// Seconds since the Unix epoch, now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_file_names() {
        assert!(file("driver-20261124112248-0000").is_ok());
        assert!(file("1234").is_ok());
        assert!(file("../etc/passwd").is_err());
        assert!(file("a/b").is_err());
        assert!(file("").is_err());
    }

    /// issue 14: a record keeps the names of the job's variables, never their values.
    #[test]
    fn records_keep_env_names_not_values() {
        let keys: ProfileKeys = toml::from_str(
            "kind = \"ssh\"\nhost = \"h\"\nenv = { API_TOKEN = \"s3cr3t-value\" }\n",
        )
        .unwrap();
        let record = Record {
            id: "j-1".into(),
            cluster: "box".into(),
            kind: Kind::Ssh,
            profile: keys,
            name: "wc".into(),
            artifact: "/tmp/wc.jar".into(),
            sha256: "00".into(),
            location: "/u/wc.jar".into(),
            submitted_at: 1,
            state: JobState::Running,
            message: None,
            instances: Vec::new(),
            view: None,
            data: Payload::Ssh(crate::cluster::backends::ssh_host::Submission {
                host: "u@h:22".into(),
                dir: "/u/j-1".into(),
                pid: 7,
                location: "/u/wc.jar".into(),
            }),
        };
        let text = serde_json::to_string(&record).unwrap();
        assert!(!text.contains("s3cr3t-value"), "{text}");
        assert!(text.contains(r#""env":{"API_TOKEN":"***"}"#), "{text}");
    }

    #[test]
    fn records_written_before_typed_profiles_still_load() {
        // As the untyped profile wrote them: every key of every kind, unset ones `null`.
        let old = r#"{
  "id": "driver-20261124112248-0000",
  "cluster": "prod",
  "kind": "spark-rest",
  "profile": {
    "kind": "spark-rest", "master": "spark://m:6066", "jwt-secret-env": null,
    "jwt-secret-file": null, "spark-version": null, "master-ui": null, "spark-home": null,
    "host": null, "port": null, "user": null, "identity-file": null, "known-hosts": null,
    "remote-dir": null, "url": null, "token-env": null, "token-file": null,
    "partition": null, "api-version": null, "slurm-conf": null,
    "upload": {"to": "dir", "path": "/shared", "url": null, "host": null, "port": null,
               "user": null, "identity-file": null, "known-hosts": null},
    "driver-cores": 2, "driver-memory": null, "supervise": null, "env": null, "conf": null,
    "kill-grace": 5
  },
  "name": "wc",
  "artifact": "/tmp/wc.jar",
  "sha256": "00",
  "location": "file:///shared/wc.jar",
  "submitted_at": 1,
  "state": "RUNNING",
  "message": null,
  "data": {"gateway": "http://m:6066", "appResource": "file:///shared/wc.jar", "serverSparkVersion": "4.0.0"}
}"#;
        let record: Record = serde_json::from_str(old).unwrap();
        let ProfileKeys::SparkRest(keys) = &record.profile else {
            panic!("{:?}", record.profile)
        };
        assert_eq!(keys.master.as_deref(), Some("spark://m:6066"));
        assert_eq!(
            keys.upload.as_ref().unwrap().path.as_deref(),
            Some("/shared")
        );
        assert_eq!(record.profile.common().kill_grace, Some(5));
        let payload = record
            .payload::<crate::cluster::backends::spark_rest::Submission>()
            .unwrap();
        assert_eq!(payload.gateway, "http://m:6066");
        assert!(
            record
                .payload::<crate::cluster::backends::slurm::Submission>()
                .is_err()
        );
        // Each backend's payload, as it was written untagged: its own kind, never another
        // whose keys it also has (a `spark-rest` payload has `spark-ssh`'s `appResource`).
        for (old, kind) in [
            (
                r#"{"gateway": "http://m:6066", "appResource": "file:///j.jar"}"#,
                Kind::SparkRest,
            ),
            (r#"{"appResource": "file:///j.jar"}"#, Kind::SparkSsh),
            (
                r#"{"host": "u@h:22", "dir": "/home/u/x", "pid": 7, "location": "/home/u/j.jar"}"#,
                Kind::Ssh,
            ),
            (
                r#"{"location": "file:///s/j.jar", "jar": "/s/j.jar", "files_on": "sftp", "job_dir": "/s/jobs/1", "node_job_dir": "/s/jobs/1", "stdout": "/s/jobs/1/stdout", "stderr": "/s/jobs/1/stderr"}"#,
                Kind::Slurm,
            ),
        ] {
            let data = Payload::from_record(&mut serde_json::Deserializer::from_str(old)).unwrap();
            let read = match data {
                Payload::SparkRest(_) => Kind::SparkRest,
                Payload::SparkSsh(_) => Kind::SparkSsh,
                Payload::Ssh(_) => Kind::Ssh,
                Payload::Slurm(_) => Kind::Slurm,
            };
            assert_eq!(read, kind, "{old}");
            // Written again, tagged, it reads the same.
            let tagged = serde_json::to_string(&data).unwrap();
            assert!(
                tagged.contains(&format!(r#""kind":"{}""#, kind.name())),
                "{tagged}"
            );
            let again = Payload::from_record(&mut serde_json::Deserializer::from_str(&tagged));
            assert_eq!(again.unwrap(), data);
        }
        assert!(
            Payload::from_record(&mut serde_json::Deserializer::from_str(r#"{"x": 1}"#)).is_err()
        );
        // And what this version writes, it reads.
        let again: Record = serde_json::from_str(&serde_json::to_string(&record).unwrap()).unwrap();
        assert_eq!(again.profile, record.profile);
    }

    fn spark(gateway: &str) -> Payload {
        Payload::SparkRest(crate::cluster::backends::spark_rest::Submission {
            gateway: gateway.into(),
            app_resource: "file:///j.jar".into(),
            server_spark_version: None,
        })
    }

    /// A job of several instances: one record, one ID, each instance's own ID and payload
    /// inside; written and read back the same; and an older record without instances is a
    /// job of one.
    #[test]
    fn instances_are_one_record() {
        let keys: ProfileKeys =
            toml::from_str("kind = \"spark-rest\"\nmaster = \"spark://m:6066\"\n").unwrap();
        let submitted = |id: &str| crate::cluster::backend::Submitted {
            id: id.into(),
            message: format!("{id} accepted"),
            location: "file:///j.jar".into(),
            data: spark(&format!("http://{id}:6066")),
        };
        let (first, instances) =
            of_instances(vec![submitted("driver-a"), submitted("driver-b")]).unwrap();
        let record = Record {
            id: first.id,
            cluster: "prod".into(),
            kind: Kind::SparkRest,
            profile: keys,
            name: "wc".into(),
            artifact: "/tmp/wc.jar".into(),
            sha256: "00".into(),
            location: first.location,
            submitted_at: 1,
            state: JobState::Submitted,
            message: None,
            data: first.data,
            instances,
            view: None,
        };
        let text = serde_json::to_string(&record).unwrap();
        let again: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(again.id, "driver-a");
        assert_eq!(again.instance_count(), 2);
        assert_eq!(again.instances, record.instances);
        assert_eq!(again.instances[1].id, "driver-b");
        assert_eq!(again.instances[1].index, 1);
        assert_eq!(again.instances[1].data, spark("http://driver-b:6066"));
        // Instance 1's view: its own ID and payload, never saved over the job's record.
        let view = again.instance(1).unwrap();
        assert_eq!(view.id, "driver-b");
        assert_eq!(view.data, spark("http://driver-b:6066"));
        assert!(view.instances.is_empty() && view.view == Some(1));
        let err = again.instance(2).unwrap_err();
        assert!(
            err.to_string().contains("has 2 instances (0 to 1)"),
            "{err}"
        );
        assert_eq!(
            again
                .instance_views()
                .iter()
                .map(|v| v.id.as_str())
                .collect::<Vec<_>>(),
            ["driver-a", "driver-b"]
        );
        // One instance: no `instances` written, and a record without them reads as one.
        let (_, none) = of_instances(vec![submitted("driver-c")]).unwrap();
        assert!(none.is_empty());
        let mut one = record.clone();
        one.instances = none;
        let text = serde_json::to_string(&one).unwrap();
        assert!(!text.contains("instances"), "{text}");
        let old: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(old.instance_count(), 1);
        assert_eq!(old.instance(0).unwrap().id, "driver-a");
        assert!(old.instance(1).is_err());
        assert!(of_instances(Vec::new()).is_none());
    }

    #[test]
    fn instance_states_combine() {
        use JobState::*;
        assert_eq!(combined_state(&[Running, Running]), Running);
        assert_eq!(combined_state(&[Running, Failed]), Failed);
        assert_eq!(combined_state(&[Killed, Error]), Error);
        assert_eq!(combined_state(&[Running, Relaunching]), Relaunching);
        assert_eq!(combined_state(&[Submitted, Running]), Running);
        assert_eq!(combined_state(&[Killed, Finished]), Killed);
        assert_eq!(combined_state(&[Finished, Finished]), Finished);
        assert_eq!(combined_state(&[Killed, Running]), Running);
        assert_eq!(combined_state(&[Unknown, Unknown]), Unknown);
        assert_eq!(combined_state(&[]), Unknown);
    }
}
