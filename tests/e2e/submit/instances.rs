//! `cargo stream submit --instances N` on each kind of cluster, against the real servers: N
//! instances start, each told its number; `status` lists them, `logs --instance I` reads one,
//! `kill` stops them all (each with its final checkpoint), `list` shows one job.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cargo_stream_tests::client::{Client, submitted_id};
use cargo_stream_tests::feed::TextFeed;
use cargo_stream_tests::jobs;
use cargo_stream_tests::slurm::Slurm;
use cargo_stream_tests::spark::SparkCluster;
use cargo_stream_tests::sshd::Sshd;

const MINUTE: Duration = Duration::from_secs(60);

/// Submits [`jobs::instance_word_count`] to `cluster` as `count` instances reading the text
/// server at `port`, with `env`; returns the job's ID after checking the `submitted` line
/// records its instances.
fn submit(client: &Client, cluster: &str, count: u32, port: u16, env: &str) -> String {
    let jar = jobs::instance_word_count().to_str().unwrap().to_owned();
    let count_text = count.to_string();
    let out = client
        .submit(
            cluster,
            &jar,
            &["--json", "--instances", &count_text, "--env", env],
            &["127.0.0.1", &port.to_string()],
        )
        .success();
    let id = submitted_id(&out.stdout);
    let submitted: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let instances = submitted["instances"]
        .as_array()
        .expect("instances recorded");
    assert_eq!(instances.len(), count as usize, "{submitted}");
    for (i, one) in instances.iter().enumerate() {
        assert_eq!(one["index"], i, "{submitted}");
    }
    id
}

/// `status ID --json`: the job's line and its instances' lines.
fn status(client: &Client, id: &str) -> (serde_json::Value, Vec<serde_json::Value>) {
    let out = client.run(&["status", id, "--json"]).success();
    let mut lines = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap());
    let job = lines.next().expect("a status line");
    assert_eq!(job["reason"], "status", "{job}");
    let instances: Vec<_> = lines.collect();
    for one in &instances {
        assert_eq!(one["reason"], "instance", "{one}");
        assert_eq!(one["id"], id, "{one}");
    }
    (job, instances)
}

/// Polls `status` until the job and each of its `count` instances are RUNNING.
fn wait_running(client: &Client, id: &str, count: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + MINUTE;
    loop {
        let (job, instances) = status(client, id);
        if job["state"] == "RUNNING"
            && instances.len() == count
            && instances.iter().all(|i| i["state"] == "RUNNING")
        {
            return instances;
        }
        assert!(
            Instant::now() < deadline
                && !["FAILED", "KILLED", "ERROR", "FINISHED"]
                    .iter()
                    .any(|s| job["state"] == *s),
            "`{id}` did not run as {count} instances: {job}\n{instances:?}\n{}",
            client.run(&["logs", id, "--stderr"]).stdout
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Polls `logs ID --instance I` until it shows `needle`.
fn wait_instance_log(client: &Client, id: &str, instance: u32, needle: &str) -> String {
    let deadline = Instant::now() + MINUTE;
    let index = instance.to_string();
    loop {
        let out = client.run(&["logs", id, "--instance", &index]);
        if out.stdout.contains(needle) {
            return out.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "instance {instance} of `{id}` did not log {needle:?}:\n{}\n--- stderr\n{}\n{}",
            out.stdout,
            out.stderr,
            client
                .run(&["logs", id, "--instance", &index, "--stderr"])
                .stdout
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Each instance's output names it, and only it: `instance I of N` from the variables its
/// launcher set, in the log `logs --instance I` reads (the default being instance 0).
fn check_instance_logs(client: &Client, id: &str, count: u32) {
    for i in 0..count {
        let log = wait_instance_log(client, id, i, "(be,");
        let line = format!("instance {i} of {count}");
        assert!(log.contains(&line), "instance {i}'s log:\n{log}");
        for other in (0..count).filter(|o| *o != i) {
            assert!(
                !log.contains(&format!("instance {other} of")),
                "instance {i}'s log shows instance {other}:\n{log}"
            );
        }
    }
    let default = client.run(&["logs", id]).success();
    assert!(
        default.stdout.contains(&format!("instance 0 of {count}")),
        "{}",
        default.stdout
    );
    assert!(
        default.stderr.contains(&format!("instance 0 of {count}")),
        "the note on which instance: {}",
        default.stderr
    );
    let out = client
        .run(&["logs", id, "--instance", &count.to_string()])
        .failure();
    assert!(
        out.stderr
            .contains(&format!("has {count} instances (0 to {})", count - 1)),
        "{}",
        out.stderr
    );
}

/// The newest checkpoint time of each instance under the shared `dir`
/// (`instance-I/checkpoint-<ms>`, as the runtime writes them for instance I).
fn newest_checkpoints(dir: &Path, count: u32) -> Vec<Option<u64>> {
    (0..count)
        .map(|i| {
            jobs::checkpoint_times(&dir.join(format!("instance-{i}")))
                .last()
                .copied()
        })
        .collect()
}

/// `kill ID --json` after a few batches: every instance must stop with a checkpoint newer
/// than its last before the kill and, with `stop_logged`, say in its stderr that it stopped
/// gracefully on one signal (a Spark worker's driver log may end before that line); returns the
/// `killed` line.
fn kill_all(
    client: &Client,
    id: &str,
    checkpoints: &[PathBuf],
    count: u32,
    stop_logged: bool,
) -> serde_json::Value {
    std::thread::sleep(Duration::from_secs(2));
    let before: Vec<_> = checkpoints
        .iter()
        .map(|d| newest_checkpoints(d, count))
        .collect();
    let out = client.run(&["kill", id, "--json"]).success();
    let killed: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let after: Vec<_> = checkpoints
        .iter()
        .map(|d| newest_checkpoints(d, count))
        .collect();
    for (b, a) in before.iter().zip(&after) {
        for i in 0..count as usize {
            if checkpoints.len() > 1 && a[i].is_none() && b[i].is_none() {
                continue; // another folder holds this instance's checkpoints
            }
            assert!(
                a[i] > b[i] && b[i].is_some(),
                "instance {i}: no final checkpoint (before {b:?}, after {a:?})\n{}\n{killed}\n--- its stderr:\n{}",
                out.stderr,
                client
                    .run(&["logs", id, "--stderr", "--instance", &i.to_string()])
                    .stdout
            );
        }
    }
    // Each stopped as a graceful stop does, on one signal.
    for i in (0..count).filter(|_| stop_logged) {
        let errors = client
            .run(&["logs", id, "--stderr", "--instance", &i.to_string()])
            .stdout;
        assert!(
            errors.contains("streaming context stopped") && !errors.contains("received again"),
            "instance {i} did not stop gracefully:\n{errors}"
        );
    }
    killed
}

/// `list` shows the job once, with its instance count.
fn check_listed(client: &Client, id: &str, count: u32, state: &str) {
    let listed = client.listed(id);
    assert_eq!(listed["instances"], count, "{listed}");
    assert_eq!(listed["state"], state, "{listed}");
    let out = client.run(&["list"]).success();
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with("ID"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert!(
        lines[0].starts_with(id) && lines[0].ends_with(&format!("({count} instances)")),
        "{}",
        out.stdout
    );
}

#[test]
fn ssh_instances_spread_over_the_hosts() {
    jobs::instance_word_count();
    let sshd = Sshd::start_on_two_ports();
    let client = Client::new();
    client.set_clusters(&sshd.profile_of_two_hosts("box"));
    let feed = TextFeed::start("to be or not to be");
    let id = submit(&client, "box", 3, feed.port, "CHECKPOINT_DIR=checkpoints");

    let instances = wait_running(&client, &id, 3);
    // Round-robin: 0 and 2 on the first host, 1 on the second, each in a folder of its own.
    let port_of = |i: usize| {
        let location = instances[i]["location"].as_str().unwrap().to_owned();
        let port = location.split(':').nth(1).unwrap().to_owned();
        (port, location)
    };
    let (p0, l0) = port_of(0);
    let (p1, _) = port_of(1);
    let (p2, l2) = port_of(2);
    assert_eq!(p0, sshd.port().to_string(), "{instances:?}");
    assert_ne!(p1, p0, "{instances:?}");
    assert_eq!(p2, p0, "{instances:?}");
    assert_ne!(l0, l2, "{instances:?}");
    check_instance_logs(&client, &id, 3);

    // Each instance runs in its own folder: its checkpoints are there.
    let dirs: Vec<PathBuf> = instances
        .iter()
        .map(|i| {
            let cluster_id = i["cluster_id"].as_str().unwrap();
            sshd.home()
                .join("cargo-stream")
                .join(cluster_id)
                .join("checkpoints")
        })
        .collect();
    let killed = kill_all(&client, &id, &dirs, 3, true);
    assert_eq!(killed["state"], "KILLED", "{killed}");
    let (job, instances) = status(&client, &id);
    assert_eq!(job["state"], "KILLED", "{job}");
    assert!(
        instances.iter().all(|i| i["state"] == "KILLED"),
        "{instances:?}"
    );
    check_listed(&client, &id, 3, "KILLED");
}

#[test]
fn spark_rest_instances_are_supervised_drivers() {
    jobs::instance_word_count();
    let cluster = SparkCluster::start(None);
    let client = Client::new();
    client.set_clusters(&format!(
        "[clusters.spark]\nkind = \"spark-rest\"\nmaster = \"{}\"\nmaster-ui = \"{}\"\ndriver-memory = \"256m\"\nupload = {{ to = \"dir\", path = \"{}\" }}\n",
        cluster.rest_url,
        cluster.ui_url,
        cluster.dir().join("jars").display()
    ));
    let feed = TextFeed::start("to be or not to be");
    let checkpoints = client.dir().join("checkpoints");
    let env = format!("CHECKPOINT_DIR={}", checkpoints.display());
    // Instances are supervised by default (Spark restarts a lost one), unless the profile
    // says otherwise.
    let jar = jobs::instance_word_count().to_str().unwrap().to_owned();
    let plan = client
        .submit(
            "spark",
            &jar,
            &["--dry-run", "--json", "--instances", "2"],
            &[],
        )
        .success();
    let plan: serde_json::Value = serde_json::from_str(plan.stdout.trim()).unwrap();
    assert_eq!(plan["instances"], 2, "{plan}");
    assert_eq!(plan["job"]["supervise"], true, "{plan}");
    let id = submit(&client, "spark", 2, feed.port, &env);
    assert!(id.starts_with("driver-"), "{id}");

    let instances = wait_running(&client, &id, 2);
    assert_eq!(instances[0]["cluster_id"], id.as_str());
    assert_ne!(instances[1]["cluster_id"], id.as_str());
    // Two drivers on the cluster.
    let master = cluster.master_json();
    let drivers = master["activedrivers"].as_array().unwrap();
    assert_eq!(drivers.len(), 2, "{master}");
    check_instance_logs(&client, &id, 2);

    let killed = kill_all(&client, &id, &[checkpoints], 2, false);
    assert_eq!(killed["state"], "KILLED", "{killed}");
    check_listed(&client, &id, 2, "KILLED");
}

#[test]
fn slurm_instances_are_one_job_of_tasks() {
    jobs::instance_word_count();
    let slurm = Slurm::start_with_kill_wait(10);
    let client = Client::new();
    let token = client.dir().join("slurm-token");
    std::fs::write(&token, slurm.token()).unwrap();
    client.set_clusters(&slurm.profile(
        "hpc",
        &format!("token-file = \"{}\"\nkill-grace = 30\n", token.display()),
    ));
    let feed = TextFeed::start("to be or not to be");
    let checkpoints = client.dir().join("checkpoints");
    let env = format!("CHECKPOINT_DIR={}", checkpoints.display());
    let id = submit(&client, "hpc", 2, feed.port, &env);
    assert!(id.parse::<u32>().is_ok(), "a Slurm job ID: {id}");

    let instances = wait_running(&client, &id, 2);
    // One Slurm job of two tasks.
    assert!(
        instances.iter().all(|i| i["cluster_id"] == id.as_str()),
        "{instances:?}"
    );
    let shown = slurm.run("scontrol", &["show", "job", &id]);
    assert!(shown.contains("NumTasks=2"), "{shown}");
    check_instance_logs(&client, &id, 2);

    let started = Instant::now();
    let killed = kill_all(&client, &id, &[checkpoints], 2, true);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "kill took {:?}",
        started.elapsed()
    );
    assert_eq!(
        killed["state"],
        "KILLED",
        "{killed}\n{}\n{}\n--- instance 0's stderr:\n{}\n--- the job's stderr:\n{}",
        client.run(&["status", &id]).stderr,
        slurm.run("scontrol", &["show", "job", &id]),
        client
            .run(&["logs", &id, "--stderr", "--instance", "0"])
            .stdout,
        std::fs::read_to_string(
            slurm
                .run("scontrol", &["show", "job", &id])
                .split_whitespace()
                .find_map(|w| w.strip_prefix("StdErr="))
                .unwrap_or("/nonexistent")
        )
        .unwrap_or_default()
    );
    let (job, instances) = status(&client, &id);
    assert_eq!(job["state"], "KILLED", "{job}");
    assert!(
        instances.iter().all(|i| i["state"] == "KILLED"),
        "{instances:?}"
    );
    check_listed(&client, &id, 2, "KILLED");
}

#[test]
fn spark_ssh_instances_are_drivers_of_spark_submit() {
    jobs::instance_word_count();
    let cluster = SparkCluster::start(None);
    let sshd = Sshd::start();
    let gateway = super::spark_ssh::Gateway::new(&cluster, &sshd);
    let client = Client::new();
    client.set_clusters(&gateway.profile);
    let feed = TextFeed::start("to be or not to be");
    // A folder the drivers (root's worker) and the test share.
    let checkpoints = gateway.path().join("checkpoints");
    let env = format!("CHECKPOINT_DIR={}", checkpoints.display());
    let id = submit(&client, "gateway", 2, feed.port, &env);
    assert!(id.starts_with("driver-"), "{id}");

    let instances = wait_running(&client, &id, 2);
    assert_ne!(instances[0]["cluster_id"], instances[1]["cluster_id"]);
    check_instance_logs(&client, &id, 2);
    let killed = kill_all(&client, &id, &[checkpoints], 2, false);
    assert_eq!(killed["state"], "KILLED", "{killed}");
    check_listed(&client, &id, 2, "KILLED");
}
