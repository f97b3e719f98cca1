//! The cluster build: `cargo build --release` (or the `--profile` asked for) with the user's
//! cargo flags, cargo's own output shown as it comes, the binary's path read from cargo's JSON
//! messages.
//!
//! The runtime ignores a local master set in code under `--cfg cargo_stream_cluster`. The cfg
//! is not passed through rustflags, which would change every crate's flags and rebuild the
//! whole graph (DataFusion included) next to the user's `cargo build --release`, and which
//! cargo silently drops when `CARGO_ENCODED_RUSTFLAGS`, `RUSTFLAGS` or
//! `target.<triple>.rustflags` is set. Instead the build runs with
//! `CARGO_STREAM_CLUSTER_BUILD=1`, which the runtime's build script turns into the cfg for the
//! runtime alone (`rerun-if-env-changed`): only the runtime and the crates above it rebuild.
//! Cargo reports the cfgs each build script set (`build-script-executed`); the build fails
//! unless the runtime's carries the cfg, so a manifest never claims a cluster build that is
//! not one. A cfg, not a cargo feature: features must be additive, and `--all-features` must
//! not turn a workspace's local runs into cluster runs.

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::Context as _;
use cargo_metadata::{Message, PackageId};

use crate::error::with_help;
use crate::package::CLUSTER_CFG;
use crate::package::cargo_flags::CargoFlags;
use crate::shell::{ColorChoice, Verbosity};

/// The variable the runtime's build script (`runtime/build.rs`) turns into
/// `--cfg cargo_stream_cluster`.
pub const CLUSTER_BUILD_ENV: &str = "CARGO_STREAM_CLUSTER_BUILD";

/// What to build.
#[derive(Clone, Debug)]
pub struct BuildRequest {
    /// The job's Cargo.toml.
    pub manifest_path: PathBuf,
    /// The binary.
    pub bin: String,
    /// Cargo's flags: `-p`, features, profile, target, `--locked`/`--offline`/`--frozen`,
    /// message format.
    pub flags: CargoFlags,
    /// The runtime's package when this is the cluster build: its build script must report
    /// `--cfg cargo_stream_cluster`.
    pub cluster_runtime: Option<PackageId>,
    /// How much cargo prints.
    pub verbosity: Verbosity,
    /// Cargo's coloring.
    pub color: ColorChoice,
}

impl BuildRequest {
    /// The cargo arguments, for the report and `--dry-run`.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["build".to_owned()];
        args.extend(self.flags.profile_args());
        args.extend([
            "--manifest-path".to_owned(),
            self.manifest_path.display().to_string(),
        ]);
        if let Some(package) = &self.flags.package {
            args.extend(["--package".to_owned(), package.clone()]);
        }
        args.extend(["--bin".to_owned(), self.bin.clone()]);
        if let Some(target) = &self.flags.target {
            args.extend(["--target".to_owned(), target.clone()]);
        }
        args.extend(self.flags.feature_args());
        args.extend(self.flags.manifest_args());
        args
    }

    /// The environment the build adds, for the report and `--dry-run`.
    pub fn env(&self) -> Vec<(String, String)> {
        if self.cluster_runtime.is_some() {
            vec![(CLUSTER_BUILD_ENV.to_owned(), "1".to_owned())]
        } else {
            Vec::new()
        }
    }

    /// Runs the build and returns the path of the binary. With a JSON `--message-format`,
    /// cargo's messages are copied to stdout as they come.
    pub fn run(&self) -> anyhow::Result<PathBuf> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        let format = self.flags.message_format();
        cmd.args(self.args())
            .arg(format!("--message-format={}", format.for_cargo()));
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
        // Set for the cluster build only: a value left in the user's environment must not make
        // a build without the runtime claim anything, nor leak into it.
        cmd.env_remove(CLUSTER_BUILD_ENV);
        for (key, value) in self.env() {
            cmd.env(key, value);
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        tracing::debug!(?cmd, "running the cluster build");
        let mut child = cmd.spawn().context("failed to run `cargo build`")?;
        let stdout = child.stdout.take().expect("piped");
        let mut executable = None;
        let mut runtime_cfgs: Option<Vec<String>> = None;
        let mut out = std::io::stdout().lock();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.context("failed to read cargo's output")?;
            if format.is_json() {
                writeln!(out, "{line}").context("failed to write to stdout")?;
            }
            let Ok(message) = serde_json::from_str::<Message>(&line) else {
                continue;
            };
            match message {
                Message::CompilerArtifact(artifact)
                    if artifact.target.name == self.bin
                        && artifact.target.is_kind(cargo_metadata::TargetKind::Bin) =>
                {
                    executable = artifact.executable.map(PathBuf::from);
                }
                Message::BuildScriptExecuted(script)
                    if Some(&script.package_id) == self.cluster_runtime.as_ref() =>
                {
                    runtime_cfgs = Some(script.cfgs);
                }
                _ => {}
            }
        }
        out.flush().context("failed to write to stdout")?;
        drop(out);
        let status = child.wait().context("failed to wait for `cargo build`")?;
        if !status.success() {
            return Err(with_help(
                anyhow::anyhow!("failed to build `{}` for the cluster ({status})", self.bin),
                "fix the errors cargo printed above; `cargo build --release` shows the same",
            ));
        }
        if let Some(runtime) = &self.cluster_runtime {
            check_cluster_cfg(runtime, runtime_cfgs.as_deref())?;
        }
        executable.with_context(|| format!("cargo built no executable for `{}`", self.bin))
    }
}

/// Fails unless the runtime's build script reported `--cfg cargo_stream_cluster` (`cfgs` is
/// what cargo's `build-script-executed` message said, `None` without such a message).
pub fn check_cluster_cfg(runtime: &PackageId, cfgs: Option<&[String]>) -> anyhow::Result<()> {
    let why = match cfgs {
        Some(cfgs) if cfgs.iter().any(|c| c == CLUSTER_CFG) => return Ok(()),
        Some(_) => format!("its build script did not set it from `{CLUSTER_BUILD_ENV}=1`"),
        None => "cargo ran no build script of it".to_owned(),
    };
    Err(with_help(
        anyhow::anyhow!(
            "the cluster build did not get `--cfg {CLUSTER_CFG}`: {why} (runtime `{}`)",
            runtime.repr
        ),
        "the runtime is older than this cargo-stream: point the job at a newer one (its `build.rs` sets the cfg), e.g. `cargo update -p cargo-stream-runtime`",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(cluster: bool) -> BuildRequest {
        BuildRequest {
            manifest_path: "/job/Cargo.toml".into(),
            bin: "job".into(),
            flags: CargoFlags::default(),
            cluster_runtime: cluster.then(|| PackageId {
                repr: "path+file:///rt#cargo-stream-runtime@0.1.0".into(),
            }),
            verbosity: Verbosity::Normal,
            color: ColorChoice::Never,
        }
    }

    #[test]
    fn the_cluster_build_changes_no_rustflags() {
        let build = request(true);
        let args = build.args().join(" ");
        assert_eq!(
            args,
            "build --release --manifest-path /job/Cargo.toml --bin job"
        );
        assert!(!args.contains("rustflags") && !args.contains("--cfg"));
        assert_eq!(
            build.env(),
            [(CLUSTER_BUILD_ENV.to_owned(), "1".to_owned())]
        );
        assert!(request(false).env().is_empty());
    }

    #[test]
    fn cargo_flags_reach_the_build() {
        let mut build = request(true);
        build.flags = CargoFlags {
            package: Some("job".into()),
            features: vec!["loud".into()],
            profile: Some("dist".into()),
            target: Some("x86_64-unknown-linux-musl".into()),
            frozen: true,
            ..CargoFlags::default()
        };
        assert_eq!(
            build.args().join(" "),
            "build --profile dist --manifest-path /job/Cargo.toml --package job --bin job \
             --target x86_64-unknown-linux-musl --features loud --frozen"
        );
    }

    #[test]
    fn a_runtime_without_the_cfg_fails_the_build() {
        let id = request(true).cluster_runtime.unwrap();
        assert!(check_cluster_cfg(&id, Some(&[CLUSTER_CFG.to_owned()])).is_ok());
        let err = check_cluster_cfg(&id, Some(&[])).unwrap_err().to_string();
        assert!(
            err.contains("did not get `--cfg cargo_stream_cluster`"),
            "{err}"
        );
        assert!(check_cluster_cfg(&id, None).is_err());
    }
}
