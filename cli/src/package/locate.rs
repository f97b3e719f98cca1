//! Finds the job: its package and the binary to ship, from `cargo metadata`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use cargo_metadata::{Metadata, MetadataCommand, Package, TargetKind};

use crate::error::with_help;
use crate::package::cargo_flags::CargoFlags;

/// The job to package.
#[derive(Debug)]
pub struct Job {
    /// The whole `cargo metadata`, dependencies resolved.
    pub metadata: Metadata,
    /// The job's package.
    pub package: Package,
    /// The binary target to ship.
    pub bin: String,
    /// Every binary of the package.
    pub bins: Vec<String>,
}

impl Job {
    /// The folder holding the package's `Cargo.toml`.
    pub fn root(&self) -> PathBuf {
        self.package
            .manifest_path
            .parent()
            .expect("a manifest has a folder")
            .into()
    }

    /// Whether the package depends on `cargo-stream-runtime`.
    pub fn runtime(&self) -> Option<&Package> {
        self.package
            .dependencies
            .iter()
            .find(|d| d.name == "cargo-stream-runtime")?;
        self.metadata
            .packages
            .iter()
            .find(|p| p.name.as_str() == "cargo-stream-runtime")
    }
}

/// Reads the metadata of the crate at `manifest_path` (or the current folder) and picks the
/// binary: `bin` if given, else the only one; several without `bin` is an error naming them.
/// Dependencies are resolved for `target`, with `flags`' features and lock-file flags.
pub fn locate(
    manifest_path: Option<&Path>,
    bin: Option<&str>,
    target: &str,
    flags: &CargoFlags,
) -> anyhow::Result<Job> {
    let (metadata, package) = load(manifest_path, target, flags)?;
    let (bin, bins) = pick_bin(&package, bin)?;
    Ok(Job {
        metadata,
        package,
        bin,
        bins,
    })
}

/// Reads the metadata of the crate at `manifest_path` (or the current folder), dependencies
/// resolved for `target`, and returns it with the job's package: the one `-p` names among the
/// workspace's members, else the manifest's own. `--features`, `--all-features`,
/// `--no-default-features`, `--locked`, `--offline` and `--frozen` are passed to
/// `cargo metadata` as to `cargo build`, so that a stale lock or a missing crate fails here,
/// before anything is built, and the licenses are those of the features built.
pub fn load(
    manifest_path: Option<&Path>,
    target: &str,
    flags: &CargoFlags,
) -> anyhow::Result<(Metadata, Package)> {
    let Some(spec) = flags.package.as_deref() else {
        let metadata = metadata(manifest_path, Some(target), flags)?;
        let package = metadata.root_package().cloned().ok_or_else(|| {
            let members = member_list(&metadata);
            with_help(
                anyhow::anyhow!(
                    "`{}` is a virtual workspace manifest, not a job crate",
                    metadata.workspace_root.join("Cargo.toml")
                ),
                format!(
                    "pass `-p` with the job to package (the members are {members}), or `--manifest-path` with its Cargo.toml"
                ),
            )
        })?;
        return Ok((metadata, package));
    };
    // `-p`: find the member without resolving, then read the metadata from its own manifest,
    // as `cargo build -p` applies the features to that package.
    let workspace = metadata(manifest_path, None, flags)?;
    let member = select(&workspace, spec)?;
    let member_manifest: PathBuf = member.manifest_path.clone().into();
    let metadata = metadata(Some(&member_manifest), Some(target), flags)?;
    let package = metadata
        .packages
        .iter()
        .find(|p| p.id == member.id)
        .cloned()
        .with_context(|| format!("`cargo metadata` lost package `{spec}`"))?;
    Ok((metadata, package))
}

/// Runs `cargo metadata`: without the dependencies when `target` is `None`.
fn metadata(
    manifest_path: Option<&Path>,
    target: Option<&str>,
    flags: &CargoFlags,
) -> anyhow::Result<Metadata> {
    let mut cmd = MetadataCommand::new();
    let mut options = flags.manifest_args();
    match target {
        Some(target) => {
            // Only the dependencies built for the target count (for the licenses).
            options.extend(["--filter-platform".to_owned(), target.to_owned()]);
            options.extend(flags.feature_args());
        }
        None => {
            cmd.no_deps();
        }
    }
    cmd.other_options(options);
    if let Some(path) = manifest_path {
        cmd.manifest_path(path);
    }
    tracing::debug!(?manifest_path, target, "reading cargo metadata");
    cmd.exec().map_err(|err| {
        let message = match &err {
            cargo_metadata::Error::CargoMetadata { stderr } => {
                stderr.trim().trim_start_matches("error: ").to_owned()
            }
            other => other.to_string(),
        };
        let help = if message.contains("--locked") || message.contains("--frozen") {
            "run `cargo update` (or a build without `--locked`) to update Cargo.lock, then commit it"
        } else if message.contains("offline") {
            "fetch the dependencies first (`cargo fetch`), or leave out `--offline`"
        } else {
            "run `cargo stream package` in a job's folder (one made by `cargo stream new`), or pass `--manifest-path`"
        };
        with_help(
            anyhow::anyhow!(message).context("failed to read the job's `cargo metadata`"),
            help,
        )
    })
}

/// The workspace member `spec` names: `NAME` or `NAME@VERSION`.
fn select<'a>(metadata: &'a Metadata, spec: &str) -> anyhow::Result<&'a Package> {
    let (name, version) = match spec.split_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (spec, None),
    };
    let members = metadata.workspace_packages();
    let found: Vec<&Package> = members
        .iter()
        .copied()
        .filter(|p| p.name.as_str() == name)
        .filter(|p| version.is_none_or(|v| p.version.to_string() == v))
        .collect();
    match found.as_slice() {
        [only] => Ok(only),
        [] => Err(with_help(
            anyhow::anyhow!(
                "package `{spec}` is not a member of the workspace `{}`",
                metadata.workspace_root
            ),
            format!("the members are {}", member_list(metadata)),
        )),
        _ => Err(with_help(
            anyhow::anyhow!("`-p {spec}` names several packages of the workspace"),
            "add the version: `-p NAME@VERSION`",
        )),
    }
}

/// The workspace's members, for messages: `` `a`, `b` ``.
fn member_list(metadata: &Metadata) -> String {
    let mut names: Vec<String> = metadata
        .workspace_packages()
        .iter()
        .map(|p| format!("`{}`", p.name.as_str()))
        .collect();
    names.sort();
    names.join(", ")
}

/// The binary to ship: `bin` if given, else the only one; several without `bin` is an error
/// naming them. Returns it with every binary of the package.
pub fn pick_bin(package: &Package, bin: Option<&str>) -> anyhow::Result<(String, Vec<String>)> {
    let bins: Vec<String> = package
        .targets
        .iter()
        .filter(|t| t.is_kind(TargetKind::Bin))
        .map(|t| t.name.clone())
        .collect();
    let list = || {
        bins.iter()
            .map(|b| format!("`{b}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let bin = match bin {
        Some(wanted) if bins.iter().any(|b| b == wanted) => wanted.to_owned(),
        Some(wanted) => {
            return Err(with_help(
                anyhow::anyhow!(
                    "package `{}` has no binary named `{wanted}`",
                    package.name.as_str()
                ),
                if bins.is_empty() {
                    "add `src/main.rs`".to_owned()
                } else {
                    format!("its binaries are {}", list())
                },
            ));
        }
        None => match bins.as_slice() {
            [only] => only.clone(),
            [] => {
                return Err(with_help(
                    anyhow::anyhow!(
                        "package `{}` has no binary to package",
                        package.name.as_str()
                    ),
                    "a job is a binary: add `src/main.rs` with its `main`",
                ));
            }
            _ => {
                return Err(with_help(
                    anyhow::anyhow!(
                        "package `{}` has several binaries: {}",
                        package.name.as_str(),
                        list()
                    ),
                    format!(
                        "pass `--bin` with the one to package, e.g. `cargo stream package --bin {}`, or set `bin` under `[package]` in Stream.toml",
                        bins[0]
                    ),
                ));
            }
        },
    };
    Ok((bin, bins))
}

/// The host's target triple, from `rustc -vV`.
pub fn host_triple() -> anyhow::Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = std::process::Command::new(&rustc)
        .arg("-vV")
        .output()
        .context("failed to run `rustc -vV`")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("`rustc -vV` printed no `host:` line")
}
