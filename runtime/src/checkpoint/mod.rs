//! Checkpoints: the state of stateful operations and the positions of inputs, written
//! atomically every checkpoint interval, so that a job restarted with
//! [`StreamingContext::get_or_create`](crate::StreamingContext::get_or_create) resumes with
//! nothing lost and nothing counted twice.

pub(crate) mod chain;
mod file;
mod lock;
pub(crate) mod names;

pub(crate) use chain::{ChainStats, DeltaPolicy, Saved};
#[cfg(test)]
pub(crate) use file::write_format_2;
pub(crate) use file::{KEEP, Parts, read_latest, write};
pub(crate) use lock::{DirLock, lock};
pub(crate) use names::Registry;

use crate::error::Result;
use crate::time::Time;

/// A part of the graph whose state goes into checkpoints: a stateful node or an input.
pub(crate) trait Checkpointed: Send + Sync {
    /// The part's kind (the operation, `update_state_by_key`): saved with its state, checked
    /// on restore and part of its default name (`checkpoint/names.rs`).
    fn kind(&self) -> &'static str;
    /// The version of [`save`](Self::save)'s encoding, saved with it: bump it when the
    /// encoding changes, so that an old checkpoint is refused by name instead of misread.
    fn format(&self) -> u32 {
        1
    }
    /// What the state holds, as (role, `std::any::type_name`), saved with it so that a job
    /// whose types changed is refused by name instead of misreading the state.
    fn types(&self) -> Vec<(&'static str, &'static str)> {
        Vec::new()
    }
    /// Its state as of the end of the batch at `time` (every batch up to it is done).
    fn save(&self, time: Time) -> Result<Vec<u8>>;
    /// Its state as of the end of the batch at `time`, as a delta when it keeps track of its
    /// changes and `prev`, the checkpoint this one follows, is the one its state was last
    /// saved in (`checkpoint/chain.rs`); by default always a full [`save`](Self::save).
    fn save_delta(&self, time: Time, _prev: Option<Time>, _policy: &DeltaPolicy) -> Result<Saved> {
        Ok(Saved::full(self.save(time)?))
    }
    /// Takes back a saved state, before `start()` runs anything.
    fn restore(&self, bytes: &[u8]) -> Result<()>;
    /// Applies a delta [`save_delta`](Self::save_delta) wrote, after [`restore`](Self::restore)
    /// took the full snapshot it builds on and the deltas before it.
    fn apply_delta(&self, _bytes: &[u8]) -> Result<()> {
        Err(crate::error::Error::IllegalState(format!(
            "`{}` state does not take incremental checkpoints",
            self.kind()
        )))
    }
    /// Called after a restore from the chain `stats` of the checkpoint of batch `at`, when the
    /// state restored is that chain's (not migrated): the next checkpoint may be a delta of it.
    fn resume(&self, _at: Time, _stats: &ChainStats) {}
    /// Called by `start()` when checkpoints go to `dir` (after any restore), with the stable
    /// name the part is saved under (files it keeps beside the checkpoints are named for it).
    fn enable(&self, _dir: &std::path::Path, _name: &str) -> Result<()> {
        Ok(())
    }
    /// Called once the checkpoint holding this part's state as of `time` is durable (renamed
    /// and its directory synced), never after a failed write: only now may the part drop what
    /// that checkpoint covers (write-ahead log segments, replay positions). `save(time)` must
    /// not drop anything, since the checkpoint it feeds may never be written.
    fn committed(&self, _time: Time) {}
    /// Its state kept per task (a keyed store on a Kafka stream, a direct Kafka stream's
    /// positions), when the job runs as instances: saved in each task's own checkpoint too.
    fn task_scoped(&self) -> Option<&dyn crate::tasks::TaskScoped> {
        None
    }
}

/// Syncs directory `dir`, so that the entries created, renamed or deleted in it survive a
/// power loss (a file's own sync does not cover its name).
pub(crate) fn sync_dir(dir: &std::path::Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| crate::error::Error::io("failed to sync directory", dir, e))
}

/// Spark's default checkpoint interval: the smallest multiple of `slide` that is at least 10 s.
pub(crate) fn default_interval(slide: std::time::Duration) -> std::time::Duration {
    let s = slide.as_millis().max(1) as u64;
    std::time::Duration::from_millis(10_000_u64.div_ceil(s) * s)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn default_interval_is_the_first_multiple_of_the_slide_from_ten_seconds() {
        let d = |ms| Duration::from_millis(ms);
        assert_eq!(super::default_interval(d(1000)), d(10_000));
        assert_eq!(super::default_interval(d(3000)), d(12_000));
        assert_eq!(super::default_interval(d(15_000)), d(15_000));
    }
}
