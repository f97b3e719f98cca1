//! The process's exit codes, one per outcome a script can act on, and the mapping from an
//! error to its code.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success; with `--wait`, the job FINISHED |
//! | 1 | the tool failed (a bad file, a refused request, a bug) |
//! | 2 | usage error (unknown flag, missing argument) |
//! | 3 | the job ended FAILED or ERROR |
//! | 4 | the job ended KILLED |
//! | 5 | the cluster could not be reached (after retries, where the verb retries) |
//! | 6 | `submit --wait --timeout SECS` passed before the job ended (it keeps running) |
//!
//! A job that ended badly is never 0, unlike Spark's standalone client, which exits 0 when
//! the driver failed. Errors carry their outcome as a typed cause ([`JobEnded`],
//! [`Unreachable`], [`WaitTimedOut`]) anywhere in their chain; [`code_of`] finds it.

use std::fmt;
use std::process::ExitCode;

use crate::cluster::backend::JobState;
use crate::error::WithHelp;

/// Success; with `--wait`, the job FINISHED.
pub const SUCCESS: u8 = 0;
/// The tool failed: a bad file, a refused request, a bug.
pub const TOOL_ERROR: u8 = 1;
/// A usage error (clap's code).
pub const USAGE: u8 = 2;
/// The job ended FAILED or ERROR.
pub const JOB_FAILED: u8 = 3;
/// The job ended KILLED.
pub const JOB_KILLED: u8 = 4;
/// The cluster could not be reached.
pub const UNREACHABLE: u8 = 5;
/// `submit --wait --timeout` passed first.
pub const WAIT_TIMEOUT: u8 = 6;

/// The table of codes as `--help` shows it, as a literal for `concat!`.
#[macro_export]
macro_rules! exit_codes_help {
    () => {
        "Exit codes:
  0  success; with --wait, the job FINISHED
  1  cargo-stream failed (bad input, a refused request)
  2  usage error
  3  the job ended FAILED or ERROR
  4  the job ended KILLED
  5  the cluster could not be reached (after retrying)
  6  `--wait --timeout SECS` passed before the job ended"
    };
}

/// The table of codes as `--help` shows it.
pub const HELP: &str = exit_codes_help!();

/// A job that ended other than FINISHED: exit 3 (FAILED, ERROR) or 4 (KILLED).
#[derive(Debug)]
pub struct JobEnded {
    /// The submission ID.
    pub id: String,
    /// How it ended.
    pub state: JobState,
}

impl fmt::Display for JobEnded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` ended {}", self.id, self.state)
    }
}

impl std::error::Error for JobEnded {}

/// A cluster that could not be reached (connection refused, reset, timed out, an SSH session
/// dropped): exit 5. Its text names the host and the cause.
#[derive(Debug)]
pub struct Unreachable(pub String);

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

/// `submit --wait --timeout` passed before the job ended: exit 6.
#[derive(Debug)]
pub struct WaitTimedOut {
    /// The submission ID.
    pub id: String,
    /// Its state when we stopped waiting.
    pub state: JobState,
    /// How long we waited, in seconds.
    pub waited: u64,
}

impl fmt::Display for WaitTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is still {} after {} s",
            self.id, self.state, self.waited
        )
    }
}

impl std::error::Error for WaitTimedOut {}

/// The exit code for `err`: the outcome typed in its chain, else 5 when a cause is a network
/// failure, else 1.
///
/// # Examples
///
/// ```
/// use cargo_stream::cluster::JobState;
/// use cargo_stream::exit::{self, JobEnded};
/// let err = anyhow::Error::new(JobEnded { id: "42".into(), state: JobState::Killed });
/// assert_eq!(exit::code_of(&err), exit::JOB_KILLED);
/// assert_eq!(exit::code_of(&anyhow::anyhow!("bad file")), exit::TOOL_ERROR);
/// ```
pub fn code_of(err: &anyhow::Error) -> u8 {
    if let Some(ended) = find::<JobEnded>(err) {
        return match ended.state {
            JobState::Killed => JOB_KILLED,
            _ => JOB_FAILED,
        };
    }
    if find::<WaitTimedOut>(err).is_some() {
        return WAIT_TIMEOUT;
    }
    if is_unreachable(err) {
        return UNREACHABLE;
    }
    TOOL_ERROR
}

/// The first `T` in `err`: its head or a context at any level, a cause, or inside a
/// [`WithHelp`] (whose typed head its `source` skips).
pub fn find<T: std::error::Error + Send + Sync + 'static>(err: &anyhow::Error) -> Option<&T> {
    if let Some(found) = err.downcast_ref::<T>() {
        return Some(found);
    }
    err.chain().find_map(|cause| {
        cause.downcast_ref::<T>().or_else(|| {
            cause
                .downcast_ref::<WithHelp>()
                .and_then(|help| find::<T>(help.inner()))
        })
    })
}

/// The first cause of `err` (looking inside [`WithHelp`]) for which `test` holds.
fn any_cause<'e>(
    err: &'e anyhow::Error,
    test: &mut dyn FnMut(&(dyn std::error::Error + 'static)) -> bool,
) -> Option<&'e (dyn std::error::Error + 'static)> {
    for cause in err.chain() {
        if test(cause) {
            return Some(cause);
        }
        if let Some(help) = cause.downcast_ref::<WithHelp>()
            && let Some(found) = any_cause(help.inner(), test)
        {
            return Some(found);
        }
    }
    None
}

/// The exit code for `err` as the process's.
pub fn exit_code(err: &anyhow::Error) -> ExitCode {
    ExitCode::from(code_of(err))
}

/// Whether `err` says the cluster could not be reached, so that asking again later may work:
/// an [`Unreachable`] cause, a connection refused, reset, aborted or timed out, an SSH session
/// whose socket failed, an HTTP request that could not connect or got no answer.
pub fn is_unreachable(err: &anyhow::Error) -> bool {
    if find::<Unreachable>(err).is_some() {
        return true;
    }
    any_cause(err, &mut |cause| {
        if cause.downcast_ref::<Unreachable>().is_some() {
            return true;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return is_network_io(io);
        }
        if let Some(http) = cause.downcast_ref::<reqwest::Error>() {
            return http.is_connect() || http.is_timeout();
        }
        if let Some(ssh) = cause.downcast_ref::<ssh2::Error>() {
            return is_ssh_connection_lost(ssh);
        }
        false
    })
    .is_some()
}

/// Whether libssh2 failed because the connection is gone (its socket and timeout errors in
/// `libssh2.h`), rather than because the host said no.
///
/// ```
/// use cargo_stream::exit::is_ssh_connection_lost;
/// let lost = ssh2::Error::new(ssh2::ErrorCode::Session(-43), "Failure receiving data");
/// let refused = ssh2::Error::new(ssh2::ErrorCode::Session(-18), "Authentication failed");
/// assert!(is_ssh_connection_lost(&lost));
/// assert!(!is_ssh_connection_lost(&refused));
/// ```
pub fn is_ssh_connection_lost(err: &ssh2::Error) -> bool {
    matches!(
        err.code(),
        ssh2::ErrorCode::Session(-7 | -9 | -13 | -43 | -30)
    )
}

fn is_network_io(io: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        io.kind(),
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | TimedOut
            | BrokenPipe
            | UnexpectedEof
            | HostUnreachable
            | NetworkUnreachable
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn outcomes_map_to_their_codes_through_context() {
        let failed = Err::<(), _>(JobEnded {
            id: "d".into(),
            state: JobState::Failed,
        })
        .context("outer")
        .unwrap_err();
        assert_eq!(code_of(&failed), JOB_FAILED);
        let error = anyhow::Error::new(JobEnded {
            id: "d".into(),
            state: JobState::Error,
        });
        assert_eq!(code_of(&error), JOB_FAILED);
        let refused =
            anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
                .context("failed to connect to `h:22`");
        assert_eq!(code_of(&refused), UNREACHABLE);
        let missing = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(code_of(&missing), TOOL_ERROR);
        let timeout = anyhow::Error::new(WaitTimedOut {
            id: "d".into(),
            state: JobState::Running,
            waited: 3,
        });
        assert_eq!(code_of(&timeout), WAIT_TIMEOUT);
    }

    #[test]
    fn outcomes_are_found_inside_help_and_under_context() {
        // As `follow::ended_badly` builds it: the cluster's words, the outcome as context, a
        // `help:` around it all.
        let killed = crate::error::with_help(
            anyhow::anyhow!("stopped").context(JobEnded {
                id: "d".into(),
                state: JobState::Killed,
            }),
            "see the logs",
        )
        .context("outer");
        assert_eq!(code_of(&killed), JOB_KILLED);
        let unreachable = crate::error::with_help(
            anyhow::Error::new(Unreachable("GET http://h:6066/: refused".into())),
            "check the master",
        )
        .context("failed to get the status");
        assert_eq!(code_of(&unreachable), UNREACHABLE);
    }
}
