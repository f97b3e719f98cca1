//! The git revision of the job's sources and whether they have uncommitted changes.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

/// Where the sources came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GitInfo {
    /// `git rev-parse HEAD`.
    pub revision: String,
    /// Whether files of the package differ from `HEAD` (build output excluded).
    pub dirty: bool,
}

/// The revision of the repository holding `dir`, or `None` outside a repository (or without
/// git, or before the first commit).
pub fn describe(dir: &Path) -> Option<GitInfo> {
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let revision = git(&["rev-parse", "HEAD"])?.trim().to_owned();
    let status = git(&[
        "status",
        "--porcelain",
        "--untracked-files=normal",
        "--",
        ".",
        ":(exclude)target",
    ])?;
    Some(GitInfo {
        revision,
        dirty: !status.trim().is_empty(),
    })
}
