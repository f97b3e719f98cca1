//! `cargo stream status` shows a submitted job's state, as its cluster reports it.

use clap::Args;

use super::GlobalArgs;
use crate::cluster::follow;
use crate::cluster::{JobState, driver_ui};
use crate::machine_message;
use crate::shell::Shell;

/// `cargo stream status` shows a submitted job's state, as its cluster reports it.
#[derive(Debug, Args)]
#[command(after_help = concat!("Examples:
  cargo stream status driver-20261124112248-0000
  cargo stream status driver-20261124112248-0000 --wait
  cargo stream status 42 --json
  cargo stream status driver-20261124112248-0000 --watch
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
    /// Refresh the state and the driver's statistics every 2 s until the job ends
    #[arg(long, conflicts_with = "wait")]
    pub watch: bool,
}

/// Runs `cargo stream status`.
pub fn exec(shell: &mut Shell, global: &GlobalArgs, args: StatusArgs) -> anyhow::Result<()> {
    let mut record = follow::record_for(
        &args.id,
        args.cluster.as_deref(),
        global.manifest_path.as_deref(),
    )?;
    let backend = follow::backend_of(&record)?;
    if args.watch {
        let status = driver_ui::watch(shell, backend.as_ref(), &mut record, args.json)?;
        if !status.state.is_success() {
            return Err(follow::ended_badly(&record, &status));
        }
        return Ok(());
    }
    let status = if args.wait {
        follow::wait(shell, backend.as_ref(), &mut record, None)?
    } else {
        follow::status(shell, backend.as_ref(), &mut record)?
    };
    if !record.instances.is_empty() {
        report_instances(shell, backend.as_ref(), &record, &status, args.json)?;
    } else {
        let driver = (status.state == JobState::Running)
            .then(|| driver_ui::report(backend.as_ref(), &record, &mut None));
        if args.json {
            driver_ui::emit_status(&record, &status, driver.as_ref())?;
        } else {
            shell.out(status.state)?;
            if let Some(location) = &status.location {
                shell.status("On", location);
            }
            if let Some(message) = &status.message {
                shell.note(message);
            }
            for (label, text) in driver.iter().flat_map(driver_ui::lines) {
                shell.status(label, text);
            }
        }
    }
    if args.wait && !status.state.is_success() {
        return Err(follow::ended_badly(&record, &status));
    }
    Ok(())
}

/// The status of a job of several instances: the job's (their combined state) and each
/// instance's state, place and, while it runs, its driver's numbers (its tasks' lag).
fn report_instances(
    shell: &mut Shell,
    backend: &dyn crate::cluster::Backend,
    record: &crate::cluster::Record,
    status: &crate::cluster::Status,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        driver_ui::emit_status(record, status, None)?;
    } else {
        shell.out(status.state)?;
        if let Some(message) = &status.message {
            shell.note(message);
        }
    }
    for one in &record.instances {
        let view = record.instance(one.index)?;
        let driver =
            (one.state == JobState::Running).then(|| driver_ui::report(backend, &view, &mut None));
        if json {
            machine_message::emit(&machine_message::InstanceStatus {
                id: &record.id,
                instance: one.index,
                instances: record.instance_count(),
                cluster_id: &one.id,
                state: one.state,
                message: one.message.as_deref(),
                location: one.location.as_deref(),
                driver: driver.as_ref(),
            })?;
            continue;
        }
        let place = one
            .location
            .as_deref()
            .map(|l| format!(" on {l}"))
            .unwrap_or_default();
        let own_id = if one.id == record.id || record.instances.iter().all(|i| i.id == one.id) {
            String::new()
        } else {
            format!(" (`{}`)", one.id)
        };
        shell.status(
            "Instance",
            format!("{}{own_id}: {}{place}", one.index, one.state),
        );
        if let Some(message) = &one.message {
            shell.note(format!("instance {}: {message}", one.index));
        }
        for (label, text) in driver.iter().flat_map(driver_ui::lines) {
            shell.status(label, text);
        }
    }
    Ok(())
}
