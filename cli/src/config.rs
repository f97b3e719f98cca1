//! Settings that may come from several places, merged in layers, low to high:
//! `[package.metadata.stream.package]` in the job's Cargo.toml, the `[package]` table of its
//! `Stream.toml`, `CARGO_STREAM_*` environment variables, then the command line. Each layer is
//! parsed into an all-`Option` struct; a value set in a higher layer replaces the lower one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::with_help;
use crate::layers::{self, TomlFile};

/// An extra file for the bundle: `--include DEST:SRC`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Include {
    /// Its path in the bundle.
    pub dest: String,
    /// The file or folder to copy.
    pub src: PathBuf,
}

impl TryFrom<String> for Include {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Include> for String {
    fn from(include: Include) -> String {
        format!("{}:{}", include.dest, include.src.display())
    }
}

impl std::str::FromStr for Include {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (dest, src) = s
            .split_once(':')
            .ok_or_else(|| format!("expected DEST:SRC, got `{s}`"))?;
        let dest = dest.trim_end_matches('/');
        let bad = dest.is_empty()
            || dest.starts_with('/')
            || dest.contains('\\')
            || dest
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..");
        if bad {
            return Err(format!(
                "DEST `{dest}` must be a relative path inside the bundle, without `.` or `..`"
            ));
        }
        if src.is_empty() {
            return Err(format!("SRC is empty in `{s}`"));
        }
        Ok(Include {
            dest: dest.to_owned(),
            src: PathBuf::from(src),
        })
    }
}

/// `cargo stream package` settings, as one layer gives them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PackageLayer {
    /// The binary to package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    /// Extra files, `DEST:SRC`, SRC relative to where the layer lives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<Include>>,
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

/// A package's `[package.metadata]`, as far as this tool reads it: the
/// `[package.metadata.stream.package]` layer (other keys belong to other tools).
#[derive(Debug, Default, serde::Deserialize)]
struct CargoMetadata {
    #[serde(default)]
    stream: Option<StreamMetadata>,
}

/// `[package.metadata.stream]`.
#[derive(Debug, Default, serde::Deserialize)]
struct StreamMetadata {
    #[serde(default)]
    package: Option<PackageLayer>,
}

impl CargoMetadata {
    /// The `[package.metadata.stream.package]` layer of a package's metadata, if any.
    fn package_layer(metadata: &serde_json::Value) -> serde_json::Result<Option<PackageLayer>> {
        if metadata.is_null() {
            return Ok(None);
        }
        let typed = CargoMetadata::deserialize(metadata)?;
        Ok(typed.stream.and_then(|s| s.package))
    }
}

const PACKAGE_HELP: &str = "its keys are `bin` (a string) and `include` (a list of \"DEST:SRC\")";

impl PackageSettings {
    /// Merges the layers of a job whose package folder is `root` and whose Cargo metadata is
    /// `metadata` (the package's `metadata` field), under the flags, with
    /// [`layers::overlay`].
    pub fn layered(
        root: &Path,
        metadata: &serde_json::Value,
        flags: PackageLayer,
        cwd: &Path,
    ) -> anyhow::Result<PackageSettings> {
        // Each layer with the folder its relative SRCs start from (the flags' stay as given).
        let mut found: Vec<(String, PackageLayer, Option<&Path>)> = Vec::new();
        let cargo_layer = CargoMetadata::package_layer(metadata).map_err(|e| {
            with_help(
                anyhow::Error::new(e)
                    .context("bad `[package.metadata.stream.package]` in Cargo.toml"),
                PACKAGE_HELP,
            )
        })?;
        if let Some(layer) = cargo_layer {
            found.push((
                "Cargo.toml [package.metadata.stream.package]".into(),
                layer,
                Some(root),
            ));
        }
        if let Some(stream_toml) = StreamToml::read(root)?
            && let Some(layer) = stream_toml.package
        {
            found.push(("Stream.toml [package]".into(), layer, Some(root)));
        }
        let mut env = PackageLayer {
            bin: std::env::var(BIN_ENV).ok().filter(|b| !b.is_empty()),
            include: None,
        };
        if let Some(entries) = std::env::var(INCLUDE_ENV).ok().filter(|i| !i.is_empty()) {
            let mut includes = Vec::new();
            for entry in entries.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                includes.push(entry.parse().map_err(|e: String| {
                    anyhow::anyhow!("bad include `{entry}` in the environment: {e}")
                })?);
            }
            env.include = Some(includes);
        }
        found.push(("the environment".into(), env, Some(cwd)));
        found.push(("the command line".into(), flags, None));

        let mut merged = PackageLayer::default();
        let mut sources = Vec::new();
        for (name, mut layer, base) in found {
            if let Some(bin) = &layer.bin {
                sources.push(format!("bin `{bin}` from {name}"));
            }
            if let Some(includes) = &mut layer.include {
                for include in includes.iter_mut() {
                    if let Some(base) = base
                        && include.src.is_relative()
                    {
                        include.src = base.join(&include.src);
                    }
                }
                sources.push(format!("{} include(s) from {name}", includes.len()));
            }
            merged = layers::overlay(&merged, &layer)?;
        }
        Ok(PackageSettings {
            bin: merged.bin,
            includes: merged.include.unwrap_or_default(),
            sources,
        })
    }
}

/// A job's `Stream.toml`, every table typed: an unknown table or key is an error naming the
/// file, line and column.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamToml {
    /// `[job]`: the job itself.
    pub job: Option<JobTable>,
    /// `[profile.NAME]`: how the job runs in each place (`local` on this machine).
    #[serde(default)]
    pub profile: std::collections::BTreeMap<String, RunProfile>,
    /// `[package]`: `cargo stream package` settings.
    pub package: Option<PackageLayer>,
    /// `[clusters.NAME]`: cluster profiles, typed by their kind in
    /// [`crate::cluster::profile`].
    #[serde(default)]
    pub clusters: std::collections::BTreeMap<String, toml::Value>,
}

/// The user's `clusters.toml`: only `[clusters.NAME]` tables.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// `[clusters.NAME]`: cluster profiles, typed by their kind in
    /// [`crate::cluster::profile`].
    #[serde(default)]
    pub clusters: std::collections::BTreeMap<String, toml::Value>,
}

impl UserConfig {
    /// Types every table of `file`.
    pub fn parse(file: &TomlFile) -> anyhow::Result<UserConfig> {
        file.whole("bad user configuration").map_err(|e| {
            with_help(
                e,
                "the user's `clusters.toml` holds `[clusters.NAME]` tables only",
            )
        })
    }
}

/// `[job]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobTable {
    /// The application name.
    pub name: Option<String>,
}

/// `[profile.NAME]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunProfile {
    /// The master (`local[2]`, `spark://...`).
    pub master: Option<String>,
}

impl StreamToml {
    /// Reads `Stream.toml` in `root`, if there is one.
    pub fn read(root: &Path) -> anyhow::Result<Option<StreamToml>> {
        let Some(file) = TomlFile::read(&root.join("Stream.toml"))? else {
            return Ok(None);
        };
        StreamToml::parse(&file).map(Some)
    }

    /// Types every table of `file`.
    pub fn parse(file: &TomlFile) -> anyhow::Result<StreamToml> {
        let document = file.document()?;
        let mut table = StreamToml::default();
        for (key, value) in document.into_inner() {
            let (key, span) = (key.get_ref().to_string(), key.span());
            let what = format!("bad `[{key}]`");
            match key.as_str() {
                "job" => table.job = Some(file.typed(value, &what)?),
                "profile" => table.profile = file.typed(value, &what)?,
                "package" => {
                    table.package = Some(
                        file.typed(value, &what)
                            .map_err(|e| with_help(e, PACKAGE_HELP))?,
                    )
                }
                "clusters" => table.clusters = file.typed(value, &what)?,
                other => {
                    return Err(with_help(
                        anyhow::anyhow!("unknown table `[{other}]` in {}", file.at(span)),
                        "`Stream.toml` holds `[job]`, `[profile.NAME]`, `[package]` and `[clusters.NAME]`",
                    ));
                }
            }
        }
        Ok(table)
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
    fn other_tools_metadata_and_no_metadata_are_no_layer() {
        let tmp = tempfile::tempdir().unwrap();
        for metadata in [
            serde_json::Value::Null,
            serde_json::json!({"docs": {"rs": {"all-features": true}}}),
            serde_json::json!({"stream": {"clusters": {"prod": {}}}}),
        ] {
            let s = PackageSettings::layered(
                tmp.path(),
                &metadata,
                PackageLayer::default(),
                tmp.path(),
            )
            .unwrap();
            assert_eq!(s.bin, None, "{metadata}");
        }
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

    fn stream_toml_error(text: &str) -> String {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("Stream.toml"), text).unwrap();
        format!("{:#}", StreamToml::read(tmp.path()).unwrap_err())
    }

    #[test]
    fn a_typo_in_package_names_file_line_and_column() {
        let text = stream_toml_error("[job]\nname = \"x\"\n\n[package]\nbinn = \"x\"\n");
        assert!(text.contains("bad `[package]` in `"), "{text}");
        assert!(text.contains("Stream.toml`, line 5, column 1"), "{text}");
        assert!(text.contains("unknown field `binn`"), "{text}");
    }

    #[test]
    fn a_typo_in_a_run_profile_is_an_error() {
        let text = stream_toml_error("[profile.local]\nmasterr = \"local[2]\"\n");
        assert!(text.contains("bad `[profile]` in `"), "{text}");
        assert!(text.contains("Stream.toml`, line 2, column 1"), "{text}");
        assert!(text.contains("unknown field `masterr`"), "{text}");
    }

    #[test]
    fn an_unknown_table_is_an_error() {
        let text = stream_toml_error("[job]\nname = \"x\"\n\n[jobb]\nname = \"y\"\n");
        assert!(text.contains("unknown table `[jobb]`"), "{text}");
        assert!(text.contains("Stream.toml`, line 4, column 2"), "{text}");
        let text = stream_toml_error("[job]\nnmae = \"x\"\n");
        assert!(
            text.contains("line 2, column 1") && text.contains("unknown field `nmae`"),
            "{text}"
        );
    }

    #[test]
    fn a_user_file_holds_clusters_only() {
        let file = TomlFile::new(
            Path::new("clusters.toml"),
            "[clusters.a]\nkind = \"ssh\"\n\n[cluster.b]\nkind = \"ssh\"\n".into(),
        );
        let text = format!("{:#}", UserConfig::parse(&file).unwrap_err());
        assert!(text.contains("`clusters.toml`, line 4"), "{text}");
        assert!(text.contains("unknown field `cluster`"), "{text}");
    }

    #[test]
    fn the_template_stream_toml_is_valid() {
        let text =
            include_str!("../../templates/_common/Stream.toml.tmpl").replace("{{name}}", "wc");
        let file = TomlFile::new(Path::new("Stream.toml"), text);
        let parsed = StreamToml::parse(&file).unwrap();
        assert_eq!(parsed.profile["local"].master.as_deref(), Some("local[2]"));
    }
}
