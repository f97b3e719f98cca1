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
///
/// Its `Debug` output hides the values of secret settings (passwords, keys, JAAS
/// configurations, OAuth secrets), so that logging the parameters never prints them.
#[derive(Clone, Default, PartialEq, Eq)]
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

    /// Whether `key` names a secret (its value is never printed).
    pub(crate) fn is_secret(key: &str) -> bool {
        let k = key.to_ascii_lowercase();
        [
            "password",
            "secret",
            "jaas",
            "token",
            ".key.pem",
            "ssl.key",
            "credentials",
        ]
        .iter()
        .any(|s| k.contains(s))
    }

    /// Every setting, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.props.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl std::fmt::Debug for KafkaParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.props {
            if Self::is_secret(k) {
                m.entry(k, &"<redacted>");
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let p = KafkaParams::new()
            .set("bootstrap.servers", "b:9092")
            .set("sasl.password", "hunter2")
            .set("ssl.key.password", "hunter3")
            .set("sasl.oauthbearer.client.secret", "hunter4");
        let shown = format!("{p:?}");
        assert!(shown.contains("b:9092"), "{shown}");
        assert!(!shown.contains("hunter"), "{shown}");
    }
}
