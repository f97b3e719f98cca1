//! Windows over pair streams: `reduce_by_key_and_window` (plain and incremental),
//! `count_by_value_and_window`, `group_by_key_and_window`.
//!
//! The incremental form follows Spark's Python engine (`PythonReducedWindowedDStream`), whose
//! per-batch outputs the conformance fixtures record: a window shorter than five slides is
//! reduced whole each time; a longer one starts from the previous window's result, reduces
//! out the batches that left with the inverse function and reduces in those that entered, so
//! its cost follows the slide, not the window. Keys whose value went back to the identity stay
//! until a filter drops them, as in Spark.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::batch::{Batch, Data, Executor, Key};
use crate::dstream::DStream;
use crate::dstream::history::History;
use crate::time::{Time, millis};

/// All batches' partitions as one batch.
fn union_all<T: Data>(batches: Vec<Batch<T>>, exec: &Executor) -> Batch<T> {
    Batch::new(
        batches
            .into_iter()
            .flat_map(Batch::into_partitions)
            .collect(),
        exec.clone(),
    )
}

fn before(t: Time, ms: u64) -> Time {
    Time(t.0.saturating_sub(ms))
}

impl<K: Key, V: Data> DStream<(K, V)> {
    /// Every `slide`, each key's values over the last `window` merged with `f`.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let batches = vec![vec![("a", 1)], vec![("a", 1), ("b", 1)], vec![]];
    /// let out = cargo_stream_runtime::example(batches, |s| {
    ///     s.reduce_by_key_and_window(|x, y| x + y, Seconds(2), Seconds(1))
    /// });
    /// fn sorted(mut v: Vec<(&str, i32)>) -> Vec<(&str, i32)> { v.sort(); v }
    /// assert_eq!(out.into_iter().map(sorted).collect::<Vec<_>>(),
    ///            vec![vec![("a", 1)], vec![("a", 2), ("b", 1)], vec![("a", 1), ("b", 1)]]);
    /// ```
    #[track_caller]
    pub fn reduce_by_key_and_window(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        window: impl Into<Duration>,
        slide: impl Into<Duration>,
    ) -> DStream<(K, V)> {
        let (window, slide) = (window.into(), slide.into());
        self.check_window("reduce_by_key_and_window", window, slide);
        let f = Arc::new(f);
        let g = f.clone();
        let reduced = self.reduce_by_key(move |a, b| g(a, b));
        let history = History::of(&reduced, "reduce_by_key_and_window", window);
        let exec = self.shared.exec.clone();
        self.sliding("reduce_by_key_and_window", slide, move |t| {
            let exec = exec.get()?;
            let current = history.slice(before(t, millis(window)), t);
            Some(union_all(current, exec).reduce_by_key(|a, b| f(a, b), None))
        })
    }

    /// Every `slide`, each key's values over the last `window`, computed incrementally with
    /// the inverse function `inv` (`inv(f(a, b), b) == a`), then kept where `filter` holds.
    /// Needs a checkpoint directory.
    ///
    /// The course's example, every 4 s the word counts of the last 6 s:
    /// `pairs.reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, Seconds(6), Seconds(4), None::<fn(&(String, u64)) -> bool>)`.
    #[track_caller]
    pub fn reduce_by_key_and_window_inv<P>(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        inv: impl Fn(V, V) -> V + Send + Sync + 'static,
        window: impl Into<Duration>,
        slide: impl Into<Duration>,
        filter: Option<P>,
    ) -> DStream<(K, V)>
    where
        P: Fn(&(K, V)) -> bool + Send + Sync + 'static,
    {
        let (window, slide) = (window.into(), slide.into());
        self.check_window("reduce_by_key_and_window_inv", window, slide);
        self.require_checkpoint("`reduce_by_key_and_window_inv`");
        let f = Arc::new(f);
        let g = f.clone();
        let reduced = self.reduce_by_key(move |a, b| g(a, b));
        let history = History::of(&reduced, "reduce_by_key_and_window_inv", window + slide);
        let exec = self.shared.exec.clone();
        let last: Mutex<Option<(Time, Batch<(K, V)>)>> = Mutex::new(None);
        let (w, s) = (millis(window), millis(slide));
        self.sliding("reduce_by_key_and_window_inv", slide, move |t| {
            let exec = exec.get()?;
            let keep = |b: Batch<(K, V)>| match &filter {
                Some(p) => b.filter(p),
                None => b,
            };
            let reduce = |b: Batch<(K, V)>| b.reduce_by_key(|x, y| f(x, y), None);
            let previous = last
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .filter(|(pt, _)| pt.0 + s == t.0);
            let result = match previous {
                Some((_, prev)) if w >= 5 * s => {
                    let old = history.slice(before(t, s + w), before(t, w));
                    let subtracted = if old.is_empty() {
                        prev
                    } else {
                        let leaving = reduce(union_all(old, exec));
                        prev.left_outer_join(leaving, None)
                            .map_values(|(a, b)| match b {
                                Some(b) => inv(a, b),
                                None => a,
                            })
                    };
                    let new = history.slice(before(t, s), t);
                    if new.is_empty() {
                        subtracted
                    } else {
                        keep(reduce(subtracted.union(reduce(union_all(new, exec)))))
                    }
                }
                _ => keep(reduce(union_all(history.slice(before(t, w), t), exec))),
            };
            *last.lock().unwrap_or_else(|p| p.into_inner()) = Some((t, result.clone()));
            Some(result)
        })
    }

    /// Every `slide`, each key's values over the last `window`, oldest first. As in PySpark,
    /// windows of five slides or more are kept incrementally (values of leaving batches dropped
    /// from the front), so a key whose values all left stays with an empty list. Needs a
    /// checkpoint directory.
    #[track_caller]
    pub fn group_by_key_and_window(
        &self,
        window: impl Into<Duration>,
        slide: impl Into<Duration>,
    ) -> DStream<(K, Vec<V>)> {
        self.map_values(|v| vec![v]).reduce_by_key_and_window_inv(
            |mut a, b| {
                a.extend(b);
                a
            },
            |a, b| a[b.len().min(a.len())..].to_vec(),
            window,
            slide,
            None::<fn(&(K, Vec<V>)) -> bool>,
        )
    }
}

impl<T: Key> DStream<T> {
    /// Every `slide`, the count of each distinct record over the last `window`, computed
    /// incrementally (needs a checkpoint directory); records whose count fell to zero are
    /// dropped.
    #[track_caller]
    pub fn count_by_value_and_window(
        &self,
        window: impl Into<Duration>,
        slide: impl Into<Duration>,
    ) -> DStream<(T, u64)> {
        self.map(|x| (x, 1u64))
            .reduce_by_key_and_window_inv(
                |a, b| a + b,
                |a, b| a - b,
                window,
                slide,
                None::<fn(&(T, u64)) -> bool>,
            )
            .filter(|(_, n)| *n > 0)
    }
}
