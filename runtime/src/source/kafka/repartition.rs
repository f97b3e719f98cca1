//! [`DStream::repartition_through`]: a key-changing shuffle through a Kafka topic, exactly
//! once, as Kafka Streams' repartition topics.
//!
//! # The guarantee
//!
//! The writing side runs as an output of each batch: the records of each batch partition
//! (which must still be the records of one input Kafka partition's offset range: only narrow
//! operations between the direct stream and `repartition_through`) are sent to partition
//! `murmur2(key) mod partitions` of the topic, each with two headers: `cargo-stream-src`, the
//! input range it came from (`partition:from:until:topic`), and `cargo-stream-seq`, its rank
//! `i/n` among that range's records sent to that partition. The batch waits until the broker
//! has acknowledged them all (`acks=all`); a failure fails the batch.
//!
//! A batch replayed after a crash (the direct stream replays the same ranges) sends the same
//! records again. The reading side is a direct stream of the topic; for each of its partitions
//! (a task) and each input partition it keeps how far it has applied: the end of the last
//! range it applied whole, and how many records of the range in progress. A record of a range
//! applied whole, or of the range in progress with a rank already applied, is skipped. That
//! progress is checkpointed with the reading stream's offsets and the state after it (in the
//! task's checkpoint with instances), so whatever crashes, each record of the input changes
//! the state after the hop exactly once.
//!
//! It holds when: the stage before the hop is deterministic (a replayed range gives the same
//! records in the same order: true of `map`, `flat_map`, `filter` with pure functions), records
//! of one partition are delivered in order without gaps (the producer sends with
//! `max.in.flight.requests.per.connection=1`), and nothing else writes into the topic (records
//! without the headers are applied as they come, without the check).

use crate::sync::LockExt;
use std::collections::BTreeMap;
use std::panic::Location;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::StreamingContext;
use crate::batch::{Data, Key};
use crate::checkpoint::Checkpointed;
use crate::dstream::DStream;
use crate::error::{Error, Result};
use crate::failpoint::failpoint;
use crate::state::StateData;
use crate::tasks::lineage::node_id;
use crate::tasks::{KafkaKey, Task, TaskScoped, kafka_partition};
use crate::time::Time;

use super::params::KafkaParams;
use super::producer::KafkaProducer;
use super::source::DirectKafkaSource;
use super::strategy::ConsumerStrategy;
use super::stream::KafkaUtils;

/// The header naming the input range a record came from.
pub const SOURCE_HEADER: &str = "cargo-stream-src";
/// The header holding a record's rank among its range's records sent to its partition.
pub const SEQUENCE_HEADER: &str = "cargo-stream-seq";

/// How long a batch waits for the broker to acknowledge what it sent.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

impl<K, V> DStream<(K, V)>
where
    K: Key + KafkaKey + StateData,
    V: Data + serde::Serialize + serde::de::DeserializeOwned,
{
    /// Sends the pairs through Kafka topic `topic` (which must exist with `partitions`
    /// partitions), keyed by their key, and continues as the stream read back from it: a
    /// key-changing shuffle across instances, after which the key is the record key again, so
    /// stateful operations keep their state per task of `topic`. Exactly once through the hop
    /// (see the module's guarantee): a stage replayed after a crash does not count twice. Needs
    /// a checkpoint directory; `params` give the brokers (`bootstrap.servers`) and security
    /// settings, keys are written with [`KafkaKey`], values with postcard.
    ///
    /// Each batch partition must still hold one input partition's records: call it right after
    /// the narrow operations (`map`, `flat_map`, `filter`) on a direct Kafka stream, before any
    /// shuffle; otherwise `start()` fails naming the operation that mixes them.
    ///
    /// ```no_run
    /// use cargo_stream_runtime::prelude::*;
    /// use cargo_stream_runtime::kafka::{ConsumerStrategy, KafkaParams, KafkaUtils};
    /// let ssc = StreamingContext::new(StreamingConf::new("word-count").master("local[2]"), Seconds(1))?;
    /// ssc.checkpoint("/shared/checkpoints/word-count")?;
    /// let params = KafkaParams::new().set("bootstrap.servers", "127.0.0.1:9092").set("auto.offset.reset", "earliest");
    /// let counts = KafkaUtils::create_direct_stream(&ssc, ConsumerStrategy::subscribe(["lines"]), params.clone())
    ///     .flat_map(|r| r.value_lossy().split_whitespace().map(|w| (w.to_owned(), 1u64)).collect::<Vec<_>>())
    ///     .repartition_through(&params, "word-count-words", 3)
    ///     .reduce_by_key(|a, b| a + b)
    ///     .update_state_by_key(|new: Vec<u64>, total: Option<u64>| Some(total.unwrap_or(0) + new.iter().sum::<u64>()));
    /// counts.print(10)?;
    /// # Ok::<(), cargo_stream_runtime::Error>(())
    /// ```
    #[track_caller]
    pub fn repartition_through(
        &self,
        params: &KafkaParams,
        topic: &str,
        partitions: u32,
    ) -> DStream<(K, V)> {
        let at = Location::caller();
        let name = "repartition_through";
        self.shared.assert_initialized(&format!("`{name}`"));
        self.require_checkpoint("`repartition_through`");
        let partitions = partitions.max(1) as i32;
        let problem = |why: String| Error::InvalidSetting {
            name: "repartition_through",
            why: format!("`repartition_through(\"{topic}\")` at {at}: {why}"),
        };
        let kept = self
            .shared
            .graph_mut()
            .lineage
            .kafka_partitions_kept(node_id(&self.node));
        let source = match kept {
            Ok(Some(any)) => any.downcast::<DirectKafkaSource>().ok(),
            Ok(None) => {
                self.shared.graph_mut().problems.push(problem(
                    "no direct Kafka stream above it: the hop needs each record's input offsets (read the input with `KafkaUtils::create_direct_stream`)".into(),
                ));
                None
            }
            Err((op, op_at)) => {
                self.shared.graph_mut().problems.push(problem(format!(
                    "each batch partition must still hold one Kafka partition's records, but `{op}` at {op_at} mixes them; call `repartition_through` before it, right after the narrow operations (`map`, `flat_map`, `filter`) on the direct stream"
                )));
                None
            }
        };

        // The writing side: an output of each batch.
        let bootstrap = params.get("bootstrap.servers").unwrap_or("").to_owned();
        let settings: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| {
                k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.")
            })
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let producer: Arc<OnceLock<KafkaProducer>> = Arc::default();
        let out_topic = topic.to_owned();
        let write = move |batch: crate::batch::Batch<(K, V)>, time: Time| {
            let Some(source) = &source else { return };
            let ranges = source.ranges_at(time).unwrap_or_default();
            let parts = batch.into_partitions();
            assert_eq!(
                parts.len(),
                ranges.len(),
                "`repartition_through(\"{out_topic}\")`: the batch has {} partitions for {} input ranges",
                parts.len(),
                ranges.len()
            );
            let producer = match producer.get() {
                Some(p) => p,
                None => {
                    let mut s: Vec<(&str, &str)> =
                        vec![("max.in.flight.requests.per.connection", "1")];
                    s.extend(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                    let p = KafkaProducer::with_config(&bootstrap, &s)
                        .unwrap_or_else(|e| panic!("`repartition_through(\"{out_topic}\")`: {e}"));
                    producer.get_or_init(|| p)
                }
            };
            for (records, range) in parts.into_iter().zip(ranges) {
                let src = format!(
                    "{}:{}:{}:{}",
                    range.partition, range.from_offset, range.until_offset, range.topic
                );
                let keys: Vec<_> = records.iter().map(|(k, _)| k.kafka_bytes()).collect();
                let dests: Vec<i32> = keys
                    .iter()
                    .map(|k| kafka_partition(k, partitions))
                    .collect();
                let mut n = vec![0u32; partitions as usize];
                for d in &dests {
                    n[*d as usize] += 1;
                }
                let mut seq = vec![0u32; partitions as usize];
                for (((_, v), key), d) in records.iter().zip(&keys).zip(dests) {
                    let value = postcard::to_stdvec(v).unwrap_or_else(|e| {
                        panic!("`repartition_through(\"{out_topic}\")`: cannot encode a value: {e}")
                    });
                    let rank = format!("{}/{}", seq[d as usize], n[d as usize]);
                    seq[d as usize] += 1;
                    producer
                        .send_to(
                            &out_topic,
                            d,
                            key,
                            &value,
                            &[
                                (SOURCE_HEADER, src.as_bytes()),
                                (SEQUENCE_HEADER, rank.as_bytes()),
                            ],
                        )
                        .unwrap_or_else(|e| panic!("`repartition_through`: {e}"));
                }
            }
            producer
                .flush(FLUSH_TIMEOUT)
                .unwrap_or_else(|e| panic!("`repartition_through(\"{out_topic}\")`: {e}"));
        };
        // `register_output` cannot fail before `start()`, which `assert_initialized` checked.
        let _ = self.register_output(name, write);

        // The reading side: a direct stream of the topic, from its beginning.
        let mut read_params = params.clone().set("auto.offset.reset", "earliest");
        if let Some(group) = params.get("group.id") {
            read_params = read_params.set("group.id", format!("{group}-{topic}"));
        }
        // A handle on the same context to create the stream with; dropping it before
        // `start()` does nothing (a context only stops itself once started).
        let ssc = StreamingContext {
            shared: self.shared.clone(),
        };
        let reader = KafkaUtils::create_direct_stream(
            &ssc,
            ConsumerStrategy::subscribe([topic.to_owned()]),
            read_params,
        );
        drop(ssc);
        let keyed = reader.keyed::<K>();
        let applied = Arc::new(Applied {
            tasks: Mutex::default(),
            per_task: self.shared.conf.instance.is_some(),
        });
        self.shared.register_checkpointed(applied.clone());
        let in_topic = topic.to_owned();
        keyed.derive("repartition_read", move |batch, _| {
            batch.map_parts(|records| {
                let mut out = Vec::with_capacity(records.len());
                for (k, r) in records {
                    if !applied.admit(&r) {
                        continue;
                    }
                    let v: V = r.value().map(postcard::from_bytes).transpose().ok().flatten().unwrap_or_else(|| {
                        panic!(
                            "record {}-{}@{} of repartition topic `{in_topic}`: its value does not decode as `{}`; is another job writing into the topic?",
                            r.topic(),
                            r.partition(),
                            r.offset(),
                            std::any::type_name::<V>()
                        )
                    });
                    out.push((k, v));
                }
                out
            })
        })
    }
}

/// How far one input partition's records are applied on one partition of the topic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Progress {
    /// The end of the last input range applied whole.
    done_until: i64,
    /// The input range in progress, and the rank of its next record.
    from: i64,
    until: i64,
    next: u32,
}

/// For each task of the topic (a partition), each input partition's progress (keyed
/// `partition:topic` of the input).
type TaskProgress = BTreeMap<String, Progress>;

/// The reading side's skip state (see the module doc), checkpointed.
struct Applied {
    tasks: Mutex<BTreeMap<Task, TaskProgress>>,
    /// With instances: kept per task, in the tasks' checkpoints.
    per_task: bool,
}

/// The input range a record came from, and its rank among those sent to its partition.
fn provenance(r: &super::record::ConsumerRecord) -> Option<(String, i64, i64, u32, u32)> {
    let header = |name: &str| {
        r.headers()
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok())
    };
    let mut src = header(SOURCE_HEADER)?.splitn(4, ':');
    let (p, from, until, topic) = (src.next()?, src.next()?, src.next()?, src.next()?);
    let (seq, n) = header(SEQUENCE_HEADER)?.split_once('/')?;
    Some((
        format!("{p}:{topic}"),
        from.parse().ok()?,
        until.parse().ok()?,
        seq.parse().ok()?,
        n.parse().ok()?,
    ))
}

impl Applied {
    /// Whether `r` is applied now (else it was before: a replayed stage sent it again).
    fn admit(&self, r: &super::record::ConsumerRecord) -> bool {
        let Some((src, from, until, seq, n)) = provenance(r) else {
            return true;
        };
        let task = Task::new(r.topic(), r.partition());
        let mut tasks = self.tasks.locked();
        let p = tasks.entry(task).or_default().entry(src).or_default();
        let seen = until <= p.done_until || (from == p.from && until == p.until && seq < p.next);
        failpoint!("repartition::apply_all", |_| {
            advance(p, from, until, seq, n);
            true
        });
        if seen {
            return false;
        }
        advance(p, from, until, seq, n);
        true
    }
}

fn advance(p: &mut Progress, from: i64, until: i64, seq: u32, n: u32) {
    if (from, until) != (p.from, p.until) {
        (p.from, p.until, p.next) = (from, until, 0);
    }
    p.next = p.next.max(seq + 1);
    if p.next >= n {
        p.done_until = p.done_until.max(until);
    }
}

impl Checkpointed for Applied {
    fn kind(&self) -> &'static str {
        "repartition_through"
    }

    fn save(&self, _time: Time) -> Result<Vec<u8>> {
        let tasks = self.tasks.locked();
        postcard::to_stdvec(&*tasks).map_err(|e| {
            Error::IllegalState(format!("could not encode the repartition progress: {e}"))
        })
    }

    fn restore(&self, bytes: &[u8]) -> Result<()> {
        *self.tasks.locked() = postcard::from_bytes(bytes).map_err(|e| {
            Error::IllegalState(format!("could not decode the repartition progress: {e}"))
        })?;
        Ok(())
    }

    fn task_scoped(&self) -> Option<&dyn TaskScoped> {
        self.per_task.then_some(self as &dyn TaskScoped)
    }
}

impl TaskScoped for Applied {
    fn tasks(&self) -> Vec<Task> {
        self.tasks.locked().keys().cloned().collect()
    }

    fn save_task(&self, task: &Task, _time: Time) -> Result<Vec<u8>> {
        let tasks = self.tasks.locked();
        let progress = tasks.get(task).cloned().unwrap_or_default();
        postcard::to_stdvec(&progress).map_err(|e| {
            Error::IllegalState(format!(
                "could not encode the repartition progress of `{task}`: {e}"
            ))
        })
    }

    fn clear_tasks(&self) {
        self.tasks.locked().clear();
    }

    fn restore_task(&self, task: &Task, bytes: &[u8]) -> Result<()> {
        let progress: TaskProgress = postcard::from_bytes(bytes).map_err(|e| {
            Error::IllegalState(format!(
                "could not decode the repartition progress of `{task}`: {e}"
            ))
        })?;
        self.tasks.locked().insert(task.clone(), progress);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::ConsumerRecord;

    fn record(partition: i32, offset: i64, src: &str, seq: &str) -> ConsumerRecord {
        ConsumerRecord::new(
            "words",
            partition,
            offset,
            Some(b"k".to_vec()),
            Some(vec![]),
        )
        .with_headers(vec![
            (SOURCE_HEADER.into(), Some(src.as_bytes().to_vec())),
            (SEQUENCE_HEADER.into(), Some(seq.as_bytes().to_vec())),
        ])
    }

    #[test]
    fn a_range_sent_again_is_skipped_and_a_half_sent_one_completed() {
        let a = Applied {
            tasks: Mutex::default(),
            per_task: false,
        };
        // Range [0, 10) of lines-0 sent 3 records to partition 0; the first try got 2 out.
        assert!(a.admit(&record(0, 0, "0:0:10:lines", "0/3")));
        assert!(a.admit(&record(0, 1, "0:0:10:lines", "1/3")));
        // The replay sends all 3: the first 2 are skipped, the third applied.
        assert!(!a.admit(&record(0, 2, "0:0:10:lines", "0/3")));
        assert!(!a.admit(&record(0, 3, "0:0:10:lines", "1/3")));
        assert!(a.admit(&record(0, 4, "0:0:10:lines", "2/3")));
        // The next range, then the whole first one once more.
        assert!(a.admit(&record(0, 5, "0:10:20:lines", "0/1")));
        assert!(!a.admit(&record(0, 6, "0:0:10:lines", "0/3")));
        assert!(!a.admit(&record(0, 7, "0:10:20:lines", "0/1")));
        // Another input partition is tracked apart; so is another partition of the topic.
        assert!(a.admit(&record(0, 8, "1:0:10:lines", "0/1")));
        assert!(a.admit(&record(1, 0, "0:0:10:lines", "0/1")));
        // Saved and restored, the progress is the same.
        let b = Applied {
            tasks: Mutex::default(),
            per_task: true,
        };
        b.restore(&a.save(Time(0)).unwrap()).unwrap();
        assert!(!b.admit(&record(0, 9, "0:10:20:lines", "0/1")));
        let task = Task::new("words", 0);
        let c = Applied {
            tasks: Mutex::default(),
            per_task: true,
        };
        c.restore_task(&task, &b.save_task(&task, Time(0)).unwrap())
            .unwrap();
        assert!(!c.admit(&record(0, 9, "0:0:10:lines", "2/3")));
        assert!(c.admit(&record(0, 10, "0:20:30:lines", "0/1")));
    }
}
