//! SIGTERM and SIGINT stop the context gracefully; a second signal stops it at once.

use std::sync::Weak;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::context::{Shared, State};

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
