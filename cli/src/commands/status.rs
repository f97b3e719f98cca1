//! `cargo stream status` shows a submitted job's state, as its cluster reports it.

use clap::Args;

use super::GlobalArgs;
use crate::cluster::follow;
use crate::machine_message;
use crate::shell::Shell;

/// `cargo stream status` shows a submitted job's state, as its cluster reports it.
#[derive(Debug, Args)]
#[command(after_help = concat!("Examples:
  cargo stream status driver-20261124112248-0000
  cargo stream status driver-20261124112248-0000 --wait
  cargo stream status 42 --json
  cargo stream status --cluster prod driver-20261124112248-0000  (a job submitted elsewhere)

", crate::exit_codes_help!()))]
pub struct StatusArgs {
    /// The submission ID (`cargo stream list` shows them)
    #[arg(value_name = "ID")]
    pub id: String,
    /// Wait for the job to end: exit 0 if it FINISHED, 3 if it FAILED or hit an ERROR, 4 if
    /// it was KILLED
    #[arg(long)]
    pub wait: bool,
    /// The cluster profile the job runs on: follows a job this machine has no record of
    #[arg(long, short = 'c', value_name = "NAME")]
    pub cluster: Option<String>,
    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// Runs `cargo stream status`.
pub fn exec(shell: &mut Shell, global: &GlobalArgs, args: StatusArgs) -> anyhow::Result<()> {
    let mut record = follow::record_for(
        &args.id,
        args.cluster.as_deref(),
        global.manifest_path.as_deref(),
    )?;
    let backend = follow::backend_of(&record)?;
    let status = if args.wait {
        follow::wait(shell, backend.as_ref(), &mut record, None)?
    } else {
        follow::status(shell, backend.as_ref(), &mut record)?
    };
    if args.json {
        machine_message::emit(&machine_message::Status {
            job: machine_message::Job::from(&record),
            state: status.state,
            message: status.message.as_deref(),
            location: status.location.as_deref(),
            submitted_at: record.submitted_at,
        })?;
    } else {
        shell.out(status.state)?;
        if let Some(location) = &status.location {
            shell.status("On", location);
        }
        if let Some(message) = &status.message {
            shell.note(message);
        }
    }
    if args.wait && !status.state.is_success() {
        return Err(follow::ended_badly(&record, &status));
    }
    Ok(())
}
