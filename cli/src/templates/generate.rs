//! Writes a new crate from a template: render everything into a temporary folder beside the
//! destination, then move it into place in one rename, so that a failure leaves nothing behind
//! and an existing folder is never touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use super::runtime_dep::{RuntimeDep, RuntimeRequest};
use super::{Kind, Template, name, render};
use crate::error::with_help;

/// What `cargo stream new` was asked to do.
#[derive(Clone, Debug)]
pub struct NewOpts {
    /// Where the crate goes.
    pub path: PathBuf,
    /// The package name (default: the last component of `path`).
    pub name: Option<String>,
    /// The template or exercise name.
    pub template: String,
    /// Template or exercise.
    pub kind: Kind,
    /// `--define` values.
    pub defines: Vec<(String, String)>,
    /// How the crate depends on the runtime.
    pub runtime: RuntimeRequest,
}

/// What was written.
#[derive(Clone, Debug, Serialize)]
pub struct NewReport {
    /// The package name.
    pub name: String,
    /// Where the crate was written.
    pub path: PathBuf,
    /// The template or exercise.
    pub template: String,
    /// Template or exercise.
    pub kind: Kind,
    /// The `cargo-stream-runtime` dependency as written in Cargo.toml.
    pub runtime_dependency: String,
    /// Every variable's value.
    pub vars: BTreeMap<String, String>,
    /// The files written, relative to `path`.
    pub files: Vec<String>,
}

/// Creates the crate.
pub fn generate(opts: &NewOpts, template: &Template) -> anyhow::Result<NewReport> {
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => opts
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                with_help(
                    anyhow::anyhow!("cannot take a package name from `{}`", opts.path.display()),
                    "pass `--name`",
                )
            })?,
    };
    name::validate(&name)?;
    if opts.path.symlink_metadata().is_ok() {
        return Err(with_help(
            anyhow::anyhow!("destination `{}` already exists", opts.path.display()),
            "choose another name or remove it first: `cargo stream new` never overwrites",
        ));
    }
    // Everything that can fail on bad input is checked before anything is written.
    let runtime = RuntimeDep::resolve(&opts.runtime)?;
    let mut vars = super::resolve_vars(template, &opts.defines)?;
    vars.extend(render::builtin_vars(
        &name,
        &runtime.toml_value(&template.runtime_features),
    ));

    let dest = std::path::absolute(&opts.path)
        .with_context(|| format!("bad path `{}`", opts.path.display()))?;
    let parent = dest
        .parent()
        .context("the destination has no parent folder")?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("failed to create `{}`", parent.display()))?;

    tracing::debug!(template = %template.name, ?runtime, ?vars, "rendering");
    let staging = tempfile::Builder::new()
        .prefix(".cargo-stream-new-")
        .tempdir_in(parent)
        .with_context(|| {
            format!(
                "failed to create a temporary folder in `{}`",
                parent.display()
            )
        })?;
    let root = staging.path().join("crate");
    let mut files = Vec::new();
    for (rel, bytes) in template.files() {
        let (out_rel, contents) = match rel.strip_suffix(".tmpl") {
            Some(stripped) => {
                let text =
                    std::str::from_utf8(bytes).with_context(|| format!("`{rel}` is not UTF-8"))?;
                let rendered = render::render(text, &vars).with_context(|| {
                    format!("failed to render `{rel}` of template `{}`", template.name)
                })?;
                (stripped.to_owned(), rendered.into_bytes())
            }
            None => (rel.to_owned(), bytes.to_vec()),
        };
        let out_rel = out_rel
            .split('/')
            .map(|part| {
                if part == "_gitignore" {
                    ".gitignore"
                } else {
                    part
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        tracing::trace!(from = rel, to = %out_rel, bytes = contents.len(), "writing");
        write_file(&root.join(&out_rel), &contents)?;
        files.push(out_rel);
    }
    runtime.write_vendored(&root)?;
    if runtime == RuntimeDep::Vendored {
        files.push(format!("{}/", super::runtime_dep::VENDOR_DIR));
    }
    files.sort();

    // The last check and the move: `rename` onto an existing empty folder would succeed, so
    // look again right before it.
    if dest.symlink_metadata().is_ok() {
        return Err(with_help(
            anyhow::anyhow!("destination `{}` already exists", opts.path.display()),
            "choose another name",
        ));
    }
    std::fs::rename(&root, &dest)
        .with_context(|| format!("failed to move the new crate to `{}`", dest.display()))?;
    Ok(NewReport {
        name,
        path: dest,
        template: template.name.clone(),
        kind: template.kind,
        runtime_dependency: runtime.toml_value(&template.runtime_features),
        vars,
        files,
    })
}

fn write_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create `{}`", dir.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("failed to write `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(path: PathBuf) -> NewOpts {
        NewOpts {
            path,
            name: None,
            template: super::super::DEFAULT_TEMPLATE.into(),
            kind: Kind::Template,
            defines: vec![],
            runtime: RuntimeRequest::Registry,
        }
    }

    #[test]
    fn never_overwrites() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("job");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("keep"), "x").unwrap();
        let t = super::super::find(super::super::DEFAULT_TEMPLATE, Kind::Template).unwrap();
        let err = generate(&opts(dest.clone()), &t).unwrap_err();
        assert!(err.to_string().contains("already exists"));
        assert_eq!(std::fs::read_to_string(dest.join("keep")).unwrap(), "x");
    }

    #[test]
    fn writes_a_crate_and_no_leftovers() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("my-job");
        let t = super::super::find(super::super::DEFAULT_TEMPLATE, Kind::Template).unwrap();
        let report = generate(&opts(dest.clone()), &t).unwrap();
        assert_eq!(report.name, "my-job");
        let manifest = std::fs::read_to_string(dest.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"my-job\""), "{manifest}");
        assert!(dest.join(".gitignore").is_file());
        assert!(dest.join("Stream.toml").is_file());
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }
}
