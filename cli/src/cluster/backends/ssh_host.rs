//! The `ssh` kind: a plain Linux host reached over SSH, with no cluster manager on it.
//!
//! `submit` uploads the jar (checked, into `REMOTE_DIR/uploads/`), unpacks it into a folder of
//! its own, `REMOTE_DIR/<id>/bundle/`, and starts it there detached from the SSH connection:
//! a small wrapper, `job.sh`, runs in a session of its own (`setsid`) and runs the bundle's
//! `run.sh`, with the job's stdout and stderr in files next to it. The folder then holds all
//! that `status`, `kill` and `logs` read:
//!
//! ```text
//! REMOTE_DIR/<id>/
//!   bundle/      the unpacked jar (run.sh, META-INF/MANIFEST.MF, the binary)
//!   job.sh       the wrapper; supervise restarts the job when it exits non-zero
//!   pid          the wrapper's pid, also the job's process group
//!   stdout       the job's standard output (appended over restarts)
//!   stderr       its standard error
//!   attempts     how many times the job was started
//!   exit-code    the job's exit code, once it has ended
//!   killed       written by `cargo stream kill`
//! ```
//!
//! The job starts in its folder, so a relative `CHECKPOINT_DIR` lands there too. Driver cores,
//! memory and `conf` are Spark's and do not apply to a plain host.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::cluster::backend::{
    Backend, JobSpec, JobState, Listed, LogStream, Payload, Status, Submitted,
};
use crate::cluster::profile::{Profile, SshTarget};
use crate::cluster::record::Record;
use crate::cluster::run_sh::unpack_fn;
use crate::cluster::stage::staged_name;
use crate::cluster::transport::ssh::{LazySession, Output, Session, quote};
use crate::cluster::utc::Utc;
use crate::error::with_help;
use crate::shell::Shell;

/// What an `ssh` record keeps.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Submission {
    /// `user@host:port`.
    pub host: String,
    /// The job's folder on the host.
    pub dir: String,
    /// The job's process ID there.
    pub pid: u32,
    /// The jar on the host.
    pub location: String,
}

/// How often `kill` looks whether the job has stopped.
const KILL_POLL: Duration = Duration::from_millis(250);

/// A plain Linux host over SSH (`kind = "ssh"`).
pub struct SshHost {
    cluster: String,
    target: SshTarget,
    remote_dir: String,
    session: LazySession,
    /// The profile's other `hosts`, each a backend of its own (its own connection).
    others: Vec<SshHost>,
}

impl std::fmt::Debug for SshHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshHost")
            .field("cluster", &self.cluster)
            .field("target", &self.target)
            .field("remote_dir", &self.remote_dir)
            .finish_non_exhaustive()
    }
}

impl SshHost {
    /// The backend for an `ssh` profile (no connection is made yet).
    pub fn new(profile: &Profile) -> anyhow::Result<SshHost> {
        let mut targets = profile.ssh_hosts()?.into_iter();
        let one = |target: SshTarget| SshHost {
            cluster: profile.name.clone(),
            session: LazySession::new(target.clone(), &profile.name),
            target,
            remote_dir: profile.remote_dir(),
            others: Vec::new(),
        };
        let mut first = one(targets.next().expect("a profile has at least one host"));
        first.others = targets.map(one).collect();
        Ok(first)
    }

    /// The backend of the host a recorded instance runs on, when it is another of the
    /// profile's `hosts` than the first (`None`: this one).
    fn other_for(&self, record: &Record) -> anyhow::Result<Option<&SshHost>> {
        let host = &record.payload::<Submission>()?.host;
        if *host == self.target.to_string() {
            return Ok(None);
        }
        Ok(self.others.iter().find(|o| o.target.to_string() == *host))
    }

    /// The host of each of `count` instances: round-robin over the profile's `hosts`.
    fn placed(&self, count: u32) -> Vec<&SshHost> {
        let all: Vec<&SshHost> = std::iter::once(self).chain(&self.others).collect();
        place(count, all.len())
            .into_iter()
            .map(|slot| all[slot])
            .collect()
    }

    /// The connection, opened on first use and kept for the backend's life.
    fn session(&self) -> anyhow::Result<&Session> {
        self.session.get()
    }

    /// The remote folder of a recorded submission.
    fn folder(record: &Record) -> anyhow::Result<&str> {
        Some(record.payload::<Submission>()?.dir.as_str())
            .filter(|d| d.starts_with('/'))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the record of `{}` names no remote folder (`data.dir`)",
                    record.id
                )
            })
    }

    /// What the job's folder says: see [`Probe`].
    fn probe(&self, dir: &str) -> anyhow::Result<Probe> {
        let script = format!(
            "cd -- {} 2>/dev/null || {{ echo gone=1; exit 0; }}\n{ALIVE}\n{FILES}",
            quote(dir)
        );
        let out = self.script(&script, || format!("read the job folder `{dir}`"))?;
        Ok(Probe::parse(&out.stdout))
    }

    /// Runs a shell script on the host (given on stdin, so that no value shows on a command
    /// line); a non-zero exit is an error saying what failed to `what`.
    fn script(&self, script: &str, what: impl Fn() -> String) -> anyhow::Result<Output> {
        let out = self
            .session()?
            .exec_with_input("sh -s", script.as_bytes())?;
        if !out.success() {
            anyhow::bail!(
                "failed to {} on `{}`: {}",
                what(),
                self.target,
                out.stderr.trim()
            );
        }
        Ok(out)
    }
}

/// Where each of `count` instances goes among `hosts` hosts: instance `i` on host
/// `i mod hosts`, so that they spread evenly in the order the profile lists the hosts.
pub fn place(count: u32, hosts: usize) -> Vec<usize> {
    (0..count as usize).map(|i| i % hosts.max(1)).collect()
}

/// The jobs in the output of the listing script of [`SshHost::jobs`]: a `job=ID` line, then
/// `started=SECS` and the lines of a [`Probe`], for each.
fn listed_jobs(text: &str) -> Vec<Listed> {
    let mut jobs = Vec::new();
    let mut blocks = text.split("job=").skip(1);
    for block in blocks.by_ref() {
        let (id, rest) = block.split_once('\n').unwrap_or((block, ""));
        let started = rest
            .lines()
            .find_map(|l| l.strip_prefix("started="))
            .and_then(|t| t.trim().parse().ok());
        jobs.push(Listed {
            id: id.trim().to_owned(),
            state: Probe::parse(rest).status(String::new()).state,
            name: None,
            submitted_at: started,
        });
    }
    jobs.sort_by_key(|job| std::cmp::Reverse(job.submitted_at));
    jobs
}

/// Whether `id` could be one [`submission_id`] made: letters, digits, `-` and `_`.
fn is_submission_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A shell function, `alive`: whether the wrapper whose pid is in `./pid` still runs (and is
/// ours: a pid reused by another program after a restart of the host does not count).
const ALIVE: &str = r#"alive() {
    pid=$(cat pid 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    [ -r "/proc/$pid/cmdline" ] || return 0
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q 'job\.sh'
}"#;

/// What a probe prints of a job's folder (in the folder, after [`ALIVE`]). Whether the
/// wrapper is alive is asked FIRST: it writes `exit-code` before it ends, so a wrapper found
/// dead has its exit code already written, while one that ends between reading the files and
/// asking would look dead without an exit code (reported as FAILED "without an exit code").
const FILES: &str = "alive && echo alive=1
[ -f exit-code ] && echo \"exit=$(cat exit-code)\"
[ -f killed ] && echo killed=1
[ -f attempts ] && echo \"attempts=$(cat attempts)\"
exit 0
";

/// The state of a job's folder on the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Probe {
    gone: bool,
    alive: bool,
    exit: Option<i32>,
    killed: bool,
    attempts: u32,
}

impl Probe {
    fn parse(text: &str) -> Probe {
        let mut probe = Probe::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("gone", _)) => probe.gone = true,
                Some(("alive", _)) => probe.alive = true,
                Some(("killed", _)) => probe.killed = true,
                Some(("exit", code)) => probe.exit = code.trim().parse().ok(),
                Some(("attempts", n)) => probe.attempts = n.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
        probe
    }

    fn status(&self, location: String) -> Status {
        let (state, message) = if self.gone {
            (
                JobState::Unknown,
                Some("its folder is gone from the host".to_owned()),
            )
        } else if self.alive {
            let message = (self.attempts > 1).then(|| {
                format!(
                    "restarted {} time(s) after failing (supervise)",
                    self.attempts - 1
                )
            });
            (JobState::Running, message)
        } else if self.killed {
            (
                JobState::Killed,
                Some(match self.exit {
                    Some(code) => format!("stopped by `cargo stream kill` (exit code {code})"),
                    None => "stopped by `cargo stream kill` (forced)".to_owned(),
                }),
            )
        } else {
            match self.exit {
                Some(0) => (JobState::Finished, None),
                Some(code) => (
                    JobState::Failed,
                    Some(format!("the job exited with code {code}")),
                ),
                None => (
                    JobState::Failed,
                    Some(
                        "the job stopped without an exit code (killed by a signal, or the host restarted)"
                            .to_owned(),
                    ),
                ),
            }
        };
        Status {
            state,
            message,
            location: Some(location),
        }
    }
}

/// Refuses a jar whose entries could land outside the folder it is unpacked into, or that holds
/// symbolic links (which a later entry could be written through). Checked here, on the local
/// copy that the host's copy was verified against, whatever tool unpacks it there (the `slurm`
/// kind checks its jars with it too).
pub(crate) fn check_entries(artifact: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::open(artifact)
        .with_context(|| format!("failed to open `{}`", artifact.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("`{}` is not a zip archive", artifact.display()))?;
    let mut manifest = false;
    for index in 0..zip.len() {
        let entry = zip.by_index_raw(index)?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let unsafe_name = entry.enclosed_name().is_none()
            || name.starts_with('/')
            || name.split(['/', '\\']).any(|part| part == "..");
        let symlink = entry.is_symlink()
            || entry
                .unix_mode()
                .is_some_and(|mode| mode & 0o170000 == 0o120000);
        if unsafe_name || symlink {
            let why = if symlink {
                "is a symbolic link"
            } else {
                "would be written outside the job's folder"
            };
            return Err(with_help(
                anyhow::anyhow!(
                    "refusing to unpack `{}`: its entry `{name}` {why}",
                    artifact.display()
                ),
                "submit a bundle written by `cargo stream package`",
            ));
        }
        manifest |= name == "META-INF/MANIFEST.MF";
    }
    if !manifest {
        return Err(with_help(
            anyhow::anyhow!(
                "`{}` has no `META-INF/MANIFEST.MF`, so it cannot be run",
                artifact.display()
            ),
            "submit a bundle written by `cargo stream package`",
        ));
    }
    Ok(())
}

/// `word-count-20261124-153012-a1b2`: the job's name, the time (UTC) and 4 random hex digits.
fn submission_id(name: &str) -> String {
    let mut clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    clean = clean.trim_matches('-').to_owned();
    if clean.is_empty() {
        clean = "job".into();
    }
    let now = std::time::SystemTime::now();
    let t = Utc::from_time(now);
    let mut random = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&(now, std::process::id()), &mut random);
    let random = std::hash::Hasher::finish(&random) as u16;
    format!(
        "{clean}-{:04}{:02}{:02}-{:02}{:02}{:02}-{random:04x}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// The wrapper the job runs under, `job.sh`; `@SUPERVISE@` is 1 or 0.
const WRAPPER: &str = r#"#!/bin/sh
# Written by `cargo stream submit` (kind `ssh`): runs the bundle in ./bundle detached from the
# SSH connection, and keeps next to it what `cargo stream status`, `kill` and `logs` read.
cd "$(dirname "$0")" || exit 1
echo $$ > pid
supervise=@SUPERVISE@
stop=0
signalled=0
child=
# `kill` sends SIGTERM to this script only, which passes it on: the job stops gracefully on the
# first SIGTERM and at once on a second one, so it must not get one from each of us.
trap 'stop=1; signalled=1; [ -z "$child" ] || kill -TERM "$child" 2>/dev/null' TERM INT
trap '' HUP
attempt=0
while :; do
    attempt=$((attempt + 1))
    echo "$attempt" > attempts
    sh bundle/run.sh "$@" </dev/null >>stdout 2>>stderr &
    child=$!
    code=0
    wait "$child" || code=$?
    # A trapped signal interrupts `wait`: wait again for the job's own exit code.
    while [ "$signalled" = 1 ]; do
        signalled=0
        if kill -0 "$child" 2>/dev/null; then
            code=0
            wait "$child" || code=$?
        fi
    done
    if [ "$code" -ne 0 ] && [ "$supervise" = 1 ] && [ "$stop" = 0 ]; then
        echo "cargo-stream: the job exited with code $code; starting it again (supervise)" >>stderr
        sleep 1
        [ "$stop" = 0 ] && continue
    fi
    break
done
echo "$code" > exit-code.part && mv -f exit-code.part exit-code
"#;

impl SshHost {
    /// The script that unpacks the uploaded jar into a new folder and starts the job.
    fn start_script(&self, job: &JobSpec, jar: &str, id: &str) -> anyhow::Result<String> {
        let base = crate::cluster::transport::ssh::shell_dir(&self.remote_dir);
        let mut exports = String::new();
        for (key, value) in &job.env {
            let valid = key
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(with_help(
                    anyhow::anyhow!("`{key}` is not a valid environment variable name"),
                    "use letters, digits and `_`, not starting with a digit",
                ));
            }
            exports.push_str(&format!("{key}={}\nexport {key}\n", quote(value)));
        }
        let args: Vec<String> = job.args.iter().map(|a| quote(a)).collect();
        let run_sh = String::from_utf8_lossy(crate::package::RUN_SH);
        let unpack = unpack_fn();
        let wrapper = WRAPPER.replace("@SUPERVISE@", if job.supervise { "1" } else { "0" });
        Ok(format!(
            r#"umask 077
jar={jar}
fail() {{ echo "cargo-stream: $1" >&2; if [ -n "${{made:-}}" ]; then cd .. && rm -rf -- {id}; fi; exit "${{2:-4}}"; }}
mkdir -p -- {base} && cd -- {base} || fail "cannot create the folder {base_shown}"
mkdir -- {id} || fail "cannot create the folder {id}"
made=1
cd -- {id} || fail "cannot enter the folder {id}"
pwd
{unpack}
unpack "$jar" bundle
if [ ! -f bundle/run.sh ]; then
cat > bundle/run.sh <<'CARGO_STREAM_RUN_SH'
{run_sh}
CARGO_STREAM_RUN_SH
fi
cat > job.sh <<'CARGO_STREAM_JOB_SH'
{wrapper}
CARGO_STREAM_JOB_SH
command -v setsid >/dev/null 2>&1 || fail "setsid (util-linux) is not installed" 6
{exports}setsid sh "$PWD/job.sh" {args} </dev/null >/dev/null 2>&1 &
i=0
while [ ! -s pid ] && [ "$i" -lt 100 ]; do sleep 0.1 2>/dev/null || sleep 1; i=$((i + 1)); done
[ -s pid ] || fail "the job did not start (no pid file after 10 s)"
cat pid
"#,
            jar = quote(jar),
            id = quote(id),
            base_shown = self.remote_dir.replace(['"', '$', '`', '\\'], "_"),
            args = args.join(" "),
        ))
    }
}

impl Backend for SshHost {
    fn submit(&self, shell: &mut Shell, job: &JobSpec) -> anyhow::Result<Submitted> {
        check_entries(&job.artifact)?;
        let session = self.session()?;
        let uploads = format!("{}/uploads", self.remote_dir.trim_end_matches('/'));
        let jar = session.upload(
            shell,
            &job.artifact,
            &uploads,
            &staged_name(&job.artifact, &job.sha256),
            &job.sha256,
        )?;
        let id = submission_id(&job.name);
        let script = self.start_script(job, &jar, &id)?;
        let out = session.exec_with_input("sh -s", script.as_bytes())?;
        let mut lines = out.stdout.lines();
        let (Some(dir), Some(pid)) = (lines.next(), lines.next()) else {
            let help = match out.code {
                5 => format!(
                    "install `python3` or `unzip` on `{}` (one of them unpacks the jar)",
                    self.target.host
                ),
                6 => format!(
                    "install util-linux (for `setsid`) on `{}`",
                    self.target.host
                ),
                _ => format!(
                    "check that `remote-dir` (`{}`) is writable by `{}` on `{}`",
                    self.remote_dir, self.target.user, self.target.host
                ),
            };
            return Err(with_help(
                anyhow::anyhow!(
                    "failed to start `{}` on `{}` (exit code {}): {}",
                    job.name,
                    self.target,
                    out.code,
                    out.stderr.trim()
                ),
                help,
            ));
        };
        let pid: u32 = pid
            .trim()
            .parse()
            .with_context(|| format!("`{}` answered a pid of `{pid}`", self.target))?;
        shell.status(
            "Started",
            format!("`{id}` on `{}` (pid {pid}) in `{dir}`", self.target),
        );
        Ok(Submitted {
            message: format!("started on {} as pid {pid} in {dir}", self.target.host),
            location: jar.clone(),
            data: Payload::Ssh(Submission {
                host: self.target.to_string(),
                dir: dir.to_owned(),
                pid,
                location: jar,
            }),
            id,
        })
    }

    fn adopt(&self, id: &str) -> anyhow::Result<Payload> {
        // The job may be on any of the profile's hosts: the first that has its folder.
        let mut found = self.adopt_here(id);
        for other in &self.others {
            if found.is_ok() {
                break;
            }
            if let Ok(payload) = other.adopt_here(id) {
                found = Ok(payload);
            }
        }
        found
    }

    fn jobs(&self) -> anyhow::Result<Vec<Listed>> {
        let mut jobs = self.jobs_here()?;
        for other in &self.others {
            jobs.extend(other.jobs_here()?);
        }
        jobs.sort_by_key(|job| std::cmp::Reverse(job.submitted_at));
        Ok(jobs)
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
        for (index, host) in self.placed(count).into_iter().enumerate() {
            let index = index as u32;
            shell.status(
                "Instance",
                format!("{index} of {count} on `{}`", host.target),
            );
            started.push(host.submit(shell, &job.instance(index, count))?);
        }
        Ok(())
    }

    fn status(&self, record: &Record) -> anyhow::Result<Status> {
        if let Some(other) = self.other_for(record)? {
            return other.status(record);
        }
        let dir = Self::folder(record)?;
        let probe = self.probe(dir)?;
        Ok(probe.status(format!("{}:{dir}", self.target)))
    }

    fn kill(&self, record: &Record, grace: Duration) -> anyhow::Result<String> {
        if let Some(other) = self.other_for(record)? {
            return other.kill(record, grace);
        }
        let dir = Self::folder(record)?;
        let script = format!(
            "cd -- {} 2>/dev/null || {{ echo gone; exit 0; }}\n{ALIVE}\n\
             if [ -f exit-code ]; then echo \"ended $(cat exit-code)\"; exit 0; fi\n\
             if alive; then date +%s > killed; kill -TERM \"$pid\" && echo sent; else echo dead; fi\n",
            quote(dir)
        );
        let out = self
            .session()?
            .exec_with_input("sh -s", script.as_bytes())?;
        let answer = out.stdout.trim();
        match answer {
            "sent" => {}
            "gone" => {
                anyhow::bail!(
                    "the folder of `{}` (`{dir}`) is gone from `{}`",
                    record.id,
                    self.target
                )
            }
            "dead" => return Ok(format!("`{}` was not running", record.id)),
            other if other.starts_with("ended ") => {
                return Ok(format!(
                    "`{}` had already ended (exit code {})",
                    record.id,
                    other.trim_start_matches("ended ")
                ));
            }
            _ => anyhow::bail!(
                "failed to signal `{}` on `{}`: {}",
                record.id,
                self.target,
                out.stderr.trim()
            ),
        }
        let start = Instant::now();
        loop {
            if !self.probe(dir)?.alive {
                return Ok(format!(
                    "`{}` stopped gracefully {:.1} s after SIGTERM",
                    record.id,
                    start.elapsed().as_secs_f64()
                ));
            }
            if start.elapsed() >= grace {
                break;
            }
            std::thread::sleep(KILL_POLL.min(grace.saturating_sub(start.elapsed())));
        }
        // The wrapper leads the job's process group (`setsid`): SIGKILL takes all of it.
        let script = format!(
            "cd -- {} || exit 1\n{ALIVE}\n\
             if alive; then kill -KILL -- \"-$pid\" 2>/dev/null; kill -KILL \"$pid\" 2>/dev/null; fi\nexit 0\n",
            quote(dir)
        );
        self.script(&script, || format!("force `{}` down", record.id))?;
        Ok(format!(
            "`{}` did not stop within {} s of SIGTERM: killed (SIGKILL)",
            record.id,
            grace.as_secs()
        ))
    }

    fn logs(&self, record: &Record, stream: LogStream, offset: u64) -> anyhow::Result<Vec<u8>> {
        if let Some(other) = self.other_for(record)? {
            return other.logs(record, stream, offset);
        }
        let dir = Self::folder(record)?;
        self.session()?
            .read_from(&format!("{dir}/{}", stream.name()), offset)
    }
}

impl SshHost {
    /// A job's payload, from its folder on this host.
    fn adopt_here(&self, id: &str) -> anyhow::Result<Payload> {
        if !is_submission_id(id) {
            anyhow::bail!(
                "`{id}` is not the ID of a job on an SSH host (`NAME-YYYYMMDD-HHMMSS-XXXX`)"
            );
        }
        let base = crate::cluster::transport::ssh::shell_dir(&self.remote_dir);
        let script = format!(
            "cd -- {base} 2>/dev/null && cd -- {id} 2>/dev/null && [ -f job.sh ] || exit 3\npwd\ncat pid 2>/dev/null || echo 0\n",
            id = quote(id)
        );
        let out = self
            .session()?
            .exec_with_input("sh -s", script.as_bytes())?;
        let mut lines = out.stdout.lines();
        let (true, Some(dir)) = (out.success(), lines.next()) else {
            return Err(with_help(
                anyhow::anyhow!(
                    "`{}` has no job `{id}` in `{}`",
                    self.target,
                    self.remote_dir
                ),
                format!(
                    "`cargo stream list --cluster {}` lists the jobs there",
                    self.cluster
                ),
            ));
        };
        Ok(Payload::Ssh(Submission {
            host: self.target.to_string(),
            dir: dir.to_owned(),
            pid: lines
                .next()
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or(0),
            location: String::new(),
        }))
    }

    /// The jobs in this host's job folders.
    fn jobs_here(&self) -> anyhow::Result<Vec<Listed>> {
        // Every job folder (one with a `job.sh`), probed as `status` does, in one round trip.
        let base = crate::cluster::transport::ssh::shell_dir(&self.remote_dir);
        let script = format!(
            "cd -- {base} 2>/dev/null || exit 0\n{ALIVE}\n\
             for d in */; do d=${{d%/}}; [ -f \"$d/job.sh\" ] || continue\n\
             ( cd -- \"$d\" || exit 0; echo \"job=$d\"; echo \"started=$(stat -c %Y job.sh)\"\n\
             {FILES} )\n\
             done\nexit 0\n"
        );
        let out = self.script(&script, || {
            format!("list the job folders in `{}`", self.remote_dir)
        })?;
        Ok(listed_jobs(&out.stdout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_go_round_robin_over_the_hosts() {
        assert_eq!(place(5, 2), [0, 1, 0, 1, 0]);
        assert_eq!(place(3, 3), [0, 1, 2]);
        assert_eq!(place(2, 3), [0, 1]);
        assert_eq!(place(3, 1), [0, 0, 0]);
        assert!(place(0, 2).is_empty());
        // The profile's hosts become the backends instances are placed on, in its order.
        let keys: crate::cluster::ProfileKeys = toml::from_str(
            "kind = \"ssh\"\nhosts = [\"a\", \"b:2222\", \"[::1]:23\"]\nport = 2200\nuser = \"u\"\n",
        )
        .unwrap();
        let profile = Profile {
            name: "box".into(),
            keys,
            origins: vec!["test".into()],
        };
        let host = SshHost::new(&profile).unwrap();
        let placed: Vec<String> = host
            .placed(4)
            .iter()
            .map(|h| h.target.to_string())
            .collect();
        assert_eq!(placed, ["u@a:2200", "u@b:2222", "u@::1:23", "u@a:2200"]);
        // Both `host` and `hosts` is refused, naming the cluster.
        let both: crate::cluster::ProfileKeys =
            toml::from_str("kind = \"ssh\"\nhost = \"a\"\nhosts = [\"b\"]\n").unwrap();
        let err = SshHost::new(&Profile {
            name: "box".into(),
            keys: both,
            origins: vec!["test".into()],
        })
        .unwrap_err();
        assert!(err.to_string().contains("both `host` and `hosts`"), "{err}");
    }

    #[test]
    fn job_folders_list_with_their_states() {
        let jobs = listed_jobs(
            "job=wc-20261129-100000-aaaa\nstarted=100\nexit=0\n\
             job=wc-20261129-110000-bbbb\nstarted=200\nalive=1\n\
             job=wc-20261129-120000-cccc\nstarted=300\nexit=143\nkilled=1\n",
        );
        let seen: Vec<(&str, JobState, Option<u64>)> = jobs
            .iter()
            .map(|j| (j.id.as_str(), j.state, j.submitted_at))
            .collect();
        assert_eq!(
            seen,
            [
                ("wc-20261129-120000-cccc", JobState::Killed, Some(300)),
                ("wc-20261129-110000-bbbb", JobState::Running, Some(200)),
                ("wc-20261129-100000-aaaa", JobState::Finished, Some(100)),
            ]
        );
        assert!(listed_jobs("").is_empty());
        assert!(is_submission_id("wc-20261129-120000-cccc"));
        assert!(!is_submission_id("../etc") && !is_submission_id("-x") && !is_submission_id(""));
    }
    use std::io::Write as _;

    fn jar(dir: &Path, entries: &[(&str, Option<u32>)]) -> std::path::PathBuf {
        let path = dir.join("t.jar");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (name, mode) in entries {
            let mut options = zip::write::SimpleFileOptions::default();
            if let Some(mode) = mode {
                options = options.unix_permissions(*mode);
            }
            if mode.is_some_and(|m| m & 0o170000 == 0o120000) {
                zip.add_symlink(*name, "/etc", options).unwrap();
            } else {
                zip.start_file(*name, options).unwrap();
                zip.write_all(b"x").unwrap();
            }
        }
        zip.finish().unwrap();
        path
    }

    #[test]
    fn entries_escaping_the_folder_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let ok = jar(
            tmp.path(),
            &[("META-INF/MANIFEST.MF", None), ("bin/x", Some(0o755))],
        );
        check_entries(&ok).unwrap();
        for bad in ["../evil", "/etc/passwd", "a/../../b"] {
            let path = jar(tmp.path(), &[("META-INF/MANIFEST.MF", None), (bad, None)]);
            let err = format!("{:#}", check_entries(&path).unwrap_err());
            assert!(err.contains("refusing to unpack"), "{bad}: {err}");
        }
        let link = jar(
            tmp.path(),
            &[("META-INF/MANIFEST.MF", None), ("l", Some(0o120777))],
        );
        let err = format!("{:#}", check_entries(&link).unwrap_err());
        assert!(err.contains("symbolic link"), "{err}");
        let bare = jar(tmp.path(), &[("x", None)]);
        assert!(check_entries(&bare).is_err());
    }

    #[test]
    fn ids_are_name_time_and_random() {
        let id = submission_id("word count/v2");
        assert!(id.starts_with("word-count-v2-"), "{id}");
        let parts: Vec<&str> = id.rsplitn(4, '-').collect();
        assert_eq!(parts[0].len(), 4);
        assert_eq!(parts[1].len(), 6);
        assert_eq!(parts[2].len(), 8);
        assert!(submission_id("..").starts_with("job-"));
    }

    #[test]
    fn probes_ask_whether_the_wrapper_lives_before_reading_its_exit_code() {
        // The other order races with a job that ends between the two: dead, no exit code.
        let alive = FILES.find("alive &&").unwrap();
        let exit = FILES.find("exit-code").unwrap();
        assert!(alive < exit, "{FILES}");
        // A real shell on a finished job's folder: its exit code, not alive.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pid"), "999999999\n").unwrap();
        std::fs::write(dir.path().join("exit-code"), "0\n").unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{ALIVE}\n{FILES}"))
            .current_dir(dir.path())
            .output()
            .unwrap();
        let probe = Probe::parse(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(probe.status(String::new()).state, JobState::Finished);
    }

    #[test]
    fn probes_map_to_spark_states() {
        let status = |text: &str| Probe::parse(text).status(String::new()).state;
        assert_eq!(status("alive=1\nattempts=1\n"), JobState::Running);
        assert_eq!(status("exit=0\n"), JobState::Finished);
        assert_eq!(status("exit=1\n"), JobState::Failed);
        assert_eq!(status(""), JobState::Failed);
        assert_eq!(status("exit=0\nkilled=1\n"), JobState::Killed);
        assert_eq!(status("killed=1\n"), JobState::Killed);
        assert_eq!(status("gone=1\n"), JobState::Unknown);
        let restarted = Probe::parse("alive=1\nattempts=3\n").status(String::new());
        assert!(restarted.message.unwrap().contains("restarted 2 time"));
    }
}
