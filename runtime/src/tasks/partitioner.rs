//! Partitioners: which partition a key goes to. [`KafkaPartitioner`] is Kafka's (the Java
//! client's default: `murmur2` of the serialized key, made positive, modulo the partition
//! count), so that a key's state sits in the task of the Kafka partition its records are in;
//! [`HashPartitioner`] is the shuffles' own hash. Both behind one [`Partitioner`] trait the
//! batch shuffles can take.

use std::borrow::Cow;
use std::hash::{BuildHasher, Hash};

/// Where keys go: `partition(key)` is in `0..partitions()`, the same in every run.
pub trait Partitioner<K: ?Sized>: Send + Sync {
    /// How many partitions.
    fn partitions(&self) -> usize;
    /// The partition of `key`.
    fn partition(&self, key: &K) -> usize;
}

/// The shuffles' hash partitioner (FxHash of the key modulo `n`): deterministic, not Kafka's.
///
/// ```
/// use cargo_stream_runtime::tasks::{HashPartitioner, Partitioner};
/// let p = HashPartitioner::new(4);
/// assert!(p.partition(&"a") < 4);
/// assert_eq!(p.partition(&"a"), p.partition(&"a"));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct HashPartitioner {
    n: usize,
}

impl HashPartitioner {
    /// `n` partitions (at least 1).
    pub fn new(n: usize) -> Self {
        HashPartitioner { n: n.max(1) }
    }
}

impl<K: Hash + ?Sized> Partitioner<K> for HashPartitioner {
    fn partitions(&self) -> usize {
        self.n
    }

    fn partition(&self, key: &K) -> usize {
        (rustc_hash::FxBuildHasher.hash_one(key) % self.n as u64) as usize
    }
}

/// Kafka's partitioner over `n` partitions: `toPositive(murmur2(bytes)) % n` of the key's
/// bytes as a Kafka serializer writes them ([`KafkaKey`]), as the Java client's default
/// partitioner and librdkafka's `murmur2_random` place keyed records.
///
/// ```
/// use cargo_stream_runtime::tasks::{KafkaPartitioner, Partitioner};
/// let p = KafkaPartitioner::new(3);
/// assert_eq!(p.partition(&"k0".to_string()), cargo_stream_runtime::tasks::kafka_partition(b"k0", 3) as usize);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct KafkaPartitioner {
    n: usize,
}

impl KafkaPartitioner {
    /// `n` partitions (at least 1): the topic's partition count.
    pub fn new(n: usize) -> Self {
        KafkaPartitioner { n: n.max(1) }
    }
}

impl<K: KafkaKey> Partitioner<K> for KafkaPartitioner {
    fn partitions(&self) -> usize {
        self.n
    }

    fn partition(&self, key: &K) -> usize {
        kafka_partition(&key.kafka_bytes(), self.n as i32) as usize
    }
}

/// A key type with Kafka's bytes: how a record key is read from a Kafka record and written to
/// one, the same bytes the Java client's serializers make (UTF-8 for strings, big-endian for
/// integers), so that [`KafkaPartitioner`] places a key where Java producers do.
pub trait KafkaKey: Sized {
    /// The key as a Kafka serializer writes it.
    fn kafka_bytes(&self) -> Cow<'_, [u8]>;
    /// The key read back from a record key's bytes; `Err` says why it cannot be.
    fn from_kafka_bytes(bytes: &[u8]) -> Result<Self, String>;
}

impl KafkaKey for String {
    fn kafka_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.as_bytes())
    }

    fn from_kafka_bytes(bytes: &[u8]) -> Result<Self, String> {
        String::from_utf8(bytes.to_vec()).map_err(|e| format!("the key is not UTF-8: {e}"))
    }
}

impl KafkaKey for Vec<u8> {
    fn kafka_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self)
    }

    fn from_kafka_bytes(bytes: &[u8]) -> Result<Self, String> {
        Ok(bytes.to_vec())
    }
}

macro_rules! big_endian_key {
    ($($t:ty),*) => {$(
        impl KafkaKey for $t {
            fn kafka_bytes(&self) -> Cow<'_, [u8]> {
                Cow::Owned(self.to_be_bytes().to_vec())
            }

            fn from_kafka_bytes(bytes: &[u8]) -> Result<Self, String> {
                let a: [u8; std::mem::size_of::<$t>()] = bytes.try_into().map_err(|_| {
                    format!(
                        "the key has {} bytes, not the {} of a big-endian `{}`",
                        bytes.len(),
                        std::mem::size_of::<$t>(),
                        stringify!($t)
                    )
                })?;
                Ok(<$t>::from_be_bytes(a))
            }
        }
    )*};
}
big_endian_key!(i32, i64, u32, u64);

/// Kafka's `Utils.murmur2`: the 32-bit MurmurHash2 with Kafka's seed, as the Java client
/// computes it for keyed records.
///
/// ```
/// // Kafka's own test vectors (UtilsTest.testMurmur2).
/// use cargo_stream_runtime::tasks::murmur2;
/// assert_eq!(murmur2(b"21"), -973932308);
/// assert_eq!(murmur2(b"foobar"), -790332482);
/// ```
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the Java client's default partitioner gives a record with key `key` among
/// `partitions`: `toPositive(murmur2(key)) % partitions`.
///
/// ```
/// assert_eq!(cargo_stream_runtime::tasks::kafka_partition(b"k0", 1), 0);
/// ```
pub fn kafka_partition(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_test_vectors() {
        // org.apache.kafka.common.utils.UtilsTest#testMurmur2
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (key, hash) in cases {
            assert_eq!(murmur2(key), hash, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn integer_keys_are_big_endian_as_javas_serializers() {
        assert_eq!(1i32.kafka_bytes().as_ref(), &[0, 0, 0, 1]);
        assert_eq!(
            i64::from_kafka_bytes(&[0, 0, 0, 0, 0, 0, 1, 0]).unwrap(),
            256
        );
        assert!(i32::from_kafka_bytes(&[1]).unwrap_err().contains("1 bytes"));
        assert!(
            String::from_kafka_bytes(&[0xff])
                .unwrap_err()
                .contains("UTF-8")
        );
    }
}
