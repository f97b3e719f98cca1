//! `cargo stream ui` serves the status page of a job that has ended, from its event log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;

use super::GlobalArgs;
use crate::cluster::history::{self, Serving};
use crate::machine_message;
use crate::shell::Shell;

/// `cargo stream ui` serves the status page of a job that has ended, from its event log.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cargo stream ui /var/lib/clicks/checkpoint
  cargo stream ui driver-20261124112248-0000
  cargo stream ui 42 --addr 0.0.0.0:18080 --stop-after 3600")]
pub struct UiArgs {
    /// A checkpoint directory (or its `events` folder), or a submission ID
    #[arg(value_name = "DIR|ID")]
    pub target: String,
    /// The address to serve on (port 0 picks a free one)
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:18080")]
    pub addr: String,
    /// Stop after this many seconds (default: until Ctrl-C)
    #[arg(long, value_name = "SECONDS")]
    pub stop_after: Option<u64>,
    /// Print the URL as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// Runs `cargo stream ui`.
pub fn exec(shell: &mut Shell, _global: &GlobalArgs, args: UiArgs) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())
            .context("failed to set up Ctrl-C handling")?;
    }
    let log = history::locate(shell, &args.target)?;
    let server = cargo_stream_runtime::ui::serve_history(log.dir(), args.addr.as_str())
        .with_context(|| format!("failed to serve the history of `{}`", args.target))?;
    let url = server.url();
    if args.json {
        machine_message::emit(&Serving {
            url: &url,
            target: &args.target,
        })?;
    } else {
        shell.out(&url)?;
    }
    shell.status(
        "Serving",
        format!("the history of `{}` at {url} (Ctrl-C stops)", args.target),
    );
    let deadline = args
        .stop_after
        .map(|s| Instant::now() + Duration::from_secs(s));
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);
    drop(log);
    Ok(())
}
