//! Kafka jobs end to end: the `kafka-word-count` template run against a real broker (Tansu on
//! 127.0.0.1, or the Kafka named by `KAFKA_BOOTSTRAP`) and killed with SIGKILL; the
//! `kafka-user-totals` exercise, failing as generated and passing once solved, then counting
//! every click exactly once in PostgreSQL across kills; and the bundle of a Kafka job, whose
//! binary has librdkafka linked in and runs from the unzipped bundle.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cargo_stream_tests::kafka::Broker;
use cargo_stream_tests::postgres::Postgres;
use cargo_stream_tests::{
    Job, cargo, cargo_stream, copy_over, e2e_target_dir, run, workspace_root,
};

const MINUTE: Duration = Duration::from_secs(60);
const BUILD: Duration = Duration::from_secs(1500);

/// Starts a broker with `topic` (3 partitions) on it.
fn broker_with(topic: &str) -> Broker {
    let broker = Broker::start();
    if broker.is_tansu() {
        broker.create_topic(topic, 3);
    }
    broker
}

/// `cargo stream new NAME ARGS..` in `dir`; returns the project's folder.
fn new(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    run(
        &mut cargo_stream(dir, &[&["new", name], args].concat()),
        MINUTE,
    )
    .success();
    dir.join(name)
}

/// Sends each line of `text` to `topic` with the template's `produce` example (built by
/// `cargo build --examples` of a `kafka-word-count` project).
fn produce(broker: &Broker, topic: &str, text: &str) {
    let exe = e2e_target_dir().join("debug/examples/produce");
    let mut child = Command::new(&exe)
        .args([topic, &broker.bootstrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("failed to start {}: {e}", exe.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let deadline = Instant::now() + MINUTE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`produce {topic}` did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "`produce {topic}` failed: {stderr}");
    let lines = text.lines().count();
    assert!(
        stderr.contains(&format!("sent {lines} line(s) to `{topic}`")),
        "{stderr}"
    );
}

#[test]
fn kafka_word_count_counts_a_topic_and_resumes_from_its_checkpoint_after_sigkill() {
    let broker = broker_with("lines");
    let tmp = tempfile::tempdir().unwrap();
    let project = new(tmp.path(), "kafka-wc", &["--template", "kafka-word-count"]);
    let cargo_toml = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(
        cargo_toml.contains("features = [\"kafka\"]"),
        "{cargo_toml}"
    );
    run(
        &mut cargo(&project, &["build", "--bins", "--examples"]),
        BUILD,
    )
    .success();
    let exe = e2e_target_dir().join("debug/kafka-wc");
    let bootstrap = broker.bootstrap();
    let start = || {
        Job::start(
            Command::new(&exe)
                .args([bootstrap.as_str(), "kafka-wc-e2e", "lines"])
                .current_dir(&project),
        )
    };

    // Lines produced before the first start are read (`auto.offset.reset=earliest`), from
    // all three partitions, in one batch.
    produce(&broker, "lines", "hello kafka\nhello again\nhello\n");
    let mut job = start();
    job.wait_for(Duration::from_secs(90), |l| l == "(hello,3)");
    // Killed once a checkpoint covers that batch. (Killed before the first checkpoint, a
    // restart has none and starts from the group's offsets, or the oldest record: the
    // runtime checkpoints a batch after it completes, not when it is generated as Spark does.)
    let deadline = Instant::now() + MINUTE;
    let checkpointed = || {
        std::fs::read_dir(project.join("checkpoint")).is_ok_and(|mut d| {
            d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("checkpoint-")))
        })
    };
    while !checkpointed() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(checkpointed(), "the job checkpoints in its folder");
    let killed = job.kill();
    assert!(!killed.stderr.contains("panicked"), "{}", killed.stderr);

    // Restarted from the checkpoint: the lines produced while it was down are counted, and no
    // line is counted in two batches (a batch replayed after the kill has the same ranges).
    produce(&broker, "lines", "after the crash\ncrash\n");
    let mut job = start();
    job.wait_for(Duration::from_secs(90), |l| l == "(crash,2)");
    let end = job.terminate(MINUTE);
    assert_eq!(
        end.code,
        Some(0),
        "SIGTERM stops gracefully\n{}",
        end.stderr
    );
    // The batches printed after the restart, each the lines after its `Time:` header. A
    // batch replayed from the checkpoint may print `hello` again, in a batch of its own; the
    // lines produced while the job was down come in a later batch, without any older line (a
    // restart that read the topic again from the start would count them together).
    let mut batches: Vec<Vec<&str>> = Vec::new();
    for line in end.stdout.lines() {
        if line.starts_with("Time: ") {
            batches.push(Vec::new());
        } else if line.starts_with('(')
            && let Some(batch) = batches.last_mut()
        {
            batch.push(line);
        }
    }
    let crash = batches
        .iter()
        .find(|b| b.contains(&"(crash,2)"))
        .expect("a batch counted `crash`");
    assert!(
        crash
            .iter()
            .all(|l| !l.starts_with("(hello,") && !l.starts_with("(kafka,")),
        "lines from before the kill counted again with the new ones: {crash:?}\n{}",
        end.stdout
    );
    for line in end.stdout.lines() {
        assert!(
            !line.starts_with("(hello,") || line == "(hello,3)",
            "`hello` counted across batches: {line}\n{}",
            end.stdout
        );
    }

    // The template's own broker test, against the same broker.
    let test = run(
        cargo(&project, &["test", "--", "--include-ignored"])
            .env("KAFKA_BOOTSTRAP", &bootstrap)
            .env("KAFKA_TOPIC", "lines"),
        BUILD,
    );
    assert_eq!(
        test.code,
        Some(0),
        "{}\n{}\n{}",
        test.stdout,
        test.stderr,
        broker.log_text()
    );
    assert!(
        test.stdout.contains("counts_the_words_of_a_topic ... ok"),
        "{}",
        test.stdout
    );
}

/// The total of each user the job counted (`userN`; the exercise's own tests leave other
/// rows in the same table).
fn totals(db: &Postgres) -> BTreeMap<String, i64> {
    db.query("SELECT user_id, total FROM user_totals WHERE user_id LIKE 'user%' ORDER BY user_id")
        .lines()
        .filter_map(|l| l.split_once('|'))
        .map(|(user, total)| (user.to_owned(), total.trim().parse().unwrap()))
        .collect()
}

/// `count` click records `user clicks` from `first` on, and the totals they add up to.
fn clicks(first: usize, count: usize, expected: &mut BTreeMap<String, i64>) -> String {
    let mut text = String::new();
    for i in first..first + count {
        let (user, n) = (format!("user{}", i % 7), (i % 3 + 1) as i64);
        *expected.entry(user.clone()).or_default() += n;
        text.push_str(&format!("{user} {n}\n"));
    }
    text
}

#[test]
fn kafka_user_totals_fails_until_solved_then_counts_every_click_once_across_sigkills() {
    let db = Postgres::start("clicks");
    let tmp = tempfile::tempdir().unwrap();
    let project = new(
        tmp.path(),
        "ex-totals",
        &["--exercise", "kafka-user-totals"],
    );
    assert!(!project.join("solution").exists());
    let test = |project: &Path| {
        run(
            cargo(
                project,
                &["test", "--no-fail-fast", "--", "--include-ignored"],
            )
            .env("DATABASE_URL", db.url()),
            BUILD,
        )
    };

    let skeleton = test(&project);
    let all = format!("{}{}", skeleton.stdout, skeleton.stderr);
    assert_ne!(skeleton.code, Some(0), "the skeleton fails\n{all}");
    assert!(all.contains("not yet implemented"), "{all}");
    assert!(!all.contains("error[E"), "the skeleton compiles\n{all}");
    assert!(
        all.contains("each_batch_is_written_once_with_its_offsets ... FAILED"),
        "the database test fails too\n{all}"
    );

    copy_over(
        &workspace_root().join("templates/exercises/kafka-user-totals/solution"),
        &project,
    );
    let solved = test(&project);
    assert_eq!(
        solved.code,
        Some(0),
        "the solution passes\n{}\n{}",
        solved.stdout,
        solved.stderr
    );
    assert!(
        solved
            .stdout
            .contains("each_batch_is_written_once_with_its_offsets ... ok"),
        "{}",
        solved.stdout
    );

    // The solved job against the broker: killed with SIGKILL while clicks arrive, twice,
    // restarted each time from the offsets in PostgreSQL.
    let broker = broker_with("clicks");
    // The `produce` example comes with the template.
    let producer = new(tmp.path(), "producer", &["--template", "kafka-word-count"]);
    run(&mut cargo(&producer, &["build", "--examples"]), BUILD).success();
    run(&mut cargo(&project, &["build", "--bins"]), BUILD).success();
    let exe = e2e_target_dir().join("debug/ex-totals");
    let bootstrap = broker.bootstrap();
    let start = || {
        Job::start(
            Command::new(&exe)
                .args([bootstrap.as_str(), "clicks"])
                .env("DATABASE_URL", db.url())
                .current_dir(&project),
        )
    };
    let mut expected = BTreeMap::new();
    produce(&broker, "clicks", &clicks(0, 200, &mut expected));
    let mut job = start();
    job.wait_for(Duration::from_secs(90), |l| l.contains("user(s) updated"));
    // Killed somewhere in the next batches, while more clicks arrive.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_millis();
    produce(&broker, "clicks", &clicks(200, 300, &mut expected));
    std::thread::sleep(Duration::from_millis(u64::from(seed % 1500)));
    job.kill();

    produce(&broker, "clicks", &clicks(500, 300, &mut expected));
    let mut job = start();
    job.wait_for(Duration::from_secs(90), |l| l.contains("user(s) updated"));
    std::thread::sleep(Duration::from_millis(u64::from((seed * 7) % 1500)));
    job.kill();

    produce(&broker, "clicks", &clicks(800, 200, &mut expected));
    let job = start();
    let sum: i64 = expected.values().sum();
    let deadline = Instant::now() + Duration::from_secs(120);
    while totals(&db).values().sum::<i64>() < sum && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    // A few more batches: a click counted twice would show now.
    std::thread::sleep(Duration::from_secs(3));
    let end = job.terminate(MINUTE);
    assert_eq!(
        totals(&db),
        expected,
        "every click once (kill delays from seed {seed})\n{}\n{}",
        end.stdout,
        end.stderr
    );
    let ends =
        db.query("SELECT SUM(until_offset) FROM user_totals_offsets WHERE group_id = 'ex-totals'");
    assert_eq!(
        ends.trim(),
        "1000",
        "the stored ends cover the 1,000 records"
    );
}

#[test]
fn kafka_job_bundle_has_librdkafka_linked_in_and_runs_unzipped() {
    let tmp = tempfile::tempdir().unwrap();
    let project = new(tmp.path(), "kafka-pkg", &["--template", "kafka-word-count"]);
    let out = run(&mut cargo_stream(&project, &["package", "--json"]), BUILD).success();
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let jar = PathBuf::from(report["artifact"].as_str().unwrap());
    let unzipped = tmp.path().join("unzipped");
    crate::package::unzip(&jar, &unzipped);
    let bin = unzipped.join("bin/kafka-pkg");

    // No librdkafka (or any Kafka library) needed at run time: it is in the binary.
    let dynamic = Command::new("readelf")
        .arg("-d")
        .arg(&bin)
        .output()
        .unwrap();
    let dynamic = String::from_utf8_lossy(&dynamic.stdout);
    let needed: Vec<&str> = dynamic.lines().filter(|l| l.contains("(NEEDED)")).collect();
    assert!(
        !needed.is_empty() && needed.iter().all(|l| !l.contains("rdkafka")),
        "{needed:?}"
    );
    let ldd = Command::new("ldd").arg(&bin).output().unwrap();
    let ldd = String::from_utf8_lossy(&ldd.stdout);
    assert!(
        !ldd.contains("rdkafka") && !ldd.contains("not found"),
        "{ldd}"
    );
    let bytes = std::fs::read(&bin).unwrap();
    assert!(
        bytes
            .windows(b"socket.timeout.ms".len())
            .any(|w| w == b"socket.timeout.ms"),
        "librdkafka's configuration table is in the binary"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(unzipped.join("stream-manifest.json")).unwrap())
            .unwrap();
    let third: Vec<&str> = manifest["third_party"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(
        third.contains(&"rdkafka") && third.contains(&"rdkafka-sys"),
        "{third:?}"
    );

    // The unzipped bundle runs as it would on a cluster node, and counts. (The producer is
    // the template's example, built in debug beside the bundle's release build.)
    run(&mut cargo(&project, &["build", "--examples"]), BUILD).success();
    let broker = broker_with("lines");
    let checkpoint = tmp.path().join("bundle-checkpoint");
    let mut job = Job::start(
        Command::new(unzipped.join("run.sh"))
            .args([broker.bootstrap().as_str(), "kafka-pkg", "lines"])
            .env("CHECKPOINT_DIR", &checkpoint),
    );
    produce(&broker, "lines", "bundle bundle\n");
    job.wait_for(Duration::from_secs(90), |l| l == "(bundle,2)");
    let end = job.terminate(MINUTE);
    assert_eq!(end.code, Some(143), "{}", end.stderr);
}
