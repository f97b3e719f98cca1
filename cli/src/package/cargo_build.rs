//! The cluster build: `cargo build --release` with `--cfg cargo_stream_cluster` (the runtime
//! then ignores a local master set in code), cargo's own output shown as it comes, the
//! binary's path read from cargo's JSON messages. A cfg, not a cargo feature: features must be
//! additive, and `--all-features` must not turn a workspace's local runs into cluster runs.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::Context as _;
use cargo_metadata::Message;

use crate::error::with_help;
use crate::package::CLUSTER_CFG;
use crate::shell::{ColorChoice, Verbosity};

/// What to build.
#[derive(Clone, Debug)]
pub struct BuildRequest {
    /// The job's Cargo.toml.
    pub manifest_path: PathBuf,
    /// The binary.
    pub bin: String,
    /// `--target`, if not the host.
    pub target: Option<String>,
    /// Whether this is the cluster build (`--cfg cargo_stream_cluster`).
    pub cluster: bool,
    /// How much cargo prints.
    pub verbosity: Verbosity,
    /// Cargo's coloring.
    pub color: ColorChoice,
}

impl BuildRequest {
    /// The cargo arguments, for the report and `--dry-run`.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "build".to_owned(),
            "--release".to_owned(),
            "--manifest-path".to_owned(),
            self.manifest_path.display().to_string(),
            "--bin".to_owned(),
            self.bin.clone(),
        ];
        if let Some(target) = &self.target {
            args.extend(["--target".to_owned(), target.clone()]);
        }
        // With RUSTFLAGS in the environment cargo ignores `build.rustflags`: then the cfg is
        // appended to RUSTFLAGS in `run` instead.
        if self.cluster && std::env::var_os("RUSTFLAGS").is_none() {
            args.extend([
                "--config".to_owned(),
                format!("build.rustflags=[\"--cfg\",\"{CLUSTER_CFG}\"]"),
            ]);
        }
        args
    }

    /// Runs the build and returns the path of the binary.
    pub fn run(&self) -> anyhow::Result<PathBuf> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(self.args())
            .arg("--message-format=json-render-diagnostics");
        match self.verbosity {
            Verbosity::Quiet => {
                cmd.arg("--quiet");
            }
            Verbosity::Verbose => {
                cmd.arg("--verbose");
            }
            Verbosity::Normal => {}
        }
        cmd.arg(format!(
            "--color={}",
            match self.color {
                ColorChoice::Auto => "auto",
                ColorChoice::Always => "always",
                ColorChoice::Never => "never",
            }
        ));
        if self.cluster
            && let Some(flags) = std::env::var_os("RUSTFLAGS")
        {
            let mut flags = flags;
            flags.push(format!(" --cfg {CLUSTER_CFG}"));
            cmd.env("RUSTFLAGS", flags);
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        tracing::debug!(?cmd, "running the cluster build");
        let mut child = cmd.spawn().context("failed to run `cargo build`")?;
        let stdout = child.stdout.take().expect("piped");
        let mut executable = None;
        for message in Message::parse_stream(std::io::BufReader::new(stdout)) {
            if let Message::CompilerArtifact(artifact) =
                message.context("failed to read cargo's output")?
                && artifact.target.name == self.bin
                && artifact.target.is_kind(cargo_metadata::TargetKind::Bin)
            {
                executable = artifact.executable.map(PathBuf::from);
            }
        }
        let status = child.wait().context("failed to wait for `cargo build`")?;
        if !status.success() {
            return Err(with_help(
                anyhow::anyhow!("failed to build `{}` for the cluster ({status})", self.bin),
                "fix the errors cargo printed above; `cargo build --release` shows the same",
            ));
        }
        executable.with_context(|| format!("cargo built no executable for `{}`", self.bin))
    }
}
