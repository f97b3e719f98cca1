//! SIGTERM and SIGINT stop the context gracefully; a second signal stops it at once. Under a
//! launcher, the job also gets SIGTERM when its launcher dies ([`die_with_launcher`]).

use std::sync::Weak;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::engine::{Shared, State};

pub(crate) fn install(shared: Weak<Shared>) {
    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(
                "could not install SIGTERM/SIGINT handlers, signals will not stop gracefully: {e}"
            );
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("stream-signals".into())
        .spawn(move || {
            let mut seen = 0;
            for signal in signals.forever() {
                // Once the context is gone, a signal does what it would have done without us.
                let Some(sh) = shared
                    .upgrade()
                    .filter(|sh| sh.lifecycle().state != State::Stopped)
                else {
                    let _ = signal_hook::low_level::emulate_default_handler(signal);
                    continue;
                };
                seen += 1;
                let graceful = seen == 1;
                let name = if signal == SIGTERM {
                    "SIGTERM"
                } else {
                    "SIGINT"
                };
                if graceful {
                    tracing::info!(
                        "{name} received: stopping gracefully (send it again to stop at once)"
                    );
                } else {
                    tracing::warn!("{name} received again: stopping now");
                    sh.halt();
                }
                std::thread::spawn(move || {
                    if let Err(e) = sh.stop(graceful) {
                        tracing::warn!("{e}");
                    }
                });
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("could not start the signal thread: {e}");
    }
}

/// Set by `run.sh` to its own pid: the job runs under that launcher and must not outlive it.
pub(crate) const PARENT_PID_ENV: &str = "CARGO_STREAM_PARENT_PID";
/// Set by every launcher that unpacks a bundle and waits for the job (the jar's Java launcher,
/// `run.sh`): the job's parent is that launcher.
pub(crate) const BUNDLE_DIR_ENV: &str = "CARGO_STREAM_BUNDLE_DIR";

/// Under a launcher (`CARGO_STREAM_PARENT_PID` or `CARGO_STREAM_BUNDLE_DIR` set), has the
/// kernel send this process SIGTERM when the launcher dies (Linux's `PR_SET_PDEATHSIG`), so
/// that a launcher killed with SIGKILL (a JVM killed by its cluster manager) does not leave the
/// job running alone: the SIGTERM stops it gracefully, final checkpoint first. A launcher
/// already gone by now (the race between its death and this call) is detected by the parent
/// pid, and the job sends itself the same SIGTERM. Once per process; elsewhere than Linux,
/// nothing.
pub(crate) fn die_with_launcher() {
    let expected = match std::env::var(PARENT_PID_ENV) {
        Ok(pid) => match pid.trim().parse::<i32>() {
            Ok(pid) if pid > 0 => Some(pid),
            _ => {
                tracing::warn!(
                    "ignoring {PARENT_PID_ENV}=`{pid}`: expected the launcher's process id"
                );
                None
            }
        },
        Err(_) => None,
    };
    if expected.is_none() && std::env::var_os(BUNDLE_DIR_ENV).is_none() {
        return;
    }
    parent_death::arm(expected);
}

#[cfg(target_os = "linux")]
mod parent_death {
    use std::sync::Once;

    static ARMED: Once = Once::new();

    /// Arms the parent-death signal from a thread that lives as long as the process: Linux
    /// keeps the setting per thread and drops it when that thread ends, and `start()` may be
    /// called from a thread that ends early.
    pub(super) fn arm(expected: Option<i32>) {
        ARMED.call_once(|| {
            // SAFETY: getppid has no preconditions.
            let parent = expected.unwrap_or_else(|| unsafe { libc::getppid() });
            let spawned = std::thread::Builder::new()
                .name("stream-parent-death".into())
                .spawn(move || {
                    // SAFETY: PR_SET_PDEATHSIG takes a signal number and no pointers.
                    let armed = unsafe {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0)
                    };
                    if armed != 0 {
                        tracing::warn!(
                            "could not ask to be stopped when the launcher dies (prctl PR_SET_PDEATHSIG): {}",
                            std::io::Error::last_os_error()
                        );
                        return;
                    }
                    // SAFETY: getppid has no preconditions.
                    let now = unsafe { libc::getppid() };
                    if now != parent {
                        tracing::warn!(
                            launcher = parent,
                            parent = now,
                            "the launcher (pid {parent}) is gone: stopping as if it had sent SIGTERM"
                        );
                        // SAFETY: kill on our own pid with a valid signal number.
                        unsafe {
                            libc::kill(libc::getpid(), libc::SIGTERM);
                        }
                    }
                    tracing::debug!(launcher = parent, "armed: SIGTERM when the launcher dies");
                    loop {
                        std::thread::park();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("could not start the thread that watches the launcher: {e}");
            }
        });
    }
}

#[cfg(not(target_os = "linux"))]
mod parent_death {
    /// No parent-death signal outside Linux: a launcher that dies leaves the job running.
    pub(super) fn arm(_expected: Option<i32>) {}
}
