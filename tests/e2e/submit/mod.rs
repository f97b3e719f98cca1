//! `cargo stream submit` and the lifecycle verbs where no server is needed: profiles, plans
//! and the errors of bad inputs, each leaving nothing behind.

mod adopted;
mod host_keys;
mod instances;
mod reliability;
mod secrets;
mod slurm;
mod slurm_ssh;
pub(crate) mod spark;
pub(crate) mod spark_ssh;
mod ssh;
mod tokens;

use std::time::Duration;

use cargo_stream_tests::client::Client;
use cargo_stream_tests::{cargo_stream, run};

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn unknown_cluster_lists_the_known_ones() {
    let client = Client::new();
    client.set_clusters("[clusters.prod]\nkind = \"ssh\"\nhost = \"10.0.0.5\"\n");
    let out = client.submit("prdo", "x.jar", &[], &[]).failure();
    assert!(
        out.stderr.contains("unknown cluster `prdo`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("help: the clusters defined are `prod`"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_profile_names_the_file_and_line() {
    let client = Client::new();
    client.set_clusters(
        "# my clusters\n[clusters.prod]\nkind = \"spark-rest\"\nmaster = \"spark://m:6066\"\nsupervize = true\n",
    );
    let out = client.submit("prod", "x.jar", &[], &[]).failure();
    assert!(out.stderr.contains("clusters.toml"), "{}", out.stderr);
    assert!(out.stderr.contains("line 5"), "{}", out.stderr);
    assert!(out.stderr.contains("supervize"), "{}", out.stderr);

    client.set_clusters("[clusters.prod]\nkind = \"yarn\"\n");
    let out = client.submit("prod", "x.jar", &[], &[]).failure();
    assert!(out.stderr.contains("unknown kind `yarn`"), "{}", out.stderr);
    assert!(
        out.stderr.contains("clusters.toml`, line 2"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("spark-rest"), "{}", out.stderr);
}

#[test]
fn dry_run_packages_nothing_and_shows_the_plan() {
    let client = Client::new();
    run(
        &mut cargo_stream(client.dir(), &["new", "plan-wc", "--yes"]),
        MINUTE,
    )
    .success();
    let project = client.dir().join("plan-wc");
    // The profile in the job's Stream.toml; the flags and the environment override it.
    let stream_toml = project.join("Stream.toml");
    let mut text = std::fs::read_to_string(&stream_toml).unwrap();
    text.push_str(
        "\n[clusters.spark]\nkind = \"spark-rest\"\nmaster = \"spark://127.0.0.1:6066\"\ndriver-memory = \"1g\"\nupload = { to = \"dir\", path = \"/shared/jobs\" }\nenv = { A = \"1\" }\n",
    );
    std::fs::write(&stream_toml, text).unwrap();
    let mut cmd = client.cmd(&[
        "submit",
        "-c",
        "spark",
        "--dry-run",
        "--json",
        "--driver-cores",
        "2",
        "--env",
        "B=2",
        "--target",
        "aarch64-unknown-linux-gnu",
        "--",
        "localhost",
        "9999",
    ]);
    cmd.current_dir(&project)
        .env("CARGO_STREAM_CLUSTERS_SPARK_SUPERVISE", "true");
    let out = run(&mut cmd, MINUTE).success();
    let plan: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(plan["reason"], "submit-plan");
    assert_eq!(plan["kind"], "spark-rest");
    assert_eq!(plan["job"]["driver_memory"], "1g");
    assert_eq!(plan["job"]["driver_cores"], 2);
    assert_eq!(plan["job"]["supervise"], true);
    // issue 14: the values are secrets: the plan names the variables only.
    assert_eq!(
        plan["job"]["env"],
        serde_json::json!({"A": "***", "B": "***"})
    );
    assert_eq!(
        plan["job"]["args"],
        serde_json::json!(["localhost", "9999"])
    );
    // `--target` reaches the packaging: the artifact is the target's.
    assert!(
        plan["job"]["artifact"]
            .as_str()
            .unwrap()
            .ends_with("-aarch64-unknown-linux-gnu.jar"),
        "{plan}"
    );
    assert!(
        !project.join("target/stream").exists(),
        "a dry run writes nothing"
    );
    let out = client.run(&["list", "--offline", "--json"]).success();
    assert_eq!(out.stdout.trim(), "", "a dry run records nothing");
}

#[test]
fn artifacts_are_checked_before_anything_is_sent() {
    let client = Client::new();
    let jobs = client.dir().join("jobs");
    client.set_clusters(&format!(
        "[clusters.spark]\nkind = \"spark-rest\"\nmaster = \"spark://127.0.0.1:9\"\nupload = {{ to = \"dir\", path = \"{}\" }}\n",
        jobs.display()
    ));
    let missing = client.submit("spark", "nope.jar", &[], &[]).failure();
    assert!(
        missing.stderr.contains("no artifact at `nope.jar`"),
        "{}",
        missing.stderr
    );

    // A jar cut off after packaging no longer matches its `.sha256`.
    let jar = client.dir().join("cut.jar");
    std::fs::write(&jar, b"PK\x03\x04 half a jar").unwrap();
    std::fs::write(
        client.dir().join("cut.jar.sha256"),
        format!("{}  cut.jar\n", "0".repeat(64)),
    )
    .unwrap();
    let out = client
        .submit("spark", jar.to_str().unwrap(), &[], &[])
        .failure();
    assert!(
        out.stderr.contains("does not match its checksum file"),
        "{}",
        out.stderr
    );

    // Not a bundle at all.
    std::fs::remove_file(client.dir().join("cut.jar.sha256")).unwrap();
    let out = client
        .submit("spark", jar.to_str().unwrap(), &[], &[])
        .failure();
    assert!(
        out.stderr
            .contains("is not a bundle written by `cargo stream package`"),
        "{}",
        out.stderr
    );
    assert!(!jobs.exists(), "nothing was staged");

    let out = client.run(&["status", "driver-1"]).failure();
    assert!(
        out.stderr.contains("no submission `driver-1`"),
        "{}",
        out.stderr
    );
    let out = client.run(&["kill", "../x"]).failure();
    assert!(
        out.stderr.contains("is not a submission ID"),
        "{}",
        out.stderr
    );
}

#[test]
fn env_values_take_their_keys_type() {
    // r11: `CARGO_STREAM_CLUSTERS_PROD_SPARK_VERSION=4` was read as the integer 4 and refused
    // ("invalid type: integer `4`, expected a string").
    let client = Client::new();
    client.set_clusters(
        "[clusters.prod]\nkind = \"spark-rest\"\nmaster = \"spark://127.0.0.1:9\"\nupload = { to = \"dir\", path = \"/shared/jobs\" }\n",
    );
    let mut cmd = client.cmd(&[
        "submit",
        "-c",
        "prod",
        "--dry-run",
        "--json",
        "--artifact",
        "x.jar",
    ]);
    cmd.env("CARGO_STREAM_CLUSTERS_PROD_SPARK_VERSION", "4")
        .env("CARGO_STREAM_CLUSTERS_PROD_DRIVER_CORES", "3");
    let out = run(&mut cmd, MINUTE).success();
    let plan: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(plan["job"]["driver_cores"], 3, "{plan}");
    // A number where the key wants one is still checked.
    let mut cmd = client.cmd(&["submit", "-c", "prod", "--dry-run", "--artifact", "x.jar"]);
    cmd.env("CARGO_STREAM_CLUSTERS_PROD_DRIVER_CORES", "many");
    let out = run(&mut cmd, MINUTE).failure();
    assert!(
        out.stderr
            .contains("CARGO_STREAM_CLUSTERS_PROD_DRIVER_CORES=many"),
        "{}",
        out.stderr
    );
}
