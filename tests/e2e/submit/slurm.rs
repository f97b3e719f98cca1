//! `cargo stream submit` and the lifecycle verbs against a real Slurm 22.05 (munged,
//! slurmctld, slurmd, and slurmrestd with JWT authentication) started on 127.0.0.1 by each
//! test.

use std::path::Path;
use std::time::Duration;

use cargo_stream_tests::client::Client;
use cargo_stream_tests::feed::TextFeed;
use cargo_stream_tests::jobs;
use cargo_stream_tests::slurm::{self, API_VERSION, Slurm};
use cargo_stream_tests::sshd::Sshd;
use cargo_stream_tests::{Run, free_port, run};

const MINUTE: Duration = Duration::from_secs(60);

/// A `slurm` profile named `hpc` whose token is in a file of the client's folder.
fn with_token_file(client: &Client, slurm: &Slurm, extra: &str) -> String {
    let file = client.dir().join("slurm-token");
    std::fs::write(&file, slurm.token()).unwrap();
    slurm.profile(
        "hpc",
        &format!("token-file = \"{}\"\n{extra}", file.display()),
    )
}

/// `cargo stream ARGS` for `client` with `SLURM_E2E_TOKEN` set to `token` (or unset).
fn run_with_token(client: &Client, token: Option<&str>, args: &[&str]) -> Run {
    let mut cmd = client.cmd(args);
    match token {
        Some(token) => cmd.env("SLURM_E2E_TOKEN", token),
        None => cmd.env_remove("SLURM_E2E_TOKEN"),
    };
    run(&mut cmd, Duration::from_secs(120))
}

/// Every file under `dir`, relative.
fn files(dir: &Path) -> Vec<String> {
    cargo_stream_tests::snapshot(dir)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// Fails unless `out` failed with an `error:` and a `help:` line containing each needle.
fn assert_refused(out: &Run, needles: &[&str]) {
    assert!(
        out.code.is_some_and(|c| c != 0),
        "should have failed:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("error:"), "{}", out.stderr);
    assert!(out.stderr.contains("help:"), "{}", out.stderr);
    for needle in needles {
        assert!(
            out.stderr.contains(needle),
            "no {needle:?} in:\n{}",
            out.stderr
        );
    }
}

#[test]
fn slurm_kill_checkpoints() {
    // Packaged before any server starts.
    jobs::running_word_count();
    // KillWait is the grace Slurm gives between SIGTERM and SIGKILL.
    let slurm = Slurm::start_with_kill_wait(10);
    let client = Client::new();
    client.set_clusters(&with_token_file(&client, &slurm, "kill-grace = 30\n"));
    let feed = TextFeed::start("to be or not to be");
    let checkpoints = client.dir().join("checkpoints");
    let port = feed.port.to_string();
    let env = format!("CHECKPOINT_DIR={}", checkpoints.display());
    let (out, id) = client.submit_word_count("hpc", &port, &["--env", &env]);
    assert!(id.parse::<u32>().is_ok(), "a Slurm job ID: {id}");
    assert!(out.stderr.contains("Submitted"), "{}", out.stderr);

    let status = client.wait_for_state(&id, "RUNNING", MINUTE);
    assert_eq!(status["kind"], "slurm", "{status}");
    // Slurm itself sees it running, under the job's name, in the profile's partition.
    let squeue = slurm.run("squeue", &["-h", "-j", &id, "-o", "%T %j %P"]);
    assert_eq!(squeue.trim(), "RUNNING running-wc e2e", "{}", slurm.logs());
    let log = client.wait_for_log(&id, "(be,", MINUTE);
    assert!(log.contains("Time: "), "{log}");
    let errors = client.run(&["logs", &id, "--stderr"]).success();
    assert!(!errors.stdout.contains("panicked"), "{}", errors.stdout);

    // The job must write a checkpoint as it stops, by itself on SIGTERM, before KillWait.
    slurm.kill_gracefully(&client, &id, &checkpoints);

    let listed = client.listed(&id);
    assert_eq!(listed["state"], "KILLED");
    assert_eq!(listed["cluster"], "hpc");

    // The token is in no record.
    let token = std::fs::read_to_string(client.dir().join("slurm-token")).unwrap();
    for (name, bytes) in cargo_stream_tests::snapshot(&client.dir().join("state")) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(token.trim()),
            "the token is in {name}"
        );
    }
}

#[test]
fn slurm_wait_exits_by_how_the_job_ended() {
    let jar = jobs::finite();
    let jar = jar.to_str().unwrap();
    let slurm = Slurm::start();
    let client = Client::new();
    client.set_clusters(&with_token_file(&client, &slurm, ""));

    let out = client.submit_finite("hpc");
    let id = out.stdout.trim();
    let status = client.status(id);
    assert_eq!(status["state"], "FINISHED", "{status}");

    // `logs --follow` prints as the job writes and returns when it ends.
    let out = client.submit("hpc", jar, &[], &["8"]).success();
    let id = out.stdout.trim();
    let log = client.run(&["logs", id, "--follow"]).success();
    assert!(log.stdout.contains("batch 0"), "{}", log.stdout);
    assert!(
        log.stdout.contains("done after 8 batches"),
        "{}",
        log.stdout
    );

    let out = client.submit_failing("hpc");
    assert!(out.stderr.contains("exit code 1"), "{}", out.stderr);
    let id = out.stdout.trim();
    let out = client.run(&["status", id, "--wait"]).failure();
    assert!(out.stderr.contains("FAILED"), "{}", out.stderr);
}

#[test]
fn slurm_bad_token_or_api_version_is_refused_clearly() {
    let jar = jobs::finite();
    let jar = jar.to_str().unwrap();
    let slurm = Slurm::start();
    let client = Client::new();
    client.set_clusters(&slurm.profile("hpc", "token-env = \"SLURM_E2E_TOKEN\"\n"));
    let submit = ["submit", "-c", "hpc", "--artifact", jar];

    // No token at all: refused before anything is copied.
    let out = run_with_token(&client, None, &submit);
    assert_refused(&out, &["`$SLURM_E2E_TOKEN`", "not set", "scontrol token"]);
    assert_eq!(files(&slurm.shared_dir()), Vec::<String>::new());

    // A token slurmctld did not sign, and one that expired.
    let expired = slurm.run("scontrol", &["token", "username=root", "lifespan=1"]);
    let expired = expired.trim().trim_start_matches("SLURM_JWT=").to_owned();
    std::thread::sleep(Duration::from_secs(2));
    for token in ["not-a-token", &expired] {
        let out = run_with_token(&client, Some(token), &submit);
        assert_refused(
            &out,
            &[
                &format!("{}/slurm/{API_VERSION}/ping", slurm.url()),
                "HTTP",
                "`$SLURM_E2E_TOKEN`",
                "scontrol token",
            ],
        );
        assert!(!out.stderr.contains(token), "the token is printed");
    }
    assert_eq!(files(&slurm.shared_dir()), Vec::<String>::new());
    assert_eq!(slurm.run("squeue", &["-h"]).trim(), "");
    let out = client.run(&["list", "--offline", "--json"]).success();
    assert_eq!(out.stdout.trim(), "", "nothing was recorded");

    // An API version this slurmrestd does not serve.
    let token = slurm.token();
    client.set_clusters(&slurm.profile(
        "hpc",
        "token-env = \"SLURM_E2E_TOKEN\"\napi-version = \"v0.0.99\"\n",
    ));
    let out = run_with_token(&client, Some(&token), &submit);
    assert_refused(&out, &["HTTP 404", "/slurm/v0.0.99/ping", "`api-version`"]);
    client.set_clusters(&slurm.profile("hpc", "token-env = \"SLURM_E2E_TOKEN\"\n"));

    // A fresh one works, and is printed nowhere.
    let out = run_with_token(&client, Some(&token), &[&submit[..], &["--wait"]].concat());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.stdout.contains(&token) && !out.stderr.contains(&token));
    let out = run_with_token(&client, Some(&token), &["list", "--json", "-v"]).success();
    assert!(out.stdout.contains("FINISHED"), "{}", out.stdout);
    assert!(!out.stdout.contains(&token) && !out.stderr.contains(&token));
}

#[test]
fn slurm_unreachable_is_a_clear_error() {
    let jar = jobs::finite();
    let client = Client::new();
    let shared = client.dir().join("shared");
    let url = format!("http://127.0.0.1:{}", free_port());
    client.set_clusters(&format!(
        "[clusters.hpc]\nkind = \"slurm\"\nurl = \"{url}\"\nuser = \"root\"\ntoken-env = \"SLURM_E2E_TOKEN\"\nupload = {{ to = \"dir\", path = \"{}\" }}\n",
        shared.display()
    ));
    let out = run_with_token(
        &client,
        Some("a.b.c"),
        &["submit", "-c", "hpc", "--artifact", jar.to_str().unwrap()],
    );
    assert_refused(
        &out,
        &[
            "failed to submit",
            "cluster `hpc`",
            &format!("{url}/slurm/{API_VERSION}/ping"),
            "slurmrestd",
        ],
    );
    assert!(
        out.stderr.to_lowercase().contains("connection refused"),
        "{}",
        out.stderr
    );
    assert!(
        !shared.exists(),
        "nothing is copied for an unreachable cluster"
    );
}

#[test]
fn slurm_sftp_upload_runs_as_the_user_and_shows_logs() {
    // The jar goes over SFTP to a login node's folder that the nodes share (here: the same
    // machine), the job runs as the token's user, and its logs are read back over SSH.
    let jar = jobs::finite();
    let slurm = Slurm::start();
    let sshd = Sshd::start();
    let client = Client::new();
    let token = client.dir().join("slurm-token");
    std::fs::write(&token, slurm.token_for(sshd.user())).unwrap();
    client.set_clusters(&format!(
        "[clusters.hpc]\nkind = \"slurm\"\nurl = \"{}\"\nuser = \"{user}\"\ntoken-file = \"{}\"\n\
         partition = \"e2e\"\ndriver-memory = \"256m\"\n\
         upload = {{ to = \"sftp\", host = \"127.0.0.1\", port = {}, user = \"{user}\", \
         identity-file = \"{}\", known-hosts = \"{}\", path = \"slurm-jobs\" }}\n",
        slurm.url(),
        token.display(),
        sshd.port(),
        sshd.identity_file().display(),
        sshd.known_hosts().display(),
        user = sshd.user(),
    ));
    let out = client
        .submit("hpc", jar.to_str().unwrap(), &["--wait"], &["4"])
        .success();
    assert!(out.stderr.contains("FINISHED"), "{}", out.stderr);
    let id = out.stdout.trim();
    let log = client.run(&["logs", id]).success();
    assert!(
        log.stdout.contains("done after 4 batches"),
        "{}",
        log.stdout
    );
    let job = slurm.run("scontrol", &["show", "job", id]);
    assert!(
        job.contains(&format!("UserId={}(", sshd.user())),
        "not run as the user: {job}"
    );
    let owner = sshd.run_as_user("stat -c %U slurm-jobs/jobs/*/stdout");
    assert_eq!(
        String::from_utf8_lossy(&owner.stdout).trim(),
        sshd.user(),
        "{}",
        String::from_utf8_lossy(&owner.stderr)
    );
}

#[test]
fn slurm_cluster_stops_with_its_jobs() {
    let slurm = Slurm::start();
    let token = slurm.token();
    let (code, body) = slurm
        .get(&format!("/slurm/{API_VERSION}/ping"), &token)
        .unwrap();
    assert_eq!(code, 200, "{body}");
    let out = slurm.run(
        "sbatch",
        &["--parsable", "--wrap", "exec sleep 600", "-o", "/dev/null"],
    );
    let id = out.trim().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while slurm.run("squeue", &["-h", "-j", &id, "-o", "%T"]).trim() != "RUNNING" {
        assert!(
            std::time::Instant::now() < deadline,
            "job {id} never ran\n{}",
            slurm.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let conf = slurm.conf();
    drop(slurm);
    // No daemon, job step or job of that cluster is left.
    let left = slurm::processes_of(&conf);
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
