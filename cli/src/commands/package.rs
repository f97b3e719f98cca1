//! `cargo stream package` builds the job for a cluster and bundles it into one runnable jar.

use clap::Args;

use crate::cli::GlobalArgs;
use crate::shell::Shell;

/// `cargo stream package` builds the job for a cluster and bundles it into one runnable jar.
#[derive(Debug, Args)]
pub struct PackageArgs {
    /// Print results as JSON lines on stdout
    #[arg(long)]
    pub json: bool,
}

/// Runs `cargo stream package`.
pub fn exec(_shell: &mut Shell, _global: &GlobalArgs, _args: PackageArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
