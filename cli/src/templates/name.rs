//! Cargo's rules for package names, as `cargo new` applies them.

use crate::error::with_help;

const KEYWORDS: &[&str] = &[
    "Self", "abstract", "as", "async", "await", "become", "box", "break", "const", "continue",
    "crate", "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if",
    "impl", "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];
/// Names that collide with the standard library or with cargo's build directories.
const RESERVED: &[&str] = &[
    "alloc",
    "core",
    "proc_macro",
    "proc-macro",
    "std",
    "test",
    "build",
    "deps",
    "examples",
    "incremental",
];
/// Names Windows cannot create as files.
const WINDOWS: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// Checks `name` against cargo's rules for a package name.
///
/// # Examples
///
/// ```
/// use cargo_stream::templates::name::validate;
/// assert!(validate("word-count").is_ok());
/// assert!(validate("1st").is_err());
/// assert!(validate("match").is_err());
/// ```
pub fn validate(name: &str) -> anyhow::Result<()> {
    let suggestion = suggest(name);
    let help = |what: &str| match &suggestion {
        Some(s) if s != name => {
            format!("{what}; for example `{s}`, or pass `--name` with a valid name")
        }
        _ => format!("{what}, or pass `--name` with a valid name"),
    };
    if name.is_empty() {
        return Err(with_help(
            anyhow::anyhow!("the package name cannot be empty"),
            help("choose a name"),
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(with_help(
            anyhow::anyhow!("invalid character `{bad}` in package name `{name}`"),
            help("use ASCII letters, digits, `-` and `_`"),
        ));
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(with_help(
            anyhow::anyhow!("the package name `{name}` cannot start with a digit"),
            help("start it with a letter"),
        ));
    }
    if KEYWORDS.contains(&name) {
        return Err(with_help(
            anyhow::anyhow!(
                "the name `{name}` cannot be used as a package name: it is a Rust keyword"
            ),
            help("choose another name"),
        ));
    }
    if RESERVED.contains(&name) || WINDOWS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(with_help(
            anyhow::anyhow!("the name `{name}` is reserved and cannot be used as a package name"),
            help("choose another name"),
        ));
    }
    if name.len() > 64 {
        return Err(with_help(
            anyhow::anyhow!("the package name `{name}` is longer than 64 characters"),
            help("choose a shorter name"),
        ));
    }
    Ok(())
}

fn suggest(name: &str) -> Option<String> {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s = s.trim_matches('-').to_owned();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s = format!("job-{s}");
    }
    if s.is_empty() || KEYWORDS.contains(&s.as_str()) || RESERVED.contains(&s.as_str()) {
        s = format!("{}-job", if s.is_empty() { "stream" } else { &s });
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::help_of;

    #[test]
    fn cargo_rules() {
        for ok in ["a", "word-count", "word_count", "job2", "A_b"] {
            validate(ok).unwrap();
        }
        for bad in ["", "2x", "fn", "test", "std", "con", "a b", "a.b", "é"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        let err = validate("My Job").unwrap_err();
        assert!(help_of(&err).unwrap().contains("`my-job`"));
    }
}
