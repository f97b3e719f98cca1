//! The third-party licenses of everything linked into the job, from `cargo metadata`: each
//! package's `license` field, and its license files where the package has them.

use std::collections::{BTreeMap, BTreeSet};

use cargo_metadata::{DependencyKind, Metadata, PackageId, TargetKind};
use serde::Serialize;

/// One third-party package linked into the job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ThirdParty {
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// The SPDX expression of its `license` field, if any.
    pub license: Option<String>,
    /// Its license files, as (bundle path, contents).
    #[serde(skip)]
    pub files: Vec<(String, Vec<u8>)>,
}

/// Every package linked into the job: reached through normal (not dev, not build) dependencies,
/// proc macros and what only they use left out, the job itself excluded; sorted by name and
/// version.
pub fn third_party(metadata: &Metadata, root: &PackageId) -> Vec<ThirdParty> {
    let Some(resolve) = &metadata.resolve else {
        return Vec::new();
    };
    let nodes: BTreeMap<&PackageId, _> = resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let kinds: BTreeMap<&PackageId, bool> = metadata
        .packages
        .iter()
        .map(|p| {
            (
                &p.id,
                p.targets.iter().any(|t| t.is_kind(TargetKind::ProcMacro)),
            )
        })
        .collect();
    let mut seen: BTreeSet<&PackageId> = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        let Some(node) = nodes.get(id) else { continue };
        // A proc macro runs in the compiler: neither it nor its dependencies are linked in.
        if id != root && kinds.get(id).is_some_and(|proc_macro| *proc_macro) {
            continue;
        }
        for dep in &node.deps {
            let linked = dep
                .dep_kinds
                .iter()
                .any(|k| k.kind == DependencyKind::Normal);
            if linked && seen.insert(&dep.pkg) {
                stack.push(&dep.pkg);
            }
        }
    }
    let mut out: Vec<ThirdParty> = metadata
        .packages
        .iter()
        .filter(|p| seen.contains(&p.id) && p.id != *root && !kinds.get(&p.id).is_some_and(|m| *m))
        .map(|p| {
            let dir = p.manifest_path.parent().expect("a manifest has a folder");
            let mut names: BTreeSet<String> = BTreeSet::new();
            if let Some(file) = &p.license_file {
                names.insert(file.as_str().to_owned());
            }
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let upper = name.to_ascii_uppercase();
                    let is_license = [
                        "LICENSE",
                        "LICENCE",
                        "COPYING",
                        "NOTICE",
                        "UNLICENSE",
                        "COPYRIGHT",
                    ]
                    .iter()
                    .any(|prefix| upper.starts_with(prefix));
                    if is_license && entry.path().is_file() {
                        names.insert(name);
                    }
                }
            }
            let files = names
                .into_iter()
                .filter_map(|name| {
                    let contents = std::fs::read(dir.join(&name)).ok()?;
                    let base = name.rsplit('/').next().unwrap_or(&name).to_owned();
                    Some((
                        format!("licenses/{}-{}/{base}", p.name.as_str(), p.version),
                        contents,
                    ))
                })
                .collect();
            ThirdParty {
                name: p.name.to_string(),
                version: p.version.to_string(),
                license: p.license.clone(),
                files,
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    out
}

/// `licenses/THIRD-PARTY.txt`: one line per package, `name version: license`.
pub fn summary(packages: &[ThirdParty]) -> String {
    let mut text = String::from(
        "Third-party packages linked into this job, with the license each declares.\n\
         Their license files, where they ship them, are in the folders beside this file.\n\n",
    );
    for p in packages {
        let license = p
            .license
            .as_deref()
            .unwrap_or("(no license field: see its files)");
        text.push_str(&format!("{} {}: {license}\n", p.name, p.version));
    }
    text
}
