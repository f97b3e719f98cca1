//! `ConsumerRecord`: one record read from Kafka, with its key and value as bytes and typed
//! helpers to read them.

use std::sync::Arc;

use crate::text::Line;

/// One Kafka record, as Kafka's `ConsumerRecord`: where it was read (`topic`, `partition`,
/// `offset`), its timestamp, key, value and headers. Key and value are bytes; `key_str`,
/// `value_str` and `value_json` read them as text or JSON, and `value_line` as a [`Line`]
/// sharing the record's bytes (a word count then allocates nothing per word). Cheap to clone.
///
/// ```
/// use cargo_stream_runtime::kafka::ConsumerRecord;
/// let r = ConsumerRecord::new("lines", 0, 7, Some(b"k".to_vec()), Some(br#"{"n": 3}"#.to_vec()));
/// assert_eq!(r.key_str().unwrap(), Some("k"));
/// #[derive(serde::Deserialize)]
/// struct V { n: u32 }
/// assert_eq!(r.value_json::<V>().unwrap().n, 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerRecord {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<Arc<[u8]>>,
    value: Option<Arc<[u8]>>,
    headers: Arc<[(String, Option<Vec<u8>>)]>,
}

/// Why a record's key or value could not be read as asked.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The bytes are not UTF-8.
    #[error("{what} of record {topic}-{partition}@{offset} is not UTF-8: {source}")]
    NotUtf8 {
        /// `key` or `value`.
        what: &'static str,
        /// The record's topic.
        topic: String,
        /// The record's partition.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// Where the bytes stop being UTF-8.
        source: std::str::Utf8Error,
    },
    /// The value is absent (a tombstone) or not the JSON asked for.
    #[error("value of record {topic}-{partition}@{offset} is not the JSON expected: {message}")]
    Json {
        /// The record's topic.
        topic: String,
        /// The record's partition.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// What serde said.
        message: String,
    },
}

impl ConsumerRecord {
    /// A record of `topic`'s partition `partition` at `offset` (no timestamp, no headers):
    /// for tests and custom inputs; the direct stream builds them from what it reads.
    pub fn new(
        topic: impl Into<Arc<str>>,
        partition: i32,
        offset: i64,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
    ) -> Self {
        ConsumerRecord {
            topic: topic.into(),
            partition,
            offset,
            timestamp: None,
            key: key.map(Into::into),
            value: value.map(Into::into),
            headers: Arc::from(Vec::new()),
        }
    }

    /// A record as read from Kafka, its bytes copied once; `headers` shared.
    pub(crate) fn read(
        topic: Arc<str>,
        partition: i32,
        offset: i64,
        timestamp: Option<i64>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: Arc<[(String, Option<Vec<u8>>)]>,
    ) -> Self {
        ConsumerRecord {
            topic,
            partition,
            offset,
            timestamp,
            key: key.map(Arc::from),
            value: value.map(Arc::from),
            headers,
        }
    }

    /// The same record with timestamp `ms` (milliseconds since the epoch).
    pub fn with_timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }

    /// The same record with `headers`.
    pub fn with_headers(mut self, headers: Vec<(String, Option<Vec<u8>>)>) -> Self {
        self.headers = headers.into();
        self
    }

    /// The topic it was read from.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition it was read from.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Its offset in the partition.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Its timestamp (milliseconds since the epoch), when the broker gave one.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// Its key, `None` when the record has none.
    pub fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }

    /// Its value, `None` for a tombstone.
    pub fn value(&self) -> Option<&[u8]> {
        self.value.as_deref()
    }

    /// Its headers, in order (a header's value may be absent).
    pub fn headers(&self) -> &[(String, Option<Vec<u8>>)] {
        &self.headers
    }

    /// Its key as UTF-8 text.
    pub fn key_str(&self) -> Result<Option<&str>, RecordError> {
        self.text("key", self.key())
    }

    /// Its value as UTF-8 text.
    pub fn value_str(&self) -> Result<Option<&str>, RecordError> {
        self.text("value", self.value())
    }

    /// Its value as UTF-8 text, with U+FFFD in place of bytes that are not UTF-8 and `""` for
    /// a tombstone (as Spark's `StringDeserializer` reads text).
    pub fn value_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.value().unwrap_or_default())
    }

    /// Its value as a [`Line`] sharing the record's bytes: no copy and no allocation when
    /// they are UTF-8, so `flat_map(|r| r.value_line().words())` cuts records into [`Word`]s
    /// (inline up to 22 bytes) without allocating per record or per word, where
    /// `value_str()?.split_whitespace().map(str::to_owned)` makes a `String` per word.
    /// Bytes that are not UTF-8 read as U+FFFD (the text then copied once), a tombstone as
    /// `""`, as [`ConsumerRecord::value_lossy`] reads them.
    ///
    /// [`Word`]: crate::text::Word
    ///
    /// ```
    /// use cargo_stream_runtime::kafka::ConsumerRecord;
    /// let r = ConsumerRecord::new("lines", 0, 7, None, Some(b"to be\nor not".to_vec()));
    /// let words: Vec<String> = r.value_line().words().map(String::from).collect();
    /// assert_eq!(words, ["to", "be", "or", "not"]);
    /// ```
    pub fn value_line(&self) -> Line {
        match &self.value {
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(_) => {
                    let raw = Arc::into_raw(Arc::clone(bytes));
                    // SAFETY: `str` has the layout of `[u8]`, the bytes were just checked to be
                    // UTF-8, and nothing writes them (an `Arc` shares them read-only): the
                    // cast of std's `From<Arc<str>> for Arc<[u8]>`, the other way.
                    let text: Arc<str> = unsafe { Arc::from_raw(raw as *const str) };
                    Line::from(text)
                }
                Err(_) => Line::from(String::from_utf8_lossy(bytes).into_owned()),
            },
            None => Line::from(""),
        }
    }

    /// Its value read as JSON into `T`.
    pub fn value_json<T: serde::de::DeserializeOwned>(&self) -> Result<T, RecordError> {
        let json_error = |message: String| RecordError::Json {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset: self.offset,
            message,
        };
        let bytes = self
            .value()
            .ok_or_else(|| json_error("the record has no value (a tombstone)".into()))?;
        serde_json::from_slice(bytes).map_err(|e| json_error(e.to_string()))
    }

    fn text<'a>(
        &self,
        what: &'static str,
        bytes: Option<&'a [u8]>,
    ) -> Result<Option<&'a str>, RecordError> {
        bytes
            .map(|b| {
                std::str::from_utf8(b).map_err(|source| RecordError::NotUtf8 {
                    what,
                    topic: self.topic.to_string(),
                    partition: self.partition,
                    offset: self.offset,
                    source,
                })
            })
            .transpose()
    }
}
