//! `text_file_stream`: new files moved into a directory, read once each, a file per partition.
//! Lines that are not valid UTF-8 are kept with U+FFFD in place of the bad bytes (as Spark's
//! text input does), counted in the batch's metrics and logged with the file and line.

use crate::sync::LockExt;
use std::collections::{BTreeMap, HashSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::batch::{Batch, Executor};
use crate::checkpoint::Checkpointed;
use crate::error::{Error, Result};
use crate::metrics::Counters;
use crate::source::InputSource;
use crate::time::{Time, forget_upto};

pub(crate) struct FileSource {
    dir: PathBuf,
    seen: Mutex<HashSet<PathBuf>>,
    /// Files allocated to each batch; kept until a checkpoint covers the batch when
    /// checkpointing, so that a restart re-reads the files of unfinished batches.
    allocated: Mutex<BTreeMap<Time, Vec<PathBuf>>>,
    /// Files of batches a restored checkpoint did not cover: they go to the first batch.
    pending: Mutex<Vec<PathBuf>>,
    restored: AtomicBool,
    checkpointing: AtomicBool,
    read: Mutex<BTreeMap<Time, u64>>,
    /// Lines of each batch that were not UTF-8.
    replaced: Mutex<BTreeMap<Time, u64>>,
    counters: Arc<Counters>,
    exec: Arc<OnceLock<Executor>>,
}

impl FileSource {
    pub(crate) fn new(
        dir: PathBuf,
        counters: Arc<Counters>,
        exec: Arc<OnceLock<Executor>>,
    ) -> Self {
        FileSource {
            dir,
            seen: Mutex::default(),
            allocated: Mutex::default(),
            pending: Mutex::default(),
            restored: AtomicBool::new(false),
            checkpointing: AtomicBool::new(false),
            read: Mutex::default(),
            replaced: Mutex::default(),
            counters,
            exec,
        }
    }

    /// The visible files in the directory, sorted: names starting with `.` (files being
    /// written, by convention) are skipped, as are subdirectories.
    fn list(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if !hidden
                && entry
                    .file_type()
                    .is_ok_and(|t| t.is_file() || t.is_symlink())
            {
                files.push(entry.path());
            }
        }
        files.sort();
        Ok(files)
    }

    /// The batch at `time`: the lines of each file allocated to it, one partition per file.
    pub(crate) fn compute(&self, time: Time) -> Option<Batch<String>> {
        let exec = self.exec.get()?.clone();
        let files = self.allocated.locked().remove(&time).unwrap_or_default();
        let paths = Batch::new(files.into_iter().map(|f| vec![f]).collect(), exec);
        let replaced = AtomicU64::new(0);
        let batch = paths.map_parts(|p| {
            p.iter()
                .flat_map(|f| read_lines(f, &self.counters, &replaced))
                .collect()
        });
        self.read.locked().insert(time, batch.count());
        self.replaced.locked().insert(time, replaced.into_inner());
        Some(batch)
    }
}

impl InputSource for FileSource {
    fn name(&self) -> String {
        format!("text_file_stream({})", self.dir.display())
    }

    fn start(&self) -> Result<()> {
        if self.restored.load(Ordering::SeqCst) {
            // Recovering: files that arrived while the job was down are new to it.
            return match std::fs::read_dir(&self.dir) {
                Ok(_) => Ok(()),
                Err(e) => Err(Error::Source {
                    source_name: self.name(),
                    message: format!("cannot read directory `{}`: {e}", self.dir.display()),
                }),
            };
        }
        let existing = self.list().map_err(|e| Error::Source {
            source_name: self.name(),
            message: format!(
                "cannot read directory `{}`: {e}; create it or fix its permissions",
                self.dir.display()
            ),
        })?;
        tracing::info!(dir = %self.dir.display(), ignored = existing.len(), "watching for new files (files already there are ignored)");
        self.seen.locked().extend(existing);
        Ok(())
    }

    fn allocate(&self, time: Time) -> u64 {
        let listed = match self.list() {
            Ok(l) => l,
            Err(e) => {
                Counters::add(&self.counters.listing_errors, 1);
                tracing::warn!(dir = %self.dir.display(), "cannot list directory, batch {time} gets no files from it: {e}");
                return 0;
            }
        };
        let mut seen = self.seen.locked();
        // Files of batches a restored checkpoint did not cover come first.
        let mut new = std::mem::take(&mut *self.pending.locked());
        new.extend(listed.iter().filter(|f| !seen.contains(*f)).cloned());
        // Forget names no longer listed, so a new file under an old name is read again.
        let present: HashSet<&PathBuf> = listed.iter().collect();
        seen.retain(|f| present.contains(f));
        seen.extend(new.iter().cloned());
        if !new.is_empty() {
            tracing::debug!(files = new.len(), "new files for batch {time}");
            self.allocated.locked().insert(time, new);
        }
        0
    }

    fn records_read(&self, time: Time) -> u64 {
        self.read.locked().get(&time).copied().unwrap_or(0)
    }

    /// The files of the batch, as Spark's `FileInputDStream` describes its batches.
    fn description(&self, time: Time) -> Option<String> {
        const SHOWN: usize = 10;
        let allocated = self.allocated.locked();
        let files = allocated.get(&time)?;
        let mut names: Vec<String> = files
            .iter()
            .take(SHOWN)
            .map(|f| {
                f.file_name().map_or_else(
                    || f.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                )
            })
            .collect();
        if files.len() > SHOWN {
            names.push(format!("and {} more", files.len() - SHOWN));
        }
        Some(format!("{} file(s): {}", files.len(), names.join(", ")))
    }

    fn non_utf8_records(&self, time: Time) -> u64 {
        self.replaced.locked().get(&time).copied().unwrap_or(0)
    }

    fn forget(&self, time: Time) {
        let keep = Time(time.0 + 1);
        if !self.checkpointing.load(Ordering::SeqCst) {
            let mut a = self.allocated.locked();
            *a = a.split_off(&keep);
        }
        let mut r = self.read.locked();
        *r = r.split_off(&keep);
        let mut r = self.replaced.locked();
        *r = r.split_off(&keep);
    }
}

/// Non-UTF-8 lines logged one by one per file; further ones are only counted.
const WARN_LINES: u64 = 10;

/// The lines of `path`; a vanished or unreadable file is logged, counted and skipped; lines
/// that are not UTF-8 are kept with U+FFFD replacement characters, counted (in `replaced`
/// too) and logged.
fn read_lines(path: &Path, counters: &Counters, replaced: &AtomicU64) -> Vec<String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            Counters::add(&counters.vanished_files, 1);
            tracing::warn!(file = %path.display(), "file vanished before it could be read; skipped");
            return Vec::new();
        }
        Err(e) => {
            Counters::add(&counters.unreadable_files, 1);
            tracing::warn!(file = %path.display(), "cannot read file, skipped: {e}");
            return Vec::new();
        }
    };
    let mut lines = Vec::new();
    let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    if body.is_empty() && bytes.is_empty() {
        return lines;
    }
    let mut bad = 0;
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match String::from_utf8_lossy(line) {
            std::borrow::Cow::Borrowed(s) => lines.push(s.to_owned()),
            std::borrow::Cow::Owned(s) => {
                bad += 1;
                if bad <= WARN_LINES {
                    tracing::warn!(
                        file = %path.display(),
                        line = i + 1,
                        "line {} of `{}` is not valid UTF-8: kept with U+FFFD replacement characters{}",
                        i + 1,
                        path.display(),
                        if bad == WARN_LINES {
                            " (further ones in this file are counted, not logged)"
                        } else {
                            ""
                        }
                    );
                }
                lines.push(s);
            }
        }
    }
    Counters::add(&counters.non_utf8_lines, bad);
    replaced.fetch_add(bad, Ordering::Relaxed);
    lines
}

/// What a checkpoint keeps of a file source: the files seen, and those allocated to batches
/// after the checkpointed one.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    seen: Vec<PathBuf>,
    pending: Vec<PathBuf>,
}

impl Checkpointed for FileSource {
    fn kind(&self) -> &'static str {
        "text_file_stream"
    }

    fn save(&self, time: Time) -> Result<Vec<u8>> {
        let pending: Vec<PathBuf> = {
            let mut a = self.allocated.locked();
            forget_upto(&mut a, time);
            a.values().flatten().cloned().collect()
        };
        let mut seen: Vec<PathBuf> = self.seen.locked().iter().cloned().collect();
        seen.sort();
        postcard::to_stdvec(&Saved { seen, pending }).map_err(|e| {
            Error::IllegalState(format!("could not encode the file source position: {e}"))
        })
    }

    fn restore(&self, bytes: &[u8]) -> Result<()> {
        let saved: Saved = postcard::from_bytes(bytes).map_err(|e| {
            Error::IllegalState(format!("could not decode the file source position: {e}"))
        })?;
        tracing::info!(
            dir = %self.dir.display(),
            pending = saved.pending.len(),
            "file source restored: files of unfinished batches are read again"
        );
        *self.seen.locked() = saved.seen.into_iter().collect();
        *self.pending.locked() = saved.pending;
        self.restored.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn enable(&self, _dir: &Path, _name: &str) -> Result<()> {
        self.checkpointing.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_vanished_before_reading_is_counted_and_skipped() {
        let counters = Counters::default();
        let replaced = AtomicU64::new(0);
        let dir = tempfile::tempdir().unwrap();
        assert!(read_lines(&dir.path().join("gone.txt"), &counters, &replaced).is_empty());
        assert_eq!(counters.snapshot().vanished_files, 1);
        std::fs::write(dir.path().join("ok.txt"), "a\r\nb").unwrap();
        assert_eq!(
            read_lines(&dir.path().join("ok.txt"), &counters, &replaced),
            vec!["a", "b"]
        );
        assert!(
            read_lines(dir.path(), &counters, &replaced).is_empty(),
            "a directory is unreadable as a file"
        );
        assert_eq!(counters.snapshot().unreadable_files, 1);
        assert_eq!(replaced.into_inner(), 0);
    }

    #[test]
    fn lines_that_are_not_utf8_are_kept_with_replacement_characters() {
        let counters = Counters::default();
        let replaced = AtomicU64::new(0);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("latin1.txt");
        std::fs::write(&file, b"caf\xe9\r\nok\n\xff\xfe end\n").unwrap();
        assert_eq!(
            read_lines(&file, &counters, &replaced),
            vec!["caf\u{fffd}", "ok", "\u{fffd}\u{fffd} end"]
        );
        assert_eq!(replaced.into_inner(), 2);
        assert_eq!(counters.snapshot().non_utf8_lines, 2);
    }
}
