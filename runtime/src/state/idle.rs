//! The idle-key index of `map_with_state`: keys by the batch that last touched them, so that a
//! timeout batch visits the keys that are due, never the whole state.
//!
//! An entry goes stale when its key is touched again (or removed); stale entries are skipped
//! when they come due (lazy invalidation) and dropped with them, so the index holds at most one
//! entry per touch since the oldest undue batch.

use std::collections::BTreeMap;

use crate::batch::Key;
use crate::state::store::Partition;
use crate::time::Time;

/// One partition's keys by the time they were last touched.
pub(crate) struct IdleIndex<K> {
    by_time: BTreeMap<Time, Vec<K>>,
}

impl<K> Default for IdleIndex<K> {
    fn default() -> Self {
        IdleIndex {
            by_time: BTreeMap::new(),
        }
    }
}

impl<K: Key> IdleIndex<K> {
    /// Records that `key` was touched at `time`.
    pub(crate) fn touch(&mut self, key: K, time: Time) {
        self.by_time.entry(time).or_default().push(key);
    }

    /// Indexes every key of `state` when the index is empty: state loaded before the first
    /// batch (initial state, a restored checkpoint) has no entries, while every key a batch
    /// touched has one until it times out, so a non-empty index already covers the state.
    /// Once per loaded state; an empty index over an empty state costs nothing.
    pub(crate) fn cover<S>(&mut self, state: &Partition<K, S>) {
        if !self.by_time.is_empty() {
            return;
        }
        for (k, e) in state {
            self.touch(k.clone(), e.touched);
        }
    }

    /// Removes from `state` every key last touched before `limit` (Spark's
    /// `StateMap.getByTime(threshold)`: update time strictly before the threshold), calling
    /// `timed_out(key, state)` for each. Visits only the index entries before `limit`; returns
    /// how many state entries it looked up (the work, which tests check).
    pub(crate) fn time_out<S>(
        &mut self,
        state: &mut Partition<K, S>,
        limit: Time,
        mut timed_out: impl FnMut(K, S),
    ) -> usize {
        let fresh = self.by_time.split_off(&limit);
        let due = std::mem::replace(&mut self.by_time, fresh);
        let mut visited = 0;
        for (t, keys) in due {
            for k in keys {
                visited += 1;
                // Skip entries of keys touched again since, or gone.
                if state.get(&k).is_none_or(|e| e.touched != t) {
                    continue;
                }
                if let Some(entry) = state.remove(&k) {
                    timed_out(k, entry.value);
                }
            }
        }
        visited
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::store::Entry;

    fn entry(value: u64, at: u64) -> Entry<u64> {
        Entry {
            value,
            touched: Time(at),
        }
    }

    /// A large state of which a few keys are due: only the due keys' entries are visited, and
    /// exactly the keys last touched before the limit time out (a key touched again since is
    /// not, even though its older entry is due).
    #[test]
    fn time_out_visits_only_due_keys() {
        let mut state: Partition<u64, u64> = Partition::default();
        let mut index = IdleIndex::default();
        // 100 k keys touched at 5 s, and 10 keys at 1 s of which key 3 again at 6 s.
        for k in 0..100_000u64 {
            state.insert(k, entry(k, 5_000));
            index.touch(k, Time(5_000));
        }
        for k in 100_000..100_010u64 {
            state.insert(k, entry(k, 1_000));
            index.touch(k, Time(1_000));
        }
        state.insert(100_003, entry(7, 6_000));
        index.touch(100_003, Time(6_000));
        index.cover(&state);

        let mut out = Vec::new();
        let visited = index.time_out(&mut state, Time(5_000), |k, v| out.push((k, v)));
        out.sort();
        let expected: Vec<(u64, u64)> = (100_000..100_010u64)
            .filter(|k| *k != 100_003)
            .map(|k| (k, k))
            .collect();
        assert_eq!(out, expected, "exactly the idle keys time out, once");
        assert_eq!(visited, 10, "a timeout batch visits the due entries only");
        assert_eq!(state.len(), 100_001);
        assert!(state.contains_key(&100_003));
        // Timed-out keys are gone from the index too: a second pass finds nothing due.
        let again = index.time_out(&mut state, Time(5_000), |k, _| panic!("{k} twice"));
        assert_eq!(again, 0);
        // Keys touched at exactly the limit are not idle yet (Spark: strictly before).
        let mut at_limit = Vec::new();
        index.time_out(&mut state, Time(5_001), |k, _| at_limit.push(k));
        assert_eq!(at_limit.len(), 100_000);
    }

    /// Loaded state (initial, restored) is indexed once, then timed out like touched keys.
    #[test]
    fn cover_indexes_loaded_state_once() {
        let mut state: Partition<u64, u64> = Partition::default();
        state.insert(1, entry(1, 1_000));
        state.insert(2, entry(2, 9_000));
        let mut index = IdleIndex::default();
        index.cover(&state);
        index.cover(&state);
        let mut out = Vec::new();
        let visited = index.time_out(&mut state, Time(5_000), |k, v| out.push((k, v)));
        assert_eq!((out, visited), (vec![(1, 1)], 1));
        let visited = index.time_out(&mut state, Time(10_000), |_, _| {});
        assert_eq!((visited, state.len()), (1, 0));
    }
}
