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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::panic::Location;
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::checkpoint::names::{Migration, SavedParts};
    use crate::checkpoint::{Parts, Registry, read_latest};

    /// Failpoints are global: tests that write checkpoints run one at a time.
    fn serial() -> fail::FailScenario<'static> {
        fail::FailScenario::setup()
    }

    fn at() -> &'static Location<'static> {
        static HERE: std::sync::OnceLock<&'static Location<'static>> = std::sync::OnceLock::new();
        HERE.get_or_init(|| Location::caller())
    }

    fn job<S: StateData>(
        every: u32,
        ratio: f64,
        initial: Vec<(u64, S)>,
    ) -> (Registry, Arc<Store<u64, S>>) {
        let store = Arc::new(Store::new("map_with_state", 4, initial));
        let mut reg = Registry::default();
        reg.register(store.clone(), at(), 0);
        reg.set_policy(DeltaPolicy {
            full_every: every,
            max_ratio: ratio,
        });
        (reg, store)
    }

    fn keys(n: u64) -> Vec<(u64, u64)> {
        (0..n).map(|k| (k, k)).collect()
    }

    /// Sets (or with `None` removes) keys as a batch at `t` does.
    fn step(store: &Store<u64, u64>, t: u64, changes: &[(u64, Option<u64>)]) {
        let mut parts = store.lock();
        let n = parts.len();
        for (k, v) in changes {
            let p = &mut parts[partition_of(k, n)];
            // As map_with_state does: take the entry out, then put the new one in.
            p.remove(k);
            if let Some(v) = v {
                p.insert(
                    *k,
                    Entry {
                        value: *v,
                        touched: Time(t),
                    },
                );
            }
        }
    }

    /// Writes the checkpoint of `t` as the scheduler does; returns what was saved.
    fn checkpoint(reg: &Registry, dir: &Path, t: u64) -> SavedParts {
        let saved = reg.save(Time(t)).unwrap();
        reg.write(dir, Time(t), &saved).unwrap();
        for p in reg {
            p.committed(Time(t));
        }
        saved
    }

    fn contents<S: StateData>(store: &Store<u64, S>) -> BTreeMap<u64, (S, u64)> {
        store
            .lock()
            .iter()
            .flat_map(|p| p.iter().map(|(k, e)| (*k, (e.value.clone(), e.touched.0))))
            .collect()
    }

    /// A new job restored from `dir`'s newest checkpoint.
    fn recover(dir: &Path, every: u32) -> (Registry, Arc<Store<u64, u64>>) {
        let (reg, store) = job::<u64>(every, 0.5, Vec::new());
        let (t, parts) = read_latest(dir).unwrap().expect("a checkpoint");
        reg.restore(dir, t, parts).unwrap();
        (reg, store)
    }

    #[test]
    fn a_delta_holds_only_the_changed_and_removed_keys() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let (reg, store) = job(10, 0.5, keys(1000));
        let full = checkpoint(&reg, dir.path(), 1000);
        assert!(!full.parts[0].delta);
        step(
            &store,
            2000,
            &[(1, Some(10)), (2, Some(20)), (3, None), (5000, Some(1))],
        );
        step(&store, 2000, &[(1, Some(11))]);
        let saved = checkpoint(&reg, dir.path(), 2000);
        let part = &saved.parts[0];
        assert!(part.delta);
        assert_eq!(saved.base, Time(1000));
        let delta: Delta<u64, u64> = postcard::from_bytes(&part.state).unwrap();
        let mut changed = delta.changed.clone();
        changed.sort();
        assert_eq!(changed, vec![(1, 11, 2000), (2, 20, 2000), (5000, 1, 2000)]);
        assert_eq!(delta.removed, vec![3]);
        assert!(part.state.len() * 50 < full.parts[0].state.len());
        // Nothing changed: an empty delta.
        let saved = checkpoint(&reg, dir.path(), 3000);
        let delta: Delta<u64, u64> = postcard::from_bytes(&saved.parts[0].state).unwrap();
        assert!(saved.parts[0].delta && delta.changed.is_empty() && delta.removed.is_empty());
    }

    /// A small deterministic generator (xorshift).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn recovery_from_a_snapshot_and_its_deltas_is_exactly_the_state() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let (reg, store) = job(4, 0.5, keys(500));
        let mut rng = Rng(42);
        let mut kinds = Vec::new();
        for i in 1..=10u64 {
            let t = i * 1000;
            for batch in 0..3 {
                let changes: Vec<(u64, Option<u64>)> = (0..20)
                    .map(|_| {
                        let k = rng.next() % 600;
                        (
                            k,
                            (!rng.next().is_multiple_of(4)).then_some(rng.next() % 100 + batch),
                        )
                    })
                    .collect();
                step(&store, t, &changes);
            }
            let saved = checkpoint(&reg, dir.path(), t);
            kinds.push(if saved.parts[0].delta { 'd' } else { 'F' });
            let (_, restored) = recover(dir.path(), 4);
            assert_eq!(
                contents(&restored),
                contents(&store),
                "after checkpoint {t}"
            );
        }
        // A full snapshot every 4 checkpoints.
        assert_eq!(kinds.iter().collect::<String>(), "FdddFdddFd");
        // A restored job goes on with deltas of the same chain, and its recovery is exact too.
        let (reg2, store2) = recover(dir.path(), 4);
        step(&store2, 11_000, &[(7, Some(77)), (8, None)]);
        let saved = checkpoint(&reg2, dir.path(), 11_000);
        assert!(saved.parts[0].delta);
        assert_eq!(saved.base, Time(9000));
        let (_, restored) = recover(dir.path(), 4);
        assert_eq!(contents(&restored), contents(&store2));
    }

    #[test]
    fn a_full_snapshot_once_the_deltas_outgrow_their_share_of_it() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let (reg, store) = job(100, 0.5, keys(100));
        let mut kinds = String::new();
        for i in 1..=6u64 {
            let t = i * 1000;
            // 30 of 100 keys per checkpoint: two deltas would be 60 % of a snapshot.
            let changes: Vec<_> = (0..30).map(|k| ((k * 3 + i) % 100, Some(t))).collect();
            step(&store, t, &changes);
            let saved = checkpoint(&reg, dir.path(), t);
            kinds.push(if saved.parts[0].delta { 'd' } else { 'F' });
        }
        assert_eq!(kinds, "FdFdFd");
        // Every key changed: no delta at all (the partitions stop noting).
        for k in 0..100 {
            step(&store, 7000, &[(k, Some(1))]);
            step(&store, 7000, &[(k, Some(2))]);
            step(&store, 7000, &[(k, Some(3))]);
        }
        let saved = checkpoint(&reg, dir.path(), 7000);
        assert!(!saved.parts[0].delta);
        let (_, restored) = recover(dir.path(), 100);
        assert_eq!(contents(&restored), contents(&store));
    }

    #[test]
    fn a_failed_checkpoint_leaves_its_changes_to_the_next_delta() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let (reg, store) = job(10, 0.5, keys(100));
        checkpoint(&reg, dir.path(), 1000);
        let before = contents(&store);
        step(&store, 2000, &[(1, Some(100)), (2, None)]);
        // The process fails while writing the delta of 2000: half the file, then an error.
        fail::cfg("checkpoint::temp_write", "return").unwrap();
        let saved = reg.save(Time(2000)).unwrap();
        assert!(saved.parts[0].delta);
        let err = reg.write(dir.path(), Time(2000), &saved);
        fail::remove("checkpoint::temp_write");
        assert!(err.is_err());
        // A restart now recovers the state of 1000, whole.
        let (_, restored) = recover(dir.path(), 10);
        assert_eq!(contents(&restored), before);
        // Running on, the next delta still holds the changes of the failed one.
        step(&store, 3000, &[(3, Some(300))]);
        let saved = checkpoint(&reg, dir.path(), 3000);
        assert!(saved.parts[0].delta);
        let (_, restored) = recover(dir.path(), 10);
        assert_eq!(contents(&restored), contents(&store));
        assert_eq!(contents(&restored).get(&1), Some(&(100, 2000)));
        assert!(!contents(&restored).contains_key(&2));
    }

    #[test]
    fn a_migration_converts_the_snapshot_and_every_delta() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let (reg, store) = job(10, 0.5, keys(100));
        checkpoint(&reg, dir.path(), 1000);
        step(&store, 2000, &[(1, Some(13)), (2, None), (200, Some(5))]);
        checkpoint(&reg, dir.path(), 2000);
        step(&store, 3000, &[(3, Some(13)), (201, Some(6))]);
        let saved = checkpoint(&reg, dir.path(), 3000);
        assert!(saved.parts[0].delta);
        // Version 2 keeps text, and drops the keys whose value was 13.
        let (reg2, store2) = job::<String>(10, 0.5, Vec::new());
        let mut reg2 = reg2;
        let name = reg2.parts[0].name.clone();
        reg2.migrate(
            &name,
            Migration {
                kinds: &STORE_KINDS,
                from: store_types::<u64, u64>(),
                to: store_types::<u64, String>(),
                convert: Box::new(migration(|_: &u64, v: u64| {
                    (v != 13).then(|| format!("#{v}"))
                })),
                at: at(),
            },
        );
        let (t, parts) = read_latest(dir.path()).unwrap().unwrap();
        reg2.restore(dir.path(), t, parts).unwrap();
        let expected: BTreeMap<u64, (String, u64)> = contents(&store)
            .into_iter()
            .filter(|(_, (v, _))| *v != 13)
            .map(|(k, (v, t))| (k, (format!("#{v}"), t)))
            .collect();
        assert_eq!(contents(&store2), expected);
        assert!(!expected.contains_key(&1) && !expected.contains_key(&3));
        // The first checkpoint after a migration is a full snapshot in the new types.
        let saved = checkpoint(&reg2, dir.path(), 4000);
        assert!(!saved.parts[0].delta);
    }

    #[test]
    fn a_format_2_checkpoint_restores_and_the_next_checkpoints_chain_on_it() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let (reg, store) = job(10, 0.5, keys(50));
        let old = reg.parts[0].saved(store.save(Time(1000)).unwrap());
        crate::checkpoint::write_format_2(dir.path(), Time(1000), &[old]);
        let (reg2, store2) = recover(dir.path(), 10);
        assert_eq!(contents(&store2), contents(&store));
        step(&store2, 2000, &[(1, Some(5))]);
        // A format-2 file has no id to follow: a full snapshot first, then deltas.
        assert!(!checkpoint(&reg2, dir.path(), 2000).parts[0].delta);
        step(&store2, 3000, &[(2, Some(6))]);
        assert!(checkpoint(&reg2, dir.path(), 3000).parts[0].delta);
        let (_, restored) = recover(dir.path(), 10);
        assert_eq!(contents(&restored), contents(&store2));
        let _ = Parts::Positional(Vec::new());
    }
}
