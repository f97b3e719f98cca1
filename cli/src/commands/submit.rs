//! `cargo stream submit` sends a packaged job to a cluster.

use std::path::PathBuf;

use clap::Args;

use super::GlobalArgs;
use crate::cluster::follow;
use crate::cluster::profile::CommonKeys;
use crate::cluster::submit::{Outcome, SubmitOpts, parse_key_value, run, to_map};
use crate::machine_message;
use crate::package::PackageOpts;
use crate::package::cargo_flags::CargoFlags;
use crate::shell::Shell;

/// `cargo stream submit` sends a packaged job to a cluster.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cargo stream submit --cluster prod
  cargo stream submit --cluster prod --artifact target/stream/wc-0.1.0-x86_64-unknown-linux-gnu.jar -- localhost 9999
  cargo stream submit --cluster slurm --wait --env RUST_LOG=info
  cargo stream submit --cluster prod --instances 3   (one job as 3 instances sharing its input)
  cargo stream submit --cluster prod --dry-run --json

Profiles (`[clusters.NAME]` in Stream.toml or ~/.config/cargo-stream/clusters.toml):
  [clusters.prod]
  kind = \"spark-rest\"                  # spark-rest | spark-ssh | ssh | slurm
  master = \"spark://m1:6066,m2:6066\"   # REST gateways, tried in order
  jwt-secret-env = \"SPARK_JWT_SECRET\"  # variable holding the master's base64 secret
  upload = { to = \"sftp\", host = \"m1\", user = \"stream\", path = \"/srv/jobs\" }
  driver-cores = 1
  driver-memory = \"1g\"
  supervise = true
  env = { RUST_LOG = \"info\" }

  [clusters.box]
  kind = \"ssh\"                         # a plain Linux host; spark-ssh adds spark-home, master
  host = \"10.0.0.5\"                  # or hosts = [\"h1\", \"h2:2222\"]: --instances round-robin
  user = \"stream\"
  identity-file = \"~/.ssh/id_ed25519\"  # else the SSH agent
  known-hosts = \"~/.ssh/known_hosts\"   # host keys are always verified

  [clusters.hpc]
  kind = \"slurm\"
  url = \"http://slurm:6820\"            # slurmrestd
  user = \"stream\"
  token-env = \"SLURM_JWT\"
  upload = { to = \"dir\", path = \"/shared/jobs\" }

  [clusters.hpc-ssh]
  kind = \"slurm\"                       # no url: sbatch on a login node over SSH
  host = \"login1\"
  user = \"stream\"
  remote-dir = \"cargo-stream\"          # uploads and job folders, shared with the nodes
  slurm-conf = \"/etc/slurm/slurm.conf\" # only if not the login node's default

Any key can also come from CARGO_STREAM_CLUSTERS_<NAME>_<KEY> (e.g. CARGO_STREAM_CLUSTERS_PROD_MASTER).")]
pub struct SubmitArgs {
    /// The cluster profile to submit to
    #[arg(long, short = 'c', env = "CARGO_STREAM_CLUSTER", value_name = "NAME")]
    pub cluster: String,
    /// A jar written by `cargo stream package` (default: package the job now)
    #[arg(long, value_name = "PATH", conflicts_with = "CargoFlags")]
    pub artifact: Option<PathBuf>,
    /// The binary to package, when the package has several
    #[arg(long, value_name = "NAME", conflicts_with = "artifact")]
    pub bin: Option<String>,
    /// Wait for the job to end: exit 0 if it FINISHED, non-zero if FAILED, KILLED or ERROR
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up waiting after this many seconds (the job keeps running)
    #[arg(long, value_name = "SECS", requires = "wait")]
    pub timeout: Option<u64>,
    /// Have the cluster restart the driver if it fails
    #[arg(long)]
    pub supervise: bool,
    /// Start the job as N instances, each told its number (CARGO_STREAM_INSTANCE, 0..N) and N
    /// (CARGO_STREAM_INSTANCES), followed as one job; supervised unless the profile says
    /// `supervise = false`
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub instances: u32,
    /// Driver cores
    #[arg(long, value_name = "N")]
    pub driver_cores: Option<u32>,
    /// Driver memory (e.g. 512m, 2g)
    #[arg(long, value_name = "SIZE")]
    pub driver_memory: Option<String>,
    /// A property for the cluster (Spark's --conf), repeatable
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub conf: Vec<(String, String)>,
    /// An environment variable for the job, repeatable
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub env: Vec<(String, String)>,
    /// Show what would be submitted; upload and submit nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Arguments for the job
    #[arg(last = true, value_name = "JOB ARGS")]
    pub args: Vec<String>,
    /// Cargo's build flags, for packaging the job now (not with `--artifact`).
    #[command(flatten)]
    pub cargo: CargoFlags,
}

impl SubmitArgs {
    /// Whether the result goes to stdout as JSON (`--json`, or a JSON `--message-format`).
    pub fn wants_json(&self) -> bool {
        self.json || self.cargo.message_format().is_json()
    }
}

/// Runs `cargo stream submit`.
pub fn exec(shell: &mut Shell, global: &GlobalArgs, args: SubmitArgs) -> anyhow::Result<()> {
    let json = args.wants_json();
    let opts = SubmitOpts {
        cluster: args.cluster,
        artifact: args.artifact,
        package: PackageOpts {
            manifest_path: global.manifest_path.clone(),
            bin: args.bin,
            cargo: args.cargo,
            includes: Vec::new(),
            dry_run: false,
            verbosity: shell.verbosity(),
            color: global.color,
        },
        flags: CommonKeys {
            driver_cores: args.driver_cores,
            driver_memory: args.driver_memory,
            supervise: args.supervise.then_some(true),
            env: to_map(args.env),
            conf: to_map(args.conf),
            kill_grace: None,
        },
        args: args.args,
        dry_run: args.dry_run,
        wait: args.wait,
        timeout: args.timeout.map(std::time::Duration::from_secs),
        instances: args.instances,
    };
    let wait = args.wait;
    let outcome = run(shell, &opts, &mut |shell, record| {
        if json && !wait {
            machine_message::emit(&machine_message::Recorded::submitted(record))?;
        } else if !json {
            shell.out(&record.id)?;
        }
        Ok(())
    })?;
    match outcome {
        Outcome::Planned(plan) => {
            if json {
                return machine_message::emit(&plan).map_err(Into::into);
            }
            shell.status(
                "Would submit",
                format!(
                    "`{}` to cluster `{}` ({}, from {})",
                    plan.job.artifact.display(),
                    plan.cluster,
                    plan.kind,
                    plan.origins.join(" + ")
                ),
            );
            shell.out(serde_json::to_string_pretty(&plan.job)?)?;
            Ok(())
        }
        Outcome::Submitted { ended: None, .. } => Ok(()),
        Outcome::Submitted {
            record,
            ended: Some(status),
        } => {
            if json {
                machine_message::emit(&machine_message::Recorded::finished(&record))?;
            }
            if status.state.is_success() {
                Ok(())
            } else {
                Err(follow::ended_badly(&record, &status))
            }
        }
    }
}
