//! Staging: putting the artifact where the cluster reads it, whole and checked.
//!
//! The staged copy is named for its content (`NAME-<sha256 prefix>.jar`), so a new build never
//! overwrites a jar that a running (or restarting, supervised) driver still reads. It is written
//! under a temporary name, its checksum verified, then renamed into place: an interrupted copy
//! is never taken for a whole one.

use std::io::{Read as _, Write as _};
use std::path::Path;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

use crate::cluster::profile::Upload;
use crate::shell::Shell;

/// Where the artifact was put.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staged {
    /// Its path on the machine that holds it (this one for `dir`, the SFTP host for `sftp`).
    pub path: String,
    /// The URL the cluster reads it from (`file://...` unless the profile gives a base URL).
    pub url: String,
}

/// The staged file name of `artifact` with checksum `sha256`.
pub fn staged_name(artifact: &Path, sha256: &str) -> String {
    let stem = artifact
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "job".into());
    let ext = artifact
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "jar".into());
    format!("{stem}-{}.{ext}", &sha256[..sha256.len().min(12)])
}

/// Stages `artifact` (whose sha256 is `sha256`) as `upload` says.
pub fn stage(
    shell: &mut Shell,
    upload: &Upload,
    artifact: &Path,
    sha256: &str,
) -> anyhow::Result<Staged> {
    let name = staged_name(artifact, sha256);
    match upload {
        Upload::Dir { path, url } => {
            let dest = copy_verified(shell, artifact, path, &name, sha256)?;
            let dest = dest.display().to_string();
            Ok(Staged {
                url: url_for(url.as_deref(), &dest, &name),
                path: dest,
            })
        }
        Upload::Sftp { ssh, path, url } => crate::cluster::transport::ssh::stage_sftp(
            shell,
            ssh,
            path,
            url.as_deref(),
            artifact,
            sha256,
        ),
    }
}

fn url_for(base: Option<&str>, path: &str, name: &str) -> String {
    match base {
        Some(base) => format!("{}/{name}", base.trim_end_matches('/')),
        None => format!("file://{path}"),
    }
}

/// The sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("failed to open `{}`", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Copies `src` into `dir/name` through a temporary file, checking the copy's sha256; an
/// existing `dir/name` with the right checksum is kept as is.
fn copy_verified(
    shell: &mut Shell,
    src: &Path,
    dir: &Path,
    name: &str,
    sha256: &str,
) -> anyhow::Result<std::path::PathBuf> {
    let dest = dir.join(name);
    if dest.is_file() && sha256_file(&dest)? == sha256 {
        shell.verbose_status("Fresh", format!("`{}` (same checksum)", dest.display()));
        return Ok(dest);
    }
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "failed to create the upload folder `{}` (upload.path)",
            dir.display()
        )
    })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".part")
        .tempfile_in(dir)
        .with_context(|| format!("failed to write in `{}`", dir.display()))?;
    let mut input =
        std::fs::File::open(src).with_context(|| format!("failed to open `{}`", src.display()))?;
    let size = input.metadata()?.len();
    let progress = shell.transfer("Copying", format!("`{name}` to `{}`", dir.display()), size);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        tmp.write_all(&buf[..n])
            .with_context(|| format!("failed to write in `{}`", dir.display()))?;
        progress.inc(n as u64);
    }
    tmp.as_file().sync_all()?;
    drop(progress);
    let got = sha256_file(tmp.path())?;
    if got != sha256 {
        anyhow::bail!(
            "the copy of `{}` in `{}` has sha256 {got}, not {sha256}; it was removed",
            src.display(),
            dir.display()
        );
    }
    // Readable by the cluster's user, whoever that is.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(&dest)
        .with_context(|| format!("failed to write `{}`", dest.display()))?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::{ColorChoice, Verbosity};

    #[test]
    fn dir_staging_is_content_addressed_and_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let jar = tmp.path().join("wc-0.1.0.jar");
        std::fs::write(&jar, b"bytes of a jar").unwrap();
        let sum = sha256_file(&jar).unwrap();
        let mut shell = Shell::new(Verbosity::Quiet, ColorChoice::Never);
        let upload = Upload::Dir {
            path: tmp.path().join("shared"),
            url: None,
        };
        let staged = stage(&mut shell, &upload, &jar, &sum).unwrap();
        assert!(
            staged
                .path
                .ends_with(&format!("wc-0.1.0-{}.jar", &sum[..12]))
        );
        assert_eq!(staged.url, format!("file://{}", staged.path));
        assert_eq!(std::fs::read(&staged.path).unwrap(), b"bytes of a jar");
        // A wrong expected checksum leaves nothing behind.
        let err = stage(&mut shell, &upload, &jar, &"0".repeat(64)).unwrap_err();
        assert!(format!("{err:#}").contains("was removed"), "{err:#}");
        let left: Vec<_> = std::fs::read_dir(tmp.path().join("shared"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }
}
