//! `cargo stream logs` prints what a submitted job wrote.

use std::io::Write as _;

use clap::Args;

use super::GlobalArgs;
use crate::cluster::LogStream;
use crate::cluster::follow;
use crate::machine_message;
use crate::shell::Shell;

/// `cargo stream logs` prints what a submitted job wrote: its standard output (what `print`
/// writes), or with `--stderr` its standard error (logs, errors).
#[derive(Debug, Args)]
#[command(after_help = concat!("Examples:
  cargo stream logs driver-20261124112248-0000
  cargo stream logs 42 --stderr --follow
  cargo stream logs driver-20261124112248-0000 --instance 1  (a job of several instances)
  cargo stream logs --cluster prod driver-20261124112248-0000  (a job submitted elsewhere)

", crate::exit_codes_help!()))]
pub struct LogsArgs {
    /// The submission ID (`cargo stream list` shows them)
    #[arg(value_name = "ID")]
    pub id: String,
    /// Show standard error instead of standard output
    #[arg(long)]
    pub stderr: bool,
    /// Keep printing what the job writes until it ends
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// The cluster profile the job runs on: reads the logs of a job this machine has no
    /// record of
    #[arg(long, short = 'c', value_name = "NAME")]
    pub cluster: Option<String>,
    /// Print each chunk as a JSON line on stdout
    #[arg(long)]
    pub json: bool,
    /// Which instance's logs, for a job of several (`submit --instances N`): 0 to N-1
    /// (default 0)
    #[arg(long, value_name = "I")]
    pub instance: Option<u32>,
}

/// Runs `cargo stream logs`.
pub fn exec(shell: &mut Shell, global: &GlobalArgs, args: LogsArgs) -> anyhow::Result<()> {
    let record = follow::record_for(
        &args.id,
        args.cluster.as_deref(),
        global.manifest_path.as_deref(),
    )?;
    let count = record.instance_count();
    if count > 1 && args.instance.is_none() && !args.json {
        shell.note(format!(
            "instance 0 of {count}; `--instance I` shows another's"
        ));
    }
    let id = record.id.clone();
    let mut record = record.instance(args.instance.unwrap_or(0))?;
    let backend = follow::backend_of(&record)?;
    let stream = if args.stderr {
        LogStream::Stderr
    } else {
        LogStream::Stdout
    };
    let json = args.json;
    let mut offset = 0u64;
    let mut write = |bytes: &[u8]| -> std::io::Result<()> {
        if json {
            machine_message::emit(&machine_message::Log {
                id: &id,
                stream,
                offset,
                text: &String::from_utf8_lossy(bytes),
            })?;
        } else {
            std::io::stdout().lock().write_all(bytes)?;
        }
        offset += bytes.len() as u64;
        Ok(())
    };
    follow::logs(
        shell,
        backend.as_ref(),
        &mut record,
        stream,
        args.follow,
        &mut write,
    )?;
    Ok(())
}
