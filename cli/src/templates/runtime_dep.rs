//! How a generated crate depends on `cargo-stream-runtime`.
//!
//! - **path** (the default when it works): `{ path = "<the runtime's sources>" }`, pointing at
//!   the runtime this `cargo-stream` was built with (recorded at build time; a binary installed
//!   with `cargo install --path cli` points into that checkout), or at `--runtime-path`, or at
//!   `CARGO_STREAM_RUNTIME_PATH`. Edits to the runtime are picked up at once, but the crate only
//!   builds on a machine that has that checkout.
//! - **vendor** (`--portable`, also the fallback when the recorded path is gone): a copy of the
//!   runtime's sources embedded in this binary, written to `vendor/cargo-stream-runtime/`, with
//!   `{ path = "vendor/cargo-stream-runtime" }`. The crate is self-contained: copy it anywhere.
//! - **registry** (`--runtime-registry`): `"<version>"` from crates.io, for when the runtime is
//!   published.
//!
//! In every mode the runtime's own dependencies (rayon, thiserror, ...) come from crates.io, or
//! from cargo's local cache with `--offline`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::error::with_help;

use super::{RUNTIME_FILES, RUNTIME_SOURCE_DIR, RUNTIME_VERSION};

/// Where the vendored copy goes inside the generated crate.
pub const VENDOR_DIR: &str = "vendor/cargo-stream-runtime";

/// The environment variable that points generated crates at another runtime checkout.
pub const RUNTIME_PATH_ENV: &str = "CARGO_STREAM_RUNTIME_PATH";

/// What the user asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RuntimeRequest {
    /// A path to the runtime if one is known, else the vendored copy.
    #[default]
    Auto,
    /// A path to this runtime checkout.
    Path(PathBuf),
    /// The vendored copy (`--portable`).
    Vendor,
    /// The crates.io release.
    Registry,
}

/// The dependency a generated crate gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuntimeDep {
    /// `{ path = ... }` to a runtime checkout.
    Path(PathBuf),
    /// A copy under [`VENDOR_DIR`].
    Vendored,
    /// A version from crates.io.
    Registry(String),
}

impl RuntimeDep {
    /// Decides the dependency for a request.
    pub fn resolve(request: &RuntimeRequest) -> anyhow::Result<RuntimeDep> {
        match request {
            RuntimeRequest::Path(path) => checked_path(path),
            RuntimeRequest::Vendor => {
                if RUNTIME_FILES.is_empty() {
                    return Err(with_help(
                        anyhow::anyhow!(
                            "this build of cargo-stream has no embedded copy of the runtime"
                        ),
                        "rebuild cargo-stream from a checkout that has `runtime/`, or use `--runtime-path`",
                    ));
                }
                Ok(RuntimeDep::Vendored)
            }
            RuntimeRequest::Registry => Ok(RuntimeDep::Registry(RUNTIME_VERSION.to_owned())),
            RuntimeRequest::Auto => {
                if let Some(path) = std::env::var_os(RUNTIME_PATH_ENV) {
                    return checked_path(Path::new(&path)).with_context(|| {
                        format!("`{RUNTIME_PATH_ENV}` does not point at a runtime")
                    });
                }
                if let Some(dir) = RUNTIME_SOURCE_DIR
                    && Path::new(dir).join("Cargo.toml").is_file()
                {
                    return Ok(RuntimeDep::Path(PathBuf::from(dir)));
                }
                if !RUNTIME_FILES.is_empty() {
                    return Ok(RuntimeDep::Vendored);
                }
                Ok(RuntimeDep::Registry(RUNTIME_VERSION.to_owned()))
            }
        }
    }

    /// The value after `cargo-stream-runtime = ` in the generated Cargo.toml, with the
    /// runtime's optional `features` the template needs (e.g. `sql`).
    pub fn toml_value(&self, features: &[String]) -> String {
        let features = if features.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = features
                .iter()
                .map(|f| toml::Value::String(f.clone()).to_string())
                .collect();
            format!(", features = [{}]", list.join(", "))
        };
        match self {
            RuntimeDep::Path(path) => {
                format!(
                    "{{ path = {}{features} }}",
                    toml::Value::String(path.display().to_string())
                )
            }
            RuntimeDep::Vendored => format!("{{ path = \"{VENDOR_DIR}\"{features} }}"),
            RuntimeDep::Registry(version) if features.is_empty() => format!("\"{version}\""),
            RuntimeDep::Registry(version) => format!("{{ version = \"{version}\"{features} }}"),
        }
    }

    /// One line for the user on what was chosen.
    pub fn describe(&self) -> String {
        match self {
            RuntimeDep::Path(path) => format!("the runtime at `{}`", path.display()),
            RuntimeDep::Vendored => {
                format!("a copy of the runtime {RUNTIME_VERSION} in `{VENDOR_DIR}`")
            }
            RuntimeDep::Registry(v) => format!("cargo-stream-runtime {v} from crates.io"),
        }
    }

    /// Writes the vendored copy under `project` (only for [`RuntimeDep::Vendored`]).
    pub fn write_vendored(&self, project: &Path) -> anyhow::Result<()> {
        if *self != RuntimeDep::Vendored {
            return Ok(());
        }
        let root = project.join(VENDOR_DIR);
        for (rel, bytes) in RUNTIME_FILES {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().expect("has a parent")).with_context(|| {
                format!("failed to create `{}`", path.parent().unwrap().display())
            })?;
            std::fs::write(&path, bytes)
                .with_context(|| format!("failed to write `{}`", path.display()))?;
        }
        Ok(())
    }
}

fn checked_path(path: &Path) -> anyhow::Result<RuntimeDep> {
    let abs =
        std::path::absolute(path).with_context(|| format!("bad path `{}`", path.display()))?;
    let manifest = abs.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        with_help(
            anyhow::Error::new(e).context(format!("failed to read `{}`", manifest.display())),
            "point `--runtime-path` at the `runtime/` folder of a cargo-stream checkout, or use `--portable`",
        )
    })?;
    if !text.contains("name = \"cargo-stream-runtime\"") {
        return Err(with_help(
            anyhow::anyhow!(
                "`{}` is not the manifest of `cargo-stream-runtime`",
                manifest.display()
            ),
            "point `--runtime-path` at the `runtime/` folder of a cargo-stream checkout",
        ));
    }
    Ok(RuntimeDep::Path(abs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_added() {
        let sql = ["sql".to_owned()];
        assert_eq!(
            RuntimeDep::Vendored.toml_value(&sql),
            r#"{ path = "vendor/cargo-stream-runtime", features = ["sql"] }"#
        );
        assert_eq!(
            RuntimeDep::Registry("0.1.0".into()).toml_value(&sql),
            r#"{ version = "0.1.0", features = ["sql"] }"#
        );
    }

    #[test]
    fn toml_values() {
        assert_eq!(
            RuntimeDep::Path("/a/b".into()).toml_value(&[]),
            r#"{ path = "/a/b" }"#
        );
        assert_eq!(
            RuntimeDep::Vendored.toml_value(&[]),
            r#"{ path = "vendor/cargo-stream-runtime" }"#
        );
        assert_eq!(
            RuntimeDep::Registry("0.1.0".into()).toml_value(&[]),
            r#""0.1.0""#
        );
    }
}
