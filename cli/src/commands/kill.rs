//! `cargo stream kill` stops a submitted job: gracefully first, so that it checkpoints.

use clap::Args;

use super::GlobalArgs;
use crate::cluster::follow;
use crate::machine_message;
use crate::shell::Shell;

/// `cargo stream kill` stops a submitted job: gracefully first, so that it checkpoints.
///
/// The job gets SIGTERM and stops as `StreamingContext::stop(graceful)` does: it finishes the
/// batches of what it received and writes a final checkpoint. Where the cluster manager lets
/// us, it is forced down after the grace period (`--grace`, or the profile's `kill-grace`);
/// Spark's worker forces a driver after its own `spark.worker.driverTerminateTimeout`.
/// A job of several instances (`submit --instances N`) has all of them stopped so, at once.
#[derive(Debug, Args)]
#[command(after_help = concat!("Examples:
  cargo stream kill driver-20261124112248-0000
  cargo stream kill 42 --grace 60 --json
  cargo stream kill driver-20261124112248-0000  (a job of several instances: stops them all)
  cargo stream kill --cluster prod driver-20261124112248-0000  (a job submitted elsewhere)

", crate::exit_codes_help!()))]
pub struct KillArgs {
    /// The submission ID (`cargo stream list` shows them)
    #[arg(value_name = "ID")]
    pub id: String,
    /// Seconds to wait after SIGTERM before forcing the job down (default: the profile's
    /// `kill-grace`, else 30)
    #[arg(long, value_name = "SECS")]
    pub grace: Option<u64>,
    /// The cluster profile the job runs on: stops a job this machine has no record of
    #[arg(long, short = 'c', value_name = "NAME")]
    pub cluster: Option<String>,
    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// Runs `cargo stream kill`.
pub fn exec(shell: &mut Shell, global: &GlobalArgs, args: KillArgs) -> anyhow::Result<()> {
    let mut record = follow::record_for(
        &args.id,
        args.cluster.as_deref(),
        global.manifest_path.as_deref(),
    )?;
    let backend = follow::backend_of(&record)?;
    let grace = std::time::Duration::from_secs(
        args.grace
            .or(record.profile.common().kill_grace)
            .unwrap_or(30),
    );
    let count = record.instance_count();
    shell.status(
        "Stopping",
        if count > 1 {
            format!(
                "`{}` ({count} instances) on cluster `{}`",
                record.id, record.cluster
            )
        } else {
            format!("`{}` on cluster `{}`", record.id, record.cluster)
        },
    );
    let messages = follow::kill_all(backend.as_ref(), &record, grace)?;
    let status = follow::status(shell, backend.as_ref(), &mut record)?;
    let message = messages
        .iter()
        .map(|(index, m)| match index {
            Some(i) if !m.is_empty() => format!("instance {i}: {m}"),
            _ => m.clone(),
        })
        .filter(|m| !m.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if args.json {
        machine_message::emit(&machine_message::Killed {
            id: &record.id,
            cluster: &record.cluster,
            state: status.state,
            message: &message,
        })?;
    } else {
        shell.status("Stopped", format!("`{}`: {}", record.id, status.state));
        for (index, m) in &messages {
            if m.is_empty() {
                continue;
            }
            match index {
                Some(i) => shell.note(format!("instance {i}: {m}")),
                None => shell.note(m),
            }
        }
    }
    Ok(())
}
