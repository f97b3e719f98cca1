//! `History<T>`: the batches a window keeps of its parent, by time, and their checkpoint.
//!
//! A window spans batches, so its contents are state: a job restarted from a checkpoint must
//! see the batches from before the restart that are still inside its windows, or every window
//! that spans the restart silently comes out short. Spark keeps them by checkpointing the
//! window's RDDs; here each window saves the slices it still needs (and an incremental window
//! its last result, `window_pair.rs`) as a checkpointed part. That needs the elements to be
//! serializable, so every window operation asks for [`StateData`](crate::StateData), as Spark
//! needs serializable RDDs: the bound is on the operation, not checked at `start()`, so a
//! window that could not survive a restart does not compile.
//!
//! The part also saves the graph's zero time and gives it back before `start()` computes a new
//! one: windows that slide slower than the batch interval then produce at the same times after
//! a restart as in a run without one (Spark restores its graph's `zeroTime` too).

use crate::sync::LockExt;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StateData;
use crate::batch::Batch;
use crate::checkpoint::Checkpointed;
use crate::clock::Clock;
use crate::dstream::DStream;
use crate::error::{Error, Result};
use crate::time::Time;

/// A parent's batches over the last `keep`, filled by a hook at each of the parent's times.
pub(crate) struct History<T> {
    kind: &'static str,
    slices: Mutex<Slices<T>>,
    keep: Duration,
    zero: Arc<OnceLock<Time>>,
    clock: Clock,
}

struct Slices<T> {
    /// Each batch's partitions, by batch time.
    batches: BTreeMap<Time, Vec<Vec<T>>>,
    /// Batches after this time stay, however old: an incremental window still has to reduce
    /// them out (after a restart the next batch may come much later than the last one).
    hold_after: Option<Time>,
}

impl<T: StateData> History<T> {
    /// Starts keeping `parent`'s batches for `keep`; `kind` names the window operation in
    /// checkpoints and in the hook's name.
    #[track_caller]
    pub(crate) fn of(parent: &DStream<T>, kind: &'static str, keep: Duration) -> Arc<Self> {
        parent.refuse_instance_state(kind);
        let history = Arc::new(History {
            kind,
            slices: Mutex::new(Slices {
                batches: BTreeMap::new(),
                hold_after: None,
            }),
            keep,
            zero: parent.shared.zero_time.clone(),
            clock: parent.shared.clock.clone(),
        });
        let h = history.clone();
        parent.register_hook(kind, move |batch, time| h.insert(time, batch));
        history
    }

    fn lock(&self) -> MutexGuard<'_, Slices<T>> {
        self.slices.locked()
    }

    fn insert(&self, time: Time, batch: Batch<T>) {
        let mut s = self.lock();
        s.batches.insert(time, batch.into_partitions());
        let mut oldest = Time(time.0.saturating_sub(self.keep.as_millis() as u64));
        if let Some(held) = s.hold_after {
            oldest = oldest.min(held);
        }
        s.batches = s.batches.split_off(&Time(oldest.0 + 1));
    }

    /// The partitions of the batches with times in `(from, to]`, in time order.
    pub(crate) fn slice(&self, from: Time, to: Time) -> Vec<Vec<T>> {
        if from >= to {
            return Vec::new();
        }
        self.lock()
            .batches
            .range(Time(from.0 + 1)..=to)
            .flat_map(|(_, parts)| parts.iter().cloned())
            .collect()
    }

    /// Keeps every batch after `time` until a later call moves it.
    pub(crate) fn hold_after(&self, time: Time) {
        self.lock().hold_after = Some(time);
    }

    /// Encodes the zero time, the kept batches and `extra` (what the window adds to them).
    pub(crate) fn save_with<X: Serialize>(&self, extra: &X) -> Result<Vec<u8>> {
        let s = self.lock();
        let batches: Vec<(u64, &Vec<Vec<T>>)> =
            s.batches.iter().map(|(t, parts)| (t.0, parts)).collect();
        let zero = self.zero.get().map(|z| z.0);
        postcard::to_stdvec(&(zero, batches, s.hold_after.map(|t| t.0), extra)).map_err(|e| {
            Error::IllegalState(format!(
                "could not encode the state of window `{}`: {e}",
                self.kind
            ))
        })
    }

    /// Takes back what [`save_with`](Self::save_with) wrote and returns the window's `extra`.
    pub(crate) fn restore_with<X: DeserializeOwned>(&self, bytes: &[u8]) -> Result<X> {
        type Saved<T, X> = (Option<u64>, Vec<(u64, Vec<Vec<T>>)>, Option<u64>, X);
        let (zero, batches, held, extra): Saved<T, X> =
            postcard::from_bytes(bytes).map_err(|e| {
                Error::IllegalState(format!(
                    "could not decode the state of window `{}` from the checkpoint: {e}; a window whose element type changed cannot take its old contents back, use a new checkpoint directory",
                    self.kind
                ))
            })?;
        let mut s = self.lock();
        s.batches = batches.into_iter().map(|(t, p)| (Time(t), p)).collect();
        s.hold_after = held.map(Time);
        drop(s);
        // Before `start()` sets a new zero time (a clock behind the saved zero would make
        // batch times precede it, so then the new one stays).
        if let Some(z) = zero.filter(|z| *z <= self.clock.now_ms()) {
            let _ = self.zero.set(Time(z));
        }
        Ok(extra)
    }
}

/// A plain window's checkpoint: the batches it still needs.
impl<T: StateData> Checkpointed for History<T> {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn save(&self, _time: Time) -> Result<Vec<u8>> {
        self.save_with(&())
    }

    fn restore(&self, bytes: &[u8]) -> Result<()> {
        self.restore_with::<()>(bytes)
    }
}
