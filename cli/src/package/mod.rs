//! `cargo stream package`: the cluster build of a job and its bundle.
//!
//! The steps, each in a module of its own: find the package and binary ([`locate`], with
//! cargo's own flags from [`cargo_flags`]); report the local masters set in code
//! ([`local_masters`]), which the cluster build makes inert; build with
//! `CARGO_STREAM_CLUSTER_BUILD=1`, which the runtime's build script turns into
//! `--cfg cargo_stream_cluster` ([`cargo_build`]); gather the entries (the binary, the cluster
//! [`config`], the [`licenses`], `Cargo.lock`, the launcher, `--include` files); describe them
//! in `stream-manifest.json` ([`manifest`], with the [`elf`] glibc floor and the [`git`]
//! revision); and write one reproducible archive ([`bundle`]) plus its `.sha256`, and the
//! [`scripts`] a user can run by hand, filled in with the job's values, beside it.

pub mod bundle;
pub mod cargo_build;
pub mod cargo_flags;
pub mod config;
pub mod elf;
pub mod git;
pub mod licenses;
pub mod local_masters;
pub mod locate;
pub mod manifest;
pub mod scripts;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

pub use crate::config::Include;
use crate::config::{PackageLayer, PackageSettings};
use crate::error::with_help;
use crate::shell::{ColorChoice, Shell, Verbosity};
use bundle::{ArchiveFormat, Entry};
use cargo_flags::CargoFlags;
use local_masters::LocalMaster;
use manifest::{Dependency, EntryInfo, StreamManifest};

/// The launcher's main class, named in the jar's `Main-Class`.
pub const MAIN_CLASS: &str = "cargostream.Launcher";
/// The launcher, compiled from `cli/launcher/cargostream/Launcher.java` by `javac --release 8`.
pub const LAUNCHER_CLASS: &[u8] = include_bytes!("../../launcher/cargostream/Launcher.class");
/// `submit-scripts/run.sh`: runs the unzipped bundle without Java.
pub const RUN_SH: &[u8] = include_bytes!("../../../submit-scripts/run.sh");
/// The cfg under which `cargo-stream-runtime` ignores a local master set in code.
pub const CLUSTER_CFG: &str = "cargo_stream_cluster";

/// What `cargo stream package` was asked to do.
#[derive(Clone, Debug)]
pub struct PackageOpts {
    /// `--manifest-path`.
    pub manifest_path: Option<PathBuf>,
    /// `--bin`.
    pub bin: Option<String>,
    /// Cargo's build flags: `-p`, features, `--profile`, `--target`, `--locked`/`--offline`/
    /// `--frozen`, `--message-format`.
    pub cargo: CargoFlags,
    /// `--include`.
    pub includes: Vec<Include>,
    /// `--dry-run`: report what would be done, build and write nothing.
    pub dry_run: bool,
    /// How much to print.
    pub verbosity: Verbosity,
    /// Coloring, passed on to cargo.
    pub color: ColorChoice,
}

/// What was (or, with `--dry-run`, would be) written.
#[derive(Clone, Debug, Serialize)]
pub struct PackageReport {
    /// The artifact.
    pub artifact: PathBuf,
    /// Its checksum file.
    pub checksum_file: PathBuf,
    /// Hex sha256 of the artifact (`None` on a dry run).
    pub sha256: Option<String>,
    /// Its size in bytes (`None` on a dry run).
    pub size: Option<u64>,
    /// The cargo command of the cluster build.
    pub build_command: Vec<String>,
    /// The environment the cluster build adds (`CARGO_STREAM_CLUSTER_BUILD=1`).
    pub build_env: BTreeMap<String, String>,
    /// The local masters the cluster build ignores.
    pub stripped: Vec<LocalMaster>,
    /// The filled-in `submit-scripts/` written beside the artifact.
    pub scripts: Vec<PathBuf>,
    /// The entries, sorted (the binary's listed without contents on a dry run).
    pub entries: Vec<String>,
    /// The manifest (`None` on a dry run).
    pub manifest: Option<StreamManifest>,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// Runs the cluster build and writes the bundle.
pub fn package(shell: &mut Shell, opts: &PackageOpts) -> anyhow::Result<PackageReport> {
    let target = match &opts.cargo.target {
        Some(t) => t.clone(),
        None => locate::host_triple()?,
    };
    let (metadata, package) = locate::load(opts.manifest_path.as_deref(), &target, &opts.cargo)?;
    // Settings in layers: Cargo.toml metadata < Stream.toml < environment < flags.
    let package_root: PathBuf = package
        .manifest_path
        .parent()
        .expect("a manifest has a folder")
        .into();
    let cwd = std::env::current_dir().context("failed to read the current folder")?;
    let flags = PackageLayer {
        bin: opts.bin.clone(),
        include: Some(opts.includes.clone()).filter(|i| !i.is_empty()),
    };
    let settings = PackageSettings::layered(&package_root, &package.metadata, flags, &cwd)?;
    for source in &settings.sources {
        shell.verbose_status("Using", source);
    }
    let (bin, bins) = locate::pick_bin(&package, settings.bin.as_deref())?;
    let job = locate::Job {
        metadata,
        package,
        bin,
        bins,
    };
    let name = job.package.name.to_string();
    let version = job.package.version.to_string();
    let root = job.root();
    shell.verbose_status(
        "Found",
        format!(
            "binary `{}` of `{name} v{version}` ({})",
            job.bin,
            root.display()
        ),
    );

    // `--cfg cargo_stream_cluster` is what makes a local master in code inert; the runtime's
    // build script sets it, so a runtime without one cannot make a cluster build.
    let (cluster_runtime, runtime_version) = match job.runtime() {
        Some(runtime) => {
            if !runtime
                .targets
                .iter()
                .any(|t| t.is_kind(cargo_metadata::TargetKind::CustomBuild))
            {
                return Err(with_help(
                    anyhow::anyhow!(
                        "`cargo-stream-runtime v{}` ({}) cannot make a cluster build: it has no build script to set `--cfg {CLUSTER_CFG}`",
                        runtime.version,
                        runtime.manifest_path
                    ),
                    "point the job at a newer runtime (`cargo update -p cargo-stream-runtime`, or `cargo stream new --portable` again for a vendored copy)",
                ));
            }
            (Some(runtime.id.clone()), Some(runtime.version.to_string()))
        }
        None => {
            shell.warn(format!(
                "`{name}` does not depend on cargo-stream-runtime: building without the cluster settings"
            ));
            (None, None)
        }
    };
    let cluster_build = cluster_runtime.is_some();

    let mut roots = vec![root.join("src")];
    // Only what goes into the binary: tests, benches and examples keep their local masters.
    for t in &job.package.targets {
        let shipped = t.is_kind(cargo_metadata::TargetKind::Bin)
            || t.is_kind(cargo_metadata::TargetKind::Lib);
        if shipped {
            roots.push(t.src_path.clone().into());
        }
    }
    let stripped = local_masters::scan(&root, &roots)
        .context("failed to scan the sources for local masters")?;
    for found in &stripped {
        if cluster_build {
            shell.note(format!("stripped for the cluster build: {found}"));
        } else {
            shell.warn(format!(
                "local master set in code, NOT ignored without the runtime: {found}"
            ));
        }
    }

    let out_dir = PathBuf::from(job.metadata.target_directory.as_std_path()).join("stream");
    if opts
        .cargo
        .profile
        .as_deref()
        .is_some_and(|p| p == "dev" || p == "test")
    {
        shell.warn(format!(
            "`--profile {}` ships an unoptimized debug build to the cluster",
            opts.cargo.profile.as_deref().unwrap_or_default()
        ));
    }
    let artifact = out_dir.join(format!(
        "{name}-{version}-{target}.{}",
        ArchiveFormat::Jar.extension()
    ));
    let checksum_file = bundle::checksum_path(&artifact);
    let script_values = scripts::JobValues {
        name: name.clone(),
        version: version.clone(),
        jar_file: artifact
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned(),
        main_class: MAIN_CLASS.to_owned(),
        driver_cores: scripts::DEFAULT_DRIVER_CORES,
        driver_memory: scripts::DEFAULT_DRIVER_MEMORY.to_owned(),
        jar_sha256: None,
    };

    // Everything but the binary and the manifest can be gathered before the build, so that a
    // bad `--include` fails fast.
    let binary_entry = format!("bin/{}", job.bin);
    let mut entries = vec![
        Entry::file(
            "META-INF/MANIFEST.MF",
            jar_manifest(&name, &version, &binary_entry),
        ),
        Entry::file("cargostream/Launcher.class", LAUNCHER_CLASS),
        Entry::executable("run.sh", RUN_SH),
    ];
    entries.extend(scripts::bundle_entries(&script_values)?);
    let stream_toml = root.join("Stream.toml");
    if stream_toml.is_file() {
        let text = std::fs::read_to_string(&stream_toml)
            .with_context(|| format!("failed to read `{}`", stream_toml.display()))?;
        let cluster = config::for_cluster(&text)
            .with_context(|| format!("in `{}`", stream_toml.display()))?;
        for profile in &cluster.removed {
            shell.verbose_status(
                "Removed",
                format!("local profile `{profile}` from the bundled Stream.toml"),
            );
        }
        entries.push(Entry::file("Stream.toml", cluster.text));
    }
    let third_party = licenses::third_party(&job.metadata, &job.package.id);
    entries.push(Entry::file(
        "licenses/THIRD-PARTY.txt",
        licenses::summary(&third_party),
    ));
    for package in &third_party {
        for (path, contents) in &package.files {
            entries.push(Entry::file(path.clone(), contents.clone()));
        }
    }
    let reserved: Vec<String> = entries
        .iter()
        .map(|e| e.name.clone())
        .chain([
            binary_entry.clone(),
            "stream-manifest.json".to_owned(),
            "Cargo.lock".to_owned(),
            "Stream.toml".to_owned(),
        ])
        .collect();
    entries.extend(read_includes(&settings.includes, &reserved)?);

    let build = cargo_build::BuildRequest {
        manifest_path: job.package.manifest_path.clone().into(),
        bin: job.bin.clone(),
        flags: opts.cargo.clone(),
        cluster_runtime,
        verbosity: opts.verbosity,
        color: opts.color,
    };
    let mut build_command = vec!["cargo".to_owned()];
    build_command.extend(build.args());
    let build_env: BTreeMap<String, String> = build.env().into_iter().collect();

    if opts.dry_run {
        let mut names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
        names.extend([
            binary_entry,
            "stream-manifest.json".to_owned(),
            "Cargo.lock".to_owned(),
        ]);
        names.sort();
        return Ok(PackageReport {
            artifact,
            checksum_file,
            sha256: None,
            size: None,
            build_command,
            build_env,
            stripped,
            scripts: scripts::beside_paths(&out_dir, &name),
            entries: names,
            manifest: None,
            dry_run: true,
        });
    }

    shell.status(
        "Building",
        format!("`{}` for the cluster ({target})", job.bin),
    );
    let env_prefix: String = build_env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    shell.verbose_status(
        "Running",
        format!("`{env_prefix}{}`", build_command.join(" ")),
    );
    let exe = build.run()?;
    let progress = shell.progress("Packaging", format!("`{}`", artifact.display()));
    let binary = std::fs::read(&exe)
        .with_context(|| format!("failed to read the built binary `{}`", exe.display()))?;
    let glibc = if target.contains("linux") {
        elf::glibc_floor(&binary)
    } else {
        None
    };
    entries.push(Entry::executable(binary_entry.clone(), binary));
    let lock_path = job.metadata.workspace_root.join("Cargo.lock");
    let lock =
        std::fs::read(&lock_path).with_context(|| format!("failed to read `{lock_path}`"))?;
    entries.push(Entry::file("Cargo.lock", lock));

    let manifest = StreamManifest {
        format_version: manifest::FORMAT_VERSION,
        name: name.clone(),
        version: version.clone(),
        bin: job.bin.clone(),
        target: target.clone(),
        glibc,
        runtime_version,
        cluster_build,
        stripped_local_masters: stripped.clone(),
        git: git::describe(&root),
        main_class: MAIN_CLASS.to_owned(),
        binary: binary_entry,
        cargo_stream_version: env!("CARGO_PKG_VERSION").to_owned(),
        third_party: third_party
            .iter()
            .map(|p| Dependency {
                name: p.name.clone(),
                version: p.version.clone(),
                license: p.license.clone(),
            })
            .collect(),
        entries: entries
            .iter()
            .map(|e| {
                (
                    e.name.clone(),
                    EntryInfo {
                        sha256: e.sha256(),
                        size: e.data.len() as u64,
                        mode: e.mode,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
    };
    let mut json = serde_json::to_string_pretty(&manifest)?;
    json.push('\n');
    entries.push(Entry::file("stream-manifest.json", json));

    tracing::debug!(entries = entries.len(), "writing the archive");
    let bytes = bundle::archive(ArchiveFormat::Jar, &entries)?;
    let sha256 = bundle::hex(&sha2::Sha256::digest(&bytes));
    bundle::write_atomically(&artifact, &bytes)?;
    let file_name = artifact.file_name().expect("a file name").to_string_lossy();
    bundle::write_atomically(
        &checksum_file,
        format!("{sha256}  {file_name}\n").as_bytes(),
    )?;
    let written = scripts::write_beside(
        &out_dir,
        &scripts::JobValues {
            jar_sha256: Some(sha256.clone()),
            ..script_values
        },
    )?;
    drop(progress);

    let mut names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
    names.sort();
    Ok(PackageReport {
        artifact,
        checksum_file,
        sha256: Some(sha256),
        size: Some(bytes.len() as u64),
        build_command,
        build_env,
        stripped,
        scripts: written,
        entries: names,
        manifest: Some(manifest),
        dry_run: false,
    })
}

use sha2::Digest as _;

/// `META-INF/MANIFEST.MF`: CRLF lines of at most 72 bytes, longer values continued on lines
/// that start with a space, as the jar specification requires.
pub fn jar_manifest(name: &str, version: &str, binary: &str) -> String {
    let attrs = [
        ("Manifest-Version", "1.0"),
        ("Main-Class", MAIN_CLASS),
        (
            "Created-By",
            concat!("cargo-stream ", env!("CARGO_PKG_VERSION")),
        ),
        ("Cargo-Stream-Binary", binary),
        ("Implementation-Title", name),
        ("Implementation-Version", version),
    ];
    let mut out = String::new();
    for (key, value) in attrs {
        let line = format!("{key}: {value}");
        let mut rest = line.as_str();
        let mut first = true;
        while !rest.is_empty() {
            let room = if first { 72 } else { 71 };
            let mut cut = rest.len().min(room);
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            if !first {
                out.push(' ');
            }
            out.push_str(&rest[..cut]);
            out.push_str("\r\n");
            rest = &rest[cut..];
            first = false;
        }
    }
    out.push_str("\r\n");
    out
}

/// Reads the `--include` files; two landing on the same path, or one on a path the bundle
/// already uses, is an error.
fn read_includes(includes: &[Include], reserved: &[String]) -> anyhow::Result<Vec<Entry>> {
    let mut out: BTreeMap<String, (Entry, PathBuf)> = BTreeMap::new();
    for include in includes {
        let mut files = Vec::new();
        collect_files(&include.src, &include.dest, &mut files).with_context(|| {
            format!(
                "failed to read `--include {}:{}`",
                include.dest,
                include.src.display()
            )
        })?;
        for (dest, src) in files {
            if dest.starts_with("META-INF/")
                || dest.starts_with("cargostream/")
                || reserved.contains(&dest)
            {
                return Err(with_help(
                    anyhow::anyhow!(
                        "`--include {}:{}` collides with the bundle's own `{dest}`",
                        include.dest,
                        include.src.display()
                    ),
                    "choose another DEST, e.g. under `conf/`",
                ));
            }
            if let Some((_, other)) = out.get(&dest) {
                return Err(with_help(
                    anyhow::anyhow!(
                        "`--include` entries collide at `{dest}`: `{}` and `{}`",
                        other.display(),
                        src.display()
                    ),
                    "give each `--include` a different DEST",
                ));
            }
            let data = std::fs::read(&src)
                .with_context(|| format!("failed to read `{}`", src.display()))?;
            let entry = if is_executable(&src) {
                Entry::executable(dest.clone(), data)
            } else {
                Entry::file(dest.clone(), data)
            };
            out.insert(dest, (entry, src));
        }
    }
    Ok(out.into_values().map(|(e, _)| e).collect())
}

/// The files under `src` (itself, or those of the folder), with their paths in the bundle.
/// Symbolic links are refused, never followed: a link in an included folder could pull any
/// file the user can read (`~/.ssh/id_ed25519`) into a bundle that is shipped to a cluster.
fn collect_files(src: &Path, dest: &str, out: &mut Vec<(String, PathBuf)>) -> anyhow::Result<()> {
    let meta = std::fs::symlink_metadata(src)
        .with_context(|| format!("failed to read `{}`", src.display()))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(src)
            .map(|t| format!(" (to `{}`)", t.display()))
            .unwrap_or_default();
        return Err(with_help(
            anyhow::anyhow!(
                "`{}` is a symbolic link{target}: `--include` does not follow links",
                src.display()
            ),
            "include the file it points to by its own path, or replace the link with a copy",
        ));
    }
    if meta.is_dir() {
        let mut children: Vec<_> = std::fs::read_dir(src)
            .and_then(|d| d.collect::<Result<_, _>>())
            .with_context(|| format!("failed to read `{}`", src.display()))?;
        children.sort_by_key(|c| c.file_name());
        for child in children {
            let name = child.file_name().to_string_lossy().into_owned();
            collect_files(&child.path(), &format!("{dest}/{name}"), out)?;
        }
    } else {
        out.push((dest.to_owned(), src.to_owned()));
    }
    Ok(())
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lines_fit_72_bytes() {
        let long = "x".repeat(200);
        let mf = jar_manifest("job", "0.1.0", &format!("bin/{long}"));
        assert!(mf.split("\r\n").all(|l| l.len() <= 72), "{mf}");
        let joined = mf.replace("\r\n ", "");
        assert!(joined.contains(&format!("Cargo-Stream-Binary: bin/{long}\r\n")));
        assert!(mf.starts_with("Manifest-Version: 1.0\r\nMain-Class: cargostream.Launcher\r\n"));
    }

    #[test]
    fn include_parsing() {
        let inc: Include = "conf/app.conf:./app.conf".parse().unwrap();
        assert_eq!(inc.dest, "conf/app.conf");
        for bad in ["nocolon", "/abs:x", "../up:x", "a/./b:x", ":x", "a:"] {
            assert!(bad.parse::<Include>().is_err(), "{bad}");
        }
    }

    #[test]
    fn colliding_includes_are_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        let incs = [
            Include {
                dest: "x".into(),
                src: a.clone(),
            },
            Include {
                dest: "x".into(),
                src: b,
            },
        ];
        assert!(
            read_includes(&incs, &[])
                .unwrap_err()
                .to_string()
                .contains("collide at `x`")
        );
        let own = [Include {
            dest: "Stream.toml".into(),
            src: a,
        }];
        assert!(read_includes(&own, &["Stream.toml".into()]).is_err());
    }
}
