//! `Store<K, S>`: per-partition hash maps of state, with each entry's last update time, and
//! their checkpoint: a full snapshot, or only the keys changed since the previous checkpoint
//! (a delta, `checkpoint/chain.rs`), which the partitions note as they change
//! (`state/partition.rs`).

use crate::sync::LockExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::batch::Key;
use crate::batch::shuffle::partition_of;
use crate::checkpoint::chain::Encoded;
use crate::checkpoint::{ChainStats, Checkpointed, DeltaPolicy, Saved};
use crate::error::{Error, Result};
use crate::state::StateData;
pub(crate) use crate::state::partition::Partition;
use crate::time::Time;

/// A state value and the batch that last touched it.
#[derive(Clone)]
pub(crate) struct Entry<S> {
    pub(crate) value: S,
    pub(crate) touched: Time,
}

/// State partitioned like the keys: partition `i` holds the keys that hash to `i`.
pub(crate) struct Store<K, S> {
    pub(crate) kind: &'static str,
    pub(crate) parts: Mutex<Vec<Partition<K, S>>>,
    /// Whether the state exists as Spark's previous state RDD does: computed at least once,
    /// or restored from a checkpoint.
    pub(crate) computed: AtomicBool,
    /// Where its checkpoints stand, for deltas.
    chain: Mutex<Tracking<K>>,
}

/// A store's incremental checkpoints: what its last durable checkpoint holds and what changed
/// since.
struct Tracking<K> {
    /// Keys changed since the last durable checkpoint, taken from the partitions by saves
    /// whose checkpoint may not have become durable (a key may repeat).
    pending: Vec<K>,
    /// Some change was not noted: only a full snapshot covers it.
    full_needed: bool,
    /// The last durable checkpoint holding this state (full or delta), if this run has one.
    base: Option<Time>,
    /// Its chain: the full snapshot and the deltas since.
    stats: ChainStats,
    /// What the last save wrote, until its checkpoint is durable.
    staged: Option<(Time, Staged)>,
}

#[derive(Debug, Clone, Copy)]
enum Staged {
    Full(u64),
    Delta(u64),
}

impl<K> Default for Tracking<K> {
    fn default() -> Self {
        Tracking {
            pending: Vec::new(),
            full_needed: true,
            base: None,
            stats: ChainStats::default(),
            staged: None,
        }
    }
}

/// Every entry of `parts` as `Vec<(K, S, u64)>` encodes, without the vector.
struct FullRef<'a, K, S>(&'a [Partition<K, S>]);

impl<K: serde::Serialize, S: serde::Serialize> serde::Serialize for FullRef<'_, K, S> {
    fn serialize<Z: serde::Serializer>(&self, z: Z) -> std::result::Result<Z::Ok, Z::Error> {
        use serde::ser::SerializeSeq;
        let n = self.0.iter().map(|p| p.len()).sum();
        let mut seq = z.serialize_seq(Some(n))?;
        for p in self.0 {
            for (k, e) in p.iter() {
                seq.serialize_element(&(k, &e.value, e.touched.0))?;
            }
        }
        seq.end()
    }
}

/// A delta as a store saves it: the keys changed (with their state and last update) and the
/// keys removed since the previous checkpoint.
#[derive(serde::Serialize)]
struct DeltaRef<'a, K, S> {
    changed: Vec<(&'a K, &'a S, u64)>,
    removed: Vec<&'a K>,
}

/// [`DeltaRef`] as read back.
#[derive(serde::Deserialize)]
#[serde(bound = "K: serde::de::DeserializeOwned, S: serde::de::DeserializeOwned")]
struct Delta<K, S> {
    changed: Vec<(K, S, u64)>,
    removed: Vec<K>,
}

impl<K: Key + StateData, S: StateData> Store<K, S> {
    pub(crate) fn new(kind: &'static str, partitions: usize, initial: Vec<(K, S)>) -> Self {
        let store = Store {
            kind,
            parts: Mutex::new(
                (0..partitions.max(1))
                    .map(|_| Partition::default())
                    .collect(),
            ),
            computed: AtomicBool::new(false),
            chain: Mutex::default(),
        };
        store.load(initial.into_iter().map(|(k, v)| (k, v, 0)));
        store
    }

    /// Replaces the state with `entries`; the next checkpoint is a full one.
    pub(crate) fn load(&self, entries: impl Iterator<Item = (K, S, u64)>) {
        let mut parts = self.lock();
        let n = parts.len();
        parts.iter_mut().for_each(Partition::clear);
        *self.chain.locked() = Tracking::default();
        for (k, value, t) in entries {
            parts[partition_of(&k, n)].insert(
                k,
                Entry {
                    value,
                    touched: Time(t),
                },
            );
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Partition<K, S>>> {
        self.parts.locked()
    }

    /// Every key and its state, a partition each.
    pub(crate) fn snapshot(&self) -> Vec<Vec<(K, S)>> {
        self.lock()
            .iter()
            .map(|p| {
                p.iter()
                    .map(|(k, e)| (k.clone(), e.value.clone()))
                    .collect()
            })
            .collect()
    }
}

impl<K: Key + StateData, S: StateData> Checkpointed for Store<K, S> {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn types(&self) -> Vec<(&'static str, &'static str)> {
        store_types::<K, S>()
    }

    fn save(&self, _time: Time) -> Result<Vec<u8>> {
        let parts = self.lock();
        self.encode(&FullRef(&parts))
    }

    fn save_delta(&self, time: Time, prev: Option<Time>, policy: &DeltaPolicy) -> Result<Saved> {
        let mut parts = self.lock();
        let mut chain = self.chain.locked();
        let mut total = 0;
        for p in parts.iter_mut() {
            let changes = p.take_changes(time);
            chain.pending.extend(changes.keys);
            chain.full_needed |= changes.overflowed;
            total += p.len();
        }
        if chain.pending.len() > total + 1024 {
            // Saves that never became durable piled up changes: a full snapshot is smaller.
            chain.full_needed = true;
        }
        if chain.full_needed {
            chain.pending = Vec::new();
        }
        let delta_allowed = !chain.full_needed
            && chain.base.is_some()
            && chain.base == prev
            && chain.stats.deltas + 1 < policy.full_every;
        if delta_allowed {
            let bytes = self.delta(&parts, &chain.pending)?;
            let grown = (chain.stats.delta_bytes + bytes.len() as u64) as f64;
            if grown <= policy.max_ratio * chain.stats.full_bytes as f64 {
                chain.staged = Some((time, Staged::Delta(bytes.len() as u64)));
                return Ok(Saved {
                    bytes,
                    delta_of: Some(chain.stats.full_at),
                });
            }
        }
        let bytes = self.encode(&FullRef(&parts))?;
        chain.staged = Some((time, Staged::Full(bytes.len() as u64)));
        Ok(Saved::full(bytes))
    }

    fn committed(&self, time: Time) {
        let mut chain = self.chain.locked();
        let Some((at, staged)) = chain.staged.take_if(|(at, _)| *at == time) else {
            return;
        };
        chain.pending = Vec::new();
        chain.base = Some(at);
        match staged {
            Staged::Full(bytes) => {
                chain.full_needed = false;
                chain.stats = ChainStats {
                    full_at: at,
                    full_bytes: bytes,
                    deltas: 0,
                    delta_bytes: 0,
                };
            }
            Staged::Delta(bytes) => {
                chain.stats.deltas += 1;
                chain.stats.delta_bytes += bytes;
            }
        }
    }

    fn restore(&self, bytes: &[u8]) -> Result<()> {
        let entries: Vec<(K, S, u64)> = postcard::from_bytes(bytes).map_err(|e| {
            Error::IllegalState(format!(
                "could not decode `{}` state from the checkpoint: {e}",
                self.kind
            ))
        })?;
        self.load(entries.into_iter());
        self.computed.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn apply_delta(&self, bytes: &[u8]) -> Result<()> {
        let delta: Delta<K, S> = postcard::from_bytes(bytes).map_err(|e| {
            Error::IllegalState(format!(
                "could not decode a delta of `{}` state from the checkpoint: {e}",
                self.kind
            ))
        })?;
        let mut parts = self.lock();
        let n = parts.len();
        for k in delta.removed {
            parts[partition_of(&k, n)].remove(&k);
        }
        for (k, value, t) in delta.changed {
            parts[partition_of(&k, n)].insert(
                k,
                Entry {
                    value,
                    touched: Time(t),
                },
            );
        }
        Ok(())
    }

    fn resume(&self, at: Time, stats: &ChainStats) {
        let mut parts = self.lock();
        for p in parts.iter_mut() {
            // Start noting changes: what is there now is what the chain holds.
            let _ = p.take_changes(at);
        }
        *self.chain.locked() = Tracking {
            full_needed: false,
            base: Some(at),
            stats: *stats,
            ..Tracking::default()
        };
    }
}

impl<K: Key + StateData, S: StateData> Store<K, S> {
    fn encode(&self, value: &impl serde::Serialize) -> Result<Vec<u8>> {
        postcard::to_stdvec(value).map_err(|e| {
            Error::IllegalState(format!("could not encode `{}` state: {e}", self.kind))
        })
    }

    /// The delta of the keys in `changed`: each one's state now, or its removal.
    fn delta(&self, parts: &[Partition<K, S>], changed: &[K]) -> Result<Vec<u8>> {
        let n = parts.len();
        let mut seen: rustc_hash::FxHashSet<&K> = rustc_hash::FxHashSet::default();
        let mut delta = DeltaRef {
            changed: Vec::new(),
            removed: Vec::new(),
        };
        for k in changed {
            if !seen.insert(k) {
                continue;
            }
            match parts[partition_of(k, n)].get_key_value(k) {
                Some((k, e)) => delta.changed.push((k, &e.value, e.touched.0)),
                None => delta.removed.push(k),
            }
        }
        self.encode(&delta)
    }
}

/// The kinds whose state is a [`Store`], which [`migration`] can convert.
pub(crate) const STORE_KINDS: [&str; 2] = ["update_state_by_key", "map_with_state"];

/// The types a store of `K` and `S` saves, as [`Checkpointed::types`] gives them.
pub(crate) fn store_types<K, S>() -> Vec<(&'static str, &'static str)> {
    vec![
        ("key", std::any::type_name::<K>()),
        ("state", std::any::type_name::<S>()),
    ]
}

/// Converts the saved state of a store of `K` and `Old` into that of a store of `K` and `New`
/// with `f` (a key for which it returns `None` is dropped), keeping each key's last update:
/// a full snapshot, or a delta (where a dropped key becomes a removal).
pub(crate) fn migration<K: StateData, Old: StateData, New: StateData>(
    f: impl Fn(&K, Old) -> Option<New> + Send + Sync + 'static,
) -> impl Fn(Encoded<'_>) -> std::result::Result<Vec<u8>, String> + Send + Sync + 'static {
    move |saved| match saved {
        Encoded::Full(bytes) => {
            let old: Vec<(K, Old, u64)> = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
            let new: Vec<(K, New, u64)> = old
                .into_iter()
                .filter_map(|(k, s, t)| f(&k, s).map(|n| (k, n, t)))
                .collect();
            postcard::to_stdvec(&new).map_err(|e| e.to_string())
        }
        Encoded::Delta(bytes) => {
            let old: Delta<K, Old> = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
            let mut changed = Vec::with_capacity(old.changed.len());
            let mut removed = old.removed;
            for (k, s, t) in old.changed {
                match f(&k, s) {
                    Some(n) => changed.push((k, n, t)),
                    None => removed.push(k),
                }
            }
            let new = DeltaRef {
                changed: changed.iter().map(|(k, s, t)| (k, s, *t)).collect(),
                removed: removed.iter().collect(),
            };
            postcard::to_stdvec(&new).map_err(|e| e.to_string())
        }
    }
}
