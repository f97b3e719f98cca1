//! Time from submission to RUNNING on one Spark standalone cluster, side by side in one run:
//! `cargo stream submit` (native client, REST gateway) against the cluster's own
//! `spark-submit --deploy-mode cluster` (a JVM on the client) with the same jar and job.
//!
//! `cargo run --release -p cargo-stream-bench --bin submit_bench -- [ROUNDS]` (default 5).
//! Starts a real master and worker on 127.0.0.1 (from the cached PyPI `pyspark`), packages the
//! `running-word-count` template once, then alternates the two clients; each driver is
//! killed before the next round. Prints the medians and their ratio.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cargo_stream_tests::client::Client;
use cargo_stream_tests::feed::TextFeed;
use cargo_stream_tests::spark::SparkCluster;
use cargo_stream_tests::{http_get, jobs, run};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    // The client as users run it: a release build.
    if std::env::var_os("CARGO_STREAM_EXE").is_none() {
        let root = cargo_stream_tests::workspace_root();
        run(
            Command::new("cargo")
                .args(["build", "--release", "-p", "cargo-stream"])
                .current_dir(&root),
            Duration::from_secs(1800),
        )
        .success();
        // SAFETY: set before any thread that reads the environment is started.
        unsafe { std::env::set_var("CARGO_STREAM_EXE", root.join("target/release/cargo-stream")) };
    }
    eprintln!("packaging the running-word-count template...");
    let jar = jobs::running_word_count();
    let cluster = SparkCluster::start(None);
    let feed = TextFeed::start("to be or not to be");
    let client = Client::new();
    let jars = cluster.dir().join("jars");
    client.set_clusters(&format!(
        "[clusters.bench]\nkind = \"spark-rest\"\nmaster = \"{}\"\nmaster-ui = \"{}\"\ndriver-memory = \"256m\"\nupload = {{ to = \"dir\", path = \"{}\" }}\n",
        cluster.rest_url,
        cluster.ui_url,
        jars.display()
    ));
    let rest = cluster.rest_url.replace("spark://", "http://");
    let port = feed.port.to_string();
    // Stage once so that both clients submit an already-staged jar (the copy is not timed).
    let warm = ours(&client, jar, &port);
    kill(&client, &warm.0);
    let staged = std::fs::read_dir(&jars)
        .expect("the staged jar")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "jar"))
        .expect("a staged jar");

    let mut rows: Vec<(&str, [Duration; 3])> = Vec::new();
    for round in 0..rounds {
        let (id, client_done) = ours(&client, jar, &port);
        let running = until_running(&rest, &id, client_done.1);
        let output = until_output(&cluster, &id, client_done.1);
        rows.push(("cargo stream submit", [client_done.0, running, output]));
        kill(&client, &id);

        let (id, client_done) = spark_submit(&cluster, &staged, &port);
        let running = until_running(&rest, &id, client_done.1);
        let output = until_output(&cluster, &id, client_done.1);
        rows.push((
            "spark-submit --deploy-mode cluster",
            [client_done.0, running, output],
        ));
        spark_kill(&cluster, &id);
        eprintln!("round {} of {rounds} done", round + 1);
    }

    println!("| client | client exits | submit → RUNNING | submit → first batch printed |");
    println!("|---|---|---|---|");
    let mut medians = Vec::new();
    for name in ["cargo stream submit", "spark-submit --deploy-mode cluster"] {
        let median = |i: usize| {
            let mut v: Vec<Duration> = rows
                .iter()
                .filter(|r| r.0 == name)
                .map(|r| r.1[i])
                .collect();
            v.sort();
            v[v.len() / 2]
        };
        let m = [median(0), median(1), median(2)];
        println!(
            "| {name} | {:.2} s | {:.2} s | {:.2} s |",
            m[0].as_secs_f64(),
            m[1].as_secs_f64(),
            m[2].as_secs_f64()
        );
        medians.push(m);
    }
    let ratio = |i: usize| medians[1][i].as_secs_f64() / medians[0][i].as_secs_f64();
    println!(
        "\nmedians of {rounds} rounds; spark-submit / cargo stream submit: client {:.1}x, to RUNNING {:.1}x, to first batch {:.2}x",
        ratio(0),
        ratio(1),
        ratio(2)
    );
}

/// Polls the driver's stdout through the worker's web UI until the first batch is printed;
/// the time since `start`.
fn until_output(cluster: &SparkCluster, id: &str, start: Instant) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let master: serde_json::Value = http_get(&format!("{}/json/", cluster.ui_url))
            .and_then(|b| serde_json::from_str(&b).ok())
            .unwrap_or_default();
        let worker = master["activedrivers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["id"] == id)
            .and_then(|d| d["worker"].as_str())
            .and_then(|w| {
                master["workers"]
                    .as_array()?
                    .iter()
                    .find(|x| x["id"] == w)?["webuiaddress"]
                    .as_str()
            })
            .map(str::to_owned);
        if let Some(ui) = worker {
            let log = http_get(&format!(
                "{ui}/log/?driverId={id}&logType=stdout&offset=0&byteLength=10000"
            ))
            .unwrap_or_default();
            if log.contains("Time: ") {
                return start.elapsed();
            }
        }
        assert!(Instant::now() < deadline, "{id} printed no batch");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Submits with `cargo stream submit`; the driver ID, the time the client took, and when it
/// started.
fn ours(client: &Client, jar: &Path, port: &str) -> (String, (Duration, Instant)) {
    let start = Instant::now();
    let out = run(
        &mut client.cmd(&[
            "submit",
            "-c",
            "bench",
            "--artifact",
            jar.to_str().unwrap(),
            "--",
            "127.0.0.1",
            port,
        ]),
        Duration::from_secs(120),
    )
    .success();
    (out.stdout.trim().to_owned(), (start.elapsed(), start))
}

/// Submits the same staged jar with the cluster's `spark-submit` through the same gateway.
fn spark_submit(cluster: &SparkCluster, jar: &Path, port: &str) -> (String, (Duration, Instant)) {
    let start = Instant::now();
    let out = run(
        Command::new(cluster.spark_home.join("bin/spark-submit"))
            .env("SPARK_HOME", &cluster.spark_home)
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .args([
                "--master",
                &cluster.rest_url,
                "--deploy-mode",
                "cluster",
                "--conf",
                "spark.master.rest.enabled=true",
                "--driver-memory",
                "256m",
                "--class",
                "cargostream.Launcher",
                &format!("file://{}", jar.display()),
                "127.0.0.1",
                port,
            ]),
        Duration::from_secs(120),
    )
    .success();
    let text = format!("{}{}", out.stdout, out.stderr);
    let id = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|w| w.starts_with("driver-"))
        .unwrap_or_else(|| panic!("no driver ID in spark-submit's output:\n{text}"))
        .to_owned();
    (id, (start.elapsed(), start))
}

/// Polls the gateway (every 20 ms) until the driver is RUNNING; the time since `start`.
fn until_running(rest: &str, id: &str, start: Instant) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let body = http_get(&format!("{rest}/v1/submissions/status/{id}")).unwrap_or_default();
        let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if status["driverState"] == "RUNNING" {
            return start.elapsed();
        }
        assert!(Instant::now() < deadline, "{id} never ran: {status}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(client: &Client, id: &str) {
    run(&mut client.cmd(&["kill", id]), Duration::from_secs(120)).success();
}

fn spark_kill(cluster: &SparkCluster, id: &str) {
    run(
        Command::new(cluster.spark_home.join("bin/spark-submit"))
            .env("SPARK_HOME", &cluster.spark_home)
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .args([
                "--master",
                &cluster.rest_url,
                "--conf",
                "spark.master.rest.enabled=true",
                "--kill",
                id,
            ]),
        Duration::from_secs(120),
    )
    .success();
    // Wait for the worker to free the driver's cores.
    let rest = cluster.rest_url.replace("spark://", "http://");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let body = http_get(&format!("{rest}/v1/submissions/status/{id}")).unwrap_or_default();
        if body.contains("KILLED") || body.contains("FINISHED") || body.contains("FAILED") {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
