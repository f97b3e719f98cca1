//! `cargo stream submit` and the lifecycle verbs against a real Slurm 22.05 reached the second
//! way: no slurmrestd, but `sbatch`, `scontrol` and `scancel` run on a login node over SSH (a
//! real sshd on 127.0.0.1 whose throwaway user submits to the test's cluster, through its own
//! `slurm.conf` and munge socket).

use std::time::Duration;

use cargo_stream_tests::client::Client;
use cargo_stream_tests::feed::TextFeed;
use cargo_stream_tests::jobs;
use cargo_stream_tests::slurm::Slurm;
use cargo_stream_tests::sshd::Sshd;

const MINUTE: Duration = Duration::from_secs(60);

/// A `slurm` profile named `hpc` for the login node `sshd` whose commands use `slurm`'s
/// configuration, with `known_hosts` as the known_hosts file.
fn profile(slurm: &Slurm, sshd: &Sshd, known_hosts: &std::path::Path) -> String {
    format!(
        "[clusters.hpc]\nkind = \"slurm\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\n\
         identity-file = \"{}\"\nknown-hosts = \"{}\"\nslurm-conf = \"{}\"\n\
         partition = \"e2e\"\ndriver-cores = 1\ndriver-memory = \"256m\"\nkill-grace = 30\n",
        sshd.port(),
        sshd.user(),
        sshd.identity_file().display(),
        known_hosts.display(),
        slurm.conf().display(),
    )
}

#[test]
fn slurm_ssh_submits_follows_and_kills() {
    // Packaged before any server starts.
    jobs::running_word_count();
    let finite = jobs::finite().to_str().unwrap();
    // KillWait is the grace Slurm gives between SIGTERM and SIGKILL.
    let slurm = Slurm::start_with_kill_wait(10);
    let sshd = Sshd::start();
    let client = Client::new();

    // A login node whose host key is not in known_hosts is refused before anything is
    // uploaded or queued, with the command that would record the key.
    let empty = sshd.scratch().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    client.set_clusters(&profile(&slurm, &sshd, &empty));
    let out = client.submit("hpc", finite, &[], &[]).failure();
    let scan = format!(
        "ssh-keyscan -p {} 127.0.0.1 >> {}",
        sshd.port(),
        empty.display()
    );
    for needle in ["error:", "help:", "is not known", &scan] {
        assert!(
            out.stderr.contains(needle),
            "no {needle:?} in:\n{}",
            out.stderr
        );
    }
    assert!(
        !sshd.home().join("cargo-stream").exists(),
        "nothing is uploaded"
    );
    assert_eq!(slurm.run("squeue", &["-h"]).trim(), "", "nothing is queued");
    client.set_clusters(&profile(&slurm, &sshd, &sshd.known_hosts()));

    // The running word count: RUNNING as the SSH user, its counts in the log, then a graceful
    // kill that leaves a final checkpoint (written by the job, as the user, in its home).
    let feed = TextFeed::start("to be or not to be");
    let checkpoints = sshd.home().join("checkpoints");
    let env = format!("CHECKPOINT_DIR={}", checkpoints.display());
    let port = feed.port.to_string();
    let (out, id) = client.submit_word_count("hpc", &port, &["--env", &env]);
    assert!(id.parse::<u32>().is_ok(), "a Slurm job ID: {id}");
    assert!(out.stderr.contains("Submitted"), "{}", out.stderr);
    let status = client.wait_for_state(&id, "RUNNING", MINUTE);
    assert_eq!(status["kind"], "slurm", "{status}");
    let squeue = slurm.run("squeue", &["-h", "-j", &id, "-o", "%T %j %P %u"]);
    assert_eq!(
        squeue.trim(),
        format!("RUNNING running-wc e2e {}", sshd.user()),
        "{}",
        slurm.logs()
    );
    let log = client.wait_for_log(&id, "(be,", MINUTE);
    assert!(log.contains("Time: "), "{log}");
    slurm.kill_gracefully(&client, &id, &checkpoints);
    assert_eq!(client.listed(&id)["state"], "KILLED");

    // A job that ends by itself: `--wait` exits 0 and the log is read back over SSH;
    // `sbatch.OPTION` reaches sbatch.
    let out = client
        .submit("hpc", finite, &["--wait", "--conf", "sbatch.time=5"], &[])
        .success();
    assert!(out.stderr.contains("FINISHED"), "{}", out.stderr);
    let id = out.stdout.trim();
    let job = slurm.run("scontrol", &["show", "job", id]);
    assert!(job.contains("TimeLimit=00:05:00"), "{job}");
    let log = client.run(&["logs", id]).success();
    assert!(
        log.stdout.contains("done after 3 batches"),
        "{}",
        log.stdout
    );

    // A failing job: FAILED with its exit code, and a non-zero exit.
    let out = client.submit_failing("hpc");
    assert!(out.stderr.contains("exit code 1"), "{}", out.stderr);
    let id = out.stdout.trim();
    assert_eq!(client.status(id)["state"], "FAILED");

    // sbatch's refusal is shown as it said it, and leaves no job folder behind.
    let jobs_dir = sshd.home().join("cargo-stream/jobs");
    let folders = std::fs::read_dir(&jobs_dir).unwrap().count();
    let out = client
        .submit("hpc", finite, &["--conf", "sbatch.partition=nope"], &[])
        .failure();
    for needle in [
        "error:",
        "help:",
        "`sbatch`",
        "Invalid partition name specified",
    ] {
        assert!(
            out.stderr.contains(needle),
            "no {needle:?} in:\n{}",
            out.stderr
        );
    }
    assert_eq!(std::fs::read_dir(&jobs_dir).unwrap().count(), folders);
}
