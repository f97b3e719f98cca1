//! The checkpoint directory's lock: one running job per checkpoint directory. Two jobs
//! writing the same directory would overwrite each other's checkpoints and delete each
//! other's write-ahead log segments, so the second is refused with the first one's pid.
//!
//! The lock is an exclusive `flock` on `<dir>/.lock` (std's `File::try_lock`), taken when a
//! context starts checkpointing and released when its file closes: at stop, or when the
//! process dies however it dies, so a killed job never leaves a stale lock behind.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// The lock file's name in the checkpoint directory.
pub(crate) const LOCK_FILE: &str = ".lock";

/// Holds the checkpoint directory for this job until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Takes the checkpoint directory `dir` for this job, then removes the temporary files that
/// writers killed mid-write left (no other job can be writing them now).
pub(crate) fn lock(dir: &Path) -> Result<DirLock> {
    let path = dir.join(LOCK_FILE);
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io("failed to open the checkpoint lock", &path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(held(dir, &path, &mut file)),
        Err(TryLockError::Error(e)) => {
            return Err(Error::io(
                "failed to lock the checkpoint directory",
                &path,
                e,
            ));
        }
    }
    let pid = std::process::id().to_string();
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(pid.as_bytes()))
        .map_err(|e| Error::io("failed to write", &path, e))?;
    super::file::remove_stale_temps(dir);
    // The directory's own entry must survive a power loss before anything is written in it.
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        super::sync_dir(parent)?;
    }
    Ok(DirLock { _file: file })
}

fn held(dir: &Path, path: &Path, file: &mut File) -> Error {
    let mut pid = String::new();
    let _ = file.read_to_string(&mut pid);
    let holder = match pid.trim() {
        "" => "another job".to_owned(),
        pid => format!("another job (pid {pid})"),
    };
    Error::Checkpoint {
        dir: dir.to_owned(),
        message: format!(
            "{holder} is using it (it holds the lock `{}`); two jobs writing one checkpoint directory would destroy each other's state: stop the other job first, or give this one its own directory with `checkpoint(dir)` / `get_or_create(dir, ..)`",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_second_lock_on_the_directory_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = super::lock(dir.path()).unwrap();
        let err = super::lock(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("another job (pid {})", std::process::id()))
                && err.contains(&dir.path().display().to_string())
                && err.contains("stop the other job first"),
            "{err}"
        );
        drop(first);
        super::lock(dir.path()).unwrap();
    }
}
