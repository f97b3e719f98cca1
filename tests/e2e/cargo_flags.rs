//! Cargo's own conventions in `cargo stream package` and `submit`: `-p` in a workspace,
//! `--bin`, `--features`, `--profile`, `--locked`/`--offline`, `--message-format json`,
//! `CARGO_TERM_COLOR`; and the cluster build without a second full build: after
//! `cargo build --release` only the runtime and the job recompile, the user's rustflags do not
//! drop the cluster cfg, and a runtime that cannot set it fails the packaging.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cargo_stream_tests::{
    Job, cargo as cargo_tool, cargo_stream, e2e_target_dir, run, temp_plain_crate, write_files,
};

const MINUTE: Duration = Duration::from_secs(60);
const BUILD: Duration = Duration::from_secs(900);

/// `cargo stream package ARGS --json` in `dir`: the artifact.
fn package(dir: &Path, args: &[&str]) -> (PathBuf, serde_json::Value) {
    let out = run(
        &mut cargo_stream(dir, &[&["package", "--json"], args].concat()),
        BUILD,
    )
    .success();
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    (PathBuf::from(report["artifact"].as_str().unwrap()), report)
}

/// What the packaged job prints when `java -jar` runs it.
fn java_output(jar: &Path) -> String {
    let out = run(Command::new("java").arg("-jar").arg(jar), MINUTE).success();
    out.stdout.trim().to_owned()
}

/// The packages cargo compiled, from its `Compiling NAME vX` lines.
fn compiled(stderr: &str) -> BTreeSet<String> {
    stderr
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("Compiling "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn package_picks_a_workspace_member_with_p_and_a_second_bin() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("flags-ws");
    write_files(
        &ws,
        &[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"jobs/flags-ingest\", \"flags-shared\"]\nresolver = \"2\"\n",
            ),
            (
                "jobs/flags-ingest/Cargo.toml",
                "[package]\nname = \"flags-ingest\"\nversion = \"0.3.0\"\nedition = \"2021\"\n\n[dependencies]\nflags-shared = { path = \"../../flags-shared\" }\n",
            ),
            (
                "jobs/flags-ingest/src/main.rs",
                "fn main() { println!(\"ingest {}\", flags_shared::NAME); }\n",
            ),
            (
                "jobs/flags-ingest/src/bin/second.rs",
                "fn main() { println!(\"second {}\", flags_shared::NAME); }\n",
            ),
            (
                "flags-shared/Cargo.toml",
                "[package]\nname = \"flags-shared\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            ),
            (
                "flags-shared/src/lib.rs",
                "pub const NAME: &str = \"shared\";\n",
            ),
        ],
    );
    // The workspace root is not a job: the error names the members and `-p`.
    let out = run(&mut cargo_stream(&ws, &["package"]), MINUTE).failure();
    assert!(
        out.stderr.contains("is a virtual workspace manifest")
            && out.stderr.contains("help: pass `-p`")
            && out.stderr.contains("`flags-ingest`, `flags-shared`"),
        "{}",
        out.stderr
    );
    let out = run(&mut cargo_stream(&ws, &["package", "-p", "nope"]), MINUTE).failure();
    assert!(
        out.stderr
            .contains("error: package `nope` is not a member of the workspace")
            && out
                .stderr
                .contains("help: the members are `flags-ingest`, `flags-shared`"),
        "{}",
        out.stderr
    );
    // `-p` picks the job, `--bin` its second binary, from the workspace root.
    let (jar, report) = package(&ws, &["-p", "flags-ingest@0.3.0", "--bin", "second"]);
    assert!(
        jar.ends_with(format!(
            "flags-ingest-0.3.0-{}.jar",
            report["manifest"]["target"].as_str().unwrap()
        )),
        "{}",
        jar.display()
    );
    assert_eq!(report["manifest"]["bin"], "second");
    let command = report["build_command"].to_string();
    assert!(
        command.contains("\"--package\",\"flags-ingest@0.3.0\",\"--bin\",\"second\""),
        "{command}"
    );
    assert_eq!(java_output(&jar), "second shared");
    // The workspace's target folder, as cargo's.
    assert!(jar.starts_with(e2e_target_dir()), "{}", jar.display());
    let _ = std::fs::remove_file(&jar);
}

#[test]
fn features_and_profile_reach_the_build() {
    let (_tmp, project) = temp_plain_crate(
        "flags-features",
        &[(
            "src/main.rs",
            r#"fn main() {
    let voice = if cfg!(feature = "loud") { "LOUD" } else { "quiet" };
    println!("{voice} debug_assertions={}", cfg!(debug_assertions));
}
"#,
        )],
    );
    let manifest = project.join("Cargo.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str(
        "\n[features]\nloud = []\n\n[profile.checked]\ninherits = \"release\"\ndebug-assertions = true\n",
    );
    std::fs::write(&manifest, text).unwrap();

    let (jar, _) = package(&project, &[]);
    assert_eq!(java_output(&jar), "quiet debug_assertions=false");
    let (jar, report) = package(&project, &["--features", "loud", "--profile", "checked"]);
    assert_eq!(java_output(&jar), "LOUD debug_assertions=true");
    let command = report["build_command"].to_string();
    assert!(
        command.contains("\"--profile\",\"checked\"")
            && command.contains("\"--features\",\"loud\""),
        "{command}"
    );
    let _ = std::fs::remove_file(&jar);

    // `--target` reaches the build and names the artifact (a dry run: the target's standard
    // library need not be installed).
    let (jar, report) = package(
        &project,
        &["--dry-run", "--target", "aarch64-unknown-linux-gnu"],
    );
    assert!(
        jar.ends_with("stream/flags-features-0.1.0-aarch64-unknown-linux-gnu.jar"),
        "{}",
        jar.display()
    );
    let command = report["build_command"].to_string();
    assert!(
        command.contains("\"--target\",\"aarch64-unknown-linux-gnu\""),
        "{command}"
    );
}

#[test]
fn locked_fails_on_a_stale_lock_and_offline_stays_off_the_network() {
    let (_tmp, project) = temp_plain_crate("flags-locked", &[("src/main.rs", "fn main() {}\n")]);
    run(
        &mut cargo_tool(&project, &["generate-lockfile", "--offline"]),
        MINUTE,
    )
    .success();
    // The version in Cargo.toml moves on; Cargo.lock does not.
    let manifest = project.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("version = \"0.1.0\"", "version = \"0.2.0\"");
    std::fs::write(&manifest, text).unwrap();
    let lock = std::fs::read(project.join("Cargo.lock")).unwrap();
    for flag in ["--locked", "--frozen"] {
        let out = run(&mut cargo_stream(&project, &["package", flag]), MINUTE).failure();
        assert_eq!(out.code, Some(1), "{}", out.stderr);
        assert!(
            out.stderr
                .contains("error: failed to read the job's `cargo metadata`")
                && out.stderr.contains(flag)
                && out.stderr.contains("help: run `cargo update`"),
            "{flag}: {}",
            out.stderr
        );
    }
    assert_eq!(
        std::fs::read(project.join("Cargo.lock")).unwrap(),
        lock,
        "the lock file is left alone"
    );
    assert!(
        !e2e_target_dir()
            .join("stream/flags-locked-0.2.0-x86_64-unknown-linux-gnu.jar")
            .exists()
    );

    // A dependency that is not in the local cache: with `--offline` cargo says so at once
    // instead of asking the registry.
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "[workspace]",
        "[dependencies]\ncargo-stream-no-such-crate-for-tests = \"1\"\n\n[workspace]",
    );
    std::fs::write(&manifest, text).unwrap();
    let out = run(
        &mut cargo_stream(&project, &["package", "--offline"]),
        MINUTE,
    )
    .failure();
    assert!(
        out.stderr.contains("offline") && out.stderr.contains("help: fetch the dependencies"),
        "{}",
        out.stderr
    );
}

#[test]
fn message_format_json_and_cargo_term_color() {
    let (_tmp, project) = temp_plain_crate(
        "flags-json",
        &[("src/main.rs", "fn main() { println!(\"json\"); }\n")],
    );
    // `--message-format json`: cargo's messages, then the result, one JSON object a line.
    let out = run(
        &mut cargo_stream(&project, &["package", "--message-format", "json"]),
        BUILD,
    )
    .success();
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let reasons: Vec<&str> = lines
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"compiler-artifact") && reasons.contains(&"build-finished"),
        "{reasons:?}"
    );
    assert_eq!(reasons.last(), Some(&"packaged"), "{reasons:?}");
    // A bad value is refused as cargo refuses it.
    let out = run(
        &mut cargo_stream(&project, &["package", "--message-format", "short,json"]),
        MINUTE,
    )
    .failure();
    assert!(out.stderr.contains("cannot be combined"), "{}", out.stderr);

    // CARGO_TERM_COLOR reaches cargo and our own statuses (no terminal here).
    std::fs::write(
        project.join("src/main.rs"),
        "fn main() { println!(\"colored\"); }\n",
    )
    .unwrap();
    let out = run(
        cargo_stream(&project, &["package"]).env("CARGO_TERM_COLOR", "always"),
        BUILD,
    )
    .success();
    assert!(
        out.stderr
            .contains("\u{1b}[1m\u{1b}[92m   Compiling\u{1b}[0m")
            || out
                .stderr
                .contains("\u{1b}[1m\u{1b}[32m   Compiling\u{1b}[0m"),
        "cargo's lines are colored:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("\u{1b}[1;32m    Packaged"),
        "ours too:\n{}",
        out.stderr
    );
    let out = run(
        cargo_stream(&project, &["package", "--color", "never"]).env("CARGO_TERM_COLOR", "always"),
        BUILD,
    )
    .success();
    assert!(
        !out.stderr.contains('\u{1b}'),
        "the flag wins:\n{}",
        out.stderr
    );
}

/// A stand-in `cargo-stream-runtime` (an old one, without the build script that sets the cfg,
/// or one whose build script ignores it) and a job on it.
fn job_on_fake_runtime(dir: &Path, build_rs: Option<&str>) {
    write_files(
        dir,
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"flags-old-rt\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ncargo-stream-runtime = { path = \"rt\" }\n\n[workspace]\n",
            ),
            (
                "src/main.rs",
                "fn main() { cargo_stream_runtime::hello(); }\n",
            ),
            (
                "rt/Cargo.toml",
                "[package]\nname = \"cargo-stream-runtime\"\nversion = \"0.0.1\"\nedition = \"2021\"\n",
            ),
            ("rt/src/lib.rs", "pub fn hello() {}\n"),
        ],
    );
    if let Some(build_rs) = build_rs {
        write_files(dir, &[("rt/build.rs", build_rs)]);
    }
}

#[test]
fn a_runtime_that_cannot_set_the_cluster_cfg_fails_the_packaging() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("flags-old-rt");
    let jar = e2e_target_dir().join("stream/flags-old-rt-0.1.0-x86_64-unknown-linux-gnu.jar");
    let _ = std::fs::remove_file(&jar);
    job_on_fake_runtime(&project, None);
    let out = run(&mut cargo_stream(&project, &["package"]), BUILD).failure();
    assert!(
        out.stderr.contains(
            "error: `cargo-stream-runtime v0.0.1` (" // its path follows
        ) && out
            .stderr
            .contains("cannot make a cluster build: it has no build script")
            && out
                .stderr
                .contains("help: point the job at a newer runtime"),
        "{}",
        out.stderr
    );
    // A build script that does not turn CARGO_STREAM_CLUSTER_BUILD into the cfg: the build
    // runs, and the packaging fails rather than write a manifest claiming a cluster build.
    job_on_fake_runtime(&project, Some("fn main() {}\n"));
    let out = run(&mut cargo_stream(&project, &["package"]), BUILD).failure();
    assert!(
        out.stderr
            .contains("error: the cluster build did not get `--cfg cargo_stream_cluster`: its build script did not set it"),
        "{}",
        out.stderr
    );
    assert!(!jar.exists(), "no artifact claims a cluster build");
}

/// `cargo stream new NAME` (the socket word count) in a new temporary folder: the folder
/// (removed on drop) and the crate.
fn new_job(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    run(&mut cargo_stream(tmp.path(), &["new", name]), MINUTE).success();
    let project = tmp.path().join(name);
    (tmp, project)
}

/// Starts the job's binary (no launcher, so no `CARGO_STREAM_DEPLOY_MODE` unless in `env`)
/// against a local server, checks that it counts, stops it and returns its stderr.
fn run_counting(binary: &Path, env: &[(&str, &str)]) -> String {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port().to_string();
    let mut job = Job::start(
        Command::new(binary)
            .args(["127.0.0.1", &port])
            .env_remove("CARGO_STREAM_DEPLOY_MODE")
            .envs(env.iter().copied()),
    );
    let (mut conn, _) = server.accept().unwrap();
    conn.write_all(b"bee bee\n").unwrap();
    job.wait_for(Duration::from_secs(30), |l| l == "(bee,2)");
    job.terminate(Duration::from_secs(30)).stderr
}

#[test]
fn package_after_cargo_build_release_recompiles_only_the_runtime_and_the_job() {
    let (_tmp, project) = new_job("flags-rebuild");
    run(&mut cargo_tool(&project, &["build", "--release"]), BUILD).success();
    let binary = e2e_target_dir().join("release/flags-rebuild");
    let main = std::fs::read_to_string(project.join("src/main.rs")).unwrap();
    let line = main
        .lines()
        .position(|l| l.contains(".master(\"local[2]\")"))
        .unwrap()
        + 1;
    let stderr = run_counting(&binary, &[]);
    assert!(
        !stderr.contains("ignoring the local master"),
        "a local build keeps its master:\n{stderr}"
    );
    // Started by a launcher (which sets `CARGO_STREAM_DEPLOY_MODE=cluster`), the same binary
    // ignores it, though it was not built by `package`.
    let stderr = run_counting(&binary, &[("CARGO_STREAM_DEPLOY_MODE", "cluster")]);
    let expected = format!(
        "ignoring the local master `local[2]` set in code at src/main.rs:{line}: this is a cluster run (`CARGO_STREAM_DEPLOY_MODE=cluster`)"
    );
    assert!(stderr.contains(&expected), "{expected}\nin:\n{stderr}");

    // Packaging right after: the lock file and the cache are enough (`--locked --offline`),
    // only the runtime (whose build script now sets the cfg) and the job recompile, and the
    // user's rustflags (empty CARGO_ENCODED_RUSTFLAGS, which makes cargo ignore every other
    // rustflags setting) change nothing.
    let out = run(
        cargo_stream(&project, &["package", "--json", "--locked", "--offline"])
            .env("CARGO_ENCODED_RUSTFLAGS", ""),
        BUILD,
    )
    .success();
    // The job always recompiles; the runtime does unless an earlier packaging in the shared
    // target directory already built it with the cfg (cargo keeps the host build and the
    // `--target` build apart). Nothing else may.
    let rebuilt = compiled(&out.stderr);
    let allowed = BTreeSet::from([
        "cargo-stream-runtime".to_owned(),
        "flags-rebuild".to_owned(),
    ]);
    assert!(
        rebuilt.contains("flags-rebuild") && rebuilt.is_subset(&allowed),
        "recompiled {rebuilt:?}, expected the job and at most the runtime:\n{}",
        out.stderr
    );
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(report["manifest"]["cluster_build"], true);
    assert_eq!(report["build_env"]["CARGO_STREAM_CLUSTER_BUILD"], "1");
    // The binary itself ignores the local master, and says where it was.
    let stderr = run_counting(&binary, &[]);
    let expected = format!(
        "ignoring the local master `local[2]` set in code at src/main.rs:{line}: this is a cluster run (built by `cargo stream package`)"
    );
    assert!(stderr.contains(&expected), "{expected}\nin:\n{stderr}");
    let _ = std::fs::remove_file(PathBuf::from(report["artifact"].as_str().unwrap()));
}

/// The host's target triple (`rustc -vV`).
fn host_triple() -> String {
    let out = run(Command::new("rustc").arg("-vV"), MINUTE).success();
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_owned()
}

/// issue 14: the user's own rustflags, from `target.<triple>.rustflags` in
/// `.cargo/config.toml` or from `CARGO_ENCODED_RUSTFLAGS`, reach the cluster build, and it is
/// still a cluster build: the binary has both the user's cfg and the runtime's. Through
/// rustflags (the old way) one of the two was lost. One project for both cases, with the same
/// flags, so that the second build reuses the first one's crates; in the `dev` profile, whose
/// crates build fastest.
#[test]
fn users_rustflags_are_kept_in_a_cluster_build() {
    let (_tmp, project) = new_job("flags-user");
    let main_rs = project.join("src/main.rs");
    let main = std::fs::read_to_string(&main_rs).unwrap().replacen(
        "fn main() -> ExitCode {\n",
        "fn main() -> ExitCode {\n    #[cfg(user_flag)]\n    eprintln!(\"built with the user's --cfg user_flag\");\n",
        1,
    );
    std::fs::write(&main_rs, main).unwrap();
    let binary = e2e_target_dir().join("debug/flags-user");
    let config = format!(
        "[target.{}]\nrustflags = [\"--cfg\", \"user_flag\"]\n",
        host_triple()
    );
    for (case, config, encoded) in [
        ("target.<triple>.rustflags", Some(config.as_str()), None),
        (
            "CARGO_ENCODED_RUSTFLAGS",
            None,
            Some("--cfg\u{1f}user_flag"),
        ),
    ] {
        let config_file = project.join(".cargo/config.toml");
        match config {
            Some(text) => write_files(&project, &[(".cargo/config.toml", text)]),
            None => std::fs::remove_file(&config_file).unwrap(),
        }
        let mut cmd = cargo_stream(&project, &["package", "--json", "--profile", "dev"]);
        match encoded {
            Some(flags) => cmd.env("CARGO_ENCODED_RUSTFLAGS", flags),
            None => cmd.env_remove("CARGO_ENCODED_RUSTFLAGS"),
        };
        let out = run(cmd.env_remove("RUSTFLAGS"), BUILD).success();
        let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        assert_eq!(report["manifest"]["cluster_build"], true, "{case}");
        let stderr = run_counting(&binary, &[]);
        assert!(
            stderr.contains("built with the user's --cfg user_flag"),
            "{case}: the user's flags are lost:\n{stderr}"
        );
        assert!(
            stderr.contains("ignoring the local master `local[2]`"),
            "{case}: not a cluster build:\n{stderr}"
        );
        let _ = std::fs::remove_file(PathBuf::from(report["artifact"].as_str().unwrap()));
    }
}
