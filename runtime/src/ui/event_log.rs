//! The event log: one JSON line per batch, receiver event and checkpoint, appended to
//! `events-NNNNNN.jsonl` files in `<checkpoint>/events/`; a file rotates at `MAX_FILE_BYTES`
//! and only the newest `MAX_FILES` are kept, so the log is bounded. Each run of the job starts
//! a new file. Reading it back (`read`) gives the events to rebuild the statistics from.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::sync::LockExt;
use crate::ui::event::Event;

/// The folder of the event log inside a checkpoint directory.
pub(crate) const EVENTS_DIR: &str = "events";
/// A file rotates once it holds this many bytes.
pub(crate) const MAX_FILE_BYTES: u64 = 8 << 20;
/// The newest files kept.
pub(crate) const MAX_FILES: usize = 8;

/// The log's files in `dir`, oldest first, with their numbers.
fn files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name
                .strip_prefix("events-")?
                .strip_suffix(".jsonl")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    found.sort();
    found
}

struct Open {
    file: File,
    bytes: u64,
    number: u64,
}

/// Appends events to the log; a failed write is logged once and the job goes on.
pub(crate) struct EventLog {
    dir: PathBuf,
    open: Mutex<Option<Open>>,
    max_file_bytes: u64,
    max_files: usize,
    warned: std::sync::atomic::AtomicBool,
}

impl EventLog {
    /// A log in `dir` (created), starting a new file after the ones already there.
    pub(crate) fn create(dir: PathBuf) -> Result<EventLog> {
        Self::with_limits(dir, MAX_FILE_BYTES, MAX_FILES)
    }

    pub(crate) fn with_limits(
        dir: PathBuf,
        max_file_bytes: u64,
        max_files: usize,
    ) -> Result<EventLog> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io("failed to create the event log directory", &dir, e))?;
        let next = files(&dir).last().map_or(1, |(n, _)| n + 1);
        let log = EventLog {
            dir,
            open: Mutex::new(None),
            max_file_bytes,
            max_files: max_files.max(1),
            warned: Default::default(),
        };
        *log.open.locked() = Some(log.open_file(next)?);
        Ok(log)
    }

    fn open_file(&self, number: u64) -> Result<Open> {
        let path = self.dir.join(format!("events-{number:06}.jsonl"));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io("failed to open the event log", &path, e))?;
        // Keep the newest files only, this one among them.
        let all = files(&self.dir);
        let excess = all.len().saturating_sub(self.max_files);
        for (_, old) in all.into_iter().take(excess) {
            let _ = std::fs::remove_file(old);
        }
        Ok(Open {
            file,
            bytes: 0,
            number,
        })
    }

    /// Appends one event as one line.
    pub(crate) fn append(&self, event: &Event) {
        if let Err(e) = self.try_append(event)
            && !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(dir = %self.dir.display(), "event log not written (the status history will miss events): {e}");
        }
    }

    fn try_append(&self, event: &Event) -> Result<()> {
        let mut line = serde_json::to_vec(event)
            .map_err(|e| Error::IllegalState(format!("event not serializable: {e}")))?;
        line.push(b'\n');
        let mut open = self.open.locked();
        if let Some(o) = open.as_ref()
            && o.bytes > 0
            && o.bytes + line.len() as u64 > self.max_file_bytes
        {
            let next = o.number + 1;
            *open = Some(self.open_file(next)?);
        }
        let o = open
            .as_mut()
            .ok_or_else(|| Error::IllegalState("event log closed".into()))?;
        o.file
            .write_all(&line)
            .map_err(|e| Error::io("failed to append to the event log", &self.dir, e))?;
        o.bytes += line.len() as u64;
        Ok(())
    }
}

/// The events of the log in `dir`, oldest first. A last line cut short (the job died while
/// writing it) is skipped; any other line that does not parse is an error naming its file
/// and line.
pub(crate) fn read(dir: &Path) -> Result<Vec<Event>> {
    let found = files(dir);
    if found.is_empty() {
        return Err(Error::io(
            "no event log (`events-*.jsonl`) found",
            dir,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let mut events = Vec::new();
    for (_, path) in found {
        let file =
            File::open(&path).map_err(|e| Error::io("failed to open the event log", &path, e))?;
        let lines: Vec<String> = BufReader::new(file)
            .lines()
            .collect::<std::io::Result<_>>()
            .map_err(|e| Error::io("failed to read the event log", &path, e))?;
        let last = lines.len();
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Event>(line) {
                Ok(e) => events.push(e),
                Err(_) if i + 1 == last => {
                    tracing::warn!(file = %path.display(), line = i + 1, "skipping the event log's last line, cut short");
                }
                Err(e) => {
                    return Err(Error::Checkpoint {
                        dir: dir.to_owned(),
                        message: format!(
                            "line {} of the event log `{}` is not an event ({e}); was the file edited?",
                            i + 1,
                            path.display()
                        ),
                    });
                }
            }
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped(time: u64) -> Event {
        Event::Stopped { time }
    }

    #[test]
    fn the_log_rotates_and_keeps_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let line = serde_json::to_vec(&stopped(1_000_000)).unwrap().len() as u64 + 1;
        // Three lines per file, at most two files.
        let log = EventLog::with_limits(dir.path().to_owned(), line * 3, 2).unwrap();
        for t in 1_000_000..1_000_010 {
            log.append(&stopped(t));
        }
        let names: Vec<u64> = files(dir.path()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec![3, 4]);
        let events = read(dir.path()).unwrap();
        assert_eq!(
            events,
            (1_000_006..1_000_010).map(stopped).collect::<Vec<_>>()
        );
        // A new run starts a new file after the existing ones.
        drop(log);
        let log = EventLog::with_limits(dir.path().to_owned(), line * 3, 2).unwrap();
        log.append(&stopped(1_000_010));
        let names: Vec<u64> = files(dir.path()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec![4, 5]);
    }
}
