//! `KafkaParams`: the consumer configuration, librdkafka's (= the Java client's) property
//! names, as Spark's `kafkaParams` map.

use std::collections::BTreeMap;

/// Consumer settings by Kafka's property names (`bootstrap.servers`, `group.id`,
/// `auto.offset.reset`, `isolation.level`, ...), as Spark's `kafkaParams`.
///
/// ```
/// use cargo_stream_runtime::kafka::KafkaParams;
/// let params = KafkaParams::new()
///     .set("bootstrap.servers", "127.0.0.1:9092")
///     .set("group.id", "word-count")
///     .set("auto.offset.reset", "earliest");
/// assert_eq!(params.get("group.id"), Some("word-count"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaParams {
    props: BTreeMap<String, String>,
}

impl KafkaParams {
    /// No settings.
    pub fn new() -> Self {
        KafkaParams::default()
    }

    /// The same settings with `key` set to `value`.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.props.insert(key.into(), value.into());
        self
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.props.get(key).map(String::as_str)
    }

    /// Every setting, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.props.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}
