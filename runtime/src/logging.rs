//! What a job's `main` needs to be seen: a log subscriber installed in one call ([`init`]), and
//! an error printed for a person, with its causes, and a failing exit code ([`exit_code`]).
//!
//! The runtime logs through `tracing` (one line per completed batch, checkpoint, receiver
//! restart and error, at `info` or above); without a subscriber those lines go nowhere, so every
//! template's `main` starts with [`init`]:
//!
//! - `RUST_LOG` is honoured (`RUST_LOG=debug`, `RUST_LOG=cargo_stream_runtime=warn,info`), and
//!   `info` is the level when it is unset or unparsable;
//! - `CARGO_STREAM_LOG_FORMAT=json` writes one JSON object per line (for log shippers);
//!   otherwise lines are for people, coloured when stderr is a terminal;
//! - logs go to stderr, so that stdout holds only what the job prints (`print`'s batches).
//!
//! [`init`] needs the `logging` feature (on by default); [`report`] and [`exit_code`] do not.

use std::fmt::Write as _;
use std::process::ExitCode;

/// The environment variable that selects the log format: `json` for JSON lines, anything else
/// (or unset) for text.
pub const LOG_FORMAT_ENV: &str = "CARGO_STREAM_LOG_FORMAT";

/// The log format chosen by [`LOG_FORMAT_ENV`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// A line per event, for people.
    Text,
    /// A JSON object per line, for log shippers.
    Json,
}

impl LogFormat {
    /// The format `CARGO_STREAM_LOG_FORMAT` asks for (`json`, case-insensitive), text otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use cargo_stream_runtime::logging::LogFormat;
    /// assert_eq!(LogFormat::parse(Some("JSON")), LogFormat::Json);
    /// assert_eq!(LogFormat::parse(None), LogFormat::Text);
    /// ```
    pub fn parse(value: Option<&str>) -> LogFormat {
        match value {
            Some(v) if v.trim().eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Text,
        }
    }

    /// The format the environment asks for.
    pub fn from_env() -> LogFormat {
        LogFormat::parse(std::env::var(LOG_FORMAT_ENV).ok().as_deref())
    }
}

/// Installs the job's log subscriber on stderr: `RUST_LOG` or `info`, text or JSON lines as
/// [`LOG_FORMAT_ENV`] says. Does nothing if a subscriber is already installed (a test harness,
/// or a second call).
///
/// # Examples
///
/// ```
/// cargo_stream_runtime::logging::init();
/// tracing::info!("shown on stderr at the default level");
/// tracing::debug!("hidden unless RUST_LOG asks for debug");
/// ```
#[cfg(feature = "logging")]
pub fn init() {
    use tracing_subscriber::EnvFilter;

    // An unparsable RUST_LOG must not hide the errors: fall back to `info` and say so.
    let (filter, bad) = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => match EnvFilter::try_new(&spec) {
            Ok(f) => (f, None),
            Err(e) => (EnvFilter::new("info"), Some((spec, e))),
        },
        _ => (EnvFilter::new("info"), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // When stderr is closed (a pipe to `head` that ended), tracing-subscriber would report
        // the failed write with `eprintln!`, which panics on that same closed stderr: the
        // logging thread (the job thread, the signal thread) would die and the job hang.
        .log_internal_errors(false);
    let installed = match LogFormat::from_env() {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    if installed.is_ok()
        && let Some((spec, e)) = bad
    {
        tracing::warn!("RUST_LOG=`{spec}` is not a valid filter ({e}); logging at `info`");
    }
}

/// The message of `error` and of each of its causes, as cargo prints them: `error: ...`, then
/// `Caused by:` and the causes, indented. A cause whose text the message already contains is
/// not repeated.
///
/// # Examples
///
/// ```
/// let err = cargo_stream_runtime::Master::parse("local[0]").unwrap_err();
/// let text = cargo_stream_runtime::logging::report(&err);
/// assert!(text.starts_with("error: invalid master `local[0]`"), "{text}");
/// ```
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = format!("error: {error}");
    let mut shown = error.to_string();
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !shown.contains(&text) {
            causes.push(text.clone());
            shown.push_str(&text);
        }
        source = cause.source();
    }
    if !causes.is_empty() {
        out.push_str("\n\nCaused by:");
        for cause in causes {
            for (i, line) in cause.lines().enumerate() {
                let indent = if i == 0 { "  " } else { "    " };
                let _ = write!(out, "\n{indent}{line}");
            }
        }
    }
    out
}

/// The exit code of a job's `main`: success, or the error printed on stderr with [`report`]
/// (its Display message and causes, never its Debug form) and a failure code.
///
/// # Examples
///
/// ```no_run
/// use cargo_stream_runtime::prelude::*;
///
/// fn main() -> std::process::ExitCode {
///     cargo_stream_runtime::logging::init();
///     cargo_stream_runtime::logging::exit_code(run())
/// }
///
/// fn run() -> Result<(), cargo_stream_runtime::Error> {
///     let ssc = StreamingContext::new(StreamingConf::new("job").master("local[2]"), Seconds(1))?;
///     ssc.socket_text_stream("localhost", 9999).print(10)?;
///     ssc.start()?;
///     ssc.await_termination()
/// }
/// ```
pub fn exit_code<E>(result: Result<(), E>) -> ExitCode
where
    E: Into<Box<dyn std::error::Error + 'static>>,
{
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e: Box<dyn std::error::Error + 'static> = e.into();
            // Not `eprintln!`: it panics when stderr is closed.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("{}\n", report(&*e)).as_bytes(),
            );
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set in the child process of the closed-stderr test.
    const CLOSED_STDERR_CHILD: &str = "CARGO_STREAM_TEST_CLOSED_STDERR_CHILD";

    /// Logs from several threads with stderr closed: no thread may die of it.
    #[cfg(feature = "logging")]
    #[test]
    fn logging_to_a_closed_stderr_kills_no_thread() {
        if std::env::var_os(CLOSED_STDERR_CHILD).is_some() {
            init();
            let threads: Vec<_> = (0..2)
                .map(|i| {
                    std::thread::spawn(move || {
                        for n in 0..50 {
                            tracing::info!(thread = i, n, "a line to a closed stderr");
                        }
                    })
                })
                .collect();
            for t in threads {
                assert!(t.join().is_ok(), "a logging thread died");
            }
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let mut child = std::process::Command::new(exe)
            .args([
                "--exact",
                "logging::tests::logging_to_a_closed_stderr_kills_no_thread",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CLOSED_STDERR_CHILD, "1")
            .env("RUST_LOG", "info")
            .env_remove(LOG_FORMAT_ENV)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end at once: every write to the child's stderr fails with EPIPE.
        drop(child.stderr.take());
        let status = child.wait().unwrap();
        assert!(status.success(), "the child failed: {status}");
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("cannot create `word_counts` at `host=127.0.0.1`")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn report_shows_the_cause_chain_and_no_debug() {
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused to 127.0.0.1:5432",
        ));
        assert_eq!(
            report(&e),
            "error: cannot create `word_counts` at `host=127.0.0.1`\n\nCaused by:\n  connection refused to 127.0.0.1:5432"
        );
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        #[derive(Debug)]
        struct Same(std::io::Error);
        impl std::fmt::Display for Same {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "reading failed: {}", self.0)
            }
        }
        impl std::error::Error for Same {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Same(std::io::Error::other("disk full"));
        assert_eq!(report(&e), "error: reading failed: disk full");
    }

    #[test]
    fn exit_code_fails_on_an_error() {
        assert_eq!(exit_code::<crate::Error>(Ok(())), ExitCode::SUCCESS);
        assert_eq!(
            exit_code(Err(crate::Error::NoOutputOperations)),
            ExitCode::FAILURE
        );
    }

    #[test]
    fn log_format_reads_json_only() {
        assert_eq!(LogFormat::parse(Some(" json ")), LogFormat::Json);
        assert_eq!(LogFormat::parse(Some("text")), LogFormat::Text);
        assert_eq!(LogFormat::parse(Some("")), LogFormat::Text);
    }
}
