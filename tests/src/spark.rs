//! A real Spark standalone cluster for a test: a master with its REST submission gateway and
//! one worker, from the PyPI `pyspark` package (`support/install-pyspark.sh`), on free ports
//! of 127.0.0.1, stopped (with every driver it started) when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, run, workspace_root};

/// A running master and worker.
pub struct SparkCluster {
    /// `SPARK_HOME`.
    pub spark_home: PathBuf,
    /// `spark://127.0.0.1:PORT` (the cluster port).
    pub master_url: String,
    /// `spark://127.0.0.1:PORT` of the REST gateway.
    pub rest_url: String,
    /// `http://127.0.0.1:PORT` of the master's web UI.
    pub ui_url: String,
    /// The worker's work folder (drivers run in `driver-*/` under it).
    pub work_dir: PathBuf,
    master: Child,
    worker: Child,
    dir: tempfile::TempDir,
}

/// The cached pyspark package's `SPARK_HOME` (installed on first use).
pub fn spark_home() -> PathBuf {
    static HOME: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HOME.get_or_init(|| {
        let install = workspace_root().join("tests/support/install-pyspark.sh");
        let out = run(Command::new("bash").arg(&install), Duration::from_secs(900)).success();
        PathBuf::from(out.stdout.trim())
    })
    .clone()
}

impl SparkCluster {
    /// Starts a master (REST gateway on) and a worker with 2 cores; with `jwt_secret`, the
    /// gateway demands HS256 tokens signed with it (Spark's `JWSFilter`).
    pub fn start(jwt_secret: Option<&str>) -> SparkCluster {
        let spark_home = spark_home();
        let dir = tempfile::Builder::new()
            .prefix("cargo-stream-spark-")
            .tempdir()
            .expect("a temporary folder");
        let work_dir = dir.path().join("work");
        std::fs::create_dir_all(&work_dir).unwrap();
        let (port, rest, ui, worker_ui) = (free_port(), free_port(), free_port(), free_port());
        let mut opts = format!("-Dspark.master.rest.enabled=true -Dspark.master.rest.port={rest}");
        if let Some(secret) = jwt_secret {
            opts.push_str(&format!(
                " -Dspark.master.rest.filters=org.apache.spark.ui.JWSFilter -Dspark.org.apache.spark.ui.JWSFilter.param.secretKey={secret}"
            ));
        }
        let master = daemon(&spark_home, dir.path(), "master")
            .env("SPARK_MASTER_OPTS", opts)
            .args([
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--webui-port",
                &ui.to_string(),
            ])
            .spawn()
            .expect("start the Spark master");
        let master_url = format!("spark://127.0.0.1:{port}");
        let worker = daemon(&spark_home, dir.path(), "worker")
            .args([
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                "127.0.0.1",
                "--webui-port",
                &worker_ui.to_string(),
                "--cores",
                "2",
                "--memory",
                "2g",
                "--work-dir",
            ])
            .arg(&work_dir)
            .arg(&master_url)
            .spawn()
            .expect("start the Spark worker");
        let cluster = SparkCluster {
            spark_home,
            master_url,
            rest_url: format!("spark://127.0.0.1:{rest}"),
            ui_url: format!("http://127.0.0.1:{ui}"),
            work_dir,
            master,
            worker,
            dir,
        };
        cluster.wait_ready(Duration::from_secs(90));
        cluster
    }

    /// The folder the test may use for shared files (a jar folder, checkpoints).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The master's `/json/` answer.
    pub fn master_json(&self) -> serde_json::Value {
        crate::http_get(&format!("{}/json/", self.ui_url))
            .and_then(|body| serde_json::from_str(&body).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    fn wait_ready(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let rest_port = self.rest_url.rsplit(':').next().unwrap().to_owned();
        loop {
            let json = self.master_json();
            let alive = json["workers"]
                .as_array()
                .is_some_and(|w| w.iter().any(|w| w["state"] == "ALIVE"));
            let rest_up = std::net::TcpStream::connect(format!("127.0.0.1:{rest_port}")).is_ok();
            if alive && rest_up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the Spark master and worker did not come up within {limit:?}; logs in {}:\n{}",
                self.dir.path().display(),
                self.daemon_logs()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The master's and worker's own logs, for failure messages.
    pub fn daemon_logs(&self) -> String {
        ["master", "worker"]
            .iter()
            .map(|n| {
                let text = std::fs::read_to_string(self.dir.path().join(format!("{n}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                format!(
                    "--- {n}.log (tail)\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn daemon(spark_home: &Path, dir: &Path, name: &str) -> Command {
    use std::os::unix::process::CommandExt as _;
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("create a log");
    let mut cmd = Command::new(spark_home.join("bin/spark-class"));
    cmd.env("SPARK_HOME", spark_home)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .env("SPARK_LOG_DIR", dir)
        .env("SPARK_PID_DIR", dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        // Its own process group: the drivers the worker starts join it, so that stopping the
        // group stops them too.
        .process_group(0);
    cmd
}

impl Drop for SparkCluster {
    fn drop(&mut self) {
        // The worker kills its drivers as it stops (SIGTERM runs its shutdown hook); then
        // anything left in either group is killed.
        for child in [&self.worker, &self.master] {
            signal_group(child.id(), "TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        for child in [&mut self.worker, &mut self.master] {
            while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        for child in [&mut self.worker, &mut self.master] {
            signal_group(child.id(), "KILL");
            let _ = child.wait();
        }
    }
}

fn signal_group(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}
