//! `Partition<K, S>`: one partition of keyed state, a hash map that also notes which keys
//! changed since the last checkpoint, so that the checkpoint can write only those (an
//! incremental checkpoint, `checkpoint/chain.rs`).
//!
//! Reads go to the map (`Deref`); every change goes through a method here. A change costs at
//! most a push of the key onto a list, and none for a key already noted since the last
//! checkpoint: an entry touched after `since` was noted when it was touched. The list is
//! bounded: past about the map's size it is dropped and the partition marked `overflowed`,
//! and the next checkpoint is a full one. A partition made by `default()` or `collect()`
//! notes nothing until a checkpoint [`takes its changes`](Partition::take_changes).

use std::collections::hash_map::{Drain, Entry as MapEntry};
use std::ops::Deref;

use rustc_hash::FxHashMap;

use crate::batch::Key;
use crate::state::store::Entry;
use crate::time::Time;

/// See the module doc.
pub(crate) struct Partition<K, S> {
    map: FxHashMap<K, Entry<S>>,
    /// Keys changed or removed since the last checkpoint took them (a key may repeat).
    changed: Vec<K>,
    /// Every entry touched after this was noted in `changed`.
    since: Time,
    /// The latest `touched` inserted, so that `since` is never below an entry's time.
    high: Time,
    /// Changes are not noted: the next checkpoint must be full.
    overflowed: bool,
}

impl<K, S> Default for Partition<K, S> {
    fn default() -> Self {
        Partition {
            map: FxHashMap::default(),
            changed: Vec::new(),
            since: Time(0),
            high: Time(0),
            overflowed: true,
        }
    }
}

impl<K, S> Deref for Partition<K, S> {
    type Target = FxHashMap<K, Entry<S>>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl<'a, K, S> IntoIterator for &'a Partition<K, S> {
    type Item = (&'a K, &'a Entry<S>);
    type IntoIter = std::collections::hash_map::Iter<'a, K, Entry<S>>;
    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

impl<K: Key, S> FromIterator<(K, Entry<S>)> for Partition<K, S> {
    fn from_iter<I: IntoIterator<Item = (K, Entry<S>)>>(iter: I) -> Self {
        let mut p = Partition::default();
        for (k, e) in iter {
            p.insert(k, e);
        }
        p
    }
}

/// What a checkpoint takes from a partition: the keys changed since the last one.
pub(crate) struct Changes<K> {
    pub(crate) keys: Vec<K>,
    /// Some changes were not noted: only a full checkpoint covers them.
    pub(crate) overflowed: bool,
}

impl<K: Key, S> Partition<K, S> {
    fn note(&mut self, k: K) {
        if self.overflowed {
            return;
        }
        if self.changed.len() > self.map.len() / 2 + 1024 {
            // A delta of half the keys or more is not worth it (nor, by default, taken).
            self.overflowed = true;
            self.changed = Vec::new();
            return;
        }
        self.changed.push(k);
    }

    /// Sets `k`'s entry, returning the one it replaces.
    pub(crate) fn insert(&mut self, k: K, e: Entry<S>) -> Option<Entry<S>> {
        self.high = self.high.max(e.touched);
        if self.overflowed {
            return self.map.insert(k, e);
        }
        match self.map.entry(k) {
            MapEntry::Occupied(mut o) => {
                let old = std::mem::replace(o.get_mut(), e);
                if old.touched <= self.since {
                    let k = o.key().clone();
                    self.note(k);
                }
                Some(old)
            }
            MapEntry::Vacant(v) => {
                let k = v.key().clone();
                v.insert(e);
                self.note(k);
                None
            }
        }
    }

    /// Removes `k`'s entry and returns it.
    pub(crate) fn remove(&mut self, k: &K) -> Option<Entry<S>> {
        let (k, old) = self.map.remove_entry(k)?;
        if old.touched <= self.since {
            self.note(k);
        }
        Some(old)
    }

    /// `k`'s entry, to change in place (noted as changed).
    #[allow(dead_code)] // For operators that update in place (one hash lookup, not two).
    pub(crate) fn get_mut(&mut self, k: &K) -> Option<&mut Entry<S>> {
        let since = self.since;
        if !self.overflowed
            && let Some((key, e)) = self.map.get_key_value(k)
            && e.touched <= since
        {
            let key = key.clone();
            self.note(key);
        }
        self.map.get_mut(k)
    }

    /// Keeps the entries for which `f` is true (the others are noted as removed).
    #[allow(dead_code)] // For operators that drop keys in bulk (timeouts).
    pub(crate) fn retain(&mut self, mut f: impl FnMut(&K, &Entry<S>) -> bool) {
        let mut removed = Vec::new();
        let track = !self.overflowed;
        let since = self.since;
        self.map.retain(|k, e| {
            let keep = f(k, e);
            // A removed entry touched since `since` was noted when it was touched.
            if track && !keep && e.touched <= since {
                removed.push(k.clone());
            }
            keep
        });
        for k in removed {
            self.note(k);
        }
    }

    /// Takes every entry out: the next checkpoint is a full one.
    pub(crate) fn drain(&mut self) -> Drain<'_, K, Entry<S>> {
        self.overflowed = true;
        self.changed = Vec::new();
        self.map.drain()
    }

    /// Removes every entry: the next checkpoint is a full one.
    pub(crate) fn clear(&mut self) {
        self.overflowed = true;
        self.changed = Vec::new();
        self.map.clear();
    }

    /// The changes noted since the last call, for the checkpoint of batch `time`; from now on
    /// an entry touched after `time` (or after the latest time inserted, if later) is noted.
    pub(crate) fn take_changes(&mut self, time: Time) -> Changes<K> {
        self.since = time.max(self.high);
        Changes {
            keys: std::mem::take(&mut self.changed),
            overflowed: std::mem::replace(&mut self.overflowed, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(v: u64, t: u64) -> Entry<u64> {
        Entry {
            value: v,
            touched: Time(t),
        }
    }

    fn tracked() -> Partition<u64, u64> {
        let mut p: Partition<u64, u64> = (0..100).map(|k| (k, e(k, 1000))).collect();
        assert!(p.take_changes(Time(1000)).overflowed, "made untracked");
        p
    }

    fn sorted(mut v: Vec<u64>) -> Vec<u64> {
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn notes_each_changed_or_removed_key_and_nothing_else() {
        let mut p = tracked();
        p.insert(1, e(10, 2000));
        p.insert(1, e(11, 2000));
        p.remove(&2);
        p.insert(200, e(1, 2000));
        if let Some(x) = p.get_mut(&3) {
            x.value = 30;
            x.touched = Time(2000);
        }
        p.retain(|k, _| *k != 4);
        let c = p.take_changes(Time(2000));
        assert!(!c.overflowed);
        assert_eq!(sorted(c.keys), vec![1, 2, 3, 4, 200]);
        // A key touched since is noted once; untouched keys are not noted at all.
        p.insert(5, e(5, 3000));
        p.insert(5, e(6, 3000));
        p.insert(5, e(7, 3000));
        assert_eq!(p.take_changes(Time(3000)).keys, vec![5]);
        assert!(p.take_changes(Time(4000)).keys.is_empty());
    }

    #[test]
    fn too_many_changes_or_a_drain_ask_for_a_full_checkpoint() {
        let mut p = tracked();
        for round in 0..20 {
            for k in 0..100 {
                p.remove(&k);
                p.insert(k, e(round, 2000));
            }
        }
        let c = p.take_changes(Time(2000));
        assert!(c.overflowed && c.keys.is_empty());
        let _ = p.drain().count();
        assert!(p.take_changes(Time(3000)).overflowed);
    }

    #[test]
    fn an_entry_from_a_later_clock_is_still_noted() {
        // A restored entry touched at 9000 while the new clock is at 2000.
        let mut p = tracked();
        p.insert(7, e(7, 9000));
        let _ = p.take_changes(Time(2000));
        p.insert(7, e(8, 3000));
        assert_eq!(p.take_changes(Time(3000)).keys, vec![7]);
    }
}
