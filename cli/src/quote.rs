//! POSIX shell quoting, the one rule for every value that reaches a shell: commands sent over
//! SSH ([`quote`]), the Slurm batch script and the submit scripts `package` fills
//! ([`single_quoted`]).

/// Quotes `s` for a POSIX shell: left as is when it is made only of characters no shell treats
/// specially, else wrapped in single quotes, each `'` written as `'\''`.
///
/// # Examples
///
/// ```
/// use cargo_stream::quote::quote;
/// assert_eq!(quote("run.sh"), "run.sh");
/// assert_eq!(quote("a b"), "'a b'");
/// assert_eq!(quote("it's"), r#"'it'\''s'"#);
/// assert_eq!(quote(""), "''");
/// ```
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./,:=@%+".contains(&b));
    // `=` first would read as an assignment in some positions; `~` is left out (tilde expansion).
    if plain && !s.starts_with('=') {
        return s.to_owned();
    }
    single_quoted(s)
}

/// `s` as one POSIX shell word, always in single quotes, each `'` written as `'\''`: how the
/// scripts are filled, so that every value reads the same whatever it holds.
///
/// # Examples
///
/// ```
/// use cargo_stream::quote::single_quoted;
/// assert_eq!(single_quoted("word-count"), "'word-count'");
/// assert_eq!(single_quoted("it's"), r"'it'\''s'");
/// assert_eq!(single_quoted(""), "''");
/// ```
pub fn single_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn special_characters_are_single_quoted() {
        for s in [
            "$HOME", "a;b", "`x`", "*", "~", "a\nb", "\"", "\\", "-n x", "é",
        ] {
            let q = quote(s);
            assert!(q.starts_with('\'') && q.ends_with('\''), "{s:?} -> {q}");
        }
    }

    #[test]
    fn quoted_values_round_trip_through_sh() {
        for s in [
            "plain",
            "two words",
            "it's",
            "$(id)",
            "a'b'c",
            "",
            "~/x",
            "tab\there",
            "=x",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(s)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), s);
        }
    }
}
