//! [`DirectKafkaStream::keyed`]: the records keyed by their record key, the stream on which
//! keyed state is kept per task when the job runs as instances.

use std::panic::Location;
use std::sync::Arc;

use crate::batch::Data;
use crate::dstream::DStream;
use crate::tasks::lineage::node_id;
use crate::tasks::store::{KeyTasks, TaskSource};
use crate::tasks::{KafkaKey, kafka_partition};

use super::record::ConsumerRecord;
use super::stream::DirectKafkaStream;

impl DirectKafkaStream {
    /// The records as `(key, record)` pairs, the key read from the record key with
    /// [`KafkaKey`] (UTF-8 for `String`, big-endian for integers, as Java's serializers).
    ///
    /// This is the stream keyed state is kept on when the job runs as instances (see
    /// [`tasks`](crate::tasks)): its key is the record key, so the Kafka partition of a key is
    /// where its records are (murmur2, as Java producers place keys), and
    /// `update_state_by_key` after key-preserving operations (`filter`, `map_values`,
    /// `reduce_by_key`...) keeps each partition's keys in that partition's task, checkpointed
    /// with its offsets. As Kafka Streams' aggregations, records without a key are skipped (with
    /// a warning); a key that does not decode as `K` fails the batch, naming the record.
    ///
    /// ```no_run
    /// use cargo_stream_runtime::prelude::*;
    /// use cargo_stream_runtime::kafka::{ConsumerStrategy, KafkaParams, KafkaUtils};
    /// let ssc = StreamingContext::new(StreamingConf::new("clicks").master("local[2]").instance(0, 2), Seconds(1))?;
    /// ssc.checkpoint("/shared/checkpoints/clicks")?;
    /// let params = KafkaParams::new().set("bootstrap.servers", "127.0.0.1:9092").set("auto.offset.reset", "earliest");
    /// let clicks = KafkaUtils::create_direct_stream(&ssc, ConsumerStrategy::subscribe(["clicks"]), params)
    ///     .keyed::<String>()
    ///     .map_values(|_record| 1u64)
    ///     .reduce_by_key(|a, b| a + b)
    ///     .update_state_by_key(|new: Vec<u64>, total: Option<u64>| Some(total.unwrap_or(0) + new.iter().sum::<u64>()));
    /// clicks.print(10)?;
    /// # Ok::<(), cargo_stream_runtime::Error>(())
    /// ```
    #[track_caller]
    pub fn keyed<K: KafkaKey + Data>(&self) -> DStream<(K, ConsumerRecord)> {
        let at = Location::caller();
        let out = self.stream.flat_map(|r: ConsumerRecord| {
            let key = match r.key() {
                Some(k) => match K::from_kafka_bytes(k) {
                    Ok(k) => k,
                    Err(why) => panic!(
                        "record {}-{}@{}: its key does not decode as `{}`: {why}",
                        r.topic(),
                        r.partition(),
                        r.offset(),
                        std::any::type_name::<K>()
                    ),
                },
                None => {
                    tracing::warn!(
                        topic = r.topic(),
                        partition = r.partition(),
                        offset = r.offset(),
                        "record without a key skipped by `keyed` (as Kafka Streams' aggregations skip them)"
                    );
                    return None;
                }
            };
            Some((key, r))
        });
        let tasks: Arc<KeyTasks<K>> = Arc::new(KeyTasks {
            source: self.source.tasks.clone() as Arc<dyn TaskSource>,
            partition: Box::new(|k: &K, n| kafka_partition(&k.kafka_bytes(), n as i32)),
            at: at.to_string(),
        });
        let mut graph = out.shared.graph_mut();
        let id = node_id(&out.node);
        graph
            .lineage
            .edge(id, node_id(&self.stream.node), "keyed", at);
        graph.lineage.mark_keyed(id, tasks);
        drop(graph);
        out
    }
}
