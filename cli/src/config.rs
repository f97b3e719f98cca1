//! Settings that may come from several places, merged in layers, low to high:
//! `[package.metadata.stream.package]` in the job's Cargo.toml, the `[package]` table of its
//! `Stream.toml`, `CARGO_STREAM_*` environment variables, then the command line. Each layer is
//! parsed into an all-`Option` struct; a value set in a higher layer replaces the lower one.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::error::with_help;
use crate::package::Include;

/// `cargo stream package` settings, as one layer gives them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageLayer {
    /// The binary to package.
    pub bin: Option<String>,
    /// Extra files, `DEST:SRC`, SRC relative to where the layer lives.
    pub include: Option<Vec<String>>,
}

/// The merged settings, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackageSettings {
    /// The binary to package.
    pub bin: Option<String>,
    /// Extra files, SRC resolved.
    pub includes: Vec<Include>,
    /// Where each value came from, for `-v`.
    pub sources: Vec<String>,
}

/// Environment variable for the binary.
pub const BIN_ENV: &str = "CARGO_STREAM_BIN";
/// Environment variable for extra files: `DEST:SRC` entries separated by commas.
pub const INCLUDE_ENV: &str = "CARGO_STREAM_INCLUDE";

impl PackageSettings {
    /// Merges the layers of a job whose package folder is `root` and whose Cargo metadata is
    /// `metadata` (the package's `metadata` field), under the flags.
    pub fn layered(
        root: &Path,
        metadata: &serde_json::Value,
        flags: PackageLayer,
        cwd: &Path,
    ) -> anyhow::Result<PackageSettings> {
        let mut layers: Vec<(String, PackageLayer, PathBuf)> = Vec::new();
        if let Some(value) = metadata.get("stream").and_then(|s| s.get("package")) {
            let layer: PackageLayer = serde_json::from_value(value.clone()).map_err(|e| {
                with_help(
                    anyhow::Error::new(e)
                        .context("bad `[package.metadata.stream.package]` in Cargo.toml"),
                    "its keys are `bin` (a string) and `include` (a list of \"DEST:SRC\")",
                )
            })?;
            layers.push((
                "Cargo.toml [package.metadata.stream.package]".into(),
                layer,
                root.to_owned(),
            ));
        }
        let stream_toml = root.join("Stream.toml");
        if stream_toml.is_file() {
            let text = std::fs::read_to_string(&stream_toml)
                .with_context(|| format!("failed to read `{}`", stream_toml.display()))?;
            let table: toml::Table = text
                .parse()
                .with_context(|| format!("failed to parse `{}`", stream_toml.display()))?;
            if let Some(value) = table.get("package") {
                let layer: PackageLayer =
                    value.clone().try_into().map_err(|e: toml::de::Error| {
                        with_help(
                            anyhow::Error::new(e)
                                .context(format!("bad `[package]` in `{}`", stream_toml.display())),
                            "its keys are `bin` (a string) and `include` (a list of \"DEST:SRC\")",
                        )
                    })?;
                layers.push(("Stream.toml [package]".into(), layer, root.to_owned()));
            }
        }
        let env = PackageLayer {
            bin: std::env::var(BIN_ENV).ok().filter(|b| !b.is_empty()),
            include: std::env::var(INCLUDE_ENV)
                .ok()
                .filter(|i| !i.is_empty())
                .map(|i| {
                    i.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                }),
        };
        layers.push(("the environment".into(), env, cwd.to_owned()));
        layers.push(("the command line".into(), flags, cwd.to_owned()));

        let mut merged = PackageSettings::default();
        for (name, layer, base) in layers {
            if let Some(bin) = layer.bin {
                merged.sources.push(format!("bin `{bin}` from {name}"));
                merged.bin = Some(bin);
            }
            if let Some(entries) = layer.include {
                let mut includes = Vec::new();
                for entry in &entries {
                    let mut include: Include = entry.parse().map_err(|e: String| {
                        anyhow::anyhow!("bad include `{entry}` in {name}: {e}")
                    })?;
                    if include.src.is_relative() {
                        include.src = base.join(&include.src);
                    }
                    includes.push(include);
                }
                merged
                    .sources
                    .push(format!("{} include(s) from {name}", includes.len()));
                merged.includes = includes;
            }
        }
        Ok(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_layers_win() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("Stream.toml"),
            "[package]\nbin = \"from-stream\"\ninclude = [\"conf/a:a.conf\"]\n",
        )
        .unwrap();
        let metadata =
            serde_json::json!({"stream": {"package": {"bin": "from-cargo", "include": ["x:y"]}}});
        let cwd = Path::new("/elsewhere");
        let s =
            PackageSettings::layered(tmp.path(), &metadata, PackageLayer::default(), cwd).unwrap();
        assert_eq!(s.bin.as_deref(), Some("from-stream"));
        assert_eq!(s.includes.len(), 1);
        assert_eq!(s.includes[0].src, tmp.path().join("a.conf"));
        let flags = PackageLayer {
            bin: Some("from-flag".into()),
            include: None,
        };
        let s = PackageSettings::layered(tmp.path(), &metadata, flags, cwd).unwrap();
        assert_eq!(s.bin.as_deref(), Some("from-flag"));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let metadata = serde_json::json!({"stream": {"package": {"bins": "x"}}});
        let tmp = tempfile::tempdir().unwrap();
        let err =
            PackageSettings::layered(tmp.path(), &metadata, PackageLayer::default(), tmp.path())
                .unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `bins`"),
            "{err:#}"
        );
    }
}
