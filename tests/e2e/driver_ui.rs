//! A submitted job's status server through the CLI: `status` reads the driver's streaming
//! statistics where the job announced its page (directly for `spark-rest`, through the SSH
//! connection for `ssh`), `status --watch` follows them until the job ends, and `ui` serves the
//! page of the ended job from its event log (fetched over SSH, or read in place).

use std::time::{Duration, Instant};

use cargo_stream_tests::client::Client;
use cargo_stream_tests::feed::TextFeed;
use cargo_stream_tests::spark::SparkCluster;
use cargo_stream_tests::sshd::Sshd;
use cargo_stream_tests::{Job, http_get, jobs};
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);

/// Polls `status ID --json` until `pred` holds for its `driver` object; returns the status.
fn wait_for_driver(client: &Client, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + MINUTE;
    loop {
        let status = client.status(id);
        if pred(&status["driver"]) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the driver of `{id}` did not show what was expected within a minute: {status}\n{}",
            client.run(&["logs", id, "--stderr"]).stdout
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// With the feed paused, the driver's numbers settle on what the job was sent: every line a
/// record, received and processed, in completed batches; one active receiver.
fn assert_counts_match_the_feed(client: &Client, id: &str, feed: &TextFeed) -> Value {
    wait_for_driver(client, id, |d| {
        d["statistics"]["numProcessedRecords"].as_u64() > Some(0)
    });
    feed.pause();
    let sent = feed.sent();
    let status = wait_for_driver(client, id, |d| {
        d["statistics"]["numProcessedRecords"] == sent && d["statistics"]["numActiveBatches"] == 0
    });
    let driver = &status["driver"];
    let stats = &driver["statistics"];
    assert_eq!(status["state"], "RUNNING", "{status}");
    assert_eq!(stats["numReceivedRecords"], sent, "{status}");
    assert_eq!(stats["batchDuration"], 1000, "{status}");
    assert!(
        stats["numTotalCompletedBatches"].as_u64().unwrap() >= 2,
        "{status}"
    );
    assert!(stats["avgInputRate"].as_f64().unwrap() > 0.0, "{status}");
    assert!(stats["avgProcessingTime"].is_u64(), "{status}");
    assert_eq!(stats["numActiveReceivers"], 1, "{status}");
    assert_eq!(driver["receivers"][0]["isActive"], true, "{status}");
    assert_eq!(driver["lag"], serde_json::json!([]), "{status}");
    feed.resume();
    status
}

/// `cargo stream ui TARGET --json` started; the URL it serves.
fn serve(client: &Client, target: &str) -> (Job, String) {
    let mut job = Job::start(&mut client.cmd(&["ui", target, "--addr", "127.0.0.1:0", "--json"]));
    let line = job.wait_for(MINUTE, |l| l.contains("\"serving\""));
    let value: Value = serde_json::from_str(&line).unwrap();
    let url = value["url"].as_str().unwrap().to_owned();
    (job, url)
}

/// The statistics and application the history server at `url` serves.
fn history_of(url: &str) -> (Value, Value) {
    let apps: Value =
        serde_json::from_str(&http_get(&format!("{url}api/v1/applications")).unwrap()).unwrap();
    let app = apps[0].clone();
    let stats = http_get(&format!(
        "{url}api/v1/applications/{}/streaming/statistics",
        app["id"].as_str().unwrap()
    ))
    .unwrap();
    (serde_json::from_str(&stats).unwrap(), app)
}

#[test]
fn ssh_status_reads_the_driver_through_ssh_and_ui_serves_its_history() {
    jobs::running_word_count();
    let sshd = Sshd::start();
    let client = Client::new();
    client.set_clusters(&sshd.profile("box"));
    let feed = TextFeed::start("to be or not to be");
    let (_, id) = client.submit_word_count(
        "box",
        &feed.port.to_string(),
        &["--env", "CHECKPOINT_DIR=checkpoints"],
    );
    client.wait_for_state(&id, "RUNNING", MINUTE);

    // The driver binds its 127.0.0.1 (the default); the CLI reaches it through SSH.
    let status = assert_counts_match_the_feed(&client, &id, &feed);
    let url = status["driver"]["url"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{status}");

    // The human form: the state on stdout, the numbers on stderr.
    let out = client.run(&["status", &id]).success();
    assert_eq!(out.stdout.trim(), "RUNNING");
    for needle in [
        &format!("Status page {url}") as &str,
        "Input rate",
        "records/s",
        "Delays scheduling",
        "Receiver 0 socket_text_stream(127.0.0.1:",
        ": active, ",
    ] {
        assert!(
            out.stderr.contains(needle),
            "{needle:?} in:\n{}",
            out.stderr
        );
    }

    // A driver that does not answer: said so, and the cluster's state still shown.
    let pid =
        std::fs::read_to_string(sshd.home().join("cargo-stream").join(&id).join("pid")).unwrap();
    let pid = pid.trim();
    let signal = |s: &str| {
        let out = sshd.run_as_user(&format!("/bin/kill -s {s} -- -{pid}"));
        assert!(out.status.success(), "{out:?}");
    };
    signal("STOP");
    let out = client.run(&["status", &id]);
    signal("CONT");
    let out = out.success();
    assert_eq!(out.stdout.trim(), "RUNNING");
    assert!(out.stderr.contains("Unreachable driver:"), "{}", out.stderr);

    // On a terminal (a pty from util-linux's `script`), `--watch` redraws in place: up to the
    // previous block's first line, cleared to the end, then the new block.
    let cmd = client.cmd(&["status", &id, "--watch", "--color", "never"]);
    let mut line = format!("{:?}", cmd.get_program());
    for arg in cmd.get_args() {
        line.push_str(&format!(" {:?}", arg));
    }
    let mut on_tty = std::process::Command::new("script");
    on_tty
        .args(["-qefc", &line, "/dev/null"])
        .current_dir(client.dir());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => on_tty.env(k, v),
            None => on_tty.env_remove(k),
        };
    }
    let mut tty = Job::start(&mut on_tty);
    let redrawn = tty.wait_for(MINUTE, |l| l.contains("\x1b[J"));
    assert!(redrawn.contains("State"), "{redrawn:?}");
    drop(tty);

    // `--watch` prints each refresh (no terminal: plainly, one JSON line each) and ends with
    // the job.
    let mut watch = Job::start(&mut client.cmd(&["status", &id, "--watch", "--json"]));
    for _ in 0..2 {
        watch.wait_for(MINUTE, |l| l.contains("numTotalCompletedBatches"));
    }
    let last = client.status(&id)["driver"]["statistics"]["numTotalCompletedBatches"]
        .as_u64()
        .unwrap();
    client.run(&["kill", &id]).success();
    watch.wait_for(MINUTE, |l| l.contains("\"state\":\"KILLED\""));

    // The ended job's page, from its event log fetched over SSH...
    let (server, url) = serve(&client, &id);
    let (stats, app) = history_of(&url);
    assert_eq!(app["attempts"][0]["completed"], true, "{app}");
    assert!(
        stats["numTotalCompletedBatches"].as_u64().unwrap() >= last,
        "{stats}"
    );
    assert!(http_get(&url).unwrap().contains("<svg"));
    let run = server.terminate(MINUTE);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("Fetching"), "{}", run.stderr);

    // ... and from the checkpoint directory on this machine: the same numbers.
    let dir = sshd
        .home()
        .join("cargo-stream")
        .join(&id)
        .join("checkpoints");
    let (server, url) = serve(&client, dir.to_str().unwrap());
    assert_eq!(history_of(&url).0, stats);
    drop(server);

    let out = client.run(&["ui", "no-such-job"]).failure();
    assert!(
        out.stderr
            .contains("is neither a folder on this machine nor a submission ID"),
        "{}",
        out.stderr
    );
}

/// A word count submitted to a Spark master, first through its REST gateway with the status
/// server on every interface (reached directly), then with the cluster's `spark-submit` on a
/// gateway host over SSH, bound to the driver's 127.0.0.1 (reached through the gateway, which
/// is the worker's host); each one's page served from its event log once it is killed. One
/// Spark master and worker for both.
#[test]
fn spark_status_reaches_the_driver_directly_or_through_the_gateway_and_ui_serves_its_log() {
    let running = jobs::running_word_count();
    let cluster = SparkCluster::start(None);
    let sshd = Sshd::start();
    let gateway = crate::submit::spark_ssh::Gateway::new(&cluster, &sshd);
    let client = Client::new();
    client.set_clusters(&format!(
        "{}\n{}",
        crate::submit::spark::profile("spark", &cluster, ""),
        gateway.profile
    ));

    // Through the REST gateway, bound to every interface: reached directly, announced by name.
    let feed = TextFeed::start("to be or not to be");
    let checkpoints = client.dir().join("checkpoints");
    let (_, id) = client.submit_word_count(
        "spark",
        &feed.port.to_string(),
        &[
            "--env",
            &format!("CHECKPOINT_DIR={}", checkpoints.display()),
            "--env",
            "CARGO_STREAM_UI_HOST=0.0.0.0",
        ],
    );
    client.wait_for_state(&id, "RUNNING", MINUTE);
    let status = assert_counts_match_the_feed(&client, &id, &feed);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let url = status["driver"]["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("http://{}:", host.trim())),
        "{status}"
    );
    client.run(&["kill", &id]).success();
    // Its folder is on this machine: read in place.
    let (server, url) = serve(&client, &id);
    let (stats, app) = history_of(&url);
    assert_eq!(app["attempts"][0]["completed"], true, "{app}");
    assert!(
        stats["numTotalCompletedBatches"].as_u64().unwrap() >= 2,
        "{stats}"
    );
    let run = server.terminate(MINUTE);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!run.stderr.contains("Fetching"), "{}", run.stderr);

    // With `spark-submit` on the gateway, bound to the worker's 127.0.0.1: the gateway is that
    // host (its `hostname` is the one the driver announced), so the CLI goes through it.
    let feed = TextFeed::start("spark over ssh");
    let checkpoints = gateway.path().join("checkpoints");
    let env = format!("CHECKPOINT_DIR={}", checkpoints.display());
    let out = client
        .submit(
            "gateway",
            running.to_str().unwrap(),
            &["--env", &env],
            &["127.0.0.1", &feed.port.to_string()],
        )
        .success();
    let id = out.stdout.trim().to_owned();
    client.wait_for_state(&id, "RUNNING", MINUTE);
    let status = assert_counts_match_the_feed(&client, &id, &feed);
    let url = status["driver"]["url"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{status}");
    client.run(&["kill", &id]).success();
    // Its log fetched over SSH.
    let (server, url) = serve(&client, &id);
    let (stats, _) = history_of(&url);
    assert!(
        stats["numTotalCompletedBatches"].as_u64().unwrap() >= 2,
        "{stats}"
    );
    let run = server.terminate(MINUTE);
    assert!(run.stderr.contains("Fetching"), "{}", run.stderr);
}
