//! Finds the job: its package and the binary to ship, from `cargo metadata`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use cargo_metadata::{Metadata, MetadataCommand, Package, TargetKind};

use crate::error::with_help;

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
/// Dependencies are resolved for `target`.
pub fn locate(
    manifest_path: Option<&Path>,
    bin: Option<&str>,
    target: &str,
) -> anyhow::Result<Job> {
    let (metadata, package) = load(manifest_path, target)?;
    let (bin, bins) = pick_bin(&package, bin)?;
    Ok(Job {
        metadata,
        package,
        bin,
        bins,
    })
}

/// Reads the metadata of the crate at `manifest_path` (or the current folder), dependencies
/// resolved for `target`, and returns it with the job's package.
pub fn load(manifest_path: Option<&Path>, target: &str) -> anyhow::Result<(Metadata, Package)> {
    let mut cmd = MetadataCommand::new();
    // Only the dependencies built for the target count (for the licenses).
    cmd.other_options(vec!["--filter-platform".to_owned(), target.to_owned()]);
    if let Some(path) = manifest_path {
        cmd.manifest_path(path);
    }
    tracing::debug!(?manifest_path, target, "reading cargo metadata");
    let metadata = cmd.exec().map_err(|err| {
        let message = match &err {
            cargo_metadata::Error::CargoMetadata { stderr } => {
                stderr.trim().trim_start_matches("error: ").to_owned()
            }
            other => other.to_string(),
        };
        with_help(
            anyhow::anyhow!(message).context("failed to read the job's `cargo metadata`"),
            "run `cargo stream package` in a job's folder (one made by `cargo stream new`), or pass `--manifest-path`",
        )
    })?;
    let package = metadata.root_package().cloned().ok_or_else(|| {
        with_help(
            anyhow::anyhow!(
                "`{}` is a virtual workspace manifest, not a job crate",
                metadata.workspace_root.join("Cargo.toml")
            ),
            "pass `--manifest-path` with the Cargo.toml of the job to package",
        )
    })?;
    Ok((metadata, package))
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
