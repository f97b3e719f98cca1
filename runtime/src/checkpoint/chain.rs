//! Incremental checkpoints: a part whose state is large (a keyed store) may save only what
//! changed since the previous checkpoint, a *delta*, instead of all of it. A checkpoint file
//! then needs the files before it back to the one with that part's full snapshot: a *chain*.
//!
//! - Each checkpoint file (format 3) has an id and names the checkpoint it follows, by time
//!   and id, and the oldest checkpoint it needs (`base`), in a header of its own checksum.
//! - A part writes a full snapshot every [`DeltaPolicy::full_every`] checkpoints, when its
//!   deltas since the last full snapshot add up to more than [`DeltaPolicy::max_ratio`] of
//!   it, when it noted too many changes to list, and whenever the previous checkpoint is not
//!   the one its state was last saved in (the first checkpoint of a run, after a failed write,
//!   after a migration or a reset).
//! - Recovery reads the newest checkpoint, then the ones it follows until every part has a
//!   full snapshot, and gives each part its snapshot then its deltas in order; a missing,
//!   corrupt or rewritten link makes that checkpoint unusable and recovery falls back to the
//!   one before, as for a corrupt file.
//! - Retention keeps the newest [`KEEP`](super::KEEP) checkpoints and every file they need.

use crate::time::Time;

/// When a part writes a full snapshot rather than a delta (`StreamingConf`'s
/// `state_full_snapshot_every` and `state_delta_max_ratio`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DeltaPolicy {
    /// A full snapshot at least every this many checkpoints (1: always full).
    pub(crate) full_every: u32,
    /// A full snapshot once the deltas since the last one would exceed this share of its size.
    pub(crate) max_ratio: f64,
}

/// Default of [`DeltaPolicy::full_every`].
pub(crate) const DEFAULT_FULL_EVERY: u32 = 10;
/// Default of [`DeltaPolicy::max_ratio`].
pub(crate) const DEFAULT_MAX_RATIO: f64 = 0.5;

impl Default for DeltaPolicy {
    fn default() -> Self {
        DeltaPolicy {
            full_every: DEFAULT_FULL_EVERY,
            max_ratio: DEFAULT_MAX_RATIO,
        }
    }
}

/// A checkpoint file as a delta names the one it follows: its time and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) time: Time,
    pub(crate) id: u64,
}

/// A part's state as [`Checkpointed::save_delta`](super::Checkpointed::save_delta) gives it.
#[derive(Debug)]
pub(crate) struct Saved {
    pub(crate) bytes: Vec<u8>,
    /// For a delta: the time of the checkpoint holding the full snapshot it builds on.
    pub(crate) delta_of: Option<Time>,
}

impl Saved {
    /// A full snapshot.
    pub(crate) fn full(bytes: Vec<u8>) -> Self {
        Saved {
            bytes,
            delta_of: None,
        }
    }
}

/// The chain a restored part's state came from: its full snapshot and the deltas after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Chain {
    /// The deltas to apply after the full snapshot, oldest first.
    pub(crate) deltas: Vec<Vec<u8>>,
    /// The checkpoint it was read from (the newest of the chain).
    pub(crate) head: Option<Link>,
    /// The checkpoint holding the full snapshot.
    pub(crate) full_at: Time,
}

/// What a restored store needs to go on with deltas: where its chain stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ChainStats {
    pub(crate) full_at: Time,
    pub(crate) full_bytes: u64,
    pub(crate) deltas: u32,
    pub(crate) delta_bytes: u64,
}

/// A saved state handed to a migration: a full snapshot, or a delta of one.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Encoded<'a> {
    Full(&'a [u8]),
    Delta(&'a [u8]),
}

/// A new checkpoint id: unique across writes and processes (never 0, which means none).
pub(crate) fn new_id(time: Time) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(time.millis());
    h.write_u32(std::process::id());
    h.write_u64(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.finish().max(1)
}
