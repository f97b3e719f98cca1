//! `save_as_text_files`: one directory per batch, written under a temporary name and renamed.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::batch::Data;
use crate::dstream::DStream;
use crate::error::{Error, Result};
use crate::render::Render;
use crate::time::Time;

/// Spark's `rddToFileName`: `prefix-<ms>` or `prefix-<ms>.suffix`.
pub(crate) fn batch_dir(prefix: &str, suffix: &str, time: Time) -> PathBuf {
    if suffix.is_empty() {
        PathBuf::from(format!("{prefix}-{}", time.millis()))
    } else {
        PathBuf::from(format!("{prefix}-{}.{suffix}", time.millis()))
    }
}

fn write_part<T: Render>(dir: &Path, index: usize, records: &[T]) -> Result<()> {
    let path = dir.join(format!("part-{index:05}"));
    let file = std::fs::File::create(&path).map_err(|e| Error::io("failed to create", &path, e))?;
    let mut w = std::io::BufWriter::new(file);
    let mut line = String::new();
    for r in records {
        line.clear();
        r.render(&mut line);
        line.push('\n');
        w.write_all(line.as_bytes())
            .map_err(|e| Error::io("failed to write", &path, e))?;
    }
    let file = w
        .into_inner()
        .map_err(|e| Error::io("failed to write", &path, e.into_error()))?;
    file.sync_all()
        .map_err(|e| Error::io("failed to sync", &path, e))
}

impl<T: Data + Render> DStream<T> {
    /// Writes each batch as text, one record per line, into the directory
    /// `prefix-<batch ms>.suffix` (`prefix-<batch ms>` for an empty suffix), a `part-NNNNN`
    /// file per partition plus `_SUCCESS`. The directory appears whole or not at all: it is
    /// written under a temporary name and renamed; a replayed batch replaces it.
    ///
    /// # Panics
    ///
    /// When called after `start()` or `stop()`, naming the caller's file and line.
    #[track_caller]
    pub fn save_as_text_files(
        &self,
        prefix: impl Into<String>,
        suffix: impl Into<String>,
    ) -> Result<()> {
        let (prefix, suffix) = (prefix.into(), suffix.into());
        self.register_output("save_as_text_files", move |batch, time| {
            let dir = batch_dir(&prefix, &suffix, time);
            if let Err(e) = save(&batch, &dir) {
                panic!("{e}");
            }
        })
    }
}

fn save<T: Data + Render>(batch: &crate::Batch<T>, dir: &Path) -> Result<()> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io("failed to create directory", &tmp, e))?;
    {
        use rayon::prelude::*;
        let parts = batch.partitions();
        batch.exec.install(|| {
            parts
                .par_iter()
                .enumerate()
                .map(|(i, p)| write_part(&tmp, i, p))
                .collect::<Result<Vec<()>>>()
        })?;
    }
    let success = tmp.join("_SUCCESS");
    std::fs::File::create(&success).map_err(|e| Error::io("failed to create", &success, e))?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| Error::io("failed to replace", dir, e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| Error::io("failed to rename into", dir, e))
}
