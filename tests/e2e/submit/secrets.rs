//! issue 14: the job's `--env` values are secrets. On every backend (a real Spark master and
//! worker through `spark-rest` and through `spark-ssh` over a real sshd, a plain SSH host, a
//! real Slurm through slurmrestd) the value must reach the job (read in the job process's own
//! `/proc/PID/environ`) and appear nowhere else: not in the record file, not in `--json`
//! output, not in `-v` output, not on the command line of any process of this machine (where
//! every server runs), and not in the servers' logs.

use std::path::Path;
use std::time::{Duration, Instant};

use cargo_stream_tests::client::Client;
use cargo_stream_tests::feed::TextFeed;
use cargo_stream_tests::slurm::Slurm;
use cargo_stream_tests::spark::SparkCluster;
use cargo_stream_tests::sshd::Sshd;
use cargo_stream_tests::{Run, jobs, snapshot};

const MINUTE: Duration = Duration::from_secs(60);

/// The name of the secret variable the tests give the job.
const NAME: &str = "CARGO_STREAM_E2E_SECRET";

/// A value no other process of the machine holds.
fn secret_value(backend: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("s3cr3t-{backend}-{}-{nanos}", std::process::id())
}

/// The pids and command lines of every process whose command line holds `needle`.
fn command_lines_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(bytes) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let line = String::from_utf8_lossy(&bytes).replace('\0', " ");
        if line.contains(needle) {
            found.push(format!("{}: {line}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

/// Waits (a minute at most) for the job's own process (its binary, `bin/running-wc`) to run
/// with `NAME=value` in its environment; returns its pid.
fn job_sees(value: &str) -> u32 {
    let wanted = format!("{NAME}={value}");
    let deadline = Instant::now() + MINUTE;
    let mut seen = Vec::new();
    loop {
        seen.clear();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let exe = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            if !String::from_utf8_lossy(exe).ends_with("bin/running-wc") {
                continue;
            }
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            let names: Vec<String> = environ
                .split(|b| *b == 0)
                .filter_map(|var| var.split(|b| *b == b'=').next())
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .collect();
            seen.push(format!("{pid}: {}", names.join(" ")));
            if environ
                .split(|b| *b == 0)
                .any(|var| var == wanted.as_bytes())
            {
                return pid;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no `bin/running-wc` process with {NAME} in its environment within a minute; \
             the job's processes and their variables:\n{}",
            seen.join("\n")
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The files under `dir` that hold `value`.
fn files_with(dir: &Path, value: &str) -> Vec<String> {
    snapshot(dir)
        .into_iter()
        .filter(|(_, bytes)| String::from_utf8_lossy(bytes).contains(value))
        .map(|(name, _)| format!("{}/{name}", dir.display()))
        .collect()
}

/// Submits the running word count to `cluster` with `-v --json --env NAME=value`, checks that
/// the job sees the value and that it shows nowhere else (`logs`: the servers' log folders),
/// then kills the job; returns its ID.
fn submit_keeping_secret(client: &Client, cluster: &str, backend: &str, logs: &[&Path]) -> String {
    let value = secret_value(backend);
    let feed = TextFeed::start("secret word count");
    let port = feed.port.to_string();
    let env = format!("{NAME}={value}");
    let (out, id): (Run, String) = client.submit_word_count(cluster, &port, &["-v", "--env", &env]);
    let job = job_sees(&value);
    let shown = format!("{}\n{}", out.stdout, out.stderr);
    assert!(
        !shown.contains(&value),
        "{backend}: submit showed the value:\n{shown}"
    );
    assert!(
        out.stdout.contains(&format!("\"{NAME}\":\"***\"")) || !out.stdout.contains(NAME),
        "{backend}: {}",
        out.stdout
    );
    let lines = command_lines_with(&value);
    assert!(
        lines.is_empty(),
        "{backend}: the value is on a command line (job pid {job}):\n{}",
        lines.join("\n")
    );
    let record = std::fs::read_to_string(client.dir().join(format!("state/{id}.json"))).unwrap();
    assert!(
        !record.contains(&value),
        "{backend}: the record holds the value:\n{record}"
    );
    assert!(
        record.contains(&format!("\"{NAME}\": \"***\"")),
        "{backend}: {record}"
    );
    for (args, what) in [
        (vec!["status", id.as_str(), "--json"], "status --json"),
        (vec!["list", "--json"], "list --json"),
    ] {
        let out = client.run(&args).success();
        assert!(
            !out.stdout.contains(&value),
            "{backend}: {what}: {}",
            out.stdout
        );
    }
    client.wait_for_log(&id, "(secret,", MINUTE);
    let killed = client.run(&["-v", "kill", &id]).success();
    assert!(!killed.stderr.contains(&value), "{}", killed.stderr);
    for dir in logs {
        let found = files_with(dir, &value);
        assert!(
            found.is_empty(),
            "{backend}: the value is logged in {found:?}"
        );
    }
    id
}

/// The permission bits of `path`.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// A jar that `submit` takes for a bundle, with an entry that would land outside the folder
/// it is unpacked into.
fn escaping_jar(path: &Path) {
    use std::io::Write as _;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    for (name, data) in [
        (
            "META-INF/MANIFEST.MF",
            "Manifest-Version: 1.0\r\nCargo-Stream-Binary: bin/x\r\n",
        ),
        ("stream-manifest.json", r#"{"name":"evil"}"#),
        ("bin/x", "#!/bin/sh\n"),
        ("../../escaped-by-the-jar", "owned\n"),
    ] {
        zip.start_file(name, options).unwrap();
        zip.write_all(data.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn spark_env_values_stay_secret() {
    jobs::running_word_count();
    let cluster = SparkCluster::start(None);
    let sshd = Sshd::start();
    let gateway = super::spark_ssh::Gateway::new(&cluster, &sshd);
    let client = Client::new();
    client.set_clusters(&format!(
        "{}\n{}",
        gateway.profile,
        super::spark::profile("rest", &cluster, "")
    ));
    // The master's and worker's logs, the drivers' folders (Spark's `Launch Command` header)
    // and the gateway's sshd log.
    let logs = [cluster.dir(), sshd.scratch()];
    submit_keeping_secret(&client, "gateway", "spark-ssh", &logs);
    submit_keeping_secret(&client, "rest", "spark-rest", &logs);
}

#[test]
fn ssh_and_slurm_env_values_stay_secret() {
    jobs::running_word_count();
    let sshd = Sshd::start();
    let slurm = Slurm::start();
    let client = Client::new();
    let token = client.dir().join("slurm-token");
    std::fs::write(&token, slurm.token()).unwrap();
    client.set_clusters(&format!(
        "{}\n{}",
        sshd.profile("box"),
        slurm.profile("hpc", &format!("token-file = \"{}\"\n", token.display()))
    ));
    let id = submit_keeping_secret(&client, "box", "ssh", &[sshd.scratch(), sshd.home()]);
    // The job's folder and its logs are the user's alone (umask 077).
    let dir = sshd.home().join("cargo-stream").join(&id);
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    assert_eq!(mode(&dir.join("stdout")), 0o600);
    assert_eq!(mode(&dir.join("stderr")), 0o600);
    let id = submit_keeping_secret(&client, "hpc", "slurm", &[&slurm.shared_dir()]);
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(client.dir().join(format!("state/{id}.json"))).unwrap(),
    )
    .unwrap();
    let dir = record["data"]["job_dir"]
        .as_str()
        .unwrap_or_else(|| panic!("{record}"));
    assert_eq!(mode(Path::new(dir)), 0o700, "{dir}");

    // A jar whose entry would escape the job's folder is refused before anything is staged.
    let evil = client.dir().join("evil.jar");
    escaping_jar(&evil);
    let staged =
        |c: &Client| snapshot(&slurm.shared_dir()).len() + c.run(&["list", "--json"]).stdout.len();
    let before = staged(&client);
    let out = client
        .submit("hpc", evil.to_str().unwrap(), &[], &[])
        .failure();
    assert!(
        out.stderr.contains("refusing to unpack")
            && out.stderr.contains("../../escaped-by-the-jar"),
        "{}",
        out.stderr
    );
    assert_eq!(staged(&client), before, "nothing staged, nothing recorded");
    // Slurm's daemons' logs (its state and spool folders keep the job's environment for the
    // job's own use: slurmctld's and slurmd's business, readable by root and the user only).
    let root = slurm.conf().parent().unwrap().to_owned();
    for log in [
        "slurmctld.log",
        "slurmd.log",
        "slurmctld.out",
        "slurmd.out",
        "slurmrestd.out",
    ] {
        let text = std::fs::read_to_string(root.join(log)).unwrap_or_default();
        assert!(!text.contains("s3cr3t-slurm"), "the value is in {log}");
    }
}

/// issue 14: a job's `Stream.toml` (a cloned repository's) cannot redirect a profile that the
/// user's own file defines: changing its `master` (or `kind`, `upload`, ...) is refused, naming
/// both files and the key; the job's shape (`driver-memory`, `env`, ...) it may still set.
#[test]
fn project_file_cannot_redirect_a_user_profile() {
    let client = Client::new();
    client.set_clusters(
        "[clusters.prod]\nkind = \"spark-rest\"\nmaster = \"spark://127.0.0.1:6066\"\njwt-secret-env = \"PROD_JWT\"\nupload = { to = \"dir\", path = \"/shared/jobs\" }\n",
    );
    let project = client.dir().join("cloned");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        "[package]\nname = \"cloned\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    )
    .unwrap();
    let plan = |stream_toml: &str| {
        std::fs::write(project.join("Stream.toml"), stream_toml).unwrap();
        let mut cmd = client.cmd(&[
            "submit",
            "-c",
            "prod",
            "--artifact",
            "x.jar",
            "--dry-run",
            "--json",
        ]);
        cmd.current_dir(&project);
        cargo_stream_tests::run(&mut cmd, MINUTE)
    };
    for (key, table) in [
        ("master", "master = \"spark://attacker.example:6066\"\n"),
        (
            "upload",
            "upload = { to = \"dir\", path = \"/tmp/elsewhere\" }\n",
        ),
        (
            "master-ui",
            "master-ui = \"http://attacker.example:8080\"\n",
        ),
        ("kind", "kind = \"ssh\"\nhost = \"attacker.example\"\n"),
    ] {
        let out = plan(&format!("[clusters.prod]\ndriver-memory = \"1g\"\n{table}")).failure();
        for needle in [
            "cluster `prod` is defined in your `",
            "clusters.toml`",
            "cloned/Stream.toml",
            &format!("sets its `{key}`"),
            &format!("help: remove `{key}` from `[clusters.prod]`"),
        ] {
            assert!(
                out.stderr.contains(needle),
                "{key}: no {needle:?} in\n{}",
                out.stderr
            );
        }
    }
    // The job's shape is the project's to set.
    let out =
        plan("[clusters.prod]\ndriver-memory = \"1g\"\nenv = { RUST_LOG = \"info\" }\n").success();
    let plan: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(plan["job"]["driver_memory"], "1g", "{plan}");
    // And a profile only the project defines is the project's, `master` and all.
    std::fs::write(
        project.join("Stream.toml"),
        "[clusters.staging]\nkind = \"spark-rest\"\nmaster = \"spark://staging:6066\"\nupload = { to = \"dir\", path = \"/s\" }\n",
    )
    .unwrap();
    let mut cmd = client.cmd(&[
        "submit",
        "-c",
        "staging",
        "--artifact",
        "x.jar",
        "--dry-run",
        "--json",
    ]);
    cmd.current_dir(&project);
    let out = cargo_stream_tests::run(&mut cmd, MINUTE).success();
    assert!(
        out.stdout.contains("\"kind\":\"spark-rest\""),
        "{}",
        out.stdout
    );
}
