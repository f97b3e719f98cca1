//! The one place that writes to the terminal: right-aligned statuses, `warning:`/`note:`/`error:`
//! lines on stderr, results on stdout, and a spinner for long steps when stderr is a terminal
//! (a plain line per step otherwise), in the manner of cargo's `Shell`.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::ValueEnum;

use crate::{error, machine_message};

/// How much the shell prints on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors only (`-q`).
    Quiet,
    /// Statuses, warnings and notes.
    Normal,
    /// Also the commands run (`-v`).
    Verbose,
}

/// When to color the output (`--color`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Color when stderr is a terminal and `NO_COLOR` is unset.
    #[default]
    Auto,
    /// Always color.
    Always,
    /// Never color.
    Never,
}

/// Writes statuses, warnings and errors to stderr and results to stdout.
#[derive(Debug)]
pub struct Shell {
    verbosity: Verbosity,
    color: bool,
    tty: bool,
}

const GREEN: &str = "\x1b[1;32m";
const YELLOW: &str = "\x1b[1;33m";
const RED: &str = "\x1b[1;31m";
const CYAN: &str = "\x1b[1;36m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

impl Shell {
    /// A shell for this process's stderr.
    pub fn new(verbosity: Verbosity, color: ColorChoice) -> Self {
        let tty = std::io::stderr().is_terminal();
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && std::env::var_os("NO_COLOR").is_none(),
        };
        Shell {
            verbosity,
            color,
            tty,
        }
    }

    /// Whether stderr gets colors.
    pub fn colored(&self) -> bool {
        self.color
    }

    /// The verbosity in force.
    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    fn paint(&self, style: &str, text: &str) -> String {
        if self.color {
            format!("{style}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }

    /// A status line: `   Packaging word-count v0.1.0`, the label right-aligned to 12 columns.
    pub fn status(&mut self, label: &str, message: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Normal {
            let label = self.paint(GREEN, &format!("{label:>12}"));
            let _ = writeln!(std::io::stderr(), "{label} {message}");
        }
    }

    /// A status line shown only with `-v`.
    pub fn verbose_status(&mut self, label: &str, message: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Verbose {
            self.status(label, message);
        }
    }

    /// `warning: ...`
    pub fn warn(&mut self, message: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Normal {
            let label = self.paint(YELLOW, "warning");
            let _ = writeln!(std::io::stderr(), "{label}: {message}");
        }
    }

    /// `note: ...`
    pub fn note(&mut self, message: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Normal {
            let label = self.paint(CYAN, "note");
            let _ = writeln!(std::io::stderr(), "{label}: {message}");
        }
    }

    /// Prints `error:`, the causes under `Caused by:`, and `help:`; with `json`, also a
    /// `{"reason":"error",...}` line on stdout.
    pub fn print_error(&mut self, err: &anyhow::Error, json: bool) {
        let messages = error::messages(err);
        let help = error::help_of(err);
        let mut out = String::new();
        out.push_str(&format!("{}: {}\n", self.paint(RED, "error"), messages[0]));
        if messages.len() > 1 {
            out.push_str("\nCaused by:\n");
            for cause in &messages[1..] {
                for line in cause.lines() {
                    out.push_str(&format!("  {line}\n"));
                }
            }
        }
        if let Some(help) = help {
            if messages.len() > 1 {
                out.push('\n');
            }
            out.push_str(&format!("{}: {help}\n", self.paint(BOLD, "help")));
        }
        let _ = std::io::stderr().write_all(out.as_bytes());
        if json {
            let _ = machine_message::emit(&machine_message::Error {
                message: &messages[0],
                causes: &messages[1..],
                help,
            });
        }
    }

    /// Writes one line of results to stdout.
    pub fn out(&mut self, line: impl std::fmt::Display) -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}")?;
        stdout.flush()
    }

    /// Starts a long step: a spinner on a terminal, a plain status line otherwise.
    pub fn progress(&mut self, label: &str, message: impl std::fmt::Display) -> Progress {
        if self.tty && self.verbosity == Verbosity::Normal {
            let bar = indicatif::ProgressBar::new_spinner();
            let template = if self.color {
                "{spinner} {prefix:>12.green.bold} {msg} ({elapsed})"
            } else {
                "{spinner} {prefix:>12} {msg} ({elapsed})"
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(template).expect("valid template"),
            );
            bar.set_prefix(label.to_owned());
            bar.set_message(message.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            Progress { bar: Some(bar) }
        } else {
            self.status(label, message);
            Progress { bar: None }
        }
    }

    /// Starts a transfer of `len` bytes: a progress bar with bytes and rate on a terminal, a
    /// plain status line otherwise. Report progress with [`Progress::inc`].
    pub fn transfer(&mut self, label: &str, message: impl std::fmt::Display, len: u64) -> Progress {
        if self.tty && self.verbosity == Verbosity::Normal {
            let bar = indicatif::ProgressBar::new(len);
            let template = if self.color {
                "{prefix:>12.cyan.bold} {msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}"
            } else {
                "{prefix:>12} {msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}"
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(template)
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(label.to_owned());
            bar.set_message(message.to_string());
            Progress { bar: Some(bar) }
        } else {
            self.status(
                label,
                format!("{message} ({:.1} MiB)", len as f64 / (1024.0 * 1024.0)),
            );
            Progress { bar: None }
        }
    }
}

/// A step in progress, from [`Shell::progress`] or [`Shell::transfer`]. Dropping it clears
/// the spinner or bar.
#[derive(Debug)]
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// Counts `n` more bytes done.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
