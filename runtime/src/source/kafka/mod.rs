//! Spark's Kafka 0-10 *direct* stream (feature `kafka`): at each batch time the driver fixes
//! one [`OffsetRange`] per partition, the batch reads exactly those ranges (one partition of
//! the batch per Kafka partition, on the worker threads), and the ranges of every generated
//! batch are part of the checkpoint, so a batch replayed after a crash reads the same records.
//!
//! Public as `cargo_stream_runtime::kafka`. The entry point is
//! [`KafkaUtils::create_direct_stream`].

mod client;
mod keyed;
mod limits;
mod params;
#[cfg(feature = "postgres")]
pub mod postgres;
mod producer;
mod range;
mod reader;
mod record;
mod repartition;
mod source;
mod strategy;
mod stream;
mod tasks;

pub use params::KafkaParams;
pub use producer::KafkaProducer;
pub use range::{OffsetRange, TopicPartition};
pub use record::{ConsumerRecord, RecordError};
pub use repartition::{SEQUENCE_HEADER, SOURCE_HEADER};
pub use strategy::ConsumerStrategy;
pub use stream::{DirectKafkaStream, KafkaUtils, OffsetCommitter};
