//! Jobs followed from a machine that did not submit them (`status`, `logs`, `kill` with
//! `--cluster NAME ID`, `list --cluster NAME`) on a real Slurm 22.05 (through slurmrestd, and
//! with `squeue` on a login node over a real sshd) and on a real Spark standalone cluster
//! reached through a gateway host over SSH; and a failed Spark driver's exit code, reported by
//! the jar's launcher, shown by `--wait`.

use std::time::Duration;

use cargo_stream_tests::client::Client;
use cargo_stream_tests::jobs;
use cargo_stream_tests::slurm::Slurm;
use cargo_stream_tests::spark::SparkCluster;
use cargo_stream_tests::sshd::Sshd;

const MINUTE: Duration = Duration::from_secs(60);

/// `list --cluster CLUSTER --json` through `client`: each job's line, as JSON.
fn cluster_list(client: &Client, cluster: &str) -> Vec<serde_json::Value> {
    let out = client
        .run(&["list", "--cluster", cluster, "--json"])
        .success();
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// The line of `id` in `listed`, which must say it is the cluster's and name `cluster`.
fn listed<'a>(listed: &'a [serde_json::Value], id: &str, cluster: &str) -> &'a serde_json::Value {
    let job = listed
        .iter()
        .find(|j| j["id"] == id)
        .unwrap_or_else(|| panic!("`{id}` not listed: {listed:?}"));
    assert_eq!(job["reason"], "cluster-job", "{job}");
    assert_eq!(job["cluster"], cluster, "{job}");
    job
}

/// `status --cluster CLUSTER ID --json` through `client`.
fn status(client: &Client, cluster: &str, id: &str) -> serde_json::Value {
    let out = client
        .run(&["status", "--cluster", cluster, id, "--json"])
        .success();
    serde_json::from_str(out.stdout.trim()).expect("status --json prints one object")
}

/// Status, logs and list of `done` (FINISHED) and a kill of `running` through a client with no
/// records of them; nothing is recorded on it.
fn follow_as_teammate(teammate: &Client, cluster: &str, done: &str, running: &str) {
    assert_eq!(status(teammate, cluster, done)["state"], "FINISHED");
    let out = teammate.run(&["logs", "-c", cluster, done]).success();
    assert!(
        out.stdout.contains("done after 3 batches"),
        "{}",
        out.stdout
    );
    let jobs = cluster_list(teammate, cluster);
    assert_eq!(listed(&jobs, done, cluster)["state"], "FINISHED");
    listed(&jobs, running, cluster);
    let out = teammate
        .run(&["kill", "--cluster", cluster, running, "--json"])
        .success();
    let killed: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(killed["state"], "KILLED", "{killed}\n{}", out.stderr);
    let out = teammate.run(&["list", "--offline", "--json"]).success();
    assert_eq!(out.stdout.trim(), "", "{}", out.stdout);
}

#[test]
fn slurm_jobs_are_followed_without_a_record_both_ways() {
    let finite = jobs::finite().to_str().unwrap();
    let slurm = Slurm::start();
    let sshd = Sshd::start();
    let submitter = Client::new();
    let token = submitter.dir().join("slurm-token");
    std::fs::write(&token, slurm.token()).unwrap();
    // slurmrestd, jobs in the shared folder; and `sbatch` on a login node, jobs in the SSH
    // user's home.
    let mut clusters = slurm.profile(
        "hpc",
        &format!("token-file = \"{}\"\nkill-grace = 30\n", token.display()),
    );
    clusters.push_str(&format!(
        "[clusters.login]\nkind = \"slurm\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\n\
         identity-file = \"{}\"\nknown-hosts = \"{}\"\nslurm-conf = \"{}\"\n\
         partition = \"e2e\"\ndriver-cores = 1\ndriver-memory = \"256m\"\nkill-grace = 30\n",
        sshd.port(),
        sshd.user(),
        sshd.identity_file().display(),
        sshd.known_hosts().display(),
        slurm.conf().display(),
    ));
    submitter.set_clusters(&clusters);
    let teammate = Client::new();
    teammate.set_clusters(&clusters);

    // Through slurmrestd.
    let done = submitter.submit_finite("hpc").stdout.trim().to_owned();
    let out = submitter.submit("hpc", finite, &[], &["400"]).success();
    let running = out.stdout.trim().to_owned();
    submitter.wait_for_state(&running, "RUNNING", MINUTE);
    follow_as_teammate(&teammate, "hpc", &done, &running);
    let out = teammate.run(&["status", "-c", "hpc", "999999"]).failure();
    assert!(
        out.stderr.contains("does not know job 999999"),
        "{}",
        out.stderr
    );
    // A job that is not cargo-stream's (not in a job folder of the profile) is refused.
    let other = slurm.run(
        "sbatch",
        &["--parsable", "-p", "e2e", "--chdir=/tmp", "--wrap", "true"],
    );
    let other = other.trim();
    let out = teammate.run(&["logs", "-c", "hpc", other]).failure();
    assert!(out.stderr.contains("not in a job folder"), "{}", out.stderr);
    assert!(
        !cluster_list(&teammate, "hpc")
            .iter()
            .any(|j| j["id"] == other),
        "a job outside the job folders is listed"
    );

    // With `squeue` on the login node: its jobs only (the folder is the SSH user's).
    let done_ssh = submitter.submit_finite("login").stdout.trim().to_owned();
    let out = submitter.submit("login", finite, &[], &["400"]).success();
    let running_ssh = out.stdout.trim().to_owned();
    submitter.wait_for_state(&running_ssh, "RUNNING", MINUTE);
    let jobs = cluster_list(&teammate, "login");
    assert!(
        !jobs.iter().any(|j| j["id"] == done.as_str()),
        "a job of the other profile's folder is listed: {jobs:?}"
    );
    let job = listed(&jobs, &done_ssh, "login");
    assert!(job["submitted_at"].as_u64().is_some(), "{job}");
    follow_as_teammate(&teammate, "login", &done_ssh, &running_ssh);
}

#[test]
fn spark_ssh_jobs_are_followed_without_a_record_and_a_failure_shows_its_exit_code() {
    let finite = jobs::finite().to_str().unwrap();
    let cluster = SparkCluster::start(None);
    let sshd = Sshd::start();
    let gateway = super::spark_ssh::Gateway::new(&cluster, &sshd);
    let clusters = &gateway.profile;
    let submitter = Client::new();
    submitter.set_clusters(clusters);

    // Spark's status of a FAILED driver has no exit code: the launcher's last stderr line
    // gives it, and `--wait` shows it with the panic.
    let out = submitter.submit("gateway", finite, &["--wait"], &["panic"]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("ended FAILED"), "{}", out.stderr);
    assert!(out.stderr.contains("asked to panic"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("cargo-stream launcher: the job exited with code 101"),
        "{}",
        out.stderr
    );
    // And `status` says it (read from that line on the worker).
    let failed = out.stdout.trim();
    let out = submitter.run(&["status", failed]).success();
    assert!(out.stdout.contains("FAILED"), "{}", out.stdout);
    assert!(
        out.stderr.contains("the job exited with code 101")
            && !out.stderr.contains("cargo-stream launcher:"),
        "{}",
        out.stderr
    );

    let done = submitter.submit_finite("gateway").stdout.trim().to_owned();
    let out = submitter.submit("gateway", finite, &[], &["400"]).success();
    let running = out.stdout.trim().to_owned();
    submitter.wait_for_state(&running, "RUNNING", MINUTE);

    let teammate = Client::new();
    teammate.set_clusters(clusters);
    let out = teammate.run(&["status", "-c", "gateway", "nope"]).failure();
    assert!(
        out.stderr.contains("not the ID of a Spark driver"),
        "{}",
        out.stderr
    );
    follow_as_teammate(&teammate, "gateway", &done, &running);
}
