//! `Store<K, S>`: per-partition hash maps of state, with each entry's last update time, and
//! their checkpoint.

use crate::sync::LockExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rustc_hash::FxHashMap;

use crate::batch::Key;
use crate::batch::shuffle::partition_of;
use crate::checkpoint::Checkpointed;
use crate::error::{Error, Result};
use crate::state::StateData;
use crate::time::Time;

/// A state value and the batch that last touched it.
#[derive(Clone)]
pub(crate) struct Entry<S> {
    pub(crate) value: S,
    pub(crate) touched: Time,
}

pub(crate) type Partition<K, S> = FxHashMap<K, Entry<S>>;

/// State partitioned like the keys: partition `i` holds the keys that hash to `i`.
pub(crate) struct Store<K, S> {
    pub(crate) kind: &'static str,
    pub(crate) parts: Mutex<Vec<Partition<K, S>>>,
    /// Whether the state exists as Spark's previous state RDD does: computed at least once,
    /// or restored from a checkpoint.
    pub(crate) computed: AtomicBool,
}

impl<K: Key + StateData, S: StateData> Store<K, S> {
    pub(crate) fn new(kind: &'static str, partitions: usize, initial: Vec<(K, S)>) -> Self {
        let store = Store {
            kind,
            parts: Mutex::new(
                (0..partitions.max(1))
                    .map(|_| FxHashMap::default())
                    .collect(),
            ),
            computed: AtomicBool::new(false),
        };
        store.load(initial.into_iter().map(|(k, v)| (k, v, 0)));
        store
    }

    pub(crate) fn load(&self, entries: impl Iterator<Item = (K, S, u64)>) {
        let mut parts = self.lock();
        let n = parts.len();
        parts.iter_mut().for_each(FxHashMap::clear);
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
        let entries: Vec<(&K, &S, u64)> = parts
            .iter()
            .flatten()
            .map(|(k, e)| (k, &e.value, e.touched.0))
            .collect();
        postcard::to_stdvec(&entries).map_err(|e| {
            Error::IllegalState(format!("could not encode `{}` state: {e}", self.kind))
        })
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
/// with `f` (a key for which it returns `None` is dropped), keeping each key's last update.
pub(crate) fn migration<K: StateData, Old: StateData, New: StateData>(
    f: impl Fn(&K, Old) -> Option<New> + Send + Sync + 'static,
) -> impl Fn(&[u8]) -> std::result::Result<Vec<u8>, String> + Send + Sync + 'static {
    move |bytes| {
        let old: Vec<(K, Old, u64)> = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
        let new: Vec<(K, New, u64)> = old
            .into_iter()
            .filter_map(|(k, s, t)| f(&k, s).map(|n| (k, n, t)))
            .collect();
        postcard::to_stdvec(&new).map_err(|e| e.to_string())
    }
}
