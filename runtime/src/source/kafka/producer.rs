//! `KafkaProducer`: a small blocking producer for tests, templates and benchmarks, with the
//! Java client's partitioner so that keyed records land where Java producers put them.

use crate::sync::LockExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

use super::client::{LogContext, creation_error};

/// Delivery failures seen since the last [`KafkaProducer::flush`].
#[derive(Default)]
struct Deliveries {
    failed: Mutex<Vec<String>>,
}

/// The producer's context: logs through `tracing` and keeps delivery failures for `flush`.
struct ProducerCtx {
    log: LogContext,
    deliveries: Arc<Deliveries>,
}

impl rdkafka::ClientContext for ProducerCtx {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        self.log.log(level, fac, message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.log.error(error, reason);
    }
}

impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, msg)) = result {
            use rdkafka::Message;
            let mut failed = self.deliveries.failed.locked();
            // Keep the first few: they say what is wrong; the rest only repeat it.
            if failed.len() < 10 {
                failed.push(format!("record to `{}`: {e}", msg.topic()));
            }
        }
    }
}

/// A Kafka producer that sends records and waits for them with [`flush`](Self::flush): for
/// tests, templates and benchmarks that feed a topic. It always uses
/// `partitioner=murmur2_random`, the Java client's partitioner, so that a keyed record lands
/// on the partition a Java producer would choose (librdkafka's default differs).
///
/// ```no_run
/// use cargo_stream_runtime::kafka::KafkaProducer;
/// use std::time::Duration;
/// let producer = KafkaProducer::new("127.0.0.1:9092")?;
/// producer.send("lines", Some(b"user-1"), b"hello world")?;
/// producer.flush(Duration::from_secs(10))?;
/// # Ok::<(), String>(())
/// ```
pub struct KafkaProducer {
    producer: BaseProducer<ProducerCtx>,
    deliveries: Arc<Deliveries>,
    bootstrap: String,
}

impl KafkaProducer {
    /// A producer for the brokers at `bootstrap` (`host:port[,host:port...]`), with
    /// `acks=all` and the Java client's partitioner.
    pub fn new(bootstrap: &str) -> Result<KafkaProducer, String> {
        Self::with_config(bootstrap, &[])
    }

    /// As [`new`](Self::new), with more producer settings by librdkafka's names
    /// (`linger.ms`, `compression.type`, security settings, ...); `partitioner` stays
    /// `murmur2_random`.
    pub fn with_config(
        bootstrap: &str,
        settings: &[(&str, &str)],
    ) -> Result<KafkaProducer, String> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", bootstrap)
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000");
        for (k, v) in settings {
            config.set(*k, *v);
        }
        config.set("partitioner", "murmur2_random");
        let deliveries = Arc::new(Deliveries::default());
        let ctx = ProducerCtx {
            log: LogContext::new(bootstrap),
            deliveries: deliveries.clone(),
        };
        let producer = config.create_with_context(ctx).map_err(|e| {
            format!(
                "cannot create a Kafka producer for `{bootstrap}`: {}; check the settings",
                creation_error(&e)
            )
        })?;
        Ok(KafkaProducer {
            producer,
            deliveries,
            bootstrap: bootstrap.to_owned(),
        })
    }

    /// Queues one record for `topic` (its partition chosen from `key` as the Java client
    /// does, round robin without a key). Waits while librdkafka's queue is full (at most
    /// 30 s). Delivery failures are reported by the next [`flush`](Self::flush).
    pub fn send(&self, topic: &str, key: Option<&[u8]>, value: &[u8]) -> Result<(), String> {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(value);
        if let Some(k) = key {
            record = record.key(k);
        }
        self.enqueue(record, || format!("topic `{topic}`"))
    }

    /// Queues one record for partition `partition` of `topic` with `headers` (the repartition
    /// stage's own partitioning and provenance). As [`send`](Self::send) otherwise.
    pub fn send_to(
        &self,
        topic: &str,
        partition: i32,
        key: &[u8],
        value: &[u8],
        headers: &[(&str, &[u8])],
    ) -> Result<(), String> {
        use rdkafka::message::{Header, OwnedHeaders};
        let mut owned = OwnedHeaders::new_with_capacity(headers.len());
        for (name, value) in headers {
            owned = owned.insert(Header {
                key: name,
                value: Some(*value),
            });
        }
        let record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
            .partition(partition)
            .key(key)
            .payload(value)
            .headers(owned);
        self.enqueue(record, || {
            format!("partition {partition} of topic `{topic}`")
        })
    }

    /// Queues `record`, waiting while librdkafka's queue is full (at most 30 s); `target`
    /// names where it goes in the error.
    fn enqueue(
        &self,
        mut record: BaseRecord<'_, [u8], [u8]>,
        target: impl Fn() -> String,
    ) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((rdkafka::error::KafkaError::MessageProduction(code), r))
                    if code == rdkafka::types::RDKafkaErrorCode::QueueFull
                        && Instant::now() < deadline =>
                {
                    record = r;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => {
                    return Err(format!(
                        "cannot send a record to {} at `{}`: {e}",
                        target(),
                        self.bootstrap
                    ));
                }
            }
        }
    }

    /// Waits until every record sent is acknowledged by the brokers, for at most `timeout`;
    /// an error names the records that failed (an unknown topic, an unreachable broker).
    pub fn flush(&self, timeout: Duration) -> Result<(), String> {
        let flushed = self.producer.flush(timeout);
        let failed = std::mem::take(&mut *self.deliveries.failed.locked());
        if let Some(first) = failed.first() {
            return Err(format!(
                "{} delivery failure(s) to `{}`, the first: {first}; check that the topic exists and the brokers are up",
                failed.len(),
                self.bootstrap
            ));
        }
        flushed.map_err(|e| {
            format!(
                "records to `{}` not acknowledged within {} ms: {e}; check that the brokers are up",
                self.bootstrap,
                timeout.as_millis()
            )
        })
    }
}
