//! Embeds `templates/` and the runtime's sources into the binary, so that `cargo stream new`
//! works offline and `--portable` can write a self-contained copy of the runtime.
//!
//! The generated table lives in `$OUT_DIR/embedded.rs` and is included by `src/templates/embedded.rs`.

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets it"));
    let templates = manifest_dir.join("../templates");
    let runtime = manifest_dir.join("../runtime");
    let workspace_manifest = manifest_dir.join("../Cargo.toml");
    println!("cargo:rerun-if-changed={}", templates.display());
    println!("cargo:rerun-if-changed={}", runtime.join("src").display());
    println!(
        "cargo:rerun-if-changed={}",
        runtime.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        runtime.join("build.rs").display()
    );
    println!("cargo:rerun-if-changed={}", workspace_manifest.display());

    let mut code = String::new();
    code.push_str("/// Every file under `templates/` (reference solutions excluded), by `/`-separated path.\n");
    code.push_str("pub(crate) static TEMPLATE_FILES: &[(&str, &[u8])] = &[\n");
    if templates.is_dir() {
        let mut files = Vec::new();
        walk(&templates, &templates, &mut files);
        for (rel, abs) in files {
            // Reference solutions stay in the repository: they are for the repo's own tests.
            if rel.split('/').any(|part| part == "solution") {
                continue;
            }
            writeln!(
                code,
                "    ({rel:?}, include_bytes!({:?})),",
                abs.display().to_string()
            )
            .unwrap();
        }
    }
    code.push_str("];\n\n");

    // The runtime: its sources, and a manifest with the workspace inheritance resolved so that
    // the copy builds outside this workspace.
    let runtime_manifest = runtime.join("Cargo.toml");
    let normalized = fs::read_to_string(&runtime_manifest)
        .ok()
        .and_then(|text| normalize_runtime_manifest(&text, &workspace_manifest));
    code.push_str(
        "/// The runtime's sources (`src/**` and a standalone `Cargo.toml`), for `--portable`.\n",
    );
    code.push_str("pub static RUNTIME_FILES: &[(&str, &[u8])] = &[\n");
    let mut runtime_version = String::from("0.1.0");
    let mut runtime_dir = None;
    if let Some((manifest, version)) = &normalized {
        runtime_version = version.clone();
        let path = out_dir.join("runtime-Cargo.toml");
        fs::write(&path, manifest).expect("write normalized runtime manifest");
        writeln!(
            code,
            "    (\"Cargo.toml\", include_bytes!({:?})),",
            path.display().to_string()
        )
        .unwrap();
        let mut files = Vec::new();
        walk(&runtime.join("src"), &runtime, &mut files);
        // `build.rs` turns `cargo stream package`'s CARGO_STREAM_CLUSTER_BUILD into the cfg.
        for name in ["build.rs", "README.md", "LICENSE-MIT", "LICENSE-APACHE"] {
            if runtime.join(name).is_file() {
                files.push((name.to_owned(), runtime.join(name)));
            }
        }
        files.sort();
        for (rel, abs) in files {
            writeln!(
                code,
                "    ({rel:?}, include_bytes!({:?})),",
                abs.display().to_string()
            )
            .unwrap();
        }
        runtime_dir = Some(runtime.canonicalize().unwrap_or(runtime.clone()));
    }
    code.push_str("];\n\n");
    writeln!(
        code,
        "/// The version of the runtime embedded in this build."
    )
    .unwrap();
    writeln!(
        code,
        "pub const RUNTIME_VERSION: &str = {runtime_version:?};"
    )
    .unwrap();
    writeln!(
        code,
        "/// Where the runtime's sources were when this binary was built, if they were."
    )
    .unwrap();
    match runtime_dir {
        Some(dir) => writeln!(
            code,
            "pub const RUNTIME_SOURCE_DIR: Option<&str> = Some({:?});",
            dir.display().to_string()
        ),
        None => writeln!(code, "pub const RUNTIME_SOURCE_DIR: Option<&str> = None;"),
    }
    .unwrap();
    fs::write(out_dir.join("embedded.rs"), code).expect("write embedded.rs");
}

/// Files under `dir`, sorted, as (path relative to `base` with `/`, absolute path).
fn walk(dir: &Path, base: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "target" || name.ends_with('~') || name == ".DS_Store" {
            continue;
        }
        if path.is_dir() {
            walk(&path, base, out);
        } else if path.is_file() {
            let rel = path.strip_prefix(base).unwrap();
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, path.canonicalize().unwrap_or(path)));
        }
    }
}

/// Resolves `x.workspace = true` in the runtime's manifest against the workspace root, and drops
/// what only makes sense inside this repository (dev-dependencies, lints, tests, benches).
/// Returns the manifest and the runtime's version.
fn normalize_runtime_manifest(text: &str, workspace_manifest: &Path) -> Option<(String, String)> {
    let mut manifest: toml::Table = text.parse().ok()?;
    let workspace: toml::Table = fs::read_to_string(workspace_manifest).ok()?.parse().ok()?;
    let ws = workspace.get("workspace")?.as_table()?;
    let ws_package = ws
        .get("package")
        .and_then(|p| p.as_table())
        .cloned()
        .unwrap_or_default();
    let ws_deps = ws
        .get("dependencies")
        .and_then(|d| d.as_table())
        .cloned()
        .unwrap_or_default();

    if let Some(package) = manifest.get_mut("package").and_then(|p| p.as_table_mut()) {
        for (key, value) in package.iter_mut() {
            if is_inherited(value)
                && let Some(v) = ws_package.get(key)
            {
                *value = v.clone();
            }
        }
        package.remove("build");
        package.insert("publish".into(), toml::Value::Boolean(false));
    }
    for section in [
        "dev-dependencies",
        "lints",
        "bench",
        "test",
        "example",
        "workspace",
    ] {
        manifest.remove(section);
    }
    // The workspace's lints stay behind, but the cluster build's cfg must stay known, or every
    // portable project would warn about it.
    if let Some(cfgs) = ws
        .get("lints")
        .and_then(|l| l.get("rust"))
        .and_then(|r| r.get("unexpected_cfgs"))
    {
        let mut rust = toml::Table::new();
        rust.insert("unexpected_cfgs".into(), cfgs.clone());
        let mut lints = toml::Table::new();
        lints.insert("rust".into(), toml::Value::Table(rust));
        manifest.insert("lints".into(), toml::Value::Table(lints));
    }
    for section in ["dependencies", "build-dependencies"] {
        if let Some(deps) = manifest.get_mut(section).and_then(|d| d.as_table_mut()) {
            resolve_dependencies(deps, &ws_deps)?;
        }
    }
    // `[target.'cfg(..)'.dependencies]` inherit from the workspace too.
    if let Some(targets) = manifest.get_mut("target").and_then(|t| t.as_table_mut()) {
        for (_, target) in targets.iter_mut() {
            let Some(target) = target.as_table_mut() else {
                continue;
            };
            target.remove("dev-dependencies");
            for section in ["dependencies", "build-dependencies"] {
                if let Some(deps) = target.get_mut(section).and_then(|d| d.as_table_mut()) {
                    resolve_dependencies(deps, &ws_deps)?;
                }
            }
        }
    }
    let version = manifest
        .get("package")?
        .get("version")?
        .as_str()?
        .to_owned();
    // `[package]` first, as people write manifests; the rest in key order.
    let mut head = toml::Table::new();
    head.insert("package".into(), manifest.remove("package")?);
    let body = format!(
        "{}\n{}",
        toml::to_string(&head).ok()?,
        toml::to_string(&manifest).ok()?
    );
    Some((
        format!(
            "# A copy of cargo-stream-runtime {version}, written by `cargo stream new --portable`.\n\n{body}"
        ),
        version,
    ))
}

/// Resolves the `x.workspace = true` entries of one dependency table against the workspace's
/// `[workspace.dependencies]`; `None` when one cannot leave this repository (a path).
fn resolve_dependencies(deps: &mut toml::Table, ws_deps: &toml::Table) -> Option<()> {
    let mut resolved = BTreeMap::new();
    for (name, value) in deps.iter() {
        if !is_inherited(value) {
            resolved.insert(name.clone(), value.clone());
            continue;
        }
        let mut base = match ws_deps.get(name)? {
            toml::Value::String(version) => {
                let mut t = toml::Table::new();
                t.insert("version".into(), toml::Value::String(version.clone()));
                t
            }
            toml::Value::Table(t) => t.clone(),
            _ => return None,
        };
        // A copy of the runtime cannot follow paths into this repository.
        if base.contains_key("path") {
            return None;
        }
        let local = value.as_table().cloned().unwrap_or_default();
        for (k, v) in local {
            match k.as_str() {
                "workspace" => {}
                "features" => {
                    let mut features = base
                        .get("features")
                        .and_then(|f| f.as_array())
                        .cloned()
                        .unwrap_or_default();
                    features.extend(v.as_array().cloned().unwrap_or_default());
                    base.insert("features".into(), toml::Value::Array(features));
                }
                _ => {
                    base.insert(k, v);
                }
            }
        }
        resolved.insert(name.clone(), toml::Value::Table(base));
    }
    *deps = resolved.into_iter().collect();
    Some(())
}

fn is_inherited(value: &toml::Value) -> bool {
    value.get("workspace").and_then(|w| w.as_bool()) == Some(true)
}
