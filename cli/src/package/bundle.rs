//! Writing the bundle: one archive, byte-identical for the same inputs (fixed timestamps,
//! sorted entries, fixed modes), written to a temporary file and renamed into place so that a
//! half-written artifact never has the final name.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::error::with_help;

/// One file of the bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its path in the archive, `/`-separated.
    pub name: String,
    /// Its contents.
    pub data: Vec<u8>,
    /// Its Unix mode.
    pub mode: u32,
}

impl Entry {
    /// A regular file (`0644`).
    pub fn file(name: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Entry {
            name: name.into(),
            data: data.into(),
            mode: 0o644,
        }
    }

    /// An executable (`0755`).
    pub fn executable(name: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Entry {
            name: name.into(),
            data: data.into(),
            mode: 0o755,
        }
    }

    /// Hex sha256 of the contents.
    pub fn sha256(&self) -> String {
        hex(&Sha256::digest(&self.data))
    }
}

/// The archive formats `package` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// A zip that is also a valid jar: `META-INF/MANIFEST.MF` first.
    Jar,
}

impl ArchiveFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            ArchiveFormat::Jar => "jar",
        }
    }
}

/// Every entry's timestamp: the earliest a zip can hold, as reproducible builds do.
fn fixed_time() -> DateTime {
    DateTime::from_date_and_time(1980, 1, 1, 0, 0, 0).expect("a valid date")
}

/// The archive's bytes: the jar's manifest first (as `JarInputStream` wants), then every entry
/// sorted by name.
pub fn archive(format: ArchiveFormat, entries: &[Entry]) -> anyhow::Result<Vec<u8>> {
    match format {
        ArchiveFormat::Jar => zip_jar(entries),
    }
}

fn zip_jar(entries: &[Entry]) -> anyhow::Result<Vec<u8>> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| {
        let rank = |e: &Entry| {
            if e.name == "META-INF/MANIFEST.MF" {
                0
            } else {
                1
            }
        };
        (rank(a), &a.name).cmp(&(rank(b), &b.name))
    });
    let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let dir_options = SimpleFileOptions::default()
        .last_modified_time(fixed_time())
        .unix_permissions(0o755);
    zip.add_directory("META-INF/", dir_options)
        .context("failed to write `META-INF/`")?;
    for entry in sorted {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(fixed_time())
            .unix_permissions(entry.mode)
            .large_file(entry.data.len() as u64 >= u64::from(u32::MAX));
        zip.start_file(entry.name.as_str(), options)
            .with_context(|| format!("failed to add `{}`", entry.name))?;
        zip.write_all(&entry.data)
            .with_context(|| format!("failed to add `{}`", entry.name))?;
    }
    Ok(zip
        .finish()
        .context("failed to finish the archive")?
        .into_inner())
}

/// Writes `bytes` to `path` through a temporary file in the same folder, then renames it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("the output has no folder")?;
    let unwritable = |err: std::io::Error, what: &str| {
        with_help(
            anyhow::Error::new(err).context(format!("failed to {what} `{}`", dir.display())),
            "make the target folder writable, or point `CARGO_TARGET_DIR` elsewhere",
        )
    };
    std::fs::create_dir_all(dir).map_err(|e| unwritable(e, "create the output folder"))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".cargo-stream-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| unwritable(e, "write in the output folder"))?;
    tmp.write_all(bytes)
        .with_context(|| format!("failed to write `{}`", tmp.path().display()))?;
    tmp.as_file().sync_all().ok();
    let file = tmp
        .persist(path)
        .map_err(|e| unwritable(e.error, "rename into"))?;
    set_mode(&file, 0o644);
    Ok(())
}

#[cfg(unix)]
fn set_mode(file: &std::fs::File, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    let _ = file.set_permissions(std::fs::Permissions::from_mode(mode));
}

#[cfg(not(unix))]
fn set_mode(_: &std::fs::File, _: u32) {}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `<jar>.sha256` beside the jar.
pub fn checksum_path(jar: &Path) -> PathBuf {
    let mut name = jar.file_name().expect("a file").to_os_string();
    name.push(".sha256");
    jar.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_entries_same_bytes_whatever_the_order() {
        let a = vec![
            Entry::file("b.txt", "b"),
            Entry::file("META-INF/MANIFEST.MF", "m"),
            Entry::executable("bin/x", "x"),
        ];
        let mut b = a.clone();
        b.reverse();
        let one = archive(ArchiveFormat::Jar, &a).unwrap();
        assert_eq!(one, archive(ArchiveFormat::Jar, &b).unwrap());
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(one)).unwrap();
        let names: Vec<_> = (0..zip.len())
            .map(|i| zip.by_index(i).unwrap().name().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            ["META-INF/", "META-INF/MANIFEST.MF", "b.txt", "bin/x"]
        );
        assert_eq!(
            zip.by_name("bin/x").unwrap().unix_mode().unwrap() & 0o777,
            0o755
        );
    }
}
