//! The checkpoint file: `checkpoint-<batch ms>` holding a header (magic, version, batch time,
//! length, CRC-32; from format 3 also its id, the checkpoint it follows, the oldest one it
//! needs and the header's own CRC-32) and the parts' states. Written to a temporary file named
//! for this process and write (removed when the write fails; stale ones removed when the
//! directory is locked), synced, renamed and the directory synced, and only then reported
//! written; the newest few are kept, with every older file they need (a part saved as a delta
//! needs the files back to its full snapshot, `chain.rs`); a corrupt newest one, or one whose
//! chain is broken, falls back to the one before, with a visible warning.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::checkpoint::chain::{Link, new_id};
use crate::checkpoint::names::SavedPart;
use crate::error::{Error, Result};
use crate::time::Time;

const MAGIC: &[u8; 8] = b"CSTREAM\0";
/// 3: a header extension (id, the checkpoint followed, the oldest needed) and parts that may
/// be deltas; 2: parts saved by name with their kind, format and types (`names::SavedPart`
/// without `delta`); 1: parts in graph order as (kind, bytes), matched by position. All read.
const VERSION: u32 = 3;
/// Magic, version, time, payload length, payload CRC.
const HEADER: usize = 8 + 4 + 8 + 8 + 4;
/// Format 3: then id, followed time, followed id, base, CRC of all the header before it.
const HEADER_3: usize = HEADER + 8 + 8 + 8 + 8 + 4;
/// How many checkpoints are kept.
pub(crate) const KEEP: usize = 3;

/// The parts' states as a checkpoint holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parts {
    /// Format 1: in graph order, (kind, bytes), matched by position.
    Positional(Vec<(String, Vec<u8>)>),
    /// Format 2 and later: by name (deltas resolved into their chains once read).
    Named(Vec<SavedPart>),
}

/// `names::SavedPart` as format 2 wrote it.
#[derive(serde::Deserialize)]
struct SavedPart2 {
    name: String,
    kind: String,
    format: u32,
    types: Vec<(String, String)>,
    at: String,
    state: Vec<u8>,
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

/// Temporary names are unique per process and write, so that two writers never share one,
/// and start with `.checkpoint-` and end with `.tmp`, so that stale ones are recognised.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

fn temp_name(time: Time) -> String {
    format!(
        ".{}.{}.{}.tmp",
        name(time),
        std::process::id(),
        NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
    )
}

fn is_temp(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(".checkpoint-") && n.ends_with(".tmp"))
}

#[cfg(feature = "failpoints")]
fn failed(what: &str) -> std::io::Error {
    std::io::Error::other(format!("failpoint {what}"))
}

/// Writes the checkpoint of `time` into `dir` atomically and prunes old ones; returns its size.
/// Every part must be a full snapshot. See [`write_chained`].
pub(crate) fn write(dir: &Path, time: Time, parts: &[SavedPart]) -> Result<u64> {
    Ok(write_chained(dir, time, parts, None, time)?.bytes)
}

/// What [`write_chained`] wrote.
pub(crate) struct Written {
    pub(crate) bytes: u64,
    pub(crate) link: Link,
}

/// Writes the checkpoint of `time` into `dir` atomically and prunes old ones. When it returns
/// `Ok`, the checkpoint is durable: written, synced, renamed into place and the directory
/// synced. On an error its temporary file is removed. The parts saved as deltas follow `prev`;
/// `base` is the oldest checkpoint they need.
pub(crate) fn write_chained(
    dir: &Path,
    time: Time,
    parts: &[SavedPart],
    prev: Option<Link>,
    base: Time,
) -> Result<Written> {
    let refuse = |message: String| Error::Checkpoint {
        dir: dir.to_owned(),
        message,
    };
    if prev.is_none()
        && let Some(p) = parts.iter().find(|p| p.delta)
    {
        return Err(refuse(format!(
            "state `{}` was saved as a delta but no checkpoint precedes it (a bug: please report it)",
            p.name
        )));
    }
    let payload = postcard::to_stdvec(parts)
        .map_err(|e| refuse(format!("could not encode the state: {e}")))?;
    let id = new_id(time);
    let (prev_time, prev_id) = prev.map_or((0, 0), |l| (l.time.millis(), l.id));
    let mut header = Vec::with_capacity(HEADER_3);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&time.millis().to_le_bytes());
    header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    header.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    header.extend_from_slice(&id.to_le_bytes());
    header.extend_from_slice(&prev_time.to_le_bytes());
    header.extend_from_slice(&prev_id.to_le_bytes());
    header.extend_from_slice(&base.millis().min(time.millis()).to_le_bytes());
    let header_crc = crc32fast::hash(&header);
    header.extend_from_slice(&header_crc.to_le_bytes());

    let target = dir.join(name(time));
    let tmp = dir.join(temp_name(time));
    let renamed = write_temp(&tmp, &header, &payload).and_then(|()| {
        crate::failpoint::failpoint!("checkpoint::before_rename", |_| Err(Error::io(
            "failed to rename into",
            &target,
            failed("checkpoint::before_rename")
        )));
        std::fs::rename(&tmp, &target).map_err(|e| Error::io("failed to rename into", &target, e))
    });
    if let Err(e) = renamed {
        if let Err(r) = std::fs::remove_file(&tmp)
            && r.kind() != std::io::ErrorKind::NotFound
        {
            crate::warning::warn(format_args!(
                "could not remove the temporary checkpoint `{}` after a failed write: {r}",
                tmp.display()
            ));
        }
        return Err(e);
    }
    crate::failpoint::failpoint!("checkpoint::before_dir_sync", |_| Err(Error::io(
        "failed to sync directory",
        dir,
        failed("checkpoint::before_dir_sync")
    )));
    // Without this the rename may not survive a power loss: the checkpoint is not durable yet.
    super::sync_dir(dir)?;
    if let Err(e) = prune(dir) {
        // The new checkpoint is durable; an old one left behind costs only space.
        crate::warning::warn(format_args!("could not delete an old checkpoint: {e}"));
    }
    Ok(Written {
        bytes: (header.len() + payload.len()) as u64,
        link: Link { time, id },
    })
}

fn write_temp(tmp: &Path, header: &[u8], payload: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(tmp).map_err(|e| Error::io("failed to create", tmp, e))?;
    crate::failpoint::failpoint!("checkpoint::temp_write", |_| {
        // As a full disk does: part of the file written, then an error.
        let _ = f
            .write_all(header)
            .and_then(|()| f.write_all(&payload[..payload.len() / 2]));
        Err(Error::io(
            "failed to write",
            tmp,
            failed("checkpoint::temp_write"),
        ))
    });
    f.write_all(header)
        .and_then(|()| f.write_all(payload))
        .map_err(|e| Error::io("failed to write", tmp, e))?;
    crate::failpoint::failpoint!("checkpoint::before_fsync", |_| Err(Error::io(
        "failed to sync",
        tmp,
        failed("checkpoint::before_fsync")
    )));
    f.sync_all()
        .map_err(|e| Error::io("failed to sync", tmp, e))
}

/// Removes the temporary files of writes that never finished (a process killed mid-write).
/// Only called with the directory's lock held, so no live writer owns them.
pub(crate) fn remove_stale_temps(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if is_temp(&path) {
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!(file = %path.display(), "removed a temporary checkpoint file left by an unfinished write")
                }
                Err(e) => crate::warning::warn(format_args!(
                    "could not remove the stale temporary checkpoint `{}`: {e}",
                    path.display()
                )),
            }
        }
    }
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

/// Deletes the checkpoints older than the newest [`KEEP`] and than every file those need.
fn prune(dir: &Path) -> Result<()> {
    crate::failpoint::failpoint!("checkpoint::prune", |_| Err(Error::io(
        "failed to delete old checkpoints in",
        dir,
        failed("checkpoint::prune")
    )));
    let found = list(dir);
    let kept = &found[found.len().saturating_sub(KEEP)..];
    // A kept file whose header cannot be read cannot be restored: it needs nothing.
    let needed = kept
        .iter()
        .map(|(t, path)| read_header(path).map_or(*t, |h| h.base.min(*t)))
        .min()
        .unwrap_or(u64::MAX);
    for (t, path) in &found {
        if *t >= needed {
            break;
        }
        std::fs::remove_file(path).map_err(|e| Error::io("failed to delete", path, e))?;
    }
    Ok(())
}

/// A checkpoint file's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    version: u32,
    time: u64,
    len: u64,
    crc: u32,
    id: u64,
    prev: Option<Link>,
    /// The oldest checkpoint it needs (its own time before format 3).
    base: u64,
}

impl Header {
    fn size(&self) -> usize {
        if self.version >= 3 { HEADER_3 } else { HEADER }
    }
}

fn parse_header(bytes: &[u8]) -> std::result::Result<Header, String> {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err("not a cargo-stream checkpoint (bad header)".into());
    }
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap_or_default());
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap_or_default());
    let version = u32_at(8);
    if !(1..=VERSION).contains(&version) {
        return Err(format!(
            "written by format version {version}, this runtime reads versions 1 to {VERSION}; run it with the runtime that wrote it"
        ));
    }
    let time = u64_at(12);
    let mut header = Header {
        version,
        time,
        len: u64_at(20),
        crc: u32_at(28),
        id: 0,
        prev: None,
        base: time,
    };
    if version >= 3 {
        if bytes.len() < HEADER_3 {
            return Err("truncated header".into());
        }
        if crc32fast::hash(&bytes[..HEADER_3 - 4]) != u32_at(HEADER_3 - 4) {
            return Err("header checksum mismatch".into());
        }
        header.id = u64_at(HEADER);
        let (prev_time, prev_id) = (u64_at(HEADER + 8), u64_at(HEADER + 16));
        header.prev = (prev_id != 0).then_some(Link {
            time: Time(prev_time),
            id: prev_id,
        });
        header.base = u64_at(HEADER + 24);
    }
    Ok(header)
}

/// The header of the checkpoint at `path`, reading only it.
fn read_header(path: &Path) -> std::result::Result<Header, String> {
    let mut bytes = Vec::with_capacity(HEADER_3);
    std::fs::File::open(path)
        .and_then(|f| f.take(HEADER_3 as u64).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read it: {e}"))?;
    parse_header(&bytes)
}

/// A checkpoint file as read.
struct Decoded {
    header: Header,
    parts: Parts,
}

fn decode(path: &Path, read: &mut u64) -> std::result::Result<Decoded, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    *read += bytes.len() as u64;
    let header = parse_header(&bytes)?;
    let len = header.len as usize;
    let payload = &bytes[header.size().min(bytes.len())..];
    if payload.len() != len {
        return Err(format!("truncated: {} of {len} bytes", payload.len()));
    }
    if crc32fast::hash(payload) != header.crc {
        return Err("checksum mismatch".into());
    }
    let undecodable = |e: postcard::Error| format!("cannot decode it: {e}");
    let parts = match header.version {
        1 => Parts::Positional(postcard::from_bytes(payload).map_err(undecodable)?),
        2 => {
            let old: Vec<SavedPart2> = postcard::from_bytes(payload).map_err(undecodable)?;
            Parts::Named(
                old.into_iter()
                    .map(|p| SavedPart {
                        name: p.name,
                        kind: p.kind,
                        format: p.format,
                        types: p.types,
                        at: p.at,
                        state: p.state,
                        delta: false,
                        chain: Default::default(),
                    })
                    .collect(),
            )
        }
        _ => Parts::Named(postcard::from_bytes(payload).map_err(undecodable)?),
    };
    Ok(Decoded { header, parts })
}

/// The checkpoint at `path` with its parts' chains read from the files it follows in `dir`:
/// each part's full snapshot in `state` and its deltas in `chain`.
fn resolve(dir: &Path, path: &Path, read: &mut u64) -> std::result::Result<(Time, Parts), String> {
    let head = decode(path, read)?;
    let time = Time(head.header.time);
    let Parts::Named(mut parts) = head.parts else {
        return Ok((time, head.parts));
    };
    let link = Link {
        time,
        id: head.header.id,
    };
    let mut waiting = Vec::new();
    for (i, p) in parts.iter_mut().enumerate() {
        p.chain.head = (head.header.version >= 3).then_some(link);
        p.chain.full_at = time;
        if p.delta {
            p.chain.deltas.push(std::mem::take(&mut p.state));
            p.delta = false;
            waiting.push(i);
        }
    }
    let (mut follows, mut after) = (head.header.prev, time);
    while !waiting.is_empty() {
        let Some(prev) = follows else {
            return Err(format!(
                "state `{}` is a delta of `{}` but follows no checkpoint",
                parts[waiting[0]].name,
                name(after)
            ));
        };
        let prev_path = dir.join(name(prev.time));
        let broken = |why: String| {
            format!(
                "it needs `{}` (state `{}` is saved as changes since it), which {why}",
                prev_path.display(),
                parts[waiting[0]].name
            )
        };
        if prev.time >= after {
            return Err(broken("is not older".into()));
        }
        let older = decode(&prev_path, read).map_err(|e| broken(format!("cannot be used: {e}")))?;
        if older.header.id != prev.id {
            return Err(broken(
                "was written again by a later run since (a restart from an older checkpoint)"
                    .into(),
            ));
        }
        let Parts::Named(older_parts) = older.parts else {
            return Err(broken("is of format 1".into()));
        };
        let mut by_name: std::collections::BTreeMap<String, SavedPart> = older_parts
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        let mut still = Vec::new();
        for i in waiting {
            let p = &mut parts[i];
            let Some(o) = by_name.remove(&p.name) else {
                return Err(format!(
                    "it needs state `{}` from `{}`, which does not hold it",
                    p.name,
                    prev_path.display()
                ));
            };
            if (&o.kind, o.format, &o.types) != (&p.kind, p.format, &p.types) {
                return Err(format!(
                    "state `{}` in `{}` is of another kind, format or type than the deltas after it",
                    p.name,
                    prev_path.display()
                ));
            }
            if o.delta {
                p.chain.deltas.push(o.state);
                still.push(i);
            } else {
                p.state = o.state;
                p.chain.full_at = prev.time;
                p.chain.deltas.reverse();
            }
        }
        waiting = still;
        follows = older.header.prev;
        after = prev.time;
    }
    Ok((time, Parts::Named(parts)))
}

/// The newest restorable checkpoint in `dir` (its parts' chains read), falling back past
/// corrupt ones and ones whose chain is broken with a warning; `None` when there is none; an
/// error when there are some and none is restorable.
pub(crate) fn read_latest(dir: &Path) -> Result<Option<(Time, Parts)>> {
    let found = list(dir);
    let mut problems = Vec::new();
    // Only the newest kept ones: the older files are there for their chains, and the other
    // parts (a receiver's log) keep what the oldest kept checkpoint needs, no more.
    for (_, path) in found.iter().rev().take(KEEP) {
        let started = std::time::Instant::now();
        let mut read = 0;
        match resolve(dir, path, &mut read) {
            Ok(c) => {
                if !problems.is_empty() {
                    crate::warning::warn(format_args!(
                        "skipped unreadable newer checkpoint(s), recovering from `{}`: {}",
                        path.display(),
                        problems.join("; ")
                    ));
                }
                tracing::info!(
                    file = %path.display(),
                    bytes_read = read,
                    ms = started.elapsed().as_millis() as u64,
                    "checkpoint read"
                );
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

/// Writes a checkpoint as format 2 did (before deltas), for tests of old checkpoints.
#[cfg(test)]
pub(crate) fn write_format_2(dir: &Path, time: Time, parts: &[SavedPart]) {
    #[derive(serde::Serialize)]
    struct V2<'a> {
        name: &'a str,
        kind: &'a str,
        format: u32,
        types: &'a [(String, String)],
        at: &'a str,
        state: &'a [u8],
    }
    let old: Vec<V2> = parts
        .iter()
        .map(|p| V2 {
            name: &p.name,
            kind: &p.kind,
            format: p.format,
            types: &p.types,
            at: &p.at,
            state: &p.state,
        })
        .collect();
    let payload = postcard::to_stdvec(&old).unwrap();
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&2u32.to_le_bytes());
    bytes.extend_from_slice(&time.millis().to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    std::fs::write(dir.join(name(time)), bytes).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Failpoints are global: tests that write checkpoints run one at a time.
    fn serial() -> fail::FailScenario<'static> {
        fail::FailScenario::setup()
    }

    fn parts(n: u8) -> Vec<SavedPart> {
        vec![SavedPart {
            name: "main.rs:update_state_by_key#1".into(),
            kind: "update_state_by_key".into(),
            format: 1,
            types: vec![("key".into(), "alloc::string::String".into())],
            at: "src/main.rs:3:4".into(),
            state: vec![n; 10],
            delta: false,
            chain: Default::default(),
        }]
    }

    /// What `read_latest` gives, without the chain details it adds.
    fn latest(dir: &Path) -> Option<(Time, Parts)> {
        read_latest(dir).unwrap().map(|(t, parts)| {
            let parts = match parts {
                Parts::Named(mut p) => {
                    p.iter_mut().for_each(|p| p.chain = Default::default());
                    Parts::Named(p)
                }
                other => other,
            };
            (t, parts)
        })
    }

    #[test]
    fn writes_reads_and_keeps_the_last_three() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        for t in 1..=5u64 {
            write(dir.path(), Time(t * 1000), &parts(t as u8)).unwrap();
        }
        let names: Vec<u64> = list(dir.path()).into_iter().map(|(t, _)| t).collect();
        assert_eq!(names, vec![3000, 4000, 5000]);
        assert_eq!(
            latest(dir.path()),
            Some((Time(5000), Parts::Named(parts(5))))
        );
    }

    #[test]
    fn a_corrupt_latest_falls_back_and_all_corrupt_is_an_error() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), Time(1000), &parts(1)).unwrap();
        write(dir.path(), Time(2000), &parts(2)).unwrap();
        let newest = dir.path().join("checkpoint-2000");
        let mut bytes = std::fs::read(&newest).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&newest, bytes).unwrap();
        assert_eq!(
            latest(dir.path()),
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
            latest(dir.path()),
            Some((Time(2000), Parts::Positional(old)))
        );
    }

    #[test]
    fn an_empty_directory_has_no_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_latest(dir.path()).unwrap(), None);
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file_and_keeps_the_previous_checkpoint() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), Time(1000), &parts(1)).unwrap();
        for point in [
            "checkpoint::temp_write",
            "checkpoint::before_fsync",
            "checkpoint::before_rename",
        ] {
            fail::cfg(point, "return").unwrap();
            let err = write(dir.path(), Time(2000), &parts(2))
                .unwrap_err()
                .to_string();
            fail::remove(point);
            assert!(err.contains(point), "{err}");
            assert_eq!(entries(dir.path()), vec!["checkpoint-1000"], "{point}");
        }
        // A failed directory sync is an error: the renamed file may not survive a power loss.
        fail::cfg("checkpoint::before_dir_sync", "return").unwrap();
        let err = write(dir.path(), Time(2000), &parts(2))
            .unwrap_err()
            .to_string();
        fail::remove("checkpoint::before_dir_sync");
        assert!(err.contains("failed to sync directory"), "{err}");
        // A failed prune is not: the new checkpoint is durable.
        fail::cfg("checkpoint::prune", "return").unwrap();
        for t in 3..=5 {
            write(dir.path(), Time(t * 1000), &parts(t as u8)).unwrap();
        }
        fail::remove("checkpoint::prune");
        assert_eq!(list(dir.path()).len(), 5);
        assert_eq!(
            latest(dir.path()),
            Some((Time(5000), Parts::Named(parts(5))))
        );
    }

    #[test]
    fn temporary_names_are_unique_and_stale_ones_are_removed() {
        let a = temp_name(Time(1000));
        let b = temp_name(Time(1000));
        assert_ne!(a, b);
        assert!(a.contains(&std::process::id().to_string()), "{a}");
        let dir = tempfile::tempdir().unwrap();
        for stale in [a.as_str(), ".checkpoint-1000.tmp", ".checkpoint-7.1.2.tmp"] {
            std::fs::write(dir.path().join(stale), b"half").unwrap();
        }
        std::fs::write(dir.path().join("notes.tmp"), b"not ours").unwrap();
        remove_stale_temps(dir.path());
        assert_eq!(entries(dir.path()), vec!["notes.tmp"]);
    }

    fn part(name: &str, state: &[u8], delta: bool) -> SavedPart {
        SavedPart {
            name: name.into(),
            kind: "map_with_state".into(),
            format: 1,
            types: vec![("key".into(), "u64".into())],
            at: "src/main.rs:1:1".into(),
            state: state.to_vec(),
            delta,
            chain: Default::default(),
        }
    }

    /// Writes checkpoints at 1000, 2000, ...: `a` full at the first and every `every`-th, a
    /// delta otherwise (its bytes the checkpoint's number); `b` always full.
    fn chain(dir: &Path, n: u64, every: u64) -> Vec<Link> {
        let mut links: Vec<Link> = Vec::new();
        let mut full = Time(1000);
        for i in 0..n {
            let time = Time((i + 1) * 1000);
            let delta = i % every != 0;
            if !delta {
                full = time;
            }
            let parts = vec![
                part("a", &[i as u8 + 1], delta),
                part("b", &[100 + i as u8], false),
            ];
            let prev = links.last().copied();
            let base = if delta { full } else { time };
            links.push(write_chained(dir, time, &parts, prev, base).unwrap().link);
        }
        links
    }

    fn named(found: Option<(Time, Parts)>) -> (Time, Vec<SavedPart>) {
        match found {
            Some((t, Parts::Named(p))) => (t, p),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_delta_is_read_with_its_full_snapshot_and_the_deltas_between() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let links = chain(dir.path(), 4, 10);
        let (t, parts) = named(read_latest(dir.path()).unwrap());
        assert_eq!(t, Time(4000));
        let (a, b) = (&parts[0], &parts[1]);
        assert_eq!((a.state.clone(), a.delta), (vec![1], false));
        assert_eq!(a.chain.deltas, vec![vec![2], vec![3], vec![4]]);
        assert_eq!(
            (a.chain.full_at, a.chain.head),
            (Time(1000), Some(links[3]))
        );
        assert_eq!((b.state.clone(), b.chain.deltas.len()), (vec![103], 0));
        assert_eq!(b.chain.full_at, Time(4000));
        // The retention kept the chain: the newest three and the full snapshot they need.
        let names: Vec<u64> = list(dir.path()).into_iter().map(|(t, _)| t).collect();
        assert_eq!(names, vec![1000, 2000, 3000, 4000]);
    }

    #[test]
    fn retention_keeps_every_file_a_kept_checkpoint_needs_and_no_more() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let times = |d: &Path| -> Vec<u64> { list(d).into_iter().map(|(t, _)| t / 1000).collect() };
        // Full at 1, 5, 9; deltas between.
        chain(dir.path(), 7, 4);
        // 5, 6, 7 kept; 5 is full: nothing before it is needed.
        assert_eq!(times(dir.path()), vec![5, 6, 7]);
        let dir = tempfile::tempdir().unwrap();
        chain(dir.path(), 5, 4);
        // 3, 4, 5 kept; 3 and 4 are deltas of 1.
        assert_eq!(times(dir.path()), vec![1, 2, 3, 4, 5]);
        let (_, parts) = named(read_latest(dir.path()).unwrap());
        assert_eq!(parts[0].state, vec![5]);
        // Falling back from 5 to 4 still finds 4's whole chain.
        std::fs::write(dir.path().join("checkpoint-5000"), b"garbage").unwrap();
        let (t, parts) = named(read_latest(dir.path()).unwrap());
        assert_eq!((t, parts[0].state.clone()), (Time(4000), vec![1]));
        assert_eq!(parts[0].chain.deltas, vec![vec![2], vec![3], vec![4]]);
        // 2 is whole (1 + 2) but older than the kept three: the other parts (a receiver's
        // log) no longer have what it needs, so recovery does not go back to it.
        for t in [3000, 4000] {
            std::fs::write(dir.path().join(format!("checkpoint-{t}")), b"garbage").unwrap();
        }
        let err = read_latest(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("no readable checkpoint") && !err.contains("checkpoint-2000`:"),
            "{err}"
        );
    }

    #[test]
    fn a_corrupt_or_missing_delta_falls_back_to_the_newest_whole_chain() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        chain(dir.path(), 4, 10);
        // 3 is corrupt: 4 (which needs it) and 3 are unusable; 2 = 1 + 2 is the newest whole.
        let third = dir.path().join("checkpoint-3000");
        let mut bytes = std::fs::read(&third).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&third, bytes).unwrap();
        let (t, parts) = named(read_latest(dir.path()).unwrap());
        assert_eq!(t, Time(2000));
        assert_eq!(
            (parts[0].state.clone(), parts[0].chain.deltas.clone()),
            (vec![1], vec![vec![2]])
        );
        // The full snapshot missing: nothing is restorable, and the error says why.
        std::fs::remove_file(dir.path().join("checkpoint-1000")).unwrap();
        let err = read_latest(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("checkpoint-1000") && err.contains("cannot read it"),
            "{err}"
        );
        assert!(err.contains("checksum mismatch"), "{err}");
    }

    #[test]
    fn a_delta_after_a_rewritten_checkpoint_is_not_applied_to_it() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let links = chain(dir.path(), 3, 10);
        // A later run restarted from 1 and wrote 2 again: the old 3 follows the old 2.
        write_chained(
            dir.path(),
            Time(2000),
            &[part("a", &[9], true), part("b", &[9], false)],
            Some(links[0]),
            Time(1000),
        )
        .unwrap();
        let (t, parts) = named(read_latest(dir.path()).unwrap());
        assert_eq!(t, Time(2000));
        assert_eq!(parts[0].chain.deltas, vec![vec![9]]);
    }

    #[test]
    fn a_failed_delta_write_keeps_the_chain_before_it() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let links = chain(dir.path(), 2, 10);
        for point in ["checkpoint::temp_write", "checkpoint::before_rename"] {
            fail::cfg(point, "return").unwrap();
            let parts = [part("a", &[3], true), part("b", &[3], false)];
            let err = write_chained(dir.path(), Time(3000), &parts, Some(links[1]), Time(1000));
            fail::remove(point);
            assert!(err.is_err());
            assert_eq!(
                entries(dir.path()),
                vec!["checkpoint-1000", "checkpoint-2000"]
            );
            let (t, parts) = named(read_latest(dir.path()).unwrap());
            assert_eq!(
                (t, parts[0].chain.deltas.clone()),
                (Time(2000), vec![vec![2]])
            );
        }
    }

    #[test]
    fn a_format_2_checkpoint_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        write_format_2(dir.path(), Time(2000), &[part("a", &[7, 7], false)]);
        let mut expected = part("a", &[7, 7], false);
        expected.types = vec![("key".into(), "u64".into())];
        assert_eq!(
            latest(dir.path()),
            Some((Time(2000), Parts::Named(vec![expected])))
        );
    }
}
