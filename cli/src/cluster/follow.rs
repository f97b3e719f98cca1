//! Following a submitted job: its status refreshed into the local record, waiting for its end,
//! and its logs as they grow.

use std::io::Write as _;
use std::time::{Duration, Instant};

use crate::cluster::backend::{Backend, JobState, LogStream, Status};
use crate::cluster::profile::Profile;
use crate::cluster::record::Record;
use crate::error::with_help;
use crate::shell::Shell;

/// How often a waiting or following command asks the cluster.
pub const POLL: Duration = Duration::from_millis(500);

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

/// Asks the cluster for the job's status and saves it in the record.
pub fn refresh(backend: &dyn Backend, record: &mut Record) -> anyhow::Result<Status> {
    let status = backend.status(record)?;
    if status.state != record.state || status.message != record.message {
        record.state = status.state;
        record.message = status.message.clone();
        record.save()?;
    }
    Ok(status)
}

/// Polls until the job reaches a final state (or `limit` passes), printing each change.
/// Fails unless it ends `FINISHED`, with the cluster's message.
pub fn wait(
    shell: &mut Shell,
    backend: &dyn Backend,
    record: &mut Record,
    limit: Option<Duration>,
) -> anyhow::Result<Status> {
    let start = Instant::now();
    let mut last: Option<JobState> = None;
    loop {
        let status = refresh(backend, record)?;
        if last != Some(status.state) {
            shell.status("State", format!("`{}` is {}", record.id, status.state));
            last = Some(status.state);
        }
        if status.state.is_final() {
            return Ok(status);
        }
        if limit.is_some_and(|l| start.elapsed() >= l) {
            return Err(with_help(
                anyhow::anyhow!(
                    "`{}` is still {} after {} s",
                    record.id,
                    status.state,
                    start.elapsed().as_secs()
                ),
                format!(
                    "`cargo stream status {}` follows it; `cargo stream kill {}` stops it",
                    record.id, record.id
                ),
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// The error for a job that ended other than `FINISHED`.
pub fn ended_badly(record: &Record, status: &Status) -> anyhow::Error {
    let mut err = anyhow::anyhow!("`{}` ended {}", record.id, status.state);
    if let Some(message) = &status.message {
        err =
            anyhow::anyhow!("{message}").context(format!("`{}` ended {}", record.id, status.state));
    }
    with_help(
        err,
        format!(
            "`cargo stream logs {} --stderr` shows what it wrote",
            record.id
        ),
    )
}

/// Writes the log from `offset` to `out`; with `follow`, keeps writing what is appended until
/// the job ends. Returns the offset reached.
pub fn logs(
    backend: &dyn Backend,
    record: &mut Record,
    stream: LogStream,
    follow: bool,
    out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> anyhow::Result<u64> {
    let mut offset = 0u64;
    loop {
        let bytes = backend.logs(record, stream, offset)?;
        if !bytes.is_empty() {
            offset += bytes.len() as u64;
            out(&bytes)?;
            std::io::stdout().flush()?;
            continue;
        }
        if !follow {
            return Ok(offset);
        }
        if refresh(backend, record)?.state.is_final() {
            // One last read: the job may have written its last lines as it ended.
            let bytes = backend.logs(record, stream, offset)?;
            offset += bytes.len() as u64;
            out(&bytes)?;
            return Ok(offset);
        }
        std::thread::sleep(POLL);
    }
}
