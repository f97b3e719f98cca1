//! The renderer: `{{key}}` is replaced by the value of `key`; anything else is copied as is.
//! An unknown key is an error, so a typo in a template cannot reach a generated crate.

use std::collections::BTreeMap;

use anyhow::bail;

/// The variables every template gets, besides its own: `name`, `crate_name`,
/// `runtime_dependency`, `runtime_version` and `cargo_stream_version`.
pub fn builtin_vars(name: &str, runtime_dependency: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("name".to_owned(), name.to_owned()),
        ("crate_name".to_owned(), name.replace('-', "_")),
        (
            "runtime_dependency".to_owned(),
            runtime_dependency.to_owned(),
        ),
        (
            "runtime_version".to_owned(),
            super::RUNTIME_VERSION.to_owned(),
        ),
        (
            "cargo_stream_version".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
    ])
}

/// Renders `text`, replacing each `{{key}}` (spaces inside the braces allowed).
///
/// # Examples
///
/// ```
/// use std::collections::BTreeMap;
/// let vars = BTreeMap::from([("port".to_owned(), "9999".to_owned())]);
/// let out = cargo_stream::templates::render::render("port = {{ port }}", &vars).unwrap();
/// assert_eq!(out, "port = 9999");
/// ```
pub fn render(text: &str, vars: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            bail!(
                "unclosed `{{{{` at byte {}",
                text.len() - rest.len() + start
            );
        };
        let key = after[..end].trim();
        match vars.get(key) {
            Some(value) => out.push_str(value),
            None => bail!("unknown template variable `{key}`"),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_rejects_unknown_keys() {
        let vars = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        assert_eq!(render("x{{a}}y{{ a }}", &vars).unwrap(), "x1y1");
        assert!(render("{{b}}", &vars).is_err());
        assert!(render("{{a", &vars).is_err());
        assert_eq!(render("no braces { }", &vars).unwrap(), "no braces { }");
    }
}
