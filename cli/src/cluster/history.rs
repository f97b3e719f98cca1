//! A job's event log for `cargo stream ui`: a checkpoint directory on this machine, or the log
//! of a submitted job, where its driver announced it (`events` in its `cargo-stream-ui` line),
//! read over the profile's SSH connection (`ssh`, `spark-ssh`, `slurm` over SSH) into a
//! temporary folder, or in place when this machine sees the driver's folder (a shared file
//! system, or the same host).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use crate::cluster::driver_ui;
use crate::cluster::follow;
use crate::cluster::record::Record;
use crate::cluster::transport::ssh::Session;
use crate::error::with_help;
use crate::machine_message::Message;
use crate::quote::quote;
use crate::shell::Shell;

/// An event log ready to serve.
pub enum EventLog {
    /// A folder on this machine.
    Local(PathBuf),
    /// A copy fetched from the cluster, removed when dropped.
    Fetched(tempfile::TempDir),
}

impl EventLog {
    /// Its folder on this machine.
    pub fn dir(&self) -> &Path {
        match self {
            EventLog::Local(dir) => dir,
            EventLog::Fetched(tmp) => tmp.path(),
        }
    }
}

/// The event log `target` names: a folder (a checkpoint directory or its `events`), or a
/// submission ID whose log is found on its cluster.
pub fn locate(shell: &mut Shell, target: &str) -> anyhow::Result<EventLog> {
    let path = Path::new(target);
    if path.is_dir() {
        return Ok(EventLog::Local(path.to_owned()));
    }
    let record = Record::load(target).map_err(|e| {
        with_help(
            e.context(format!(
                "`{target}` is neither a folder on this machine nor a submission ID"
            )),
            "give a job's checkpoint directory, or an ID that `cargo stream list` shows",
        )
    })?;
    let backend = follow::backend_of(&record)?;
    let ann = driver_ui::announcement(backend.as_ref(), &record)?.ok_or_else(|| {
        with_help(
            anyhow::anyhow!(
                "`{}` did not say where its event log is (no `cargo-stream-ui` line in its log)",
                record.id
            ),
            "the job may not have started yet, or was built with a runtime older than this `cargo-stream`",
        )
    })?;
    let Some(events) = ann.events.clone() else {
        return Err(with_help(
            anyhow::anyhow!("`{}` keeps no event log", record.id),
            "the log is written beside the checkpoint: give the job a checkpoint directory (`ssc.checkpoint(dir)`)",
        ));
    };
    let remote = events.to_string_lossy().into_owned();
    if let Some(session) = driver_ui::ssh_of(&record) {
        let session = session?;
        shell.status(
            "Fetching",
            format!(
                "the event log of `{}` from {}:{remote}",
                record.id,
                session.target()
            ),
        );
        return fetch(&session, &remote, &ann.host).map(EventLog::Fetched);
    }
    if events.is_dir() {
        return Ok(EventLog::Local(events));
    }
    Err(with_help(
        anyhow::anyhow!(
            "the event log of `{}` is in `{remote}` on `{}`, which this machine cannot read",
            record.id,
            ann.host
        ),
        format!(
            "copy it here (`scp -r {}:{remote} .`) and run `cargo stream ui events`, or put checkpoints on a file system this machine shares",
            ann.host
        ),
    ))
}

/// Copies the `events-*.jsonl` files of `remote` over `session` into a temporary folder.
fn fetch(session: &Session, remote: &str, driver_host: &str) -> anyhow::Result<tempfile::TempDir> {
    let listing = session.exec(&format!("ls -1 -- {}", quote(remote)))?;
    let names: Vec<&str> = listing
        .stdout
        .lines()
        .filter(|n| n.starts_with("events-") && n.ends_with(".jsonl") && !n.contains('/'))
        .collect();
    if !listing.success() || names.is_empty() {
        return Err(with_help(
            anyhow::anyhow!(
                "no event log in `{remote}` on `{}`: {}",
                session.target(),
                listing.stderr.trim()
            ),
            format!(
                "the driver ran on `{driver_host}`; if that is not `{}`, copy the folder from there and run `cargo stream ui DIR`",
                session.target().host
            ),
        ));
    }
    let tmp = tempfile::Builder::new()
        .prefix("cargo-stream-events-")
        .tempdir()
        .context("failed to create a temporary folder")?;
    for name in names {
        let path = format!("{}/{name}", remote.trim_end_matches('/'));
        let mut bytes = Vec::new();
        loop {
            let chunk = session.read_from(&path, bytes.len() as u64)?;
            if chunk.is_empty() {
                break;
            }
            bytes.extend_from_slice(&chunk);
        }
        let local = tmp.path().join(name);
        std::fs::write(&local, &bytes)
            .with_context(|| format!("failed to write `{}`", local.display()))?;
    }
    Ok(tmp)
}

/// `cargo stream ui --json`'s line (reason `serving`).
#[derive(Serialize)]
pub struct Serving<'a> {
    /// The page's URL.
    pub url: &'a str,
    /// The folder or submission ID served.
    pub target: &'a str,
}

impl Message for Serving<'_> {
    fn reason(&self) -> &'static str {
        "serving"
    }
}
