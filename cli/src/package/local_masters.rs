//! Finds the local masters set in a job's sources (`.master("local[2]")`,
//! `set_master("local[*]")`, `setMaster(...)`), for the report of what the cluster build
//! ignores: built with `--cfg cargo_stream_cluster`, the runtime makes them no-ops, so nothing
//! is edited.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// One local master set in code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LocalMaster {
    /// The file, relative to the package root, with `/`.
    pub file: String,
    /// The line, from 1.
    pub line: usize,
    /// The call as written, e.g. `.master("local[2]")`.
    pub code: String,
}

impl std::fmt::Display for LocalMaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} {}", self.file, self.line, self.code)
    }
}

const CALLS: &[&str] = &[".master(", "set_master(", "setMaster("];

/// Scans one file's text.
pub fn scan_text(file: &str, text: &str) -> Vec<LocalMaster> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code_part = line.split("//").next().unwrap_or("");
        for call in CALLS {
            let mut from = 0;
            while let Some(pos) = code_part[from..].find(call) {
                let start = from + pos;
                let args = code_part[start + call.len()..].trim_start();
                if let Some(literal) = args.strip_prefix('"')
                    && literal.starts_with("local")
                {
                    let end = literal.find('"').map(|q| q + 1).unwrap_or(literal.len());
                    let mut code = format!("{}\"{}", call, &literal[..end]);
                    if literal[end..].trim_start().starts_with(')') {
                        code.push(')');
                    }
                    found.push(LocalMaster {
                        file: file.to_owned(),
                        line: n + 1,
                        code,
                    });
                }
                from = start + call.len();
            }
        }
    }
    found.sort_by_key(|m| m.line);
    found
}

/// Scans every `.rs` file under the given roots (skipping `target/` and `vendor/`), reporting
/// paths relative to `package_root`.
pub fn scan(package_root: &Path, roots: &[PathBuf]) -> std::io::Result<Vec<LocalMaster>> {
    let mut files = Vec::new();
    for root in roots {
        collect(root, &mut files)?;
    }
    files.sort();
    files.dedup();
    let mut found = Vec::new();
    tracing::debug!(files = files.len(), "scanning for local masters");
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let rel = path.strip_prefix(package_root).unwrap_or(&path);
        let rel = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        found.extend(scan_text(&rel, &text));
    }
    Ok(found)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if dir.is_file() {
        out.push(dir.to_owned());
        return Ok(());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name == "vendor" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_form_and_skips_comments() {
        let text = r#"
let conf = StreamingConf::new("x").master("local[2]");
let conf = conf.set_master( "local[*]" );
// let conf = conf.master("local[4]");
let conf = conf.master("spark://h:7077");
sc.setMaster("local")
"#;
        let found = scan_text("src/main.rs", text);
        let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                r#"src/main.rs:2 .master("local[2]")"#,
                r#"src/main.rs:3 set_master("local[*]")"#,
                r#"src/main.rs:6 setMaster("local")"#,
            ]
        );
    }
}
