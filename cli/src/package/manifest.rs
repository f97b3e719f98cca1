//! `stream-manifest.json`: what the bundle is and what is in it, for the launcher, for
//! `cargo stream submit`, and for people auditing a deployment.

use std::collections::BTreeMap;

use serde::Serialize;

use super::git::GitInfo;
use super::local_masters::LocalMaster;

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
    /// Whether the job was built with `--cfg cargo_stream_cluster` (local masters set in code
    /// ignored).
    pub cluster_build: bool,
    /// The local masters the cluster build ignores (found and reported; the sources are not
    /// edited: the name is the manifest format's).
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

/// The JSON Schema of `stream-manifest.json` (`cli/schema/stream-manifest.schema.json`).
pub const SCHEMA: &str = include_str!("../../schema/stream-manifest.schema.json");

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn sample() -> StreamManifest {
        StreamManifest {
            format_version: FORMAT_VERSION,
            name: "job".into(),
            version: "0.1.0".into(),
            bin: "job".into(),
            target: "x86_64-unknown-linux-gnu".into(),
            glibc: Some("2.34".into()),
            runtime_version: Some("0.1.0".into()),
            cluster_build: true,
            stripped_local_masters: vec![LocalMaster {
                file: "src/main.rs".into(),
                line: 3,
                code: ".master(\"local[2]\")".into(),
            }],
            git: Some(GitInfo {
                revision: "abc".into(),
                dirty: false,
            }),
            main_class: "cargostream.Launcher".into(),
            binary: "bin/job".into(),
            cargo_stream_version: "0.1.0".into(),
            third_party: vec![Dependency {
                name: "rayon".into(),
                version: "1.12.0".into(),
                license: None,
            }],
            entries: BTreeMap::from([(
                "bin/job".to_owned(),
                EntryInfo {
                    sha256: "0".repeat(64),
                    size: 1,
                    mode: 0o755,
                },
            )]),
        }
    }

    /// Every object of `value` has exactly the properties its schema lists, all required.
    fn check(value: &Value, schema: &Value, at: &str) {
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            let object = value
                .as_object()
                .unwrap_or_else(|| panic!("{at} is not an object"));
            let mut have: Vec<&String> = object.keys().collect();
            let mut want: Vec<&String> = props.keys().collect();
            have.sort();
            want.sort();
            assert_eq!(have, want, "properties of {at}");
            let required: Vec<&str> = schema["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            assert_eq!(
                required.len(),
                want.len(),
                "every property of {at} is required"
            );
            for (key, sub) in props {
                if !object[key].is_null() {
                    check(&object[key], sub, &format!("{at}.{key}"));
                }
            }
        } else if let Some(items) = schema.get("items") {
            for (i, item) in value.as_array().unwrap().iter().enumerate() {
                check(item, items, &format!("{at}[{i}]"));
            }
        } else if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object()) {
            for (key, item) in value.as_object().unwrap() {
                check(item, extra, &format!("{at}.{key}"));
            }
        }
    }

    #[test]
    fn schema_matches_the_structs() {
        let schema: Value = serde_json::from_str(SCHEMA).unwrap();
        let value = serde_json::to_value(sample()).unwrap();
        check(&value, &schema, "manifest");
    }
}
