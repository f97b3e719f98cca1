//! Warnings a user must see whatever the logging setup: through `tracing` when the job
//! installed a subscriber, and also on stderr as `warning: ...` when none is installed
//! (`tracing` is off by default, and a warning nobody sees is no warning).

use std::fmt::Display;
use std::io::Write;

/// Warns through `tracing`, and on stderr as `warning: <message>` when no global `tracing`
/// subscriber is installed. For what the user must act on or know happened to their data
/// (a checkpoint skipped, a log not cleaned up); diagnostics go through `tracing` only.
pub(crate) fn warn(message: impl Display) {
    tracing::warn!("{message}");
    if !tracing::dispatcher::has_been_set() {
        write_to(&mut std::io::stderr().lock(), &message);
    }
}

fn write_to(out: &mut dyn Write, message: &dyn Display) {
    let _ = writeln!(out, "warning: {message}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_warning_reads_as_cargo_prints_them() {
        let mut out = Vec::new();
        super::write_to(&mut out, &"skipped `checkpoint-2000`");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "warning: skipped `checkpoint-2000`\n"
        );
    }
}
