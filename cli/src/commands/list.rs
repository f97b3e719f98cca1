//! `cargo stream list` shows the jobs submitted from this machine, refreshed from their
//! clusters; with `--cluster NAME`, also the jobs that cluster runs which were submitted
//! elsewhere.

use clap::Args;

use super::GlobalArgs;
use crate::cluster::utc::Utc;
use crate::cluster::{Record, follow};
use crate::machine_message;
use crate::shell::Shell;

/// `cargo stream list` shows the jobs submitted from this machine, refreshed from their
/// clusters. Jobs that ended are shown as last seen; a cluster that cannot be reached leaves
/// its jobs as last seen, with a warning. A job of several instances (`submit --instances N`) is
/// one line, its state theirs combined. With `--cluster NAME`, the cluster is asked for every
/// job it knows (a Spark master's drivers), whoever submitted it.
#[derive(Debug, Args)]
#[command(after_help = concat!("Examples:
  cargo stream list
  cargo stream list --cluster prod --json  (also the jobs submitted elsewhere)
  cargo stream list --offline

", crate::exit_codes_help!()))]
pub struct ListArgs {
    /// Only the jobs of this cluster profile, and every job the cluster knows (not only those
    /// submitted from here)
    #[arg(long, short = 'c', value_name = "NAME")]
    pub cluster: Option<String>,
    /// Do not ask the clusters: show the states last seen
    #[arg(long)]
    pub offline: bool,
    /// Print one JSON line per job on stdout
    #[arg(long)]
    pub json: bool,
}

/// Runs `cargo stream list`.
pub fn exec(shell: &mut Shell, global: &GlobalArgs, args: ListArgs) -> anyhow::Result<()> {
    let mut records: Vec<Record> = Record::all()?
        .into_iter()
        .filter(|r| args.cluster.as_ref().is_none_or(|c| *c == r.cluster))
        .collect();
    if !args.offline {
        for record in records.iter_mut().filter(|r| !r.state.is_final()) {
            let refreshed = follow::backend_of(record)
                .and_then(|backend| follow::refresh(backend.as_ref(), record));
            if let Err(err) = refreshed {
                shell.warn(format!(
                    "`{}` on cluster `{}`: state as last seen: {err:#}",
                    record.id, record.cluster
                ));
            }
        }
    }
    let others = match (&args.cluster, args.offline) {
        (Some(cluster), false) => {
            let found = follow::cluster_jobs(cluster, global.manifest_path.as_deref())?;
            found
                .into_iter()
                .filter(|job| {
                    !records
                        .iter()
                        .any(|r| r.id == job.id || r.instances.iter().any(|i| i.id == job.id))
                })
                .collect()
        }
        _ => Vec::new(),
    };
    if args.json {
        for record in &records {
            machine_message::emit(&machine_message::Submission::from(record))?;
        }
        if let Some(cluster) = &args.cluster {
            for job in &others {
                machine_message::emit(&machine_message::ClusterJob { cluster, job })?;
            }
        }
        return Ok(());
    }
    if records.is_empty() && others.is_empty() {
        shell.note(format!(
            "no submissions recorded in `{}`",
            crate::cluster::record::dir().display()
        ));
        return Ok(());
    }
    let width = records
        .iter()
        .map(|r| r.id.len())
        .chain(others.iter().map(|j| j.id.len()))
        .max()
        .unwrap_or(2)
        .max(2);
    let cwidth = records
        .iter()
        .map(|r| r.cluster.len())
        .max()
        .unwrap_or(7)
        .max(7);
    shell.out(format!(
        "{:width$}  {:cwidth$}  {:11}  {:20}  NAME",
        "ID", "CLUSTER", "STATE", "SUBMITTED (UTC)"
    ))?;
    for r in &records {
        shell.out(format!(
            "{:width$}  {:cwidth$}  {:11}  {:20}  {}",
            r.id,
            r.cluster,
            r.state.to_string(),
            Utc::from_secs(r.submitted_at).to_string(),
            match r.instance_count() {
                1 => r.name.clone(),
                n => format!("{} ({n} instances)", r.name),
            }
        ))?;
    }
    let cluster = args.cluster.as_deref().unwrap_or_default();
    for job in &others {
        shell.out(format!(
            "{:width$}  {:cwidth$}  {:11}  {:20}  {}",
            job.id,
            cluster,
            job.state.to_string(),
            job.submitted_at
                .map(|t| Utc::from_secs(t).to_string())
                .unwrap_or_else(|| "-".into()),
            job.name.as_deref().unwrap_or("(submitted elsewhere)")
        ))?;
    }
    Ok(())
}
