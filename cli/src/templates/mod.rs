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
//!   a `default` and a `description` for each value `--define key=value` may set, its `type`
//!   (`port`, `integer`, `seconds`, `host`, `path`, `text`) and `min`/`max`; and
//!   `[[constraints]]` between them (`multiple-of = ["window_seconds", "batch_seconds"]`),
//!   all checked by `new` before anything is written ([`vars`]);
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
pub mod vars;

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
    /// What its value is; checked by `new`.
    #[serde(default, rename = "type")]
    pub ty: vars::VarType,
    /// The smallest value of a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
    /// The largest value of a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
}

impl Var {
    /// Checks `value` for variable `key`; the value as rendered.
    pub fn check(&self, key: &str, value: &str) -> anyhow::Result<String> {
        vars::check(key, self.ty, self.min, self.max, value)
    }

    /// A short hint on the values it takes (`port, 1-65535`), if it is not plain text.
    pub fn hint(&self) -> Option<String> {
        vars::hint(self.ty, self.min, self.max)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateToml {
    description: String,
    #[serde(default, rename = "runtime-features")]
    runtime_features: Vec<String>,
    #[serde(default)]
    vars: BTreeMap<String, Var>,
    #[serde(default)]
    constraints: Vec<vars::Constraint>,
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
    /// Rules between its variables.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<vars::Constraint>,
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
            constraints: parsed.constraints,
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

/// Checks `--define` keys against the template's variables, each value against its type and
/// the template's constraints, and returns every variable's value as rendered.
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
        let Some(var) = template.vars.get(key) else {
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
        };
        values.insert(key.clone(), var.check(key, value)?);
    }
    // The defaults too: a template whose defaults fail its own checks is a bug, caught by the
    // tests that generate every template.
    for (key, var) in &template.vars {
        if !defines.iter().any(|(k, _)| k == key) {
            let checked = var.check(key, &values[key]).with_context(|| {
                format!(
                    "the default of `{key}` in template `{}` is invalid (a bug in this build of cargo-stream)",
                    template.name
                )
            })?;
            values.insert(key.clone(), checked);
        }
    }
    vars::check_constraints(&template.name, &template.constraints, &values)?;
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
    fn bad_defines_name_the_variable_and_the_fix() {
        let t = find(DEFAULT_TEMPLATE, Kind::Template).unwrap();
        for (key, value, expected) in [
            ("port", "abc", "invalid value `abc` for `port`"),
            ("port", "99999", "invalid value `99999` for `port`"),
            (
                "batch_seconds",
                "0",
                "invalid value `0` for `batch_seconds`",
            ),
            ("host", "a b", "invalid value `a b` for `host`"),
        ] {
            let err = resolve_vars(&t, &[(key.into(), value.into())]).unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
            assert!(crate::error::help_of(&err).is_some(), "{err}: no help");
        }
        let w = find("windowed-word-count", Kind::Template).unwrap();
        let err = resolve_vars(&w, &[("window_seconds".into(), "5".into())]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`window_seconds` (5) must be a multiple of `batch_seconds` (2)"
        );
    }

    #[test]
    fn every_variable_is_typed_where_its_value_is_code() {
        // A value rendered as a number or a host must be checked, or a bad one reaches rustc.
        for t in catalog().unwrap() {
            for (key, var) in &t.vars {
                let expected = if key == "port" {
                    Some(vars::VarType::Port)
                } else if key.ends_with("_seconds") {
                    Some(vars::VarType::Seconds)
                } else if key == "host" {
                    Some(vars::VarType::Host)
                } else {
                    None
                };
                if let Some(ty) = expected {
                    assert_eq!(var.ty, ty, "{}: `{key}`", t.name);
                }
            }
        }
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
