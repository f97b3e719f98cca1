//! `cargo stream package`: the cluster build and its jar, inspected entry by entry, packaged
//! twice for reproducibility, and run with `java -jar` and with `run.sh`; and each bad input a
//! clear error that writes no artifact.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cargo_stream_tests::{
    Job, cargo as cargo_tool, cargo_stream, e2e_target_dir, run, temp_plain_crate, workspace_root,
};
use sha2::{Digest, Sha256};

const MINUTE: Duration = Duration::from_secs(60);
const BUILD: Duration = Duration::from_secs(900);

fn host() -> String {
    let out = Command::new("rustc").arg("-vV").output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap()
        .to_owned()
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn read_entry(zip: &mut zip::ZipArchive<std::fs::File>, name: &str) -> Vec<u8> {
    let mut entry = zip
        .by_name(name)
        .unwrap_or_else(|_| panic!("no `{name}` in the jar"));
    let mut data = Vec::new();
    entry.read_to_end(&mut data).unwrap();
    data
}

/// Starts `cmd` (a packaged word count) against a local server, checks that it counts, stops
/// it with SIGTERM and checks its exit code: 143, a requested stop, after a graceful one.
fn runs_word_count(cmd: &mut Command) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port().to_string();
    let mut job = Job::start(cmd.args(["127.0.0.1", &port]));
    let (mut conn, _) = server.accept().unwrap();
    conn.write_all(b"jar jar binks\n").unwrap();
    job.wait_for(Duration::from_secs(30), |l| l == "(jar,2)");
    let end = job.terminate(Duration::from_secs(30));
    assert_eq!(
        end.code,
        Some(143),
        "SIGTERM reaches the job, which stops gracefully\n{}",
        end.stderr
    );
    assert!(!end.stderr.contains("panicked"), "{}", end.stderr);
}

#[test]
fn socket_word_count_bundle_is_complete_reproducible_and_runs() {
    let tmp = tempfile::tempdir().unwrap();
    run(&mut cargo_stream(tmp.path(), &["new", "pkg-wc"]), MINUTE).success();
    let project = tmp.path().join("pkg-wc");

    let out = run(&mut cargo_stream(&project, &["package", "--json"]), BUILD).success();
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(report["reason"], "packaged");
    let jar = PathBuf::from(report["artifact"].as_str().unwrap());
    let expected = e2e_target_dir()
        .join("stream")
        .join(format!("pkg-wc-0.1.0-{}.jar", host()));
    assert_eq!(jar, expected);

    // The local master in src/main.rs is reported with its place, and the build is the
    // cluster build.
    let main = std::fs::read_to_string(project.join("src/main.rs")).unwrap();
    let line = main
        .lines()
        .position(|l| l.contains(".master(\"local[2]\")"))
        .unwrap()
        + 1;
    let note = format!("stripped for the cluster build: src/main.rs:{line} .master(\"local[2]\")");
    assert!(out.stderr.contains(&note), "{}", out.stderr);
    assert!(
        !out.stderr.contains("tests/word_counts.rs"),
        "tests are not shipped: {}",
        out.stderr
    );
    let command = report["build_command"].to_string();
    assert!(
        command.contains("--release") && !command.contains("rustflags"),
        "{command}"
    );
    assert_eq!(report["build_env"]["CARGO_STREAM_CLUSTER_BUILD"], "1");

    // The checksum file.
    let bytes = std::fs::read(&jar).unwrap();
    let sha_file = std::fs::read_to_string(format!("{}.sha256", jar.display())).unwrap();
    assert_eq!(
        sha_file,
        format!(
            "{}  {}\n",
            hex(&bytes),
            jar.file_name().unwrap().to_string_lossy()
        )
    );

    // The jar, entry by entry.
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&jar).unwrap()).unwrap();
    let names: Vec<String> = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().unwrap().to_string())
        .collect();
    assert_eq!(names[..2], ["META-INF/", "META-INF/MANIFEST.MF"]);
    let mut rest = names[2..].to_vec();
    rest.sort();
    assert_eq!(rest, names[2..], "entries are sorted");
    for needed in [
        "bin/pkg-wc",
        "cargostream/Launcher.class",
        "Stream.toml",
        "stream-manifest.json",
        "Cargo.lock",
        "run.sh",
        "spark-submit.sh",
        "ssh-launch.sh",
        "licenses/THIRD-PARTY.txt",
    ] {
        assert!(
            names.iter().any(|n| n == needed),
            "no {needed} in {names:?}"
        );
    }
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("licenses/rayon-") && n.contains("LICENSE")),
        "{names:?}"
    );
    for i in 0..zip.len() {
        let entry = zip.by_index(i).unwrap();
        let t = entry.last_modified().unwrap();
        assert_eq!(
            (t.year(), t.month(), t.day(), t.hour(), t.minute()),
            (1980, 1, 1, 0, 0),
            "fixed timestamps"
        );
    }
    for executable in ["bin/pkg-wc", "run.sh", "spark-submit.sh", "ssh-launch.sh"] {
        assert_eq!(
            zip.by_name(executable).unwrap().unix_mode().unwrap() & 0o777,
            0o755,
            "{executable}"
        );
    }

    // The submit scripts, filled in with the job's values, in the bundle and beside the jar;
    // only the copy beside the jar knows the jar's checksum.
    let jar_name = jar.file_name().unwrap().to_string_lossy().into_owned();
    let bundled = String::from_utf8(read_entry(&mut zip, "ssh-launch.sh")).unwrap();
    assert!(
        bundled.contains(&format!("JAR_FILE='{jar_name}'")) && bundled.contains("JAR_SHA256=''"),
        "{bundled}"
    );
    let scripts: Vec<PathBuf> = report["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| PathBuf::from(p.as_str().unwrap()))
        .collect();
    assert_eq!(
        scripts,
        [
            jar.with_file_name("pkg-wc-spark-submit.sh"),
            jar.with_file_name("pkg-wc-ssh-launch.sh")
        ]
    );
    for script in &scripts {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(script).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755, "{}", script.display());
    }
    let launcher = std::fs::read_to_string(&scripts[1]).unwrap();
    assert!(
        launcher.contains(&format!("JAR_SHA256='{}'", hex(&bytes))),
        "{launcher}"
    );
    let submit = std::fs::read_to_string(&scripts[0]).unwrap();
    assert!(
        submit.contains("APP_NAME='pkg-wc'")
            && submit.contains("MAIN_CLASS='cargostream.Launcher'")
            && submit.contains(&format!("JAR_FILE='{jar_name}'")),
        "{submit}"
    );

    let mf = String::from_utf8(read_entry(&mut zip, "META-INF/MANIFEST.MF")).unwrap();
    assert!(mf.starts_with("Manifest-Version: 1.0\r\n"), "{mf}");
    assert!(
        mf.contains("Main-Class: cargostream.Launcher\r\n")
            && mf.contains("Cargo-Stream-Binary: bin/pkg-wc\r\n"),
        "{mf}"
    );

    let config = String::from_utf8(read_entry(&mut zip, "Stream.toml")).unwrap();
    assert!(
        !config.contains("local[") && !config.contains("profile.local"),
        "no local profile:\n{config}"
    );
    assert!(config.contains("name = \"pkg-wc\""), "{config}");

    let manifest: serde_json::Value =
        serde_json::from_slice(&read_entry(&mut zip, "stream-manifest.json")).unwrap();
    assert_eq!(manifest["name"], "pkg-wc");
    assert_eq!(manifest["version"], "0.1.0");
    assert_eq!(manifest["target"], host());
    assert_eq!(manifest["runtime_version"], "0.1.0");
    assert_eq!(manifest["cluster_build"], true);
    assert_eq!(manifest["stripped_local_masters"][0]["file"], "src/main.rs");
    assert_eq!(manifest["stripped_local_masters"][0]["line"], line);
    if host().contains("linux-gnu") {
        assert!(
            manifest["glibc"].as_str().unwrap().starts_with("2."),
            "{}",
            manifest["glibc"]
        );
    }
    let entries = manifest["entries"].as_object().unwrap();
    assert_eq!(
        entries.len(),
        names.len() - 2,
        "every entry but META-INF/ and the manifest itself"
    );
    for (name, info) in entries {
        assert_eq!(
            info["sha256"].as_str().unwrap(),
            hex(&read_entry(&mut zip, name)),
            "{name}"
        );
    }
    let third: Vec<&str> = manifest["third_party"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(
        third.contains(&"rayon") && third.contains(&"cargo-stream-runtime"),
        "{third:?}"
    );
    assert!(
        !third.contains(&"syn"),
        "proc macros are not linked in: {third:?}"
    );

    // The same inputs give the same bytes. Timed, with the up-to-date build alone, for the
    // cost of packaging beyond `cargo build` (printed for the README's number; a wall clock is
    // not asserted: another test may rebuild the shared runtime in between).
    let started = std::time::Instant::now();
    run(&mut cargo_stream(&project, &["package", "-q"]), BUILD).success();
    let package_time = started.elapsed();
    let started = std::time::Instant::now();
    run(
        cargo_tool(&project, &["build", "--release", "-q"]).env("CARGO_STREAM_CLUSTER_BUILD", "1"),
        BUILD,
    )
    .success();
    let overhead = package_time.saturating_sub(started.elapsed());
    let binary_size = zip.by_name("bin/pkg-wc").unwrap().size();
    eprintln!(
        "package beyond cargo build: {overhead:?}; artifact {} bytes for a {binary_size}-byte binary",
        bytes.len()
    );
    let again = std::fs::read(&jar).unwrap();
    if again != bytes {
        let mut zip2 = zip::ZipArchive::new(std::fs::File::open(&jar).unwrap()).unwrap();
        let manifest2: serde_json::Value =
            serde_json::from_slice(&read_entry(&mut zip2, "stream-manifest.json")).unwrap();
        let changed: Vec<&String> = entries
            .iter()
            .filter(|(name, info)| manifest2["entries"][name.as_str()] != **info)
            .map(|(name, _)| name)
            .collect();
        panic!("packaging twice gave different bytes; entries that changed: {changed:?}");
    }

    // It runs with `java -jar`, arguments passed, SIGTERM forwarded, exit code kept.
    runs_word_count(Command::new("java").arg("-jar").arg(&jar));
    // And without Java: `run.sh` on the jar, and the unzipped bundle's own `run.sh`.
    runs_word_count(
        Command::new("sh")
            .arg(workspace_root().join("submit-scripts/run.sh"))
            .arg(&jar),
    );
    let unzipped = tmp.path().join("unzipped");
    unzip(&jar, &unzipped);
    runs_word_count(&mut Command::new(unzipped.join("run.sh")));
}

/// Extracts the jar as `unzip` would, Unix modes included.
pub(crate) fn unzip(jar: &Path, dest: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(jar).unwrap()).unwrap();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        let path = dest.join(
            entry
                .enclosed_name()
                .expect("entries stay inside the bundle"),
        );
        if entry.is_dir() {
            std::fs::create_dir_all(&path).unwrap();
            continue;
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        std::fs::write(&path, data).unwrap();
        if let Some(mode) = entry.unix_mode() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o777)).unwrap();
        }
    }
}

#[test]
fn launcher_exits_with_the_jobs_code_and_passes_args_and_env() {
    let (_tmp, project) = temp_plain_crate(
        "exit-code",
        &[(
            "src/main.rs",
            r#"fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("args={args:?}");
    println!("mode={}", std::env::var("CARGO_STREAM_DEPLOY_MODE").unwrap_or_default());
    println!("custom={}", std::env::var("CUSTOM").unwrap_or_default());
    println!("renamed={}", std::env::var("RENAMED").unwrap_or_default());
    println!("prefixed={}", std::env::var("SPARK_CARGO_STREAM_ENV_RENAMED").is_ok());
    std::process::exit(args.first().and_then(|a| a.parse().ok()).unwrap_or(0));
}
"#,
        )],
    );
    let out = run(&mut cargo_stream(&project, &["package", "--json"]), BUILD).success();
    assert!(
        out.stderr
            .contains("does not depend on cargo-stream-runtime"),
        "{}",
        out.stderr
    );
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let jar = report["artifact"].as_str().unwrap();
    let ran = run(
        Command::new("java")
            .args(["-jar", jar, "7", "two words"])
            .env("CUSTOM", "kept")
            // How spark-ssh hands a job variable to the driver (issue 14: never a property on
            // a command line): the launcher gives it to the job under its own name.
            .env("SPARK_CARGO_STREAM_ENV_RENAMED", "s3cr3t"),
        MINUTE,
    );
    assert_eq!(ran.code, Some(7), "{}", ran.stderr);
    assert!(
        ran.stdout.contains(r#"args=["7", "two words"]"#),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("mode=cluster") && ran.stdout.contains("custom=kept"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("renamed=s3cr3t\n") && ran.stdout.contains("prefixed=false"),
        "{}",
        ran.stdout
    );
}

#[test]
fn launcher_class_matches_its_source() {
    let tmp = tempfile::tempdir().unwrap();
    let source = workspace_root().join("cli/launcher/cargostream/Launcher.java");
    let out = Command::new("javac")
        .args(["--release", "8", "-d"])
        .arg(tmp.path())
        .arg(&source)
        .output();
    let out = out.expect("javac is needed to check the launcher (Debian: openjdk-17-jdk-headless)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = std::fs::read(tmp.path().join("cargostream/Launcher.class")).unwrap();
    let committed =
        std::fs::read(workspace_root().join("cli/launcher/cargostream/Launcher.class")).unwrap();
    assert!(
        built == committed,
        "cli/launcher/cargostream/Launcher.class is stale: run `javac --release 8 -d cli/launcher cli/launcher/cargostream/Launcher.java`"
    );
    let classes = std::fs::read_dir(tmp.path().join("cargostream"))
        .unwrap()
        .count();
    assert_eq!(classes, 1, "the launcher must compile to one class file");
}

#[test]
fn dry_run_reports_and_writes_nothing() {
    let (_tmp, project) = temp_plain_crate("dry", &[("src/main.rs", "fn main() {}\n")]);
    let out = run(
        &mut cargo_stream(&project, &["package", "--dry-run", "--json"]),
        MINUTE,
    )
    .success();
    let plan: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(plan["reason"], "package-plan");
    assert!(
        plan["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "bin/dry")
    );
    assert!(!Path::new(plan["artifact"].as_str().unwrap()).exists());
    for script in plan["scripts"].as_array().unwrap() {
        assert!(!Path::new(script.as_str().unwrap()).exists(), "{script}");
    }
    let entries = plan["entries"].to_string();
    assert!(
        entries.contains("\"spark-submit.sh\"") && entries.contains("\"ssh-launch.sh\""),
        "{entries}"
    );
    assert!(
        !e2e_target_dir().join("release/dry").exists(),
        "nothing was built"
    );
}

/// The artifacts of package `name` in the shared output folder, with their contents.
fn artifacts(name: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(e2e_target_dir().join("stream")) {
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with(&format!("{name}-")) {
                out.push((file, std::fs::read(entry.path()).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

/// Removes the artifacts of package `name`.
fn clean(name: &str) {
    for (file, _) in artifacts(name) {
        let _ = std::fs::remove_file(e2e_target_dir().join("stream").join(file));
    }
}

/// Runs `cargo stream package ARGS` in `dir`, expects a failure whose stderr has each of
/// `expected`, and checks that no artifact of package `name` was written or changed.
fn rejected(dir: &Path, name: &str, args: &[&str], expected: &[&str]) -> String {
    let before = artifacts(name);
    let out = run(
        &mut cargo_stream(dir, &[&["package"], args].concat()),
        BUILD,
    )
    .failure();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    for text in expected {
        assert!(
            out.stderr.contains(text),
            "expected {text:?} in\n{}",
            out.stderr
        );
    }
    assert!(
        artifacts(name) == before,
        "a failed `package` wrote an artifact"
    );
    out.stderr
}

#[test]
fn outside_a_crate_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    rejected(
        tmp.path(),
        "none",
        &[],
        &[
            "error: failed to read the job's `cargo metadata`",
            "Caused by:",
            "could not find `Cargo.toml`",
            "help: run `cargo stream package` in a job's folder",
        ],
    );
}

#[test]
fn several_binaries_need_bin() {
    let (_tmp, project) = temp_plain_crate(
        "two-bins",
        &[
            ("src/bin/ingest.rs", "fn main() {}\n"),
            ("src/bin/report.rs", "fn main() {}\n"),
        ],
    );
    rejected(
        &project,
        "two-bins",
        &[],
        &[
            "error: package `two-bins` has several binaries: `ingest`, `report`",
            "help: pass `--bin`",
        ],
    );
    rejected(
        &project,
        "two-bins",
        &["--bin", "nope"],
        &[
            "no binary named `nope`",
            "help: its binaries are `ingest`, `report`",
        ],
    );
    // With --bin it packages.
    let out = run(
        &mut cargo_stream(&project, &["package", "--bin", "report", "--json"]),
        BUILD,
    )
    .success();
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert!(
        report["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "bin/report")
    );
    clean(report["manifest"]["name"].as_str().unwrap());
}

#[test]
fn failing_build_shows_cargos_errors() {
    let (_tmp, project) = temp_plain_crate(
        "broken-job",
        &[("src/main.rs", "fn main() { let x: u32 = \"text\"; }\n")],
    );
    let stderr = rejected(
        &project,
        "broken-job",
        &[],
        &[
            "error[E0308]: mismatched types",
            "error: failed to build `broken-job` for the cluster",
            "help: fix the errors cargo printed above",
        ],
    );
    assert!(stderr.contains("src/main.rs:1"), "{stderr}");
}

#[test]
fn colliding_includes_are_errors() {
    let (_tmp, project) = temp_plain_crate(
        "incl",
        &[
            ("src/main.rs", "fn main() {}\n"),
            ("a.conf", "a"),
            ("b.conf", "b"),
        ],
    );
    rejected(
        &project,
        "incl",
        &[
            "--include",
            "conf/app.conf:a.conf",
            "--include",
            "conf/app.conf:b.conf",
        ],
        &[
            "error: `--include` entries collide at `conf/app.conf`",
            "help: give each `--include` a different DEST",
        ],
    );
    rejected(
        &project,
        "incl",
        &["--include", "Stream.toml:a.conf"],
        &["collides with the bundle's own `Stream.toml`"],
    );
    let out = run(
        &mut cargo_stream(
            &project,
            &[
                "package",
                "--include",
                "x:a.conf",
                "--include",
                "../up:b.conf",
            ],
        ),
        MINUTE,
    )
    .failure();
    assert!(
        out.stderr
            .contains("must be a relative path inside the bundle"),
        "{}",
        out.stderr
    );
    // Apart, they are bundled.
    let out = run(
        &mut cargo_stream(
            &project,
            &[
                "package",
                "--include",
                "conf/a.conf:a.conf",
                "--include",
                "conf:b.conf",
                "--json",
            ],
        ),
        BUILD,
    );
    let out = out.success();
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let entries = report["entries"].to_string();
    assert!(
        entries.contains("\"conf/a.conf\"") && entries.contains("\"conf\""),
        "{entries}"
    );
    clean(report["manifest"]["name"].as_str().unwrap());
}

#[test]
fn unwritable_output_folder_is_an_error() {
    let (tmp, project) = temp_plain_crate("nowrite", &[("src/main.rs", "fn main() {}\n")]);
    // A file where the output folder should be: unwritable even for root.
    let target = tmp.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("stream"), "in the way").unwrap();
    let out = run(
        cargo_stream(&project, &["package"]).env("CARGO_TARGET_DIR", &target),
        BUILD,
    )
    .failure();
    assert!(
        out.stderr
            .contains("error: failed to create the output folder"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("help: make the target folder writable"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(target.join("stream")).unwrap(),
        "in the way"
    );
}

#[test]
fn json_errors_go_to_stdout_too() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(
        &mut cargo_stream(tmp.path(), &["package", "--json"]),
        MINUTE,
    )
    .failure();
    let error: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(error["reason"], "error");
    assert_eq!(
        error["message"],
        "failed to read the job's `cargo metadata`"
    );
    assert!(
        error["causes"][0]
            .as_str()
            .unwrap()
            .contains("could not find `Cargo.toml`"),
        "{error}"
    );
    assert!(
        error["help"].as_str().unwrap().contains("--manifest-path"),
        "{error}"
    );
    assert!(
        out.stderr
            .starts_with("error: failed to read the job's `cargo metadata`"),
        "{}",
        out.stderr
    );
}

#[test]
fn settings_come_in_layers() {
    let (_tmp, project) = temp_plain_crate(
        "layers",
        &[
            ("src/bin/ingest.rs", "fn main() {}\n"),
            ("src/bin/report.rs", "fn main() {}\n"),
            (
                "Stream.toml",
                "[package]\nbin = \"report\"\ninclude = [\"conf/app.conf:app.conf\"]\n",
            ),
            ("app.conf", "from stream.toml\n"),
        ],
    );
    let bin_of = |out: &cargo_stream_tests::Run| -> Vec<String> {
        let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        let entries = report["entries"].as_array().unwrap();
        entries
            .iter()
            .map(|e| e.as_str().unwrap().to_owned())
            .filter(|e| e.starts_with("bin/") || e.starts_with("conf/"))
            .collect()
    };
    // Stream.toml names the binary and an include (SRC relative to the package).
    let out = run(
        &mut cargo_stream(&project, &["package", "--dry-run", "--json"]),
        MINUTE,
    )
    .success();
    assert_eq!(bin_of(&out), ["bin/report", "conf/app.conf"]);
    // The environment beats Stream.toml...
    let out = run(
        cargo_stream(&project, &["package", "--dry-run", "--json"])
            .env("CARGO_STREAM_BIN", "ingest"),
        MINUTE,
    )
    .success();
    assert_eq!(bin_of(&out), ["bin/ingest", "conf/app.conf"]);
    // ...and the flags beat the environment.
    let out = run(
        cargo_stream(
            &project,
            &["package", "--dry-run", "--json", "--bin", "report"],
        )
        .env("CARGO_STREAM_BIN", "ingest"),
        MINUTE,
    )
    .success();
    assert_eq!(bin_of(&out), ["bin/report", "conf/app.conf"]);
    // A typo in a layer is an error that names it.
    std::fs::write(
        project.join("Stream.toml"),
        "[package]\nbins = \"report\"\n",
    )
    .unwrap();
    let out = run(
        &mut cargo_stream(&project, &["package", "--dry-run"]),
        MINUTE,
    )
    .failure();
    assert!(out.stderr.contains("bad `[package]` in"), "{}", out.stderr);
    assert!(
        out.stderr.contains("unknown field `bins`"),
        "{}",
        out.stderr
    );
}

#[test]
fn bundle_runs_under_spark_submit() {
    // Spark from PyPI, cached (`tests/support/install-pyspark.sh` prints its SPARK_HOME).
    let install = workspace_root().join("tests/support/install-pyspark.sh");
    let out = run(Command::new("bash").arg(&install), Duration::from_secs(900)).success();
    let spark_home = PathBuf::from(out.stdout.trim());
    let tmp = tempfile::tempdir().unwrap();
    run(&mut cargo_stream(tmp.path(), &["new", "spark-wc"]), MINUTE).success();
    let out = run(
        &mut cargo_stream(&tmp.path().join("spark-wc"), &["package", "--json"]),
        BUILD,
    )
    .success();
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let jar = report["artifact"].as_str().unwrap();
    let mut submit = Command::new(spark_home.join("bin/spark-submit"));
    submit
        .args([
            "--master",
            "local[2]",
            "--class",
            "cargostream.Launcher",
            jar,
        ])
        .env("SPARK_HOME", &spark_home)
        .env("SPARK_LOCAL_IP", "127.0.0.1");
    runs_word_count(&mut submit);
}

#[test]
fn launcher_refuses_entries_that_escape_its_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let jar = tmp.path().join("evil.jar");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&jar).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    let launcher =
        std::fs::read(workspace_root().join("cli/launcher/cargostream/Launcher.class")).unwrap();
    let manifest = "Manifest-Version: 1.0\r\nMain-Class: cargostream.Launcher\r\nCargo-Stream-Binary: bin/job\r\n\r\n";
    // The launcher extracts into `<tmp>/java/cargo-stream-*/`: this name lands in `<tmp>`.
    let escaping = "../../escaped.txt".to_owned();
    for (name, data) in [
        ("META-INF/MANIFEST.MF", manifest.as_bytes()),
        ("cargostream/Launcher.class", &launcher[..]),
        ("bin/job", b"#!/bin/sh\necho ran\n"),
        (escaping.as_str(), b"should never be written"),
    ] {
        zip.start_file(name, options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
    let out = run(
        Command::new("java")
            .arg("-jar")
            .arg(&jar)
            .env("TMPDIR", tmp.path()),
        MINUTE,
    );
    assert_ne!(out.code, Some(0), "{}", out.stdout);
    assert!(
        out.stderr.contains("refusing the jar entry"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("ran"), "the job must not run");
    let written: Vec<_> = walk_names(tmp.path());
    assert!(
        !written.iter().any(|n| n.ends_with("escaped.txt")),
        "{written:?}"
    );
}

fn walk_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(entry.path().display().to_string());
        if entry.path().is_dir() {
            out.extend(walk_names(&entry.path()));
        }
    }
    out
}

#[test]
fn on_a_terminal_package_asks_which_binary() {
    let (_tmp, project) = temp_plain_crate(
        "ask-bin",
        &[
            ("src/bin/first.rs", "fn main() {}\n"),
            ("src/bin/second.rs", "fn main() {}\n"),
        ],
    );
    let out = crate::new::on_a_terminal(&project, "package --dry-run --color never", "2\n");
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(
        out.stdout.contains("2) second") && out.stdout.contains("bin/second"),
        "{}",
        out.stdout
    );
}

/// issue 14: `--include` never follows a symbolic link, so a link in an included folder cannot
/// pull a private key (or any file the user can read) into a bundle shipped to a cluster.
#[test]
fn included_symlinks_are_refused() {
    let (tmp, project) = temp_plain_crate(
        "links",
        &[("src/main.rs", "fn main() {}\n"), ("conf/app.conf", "a")],
    );
    let secret = tmp.path().join("id_ed25519");
    std::fs::write(&secret, "PRIVATE KEY").unwrap();
    std::os::unix::fs::symlink(&secret, project.join("conf/key")).unwrap();
    std::os::unix::fs::symlink(&secret, project.join("key-link")).unwrap();
    let stderr = rejected(
        &project,
        "links",
        &["--include", "conf:conf"],
        &[
            "conf/key` is a symbolic link (to `",
            "`--include` does not follow links",
            "help: include the file it points to by its own path",
        ],
    );
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
    rejected(
        &project,
        "links",
        &["--include", "conf/key:key-link"],
        &["key-link` is a symbolic link"],
    );
}
