//! `cargo stream submit` and the lifecycle verbs against a real Spark 4.3 standalone master and
//! worker (from the PyPI package) with the REST gateway on 127.0.0.1.

use std::time::Duration;

use cargo_stream_tests::client::Client;
use cargo_stream_tests::feed::TextFeed;
use cargo_stream_tests::jobs;
use cargo_stream_tests::spark::SparkCluster;

const MINUTE: Duration = Duration::from_secs(60);

/// A `spark-rest` profile for `cluster`, jars staged in a folder the worker reads.
pub(crate) fn profile(name: &str, cluster: &SparkCluster, extra: &str) -> String {
    format!(
        "[clusters.{name}]\nkind = \"spark-rest\"\nmaster = \"{}\"\nmaster-ui = \"{}\"\ndriver-memory = \"256m\"\nupload = {{ to = \"dir\", path = \"{}\" }}\n{extra}\n",
        cluster.rest_url,
        cluster.ui_url,
        cluster.dir().join("jars").display()
    )
}

#[test]
fn spark_rest_job_runs_shows_logs_and_stops_with_a_final_checkpoint() {
    // Packaged before any server starts.
    jobs::running_word_count();
    let cluster = SparkCluster::start(None);
    let client = Client::new();
    client.set_clusters(&profile("spark", &cluster, ""));
    let feed = TextFeed::start("to be or not to be");
    let checkpoints = client.dir().join("checkpoints");
    let port = feed.port.to_string();
    let env = format!("CHECKPOINT_DIR={}", checkpoints.display());
    let (out, id) = client.submit_word_count("spark", &port, &["--env", &env]);
    assert!(id.starts_with("driver-"), "{id}");
    assert!(out.stderr.contains("Submitted"), "{}", out.stderr);

    let status = client.wait_for_state(&id, "RUNNING", MINUTE);
    assert_eq!(status["kind"], "spark-rest");
    let log = client.wait_for_log(&id, "(be,", MINUTE);
    assert!(log.contains("Time: "), "{log}");
    let errors = client.run(&["logs", &id, "--stderr"]).success();
    assert!(!errors.stdout.contains("panicked"), "{}", errors.stdout);

    // `logs --follow` prints as the job writes and returns when it ends.
    let mut follow = client.cmd(&["logs", &id, "--follow"]);
    let follower = std::thread::spawn(move || cargo_stream_tests::run(&mut follow, MINUTE));

    // The job must write a checkpoint as it stops.
    client.kill_expecting_final_checkpoint(&id, &checkpoints);
    let followed = follower.join().unwrap().success();
    assert!(
        followed.stdout.matches("Time: ").count() >= 3,
        "{}",
        followed.stdout
    );

    let listed = client.listed(&id);
    assert_eq!(listed["state"], "KILLED");
    assert_eq!(listed["cluster"], "spark");
}

#[test]
fn spark_rest_wait_exits_by_how_the_job_ended() {
    let jar = jobs::finite();
    let jar = jar.to_str().unwrap();
    let cluster = SparkCluster::start(None);
    let client = Client::new();
    client.set_clusters(&profile("spark", &cluster, ""));

    let out = client.submit_finite("spark");
    let id = out.stdout.trim();
    // Without `--artifact`, from the job's folder: packaged first, then submitted.
    let out = cargo_stream_tests::run(
        client
            .cmd(&["submit", "-c", "spark", "--wait", "--", "2"])
            .current_dir(jobs::finite_project()),
        Duration::from_secs(600),
    )
    .success();
    assert!(out.stderr.contains("Packaged"), "{}", out.stderr);
    assert!(out.stderr.contains("FINISHED"), "{}", out.stderr);
    let packaged = client.status(out.stdout.trim());
    assert_eq!(packaged["name"], "finite-job", "{packaged}");

    // Killing a job that ended is refused with the master's words.
    let out = client.run(&["kill", id]).failure();
    assert!(out.stderr.contains("the master said"), "{}", out.stderr);
    assert_eq!(client.status(id)["state"], "FINISHED");

    client.submit_failing("spark");

    // Supervised, a driver that crashes is started again by the worker.
    let marker = client.dir().join("crashed-once");
    let out = client
        .submit(
            "spark",
            jar,
            &["--supervise", "--wait"],
            &["crash-once", marker.to_str().unwrap()],
        )
        .success();
    assert!(marker.exists(), "the first run did not crash");
    let id = out.stdout.trim();
    let log = client.run(&["logs", id]).success();
    assert!(log.stdout.contains("done after"), "{}", log.stdout);
}

#[test]
fn spark_rest_errors_are_clear() {
    let jar = jobs::finite();
    let jar = jar.to_str().unwrap();
    let cluster = SparkCluster::start(None);
    let client = Client::new();
    let closed = cargo_stream_tests::free_port();
    let mut clusters = profile("spark", &cluster, "");
    // The worker cannot read the jar: the URL it is given points nowhere.
    clusters.push_str(&profile("unreadable", &cluster, "").replace(
        "upload = {",
        "upload = { url = \"file:///nonexistent/jars\",",
    ));
    clusters.push_str(&format!(
        "[clusters.down]\nkind = \"spark-rest\"\nmaster = \"spark://127.0.0.1:{closed}\"\nupload = {{ to = \"dir\", path = \"{}\" }}\n",
        client.dir().join("jars").display()
    ));
    // A gateway path that speaks another protocol version: the master answers 468.
    clusters.push_str(&profile("v2", &cluster, "").replace(
        &format!("master = \"{}\"", cluster.rest_url),
        &format!("master = \"{}/v2\"", cluster.rest_url),
    ));
    clusters.push_str(&profile("failover", &cluster, "").replace(
        &format!("master = \"{}\"", cluster.rest_url),
        &format!(
            "master = \"spark://127.0.0.1:{closed},{}\"",
            cluster.rest_url.trim_start_matches("spark://")
        ),
    ));
    client.set_clusters(&clusters);

    let out = client.submit("unreadable", jar, &["--wait"], &[]).failure();
    assert!(out.stderr.contains("ended ERROR"), "{}", out.stderr);
    assert!(
        out.stderr.contains("Exception from the cluster"),
        "{}",
        out.stderr
    );

    let out = client
        .submit("spark", jar, &["--conf", "spark.cores.max=many"], &[])
        .failure();
    assert!(out.stderr.contains("HTTP 400"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("Validation of message CreateSubmissionRequest failed"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("spark.cores.max"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("ServletHandler"),
        "stack frames: {}",
        out.stderr
    );

    let out = client.submit("v2", jar, &[], &[]).failure();
    assert!(out.stderr.contains("HTTP 468"), "{}", out.stderr);

    let out = client.submit("down", jar, &[], &[]).failure();
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{closed}")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("spark.master.rest.enabled"),
        "{}",
        out.stderr
    );

    // Fail-over: the first master is down, the second takes the job.
    let out = client.submit("failover", jar, &["--wait"], &[]).success();
    assert!(out.stderr.contains("FINISHED"), "{}", out.stderr);

    let out = client.submit("nope", jar, &[], &[]).failure();
    assert!(
        out.stderr.contains("unknown cluster `nope`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("`spark`"), "{}", out.stderr);

    // Nothing half-done: records only of the two submissions the cluster took.
    let out = client.run(&["list", "--json", "--offline"]).success();
    assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
}

#[test]
fn spark_rest_with_jwt_needs_the_secret() {
    let jar = jobs::finite();
    let jar = jar.to_str().unwrap();
    // 32 bytes, base64 without `+`, `/`, `-` or `_`, so that either alphabet reads it.
    let secret = "c2VjcmV0LWtleS1mb3ItY2FyZ28tc3RyZWFtLXRlc3RzMQ";
    let cluster = SparkCluster::start(Some(secret));
    let client = Client::new();
    let mut clusters = profile("open", &cluster, "");
    clusters.push_str(&profile(
        "signed",
        &cluster,
        "jwt-secret-env = \"TEST_SPARK_JWT\"",
    ));
    client.set_clusters(&clusters);

    let out = client.submit("open", jar, &[], &[]).failure();
    assert!(out.stderr.contains("HTTP 403"), "{}", out.stderr);
    assert!(out.stderr.contains("jwt-secret-env"), "{}", out.stderr);

    let out = client.submit("signed", jar, &[], &[]).failure();
    assert!(out.stderr.contains("`$TEST_SPARK_JWT`"), "{}", out.stderr);

    let wrong = "d3Jvbmctc2VjcmV0LWZvci1jYXJnby1zdHJlYW0tdGVzdHM";
    let out = run_with_secret(
        &client,
        wrong,
        &["submit", "-c", "signed", "--artifact", jar],
    );
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("HTTP 403"), "{}", out.stderr);
    assert!(
        !out.stderr.contains(wrong),
        "the secret must not be printed"
    );

    let out = run_with_secret(
        &client,
        secret,
        &["submit", "-c", "signed", "--artifact", jar, "--wait"],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("FINISHED"), "{}", out.stderr);
    assert!(!out.stderr.contains(secret) && !out.stdout.contains(secret));
}

fn run_with_secret(client: &Client, secret: &str, args: &[&str]) -> cargo_stream_tests::Run {
    cargo_stream_tests::run(
        client.cmd(args).env("TEST_SPARK_JWT", secret),
        Duration::from_secs(120),
    )
}
