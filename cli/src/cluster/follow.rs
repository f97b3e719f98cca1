//! Following a submitted job: its status refreshed into the local record, waiting for its end,
//! and its logs as they grow. A cluster that cannot be reached is asked again with backoff,
//! over a new connection each time (the backend is made again from the record), for a bounded
//! time ([`retry_budget`]), with a warning per attempt naming the cluster, the host and the
//! cause; then the verb fails with exit code 5 ([`crate::exit`]).

use std::io::Write as _;

use anyhow::Context as _;
use std::time::{Duration, Instant};

use crate::cluster::backend::{Backend, JobState, LogStream, Status};
use crate::cluster::profile::Profile;
use crate::cluster::record::{Record, combined_state};
use crate::error::with_help;
use crate::exit::{self, JobEnded, WaitTimedOut};
use crate::shell::Shell;

/// How often a waiting or following command asks the cluster.
pub const POLL: Duration = Duration::from_millis(500);

/// The first pause before asking an unreachable cluster again; it doubles up to
/// [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// The longest pause between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// How long a verb keeps asking a cluster that cannot be reached before it gives up (exit code
/// 5): `CARGO_STREAM_RETRY_SECS` seconds (0 gives up at the first failure), else 60 s. The
/// budget counts from the first failure in a row; an answer resets it.
pub fn retry_budget() -> Duration {
    std::env::var("CARGO_STREAM_RETRY_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(60))
}

/// The backend of the cluster a recorded job was submitted to, from the profile saved with it.
pub fn backend_of(record: &Record) -> anyhow::Result<Box<dyn Backend>> {
    let profile = Profile {
        name: record.cluster.clone(),
        keys: record.profile.clone(),
        origins: vec![format!(
            "the record of `{}` in `{}`",
            record.id,
            crate::cluster::record::dir().display()
        )],
    };
    crate::cluster::backend(&profile)
}

/// A record made for a job this machine did not submit (`--cluster NAME ID`): the profile's
/// keys and the backend's payload for the bare ID. It is never saved ([`is_adopted`]).
pub fn adopt(profile: &Profile, id: &str) -> anyhow::Result<Record> {
    let backend = crate::cluster::backend(profile)?;
    let data = backend.adopt(id)?;
    Ok(Record {
        id: id.to_owned(),
        cluster: profile.name.clone(),
        kind: profile.kind(),
        profile: profile.keys.clone(),
        name: id.to_owned(),
        artifact: Default::default(),
        sha256: String::new(),
        location: String::new(),
        submitted_at: 0,
        state: JobState::Unknown,
        message: None,
        data,
        instances: Vec::new(),
        view: None,
    })
}

/// The record of job `id`: the local one; with `cluster`, the local one if it was submitted
/// there, else one made by [`adopt`] from profile `cluster` (the user's clusters file, the
/// `Stream.toml` of the job around `manifest_path` or the current folder, the environment).
pub fn record_for(
    id: &str,
    cluster: Option<&str>,
    manifest_path: Option<&std::path::Path>,
) -> anyhow::Result<Record> {
    let Some(cluster) = cluster else {
        return Record::load(id).map_err(|err| {
            if crate::error::help_of(&err).is_some_and(|h| h.starts_with("`cargo stream list`")) {
                with_help(
                    err,
                    format!(
                        "`cargo stream list` shows the submissions recorded in `{}`; for a job submitted elsewhere, name its cluster: `--cluster NAME {id}`",
                        crate::cluster::record::dir().display()
                    ),
                )
            } else {
                err
            }
        });
    };
    if let Ok(record) = Record::load(id)
        && record.cluster == cluster
    {
        return Ok(record);
    }
    let stream_toml = crate::cluster::submit::stream_toml(manifest_path);
    let profile = crate::cluster::profile::load(
        cluster,
        stream_toml.as_deref(),
        &crate::cluster::profile::CommonKeys::default(),
    )?;
    adopt(&profile, id).with_context(|| format!("cannot follow `{id}` on cluster `{cluster}`"))
}

/// The jobs cluster `cluster` knows, whoever submitted them (the profile loaded as
/// [`record_for`] does).
pub fn cluster_jobs(
    cluster: &str,
    manifest_path: Option<&std::path::Path>,
) -> anyhow::Result<Vec<crate::cluster::backend::Listed>> {
    let stream_toml = crate::cluster::submit::stream_toml(manifest_path);
    let profile = crate::cluster::profile::load(
        cluster,
        stream_toml.as_deref(),
        &crate::cluster::profile::CommonKeys::default(),
    )?;
    crate::cluster::backend(&profile)?
        .jobs()
        .with_context(|| format!("failed to list the jobs of cluster `{cluster}`"))
}

/// Whether `record` was made by [`adopt`] (a submission always records its jar's checksum).
pub fn is_adopted(record: &Record) -> bool {
    record.sha256.is_empty()
}

/// Asks the cluster for the job's status and saves it in the record (not an adopted one). A
/// job of several instances is asked about each (kept in [`Record::instances`]); its status is
/// their [`combined_state`], with a message counting them by state.
pub fn refresh(backend: &dyn Backend, record: &mut Record) -> anyhow::Result<Status> {
    let before = (
        record.state,
        record.message.clone(),
        record.instances.clone(),
    );
    let status = if record.instances.is_empty() {
        backend.status(record)?
    } else {
        instances_status(backend, record)?
    };
    record.state = status.state;
    record.message = status.message.clone();
    let changed = before
        != (
            record.state,
            record.message.clone(),
            record.instances.clone(),
        );
    if changed && !is_adopted(record) {
        record.save()?;
    }
    Ok(status)
}

/// Each instance's status, kept in the record; a Slurm job's tasks (one cluster ID) asked
/// once. The job's state is their [`combined_state`].
fn instances_status(backend: &dyn Backend, record: &mut Record) -> anyhow::Result<Status> {
    let mut asked: Vec<(String, Status)> = Vec::new();
    for index in 0..record.instances.len() {
        let view = record.instance(record.instances[index].index)?;
        let status = match asked.iter().find(|(id, _)| *id == view.id) {
            Some((_, status)) => status.clone(),
            _ => {
                let status = backend.status(&view)?;
                asked.push((view.id.clone(), status.clone()));
                status
            }
        };
        let one = &mut record.instances[index];
        one.state = status.state;
        one.message = status.message;
        one.location = status.location;
    }
    let states: Vec<JobState> = record.instances.iter().map(|i| i.state).collect();
    let state = combined_state(&states);
    let mut counts: Vec<(JobState, usize)> = Vec::new();
    for s in &states {
        match counts.iter_mut().find(|(c, _)| c == s) {
            Some((_, n)) => *n += 1,
            None => counts.push((*s, 1)),
        }
    }
    let counted: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let mut message = format!("{} instances: {}", states.len(), counted.join(", "));
    if let Some(bad) = record
        .instances
        .iter()
        .find(|i| matches!(i.state, JobState::Failed | JobState::Error))
        && let Some(why) = &bad.message
    {
        message.push_str(&format!("; instance {}: {why}", bad.index));
    }
    Ok(Status {
        state,
        message: Some(message),
        location: None,
    })
}

/// Stops every instance of the job (one call for a job of one), each gracefully as
/// [`Backend::kill`] does, all at once (one thread and connection each, so that `grace` is
/// not spent N times over); instances that share a cluster ID (a Slurm job's tasks) are
/// stopped by one call. Returns each call's message, with the instance it was for.
pub fn kill_all(
    backend: &dyn Backend,
    record: &Record,
    grace: Duration,
) -> anyhow::Result<Vec<(Option<u32>, String)>> {
    if record.instances.is_empty() {
        return Ok(vec![(None, backend.kill(record, grace)?)]);
    }
    let mut views: Vec<(u32, Record)> = Vec::new();
    for one in &record.instances {
        if !views.iter().any(|(_, v)| v.id == one.id) {
            views.push((one.index, record.instance(one.index)?));
        }
    }
    let results: Vec<anyhow::Result<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = views
            .iter()
            .map(|(index, view)| {
                scope.spawn(move || {
                    let backend = backend_of(view)?;
                    backend
                        .kill(view, grace)
                        .with_context(|| format!("failed to stop instance {index}"))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("stopping an instance panicked")))
            })
            .collect()
    });
    let mut messages = Vec::new();
    let mut first_err = None;
    for ((index, _), result) in views.iter().zip(results) {
        match result {
            Ok(message) => messages.push((Some(*index), message)),
            Err(err) => {
                first_err.get_or_insert(err);
            }
        }
    }
    // Every instance was asked to stop; the first that could not be is the error.
    match first_err {
        Some(err) => Err(err),
        None => Ok(messages),
    }
}

/// The backend a follower talks to: the one it was given, or, after the cluster could not be
/// reached, one made again from the record (a new connection).
struct Link<'a> {
    given: &'a dyn Backend,
    remade: Option<Box<dyn Backend>>,
    budget: Duration,
}

impl<'a> Link<'a> {
    fn new(given: &'a dyn Backend) -> Link<'a> {
        Link {
            given,
            remade: None,
            budget: retry_budget(),
        }
    }

    /// Runs `op`; while it fails because the cluster cannot be reached, warns, waits (doubling
    /// from [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`]), reconnects and runs it again, until the
    /// budget is spent.
    fn call<T>(
        &mut self,
        shell: &mut Shell,
        record: &mut Record,
        mut op: impl FnMut(&dyn Backend, &mut Record) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut first_failure: Option<Instant> = None;
        let mut pause = FIRST_BACKOFF;
        let mut attempt = 0u32;
        loop {
            let backend = self.remade.as_deref().unwrap_or(self.given);
            let err = match op(backend, record) {
                Ok(value) => return Ok(value),
                Err(err) if exit::is_unreachable(&err) => err,
                Err(err) => return Err(err),
            };
            attempt += 1;
            let since = *first_failure.get_or_insert_with(Instant::now);
            let left = self.budget.saturating_sub(since.elapsed());
            if left.is_zero() {
                return Err(gave_up(err, record, since.elapsed(), attempt));
            }
            let pause_now = pause.min(left);
            shell.warn(format!(
                "cluster `{}` could not be reached (attempt {attempt}): {}; trying again in {:.1} s, giving up in {} s",
                record.cluster,
                crate::error::one_line(&format!("{err:#}"), " ", |_| false),
                pause_now.as_secs_f64(),
                left.as_secs()
            ));
            std::thread::sleep(pause_now);
            pause = (pause * 2).min(MAX_BACKOFF);
            // A new connection: the old one may be half-dead (a dropped SSH session).
            match backend_of(record) {
                Ok(backend) => self.remade = Some(backend),
                Err(err) if exit::is_unreachable(&err) => {}
                Err(err) => return Err(err),
            }
        }
    }
}

/// The error after the retries: the last failure, why we stopped, and what to do.
fn gave_up(err: anyhow::Error, record: &Record, spent: Duration, attempts: u32) -> anyhow::Error {
    let err = if attempts > 1 {
        err.context(format!(
            "cluster `{}` could not be reached for {} s ({attempts} attempts)",
            record.cluster,
            spent.as_secs()
        ))
    } else {
        err
    };
    with_help(
        err,
        format!(
            "check that cluster `{}` is up and reachable from here; `CARGO_STREAM_RETRY_SECS` sets how long to keep trying (now {} s)",
            record.cluster,
            retry_budget().as_secs()
        ),
    )
}

/// Asks the cluster for the job's status (retrying an unreachable cluster, see
/// [`retry_budget`]) and saves it in the record.
pub fn status(
    shell: &mut Shell,
    backend: &dyn Backend,
    record: &mut Record,
) -> anyhow::Result<Status> {
    Link::new(backend).call(shell, record, |backend, record| refresh(backend, record))
}

/// Polls until the job reaches a final state (or `limit` passes: exit code 6), printing each
/// change; an unreachable cluster is asked again as [`retry_budget`] says. Returns the final
/// status, whichever it is ([`ended_badly`] makes the error of one other than `FINISHED`).
pub fn wait(
    shell: &mut Shell,
    backend: &dyn Backend,
    record: &mut Record,
    limit: Option<Duration>,
) -> anyhow::Result<Status> {
    let start = Instant::now();
    let mut link = Link::new(backend);
    let mut last: Option<JobState> = None;
    loop {
        let status = link.call(shell, record, |backend, record| refresh(backend, record))?;
        if last != Some(status.state) {
            shell.status("State", format!("`{}` is {}", record.id, status.state));
            last = Some(status.state);
        }
        if status.state.is_final() {
            return Ok(status);
        }
        if limit.is_some_and(|l| start.elapsed() >= l) {
            return Err(with_help(
                anyhow::Error::new(WaitTimedOut {
                    id: record.id.clone(),
                    state: status.state,
                    waited: start.elapsed().as_secs(),
                }),
                format!(
                    "`cargo stream status {} --wait` follows it; `cargo stream kill {}` stops it",
                    record.id, record.id
                ),
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// How many lines of a failed job's stderr [`ended_badly`] shows.
pub const TAIL_LINES: usize = 20;

/// The error for a job that ended other than `FINISHED` (exit code 3 or 4): the cluster's
/// message (with the exit code, where the cluster tells it) and, for a FAILED or ERROR job,
/// the last lines of its standard error (a panic says there why).
pub fn ended_badly(record: &Record, status: &Status) -> anyhow::Error {
    let tail = matches!(status.state, JobState::Failed | JobState::Error)
        .then(|| stderr_tail(record, TAIL_LINES))
        .flatten();
    let mut err: Option<anyhow::Error> = tail.map(|tail| {
        anyhow::anyhow!(
            "the last lines of its stderr:\n{}",
            tail.trim_end_matches('\n')
        )
    });
    if let Some(message) = &status.message {
        err = Some(match err {
            Some(err) => err.context(message.clone()),
            None => anyhow::anyhow!("{message}"),
        });
    }
    let ended = JobEnded {
        id: record.id.clone(),
        state: status.state,
    };
    let err = match err {
        Some(err) => err.context(ended),
        None => anyhow::Error::new(ended),
    };
    with_help(
        err,
        format!(
            "`cargo stream logs {} --stderr` shows what it wrote",
            record.id
        ),
    )
}

/// The last `lines` lines of the job's standard error, if the cluster gives them (read whole:
/// the backends read logs from an offset on, not from the end).
fn stderr_tail(record: &Record, lines: usize) -> Option<String> {
    const KEEP: usize = 64 * 1024;
    let backend = backend_of(record).ok()?;
    let mut kept: Vec<u8> = Vec::new();
    let mut offset = 0u64;
    loop {
        let bytes = match backend.logs(record, LogStream::Stderr, offset) {
            Ok(bytes) => bytes,
            Err(err) => {
                tracing::debug!("no stderr tail for `{}`: {err:#}", record.id);
                break;
            }
        };
        if bytes.is_empty() {
            break;
        }
        offset += bytes.len() as u64;
        kept.extend_from_slice(&bytes);
        if kept.len() > 2 * KEEP {
            kept.drain(..kept.len() - KEEP);
        }
    }
    let text = String::from_utf8_lossy(&kept);
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    (!tail.trim().is_empty()).then_some(tail)
}

/// Writes the log from `offset` to `out`; with `follow`, keeps writing what is appended until
/// the job ends. An unreachable cluster is asked again (from the offset reached, so nothing is
/// written twice) as [`retry_budget`] says. Returns the offset reached.
pub fn logs(
    shell: &mut Shell,
    backend: &dyn Backend,
    record: &mut Record,
    stream: LogStream,
    follow: bool,
    out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> anyhow::Result<u64> {
    let mut link = Link::new(backend);
    let mut offset = 0u64;
    loop {
        let bytes = link.call(shell, record, |b, r| b.logs(r, stream, offset))?;
        if !bytes.is_empty() {
            offset += bytes.len() as u64;
            out(&bytes)?;
            std::io::stdout().flush()?;
            continue;
        }
        if !follow {
            return Ok(offset);
        }
        let status = link.call(shell, record, |b, r| refresh(b, r))?;
        if status.state.is_final() {
            // One last read: the job may have written its last lines as it ended.
            let bytes = link.call(shell, record, |b, r| b.logs(r, stream, offset))?;
            offset += bytes.len() as u64;
            out(&bytes)?;
            return Ok(offset);
        }
        std::thread::sleep(POLL);
    }
}
