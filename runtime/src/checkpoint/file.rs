//! The checkpoint file: `checkpoint-<batch ms>` holding a header (magic, version, batch time,
//! length, CRC-32) and the parts' states. Written to a temporary file, synced, renamed and the
//! directory synced; the newest few are kept; a corrupt newest one falls back to the one before.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::checkpoint::names::SavedPart;
use crate::error::{Error, Result};
use crate::time::Time;

const MAGIC: &[u8; 8] = b"CSTREAM\0";
/// 2: parts saved by name with their kind, format and types (`names::SavedPart`); 1: parts in
/// graph order as (kind, bytes), still read, matched by position.
const VERSION: u32 = 2;
const HEADER: usize = 8 + 4 + 8 + 8 + 4;
/// How many checkpoints are kept.
const KEEP: usize = 3;

/// The parts' states as a checkpoint holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parts {
    /// Format 1: in graph order, (kind, bytes), matched by position.
    Positional(Vec<(String, Vec<u8>)>),
    /// Format 2: by name.
    Named(Vec<SavedPart>),
}

fn name(time: Time) -> String {
    format!("checkpoint-{}", time.millis())
}

fn time_of(path: &Path) -> Option<u64> {
    path.file_name()?
        .to_str()?
        .strip_prefix("checkpoint-")?
        .parse()
        .ok()
}

/// Writes the checkpoint of `time` into `dir` atomically and prunes old ones; returns its size.
pub(crate) fn write(dir: &Path, time: Time, parts: &[SavedPart]) -> Result<u64> {
    let payload = postcard::to_stdvec(parts).map_err(|e| Error::Checkpoint {
        dir: dir.to_owned(),
        message: format!("could not encode the state: {e}"),
    })?;
    let mut bytes = Vec::with_capacity(HEADER + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&time.millis().to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);

    let target = dir.join(name(time));
    let tmp = dir.join(format!(".{}.tmp", name(time)));
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io("failed to create", &tmp, e))?;
    f.write_all(&bytes)
        .map_err(|e| Error::io("failed to write", &tmp, e))?;
    f.sync_all()
        .map_err(|e| Error::io("failed to sync", &tmp, e))?;
    drop(f);
    crate::failpoint::failpoint!("checkpoint::before_rename", |_| Err(Error::io(
        "failed to rename into",
        &target,
        std::io::Error::other("failpoint checkpoint::before_rename")
    )));
    std::fs::rename(&tmp, &target).map_err(|e| Error::io("failed to rename into", &target, e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    prune(dir);
    Ok(bytes.len() as u64)
}

fn list(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((time_of(&e.path())?, e.path())))
        .collect();
    found.sort();
    found
}

fn prune(dir: &Path) {
    let found = list(dir);
    for (_, path) in found.iter().take(found.len().saturating_sub(KEEP)) {
        let _ = std::fs::remove_file(path);
    }
}

fn decode(path: &Path) -> std::result::Result<(Time, Parts), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err("not a cargo-stream checkpoint (bad header)".into());
    }
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap_or_default());
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap_or_default());
    let version = u32_at(8);
    if version != VERSION && version != 1 {
        return Err(format!(
            "written by format version {version}, this runtime reads versions 1 to {VERSION}; run it with the runtime that wrote it"
        ));
    }
    let time = u64_at(12);
    let len = u64_at(20) as usize;
    let payload = &bytes[HEADER..];
    if payload.len() != len {
        return Err(format!("truncated: {} of {len} bytes", payload.len()));
    }
    if crc32fast::hash(payload) != u32_at(28) {
        return Err("checksum mismatch".into());
    }
    let undecodable = |e: postcard::Error| format!("cannot decode it: {e}");
    let parts = if version == 1 {
        Parts::Positional(postcard::from_bytes(payload).map_err(undecodable)?)
    } else {
        Parts::Named(postcard::from_bytes(payload).map_err(undecodable)?)
    };
    Ok((Time(time), parts))
}

/// The newest readable checkpoint in `dir`, falling back past corrupt ones with a warning;
/// `None` when there is none; an error when there are some and none is readable.
pub(crate) fn read_latest(dir: &Path) -> Result<Option<(Time, Parts)>> {
    let found = list(dir);
    let mut problems = Vec::new();
    for (_, path) in found.iter().rev() {
        match decode(path) {
            Ok(c) => {
                if !problems.is_empty() {
                    tracing::warn!(
                        "skipped unreadable newer checkpoint(s), recovering from `{}`: {}",
                        path.display(),
                        problems.join("; ")
                    );
                }
                return Ok(Some(c));
            }
            Err(e) => problems.push(format!("`{}`: {e}", path.display())),
        }
    }
    if problems.is_empty() {
        Ok(None)
    } else {
        Err(Error::Checkpoint {
            dir: dir.to_owned(),
            message: format!(
                "no readable checkpoint ({}); move the directory away to start from empty state",
                problems.join("; ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(n: u8) -> Vec<SavedPart> {
        vec![SavedPart {
            name: "main.rs:update_state_by_key#1".into(),
            kind: "update_state_by_key".into(),
            format: 1,
            types: vec![("key".into(), "alloc::string::String".into())],
            at: "src/main.rs:3:4".into(),
            state: vec![n; 10],
        }]
    }

    #[test]
    fn writes_reads_and_keeps_the_last_three() {
        let dir = tempfile::tempdir().unwrap();
        for t in 1..=5u64 {
            write(dir.path(), Time(t * 1000), &parts(t as u8)).unwrap();
        }
        let names: Vec<u64> = list(dir.path()).into_iter().map(|(t, _)| t).collect();
        assert_eq!(names, vec![3000, 4000, 5000]);
        assert_eq!(
            read_latest(dir.path()).unwrap(),
            Some((Time(5000), Parts::Named(parts(5))))
        );
    }

    #[test]
    fn a_corrupt_latest_falls_back_and_all_corrupt_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), Time(1000), &parts(1)).unwrap();
        write(dir.path(), Time(2000), &parts(2)).unwrap();
        let latest = dir.path().join("checkpoint-2000");
        let mut bytes = std::fs::read(&latest).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&latest, bytes).unwrap();
        assert_eq!(
            read_latest(dir.path()).unwrap(),
            Some((Time(1000), Parts::Named(parts(1))))
        );
        std::fs::write(dir.path().join("checkpoint-1000"), b"garbage").unwrap();
        let err = read_latest(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("checksum mismatch") && err.contains("bad header"),
            "{err}"
        );
        assert!(err.contains("move the directory away"), "{err}");
    }

    #[test]
    fn a_format_1_checkpoint_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let old: Vec<(String, Vec<u8>)> = vec![("update_state_by_key".into(), vec![1, 2, 3])];
        let payload = postcard::to_stdvec(&old).unwrap();
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&2000u64.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        std::fs::write(dir.path().join("checkpoint-2000"), bytes).unwrap();
        assert_eq!(
            read_latest(dir.path()).unwrap(),
            Some((Time(2000), Parts::Positional(old)))
        );
    }

    #[test]
    fn an_empty_directory_has_no_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_latest(dir.path()).unwrap(), None);
    }
}
