//! The command line: `cargo stream <verb>`, parsed with clap's derive API, and one module per
//! verb, each a clap `Args` struct and an `exec` that turns the flags into the options of the
//! library function doing the work, in the manner of cargo's `cli()`/`exec()`. Cargo runs
//! `cargo-stream stream <verb>`, so the root command is `cargo` with one subcommand, `stream`.
//! The root command and the global flags live here, above the verbs, which take them from
//! their parent folder and never from elsewhere.

pub mod kill;
pub mod list;
pub mod logs;
pub mod new;
pub mod package;
pub mod status;
pub mod submit;
pub mod ui;

use crate::shell::Shell;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::shell::{ColorChoice, Verbosity};
use kill::KillArgs;
use list::ListArgs;
use logs::LogsArgs;
use new::NewArgs;
use package::PackageArgs;
use status::StatusArgs;
use submit::SubmitArgs;
use ui::UiArgs;

/// The root command as cargo invokes it.
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo", styles = clap::builder::Styles::styled())]
pub enum Cargo {
    /// Scaffold, package and submit micro-batch streaming jobs.
    Stream(StreamArgs),
}

/// `cargo stream`: global flags and the verb.
#[derive(Debug, Args)]
#[command(
    version,
    about = "Scaffold, package and submit Spark-Streaming-style micro-batch jobs written in Rust",
    after_help = concat!("Examples:\n  cargo stream new word-count\n  cargo stream package --dry-run\n  cargo stream submit --cluster prod --wait\n  cargo stream logs driver-20261124112248-0000 --follow\n\nSee `cargo stream <verb> --help` for each verb.\n\n", crate::exit_codes_help!())
)]
pub struct StreamArgs {
    /// Flags every verb takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The verb.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every verb takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print more: the commands run (-v), debug logs (-vv)
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "quiet", help_heading = "Global options")]
    pub verbose: u8,
    /// Print errors only
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub quiet: bool,
    /// Coloring of messages
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, env = "CARGO_TERM_COLOR", hide_env = true, global = true, value_name = "WHEN", help_heading = "Global options")]
    pub color: ColorChoice,
    /// Path to the job's Cargo.toml
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help_heading = "Global options"
    )]
    pub manifest_path: Option<PathBuf>,
}

impl GlobalArgs {
    /// The verbosity the flags ask for.
    pub fn verbosity(&self) -> Verbosity {
        if self.quiet {
            Verbosity::Quiet
        } else if self.verbose > 0 {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }
    }
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a streaming job from a template or an exercise
    ///
    /// `cargo stream new` creates a streaming job from a template, or an exercise to solve.
    /// The templates are embedded in `cargo-stream`, so this works offline. The new crate has a
    /// README, a `Stream.toml` (a `local[2]` profile and a commented cluster profile) and a
    /// test, and runs at once with `cargo run`. An existing path is never overwritten.
    ///
    /// The crate depends on the runtime this `cargo-stream` was built from, by path;
    /// `--portable` writes a copy of the runtime into the crate instead, so that it builds
    /// anywhere.
    New(NewArgs),
    /// Build the job for a cluster and bundle it into one runnable jar
    ///
    /// `cargo stream package` builds the job for a cluster and bundles it into one runnable
    /// jar. The build is `cargo build --release` with `--cfg cargo_stream_cluster`, in which
    /// a local master set in code (`.master("local[2]")`) is ignored: each one is reported with
    /// its file and line, and nothing needs commenting out.
    ///
    /// The bundle, `target/stream/NAME-VERSION-TARGET.jar`, runs with `java -jar` (or
    /// `spark-submit`), or unzipped with its `run.sh`. It holds the binary, `Stream.toml`
    /// without local profiles, `stream-manifest.json` (checksums, glibc floor, git revision),
    /// the third-party licenses and `Cargo.lock`. The same inputs give the same bytes; a
    /// `.sha256` file is written beside it, and the submit scripts to run by hand, filled in
    /// with the job's values: `NAME-spark-submit.sh` (cluster mode with the cluster's own
    /// `spark-submit`) and `NAME-ssh-launch.sh` (starts the bundle detached on a Linux host
    /// over SSH), which the bundle carries too.
    ///
    /// `--bin` and `--include` may also come from `[package.metadata.stream.package]` in
    /// Cargo.toml, the `[package]` table of Stream.toml, or `CARGO_STREAM_BIN` and
    /// `CARGO_STREAM_INCLUDE`; the flags win.
    Package(PackageArgs),
    /// Send a packaged job to a cluster: Spark REST, spark-submit over SSH, an SSH host, Slurm
    ///
    /// `cargo stream submit` sends a packaged job to a cluster. Without `--artifact` it runs
    /// `cargo stream package` first. The jar is put where the cluster reads it (a shared
    /// folder or SFTP: written under a temporary name, its sha256 checked on arrival, then
    /// renamed), then started by the cluster manager the profile names. The submission is
    /// recorded on this machine, so that `status`, `logs`, `kill` and `list` can follow it.
    Submit(SubmitArgs),
    /// Show a submitted job's state
    ///
    /// `cargo stream status` asks the job's cluster for its state: SUBMITTED, RUNNING,
    /// RELAUNCHING, FINISHED, FAILED, KILLED, ERROR or UNKNOWN, with the cluster's message.
    Status(StatusArgs),
    /// Stop a submitted job, gracefully first so that it checkpoints
    ///
    /// `cargo stream kill` stops a submitted job: SIGTERM first, so that it finishes its
    /// batches and writes a final checkpoint, then forced after a grace period.
    Kill(KillArgs),
    /// Print a submitted job's output or errors
    ///
    /// `cargo stream logs` prints a submitted job's standard output, or its standard error
    /// with `--stderr`; `--follow` keeps printing until the job ends.
    Logs(LogsArgs),
    /// List the jobs submitted from this machine
    ///
    /// `cargo stream list` shows the jobs submitted from this machine, with their states
    /// refreshed from their clusters.
    List(ListArgs),
    /// Serve the status page of a job that has ended, from its event log
    ///
    /// `cargo stream ui` serves the status page and Spark's streaming REST API of a job that
    /// has ended, from the event log its runtime wrote beside the checkpoint: a checkpoint
    /// directory on this machine, or a submitted job's log, fetched over SSH for `ssh`,
    /// `spark-ssh` and `slurm` profiles, or read in place where this machine sees the driver's
    /// folder. It prints the URL and serves until Ctrl-C (or `--stop-after`).
    Ui(UiArgs),
}

impl Command {
    /// Whether the verb was asked for JSON output (errors then go to stdout as JSON too).
    pub fn json(&self) -> bool {
        match self {
            Command::New(args) => args.json,
            Command::Package(args) => args.wants_json(),
            Command::Submit(args) => args.wants_json(),
            Command::Status(args) => args.json,
            Command::Kill(args) => args.json,
            Command::Logs(args) => args.json,
            Command::List(args) => args.json,
            Command::Ui(args) => args.json,
        }
    }
}

/// Runs the verb.
pub fn exec(shell: &mut Shell, global: &GlobalArgs, command: Command) -> anyhow::Result<()> {
    match command {
        Command::New(args) => new::exec(shell, global, args),
        Command::Package(args) => package::exec(shell, global, args),
        Command::Submit(args) => submit::exec(shell, global, args),
        Command::Status(args) => status::exec(shell, global, args),
        Command::Kill(args) => kill::exec(shell, global, args),
        Command::Logs(args) => logs::exec(shell, global, args),
        Command::List(args) => list::exec(shell, global, args),
        Command::Ui(args) => ui::exec(shell, global, args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cargo::command().debug_assert();
    }
}
