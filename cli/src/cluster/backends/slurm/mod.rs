//! `slurm`: jobs run as Slurm batch jobs, submitted one of two ways: through slurmrestd's REST
//! API with the user's JWT (`scontrol token`), or, for sites with no slurmrestd, with `sbatch`
//! on a login node over SSH. A profile with a `url` uses the first, one with a `host` (and no
//! `url`) the second.
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
//!
//! [clusters.hpc-ssh]
//! kind = "slurm"
//! host = "login1"                         # sbatch, squeue, scontrol, scancel run there
//! port = 22
//! user = "alice"
//! identity-file = "~/.ssh/id_ed25519"     # else the SSH agent
//! known-hosts = "~/.ssh/known_hosts"      # host keys are always verified
//! remote-dir = "cargo-stream"             # the default upload folder (home-relative)
//! slurm-conf = "/etc/slurm/slurm.conf"    # only if not the login node's default
//! partition = "batch"
//! ```
//!
//! The jar is staged in the upload folder (`dir`: a folder of this machine; `sftp`: a folder
//! of an SSH host, a login node say; over SSH by default the login node's `remote-dir`), which
//! the nodes must see (at the same path, or at the `file://` base given as `upload.url`). Each
//! submission gets a folder `jobs/<name>-<time>/` there ([`folder`]): the job's working
//! directory, with its `stdout` and `stderr` files (read back by `logs`, over SSH for `sftp`)
//! and the unzipped bundle. The batch script ([`script`]) `exec`s the job's binary, so that
//! `kill`'s cancel (SIGTERM) reaches the job once and it stops gracefully; Slurm sends SIGKILL
//! after the cluster's `KillWait`. Both ways send the same script and resources, and read
//! Slurm's states through one mapping ([`state`]); [`rest`] and [`sbatch`] hold what differs.
//!
//! A job submitted elsewhere is followed by its ID alone (`--cluster NAME ID`): its folder is
//! its working directory as Slurm keeps it, which must be one of the profile's job folders;
//! `list --cluster NAME` lists the jobs the controller knows that run in one.
//!
//! `--conf slurm.FIELD=VALUE` sets a field of the REST API's job description
//! (`slurm.time_limit=60`, `slurm.qos=debug`); over SSH, `--conf sbatch.OPTION=VALUE` adds
//! `--OPTION=VALUE` to `sbatch` (`sbatch.time=60`, `sbatch.qos=debug`; an empty value adds
//! `--OPTION`). Other `conf` keys are Spark's, ignored here.

pub mod folder;
pub mod rest;
pub mod sbatch;
pub mod script;
pub mod state;

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::cluster::backend::{
    Backend, JobSpec, JobState, Listed, LogStream, Payload, Status, Submitted,
};
use crate::cluster::profile::{Profile, SlurmKeys, Upload, expand_home};
use crate::cluster::record::Record;
use crate::cluster::stage;
use crate::cluster::transport::ssh::{self, Session};
use crate::error::with_help;
use crate::shell::Shell;

use folder::{Holder, Reached};
use rest::{Rest, TokenSource};
use sbatch::Sbatch;
use script::Script;

/// The REST API version spoken unless the profile says otherwise (Slurm 22.05's newest).
pub const DEFAULT_API_VERSION: &str = "v0.0.38";

/// The `PATH` a job gets through slurmrestd unless its `env` sets one: slurmrestd passes no
/// environment on. (`sbatch` passes the login shell's on, as it does by hand.)
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A batch job as Slurm takes it, whichever way it is sent.
#[derive(Clone, Debug)]
pub struct Request {
    /// The job's name.
    pub name: String,
    /// The partition, if the profile names one.
    pub partition: Option<String>,
    /// Cores for each task.
    pub cpus: u32,
    /// How many tasks (`--ntasks`): a job's instances, each the job's binary started by
    /// `srun` with its `SLURM_PROCID`; 1 runs it without `srun`, as always.
    pub tasks: u32,
    /// Memory, MiB.
    pub memory_mib: u64,
    /// Its folder as the nodes see it: working directory, `stdout`, `stderr`.
    pub dir: String,
    /// Its environment (sent with the REST description; the script exports it for `sbatch`).
    pub env: BTreeMap<String, String>,
    /// The way's own options, their prefix taken off: REST fields (`slurm.FIELD`) or `sbatch`
    /// options (`sbatch.OPTION`).
    pub options: Vec<(String, String)>,
    /// The batch script.
    pub script: String,
}

/// Slurm's answer to a submission.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// The job ID.
    pub id: String,
    /// Slurm's words (`Submitted batch job ID`, and any note).
    pub message: String,
}

/// How the backend reaches Slurm.
#[derive(Debug)]
enum Way {
    /// slurmrestd (`url`).
    Rest(Rest),
    /// `sbatch` and friends on a login node over SSH (`host`).
    Ssh(Sbatch),
}

impl Way {
    /// The `--conf` prefix of this way's own options.
    fn conf_prefix(&self) -> &'static str {
        match self {
            Way::Rest(_) => "slurm.",
            Way::Ssh(_) => "sbatch.",
        }
    }

    /// What can be checked without reaching the cluster (the token is readable).
    fn check_local(&self) -> anyhow::Result<()> {
        match self {
            Way::Rest(rest) => rest.check_token(),
            Way::Ssh(_) => Ok(()),
        }
    }

    /// Reaches the cluster with our credentials (slurmrestd's `ping`; the login node's host
    /// key, our key and its `sbatch`), before anything is copied.
    fn check_reach(&self) -> anyhow::Result<()> {
        match self {
            Way::Rest(rest) => rest.get::<serde::de::IgnoredAny>("ping").map(drop),
            Way::Ssh(ssh) => ssh.check(),
        }
    }

    fn submit(&self, request: &Request) -> anyhow::Result<Accepted> {
        match self {
            Way::Rest(rest) => rest.submit(request),
            Way::Ssh(ssh) => ssh.submit(request),
        }
    }

    fn job(&self, id: &str) -> anyhow::Result<Option<state::Job>> {
        match self {
            Way::Rest(rest) => rest.job(id),
            Way::Ssh(ssh) => ssh.job(id),
        }
    }

    fn cancel(&self, id: &str) -> anyhow::Result<bool> {
        match self {
            Way::Rest(rest) => rest.cancel(id),
            Way::Ssh(ssh) => ssh.cancel(id),
        }
    }

    /// SIGURG to every process of the job, its batch script included, which the script of a
    /// job of several tasks turns into one SIGTERM for each task (see `script::SRUN`). False
    /// when Slurm does not know the job.
    fn stop_signal(&self, id: &str) -> anyhow::Result<bool> {
        match self {
            Way::Rest(rest) => rest.signal(id, "SIGURG"),
            Way::Ssh(ssh) => ssh.signal(id, "URG"),
        }
    }

    /// The jobs the controller knows (job `id` only, when given), with their working
    /// directories.
    fn queue(&self, id: Option<&str>) -> anyhow::Result<Vec<state::Job>> {
        match (self, id) {
            (Way::Rest(rest), Some(id)) => Ok(rest.job(id)?.into_iter().collect()),
            (Way::Rest(rest), None) => rest.jobs(),
            (Way::Ssh(ssh), id) => ssh.queue(id),
        }
    }
}

/// The profile's upload folder as both sides see it: where its job folders are.
struct Folders {
    holder: Holder,
    /// On the holder, absolute.
    here_base: String,
    /// On the nodes.
    node_base: String,
}

/// What a `slurm` record keeps.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Submission {
    /// The jar's URL as staged.
    pub location: String,
    /// The jar as the nodes see it.
    pub jar: String,
    /// Where the job folder is reached from: `sftp` or `local`.
    pub files_on: String,
    /// The job's folder, as reached from here.
    pub job_dir: String,
    /// The job's folder, as the nodes see it.
    pub node_job_dir: String,
    /// Its standard output file, as reached from here.
    pub stdout: String,
    /// Its standard error file, as reached from here.
    pub stderr: String,
    /// How many tasks the job has (`--instances N`, N > 1); each record instance reads its
    /// task's `stdout.I` and `stderr.I`. Absent for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<u32>,
}

/// A Slurm cluster reached through slurmrestd or over SSH.
#[derive(Debug)]
pub struct Slurm {
    cluster: String,
    way: Way,
    partition: Option<String>,
    profile: Profile,
}

impl Slurm {
    /// The backend for a `slurm` profile: REST with a `url`, SSH with a `host`. Checks the
    /// keys; reads the token or connects only when a request is made (so `logs` of a shared
    /// folder works without one).
    pub fn new(profile: &Profile, l: &SlurmKeys) -> anyhow::Result<Slurm> {
        // The keys only the REST way reads, and those only the SSH way reads.
        let rest_keys = [
            ("token-env", l.token_env.is_some()),
            ("token-file", l.token_file.is_some()),
            ("api-version", l.api_version.is_some()),
        ];
        let ssh_keys = [
            ("port", l.port.is_some()),
            ("identity-file", l.identity_file.is_some()),
            ("known-hosts", l.known_hosts.is_some()),
            ("remote-dir", l.remote_dir.is_some()),
            ("slurm-conf", l.slurm_conf.is_some()),
        ];
        let misplaced = |keys: &[(&str, bool)], way: &str, other: &str| -> anyhow::Result<()> {
            match keys.iter().find(|(_, set)| *set) {
                Some((key, _)) => Err(with_help(
                    anyhow::anyhow!(
                        "cluster `{}`: `{key}` only applies to Slurm {other}, but the profile reaches Slurm {way}",
                        profile.name
                    ),
                    format!(
                        "remove `{key}` from `[clusters.{}]` in {}",
                        profile.name,
                        profile.origins.join(" or ")
                    ),
                )),
                None => Ok(()),
            }
        };
        let way = match (l.url.as_deref(), l.host.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(with_help(
                    anyhow::anyhow!(
                        "cluster `{}` names both `url` (slurmrestd) and `host` (`sbatch` over SSH)",
                        profile.name
                    ),
                    format!(
                        "keep one under `[clusters.{}]` in {}: `url` to submit through slurmrestd, `host` to run `sbatch` on that login node",
                        profile.name,
                        profile.origins.join(" or ")
                    ),
                ));
            }
            (None, None) => {
                return Err(with_help(
                    anyhow::anyhow!(
                        "cluster `{}` (kind `slurm`) has neither `url` nor `host`",
                        profile.name
                    ),
                    format!(
                        "set `url = \"http://HOST:6820\"` (slurmrestd) or `host = \"LOGIN-NODE\"` (`sbatch` over SSH) under `[clusters.{}]` in {}",
                        profile.name,
                        profile.origins.join(" or ")
                    ),
                ));
            }
            (Some(url), None) => {
                misplaced(&ssh_keys, "through slurmrestd (`url`)", "over SSH (`host`)")?;
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
                Way::Rest(Rest::new(&profile.name, url, &api, l.user.clone(), source)?)
            }
            (None, Some(_)) => {
                misplaced(
                    &rest_keys,
                    "over SSH (`host`)",
                    "through slurmrestd (`url`)",
                )?;
                Way::Ssh(Sbatch::new(
                    &profile.name,
                    profile.ssh()?,
                    l.slurm_conf.clone(),
                ))
            }
        };
        Ok(Slurm {
            cluster: profile.name.clone(),
            way,
            partition: l.partition.clone(),
            profile: profile.clone(),
        })
    }

    /// The job as Slurm takes it, with the script for the jar at `jar` and the folder `dir`
    /// (as the nodes see them).
    fn request(
        &self,
        shell: &mut Shell,
        job: &JobSpec,
        jar: &str,
        dir: &str,
        tasks: u32,
    ) -> anyhow::Result<Request> {
        if job.supervise {
            shell.warn(format!(
                "cluster `{}` is Slurm, which does not restart a job that fails: `supervise` is ignored",
                self.cluster
            ));
        }
        let prefix = self.way.conf_prefix();
        let mut options = Vec::new();
        let mut ignored = Vec::new();
        for (key, value) in &job.conf {
            match key.strip_prefix(prefix) {
                Some(option) if !option.is_empty() => {
                    options.push((option.to_owned(), value.clone()));
                }
                _ => ignored.push(format!("`{key}`")),
            }
        }
        if !ignored.is_empty() {
            let takes = match self.way {
                Way::Rest(_) => "`slurm.FIELD=VALUE` (slurmrestd's job fields)",
                Way::Ssh(_) => "`sbatch.OPTION=VALUE` (sbatch's long options)",
            };
            shell.warn(format!(
                "{} only apply to Spark; a Slurm job takes {takes}",
                ignored.join(", ")
            ));
        }
        let exports = match self.way {
            Way::Rest(_) => BTreeMap::new(),
            Way::Ssh(_) => job.env.clone(),
        };
        let script = Script {
            jar,
            sha256: &job.sha256,
            dir,
            args: &job.args,
            env: &exports,
            tasks,
        }
        .render();
        Ok(Request {
            name: job.name.clone(),
            partition: self.partition.clone(),
            cpus: job.driver_cores.max(1),
            tasks,
            memory_mib: self.memory(job)?,
            dir: dir.to_owned(),
            env: job.env.clone(),
            options,
            script,
        })
    }

    /// Checks what `request` cannot carry, before anything is copied: over SSH, `slurm.*`
    /// fields (slurmrestd's) and environment names a shell cannot export.
    fn check_job(&self, job: &JobSpec) -> anyhow::Result<()> {
        self.memory(job)?;
        // The batch script unpacks the jar on a node: refuse entries that would escape the
        // job's folder, and links, as the `ssh` kind does, whatever tool unpacks it there.
        crate::cluster::backends::ssh_host::check_entries(&job.artifact)?;
        let Way::Ssh(ssh) = &self.way else {
            return Ok(());
        };
        if let Some(key) = job.conf.keys().find(|k| k.starts_with("slurm.")) {
            return Err(with_help(
                anyhow::anyhow!(
                    "`{key}` is a field of slurmrestd's job description, but cluster `{}` runs `sbatch` on `{}`",
                    self.cluster,
                    ssh.target()
                ),
                "give sbatch's own long options as `--conf sbatch.OPTION=VALUE` (e.g. `sbatch.time=60`, `sbatch.qos=debug`)",
            ));
        }
        if let Some(name) = job.env.keys().find(|k| !script::is_env_name(k)) {
            return Err(with_help(
                anyhow::anyhow!(
                    "the batch script cannot export `{name}`: not a shell variable name"
                ),
                "environment names are letters, digits and `_`, not starting with a digit",
            ));
        }
        Ok(())
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

    /// Reaches `holder`: over the login node's connection when the files are there (the
    /// default over SSH: one connection for the whole submission, and for `logs --follow`'s
    /// questions twice a second), else over a new one, kept in `own` for the caller.
    fn reach<'a>(
        &'a self,
        holder: &Holder,
        own: &'a OnceCell<Session>,
    ) -> anyhow::Result<Reached<'a>> {
        let Holder::Sftp(target) = holder else {
            return Ok(Reached::Local);
        };
        if let Way::Ssh(ssh) = &self.way
            && ssh.target() == target
        {
            return Ok(Reached::Ssh(ssh.session()?));
        }
        if own.get().is_none() {
            let session = Session::connect(target)?;
            let _ = own.set(session);
        }
        Ok(Reached::Ssh(own.get().expect("just set")))
    }

    /// Where the profile's job folders are, from both sides; `None` when its upload folder
    /// does not exist (nothing was submitted through it).
    fn folders(&self, own: &OnceCell<Session>) -> anyhow::Result<Option<Folders>> {
        let upload = self.profile.upload()?;
        let holder = Holder::of(&upload);
        let (path, url) = match &upload {
            Upload::Dir { path, url } => (path.display().to_string(), url.as_deref()),
            Upload::Sftp { path, url, .. } => (path.clone(), url.as_deref()),
        };
        let Some(here_base) = folder::base(self.reach(&holder, own)?, &path)? else {
            return Ok(None);
        };
        let node_base = folder::node_base(&here_base, url)?;
        Ok(Some(Folders {
            holder,
            here_base,
            node_base,
        }))
    }
}

impl Backend for Slurm {
    fn submit(&self, shell: &mut Shell, job: &JobSpec) -> anyhow::Result<Submitted> {
        self.submit_tasks(shell, job, 1)
    }

    fn submit_instances(
        &self,
        shell: &mut Shell,
        job: &JobSpec,
        count: u32,
        started: &mut Vec<Submitted>,
    ) -> anyhow::Result<()> {
        if count == 1 {
            started.push(self.submit(shell, job)?);
            return Ok(());
        }
        // One job of `count` tasks; each task knows its instance by `SLURM_PROCID`. Slurm
        // restarts nothing: `supervise` only when the profile asks for it (then warned about).
        let mut job = job.clone();
        if self.profile.keys.common().supervise.is_none() {
            job.supervise = false;
        }
        let one = self.submit_tasks(shell, &job, count)?;
        let Payload::Slurm(own) = &one.data else {
            unreachable!("the slurm backend writes slurm payloads")
        };
        for task in 0..count {
            let mut data = own.clone();
            data.stdout = format!("{}/stdout.{task}", own.job_dir);
            data.stderr = format!("{}/stderr.{task}", own.job_dir);
            started.push(Submitted {
                id: one.id.clone(),
                message: one.message.clone(),
                location: one.location.clone(),
                data: Payload::Slurm(data),
            });
        }
        Ok(())
    }

    fn status(&self, record: &Record) -> anyhow::Result<Status> {
        self.job_status(record)
    }

    fn kill(&self, record: &Record, grace: Duration) -> anyhow::Result<String> {
        self.cancel_job(record, grace)
    }

    fn adopt(&self, id: &str) -> anyhow::Result<Payload> {
        self.adopt_job(id)
    }

    fn jobs(&self) -> anyhow::Result<Vec<Listed>> {
        self.list_jobs()
    }

    fn logs(&self, record: &Record, stream: LogStream, offset: u64) -> anyhow::Result<Vec<u8>> {
        self.read_log(record, stream, offset)
    }
}

impl Slurm {
    /// Submits the job as one Slurm job of `tasks` tasks.
    fn submit_tasks(
        &self,
        shell: &mut Shell,
        job: &JobSpec,
        tasks: u32,
    ) -> anyhow::Result<Submitted> {
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
        // A bad value, a missing or refused token, an unreachable slurmrestd, or a login node
        // that refuses us is found before anything is copied: `ping` goes through slurmrestd to
        // slurmctld with the token; over SSH the host key and our key are checked and
        // `sbatch` is looked for.
        self.check_job(job).with_context(context)?;
        self.way.check_local().with_context(context)?;
        // Slurm's nodes read the jar from a file system they share with the upload folder.
        let upload = self.profile.upload().with_context(context)?;
        self.way.check_reach().with_context(context)?;
        let holder = Holder::of(&upload);
        let own = OnceCell::new();
        let reached = self.reach(&holder, &own).with_context(context)?;
        let staged = match (&upload, reached) {
            (Upload::Sftp { path, url, .. }, Reached::Ssh(session)) => ssh::stage_over(
                session,
                shell,
                path,
                url.as_deref(),
                &job.artifact,
                &job.sha256,
            ),
            _ => stage::stage(shell, &upload, &job.artifact, &job.sha256),
        }
        .with_context(context)?;
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
            folder::create(reached, &here_base, &node_base, &job.name).with_context(context)?;
        let node_jar = format!("{node_base}/{jar_name}");
        let request = self.request(shell, job, &node_jar, &dir.node, tasks)?;
        let accepted = match self.way.submit(&request) {
            Ok(accepted) => accepted,
            Err(e) => {
                // Nothing runs in it: leave no empty folder behind.
                folder::remove(reached, &dir.here);
                return Err(e).with_context(context);
            }
        };
        Ok(Submitted {
            id: accepted.id,
            message: accepted.message,
            location: staged.url.clone(),
            data: Payload::Slurm(Submission {
                location: staged.url,
                jar: node_jar,
                files_on: holder.name().to_owned(),
                stdout: format!("{}/stdout", dir.here),
                stderr: format!("{}/stderr", dir.here),
                tasks: (tasks > 1).then_some(tasks),
                job_dir: dir.here,
                node_job_dir: dir.node,
            }),
        })
    }

    fn job_status(&self, record: &Record) -> anyhow::Result<Status> {
        let job = self.way.job(&record.id).with_context(|| {
            format!(
                "failed to get the status of job `{}` from cluster `{}`",
                record.id, self.cluster
            )
        })?;
        let tasks = record.payload::<Submission>()?.tasks.is_some();
        Ok(match job {
            Some(job) if tasks => state::tasks_status_of(&job),
            Some(job) => state::status_of(&job),
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

    fn cancel_job(&self, record: &Record, grace: Duration) -> anyhow::Result<String> {
        // Slurm's cancel (`scancel`, or slurmrestd's `DELETE`): SIGCONT and SIGTERM to every
        // process of the job (the job's binary only: the script `exec`s it), then SIGKILL
        // after the cluster's `KillWait`. The job is CANCELLED either way. We wait for its end
        // up to `grace`.
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
        if let Some(tasks) = record.payload::<Submission>()?.tasks {
            return self.stop_tasks(record, tasks, grace);
        }
        if !self.way.cancel(&record.id).with_context(context)? {
            return Ok(format!("Slurm does not know job {} (any more)", record.id));
        }
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

    /// Stops a job of several tasks: SIGURG to the job, which its script turns into one
    /// SIGTERM for each task (`srun` would answer a SIGTERM of its own with SIGKILL); each
    /// stops gracefully with its final checkpoint and the job ends by itself (KILLED, see
    /// [`state::tasks_status_of`]). After `grace`, Slurm's cancel.
    fn stop_tasks(&self, record: &Record, tasks: u32, grace: Duration) -> anyhow::Result<String> {
        let context = || {
            format!(
                "failed to stop the {tasks} tasks of job `{}` on cluster `{}`",
                record.id, self.cluster
            )
        };
        if !self.way.stop_signal(&record.id).with_context(context)? {
            return Ok(format!("Slurm does not know job {} (any more)", record.id));
        }
        let deadline = Instant::now() + grace;
        loop {
            let status = self.job_status(record)?;
            if status.state.is_final() {
                return Ok(format!(
                    "job {}: SIGTERM sent to its {tasks} tasks; it ended {}",
                    record.id, status.state
                ));
            }
            if Instant::now() >= deadline {
                self.way.cancel(&record.id).with_context(context)?;
                return Ok(format!(
                    "job {}: its {tasks} tasks did not stop within {} s of SIGTERM: cancelled (Slurm sends SIGKILL after the cluster's KillWait)",
                    record.id,
                    grace.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn adopt_job(&self, id: &str) -> anyhow::Result<Payload> {
        let list = || {
            format!(
                "`cargo stream list --cluster {}` lists the jobs cargo-stream runs there",
                self.cluster
            )
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(with_help(
                anyhow::anyhow!("`{id}` is not a Slurm job ID (a number)"),
                list(),
            ));
        }
        // Its folder is its working directory, the one Slurm keeps for it.
        let job = self.way.queue(Some(id))?.into_iter().find(|j| j.is(id));
        let Some(job) = job else {
            return Err(with_help(
                anyhow::anyhow!(
                    "Slurm does not know job {id} (any more: the controller forgets ended jobs after its `MinJobAge`)"
                ),
                list(),
            ));
        };
        let dir = job.current_working_directory.clone().unwrap_or_default();
        let own = OnceCell::new();
        let folders = self.folders(&own)?;
        let Some((folders, found)) = folders.and_then(|f| {
            let found = folder::of_node(&f.here_base, &f.node_base, &dir)?;
            Some((f, found))
        }) else {
            return Err(with_help(
                anyhow::anyhow!(
                    "Slurm job {id} runs in `{dir}`, not in a job folder of cluster `{}`'s upload folder: it was not submitted by cargo-stream through this profile",
                    self.cluster
                ),
                list(),
            ));
        };
        Ok(Payload::Slurm(Submission {
            location: String::new(),
            jar: String::new(),
            files_on: folders.holder.name().to_owned(),
            stdout: format!("{}/stdout", found.here),
            stderr: format!("{}/stderr", found.here),
            tasks: None,
            job_dir: found.here,
            node_job_dir: found.node,
        }))
    }

    fn list_jobs(&self) -> anyhow::Result<Vec<Listed>> {
        // The jobs running in one of the profile's job folders: cargo-stream's, whoever
        // submitted them, not the cluster's every job.
        let own = OnceCell::new();
        let Some(folders) = self.folders(&own)? else {
            return Ok(Vec::new());
        };
        Ok(self
            .way
            .queue(None)?
            .into_iter()
            .filter(|job| {
                job.current_working_directory.as_deref().is_some_and(|dir| {
                    folder::of_node(&folders.here_base, &folders.node_base, dir).is_some()
                })
            })
            .filter_map(|job| {
                Some(Listed {
                    id: job.job_id?.get()?.to_string(),
                    state: state::map_state(job.state()),
                    name: job.name.clone(),
                    submitted_at: job.submit_time.and_then(state::NoVal::get),
                })
            })
            .collect())
    }

    fn read_log(&self, record: &Record, stream: LogStream, offset: u64) -> anyhow::Result<Vec<u8>> {
        let submission = record.payload::<Submission>()?;
        let path = match stream {
            LogStream::Stdout => &submission.stdout,
            LogStream::Stderr => &submission.stderr,
        };
        let holder = match submission.files_on.as_str() {
            "sftp" => Holder::of(&self.profile.upload()?),
            _ => Holder::Local,
        };
        let own = OnceCell::new();
        self.reach(&holder, &own)
            .and_then(|reached| folder::read_from(reached, path, offset))
            .with_context(|| {
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

    fn profile(toml_text: &str) -> Profile {
        Profile {
            name: "hpc".into(),
            keys: crate::cluster::ProfileKeys::Slurm(toml::from_str(toml_text).unwrap()),
            origins: vec!["`clusters.toml`".into()],
        }
    }

    impl Slurm {
        fn of(profile: &Profile) -> anyhow::Result<Slurm> {
            let crate::cluster::ProfileKeys::Slurm(keys) = &profile.keys else {
                unreachable!("a slurm profile")
            };
            Slurm::new(profile, keys)
        }
    }

    #[test]
    fn a_url_or_a_host_picks_the_way() {
        let rest = Slurm::of(&profile("url = \"http://h:6820\"")).unwrap();
        assert!(matches!(rest.way, Way::Rest(_)));
        let ssh = Slurm::of(&profile(
            "host = \"login\"\nuser = \"u\"\nslurm-conf = \"/etc/x.conf\"",
        ))
        .unwrap();
        assert!(matches!(ssh.way, Way::Ssh(_)));
        // Over SSH the jar goes to the login node's `remote-dir` unless `upload` says otherwise.
        match ssh.profile.upload().unwrap() {
            Upload::Sftp { ssh, path, .. } => {
                assert_eq!(
                    (ssh.host.as_str(), path.as_str()),
                    ("login", "cargo-stream")
                );
            }
            other => panic!("{other:?}"),
        }
        let error = |text: &str| format!("{:#}", Slurm::of(&profile(text)).unwrap_err());
        assert!(error("").contains("neither `url` nor `host`"));
        assert!(error("url = \"http://h\"\nhost = \"h\"").contains("both `url`"));
        assert!(
            error("url = \"http://h\"\nslurm-conf = \"/x\"").contains("`slurm-conf` only applies")
        );
        assert!(error("host = \"h\"\ntoken-env = \"T\"").contains("`token-env` only applies"));
    }
}
