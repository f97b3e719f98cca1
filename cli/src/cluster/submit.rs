//! The submit operation: find (or build) the artifact, check it, load the profile, hand the
//! job to the cluster's backend, and record the submission.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cluster::backend::{JobSpec, JobState, Status};
use crate::cluster::follow;
use crate::cluster::profile::{self, CommonKeys, Profile};
use crate::cluster::record::{self, Record};
use crate::cluster::stage::sha256_file;
use crate::error::with_help;
use crate::package::{PackageOpts, package};
use crate::shell::Shell;

/// What `cargo stream submit` was asked.
#[derive(Clone, Debug)]
pub struct SubmitOpts {
    /// The profile name.
    pub cluster: String,
    /// A packaged jar; `None` packages the job first.
    pub artifact: Option<PathBuf>,
    /// Options for packaging when there is no artifact.
    pub package: PackageOpts,
    /// Flag overrides of the profile (driver cores, memory, supervise, env, conf).
    pub flags: CommonKeys,
    /// Arguments for the job.
    pub args: Vec<String>,
    /// Show the plan; upload and submit nothing.
    pub dry_run: bool,
    /// Wait for the job to end.
    pub wait: bool,
    /// With `wait`: give up waiting after this long (the job keeps running).
    pub timeout: Option<std::time::Duration>,
    /// How many instances to start (`--instances N`; 1 is a job as it always was).
    pub instances: u32,
}

/// What [`run`] did.
#[derive(Debug)]
pub enum Outcome {
    /// A dry run: what would be submitted.
    Planned(Plan),
    /// The job was submitted; with `wait`, it ended with this status.
    Submitted {
        /// The record of the submission, as last refreshed.
        record: Box<Record>,
        /// The final status, when waited for.
        ended: Option<Status>,
    },
}

/// `cargo stream submit`: loads the profile, plans the job (packaging it if need be), and
/// unless it is a dry run submits it, records it, calls `submitted` with the record, and with
/// `wait` follows it to its end.
pub fn run(
    shell: &mut Shell,
    opts: &SubmitOpts,
    submitted: &mut dyn FnMut(&mut Shell, &Record) -> anyhow::Result<()>,
) -> anyhow::Result<Outcome> {
    let profile = load_profile(opts)?;
    let plan = plan(shell, opts, &profile)?;
    if opts.dry_run {
        return Ok(Outcome::Planned(plan));
    }
    let mut record = submit(shell, &profile, &plan)?;
    shell.status(
        "Submitted",
        format!(
            "`{}` to cluster `{}` as `{}`",
            plan.job.name, record.cluster, record.id
        ),
    );
    submitted(shell, &record)?;
    let ended = if opts.wait {
        let backend = follow::backend_of(&record)?;
        Some(follow::wait(
            shell,
            backend.as_ref(),
            &mut record,
            opts.timeout,
        )?)
    } else {
        None
    };
    Ok(Outcome::Submitted {
        record: Box::new(record),
        ended,
    })
}

/// What was submitted (or, for a dry run, would be).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Plan {
    /// The profile.
    pub cluster: String,
    /// Its kind.
    pub kind: profile::Kind,
    /// Where the profile came from.
    pub origins: Vec<String>,
    /// The job.
    pub job: JobSpec,
    /// How many instances of it.
    pub instances: u32,
}

/// The `Stream.toml` of the job around `manifest_path` or the current folder, if any.
pub fn stream_toml(manifest_path: Option<&Path>) -> Option<PathBuf> {
    if let Some(manifest) = manifest_path {
        let file = manifest.parent()?.join("Stream.toml");
        return file.is_file().then_some(file);
    }
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .find(|dir| dir.join("Cargo.toml").is_file())
        .map(|dir| dir.join("Stream.toml"))
        .filter(|file| file.is_file())
}

/// Loads the profile for `opts` (flags on top).
pub fn load_profile(opts: &SubmitOpts) -> anyhow::Result<Profile> {
    let stream_toml = stream_toml(opts.package.manifest_path.as_deref());
    profile::load(&opts.cluster, stream_toml.as_deref(), &opts.flags)
}

/// Builds the job's description: the artifact (packaged now if not given), its checksum and
/// name, and the profile's defaults under the flags.
pub fn plan(shell: &mut Shell, opts: &SubmitOpts, profile: &Profile) -> anyhow::Result<Plan> {
    let artifact = match &opts.artifact {
        Some(path) => path.clone(),
        None if opts.dry_run => {
            let mut dry = opts.package.clone();
            dry.dry_run = true;
            package(shell, &dry)?.artifact
        }
        None => {
            let artifact = package(shell, &opts.package)?.artifact;
            shell.status("Packaged", format!("`{}`", artifact.display()));
            artifact
        }
    };
    let (sha256, name) = if opts.dry_run && !artifact.is_file() {
        (String::new(), bundle_name_from_file(&artifact))
    } else {
        check_artifact(&artifact)?
    };
    let l = profile.keys.common();
    let job = JobSpec {
        name,
        artifact,
        sha256,
        main_class: crate::package::MAIN_CLASS.to_owned(),
        args: opts.args.clone(),
        env: l.env.unwrap_or_default(),
        driver_cores: l.driver_cores.unwrap_or(1),
        driver_memory: l.driver_memory.unwrap_or_else(|| "512m".into()),
        // Instances of one job are supervised unless told otherwise: the cluster restarts a
        // lost one, which then takes up its share of the input again.
        supervise: l.supervise.unwrap_or(opts.instances > 1),
        conf: l.conf.unwrap_or_default(),
    };
    Ok(Plan {
        cluster: profile.name.clone(),
        kind: profile.kind(),
        origins: profile.origins.clone(),
        job,
        instances: opts.instances.max(1),
    })
}

/// Submits a planned job and records it.
pub fn submit(shell: &mut Shell, profile: &Profile, plan: &Plan) -> anyhow::Result<Record> {
    let backend = crate::cluster::backend(profile)?;
    let mut started = Vec::new();
    let failed = backend
        .submit_instances(shell, &plan.job, plan.instances.max(1), &mut started)
        .err();
    let record = match (record::of_instances(started), failed) {
        (Some((first, instances)), failed) => {
            let record = Record {
                id: first.id,
                cluster: profile.name.clone(),
                kind: profile.kind(),
                profile: profile.keys.without_secrets(),
                name: plan.job.name.clone(),
                artifact: plan.job.artifact.clone(),
                sha256: plan.job.sha256.clone(),
                location: first.location,
                submitted_at: record::now(),
                state: JobState::Submitted,
                message: Some(first.message).filter(|m| !m.is_empty()),
                data: first.data,
                instances,
                view: None,
            };
            record.save()?;
            if let Some(err) = failed {
                // Those started run on: recorded, so that they can be followed and stopped.
                return Err(with_help(
                    err.context(format!(
                        "started {} of {} instances of `{}` as `{}`",
                        record.instances.len(),
                        plan.instances,
                        plan.job.name,
                        record.id
                    )),
                    format!(
                        "`cargo stream kill {}` stops the instances that were started",
                        record.id
                    ),
                ));
            }
            record
        }
        (None, Some(err)) => return Err(err),
        (None, None) => anyhow::bail!("cluster `{}` started no instance", profile.name),
    };
    Ok(record)
}

/// Checks that `artifact` is a cargo-stream bundle whose checksum matches its `.sha256` file
/// (when there is one); returns the checksum and the job's name.
pub fn check_artifact(artifact: &Path) -> anyhow::Result<(String, String)> {
    if !artifact.is_file() {
        return Err(with_help(
            anyhow::anyhow!("no artifact at `{}`", artifact.display()),
            "run `cargo stream package` first, or leave out `--artifact` to package now",
        ));
    }
    let sha256 = sha256_file(artifact)?;
    let mut sum_file = artifact.as_os_str().to_owned();
    sum_file.push(".sha256");
    let sum_file = PathBuf::from(sum_file);
    if let Ok(text) = std::fs::read_to_string(&sum_file) {
        let expected = text.split_whitespace().next().unwrap_or_default();
        if expected != sha256 {
            return Err(with_help(
                anyhow::anyhow!(
                    "`{}` does not match its checksum file `{}` (sha256 {sha256}, expected {expected})",
                    artifact.display(),
                    sum_file.display()
                ),
                "the artifact was changed or cut off after packaging: run `cargo stream package` again",
            ));
        }
    }
    let not_bundle = |why: String| {
        with_help(
            anyhow::anyhow!(
                "`{}` is not a bundle written by `cargo stream package`: {why}",
                artifact.display()
            ),
            "pass the `.jar` that `cargo stream package` wrote under `target/stream/`",
        )
    };
    let file = std::fs::File::open(artifact)
        .with_context(|| format!("failed to open `{}`", artifact.display()))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| not_bundle(e.to_string()))?;
    let mut text = String::new();
    zip.by_name("stream-manifest.json")
        .map_err(|_| not_bundle("it has no `stream-manifest.json`".into()))?
        .read_to_string(&mut text)
        .map_err(|e| not_bundle(e.to_string()))?;
    /// The one field of `stream-manifest.json` read here (every version of the manifest has
    /// it; the rest is the package's business).
    #[derive(serde::Deserialize)]
    struct Named {
        name: Option<String>,
    }
    let manifest: Named = serde_json::from_str(&text).map_err(|e| not_bundle(e.to_string()))?;
    let name = manifest
        .name
        .ok_or_else(|| not_bundle("its manifest has no `name`".into()))?;
    Ok((sha256, name))
}

fn bundle_name_from_file(artifact: &Path) -> String {
    artifact
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "job".into())
}

/// Parses `K=V`.
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got `{text}`")),
    }
}

/// Collects `K=V` pairs into a map, `None` when there are none.
pub fn to_map(pairs: Vec<(String, String)>) -> Option<BTreeMap<String, String>> {
    (!pairs.is_empty()).then(|| pairs.into_iter().collect())
}
