//! The proof of `kafka_exactly_once`: lines produced to a 3-partition topic on a Tansu broker
//! while the job (Kafka → word count → running totals in PostgreSQL) is killed with SIGKILL
//! at random points (a random moment, at once after a batch committed, shortly after one) and
//! restarted, alternately with its checkpoint directory and without it; after the last run
//! the totals in PostgreSQL are exactly the counts of the words produced.
//!
//! The kill points come from a seed printed by the test; `KILL_SEED=<n>` replays a run.
//! With the `failpoints` feature, a second test runs the same with the offsets guard turned
//! off (`FAILPOINTS=kafka::postgres::no_guard=return`) and checks that the totals are then
//! wrong: the first test can fail.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cargo_stream_runtime::kafka::KafkaProducer;
use cargo_stream_tests::kafka::Broker;
use cargo_stream_tests::postgres::Postgres;
use postgres::{Client, NoTls};

const TOPIC: &str = "lines";
const GROUP: &str = "exactly-once-test";
/// Lines produced, in chunks, while the job is killed and restarted.
const LINES: usize = 3000;
const CHUNK: usize = 60;
const KILLS: usize = 6;
const BATCH_MS: u64 = 200;

/// xorshift64*: the test's only randomness, from one printed seed.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
            .max(1);
        eprintln!("kill test seed: KILL_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// The job as a child process: stdout lines and stderr collected.
struct Job {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Job {
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Job {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kafka_exactly_once"))
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "cargo_stream_runtime=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out: Arc<Mutex<Vec<String>>> = Arc::default();
        let err: Arc<Mutex<String>> = Arc::default();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (o, e) = (Arc::clone(&out), Arc::clone(&err));
        let readers = vec![
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    o.lock().unwrap().push(line);
                }
            }),
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut e = e.lock().unwrap();
                    e.push_str(&line);
                    e.push('\n');
                }
            }),
        ];
        Job {
            child,
            out,
            err,
            readers,
        }
    }

    fn applied(&self) -> usize {
        self.out
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(": applied "))
            .count()
    }

    /// Waits until the job wrote a checkpoint; panics after `limit`, or when it exited.
    fn wait_checkpoint(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.err.lock().unwrap().contains("checkpoint written") {
            self.check_running(deadline, "write a checkpoint");
        }
    }

    /// Waits until the job applied `n` batches; panics after `limit`, or when it exited.
    fn wait_applied(&mut self, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.applied() < n {
            self.check_running(deadline, &format!("apply {n} batch(es)"));
        }
    }

    /// Panics with the job's output when it exited or `deadline` passed; else waits a little.
    fn check_running(&mut self, deadline: Instant, what: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "the job exited with {status}:\n{}",
                self.err.lock().unwrap()
            );
        }
        if Instant::now() > deadline {
            panic!(
                "the job did not {what} in time:\n{}",
                self.err.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }

    /// SIGKILL; then what it printed (stdout, stderr).
    fn kill(mut self) -> (Vec<String>, String) {
        let _ = self.child.kill();
        self.child.wait().unwrap();
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        let out = std::mem::take(&mut *self.out.lock().unwrap());
        let err = std::mem::take(&mut *self.err.lock().unwrap());
        (out, err)
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a scenario ended with.
struct Outcome {
    expected: BTreeMap<String, i64>,
    totals: BTreeMap<String, i64>,
    /// Batches skipped as written before, and batches written in part (regenerated with other
    /// ranges), over every run.
    skipped: usize,
    partly: usize,
    /// How each run ended, for the failure message.
    story: Vec<String>,
}

/// `n` lines of 1 to 8 words from 40, and the count of each word.
fn lines_and_counts(rng: &mut Rng, n: usize) -> (Vec<String>, BTreeMap<String, i64>) {
    let lines: Vec<String> = (0..n)
        .map(|_| {
            (0..1 + rng.below(8))
                .map(|_| format!("w{:02}", rng.below(40)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let mut counts = BTreeMap::new();
    for w in lines.iter().flat_map(|l| l.split(' ')) {
        *counts.entry(w.to_owned()).or_insert(0i64) += 1;
    }
    (lines, counts)
}

/// Produces `lines` to the topic in chunks of `CHUNK`, `pause_ms` apart, keyed so that all 3
/// partitions get lines.
fn produce(bootstrap: String, lines: Vec<String>, pause_ms: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let producer = KafkaProducer::new(&bootstrap).unwrap();
        for (chunk, part) in lines.chunks(CHUNK).enumerate() {
            for (i, line) in part.iter().enumerate() {
                let key = format!("k{}", chunk * CHUNK + i);
                producer
                    .send(TOPIC, Some(key.as_bytes()), line.as_bytes())
                    .unwrap();
            }
            producer.flush(Duration::from_secs(10)).unwrap();
            std::thread::sleep(Duration::from_millis(pause_ms));
        }
    })
}

/// The sum of the job's stored ends: the records written (offsets are consecutive here).
fn stored_ends(client: &mut Client) -> i64 {
    client
        .query_one(
            "SELECT COALESCE(SUM(until_offset), 0)::bigint FROM kafka_offsets WHERE job = $1",
            &[&GROUP],
        )
        .map(|r| r.get(0))
        // The job creates the table at its start.
        .unwrap_or(0)
}

fn totals(client: &mut Client) -> BTreeMap<String, i64> {
    client
        .query("SELECT word, total FROM word_totals", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Produces `LINES` lines while killing and restarting the job `KILLS` times, then lets a last
/// run catch up and returns the totals it left in PostgreSQL.
fn scenario(env: &[(&str, &str)]) -> Outcome {
    let started = Instant::now();
    let mut rng = Rng::seeded();
    let broker = Broker::start();
    broker.create_topic(TOPIC, 3);
    let db = Postgres::start("exactly_once");
    let checkpoint = tempfile::tempdir().unwrap();
    let dir = checkpoint.path().join("checkpoint");

    let (lines, expected) = lines_and_counts(&mut rng, LINES);
    let producer = produce(broker.bootstrap(), lines, 150);

    let (url, bootstrap) = (db.url(), broker.bootstrap());
    let dir_arg = dir.to_str().unwrap().to_owned();
    let batch_ms = BATCH_MS.to_string();
    let args = [
        bootstrap.as_str(),
        TOPIC,
        url.as_str(),
        "--checkpoint",
        dir_arg.as_str(),
        "--group",
        GROUP,
        "--batch-ms",
        batch_ms.as_str(),
    ];
    let (mut skipped, mut partly, mut story) = (0, 0, Vec::new());
    let mut tally = |out: &[String], err: &str, story: &mut Vec<String>, how: String| {
        let skips = out.iter().filter(|l| l.contains(": skipped")).count();
        let parts = err.matches("partly written before").count();
        let applied = out.iter().filter(|l| l.contains(": applied ")).count();
        skipped += skips;
        partly += parts;
        story.push(format!(
            "{how}: {applied} batch(es) applied ({parts} in part), {skips} skipped"
        ));
    };
    for k in 0..KILLS {
        // Every other restart without the checkpoint: the stream then starts at the offsets
        // stored in PostgreSQL.
        let with_checkpoint = k % 2 == 0;
        if !with_checkpoint {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let mut job = Job::spawn(&args, env);
        // The run before a restart from the checkpoint is killed a few batches after one, so
        // that the restart regenerates batches written before; the others at any moment.
        let before_checkpoint_restart = k % 2 == 1;
        let mode = if before_checkpoint_restart {
            1 + rng.below(2)
        } else {
            rng.below(3)
        };
        let how = match mode {
            0 => {
                // Any moment: starting, reading, writing, checkpointing.
                let ms = 300 + rng.below(2000);
                std::thread::sleep(Duration::from_millis(ms));
                format!("killed after {ms} ms")
            }
            mode => {
                // A few batches after a checkpoint: at once after a commit (before the
                // checkpoint that covers it), or a moment later (reading, writing).
                let n = 1 + rng.below(4) as usize;
                let ms = if mode == 1 { 0 } else { rng.below(BATCH_MS) };
                job.wait_checkpoint(Duration::from_secs(10));
                let done = job.applied();
                job.wait_applied(done + n, Duration::from_secs(10));
                std::thread::sleep(Duration::from_millis(ms));
                format!("killed {ms} ms after batch {n} since a checkpoint")
            }
        };
        let (out, err) = job.kill();
        let how = format!(
            "run {} ({}) {how}",
            k + 1,
            match (k, with_checkpoint) {
                (0, _) => "first",
                (_, true) => "from the checkpoint",
                (_, false) => "without checkpoint",
            }
        );
        tally(&out, &err, &mut story, how);
    }
    producer.join().unwrap();

    // The last run, from the checkpoint, until every record produced is written.
    let mut job = Job::spawn(&args, env);
    let mut client = Client::connect(&db.url(), NoTls).unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let written = loop {
        let ends = stored_ends(&mut client);
        if ends >= LINES as i64 || Instant::now() > deadline {
            break ends;
        }
        if let Ok(Some(status)) = job.child.try_wait() {
            panic!(
                "the last run exited with {status}:\n{}",
                job.err.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // One more batch: nothing more may be added.
    let n = job.applied() + 1;
    job.wait_applied(n, Duration::from_secs(5));
    let (out, err) = job.kill();
    tally(&out, &err, &mut story, "last run".into());
    assert_eq!(
        written, LINES as i64,
        "the stored offsets cover every record produced, once: {story:#?}\n{err}"
    );
    let totals = totals(&mut client);
    story.push(format!("in {:.1} s", started.elapsed().as_secs_f64()));
    Outcome {
        expected,
        totals,
        skipped,
        partly,
        story,
    }
}

#[test]
fn killed_at_random_points_and_restarted_the_job_writes_each_record_once() {
    let outcome = scenario(&[]);
    assert_eq!(
        outcome.totals, outcome.expected,
        "totals differ from the counts produced; runs: {:#?}",
        outcome.story
    );
    assert!(
        outcome.skipped + outcome.partly > 0,
        "the restarts from the checkpoint regenerated no batch written before: the guard was not tested; runs: {:#?}",
        outcome.story
    );
    eprintln!(
        "exact after {} kills; {} batch(es) skipped as written before, {} written in part: {:#?}",
        KILLS, outcome.skipped, outcome.partly, outcome.story
    );
}

/// The same kills with the guard off: batches regenerated from the checkpoint are added again.
#[cfg(feature = "failpoints")]
#[test]
fn without_the_offsets_guard_the_same_kills_count_records_twice() {
    let outcome = scenario(&[("FAILPOINTS", "kafka::postgres::no_guard=return")]);
    let over: Vec<_> = outcome
        .expected
        .iter()
        .filter(|(w, n)| outcome.totals.get(*w).is_some_and(|t| t > n))
        .collect();
    assert!(
        !over.is_empty(),
        "with the guard off the totals should count some records twice; runs: {:#?}",
        outcome.story
    );
}

/// PostgreSQL stopped (as a crash stops it) and started again under a running job: the writes
/// are retried, or, when the outage outlasts the retries, the job fails with the server's
/// address and cause and is restarted; either way every record is counted once.
#[test]
fn a_postgres_outage_is_retried_or_fails_clearly_and_counts_stay_exact() {
    let mut rng = Rng::seeded();
    let broker = Broker::start();
    broker.create_topic(TOPIC, 3);
    let db = Postgres::start("outage");
    let checkpoint = tempfile::tempdir().unwrap();
    let (lines, expected) = lines_and_counts(&mut rng, 1200);
    let producer = produce(broker.bootstrap(), lines, 150);
    let (url, bootstrap) = (db.url(), broker.bootstrap());
    let dir = checkpoint.path().to_str().unwrap().to_owned();
    let args = [
        bootstrap.as_str(),
        TOPIC,
        url.as_str(),
        "--checkpoint",
        dir.as_str(),
        "--group",
        GROUP,
        "--batch-ms",
        "200",
    ];
    let mut job = Job::spawn(&args, &[]);
    job.wait_applied(2, Duration::from_secs(20));
    db.stop();
    std::thread::sleep(Duration::from_millis(500 + rng.below(1500)));
    db.start_again();
    let mut client = Client::connect(&db.url(), NoTls).unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut stderr = String::new();
    while stored_ends(&mut client) < 1200 && Instant::now() < deadline {
        if let Ok(Some(status)) = job.child.try_wait() {
            // The outage outlasted the retries: the job stopped with the error; restart it.
            let (_, err) = job.kill();
            assert!(!status.success());
            let error = err
                .lines()
                .find(|l| l.starts_with("error: "))
                .unwrap_or_else(|| panic!("no error line: {err}"));
            assert!(
                error.contains(&format!("PostgreSQL at 127.0.0.1:{}", db.port()))
                    && error.contains("attempt(s)"),
                "{error}"
            );
            eprintln!("the job failed and is restarted: {error}");
            stderr.push_str(&err);
            job = Job::spawn(&args, &[]);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    producer.join().unwrap();
    let (_, err) = job.kill();
    stderr.push_str(&err);
    assert!(
        stderr.contains("attempt 1 of 5 failed"),
        "the outage was seen and retried: {stderr}"
    );
    assert_eq!(stored_ends(&mut client), 1200, "{stderr}");
    assert_eq!(totals(&mut client), expected);
}
