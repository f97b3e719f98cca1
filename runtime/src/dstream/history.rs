//! `History<T>`: the batches a window keeps of its parent, by time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::batch::{Batch, Data};
use crate::dstream::DStream;
use crate::time::Time;

/// A parent's batches over the last `keep`, filled by a hook at each of the parent's times.
pub(crate) struct History<T> {
    batches: Mutex<BTreeMap<Time, Batch<T>>>,
    keep: Duration,
}

impl<T: Data> History<T> {
    /// Starts keeping `parent`'s batches for `keep`.
    #[track_caller]
    pub(crate) fn of(parent: &DStream<T>, name: &str, keep: Duration) -> Arc<Self> {
        let history = Arc::new(History {
            batches: Mutex::default(),
            keep,
        });
        let h = history.clone();
        parent.register_hook(name, move |batch, time| h.insert(time, batch));
        history
    }

    fn insert(&self, time: Time, batch: Batch<T>) {
        let mut b = self.batches.lock().unwrap_or_else(|p| p.into_inner());
        b.insert(time, batch);
        let oldest = Time(time.0.saturating_sub(self.keep.as_millis() as u64));
        *b = b.split_off(&Time(oldest.0 + 1));
    }

    /// The batches with times in `(from, to]`, in time order.
    pub(crate) fn slice(&self, from: Time, to: Time) -> Vec<Batch<T>> {
        if from >= to {
            return Vec::new();
        }
        let b = self.batches.lock().unwrap_or_else(|p| p.into_inner());
        b.range(Time(from.0 + 1)..=to)
            .map(|(_, batch)| batch.clone())
            .collect()
    }
}
