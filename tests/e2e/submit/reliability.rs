//! The client's reliability against a real Spark 4.3 standalone master: a gateway that goes
//! away and comes back mid-`--wait`, exit codes a script can act on, jobs followed from a
//! machine that did not submit them, and errors for a `master` on the wrong port.

use std::net::SocketAddr;
use std::time::Duration;

use cargo_stream_tests::client::Client;
use cargo_stream_tests::jobs;
use cargo_stream_tests::proxy::Proxy;
use cargo_stream_tests::spark::SparkCluster;
use cargo_stream_tests::{Job, run};

const MINUTE: Duration = Duration::from_secs(60);

/// `spark://127.0.0.1:PORT` or `http://127.0.0.1:PORT` as a socket address.
fn addr(url: &str) -> SocketAddr {
    let hostport = url.split("://").nth(1).unwrap().trim_end_matches('/');
    hostport.parse().unwrap()
}

/// A `spark-rest` profile whose gateway is `master`, jars staged where the worker reads them.
fn profile(name: &str, cluster: &SparkCluster, master: &str) -> String {
    format!(
        "[clusters.{name}]\nkind = \"spark-rest\"\nmaster = \"{master}\"\nmaster-ui = \"{}\"\ndriver-memory = \"256m\"\nupload = {{ to = \"dir\", path = \"{}\" }}\n",
        cluster.ui_url,
        cluster.dir().join("jars").display()
    )
}

/// Waits (a minute at most) until `done`, checked every 50 ms; panics naming `what` if not.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + MINUTE;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "not {what} in time");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn spark_rest_wait_rides_out_a_gateway_outage_and_exit_codes_tell_outcomes() {
    let jar = jobs::finite();
    let jar = jar.to_str().unwrap();
    let cluster = SparkCluster::start(None);
    let proxy = Proxy::start(addr(&cluster.rest_url));
    let client = Client::new();
    let proxied = format!("spark://127.0.0.1:{}", proxy.port);
    let mut clusters = profile("spark", &cluster, &proxied);
    clusters.push_str(&profile("direct", &cluster, &cluster.rest_url));
    client.set_clusters(&clusters);

    // The gateway goes away for 4 s while `--wait` polls it, then comes back: the wait goes on
    // and ends with the job's real final state.
    let mut submit = client.cmd(&[
        "submit",
        "-c",
        "spark",
        "--artifact",
        jar,
        "--wait",
        "--",
        "40",
    ]);
    submit.env("CARGO_STREAM_RETRY_SECS", "60");
    let mut waiting = Job::start(&mut submit);
    let id = waiting.wait_for(MINUTE, |l| l.starts_with("driver-"));
    let polled = proxy.connections();
    wait_until("`--wait` polled", || proxy.connections() > polled);
    proxy.cut();
    std::thread::sleep(Duration::from_secs(4));
    proxy.restore();
    let out = waiting.wait(MINUTE * 2);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("is FINISHED"), "{}", out.stderr);
    assert!(
        out.stderr.contains("cluster `spark` could not be reached"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{}", proxy.port)),
        "the retry names the host: {}",
        out.stderr
    );
    assert!(out.stderr.contains("trying again in"), "{}", out.stderr);
    assert_eq!(client.status(&id)["state"], "FINISHED");

    // Down for longer than the retry budget: exit 5, naming the host and the cause.
    proxy.cut();
    let mut status = client.cmd(&["status", &id]);
    status.env("CARGO_STREAM_RETRY_SECS", "2");
    let out = run(&mut status, MINUTE);
    assert_eq!(out.code, Some(5), "{}", out.stderr);
    assert!(
        out.stderr.contains("Connection refused") || out.stderr.contains("connection refused"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("could not be reached for"),
        "{}",
        out.stderr
    );
    proxy.restore();

    // A job that panics: exit 3, and the panic is shown.
    let out = client.submit("direct", jar, &["--wait"], &["panic"]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("ended FAILED"), "{}", out.stderr);
    assert!(out.stderr.contains("panicked at"), "{}", out.stderr);
    assert!(out.stderr.contains("asked to panic"), "{}", out.stderr);
    let failed = out.stdout.trim().to_owned();
    let out = client.run(&["status", &failed, "--wait"]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    // Spark's status has no exit code: the launcher's last stderr line gives it.
    assert!(
        out.stderr
            .contains("cargo-stream launcher: the job exited with code 101"),
        "{}",
        out.stderr
    );
    let out = client.run(&["status", &failed]).success();
    assert!(
        out.stderr.contains("the job exited with code 101"),
        "{}",
        out.stderr
    );

    // `--timeout` passes first: exit 6 (the job keeps running); killed: exit 4.
    let out = client.submit("direct", jar, &["--wait", "--timeout", "1"], &["400"]);
    assert_eq!(out.code, Some(6), "{}", out.stderr);
    let long = out.stdout.trim().to_owned();
    client.run(&["kill", &long]).success();
    let out = client.run(&["status", &long, "--wait"]);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(out.stderr.contains("ended KILLED"), "{}", out.stderr);

    // A tool error is 1; a usage error 2.
    assert_eq!(client.run(&["status", "driver-nope"]).code, Some(1));
    assert_eq!(client.run(&["status", "--no-such-flag"]).code, Some(2));
}

#[test]
fn spark_rest_jobs_are_followed_without_a_record_and_wrong_ports_are_explained() {
    let jar = jobs::finite();
    let jar = jar.to_str().unwrap();
    let cluster = SparkCluster::start(None);
    let submitter = Client::new();
    let mut clusters = profile("spark", &cluster, &cluster.rest_url);
    // The web UI's port, and the cluster (RPC) port, given as the gateway.
    clusters.push_str(&profile(
        "ui",
        &cluster,
        &cluster.ui_url.replace("http://", "spark://"),
    ));
    clusters.push_str(&profile("legacy", &cluster, &cluster.master_url));
    submitter.set_clusters(&clusters);

    let out = submitter.submit("ui", jar, &[], &[]).failure();
    assert!(out.stderr.contains("web UI"), "{}", out.stderr);
    assert!(out.stderr.contains("6066"), "{}", out.stderr);
    assert!(
        out.stderr.contains("spark.master.rest.enabled=true"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("<html"), "{}", out.stderr);
    let out = submitter.submit("legacy", jar, &[], &[]).failure();
    assert!(out.stderr.contains("7077"), "{}", out.stderr);
    assert!(out.stderr.contains("6066"), "{}", out.stderr);
    assert!(
        out.stderr.contains("spark.master.rest.enabled=true"),
        "{}",
        out.stderr
    );

    let done = submitter.submit_finite("spark").stdout.trim().to_owned();
    let out = submitter.submit("spark", jar, &[], &["400"]).success();
    let running = out.stdout.trim().to_owned();

    // A teammate with the same profile and no records.
    let teammate = Client::new();
    teammate.set_clusters(&clusters);
    let out = teammate.run(&["status", &done]).failure();
    assert!(out.stderr.contains("--cluster NAME"), "{}", out.stderr);
    let out = teammate
        .run(&["status", "--cluster", "spark", &done, "--json"])
        .success();
    let status: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(status["state"], "FINISHED", "{status}");
    let out = teammate
        .run(&["logs", "--cluster", "spark", &done])
        .success();
    assert!(
        out.stdout.contains("done after 3 batches"),
        "{}",
        out.stdout
    );

    let out = teammate
        .run(&["list", "--cluster", "spark", "--json"])
        .success();
    for id in [&done, &running] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.contains(id.as_str()))
            .unwrap_or_else(|| panic!("`{id}` not listed:\n{}", out.stdout));
        let job: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(job["reason"], "cluster-job", "{job}");
        assert_eq!(job["cluster"], "spark", "{job}");
    }
    let out = teammate
        .run(&["kill", "--cluster", "spark", &running, "--json"])
        .success();
    let killed: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(killed["state"], "KILLED", "{killed}");
    // Nothing recorded on the teammate's machine.
    let out = teammate.run(&["list", "--offline", "--json"]).success();
    assert_eq!(out.stdout.trim(), "", "{}", out.stdout);
}

#[test]
fn ssh_jobs_are_followed_without_a_record_and_stale_partial_uploads_are_swept() {
    let jar = jobs::finite();
    let stem = jar.file_stem().unwrap().to_string_lossy().into_owned();
    let sshd = cargo_stream_tests::sshd::Sshd::start();
    let submitter = Client::new();
    submitter.set_clusters(&sshd.profile("box"));
    // Partial uploads an earlier cut-off connection left: one of this job (another build),
    // long untouched; one of this job being written right now; one of another job.
    let stale = format!(".{stem}-000000000000.jar.part-aaaa");
    let live = format!(".{stem}-111111111111.jar.part-bbbb");
    let other = ".other-job-222222222222.jar.part-cccc".to_owned();
    let out = sshd.run_as_user(&format!(
        "mkdir -p cargo-stream/uploads && cd cargo-stream/uploads && touch -d '10 minutes ago' {stale} {other} && touch {live}"
    ));
    assert!(out.status.success(), "{out:?}");

    let id = submitter.submit_finite("box").stdout.trim().to_owned();
    let left = sshd.entries("cargo-stream/uploads");
    assert!(!left.contains(&stale), "the stale partial stayed: {left:?}");
    assert!(left.contains(&live), "a live upload was removed: {left:?}");
    assert!(
        left.contains(&other),
        "another job's file was removed: {left:?}"
    );

    // A teammate with the same profile and no records.
    let teammate = Client::new();
    teammate.set_clusters(&sshd.profile("box"));
    let out = teammate
        .run(&["status", "--cluster", "box", &id, "--json"])
        .success();
    let status: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(status["state"], "FINISHED", "{status}");
    let out = teammate.run(&["logs", "-c", "box", &id]).success();
    assert!(
        out.stdout.contains("done after 3 batches"),
        "{}",
        out.stdout
    );
    let out = teammate
        .run(&["status", "-c", "box", "nope-20260101-000000-0000"])
        .failure();
    assert!(out.stderr.contains("has no job"), "{}", out.stderr);
    let out = teammate
        .run(&["list", "--cluster", "box", "--json"])
        .success();
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("`{id}` not listed:\n{}", out.stdout));
    let job: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(job["reason"], "cluster-job", "{job}");
    assert_eq!(job["state"], "FINISHED", "{job}");
    let out = teammate.run(&["list", "--offline", "--json"]).success();
    assert_eq!(out.stdout.trim(), "", "{}", out.stdout);
}

/// issue 14: `--wait` over SSH rides out a connection cut mid-wait: the dropped session is
/// replaced by a new one (the host key checked again) once the host answers again.
#[test]
fn ssh_wait_reconnects_after_the_connection_is_cut() {
    let jar = jobs::finite();
    let sshd = cargo_stream_tests::sshd::Sshd::start();
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], sshd.port())));
    let client = Client::new();
    client.set_clusters(&sshd.profile_through("box", proxy.port));
    // 100 batches of 200 ms: still running when the connection is cut.
    let out = client
        .submit("box", jar.to_str().unwrap(), &[], &["100"])
        .success();
    let id = out.stdout.trim().to_owned();
    let submitted = proxy.connections();
    let logins = || sshd.log().matches("Accepted publickey").count();
    let logged_in = logins();
    let mut status = client.cmd(&["status", &id, "--wait"]);
    status.env("CARGO_STREAM_RETRY_SECS", "60");
    let waiting = Job::start(&mut status);
    // Cut the connection `--wait` polls over once it is logged in.
    wait_until("`--wait` logged in", || logins() > logged_in);
    proxy.cut();
    std::thread::sleep(Duration::from_secs(3));
    proxy.restore();
    let out = waiting.wait(MINUTE * 2);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("cluster `box` could not be reached"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("is FINISHED"), "{}", out.stderr);
    assert!(proxy.connections() > submitted + 1, "no new connection");
    assert_eq!(client.status(&id)["state"], "FINISHED");
}
