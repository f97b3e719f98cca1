//! The `submit-scripts/` that `cargo stream package` fills in and writes beside the jar, run
//! by hand as a user would: `NAME-spark-submit.sh` against a real Spark standalone master and
//! worker (through the REST gateway and the legacy one), reading the driver's output in the
//! worker's folder; and `NAME-ssh-launch.sh` against a real sshd with a throwaway user.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cargo_stream_tests::spark::SparkCluster;
use cargo_stream_tests::sshd::Sshd;
use cargo_stream_tests::{jobs, run};

/// The copy of `script` that `package` wrote beside the jar of `package`, checked to be
/// executable.
fn beside(jar: &Path, package: &str, script: &str) -> PathBuf {
    let path = jar.with_file_name(format!("{package}-{script}"));
    let mode = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("no {}: {e}", path.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "{} is executable", path.display());
    path
}

/// Waits for the driver's `stdout` in the worker's folder to hold `line`; returns it.
fn driver_stdout(cluster: &SparkCluster, driver: &str, line: &str) -> String {
    let file = cluster.work_dir.join(driver).join("stdout");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if text.lines().any(|l| l == line) {
            return text;
        }
        if Instant::now() > deadline {
            let stderr = std::fs::read_to_string(cluster.work_dir.join(driver).join("stderr"))
                .unwrap_or_default();
            panic!(
                "no {line:?} in {} within 120 s\n--- stdout\n{text}\n--- stderr\n{stderr}\n{}",
                file.display(),
                cluster.daemon_logs()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn spark_submit_script_runs_the_job_on_a_standalone_cluster() {
    let jar = jobs::finite();
    let script = beside(jar, "finite-job", "spark-submit.sh");
    let cluster = SparkCluster::start(None);
    // Through the REST gateway (on a port other than 6066, hence `--rest`), then through the
    // legacy gateway, each with its own job arguments.
    for (master, rest, batches) in [
        (&cluster.rest_url, true, "3"),
        (&cluster.master_url, false, "2"),
    ] {
        let mut cmd = Command::new(&script);
        cmd.args(["--master", master, "--driver-memory", "512m"]);
        if rest {
            // Supervised: a driver that ends well is not restarted.
            cmd.args(["--rest", "--supervise"]);
        }
        cmd.args(["--", batches])
            .env("SPARK_HOME", &cluster.spark_home)
            .env("SPARK_LOCAL_IP", "127.0.0.1");
        let out = run(&mut cmd, Duration::from_secs(180)).success();
        let driver = out.stdout.trim();
        assert!(
            driver.starts_with("driver-") && !driver.contains('\n'),
            "the driver ID alone on stdout: {:?}\n{}",
            out.stdout,
            out.stderr
        );
        // spark-submit's own messages went on to stderr, and show which gateway took it.
        let gateway = if rest {
            "RestSubmissionClient"
        } else {
            "ClientEndpoint"
        };
        assert!(
            out.stderr.contains(gateway) && out.stderr.contains(driver),
            "{}",
            out.stderr
        );
        let stdout = driver_stdout(&cluster, driver, &format!("done after {batches} batches"));
        assert!(stdout.contains("batch 0"), "{stdout}");
    }
}

#[test]
fn spark_submit_script_names_what_is_missing() {
    let jar = jobs::finite();
    let script = beside(jar, "finite-job", "spark-submit.sh");
    let out = run(
        Command::new(&script)
            .args(["--master", "spark://127.0.0.1:7077"])
            .env_remove("SPARK_HOME")
            .env("PATH", "/usr/bin:/bin"),
        Duration::from_secs(30),
    )
    .failure();
    assert!(
        out.stderr
            .contains("spark-submit not found: set SPARK_HOME"),
        "{}",
        out.stderr
    );
    let out = run(
        Command::new(&script).args(["--master", "local[2]"]),
        Duration::from_secs(30),
    )
    .failure();
    assert!(
        out.stderr.contains("is not a standalone master URL"),
        "{}",
        out.stderr
    );
}

/// issue 14: the script keeps spark-submit's exit code in a file of its own made by `mktemp`,
/// never at a name derived from another (`$log.rc`) that another user of `/tmp` could create
/// first as a link to a file of ours. The fake `spark-submit` plays that user: it plants such a
/// link beside every file of the script's, and the file linked to must stay untouched.
#[test]
fn spark_submit_script_writes_no_predictable_temporary_file() {
    let jar = jobs::finite();
    let script = beside(jar, "finite-job", "spark-submit.sh");
    let tmp = tempfile::tempdir().unwrap();
    let (home, temp) = (tmp.path().join("spark"), tmp.path().join("tmp"));
    std::fs::create_dir_all(home.join("bin")).unwrap();
    std::fs::create_dir_all(&temp).unwrap();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let fake = home.join("bin/spark-submit");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nfor f in \"$TMPDIR\"/spark-submit-*; do ln -s {victim} \"$f.rc\"; done\n\
             echo 'Driver successfully submitted as driver-20261129120000-0001'\n",
            victim = victim.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(
        Command::new(&script)
            .args(["--master", "spark://127.0.0.1:7077"])
            .env("SPARK_HOME", &home)
            .env("TMPDIR", &temp),
        Duration::from_secs(30),
    )
    .success();
    assert_eq!(
        out.stdout.trim(),
        "driver-20261129120000-0001",
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    // Its own files are gone; only the planted links are left.
    for entry in std::fs::read_dir(&temp).unwrap() {
        let path = entry.unwrap().path();
        assert!(path.is_symlink(), "left behind: {}", path.display());
    }
}

/// Waits for `file` to exist and returns its contents, trimmed.
fn wait_for_file(file: &Path, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            return text.trim().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no {} within {limit:?}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The launch folders on the host.
fn launches(sshd: &Sshd) -> Vec<String> {
    sshd.entries("cargo-stream")
}

#[test]
fn ssh_launch_script_starts_the_job_detached_on_a_host() {
    let jar = jobs::finite();
    let script = beside(jar, "finite-job", "ssh-launch.sh");
    let sshd = Sshd::start();
    let port = sshd.port().to_string();
    let dest = format!("{}@127.0.0.1", sshd.user());
    let known = format!("UserKnownHostsFile={}", sshd.known_hosts().display());
    let launch = |key: &Path, known: &str, extra: &[&str], args: &[&str]| {
        let mut cmd = Command::new(&script);
        cmd.args(["-p", &port, "-i"])
            .arg(key)
            .args(["-o", known])
            .args(extra)
            .arg(&dest)
            .arg("--")
            .args(args)
            .env_remove("SSH_AUTH_SOCK");
        cmd
    };
    let key = sshd.identity_file();

    // An unknown host key is refused, with the command that would add it; a wrong key too.
    let empty = sshd.scratch().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let out = run(
        &mut launch(
            &key,
            &format!("UserKnownHostsFile={}", empty.display()),
            &[],
            &["2"],
        ),
        Duration::from_secs(60),
    )
    .failure();
    assert!(
        out.stderr.contains("Host key verification failed")
            && out
                .stderr
                .contains(&format!("ssh-keyscan -p {port} 127.0.0.1")),
        "{}",
        out.stderr
    );
    let other = sshd.new_key("other_key");
    let out = run(
        &mut launch(&other, &known, &[], &["2"]),
        Duration::from_secs(60),
    )
    .failure();
    assert!(
        out.stderr.contains("Permission denied") && out.stderr.contains("help: pass the right key"),
        "{}",
        out.stderr
    );
    assert!(launches(&sshd).is_empty(), "{:?}", launches(&sshd));

    // A job that ends by itself: its folder, output and exit code.
    let out = run(
        &mut launch(&key, &known, &[], &["2"]),
        Duration::from_secs(60),
    )
    .success();
    let folder = PathBuf::from(out.stdout.trim());
    assert!(
        folder.starts_with(sshd.home().join("cargo-stream"))
            && folder
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("finite-job-"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(
        wait_for_file(&folder.join("exit-code"), Duration::from_secs(30)),
        "0"
    );
    let stdout = std::fs::read_to_string(folder.join("stdout")).unwrap();
    assert!(stdout.contains("done after 2 batches"), "{stdout}");
    assert!(folder.join("bundle/run.sh").is_file() && folder.join("pid").is_file());

    // A long one outlives the connection, and stops gracefully on SIGTERM to its pid.
    let out = run(
        &mut launch(&key, &known, &[], &["150"]),
        Duration::from_secs(60),
    )
    .success();
    let folder = PathBuf::from(out.stdout.trim());
    std::thread::sleep(Duration::from_secs(2));
    let stdout = std::fs::read_to_string(folder.join("stdout")).unwrap();
    assert!(
        stdout.contains("batch 3") && !folder.join("exit-code").exists(),
        "still running after the launcher returned:\n{stdout}"
    );
    let pid = std::fs::read_to_string(folder.join("pid")).unwrap();
    let killed = sshd.run_as_user(&format!("kill -TERM {}", pid.trim()));
    assert!(killed.status.success(), "{killed:?}");
    assert_eq!(
        wait_for_file(&folder.join("exit-code"), Duration::from_secs(30)),
        "143",
        "stopped on request"
    );
    let before = launches(&sshd);

    // An upload cut off halfway is never taken for the whole jar, and leaves nothing behind.
    let fake = sshd.scratch().join("fake-bin");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(
        fake.join("scp"),
        "#!/bin/bash\nargs=(\"$@\"); head -c 1000 \"${args[-2]}\" > \"$0.cut\"\n\
         args[-2]=\"$0.cut\"; exec /usr/bin/scp \"${args[@]}\"\n",
    )
    .unwrap();
    std::fs::set_permissions(fake.join("scp"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap());
    let out = run(
        launch(&key, &known, &[], &["2"]).env("PATH", path),
        Duration::from_secs(60),
    )
    .failure();
    assert!(
        out.stderr.contains("copy it again") && out.stderr.contains("launch folder is removed"),
        "{}",
        out.stderr
    );
    assert_eq!(launches(&sshd), before);

    // A bundle with an entry that would escape its folder is refused before anything runs.
    let evil = sshd.scratch().join("evil.jar");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&evil).unwrap());
    for (name, data) in [("run.sh", "echo ran > ran\n"), ("../../escaped.txt", "x")] {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, data.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    let evil_arg = evil.display().to_string();
    let out = run(
        &mut launch(&key, &known, &["--jar", &evil_arg], &[]),
        Duration::from_secs(60),
    )
    .failure();
    assert!(out.stderr.contains("refusing the entry"), "{}", out.stderr);
    assert_eq!(launches(&sshd), before);
    assert!(!sshd.home().join("escaped.txt").exists());
    assert!(!sshd.home().join("cargo-stream/escaped.txt").exists());
}
