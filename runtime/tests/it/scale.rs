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
    "to", "be", "or", "not", "to", "be", "that", "is", "the", "question", "whether", "tis",
    "nobler", "in", "the", "mind", "to", "suffer", "the", "slings", "and", "arrows", "of",
    "outrageous", "fortune",
];
const SECOND: &[&str] = &[
    "or", "to", "take", "arms", "against", "a", "sea", "of", "troubles", "and", "by",
    "opposing", "end", "them", "to", "die", "to", "sleep",
];

/// The latest totals each instance's state held, and the Kafka partitions each one read.
#[derive(Default)]
struct Seen {
    totals: BTreeMap<String, u64>,
    partitions: Vec<i32>,
}

/// Instance `index` of `count` of the word count, checkpointing into `dir` every batch.
fn instance(
    broker: &Broker,
    topic: &str,
    dir: &Path,
    index: u32,
    count: u32,
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
        let stream = KafkaUtils::create_direct_stream(&ssc, ConsumerStrategy::subscribe([t]), params);
        let read = s.clone();
        stream.foreach_rdd(move |b, _| {
            let mut seen = read.lock().unwrap();
            for r in b.collect() {
                seen.partitions.push(r.partition());
            }
        })?;
        let totals = stream
            .keyed::<String>()
            .map_values(|_| 1u64)
            .reduce_by_key(|a, b| a + b)
            .update_state_by_key(|new: Vec<u64>, total: Option<u64>| {
                Some(total.unwrap_or(0) + new.iter().sum::<u64>())
            })
            .name("totals");
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
    let broker = Broker::start();
    let t = topic("rescale");
    create_topic(&broker, &t, 3);
    produce_words(&broker, &t, FIRST);
    let dir = tempfile::tempdir().unwrap();
    let three: Vec<_> = (0..3)
        .map(|i| instance(&broker, &t, dir.path(), i, 3))
        .collect();
    for (ssc, _, _) in &three {
        ssc.start().unwrap();
    }
    run_all(&three, 1);
    assert!(crate::support::wait_for(20, || tasks_checkpointed(dir.path(), &t, 3, 1)));
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
        .map(|i| instance(&broker, &t, dir.path(), i, 2))
        .collect();
    for (ssc, _, _) in &two {
        ssc.start().unwrap();
    }
    run_all(&two, 1);
    let mut expected = counts(FIRST);
    for (k, v) in counts(SECOND) {
        *expected.entry(k).or_insert(0) += v;
    }
    // Instance 0 of 2 now owns partitions 0 and 2: it continued partition 2 from where
    // instance 2 of 3 left it, with its state.
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
        dirs[0].path().join(format!("task-{t}-0/checkpoint-1000")).exists()
            && dirs[1].path().join(format!("task-{t}-1/checkpoint-1000")).exists()
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
    assert!(err.contains("not one directory shared by every instance"), "{err}");
}

#[test]
fn a_stateful_operation_whose_key_is_not_the_record_key_fails_start_naming_it() {
    let broker = Broker::start();
    let t = topic("copart");
    create_topic(&broker, &t, 2);
    let dir = tempfile::tempdir().unwrap();
    let conf = StreamingConf::new("copart")
        .master("local[2]")
        .stop_on_signal(false)
        .manual_clock(ManualClock::new())
        .kafka_driver_timeout(Seconds(5))
        .instance(0, 2);
    let ssc = StreamingContext::new(conf, Seconds(1)).unwrap();
    ssc.checkpoint(dir.path()).unwrap();
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
    assert!(err.contains(&format!("`map` at {}:{map_line}", file!())), "{err}");
    assert!(err.contains("repartition_through"), "{err}");
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
        let lines =
            KafkaUtils::create_direct_stream(&ssc, ConsumerStrategy::subscribe([l]), params.clone());
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
            assert!(!(crash && t.millis() == 1000), "simulated crash after the hop's output");
        })?;
        Ok(ssc)
    })
    .unwrap();
    (ssc, clock, seen)
}

#[test]
fn a_replayed_repartition_stage_does_not_count_twice() {
    let broker = Broker::start();
    let lines = topic("lines");
    let words = topic("words");
    create_topic(&broker, &lines, 2);
    create_topic(&broker, &words, 3);
    let text = ["to be or not to be", "that is the question", "to sleep perchance to dream"];
    let p = KafkaProducer::new(&broker.bootstrap()).unwrap();
    for (i, l) in text.iter().enumerate() {
        p.send(&lines, Some(format!("line-{i}").as_bytes()), l.as_bytes()).unwrap();
    }
    p.flush(Duration::from_secs(20)).unwrap();
    let expected = counts(&text.iter().flat_map(|l| l.split_whitespace()).collect::<Vec<_>>());
    let dir = tempfile::tempdir().unwrap();

    // Batch 1 sends the words through the topic, then fails: no checkpoint covers it.
    let (ssc, clock, _) = word_count_through(&broker, &lines, &words, dir.path(), true);
    ssc.start().unwrap();
    clock.advance(Seconds(1));
    assert!(
        ssc.await_termination_or_timeout(Seconds(30)).is_err(),
        "batch 1 fails the job"
    );
    drop(ssc);

    // The restarted job replays batch 1 (the words are sent a second time) and reads both
    // copies: the second is skipped.
    let (ssc, clock, seen) = word_count_through(&broker, &lines, &words, dir.path(), false);
    ssc.start().unwrap();
    let one = [(ssc, clock, seen)];
    run_all(&one, 1);
    run_all(&one, 2);
    run_all(&one, 3);
    let totals = one[0].2.lock().unwrap().totals.clone();
    assert_eq!(totals, expected, "each word counted once");
    one[0].0.stop(false).unwrap();
}
