//! `cargo stream submit` to a `spark-ssh` profile: the cluster's own `spark-submit
//! --deploy-mode cluster` run on a gateway host over SSH (a real sshd with a throwaway user),
//! against a real Spark standalone master and worker, all on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cargo_stream_tests::client::Client;
use cargo_stream_tests::feed::TextFeed;
use cargo_stream_tests::jobs;
use cargo_stream_tests::spark::SparkCluster;
use cargo_stream_tests::sshd::Sshd;

const MINUTE: Duration = Duration::from_secs(60);

/// A copy of `SPARK_HOME` the SSH user can read (the cached one sits under root's home), made
/// of hard links, with a `spark-env.sh` that keeps Spark on 127.0.0.1.
fn gateway_spark_home(cluster: &SparkCluster, dir: &Path) -> PathBuf {
    let home = dir.join("spark");
    let status = Command::new("cp")
        .arg("-al")
        .arg(&cluster.spark_home)
        .arg(&home)
        .status()
        .unwrap();
    assert!(status.success(), "cp -al SPARK_HOME");
    std::fs::create_dir_all(home.join("conf")).unwrap();
    std::fs::write(home.join("conf/spark-env.sh"), "SPARK_LOCAL_IP=127.0.0.1\n").unwrap();
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(dir)
        .status()
        .unwrap();
    home
}

/// A gateway host for `spark-ssh`: the SSH user's copy of `SPARK_HOME` in a folder under /tmp
/// (removed on drop), and the profile `[clusters.gateway]` that runs its `spark-submit`
/// through `sshd` against `cluster`.
pub(crate) struct Gateway {
    dir: tempfile::TempDir,
    /// The `[clusters.gateway]` profile.
    pub(crate) profile: String,
}

impl Gateway {
    /// The gateway's folder, which the SSH user reads and writes.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn new(cluster: &SparkCluster, sshd: &Sshd) -> Gateway {
        let dir = tempfile::Builder::new()
            .prefix("e2e-gateway-")
            .tempdir_in("/tmp")
            .unwrap();
        let spark_home = gateway_spark_home(cluster, dir.path());
        let profile = sshd
            .profile("gateway")
            .replace("kind = \"ssh\"", "kind = \"spark-ssh\"")
            + &format!(
                "master = \"{}\"\nmaster-ui = \"{}\"\nspark-home = \"{}\"\ndriver-memory = \"256m\"\n",
                cluster.master_url,
                cluster.ui_url,
                spark_home.display()
            );
        Gateway { dir, profile }
    }
}

#[test]
fn spark_ssh_submits_with_the_clusters_spark_submit_and_follows_the_job() {
    let running = jobs::running_word_count();
    jobs::finite();
    let cluster = SparkCluster::start(None);
    let sshd = Sshd::start();
    let gateway = Gateway::new(&cluster, &sshd);
    let client = Client::new();
    client.set_clusters(&gateway.profile);

    // A job that ends by itself: FINISHED, and --wait exits 0.
    let out = client.submit_finite("gateway");
    assert!(out.stdout.trim().starts_with("driver-"), "{}", out.stdout);

    // A failing one: FAILED, non-zero.
    client.submit_failing("gateway");

    // A long-running one: RUNNING, its logs, then a graceful kill with a final checkpoint.
    let feed = TextFeed::start("spark over ssh");
    let checkpoints = gateway.path().join("checkpoints");
    let env = format!("CHECKPOINT_DIR={}", checkpoints.display());
    let port = feed.port.to_string();
    let out = client
        .submit(
            "gateway",
            running.to_str().unwrap(),
            &["--env", &env],
            &["127.0.0.1", &port],
        )
        .success();
    let id = out.stdout.trim().to_owned();
    client.wait_for_state(&id, "RUNNING", MINUTE);
    client.wait_for_log(&id, "(ssh,", MINUTE);
    // The job must write a checkpoint as it stops.
    client.kill_expecting_final_checkpoint(&id, &checkpoints);
}
