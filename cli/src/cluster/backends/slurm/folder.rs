//! Job folders: `jobs/<name>-<UTC time>/` in the upload folder, made before the job is
//! submitted (Slurm opens the job's `stdout` and `stderr` there before the script runs), and
//! read back by `logs`. The upload folder is seen from two sides: from where we write it (this
//! machine for `upload.to = "dir"`, the SFTP host for `sftp`) and from the nodes (the same path,
//! or the `file://` base given as `upload.url`). The holder is reached ([`Reached`]) over an SSH
//! session the caller opened, so that one connection serves a whole submission.

use std::path::Path;

use anyhow::Context as _;

use crate::cluster::profile::{SshTarget, Upload};
use crate::cluster::transport::ssh::{Session, quote};
use crate::cluster::utc::Utc;
use crate::error::with_help;

/// The machine that holds the upload folder, as we reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// This machine (`upload.to = "dir"`).
    Local,
    /// An SFTP host (`upload.to = "sftp"`).
    Sftp(SshTarget),
}

impl Holder {
    /// The holder of `upload`.
    pub fn of(upload: &Upload) -> Holder {
        match upload {
            Upload::Dir { .. } => Holder::Local,
            Upload::Sftp { ssh, .. } => Holder::Sftp(ssh.clone()),
        }
    }

    /// `local` or `sftp`, as kept in the record.
    pub fn name(&self) -> &'static str {
        match self {
            Holder::Local => "local",
            Holder::Sftp(_) => "sftp",
        }
    }
}

/// The holder, reached: this machine, or an SFTP host over an open session.
#[derive(Clone, Copy, Debug)]
pub enum Reached<'a> {
    /// This machine.
    Local,
    /// The SFTP host.
    Ssh(&'a Session),
}

/// A job's folder, from both sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFolder {
    /// Its path on the holder.
    pub here: String,
    /// Its path on the nodes.
    pub node: String,
}

/// The upload folder as the nodes see it: `upload.url` when it is a `file://` URL, else
/// `here` (the same path as on the holder).
pub fn node_base(here: &str, url: Option<&str>) -> anyhow::Result<String> {
    match url {
        None => Ok(here.trim_end_matches('/').to_owned()),
        Some(url) => match url.strip_prefix("file://") {
            Some(path) if path.starts_with('/') => Ok(path.trim_end_matches('/').to_owned()),
            _ => Err(with_help(
                anyhow::anyhow!(
                    "`upload.url = \"{url}\"`: Slurm's nodes read the jar from a file system"
                ),
                "leave out `upload.url` when the nodes see the folder at the same path, or give it as `file:///PATH`",
            )),
        },
    }
}

/// Creates a new job folder for `name` under `jobs/` of the upload folder (`here_base` on the
/// holder, `node_base` on the nodes).
pub fn create(
    holder: Reached<'_>,
    here_base: &str,
    node_base: &str,
    name: &str,
) -> anyhow::Result<JobFolder> {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stamp = utc_stamp(std::time::SystemTime::now());
    let here_jobs = format!("{}/jobs", here_base.trim_end_matches('/'));
    for n in 0..100 {
        let tag = match n {
            0 => format!("{safe}-{stamp}"),
            n => format!("{safe}-{stamp}-{n}"),
        };
        let here = format!("{here_jobs}/{tag}");
        if make_new_dir(holder, &here_jobs, &here)? {
            return Ok(JobFolder {
                here,
                node: format!("{}/jobs/{tag}", node_base.trim_end_matches('/')),
            });
        }
    }
    anyhow::bail!("failed to find a free job folder name in `{here_jobs}`")
}

/// Makes `dir` (mode 700: the job runs as the submitting user, and its logs and checkpoints are
/// nobody else's to read) inside `parent` (made if missing); false if `dir` exists already.
fn make_new_dir(holder: Reached<'_>, parent: &str, dir: &str) -> anyhow::Result<bool> {
    match holder {
        Reached::Local => {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("failed to create `{parent}`"))?;
            match std::fs::create_dir(dir) {
                Ok(()) => {
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::PermissionsExt as _;
                        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                            .with_context(|| format!("failed to make `{dir}` private"))?;
                    }
                    Ok(true)
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(anyhow::Error::new(e).context(format!("failed to create `{dir}`"))),
            }
        }
        Reached::Ssh(session) => {
            // `mkdir` without `-p` fails on an existing folder: the name is ours alone.
            let out = session.exec(&format!(
                "mkdir -p {parent} && if [ -e {dir} ]; then echo exists; else mkdir -m 700 {dir}; fi",
                parent = quote(parent),
                dir = quote(dir)
            ))?;
            if !out.success() {
                anyhow::bail!(
                    "failed to create `{dir}` on `{}`: {}",
                    session.target(),
                    out.stderr.trim()
                );
            }
            Ok(out.stdout.trim() != "exists")
        }
    }
}

/// The job folder whose path on the nodes is `node_dir` (a job's working directory, as Slurm
/// gives it), if it is one of the upload folder's (`here_base` on the holder, `node_base` on
/// the nodes): `NODE_BASE/jobs/TAG`, TAG one plain name.
pub fn of_node(here_base: &str, node_base: &str, node_dir: &str) -> Option<JobFolder> {
    let jobs = format!("{}/jobs/", node_base.trim_end_matches('/'));
    let tag = node_dir.trim_end_matches('/').strip_prefix(&jobs)?;
    if tag.is_empty() || tag.contains('/') || tag == "." || tag == ".." {
        return None;
    }
    Some(JobFolder {
        here: format!("{}/jobs/{tag}", here_base.trim_end_matches('/')),
        node: format!("{jobs}{tag}"),
    })
}

/// The upload folder's absolute path on the holder, as a submission computes it (this
/// machine's canonical path; the SFTP host's `pwd` in it); `None` when it does not exist (no
/// job was ever submitted through it).
pub fn base(holder: Reached<'_>, path: &str) -> anyhow::Result<Option<String>> {
    match holder {
        Reached::Local => match std::fs::canonicalize(path) {
            Ok(path) => Ok(Some(path.display().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context(format!("failed to resolve `{path}`"))),
        },
        Reached::Ssh(session) => {
            let dir = crate::cluster::transport::ssh::shell_dir(path);
            let out = session.exec(&format!("cd -- {dir} 2>/dev/null && pwd || true"))?;
            Ok(out
                .stdout
                .lines()
                .next()
                .filter(|l| l.starts_with('/'))
                .map(|l| l.trim_end_matches('/').to_owned()))
        }
    }
}

/// Removes a job folder (best effort: after a refused submission).
pub fn remove(holder: Reached<'_>, dir: &str) {
    match holder {
        Reached::Local => {
            let _ = std::fs::remove_dir_all(dir);
        }
        Reached::Ssh(session) => {
            let _ = session.exec(&format!("rm -rf -- {}", quote(dir)));
        }
    }
}

/// The bytes of `path` on the holder from `offset` on; nothing when the file is not there
/// (yet).
pub fn read_from(holder: Reached<'_>, path: &str, offset: u64) -> anyhow::Result<Vec<u8>> {
    match holder {
        Reached::Local => read_local(Path::new(path), offset),
        Reached::Ssh(session) => session.read_from(path, offset),
    }
}

fn read_local(path: &Path, offset: u64) -> anyhow::Result<Vec<u8>> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("failed to read `{}`", path.display()))
            );
        }
    };
    let len = file.metadata()?.len();
    if offset >= len {
        return Ok(Vec::new());
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut out = Vec::with_capacity((len - offset) as usize);
    file.read_to_end(&mut out)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    Ok(out)
}

/// `20261124T151200123Z` (UTC, milliseconds).
fn utc_stamp(time: std::time::SystemTime) -> String {
    let t = Utc::from_time(time);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}{:03}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.millis
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stamps_are_utc() {
        let t = std::time::UNIX_EPOCH + Duration::from_millis(1_795_533_342_123);
        assert_eq!(utc_stamp(t), "20261124T151542123Z");
        assert_eq!(utc_stamp(std::time::UNIX_EPOCH), "19700101T000000000Z");
    }

    #[test]
    fn node_folders_follow_file_urls() {
        assert_eq!(node_base("/mnt/x/", None).unwrap(), "/mnt/x");
        assert_eq!(
            node_base("/mnt/x", Some("file:///shared/x/")).unwrap(),
            "/shared/x"
        );
        assert!(node_base("/mnt/x", Some("http://h/x")).is_err());
    }

    #[test]
    fn job_folders_are_found_from_the_nodes_path() {
        let found = of_node("/mnt/up", "/shared/up/", "/shared/up/jobs/wc-1").unwrap();
        assert_eq!(
            found,
            JobFolder {
                here: "/mnt/up/jobs/wc-1".into(),
                node: "/shared/up/jobs/wc-1".into()
            }
        );
        for other in [
            "/shared/up/jobs/",
            "/shared/up/jobs/..",
            "/shared/up/jobs/a/b",
            "/shared/upx/jobs/a",
            "/home/u",
        ] {
            assert_eq!(of_node("/mnt/up", "/shared/up", other), None, "{other}");
        }
    }

    #[test]
    fn local_job_folders_are_new_private_and_readable() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().display().to_string();
        let a = create(Reached::Local, &base, "/nodes/up", "word count").unwrap();
        let b = create(Reached::Local, &base, "/nodes/up", "word count").unwrap();
        assert_ne!(a, b);
        assert!(a.node.starts_with("/nodes/up/jobs/word_count-"), "{a:?}");
        assert!(Path::new(&a.here).is_dir());
        // issue 14: private to the user, whatever the umask.
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&a.here).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
        std::fs::write(format!("{}/stdout", a.here), b"hello").unwrap();
        let read = |offset| read_from(Reached::Local, &format!("{}/stdout", a.here), offset);
        assert_eq!(read(0).unwrap(), b"hello");
        assert_eq!(read(3).unwrap(), b"lo");
        assert_eq!(read(9).unwrap(), b"");
        assert_eq!(
            read_from(Reached::Local, &format!("{}/none", a.here), 0).unwrap(),
            b""
        );
        remove(Reached::Local, &a.here);
        assert!(!Path::new(&a.here).exists());
    }
}
