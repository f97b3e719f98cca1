//! `sbatch` over SSH, the second way of reaching Slurm, for sites with no slurmrestd: Slurm's
//! own commands run on a login node, as the SSH user.
//!
//! - submit: `sbatch --parsable` with the batch script on its standard input (so neither the
//!   script nor the environment it exports shows on a command line), the job's name, partition,
//!   cores, memory, working directory and output files as options; the job ID is the first
//!   field of what it prints.
//! - status: `scontrol -o show job ID` (pending, running and ended jobs alike, until the
//!   controller forgets them after `MinJobAge`), then `sacct` when there is accounting; read
//!   into the fields of slurmrestd's `job/ID`, so that one mapping ([`super::state`]) serves
//!   both ways.
//! - cancel: `scancel ID`.
//! - list (and a job followed by its ID alone): `squeue -t all`, which gives each job's
//!   working directory, its cargo-stream job folder.
//!
//! Every command gets `SLURM_CONF=...` first when the profile names `slurm-conf` (a login node
//! whose default configuration is another cluster's); every value is quoted with
//! [`quote`].

use super::state::{ExitCode, Job, NoVal};
use super::{Accepted, Request};
use crate::cluster::profile::SshTarget;
use crate::cluster::transport::ssh::{LazySession, Output, Session, quote};
use crate::error::with_help;

/// Slurm's commands on a login node, over one SSH connection.
#[derive(Debug)]
pub struct Sbatch {
    cluster: String,
    ssh: LazySession,
    slurm_conf: Option<String>,
}

impl Sbatch {
    /// Commands for cluster `cluster` on `target`, with `SLURM_CONF=slurm_conf` when given.
    /// Connects on first use.
    pub fn new(cluster: &str, target: SshTarget, slurm_conf: Option<String>) -> Sbatch {
        Sbatch {
            cluster: cluster.to_owned(),
            ssh: LazySession::new(target, cluster),
            slurm_conf,
        }
    }

    /// The login node.
    pub fn target(&self) -> &SshTarget {
        self.ssh.target()
    }

    /// The connection to the login node (host key verified), opened on first use.
    pub fn session(&self) -> anyhow::Result<&Session> {
        self.ssh.get()
    }

    /// `tool ARGS...` as the remote shell runs it, quoted, after `SLURM_CONF=...`.
    pub fn command(&self, tool: &str, args: &[String]) -> String {
        let mut words: Vec<String> = Vec::with_capacity(args.len() + 2);
        if let Some(conf) = &self.slurm_conf {
            words.push(format!("SLURM_CONF={}", quote(conf)));
        }
        words.push(tool.to_owned());
        words.extend(args.iter().map(|a| quote(a)));
        words.join(" ")
    }

    fn run(&self, tool: &str, args: &[String], input: &[u8]) -> anyhow::Result<Output> {
        let command = self.command(tool, args);
        tracing::debug!(target = %self.target(), %command, "slurm command");
        self.session()?.exec_with_input(&command, input)
    }

    /// Checks that the login node lets us in and has `sbatch` (before anything is uploaded).
    pub fn check(&self) -> anyhow::Result<()> {
        let out = self.run("sbatch", &["--version".into()], b"")?;
        if !out.success() {
            return Err(self.failed("sbatch --version", &out));
        }
        Ok(())
    }

    /// `sbatch --parsable` with the script on its standard input: the job's ID.
    pub fn submit(&self, request: &Request) -> anyhow::Result<Accepted> {
        let out = self.run("sbatch", &sbatch_args(request), request.script.as_bytes())?;
        if !out.success() {
            return Err(self.failed("sbatch", &out));
        }
        let id = parse_job_id(&out.stdout).ok_or_else(|| {
            anyhow::anyhow!(
                "`sbatch --parsable` on `{}` printed no job ID: {:?}",
                self.target(),
                out.stdout.trim()
            )
        })?;
        let mut message = format!("Submitted batch job {id}");
        // What a site's job_submit plugin or sbatch itself had to say (warnings).
        let said = one_line(&out.stderr);
        if !said.is_empty() {
            message.push_str(&format!(" ({said})"));
        }
        Ok(Accepted { id, message })
    }

    /// The job as slurmrestd's `job/ID` would give it (see [`parse_show_job`]); `None` when
    /// neither the controller nor accounting knows it.
    pub fn job(&self, id: &str) -> anyhow::Result<Option<Job>> {
        let out = self.run(
            "scontrol",
            &["-o".into(), "show".into(), "job".into(), id.into()],
            b"",
        )?;
        if out.success()
            && let Some(job) = parse_show_job(&out.stdout, id)
        {
            return Ok(Some(job));
        }
        if !out.success() && !is_unknown_job(&out) {
            return Err(self.failed("scontrol show job", &out));
        }
        // The controller forgot it: accounting, where there is any, still knows how it ended.
        let sacct = self.run(
            "sacct",
            &[
                "-n".into(),
                "-X".into(),
                "-P".into(),
                "-j".into(),
                id.into(),
                "-o".into(),
                "JobID,State,ExitCode,NodeList".into(),
            ],
            b"",
        )?;
        Ok(sacct
            .success()
            .then(|| parse_sacct(&sacct.stdout, id))
            .flatten())
    }

    /// `squeue` of every job the controller knows (of job `id` only, when given), whoever
    /// submitted it: ID, state, name, submit time and working directory, read as slurmrestd's
    /// `jobs` gives them. Empty when Slurm does not know job `id`.
    pub fn queue(&self, id: Option<&str>) -> anyhow::Result<Vec<Job>> {
        let mut args: Vec<String> = vec!["-h".into(), "-t".into(), "all".into()];
        if let Some(id) = id {
            args.extend(["-j".into(), id.into()]);
        }
        args.extend(["-o".into(), QUEUE_FORMAT.into()]);
        // Submit times in UTC: squeue writes them in the local time zone, without one.
        let command = format!("TZ=UTC0 {}", self.command("squeue", &args));
        tracing::debug!(target = %self.target(), %command, "slurm command");
        let out = self.session()?.exec(&command)?;
        if !out.success() {
            if id.is_some() && is_unknown_job(&out) {
                return Ok(Vec::new());
            }
            return Err(self.failed("squeue", &out));
        }
        Ok(out.stdout.lines().filter_map(parse_queue_line).collect())
    }

    /// `scancel ID`; false when Slurm does not know the job.
    pub fn cancel(&self, id: &str) -> anyhow::Result<bool> {
        let out = self.run("scancel", &[id.into()], b"")?;
        if out.success() {
            return Ok(true);
        }
        if is_unknown_job(&out) {
            return Ok(false);
        }
        Err(self.failed("scancel", &out))
    }

    /// `scancel --full --signal=SIGNAL ID`: the signal to every process of the job, its batch
    /// script included (as slurmrestd's `DELETE job/ID?signal=`); false when Slurm does not
    /// know the job.
    pub fn signal(&self, id: &str, signal: &str) -> anyhow::Result<bool> {
        let out = self.run(
            "scancel",
            &["--full".into(), format!("--signal={signal}"), id.into()],
            b"",
        )?;
        if out.success() {
            return Ok(true);
        }
        if is_unknown_job(&out) {
            return Ok(false);
        }
        Err(self.failed("scancel --signal", &out))
    }

    /// An error for a Slurm command that failed: its exit code and standard error, and the
    /// likely fix.
    fn failed(&self, what: &str, out: &Output) -> anyhow::Error {
        let said = match one_line(&out.stderr) {
            s if s.is_empty() => one_line(&out.stdout),
            s => s,
        };
        let target = self.target();
        let err = anyhow::anyhow!(
            "`{what}` on `{target}` failed (exit code {}): {}",
            out.code,
            if said.is_empty() {
                "it said nothing"
            } else {
                &said
            }
        );
        let lower = said.to_ascii_lowercase();
        let help = if out.code == 127 || lower.contains("not found") {
            format!(
                "Slurm's commands are not on the `PATH` of a non-interactive shell of `{}` on `{}`: add their folder to `PATH` in `~/.ssh/environment` or the shell's startup file there, or check that `host` under `[clusters.{}]` is a login node",
                target.user, target.host, self.cluster
            )
        } else if lower.contains("slurm.conf")
            || lower.contains("controller")
            || lower.contains("munge")
            || lower.contains("connection refused")
        {
            format!(
                "`{what}` on `{}` cannot reach the cluster's controller: check `scontrol ping` there; if the login node's default configuration is not this cluster's, set `slurm-conf = \"/path/to/slurm.conf\"` under `[clusters.{}]`",
                target.host, self.cluster
            )
        } else {
            format!(
                "this is Slurm's own refusal: check the job's resources (`driver-cores`, `driver-memory`, `partition`) and any `sbatch.*` options against `sinfo` on `{}`",
                target.host
            )
        };
        with_help(err, help)
    }
}

/// `sbatch`'s options for `request` (the script itself goes on its standard input).
pub fn sbatch_args(request: &Request) -> Vec<String> {
    let dir = &request.dir;
    // `%` starts a pattern in Slurm's file names (`%j`); `%%` is a `%`.
    let file = |name: &str| format!("{}/{name}", dir.replace('%', "%%"));
    let mut args = vec![
        "--parsable".to_owned(),
        format!("--job-name={}", request.name),
        format!("--chdir={dir}"),
        format!("--output={}", file("stdout")),
        format!("--error={}", file("stderr")),
        "--input=/dev/null".to_owned(),
        format!("--ntasks={}", request.tasks.max(1)),
        format!("--cpus-per-task={}", request.cpus),
        format!("--mem={}M", request.memory_mib),
    ];
    if let Some(partition) = &request.partition {
        args.push(format!("--partition={partition}"));
    }
    for (option, value) in &request.options {
        args.push(if value.is_empty() {
            format!("--{option}")
        } else {
            format!("--{option}={value}")
        });
    }
    args
}

/// The job ID in `sbatch --parsable`'s output (`ID` or `ID;CLUSTER`).
pub fn parse_job_id(stdout: &str) -> Option<String> {
    let line = stdout.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let id = line.split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_owned())
}

/// `scontrol -o show job ID`'s line for job `id` as the fields of slurmrestd's `job/ID` that
/// [`super::state::status_of`] reads: `job_state`, `state_reason`, `exit_code` (a wait(2)
/// status, from `ExitCode=EXIT:SIGNAL`), `batch_host` and `nodes`.
pub fn parse_show_job(text: &str, id: &str) -> Option<Job> {
    text.lines().find_map(|line| {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
                .filter(|v| !v.is_empty() && *v != "(null)")
        };
        if field("JobId")? != id {
            return None;
        }
        Some(Job {
            job_state: vec![field("JobState")?.to_owned()],
            state_reason: field("Reason").map(str::to_owned),
            exit_code: field("ExitCode").and_then(wait_status),
            batch_host: field("BatchHost").map(str::to_owned),
            nodes: field("NodeList").map(str::to_owned),
            ..Job::default()
        })
    })
}

/// `sacct -n -X -P -o JobID,State,ExitCode,NodeList`'s line for job `id`, as
/// [`parse_show_job`] gives it.
fn parse_sacct(text: &str, id: &str) -> Option<Job> {
    text.lines().find_map(|line| {
        let mut fields = line.split('|');
        if fields.next()?.trim() != id {
            return None;
        }
        // `CANCELLED by 1000`: the state is the first word.
        let state = fields.next()?.split_whitespace().next()?;
        Some(Job {
            job_state: vec![state.to_owned()],
            exit_code: fields.next().and_then(wait_status),
            nodes: fields
                .next()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
            ..Job::default()
        })
    })
}

/// `squeue -o`'s format for [`Sbatch::queue`]: tab-separated ID, state, submit time, working
/// directory and name (last: the one free text).
const QUEUE_FORMAT: &str = "%i\t%T\t%V\t%Z\t%j";

/// A line of [`QUEUE_FORMAT`] as slurmrestd's `jobs` gives the job (`job_id`, `job_state`,
/// `submit_time`, `current_working_directory`, `name`); `None` for a line that is not one
/// (an array job's `ID_TASK`, say).
fn parse_queue_line(line: &str) -> Option<Job> {
    let mut fields = line.splitn(5, '\t');
    let id: u64 = fields.next()?.trim().parse().ok()?;
    let state = fields.next()?.trim();
    let submitted = fields.next()?.trim();
    let dir = fields.next()?;
    let name = fields.next().unwrap_or_default();
    let some = |text: &str| (!text.is_empty() && text != "(null)").then(|| text.to_owned());
    Some(Job {
        job_id: Some(NoVal::Plain(id)),
        job_state: vec![some(state)?],
        submit_time: utc_secs(submitted).map(NoVal::Plain),
        current_working_directory: some(dir),
        name: some(name),
        ..Job::default()
    })
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) in seconds since the Unix epoch.
fn utc_secs(text: &str) -> Option<u64> {
    let (date, time) = text.split_once('T')?;
    let mut date = date.splitn(3, '-').map(|n| n.parse::<i64>().ok());
    let (y, m, d) = (date.next()??, date.next()??, date.next()??);
    let mut time = time.splitn(3, ':').map(|n| n.parse::<i64>().ok());
    let (hh, mm, ss) = (time.next()??, time.next()??, time.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days since 1970-01-01 of the proleptic Gregorian date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// Slurm's `EXIT:SIGNAL` as a wait(2) status.
fn wait_status(text: &str) -> Option<ExitCode> {
    let (exit, signal) = text.trim().split_once(':')?;
    Some(ExitCode::WaitStatus(
        (exit.parse::<u64>().ok()? << 8) | signal.parse::<u64>().ok()?,
    ))
}

/// Whether a Slurm command failed because the controller does not know the job.
fn is_unknown_job(out: &Output) -> bool {
    let text = format!("{}{}", out.stderr, out.stdout).to_ascii_lowercase();
    text.contains("invalid job id")
}

/// A command's output on one line, Slurm's `sbatch: error: ` prefixes kept.
fn one_line(text: &str) -> String {
    crate::error::one_line(text, "; ", |_| false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request {
            tasks: 1,
            name: "running wc".into(),
            partition: Some("e2e".into()),
            cpus: 1,
            memory_mib: 256,
            dir: "/home/u/cargo-stream/jobs/wc-1".into(),
            env: Default::default(),
            options: vec![
                ("time".into(), "60".into()),
                ("exclusive".into(), String::new()),
            ],
            script: "#!/bin/sh\n".into(),
        }
    }

    #[test]
    fn options_carry_what_the_rest_way_sets() {
        assert_eq!(
            sbatch_args(&request()),
            [
                "--parsable",
                "--job-name=running wc",
                "--chdir=/home/u/cargo-stream/jobs/wc-1",
                "--output=/home/u/cargo-stream/jobs/wc-1/stdout",
                "--error=/home/u/cargo-stream/jobs/wc-1/stderr",
                "--input=/dev/null",
                "--ntasks=1",
                "--cpus-per-task=1",
                "--mem=256M",
                "--partition=e2e",
                "--time=60",
                "--exclusive",
            ]
        );
        let mut odd = request();
        odd.dir = "/x/100%".into();
        assert!(sbatch_args(&odd).contains(&"--output=/x/100%%/stdout".to_owned()));
        // `--instances 3`: one job of three tasks.
        let mut tasks = request();
        tasks.tasks = 3;
        assert!(sbatch_args(&tasks).contains(&"--ntasks=3".to_owned()));
    }

    #[test]
    fn commands_are_quoted_after_the_configuration() {
        let target = SshTarget {
            host: "login".into(),
            port: 22,
            user: "u".into(),
            identity_file: None,
            known_hosts: "/k".into(),
        };
        let plain = Sbatch::new("hpc", target.clone(), None);
        assert_eq!(
            plain.command("sbatch", &["--job-name=a b".into()]),
            "sbatch '--job-name=a b'"
        );
        let conf = Sbatch::new("hpc", target, Some("/etc/my slurm/slurm.conf".into()));
        assert_eq!(
            conf.command("scancel", &["7".into()]),
            "SLURM_CONF='/etc/my slurm/slurm.conf' scancel 7"
        );
    }

    #[test]
    fn job_ids_come_from_parsable_output() {
        assert_eq!(parse_job_id("42\n").as_deref(), Some("42"));
        assert_eq!(parse_job_id("42;cluster2\n").as_deref(), Some("42"));
        assert_eq!(parse_job_id("Submitted batch job 42\n"), None);
        assert_eq!(parse_job_id(""), None);
    }

    /// A job as slurmrestd v0.0.38 gives it.
    fn rest_job(json: &str) -> Job {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn scontrol_lines_read_as_rest_jobs() {
        let line = "JobId=7 JobName=wc UserId=u(1001) GroupId=u(1001) Priority=1 \
                    JobState=FAILED Reason=NonZeroExitCode Dependency=(null) ExitCode=1:0 \
                    RunTime=00:00:01 NodeList=n1 BatchHost=n1 WorkDir=/home/u/my jobs \
                    StdOut=/home/u/out";
        let job = parse_show_job(line, "7").unwrap();
        assert_eq!(
            job,
            rest_job(
                r#"{"job_state": "FAILED", "state_reason": "NonZeroExitCode",
                   "exit_code": 256, "batch_host": "n1", "nodes": "n1"}"#
            )
        );
        let status = super::super::state::status_of(&job);
        assert_eq!(
            status.message.as_deref(),
            Some("Slurm state FAILED, reason NonZeroExitCode, exit code 1")
        );
        let pending = "JobId=8 JobState=PENDING Reason=Resources ExitCode=0:0 NodeList=(null)";
        let job = parse_show_job(pending, "8").unwrap();
        assert_eq!(job.state(), "PENDING");
        assert_eq!(job.nodes, None);
        assert_eq!(parse_show_job(line, "70"), None);
        assert_eq!(
            parse_show_job("JobId=9 JobState=CANCELLED ExitCode=0:15", "9")
                .unwrap()
                .exit_code,
            Some(ExitCode::WaitStatus(15))
        );
    }

    #[test]
    fn squeue_lines_read_as_rest_jobs() {
        let job = parse_queue_line(
            "42\tCOMPLETED\t2026-11-29T17:30:05\t/home/u/my jobs/jobs/wc-1\trunning\twc",
        )
        .unwrap();
        assert!(job.is("42"));
        assert_eq!(job.state(), "COMPLETED");
        assert_eq!(job.submit_time, Some(NoVal::Plain(1_795_973_405)));
        assert_eq!(
            job.current_working_directory.as_deref(),
            Some("/home/u/my jobs/jobs/wc-1")
        );
        assert_eq!(job.name.as_deref(), Some("running\twc"));
        assert_eq!(parse_queue_line("42_3\tRUNNING\tx\t/d\tn"), None);
        assert_eq!(parse_queue_line(""), None);
        assert_eq!(utc_secs("1970-01-01T00:00:00"), Some(0));
        assert_eq!(utc_secs("2000-03-01T00:00:00"), Some(951_868_800));
        assert_eq!(utc_secs("N/A"), None);
    }

    #[test]
    fn sacct_lines_read_as_rest_jobs() {
        let job = parse_sacct("7|CANCELLED by 1001|0:15|n1\n", "7").unwrap();
        assert_eq!(
            job,
            rest_job(r#"{"job_state": "CANCELLED", "exit_code": 15, "nodes": "n1"}"#)
        );
        assert_eq!(parse_sacct("", "7"), None);
    }
}
