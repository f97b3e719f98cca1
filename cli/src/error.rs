//! Errors as the user sees them: a message, the chain of causes, and a `help:` line naming the
//! fix. Commands use `anyhow`; [`HelpExt::help`] attaches the fix to any error.

use std::fmt;

/// An error that carries a `help:` line. It displays as the error it wraps and keeps that
/// error's causes, so `context` added later still reads naturally.
#[derive(Debug)]
pub struct WithHelp {
    inner: anyhow::Error,
    help: String,
}

impl WithHelp {
    /// The suggested fix.
    pub fn help(&self) -> &str {
        &self.help
    }

    /// The error it wraps (its typed head, which [`std::error::Error::source`] skips).
    pub fn inner(&self) -> &anyhow::Error {
        &self.inner
    }
}

impl fmt::Display for WithHelp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for WithHelp {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

/// Attaches a `help:` line to an error.
///
/// # Examples
///
/// ```
/// use cargo_stream::HelpExt;
/// let r: anyhow::Result<()> = Err(anyhow::anyhow!("no binary")).help("pass `--bin`");
/// let err = r.unwrap_err();
/// assert_eq!(cargo_stream::error::help_of(&err), Some("pass `--bin`"));
/// ```
pub trait HelpExt<T> {
    /// Wraps the error so that it prints `help: <help>` after its causes.
    fn help(self, help: impl Into<String>) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> HelpExt<T> for Result<T, E> {
    fn help(self, help: impl Into<String>) -> anyhow::Result<T> {
        self.map_err(|e| with_help(e.into(), help))
    }
}

/// Wraps `err` so that it prints `help: <help>`.
pub fn with_help(err: anyhow::Error, help: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(WithHelp {
        inner: err,
        help: help.into(),
    })
}

/// The `help:` attached anywhere in the error's chain, the outermost first.
pub fn help_of(err: &anyhow::Error) -> Option<&str> {
    err.chain()
        .find_map(|e| e.downcast_ref::<WithHelp>())
        .map(WithHelp::help)
}

/// The messages to print: the error, then each distinct cause.
pub fn messages(err: &anyhow::Error) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.last() != Some(&text) {
            out.push(text);
        }
    }
    out
}

/// Whether the error is a closed stdout (`cargo stream new --list | head`), which exits 0.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// A remote command's or a cluster's text on one line, for an error message: lines trimmed,
/// empty ones and those `skip` rejects dropped, joined with `separator`, cut after 1000 bytes.
///
/// # Examples
///
/// ```
/// let text = "sbatch: error: Batch job submission failed\n\n  Invalid account\n";
/// assert_eq!(
///     cargo_stream::error::one_line(text, "; ", |_| false),
///     "sbatch: error: Batch job submission failed; Invalid account"
/// );
/// ```
pub fn one_line(text: &str, separator: &str, skip: impl Fn(&str) -> bool) -> String {
    let kept: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !skip(l))
        .collect();
    let mut out = kept.join(separator);
    if out.len() > 1000 {
        let mut end = 1000;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn help_survives_context() {
        let err = Err::<(), _>(anyhow::anyhow!("inner"))
            .help("do this")
            .context("outer")
            .unwrap_err();
        assert_eq!(help_of(&err), Some("do this"));
        assert_eq!(messages(&err), ["outer", "inner"]);
    }
}
