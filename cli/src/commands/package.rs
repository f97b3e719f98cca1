//! `cargo stream package` builds the job for a cluster and bundles it into one runnable jar.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;

use clap::Args;

use super::GlobalArgs;
use crate::machine_message;
use crate::package::cargo_flags::CargoFlags;
use crate::package::{Include, PackageOpts, package};
use crate::shell::Shell;

/// `cargo stream package` builds the job for a cluster and bundles it into one runnable jar.
///
/// The build is `cargo build --release` with cargo's own flags (`-p`, `--features`,
/// `--profile`, `--target`, `--locked`, `--offline`, `--frozen`, `--message-format`), in which
/// the runtime gets `--cfg cargo_stream_cluster` from its build script: a local master set in
/// code (`.master("local[2]")`) is then ignored, each one reported with its file and line, and
/// nothing needs commenting out. Right after `cargo build --release` only the runtime and the
/// job recompile. The bundle, `target/stream/NAME-VERSION-TARGET.jar`,
/// runs with `java -jar` (or `spark-submit`), or unzipped with its `run.sh`; it holds the
/// binary, `Stream.toml` without local profiles, `stream-manifest.json` (checksums, glibc
/// floor, git revision), the third-party licenses and `Cargo.lock`. The same inputs give the
/// same bytes; a `.sha256` file is written beside it, and the submit scripts to run by hand,
/// filled in with the job's values: `NAME-spark-submit.sh` (cluster mode with the cluster's
/// own `spark-submit`) and `NAME-ssh-launch.sh` (starts the bundle detached on a Linux host
/// over SSH), which the bundle carries too.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cargo stream package
  cargo stream package --bin word-count --include conf/app.conf:./app.conf
  cargo stream package --target x86_64-unknown-linux-musl
  cargo stream package -p word-count --features sql --locked
  cargo stream package --dry-run --json")]
pub struct PackageArgs {
    /// The binary to package, when the package has several
    #[arg(long, value_name = "NAME")]
    pub bin: Option<String>,
    /// Add a file or folder to the bundle at DEST (repeatable)
    #[arg(long, value_name = "DEST:SRC")]
    pub include: Vec<Include>,
    /// Show what would be built and bundled; build and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Cargo's build flags.
    #[command(flatten)]
    pub cargo: CargoFlags,
}

impl PackageArgs {
    /// Whether the result goes to stdout as JSON (`--json`, or a JSON `--message-format`).
    pub fn wants_json(&self) -> bool {
        self.json || self.cargo.message_format().is_json()
    }
}

/// Runs `cargo stream package`.
pub fn exec(shell: &mut Shell, global: &GlobalArgs, args: PackageArgs) -> anyhow::Result<()> {
    let json = args.wants_json();
    let interactive = !json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let bin = match args.bin {
        Some(bin) => Some(bin),
        None if interactive => ask_bin(global.manifest_path.as_deref(), &args.cargo)?,
        None => None,
    };
    let opts = PackageOpts {
        manifest_path: global.manifest_path.clone(),
        bin,
        cargo: args.cargo,
        includes: args.include,
        dry_run: args.dry_run,
        verbosity: shell.verbosity(),
        color: global.color,
    };
    let report = package(shell, &opts)?;
    if json {
        return machine_message::emit(&report).map_err(Into::into);
    }
    let shown = relative(&report.artifact);
    if report.dry_run {
        shell.status(
            "Would build",
            format!("`{}`", report.build_command.join(" ")),
        );
        shell.status("Would write", format!("`{}` with:", shown.display()));
        for entry in &report.entries {
            shell.out(format!("  {entry}"))?;
        }
        return Ok(());
    }
    let size = report.size.unwrap_or(0) as f64 / (1024.0 * 1024.0);
    shell.status(
        "Packaged",
        format!(
            "`{}` ({} entries, {size:.1} MiB)",
            shown.display(),
            report.entries.len()
        ),
    );
    shell.out(report.artifact.display())?;
    Ok(())
}

/// On a terminal, asks which binary to package when the package has several; `None` leaves
/// the choice (and any error) to `package`.
fn ask_bin(
    manifest_path: Option<&std::path::Path>,
    cargo: &CargoFlags,
) -> anyhow::Result<Option<String>> {
    let mut cmd = cargo_metadata::MetadataCommand::new();
    cmd.no_deps().other_options(cargo.manifest_args());
    if let Some(path) = manifest_path {
        cmd.manifest_path(path);
    }
    let Ok(metadata) = cmd.exec() else {
        return Ok(None);
    };
    let package = match cargo.package.as_deref() {
        // `-p NAME` or `-p NAME@VERSION`: a wrong one is `package`'s error to report.
        Some(spec) => metadata.workspace_packages().into_iter().find(|p| {
            spec == p.name.as_str() || spec == format!("{}@{}", p.name.as_str(), p.version)
        }),
        None => metadata.root_package(),
    };
    let Some(package) = package else {
        return Ok(None);
    };
    // A binary named in Cargo.toml, Stream.toml or the environment needs no question.
    let root = package
        .manifest_path
        .parent()
        .expect("a manifest has a folder");
    let cwd = std::env::current_dir()?;
    let layered = crate::config::PackageSettings::layered(
        root.as_std_path(),
        &package.metadata,
        crate::config::PackageLayer::default(),
        &cwd,
    );
    if layered.map(|s| s.bin.is_some()).unwrap_or(true) {
        return Ok(None);
    }
    let bins: Vec<&str> = package
        .targets
        .iter()
        .filter(|t| t.is_kind(cargo_metadata::TargetKind::Bin))
        .map(|t| t.name.as_str())
        .collect();
    if bins.len() < 2 {
        return Ok(None);
    }
    eprintln!("`{}` has several binaries:", package.name.as_str());
    for (i, bin) in bins.iter().enumerate() {
        eprintln!("  {}) {bin}", i + 1);
    }
    loop {
        eprint!("Which one to package? [1-{}] ", bins.len());
        std::io::stderr().flush()?;
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer)? == 0 {
            return Ok(None);
        }
        let answer = answer.trim();
        if let Some(bin) = bins.iter().find(|b| **b == answer) {
            return Ok(Some((*bin).to_owned()));
        }
        if let Some(bin) = answer
            .parse::<usize>()
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| bins.get(i))
        {
            return Ok(Some((*bin).to_owned()));
        }
    }
}

fn relative(path: &std::path::Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(PathBuf::from))
        .unwrap_or_else(|| path.to_owned())
}
