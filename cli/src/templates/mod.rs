//! Templates and exercises for `cargo stream new`: the catalog embedded in the binary, the
//! variables each one takes, and the renderer.
//!
//! # Layout of `templates/`
//!
//! Each template is one directory, `templates/<name>/`, and each exercise one directory,
//! `templates/exercises/<name>/`. Adding one is adding a directory:
//!
//! - `template.toml`: `description`; `runtime-features`, the optional features of the runtime
//!   it needs (e.g. `["sql"]`), added to the generated dependency; and `[vars.<key>]` tables with
//!   a `default` and a `description` for each value `--define key=value` may set;
//! - the files of the generated crate. Files whose names end in `.tmpl` are rendered (the
//!   suffix is dropped): `{{key}}` is replaced by the variable's value, and an unknown key is an
//!   error. All other files are copied as they are. `_gitignore` becomes `.gitignore`.
//! - `solution/` (exercises only): the reference solution, kept in the repository for its tests
//!   and never embedded.
//!
//! `templates/_common/` holds the files every template gets (`Cargo.toml`, `Stream.toml`,
//! `.gitignore`); a template overrides one by shipping a file of the same name.

mod embedded;
pub mod generate;
pub mod name;
pub mod render;
pub mod runtime_dep;

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::error::with_help;

pub use embedded::{RUNTIME_FILES, RUNTIME_SOURCE_DIR, RUNTIME_VERSION};

/// The template used when `--template` is not given.
pub const DEFAULT_TEMPLATE: &str = "socket-word-count";

/// What a catalog entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A working job to start from (`--template`).
    Template,
    /// A task with a part left open and tests that fail until it is done (`--exercise`).
    Exercise,
}

/// A variable a template takes, set with `--define key=value`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Var {
    /// The value when `--define` does not set it.
    pub default: String,
    /// What it is for.
    pub description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateToml {
    description: String,
    #[serde(default, rename = "runtime-features")]
    runtime_features: Vec<String>,
    #[serde(default)]
    vars: BTreeMap<String, Var>,
}

/// One template or exercise of the catalog.
#[derive(Clone, Debug, Serialize)]
pub struct Template {
    /// Its name, as given to `--template` or `--exercise`.
    pub name: String,
    /// Template or exercise.
    pub kind: Kind,
    /// One line on what it is.
    pub description: String,
    /// The variables it takes.
    pub vars: BTreeMap<String, Var>,
    /// The optional features of the runtime it needs (`runtime-features` in template.toml).
    pub runtime_features: Vec<String>,
    #[serde(skip)]
    dir: String,
}

impl Template {
    /// The files of the generated crate, as (path in the template, contents): the template's
    /// own files over the common ones.
    pub fn files(&self) -> Vec<(&'static str, &'static [u8])> {
        let mut files: BTreeMap<&'static str, (&'static str, &'static [u8])> = BTreeMap::new();
        for prefix in ["_common/", self.dir.as_str()] {
            for (path, bytes) in embedded::TEMPLATE_FILES {
                if let Some(rel) = path.strip_prefix(prefix)
                    && (prefix == "_common/" || rel != "template.toml")
                {
                    files.insert(rel, (rel, bytes));
                }
            }
        }
        files.into_values().collect()
    }
}

/// Every template and exercise embedded in this binary, templates first, each group by name.
pub fn catalog() -> anyhow::Result<Vec<Template>> {
    let mut out = Vec::new();
    for (path, bytes) in embedded::TEMPLATE_FILES {
        let Some(dir) = path.strip_suffix("template.toml") else {
            continue;
        };
        let (kind, name) = match dir.strip_prefix("exercises/") {
            Some(rest) => (Kind::Exercise, rest.trim_end_matches('/')),
            None => (Kind::Template, dir.trim_end_matches('/')),
        };
        if name.is_empty() || name.contains('/') {
            continue;
        }
        let text = std::str::from_utf8(bytes).context("template.toml is not UTF-8")?;
        let parsed: TemplateToml = toml::from_str(text).with_context(|| {
            format!("failed to parse `templates/{path}` (a bug in this build of cargo-stream)")
        })?;
        out.push(Template {
            name: name.to_owned(),
            kind,
            description: parsed.description,
            vars: parsed.vars,
            runtime_features: parsed.runtime_features,
            dir: dir.to_owned(),
        });
    }
    out.sort_by(|a, b| {
        (a.kind == Kind::Exercise, &a.name).cmp(&(b.kind == Kind::Exercise, &b.name))
    });
    Ok(out)
}

/// The template or exercise named `name`; an unknown name is an error listing the known ones.
pub fn find(name: &str, kind: Kind) -> anyhow::Result<Template> {
    let catalog = catalog()?;
    if let Some(t) = catalog.iter().find(|t| t.name == name && t.kind == kind) {
        return Ok(t.clone());
    }
    let (what, flag) = match kind {
        Kind::Template => ("template", "--template"),
        Kind::Exercise => ("exercise", "--exercise"),
    };
    let known: Vec<_> = catalog
        .iter()
        .filter(|t| t.kind == kind)
        .map(|t| format!("`{}`", t.name))
        .collect();
    let other = catalog.iter().find(|t| t.name == name);
    let help = match other {
        Some(t) if t.kind == Kind::Exercise => {
            format!("`{name}` is an exercise: use `--exercise {name}`")
        }
        Some(_) => format!("`{name}` is a template: use `--template {name}`"),
        None => format!(
            "use `{flag}` with one of {}; `cargo stream new --list` describes them",
            known.join(", ")
        ),
    };
    Err(with_help(anyhow::anyhow!("no {what} named `{name}`"), help))
}

/// Checks `--define` keys against the template's variables and returns every variable's value.
pub fn resolve_vars(
    template: &Template,
    defines: &[(String, String)],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut values: BTreeMap<String, String> = template
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), v.default.clone()))
        .collect();
    for (key, value) in defines {
        if !template.vars.contains_key(key) {
            let known: Vec<_> = template.vars.keys().map(|k| format!("`{k}`")).collect();
            let help = if known.is_empty() {
                format!("`{}` takes no variables", template.name)
            } else {
                format!("`{}` takes {}", template.name, known.join(", "))
            };
            return Err(with_help(
                anyhow::anyhow!("unknown variable `{key}` in `--define {key}={value}`"),
                help,
            ));
        }
        values.insert(key.clone(), value.clone());
    }
    Ok(values)
}

/// Parses `KEY=VALUE` (for `--define`).
pub fn parse_define(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_the_default_template() {
        let catalog = catalog().unwrap();
        assert!(
            catalog
                .iter()
                .any(|t| t.name == DEFAULT_TEMPLATE && t.kind == Kind::Template)
        );
        assert!(
            catalog
                .iter()
                .any(|t| t.name == "tcp-agent-receiver" && t.kind == Kind::Exercise)
        );
    }

    #[test]
    fn every_template_renders_with_defaults() {
        for t in catalog().unwrap() {
            let mut vars = resolve_vars(&t, &[]).unwrap();
            vars.extend(render::builtin_vars("demo-job", "{ path = \"x\" }"));
            for (path, bytes) in t.files() {
                if path.ends_with(".tmpl") {
                    let text = std::str::from_utf8(bytes).unwrap();
                    render::render(text, &vars)
                        .unwrap_or_else(|e| panic!("{}/{path}: {e:#}", t.name));
                }
            }
        }
    }

    #[test]
    fn solutions_are_not_embedded() {
        assert!(
            embedded::TEMPLATE_FILES
                .iter()
                .all(|(p, _)| !p.contains("solution/"))
        );
    }

    #[test]
    fn kafka_template_and_exercise_take_the_kafka_feature() {
        for (name, kind) in [
            ("kafka-word-count", Kind::Template),
            ("kafka-user-totals", Kind::Exercise),
        ] {
            let t = find(name, kind).unwrap();
            assert_eq!(t.runtime_features, ["kafka"], "{name}");
            let dep = runtime_dep::RuntimeDep::Vendored.toml_value(&t.runtime_features);
            assert!(dep.ends_with(", features = [\"kafka\"] }"), "{name}: {dep}");
        }
    }

    #[test]
    fn unknown_define_is_an_error() {
        let t = find(DEFAULT_TEMPLATE, Kind::Template).unwrap();
        let err = resolve_vars(&t, &[("nope".into(), "1".into())]).unwrap_err();
        assert!(err.to_string().contains("unknown variable `nope`"));
    }
}
