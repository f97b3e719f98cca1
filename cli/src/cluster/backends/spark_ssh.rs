//! `spark-ssh`: the cluster's own `spark-submit --deploy-mode cluster`, run on a gateway host
//! over SSH — the course's submit script, automated, for clusters whose REST gateway is off or
//! not reachable from here.
//!
//! The jar is uploaded to the host over SFTP (checked), `spark-submit` runs there against the
//! master's cluster port (`spark://HOST:7077`; the job's environment values are exported by a
//! script sent on standard input, never put on a command line: see [`ENV_VAR_PREFIX`]),
//! and the job is followed through the master's and worker's web UIs, reached from the host
//! through the SSH connection (no port needs to be open to this machine). `kill` uses Spark's
//! own client (`org.apache.spark.deploy.Client kill`). A driver submitted elsewhere is followed
//! by its ID alone, and `list --cluster` lists the master's drivers, read from its `/json/` as
//! `spark-rest` reads it ([`MasterState`]).

use std::time::Duration;

use crate::cluster::backend::{
    Backend, JobSpec, JobState, Listed, LogStream, Payload, Status, Submitted,
};
use crate::cluster::backends::spark_master::{MasterState, failure_message};
use crate::cluster::backends::spark_rest::driver_log;
use crate::cluster::profile::{Profile, SparkSshKeys, Upload};
use crate::cluster::record::Record;
use crate::cluster::stage;
use crate::cluster::transport::ssh::{LazySession, Session, quote};
use crate::error::with_help;
use crate::shell::Shell;

/// What a `spark-ssh` record keeps.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Submission {
    /// The jar's URL as the cluster reads it.
    pub app_resource: String,
}

/// A Spark standalone cluster reached by running its tools on a host over SSH.
#[derive(Debug)]
pub struct SparkSsh {
    cluster: String,
    ssh: LazySession,
    /// `spark://HOST:7077`.
    master: String,
    /// `SPARK_HOME` on the host.
    spark_home: String,
    /// The master's web UI, as the host reaches it.
    ui: String,
    upload: Upload,
}

impl SparkSsh {
    /// The backend for a `spark-ssh` profile.
    pub fn new(profile: &Profile, keys: &SparkSshKeys) -> anyhow::Result<SparkSsh> {
        let master = profile
            .required("master", keys.master.as_deref())?
            .to_owned();
        let host = master
            .strip_prefix("spark://")
            .and_then(|rest| rest.split(',').next())
            .and_then(|h| h.split(':').next())
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                with_help(
                    anyhow::anyhow!("cluster `{}`: `master = \"{master}\"` is not a `spark://HOST:PORT` URL", profile.name),
                    "give the master's cluster port as the host sees it, e.g. `master = \"spark://127.0.0.1:7077\"`",
                )
            })?;
        let ui = match &keys.master_ui {
            Some(ui) => ui.trim_end_matches('/').to_owned(),
            None => format!("http://{host}:8080"),
        };
        Ok(SparkSsh {
            cluster: profile.name.clone(),
            ssh: LazySession::new(profile.ssh()?, &profile.name),
            spark_home: profile
                .required("spark-home", keys.spark_home.as_deref())?
                .trim_end_matches('/')
                .to_owned(),
            master,
            ui,
            upload: profile.upload()?,
        })
    }

    /// The master's `/json/` as the host sees it.
    fn master_state(&self, session: &Session) -> anyhow::Result<MasterState> {
        let url = format!("{}/json/", self.ui);
        let body = session.http_get(&url).map_err(|e| {
            with_help(
                e.context(format!("failed to read the Spark master's state from {} through {}", self.ui, self.ssh.target())),
                format!(
                    "set `master-ui = \"http://HOST:PORT\"` (the master's web UI as the SSH host reaches it) under `[clusters.{}]`",
                    self.cluster
                ),
            )
        })?;
        serde_json::from_str(&body)
            .map_err(|e| anyhow::anyhow!("{url} did not answer the master's JSON state: {e}"))
    }
}

/// The prefix of the variables that carry the job's environment from `spark-submit` to the
/// driver: Spark's standalone cluster-mode client hands the driver the submitter's `SPARK_*`
/// variables only (`spark.standalone.submit.filterEnvironment`), and the jar's launcher gives
/// the job `NAME` for each `SPARK_CARGO_STREAM_ENV_NAME`.
pub const ENV_VAR_PREFIX: &str = "SPARK_CARGO_STREAM_ENV_";

/// The script run with `sh -s` on the host: exports the job's environment (each variable
/// under [`ENV_VAR_PREFIX`]), then `exec`s `command` (already quoted).
fn submit_script(
    env: &std::collections::BTreeMap<String, String>,
    command: &str,
) -> anyhow::Result<String> {
    let mut script = String::from("set -e\n");
    for (key, value) in env {
        if !crate::cluster::backends::slurm::script::is_env_name(key) {
            return Err(with_help(
                anyhow::anyhow!("`{key}` is not a valid environment variable name"),
                "use letters, digits and `_`, not starting with a digit",
            ));
        }
        script.push_str(&format!(
            "{ENV_VAR_PREFIX}{key}={}\nexport {ENV_VAR_PREFIX}{key}\n",
            quote(value)
        ));
    }
    script.push_str("exec ");
    script.push_str(command);
    script.push('\n');
    Ok(script)
}

impl Backend for SparkSsh {
    fn submit(&self, shell: &mut Shell, job: &JobSpec) -> anyhow::Result<Submitted> {
        let staged = stage::stage(shell, &self.upload, &job.artifact, &job.sha256)?;
        let session = self.ssh.get()?;
        let mut args: Vec<String> = vec![
            format!("{}/bin/spark-submit", self.spark_home),
            "--master".into(),
            self.master.clone(),
            "--deploy-mode".into(),
            "cluster".into(),
            "--name".into(),
            job.name.clone(),
            "--class".into(),
            job.main_class.clone(),
            "--driver-cores".into(),
            job.driver_cores.to_string(),
            "--driver-memory".into(),
            job.driver_memory.clone(),
        ];
        if job.supervise {
            args.push("--supervise".into());
        }
        for (k, v) in &job.conf {
            args.push("--conf".into());
            args.push(format!("{k}={v}"));
        }
        args.push(staged.url.clone());
        args.extend(job.args.iter().cloned());
        let command = args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ");
        shell.verbose_status("Running", format!("`{command}` on {}", self.ssh.target()));
        // The job's environment values are secrets: never on a command line (where `ps` on
        // the host shows them, and, as `--conf` properties, on the driver's JVM command line on
        // the worker too). The script that sets them travels on the channel's standard input,
        // and spark-submit's cluster-mode client hands its `SPARK_*` variables to the driver,
        // whose launcher passes them on to the job under their own names.
        let out =
            session.exec_with_input("sh -s", submit_script(&job.env, &command)?.as_bytes())?;
        let text = format!("{}\n{}", out.stdout, out.stderr);
        let id = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .find(|w| w.starts_with("driver-") && w.len() > "driver-".len())
            .map(str::to_owned);
        match id {
            Some(id) if out.success() => Ok(Submitted {
                message: format!("Driver successfully submitted as {id}"),
                id,
                location: staged.url.clone(),
                data: Payload::SparkSsh(Submission {
                    app_resource: staged.url,
                }),
            }),
            _ => {
                let tail: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .rev()
                    .take(12)
                    .collect();
                Err(with_help(
                    anyhow::anyhow!(
                        "`spark-submit` on {} exited with {} without a driver ID:\n{}",
                        self.ssh.target(),
                        out.code,
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    ),
                    format!(
                        "check `spark-home` and `master` (the cluster port, e.g. spark://HOST:7077) under `[clusters.{}]`",
                        self.cluster
                    ),
                ))
            }
        }
    }

    fn status(&self, record: &Record) -> anyhow::Result<Status> {
        let session = self.ssh.get()?;
        let state = self.master_state(session)?;
        Ok(match state.driver(&record.id) {
            Some(driver) => Status {
                state: driver.state(),
                message: (driver.state() == JobState::Failed)
                    .then(|| failure_message(|url| session.http_get(url), &state, &record.id))
                    .flatten(),
                location: driver.worker().map(str::to_owned),
            },
            None => Status {
                state: JobState::Unknown,
                message: Some(format!(
                    "the master at {} does not list `{}`",
                    self.ui, record.id
                )),
                location: None,
            },
        })
    }

    fn kill(&self, record: &Record, grace: Duration) -> anyhow::Result<String> {
        let session = self.ssh.get()?;
        let command = [
            format!("{}/bin/spark-class", self.spark_home),
            "org.apache.spark.deploy.Client".into(),
            "kill".into(),
            self.master.clone(),
            record.id.clone(),
        ]
        .iter()
        .map(|a| quote(a))
        .collect::<Vec<_>>()
        .join(" ");
        let out = session.exec(&command)?;
        if !out.success() {
            anyhow::bail!(
                "Spark's client on {} could not kill `{}` (exit {}): {}",
                self.ssh.target(),
                record.id,
                out.code,
                out.stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or_default()
            );
        }
        let deadline = std::time::Instant::now() + grace;
        loop {
            let status = self.status(record)?;
            if status.state.is_final() || std::time::Instant::now() >= deadline {
                return Ok(format!("Kill request for {} submitted", record.id));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn adopt(&self, id: &str) -> anyhow::Result<Payload> {
        // Status, kill and logs ask the master (through the host) by the driver's ID alone.
        if !id.starts_with("driver-") || id.len() == "driver-".len() {
            return Err(with_help(
                anyhow::anyhow!("`{id}` is not the ID of a Spark driver (`driver-...`)"),
                format!(
                    "`cargo stream list --cluster {}` lists the drivers the master knows",
                    self.cluster
                ),
            ));
        }
        Ok(Payload::SparkSsh(Submission {
            app_resource: String::new(),
        }))
    }

    fn jobs(&self) -> anyhow::Result<Vec<Listed>> {
        let session = self.ssh.get()?;
        Ok(self.master_state(session)?.listed())
    }

    fn logs(&self, record: &Record, stream: LogStream, offset: u64) -> anyhow::Result<Vec<u8>> {
        let session = self.ssh.get()?;
        let state = self.master_state(session)?;
        let Some(ui) = state
            .driver(&record.id)
            .and_then(|d| d.worker.as_deref())
            .and_then(|worker| state.worker_ui(worker))
        else {
            return Ok(Vec::new());
        };
        driver_log(|url| session.http_get(url), &ui, &record.id, stream, offset)
    }
}
