//! `stream-manifest.json`: what the bundle is and what is in it, for the launcher, for
//! `cargo stream submit`, and for people auditing a deployment.

use std::collections::BTreeMap;

use serde::Serialize;

use super::git::GitInfo;
use super::strip::LocalMaster;

/// The version of this manifest's format.
pub const FORMAT_VERSION: u32 = 1;

/// The contents of `stream-manifest.json`.
#[derive(Clone, Debug, Serialize)]
pub struct StreamManifest {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// The binary target.
    pub bin: String,
    /// The target triple it was built for.
    pub target: String,
    /// The lowest glibc the binary needs, from its ELF version needs (`null` for musl or static).
    pub glibc: Option<String>,
    /// The version of `cargo-stream-runtime` linked in.
    pub runtime_version: Option<String>,
    /// Whether the runtime's `cluster` feature was on (local masters set in code ignored).
    pub cluster_build: bool,
    /// The local masters the cluster build ignores.
    pub stripped_local_masters: Vec<LocalMaster>,
    /// The git revision of the sources, if in a repository.
    pub git: Option<GitInfo>,
    /// The jar's `Main-Class`.
    pub main_class: String,
    /// The bundle path of the binary.
    pub binary: String,
    /// The `cargo-stream` that wrote it.
    pub cargo_stream_version: String,
    /// Every third-party package linked in, with its license.
    pub third_party: Vec<Dependency>,
    /// Every other entry of the bundle, by path.
    pub entries: BTreeMap<String, EntryInfo>,
}

/// A third-party package.
#[derive(Clone, Debug, Serialize)]
pub struct Dependency {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// SPDX license expression.
    pub license: Option<String>,
}

/// One entry of the bundle.
#[derive(Clone, Debug, Serialize)]
pub struct EntryInfo {
    /// Hex sha256 of the contents.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Unix mode (`0o755` for executables).
    pub mode: u32,
}
