//! A job as instances sharing a Kafka topic (`tasks`): each instance reads its partitions,
//! keyed state is kept and checkpointed per task, a job stopped at 3 instances continues
//! exactly at 2, a checkpoint directory the instances do not share is refused, and a
//! stateful operation whose key is not the record key fails `start()`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cargo_stream_runtime::ManualClock;
use cargo_stream_runtime::kafka::{ConsumerStrategy, KafkaParams, KafkaProducer, KafkaUtils};
use cargo_stream_runtime::prelude::*;
use cargo_stream_tests::kafka::Broker;

use crate::kafka::{create_topic, topic};

/// The words of the test text, each sent keyed by itself (so murmur2 places it).
fn produce_words(broker: &Broker, topic: &str, words: &[&str]) {
    let p = KafkaProducer::new(&broker.bootstrap()).unwrap();
    for w in words {
        p.send(topic, Some(w.as_bytes()), b"1").unwrap();
    }
    p.flush(Duration::from_secs(20)).unwrap();
}

fn counts(words: &[&str]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for w in words {
        *m.entry(w.to_string()).or_insert(0) += 1;
    }
    m
}

const FIRST: &[&str] = &[
    "to",
    "be",
    "or",
    "not",
    "to",
    "be",
    "that",
    "is",
    "the",
    "question",
    "whether",
    "tis",
    "nobler",
    "in",
    "the",
    "mind",
    "to",
    "suffer",
    "the",
    "slings",
    "and",
    "arrows",
    "of",
    "outrageous",
    "fortune",
];
const SECOND: &[&str] = &[
    "or", "to", "take", "arms", "against", "a", "sea", "of", "troubles", "and", "by", "opposing",
    "end", "them", "to", "die", "to", "sleep",
];

/// The latest totals each instance's state held, and the Kafka partitions each one read.
#[derive(Default)]
struct Seen {
    totals: BTreeMap<String, u64>,
    partitions: Vec<i32>,
}

/// Which stateful operation the word count keeps its totals with.
#[derive(Clone, Copy)]
enum Counter {
    UpdateStateByKey,
    MapWithState,
}

/// Instance `index` of `count` of the word count, checkpointing into `dir` every batch.
fn instance(
    broker: &Broker,
    topic: &str,
    dir: &Path,
    index: u32,
    count: u32,
) -> (StreamingContext, ManualClock, Arc<Mutex<Seen>>) {
    instance_with(broker, topic, dir, index, count, Counter::UpdateStateByKey)
}

/// As [`instance`], counting with `counter`.
fn instance_with(
    broker: &Broker,
    topic: &str,
    dir: &Path,
    index: u32,
    count: u32,
    counter: Counter,
) -> (StreamingContext, ManualClock, Arc<Mutex<Seen>>) {
    let clock = ManualClock::new();
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let (c, s, b, t) = (
        clock.clone(),
        seen.clone(),
        broker.bootstrap(),
        topic.to_owned(),
    );
    let ssc = StreamingContext::get_or_create(dir, move || {
        let conf = StreamingConf::new("scale-word-count")
            .master("local[2]")
            .stop_on_signal(false)
            .manual_clock(c)
            .kafka_driver_timeout(Seconds(5))
            .instance(index, count);
        let ssc = StreamingContext::new(conf, Seconds(1))?;
        let params = KafkaParams::new()
            .set("bootstrap.servers", b)
            .set("auto.offset.reset", "earliest");
        let stream =
            KafkaUtils::create_direct_stream(&ssc, ConsumerStrategy::subscribe([t]), params);
        let read = s.clone();
        stream.foreach_rdd(move |b, _| {
            let mut seen = read.lock().unwrap();
            for r in b.collect() {
                seen.partitions.push(r.partition());
            }
        })?;
        let ones = stream.keyed::<String>().map_values(|_| 1u64);
        let totals = match counter {
            Counter::UpdateStateByKey => ones
                .reduce_by_key(|a, b| a + b)
                .update_state_by_key(|new: Vec<u64>, total: Option<u64>| {
                    Some(total.unwrap_or(0) + new.iter().sum::<u64>())
                })
                .name("totals"),
            Counter::MapWithState => {
                let spec =
                    StateSpec::function(|w: &String, one: Option<u64>, n: &mut State<u64>| {
                        let total = n.get_option().copied().unwrap_or(0) + one.unwrap_or(0);
                        n.update(total);
                        (w.clone(), total)
                    });
                ones.map_with_state(spec).state_snapshots()
            }
        };
        totals.checkpoint(Seconds(1));
        totals.foreach_rdd(move |b, _| {
            s.lock().unwrap().totals = b.collect().into_iter().collect();
        })?;
        Ok(ssc)
    })
    .unwrap();
    (ssc, clock, seen)
}

/// Runs the next batch (the `n`th since start) of every instance, and waits until each
/// instance's task checkpoints of that batch are written.
fn run_all(instances: &[(StreamingContext, ManualClock, Arc<Mutex<Seen>>)], n: u64) {
    for (ssc, clock, _) in instances {
        clock.advance(Seconds(1));
        let done = ssc
            .await_batch(Time::from_millis(n * 1000), Duration::from_secs(30))
            .unwrap();
        assert!(done, "batch {n} did not complete");
    }
}

/// Whether every task of `topic` (of `partitions`) has a checkpoint of batch `n` in `dir`.
fn tasks_checkpointed(dir: &Path, topic: &str, partitions: i32, n: u64) -> bool {
    (0..partitions).all(|p| {
        dir.join(format!("task-{topic}-{p}"))
            .join(format!("checkpoint-{}", n * 1000))
            .exists()
    })
}

fn union(instances: &[(StreamingContext, ManualClock, Arc<Mutex<Seen>>)]) -> BTreeMap<String, u64> {
    let mut all = BTreeMap::new();
    for (_, _, seen) in instances {
        for (k, v) in &seen.lock().unwrap().totals {
            assert!(
                all.insert(k.clone(), *v).is_none(),
                "key `{k}` is in the state of two instances"
            );
        }
    }
    all
}

#[test]
fn three_instances_share_the_partitions_and_their_totals_add_up() {
    let broker = Broker::start();
    let t = topic("scale3");
    create_topic(&broker, &t, 3);
    produce_words(&broker, &t, FIRST);
    let dir = tempfile::tempdir().unwrap();
    let instances: Vec<_> = (0..3)
        .map(|i| instance(&broker, &t, dir.path(), i, 3))
        .collect();
    for (ssc, _, _) in &instances {
        ssc.start().unwrap();
    }
    run_all(&instances, 1);
    for (i, (_, _, seen)) in instances.iter().enumerate() {
        let parts = &seen.lock().unwrap().partitions;
        assert!(!parts.is_empty(), "instance {i} read nothing");
        assert!(
            parts.iter().all(|p| *p as usize % 3 == i),
            "instance {i} read partitions {parts:?}"
        );
    }
    assert_eq!(union(&instances), counts(FIRST));
    for (ssc, _, _) in &instances {
        ssc.stop(false).unwrap();
    }
}

#[test]
fn a_job_stopped_at_three_instances_continues_exactly_at_two() {
    rescale_three_to_two(Counter::UpdateStateByKey);
}

#[test]
fn map_with_state_keeps_its_state_per_task_and_continues_exactly_at_two() {
    rescale_three_to_two(Counter::MapWithState);
}

/// The word count counted with `counter` by 3 instances, stopped, then by 2 on more words.
fn rescale_three_to_two(counter: Counter) {
    let broker = Broker::start();
    let t = topic("rescale");
    create_topic(&broker, &t, 6);
    produce_words(&broker, &t, FIRST);
    let dir = tempfile::tempdir().unwrap();
    let three: Vec<_> = (0..3)
        .map(|i| instance_with(&broker, &t, dir.path(), i, 3, counter))
        .collect();
    for (ssc, _, _) in &three {
        ssc.start().unwrap();
    }
    run_all(&three, 1);
    assert!(crate::support::wait_for(20, || tasks_checkpointed(
        dir.path(),
        &t,
        6,
        1
    )));
    assert_eq!(union(&three), counts(FIRST));
    for (ssc, _, _) in &three {
        ssc.stop(false).unwrap();
    }
    drop(three);
    for i in 0..3 {
        assert!(dir.path().join(format!("instance-{i}-of-3.json")).exists());
    }

    produce_words(&broker, &t, SECOND);
    let two: Vec<_> = (0..2)
        .map(|i| instance_with(&broker, &t, dir.path(), i, 2, counter))
        .collect();
    for (ssc, _, _) in &two {
        ssc.start().unwrap();
    }
    run_all(&two, 1);
    let mut expected = counts(FIRST);
    for (k, v) in counts(SECOND) {
        *expected.entry(k).or_insert(0) += v;
    }
    // Instance 0 of 2 now owns partitions 0, 2 and 4: it continued partitions 2 and 4 from
    // where instances 2 and 1 of 3 left them, with their state, and no longer reads partition
    // 3 (instance 1 of 2 does), though its batch log of 3 instances names it.
    assert_eq!(union(&two), expected, "the totals continue exactly");
    let parts0 = two[0].2.lock().unwrap().partitions.clone();
    assert!(parts0.iter().all(|p| p % 2 == 0), "{parts0:?}");
    for (ssc, _, _) in &two {
        ssc.stop(false).unwrap();
    }
}

#[test]
fn a_checkpoint_directory_the_instances_do_not_share_is_refused() {
    let broker = Broker::start();
    let t = topic("unshared");
    create_topic(&broker, &t, 2);
    produce_words(&broker, &t, FIRST);
    // Each instance sees its own directory (as on two machines without a shared disk).
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let two: Vec<_> = (0..2)
        .map(|i| instance(&broker, &t, dirs[i as usize].path(), i, 2))
        .collect();
    for (ssc, _, _) in &two {
        ssc.start().unwrap();
    }
    run_all(&two, 1);
    assert!(crate::support::wait_for(20, || {
        dirs[0]
            .path()
            .join(format!("task-{t}-0/checkpoint-1000"))
            .exists()
            && dirs[1]
                .path()
                .join(format!("task-{t}-1/checkpoint-1000"))
                .exists()
    }));
    for (ssc, _, _) in &two {
        ssc.stop(false).unwrap();
    }
    drop(two);
    // Rescaled to one instance, which would own partition 1 too: its state is not here.
    let (ssc, _, _) = instance(&broker, &t, dirs[0].path(), 0, 1);
    let err = ssc.start().unwrap_err().to_string();
    assert!(
        err.contains("instance(s) 1 of 2") && err.contains(&format!("`task-{t}-1`")),
        "{err}"
    );
    assert!(
        err.contains("not one directory shared by every instance"),
        "{err}"
    );
}

#[test]
fn a_stateful_operation_whose_key_is_not_the_record_key_fails_start_naming_it() {
    let broker = Broker::start();
    let t = topic("copart");
    create_topic(&broker, &t, 2);
    let dir = tempfile::tempdir().unwrap();
    let ssc = refusing_context(dir.path());
    let params = KafkaParams::new().set("bootstrap.servers", broker.bootstrap());
    let stream = KafkaUtils::create_direct_stream(&ssc, ConsumerStrategy::subscribe([t]), params);
    let map_line = line!() + 3;
    let words = stream
        .keyed::<String>()
        .map(|(_, r)| (r.value_lossy().into_owned(), 1u64));
    let state_line = line!() + 1;
    let totals = words.update_state_by_key(|n: Vec<u64>, s: Option<u64>| {
        Some(s.unwrap_or(0) + n.iter().sum::<u64>())
    });
    totals.print(1).unwrap();
    let err = ssc.start().unwrap_err().to_string();
    assert!(
        err.contains(&format!("`update_state_by_key at {}:{state_line}", file!())),
        "{err}"
    );
    assert!(
        err.contains(&format!("`map` at {}:{map_line}", file!())),
        "{err}"
    );
    assert!(err.contains("repartition_through"), "{err}");
}

/// A context of instance 0 of 2 with a checkpoint directory, for the refusals.
fn refusing_context(dir: &Path) -> StreamingContext {
    let conf = StreamingConf::new("refusals")
        .master("local[2]")
        .stop_on_signal(false)
        .manual_clock(ManualClock::new())
        .kafka_driver_timeout(Seconds(5))
        .instance(0, 2);
    let ssc = StreamingContext::new(conf, Seconds(1)).unwrap();
    ssc.checkpoint(dir).unwrap();
    ssc
}

#[test]
fn windows_on_a_kafka_stream_and_joins_not_co_partitioned_fail_start_naming_them() {
    let broker = Broker::start();
    let (six, four, six_too) = (topic("clicks"), topic("users"), topic("orders"));
    create_topic(&broker, &six, 6);
    create_topic(&broker, &four, 4);
    create_topic(&broker, &six_too, 6);
    let params = KafkaParams::new().set("bootstrap.servers", broker.bootstrap());
    let read = |ssc: &StreamingContext, t: &str| {
        KafkaUtils::create_direct_stream(ssc, ConsumerStrategy::subscribe([t]), params.clone())
    };

    // A window's state (its batches) is per instance: refused on a Kafka stream.
    let dir = tempfile::tempdir().unwrap();
    let ssc = refusing_context(dir.path());
    let window_line = line!() + 4;
    let counts = read(&ssc, &six)
        .keyed::<String>()
        .map_values(|_| 1u64)
        .reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, Seconds(2), Seconds(1));
    counts.print(1).unwrap();
    let err = ssc.start().unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "`reduce_by_key_and_window_inv` at {}:{window_line}",
            file!()
        )),
        "{err}"
    );
    assert!(
        err.contains("per instance, not per task") && err.contains("instance 0 of 2"),
        "{err}"
    );
    drop(ssc);

    // Two keyed topics of 6 and 4 partitions: a key's records are not in the same instance.
    let dir = tempfile::tempdir().unwrap();
    let ssc = refusing_context(dir.path());
    let clicks = read(&ssc, &six).keyed::<String>().map_values(|_| 1u64);
    let users = read(&ssc, &four).keyed::<String>();
    let join_line = line!() + 1;
    clicks.left_outer_join(&users).count().print(1).unwrap();
    let err = ssc.start().unwrap_err().to_string();
    assert!(
        err.contains(&format!("`left_outer_join at {}:{join_line}", file!())),
        "{err}"
    );
    assert!(
        err.contains(&format!("topic `{six}` (6 partitions)"))
            && err.contains(&format!("topic `{four}` (4 partitions)")),
        "{err}"
    );
    assert!(err.contains("repartition_through"), "{err}");
    drop(ssc);

    // A side whose key may have changed is refused before the partitions are listed.
    let dir = tempfile::tempdir().unwrap();
    let ssc = refusing_context(dir.path());
    let orders = read(&ssc, &six_too);
    let map_line = line!() + 1;
    let by_value = orders.map(|r| (r.value_lossy().into_owned(), 1u64));
    let join_line = line!() + 1;
    let cogrouped = read(&ssc, &six).keyed::<String>().cogroup(&by_value);
    cogrouped.count().print(1).unwrap();
    let err = ssc.start().unwrap_err().to_string();
    assert!(
        err.contains(&format!("`cogroup at {}:{join_line}", file!()))
            && err.contains("right side")
            && err.contains(&format!("`map` at {}:{map_line}", file!())),
        "{err}"
    );
    drop(ssc);

    // Two keyed topics of 6 partitions each: co-partitioned, the job starts.
    let dir = tempfile::tempdir().unwrap();
    let ssc = refusing_context(dir.path());
    let clicks = read(&ssc, &six).keyed::<String>();
    let orders = read(&ssc, &six_too).keyed::<String>();
    clicks.join(&orders).count().print(1).unwrap();
    ssc.start().unwrap();
    ssc.stop(false).unwrap();
}

/// The words of `lines` (the records' values), through a repartition topic keyed by word,
/// counted; batch 1 fails after the hop's output when `crash` (before its checkpoint).
fn word_count_through(
    broker: &Broker,
    lines: &str,
    words: &str,
    dir: &Path,
    crash: bool,
) -> (StreamingContext, ManualClock, Arc<Mutex<Seen>>) {
    let clock = ManualClock::new();
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let (c, s, b, l, w) = (
        clock.clone(),
        seen.clone(),
        broker.bootstrap(),
        lines.to_owned(),
        words.to_owned(),
    );
    let ssc = StreamingContext::get_or_create(dir, move || {
        let conf = StreamingConf::new("scale-repartition")
            .master("local[2]")
            .stop_on_signal(false)
            .manual_clock(c)
            .kafka_driver_timeout(Seconds(5))
            .instance(0, 1);
        let ssc = StreamingContext::new(conf, Seconds(1))?;
        let params = KafkaParams::new()
            .set("bootstrap.servers", b)
            .set("auto.offset.reset", "earliest");
        let lines = KafkaUtils::create_direct_stream(
            &ssc,
            ConsumerStrategy::subscribe([l]),
            params.clone(),
        );
        let totals = lines
            .flat_map(|r| {
                r.value_lossy()
                    .split_whitespace()
                    .map(|w| (w.to_owned(), 1u64))
                    .collect::<Vec<_>>()
            })
            .repartition_through(&params, &w, 3)
            .reduce_by_key(|a, b| a + b)
            .update_state_by_key(|new: Vec<u64>, total: Option<u64>| {
                Some(total.unwrap_or(0) + new.iter().sum::<u64>())
            });
        totals.checkpoint(Seconds(1));
        totals.foreach_rdd(move |b, _| {
            s.lock().unwrap().totals = b.collect().into_iter().collect();
        })?;
        lines.foreach_rdd(move |_, t| {
            assert!(
                !(crash && t.millis() == 1000),
                "simulated crash after the hop's output"
            );
        })?;
        Ok(ssc)
    })
    .unwrap();
    (ssc, clock, seen)
}

/// The totals of the word count through the repartition topic after a crash that replays its
/// first batch, and the exact counts.
fn totals_after_a_replayed_hop(broker: &Broker) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let lines = topic("lines");
    let words = topic("words");
    create_topic(broker, &lines, 2);
    create_topic(broker, &words, 3);
    let text = [
        "to be or not to be",
        "that is the question",
        "to sleep perchance to dream",
    ];
    let p = KafkaProducer::new(&broker.bootstrap()).unwrap();
    for (i, l) in text.iter().enumerate() {
        p.send(&lines, Some(format!("line-{i}").as_bytes()), l.as_bytes())
            .unwrap();
    }
    p.flush(Duration::from_secs(20)).unwrap();
    let expected = counts(
        &text
            .iter()
            .flat_map(|l| l.split_whitespace())
            .collect::<Vec<_>>(),
    );
    let dir = tempfile::tempdir().unwrap();

    // Batch 1 sends the words through the topic, then fails: no checkpoint covers it.
    let (ssc, clock, _) = word_count_through(broker, &lines, &words, dir.path(), true);
    ssc.start().unwrap();
    clock.advance(Seconds(1));
    assert!(
        ssc.await_termination_or_timeout(Seconds(30)).is_err(),
        "batch 1 fails the job"
    );
    drop(ssc);

    // The restarted job replays batch 1 (the words are sent a second time) and reads both
    // copies.
    let (ssc, clock, seen) = word_count_through(broker, &lines, &words, dir.path(), false);
    ssc.start().unwrap();
    let one = [(ssc, clock, seen)];
    run_all(&one, 1);
    run_all(&one, 2);
    run_all(&one, 3);
    let totals = one[0].2.lock().unwrap().totals.clone();
    one[0].0.stop(false).unwrap();
    (totals, expected)
}

#[test]
fn a_replayed_repartition_stage_does_not_count_twice() {
    let broker = Broker::start();
    // With the skip turned off (the failpoint applies every record), the replayed batch's
    // words count twice: what the skip prevents.
    fail::cfg("repartition::apply_all", "return").unwrap();
    let (doubled, expected) = totals_after_a_replayed_hop(&broker);
    fail::remove("repartition::apply_all");
    let twice: BTreeMap<String, u64> = expected.iter().map(|(k, v)| (k.clone(), 2 * v)).collect();
    assert_eq!(
        doubled, twice,
        "without the skip, every word of the replayed batch counts twice"
    );
    let (totals, expected) = totals_after_a_replayed_hop(&broker);
    assert_eq!(totals, expected, "each word counted once");
}

/// Selects the instance job in a child process (the directory it works in).
const CHILD_ENV: &str = "CARGO_STREAM_SCALE_CHILD";

/// One instance of the word count as a process: its instance comes from
/// `CARGO_STREAM_INSTANCE` / `CARGO_STREAM_INSTANCES`, as a launcher sets them; it checkpoints
/// into `<dir>/checkpoint` (shared by the instances), writes its totals after every batch to
/// `<dir>/totals-<TOTALS_TAG>-<instance>.json`, and stops when `<dir>/stop` appears.
#[test]
#[ignore = "an instance of the scale tests, which run it in child processes"]
fn instance_process() {
    let Some(dir) = std::env::var_os(CHILD_ENV).map(std::path::PathBuf::from) else {
        return;
    };
    let var = |n: &str| std::env::var(n).unwrap();
    let (bootstrap, topic, tag) = (
        var("SCALE_BOOTSTRAP"),
        var("SCALE_TOPIC"),
        var("TOTALS_TAG"),
    );
    let index = var("CARGO_STREAM_INSTANCE");
    let out = dir.join(format!("totals-{tag}-{index}.json"));
    let ssc = StreamingContext::get_or_create(dir.join("checkpoint"), move || {
        let conf = StreamingConf::new("scale-process")
            .master("local[2]")
            .stop_on_signal(false)
            .kafka_driver_timeout(Seconds(5));
        let ssc = StreamingContext::new(conf, Milliseconds(200))?;
        let params = KafkaParams::new()
            .set("bootstrap.servers", bootstrap)
            .set("auto.offset.reset", "earliest");
        let totals =
            KafkaUtils::create_direct_stream(&ssc, ConsumerStrategy::subscribe([topic]), params)
                .keyed::<String>()
                .map_values(|_| 1u64)
                .reduce_by_key(|a, b| a + b)
                .update_state_by_key(|new: Vec<u64>, total: Option<u64>| {
                    Some(total.unwrap_or(0) + new.iter().sum::<u64>())
                });
        totals.checkpoint(Milliseconds(200));
        totals.foreach_rdd(move |b, _| {
            let m: BTreeMap<String, u64> = b.collect().into_iter().collect();
            let tmp = out.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec(&m).unwrap()).unwrap();
            std::fs::rename(&tmp, &out).unwrap();
        })?;
        Ok(ssc)
    })
    .unwrap();
    ssc.start().unwrap();
    let stop = dir.join("stop");
    assert!(
        crate::support::wait_for(120, || stop.exists()),
        "never told to stop"
    );
    ssc.stop(false).unwrap();
}

/// Starts instance `index` of `count` as a process, through the environment.
fn spawn_instance(
    dir: &Path,
    broker: &Broker,
    topic: &str,
    tag: &str,
    index: u32,
    count: u32,
) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "scale::instance_process",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, dir)
        .env("SCALE_BOOTSTRAP", broker.bootstrap())
        .env("SCALE_TOPIC", topic)
        .env("TOTALS_TAG", tag)
        .env("CARGO_STREAM_INSTANCE", index.to_string())
        .env("CARGO_STREAM_INSTANCES", count.to_string())
        .env("RUST_BACKTRACE", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The union of the totals files `totals-<tag>-*.json` in `dir` (`None` while a key is in two).
fn process_totals(dir: &Path, tag: &str, count: u32) -> Option<BTreeMap<String, u64>> {
    let mut all = BTreeMap::new();
    for i in 0..count {
        let bytes = std::fs::read(dir.join(format!("totals-{tag}-{i}.json"))).ok()?;
        let m: BTreeMap<String, u64> = serde_json::from_slice(&bytes).ok()?;
        for (k, v) in m {
            if all.insert(k, v).is_some() {
                return None;
            }
        }
    }
    Some(all)
}

fn add(a: &mut BTreeMap<String, u64>, words: &[&str]) {
    for (k, v) in counts(words) {
        *a.entry(k).or_insert(0) += v;
    }
}

#[test]
fn instance_processes_survive_a_sigkill_and_a_rescale_with_exact_totals() {
    let broker = Broker::start();
    let t = topic("processes");
    create_topic(&broker, &t, 3);
    produce_words(&broker, &t, FIRST);
    let dir = tempfile::tempdir().unwrap();
    let mut expected = counts(FIRST);
    let mut three: Vec<_> = (0..3)
        .map(|i| spawn_instance(dir.path(), &broker, &t, "a", i, 3))
        .collect();
    let reached = |tag: &str, count: u32, expected: &BTreeMap<String, u64>| {
        crate::support::wait_for(60, || {
            process_totals(dir.path(), tag, count).as_ref() == Some(expected)
        })
    };
    assert!(
        reached("a", 3, &expected),
        "3 instances: {:?}",
        process_totals(dir.path(), "a", 3)
    );
    // SIGKILL instance 1 while more words arrive; restarted, it goes on from its tasks'
    // checkpoints.
    produce_words(&broker, &t, SECOND);
    three[1].kill().unwrap();
    three[1].wait().unwrap();
    add(&mut expected, SECOND);
    three[1] = spawn_instance(dir.path(), &broker, &t, "a", 1, 3);
    assert!(
        reached("a", 3, &expected),
        "after the kill: {:?}",
        process_totals(dir.path(), "a", 3)
    );
    std::fs::write(dir.path().join("stop"), "").unwrap();
    for mut c in three {
        assert!(c.wait().unwrap().success());
    }
    std::fs::remove_file(dir.path().join("stop")).unwrap();
    // Rescaled to 2 processes.
    produce_words(&broker, &t, FIRST);
    add(&mut expected, FIRST);
    let two: Vec<_> = (0..2)
        .map(|i| spawn_instance(dir.path(), &broker, &t, "b", i, 2))
        .collect();
    assert!(
        reached("b", 2, &expected),
        "2 instances: {:?}",
        process_totals(dir.path(), "b", 2)
    );
    std::fs::write(dir.path().join("stop"), "").unwrap();
    for mut c in two {
        assert!(c.wait().unwrap().success());
    }
}
