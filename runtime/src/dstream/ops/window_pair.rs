//! Windows over pair streams: `reduce_by_key_and_window` (plain and incremental),
//! `count_by_value_and_window`, `group_by_key_and_window`, as Spark's Scala engine has them.
//!
//! With an inverse function the window is always incremental, as Scala's
//! `ReducedWindowedDStream`: each result starts from the previous one, reduces out with the
//! inverse function the batches that left the window and reduces in those that entered, so
//! its cost follows the slide, not the window. A key whose value went back to the identity
//! stays, as `(k, 0)` for a count, until a filter drops it. (PySpark recomputes windows
//! shorter than five slides instead, which drops such keys: this runtime follows Scala, whose
//! suites are Spark's reference.) Without an inverse function the window is reduced whole.
//!
//! The incremental window's state, the batches it still has to reduce out and its last
//! result, goes into checkpoints (the part `reduce_by_key_and_window_inv`), so a restarted job
//! produces what a run without a restart would have (see `dstream/history.rs` for why window
//! elements are [`StateData`]).

use crate::sync::LockExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::StateData;
use crate::batch::{Batch, Key};
use crate::checkpoint::Checkpointed;
use crate::dstream::DStream;
use crate::dstream::history::History;
use crate::error::Result;
use crate::time::{Time, millis};

type Filter<K, V> = Arc<dyn Fn(&(K, V)) -> bool + Send + Sync>;

/// Where a value comes from when an incremental window merges them.
#[derive(Clone)]
enum Side<V> {
    Previous(V),
    Leaving(V),
    Entering(V),
}

/// An incremental window's state: the reduced batches it keeps and its last result.
struct Incremental<K, V> {
    kind: &'static str,
    history: Arc<History<(K, V)>>,
    last: Mutex<Option<(Time, Vec<Vec<(K, V)>>)>>,
}

impl<K: Key + StateData, V: StateData> Checkpointed for Incremental<K, V> {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn save(&self, _time: Time) -> Result<Vec<u8>> {
        let last = self.last.locked();
        self.history
            .save_with(&last.as_ref().map(|(t, parts)| (t.0, parts)))
    }

    fn restore(&self, bytes: &[u8]) -> Result<()> {
        let last: Option<(u64, Vec<Vec<(K, V)>>)> = self.history.restore_with(bytes)?;
        *self.last.locked() = last.map(|(t, parts)| (Time(t), parts));
        Ok(())
    }
}

fn before(t: Time, ms: u64) -> Time {
    Time(t.0.saturating_sub(ms))
}

impl<K: Key + StateData, V: StateData> DStream<(K, V)> {
    /// Every `slide`, each key's values over the last `window` merged with `f`, as Spark's
    /// `reduceByKeyAndWindow` without an inverse function: each batch is reduced by key, then
    /// the window's batches are reduced together.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let a = || "a".to_string();
    /// let batches = vec![vec![(a(), 1)], vec![(a(), 1), ("b".into(), 1)], vec![]];
    /// let out = cargo_stream_runtime::example(batches, |s| {
    ///     s.reduce_by_key_and_window(|x, y| x + y, Seconds(2), Seconds(1))
    /// });
    /// fn sorted(mut v: Vec<(String, i32)>) -> Vec<(String, i32)> { v.sort(); v }
    /// assert_eq!(out.into_iter().map(sorted).collect::<Vec<_>>(),
    ///            vec![vec![(a(), 1)], vec![(a(), 2), ("b".into(), 1)], vec![(a(), 1), ("b".into(), 1)]]);
    /// ```
    #[track_caller]
    pub fn reduce_by_key_and_window(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        window: impl Into<Duration>,
        slide: impl Into<Duration>,
    ) -> DStream<(K, V)> {
        let f = Arc::new(f);
        let g = f.clone();
        self.reduce_by_key(move |a, b| g(a, b))
            .windowed("reduce_by_key_and_window", window.into(), slide.into())
            .reduce_by_key(move |a, b| f(a, b))
    }

    /// Every `slide`, each key's values over the last `window`, computed incrementally with
    /// the inverse function `inv` (`inv(f(a, b), b) == a`), as Spark's Scala engine: a key
    /// whose values all left the window stays with the identity (`(k, 0)` for a sum). Needs a
    /// checkpoint directory.
    ///
    /// The course's example, every 4 s the word counts of the last 6 s:
    /// `pairs.reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, Seconds(6), Seconds(4))`.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let out = cargo_stream_runtime::example_with(vec![vec![("a".to_string(), 1)], vec![]], 2, |ssc, s| {
    ///     ssc.checkpoint(tempfile::tempdir().unwrap().keep()).unwrap();
    ///     s.reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, Seconds(1), Seconds(1))
    /// });
    /// assert_eq!(out, vec![(1, vec![("a".to_string(), 1)]), (2, vec![("a".to_string(), 0)])]);
    /// ```
    #[track_caller]
    pub fn reduce_by_key_and_window_inv(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        inv: impl Fn(V, V) -> V + Send + Sync + 'static,
        window: impl Into<Duration>,
        slide: impl Into<Duration>,
    ) -> DStream<(K, V)> {
        self.incremental(
            "reduce_by_key_and_window_inv",
            f,
            inv,
            window.into(),
            slide.into(),
            None,
        )
    }

    /// As [`reduce_by_key_and_window_inv`](Self::reduce_by_key_and_window_inv), keeping only
    /// the pairs for which `filter` holds (Spark's `filterFunc`): the filtered result is the
    /// window's state, so keys dropped here are forgotten (e.g. `|(_, n)| *n > 0` drops keys
    /// whose values all left the window).
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let out = cargo_stream_runtime::example_with(vec![vec![("a".to_string(), 1)], vec![]], 2, |ssc, s| {
    ///     ssc.checkpoint(tempfile::tempdir().unwrap().keep()).unwrap();
    ///     s.reduce_by_key_and_window_inv_with_filter(
    ///         |a, b| a + b, |a, b| a - b, Seconds(1), Seconds(1), |(_, n)| *n > 0)
    /// });
    /// assert_eq!(out, vec![(1, vec![("a".to_string(), 1)]), (2, vec![])]);
    /// ```
    #[track_caller]
    pub fn reduce_by_key_and_window_inv_with_filter(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        inv: impl Fn(V, V) -> V + Send + Sync + 'static,
        window: impl Into<Duration>,
        slide: impl Into<Duration>,
        filter: impl Fn(&(K, V)) -> bool + Send + Sync + 'static,
    ) -> DStream<(K, V)> {
        self.incremental(
            "reduce_by_key_and_window_inv",
            f,
            inv,
            window.into(),
            slide.into(),
            Some(Arc::new(filter)),
        )
    }

    /// Scala's `ReducedWindowedDStream`, named `op` in messages and checkpoints.
    #[track_caller]
    pub(crate) fn incremental(
        &self,
        op: &'static str,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        inv: impl Fn(V, V) -> V + Send + Sync + 'static,
        window: Duration,
        slide: Duration,
        filter: Option<Filter<K, V>>,
    ) -> DStream<(K, V)> {
        self.check_window(op, window, slide);
        self.require_checkpoint(&format!("`{op}`"));
        let f = Arc::new(f);
        let g = f.clone();
        let reduced = self.reduce_by_key(move |a, b| g(a, b));
        let state = Arc::new(Incremental {
            kind: op,
            history: History::of(&reduced, op, window + slide),
            last: Mutex::new(None),
        });
        self.shared.register_checkpointed(state.clone());
        let exec = self.shared.exec.clone();
        let w = millis(window);
        self.sliding(op, slide, move |t| {
            let exec = exec.get()?;
            let history = &state.history;
            let batch = |parts| Batch::new(parts, exec.clone());
            let reduce = |parts| batch(parts).reduce_by_key(|x, y| f(x, y), None);
            let keep = |b: Batch<(K, V)>| match &filter {
                Some(p) => b.filter(|kv| p(kv)),
                None => b,
            };
            let previous = state.last.locked().take().filter(|(pt, _)| *pt < t);
            let result = match previous {
                // The first window (Scala's previous window is empty before the zero time).
                None => keep(reduce(history.slice(before(t, w), t))),
                Some((pt, prev)) => {
                    // The window at `pt` was (pt - w, pt]; this one is (t - w, t]. After a
                    // restart `t - pt` may exceed the slide: the same sets still apply.
                    let leaving = history.slice(before(pt, w), before(t, w).min(pt));
                    let entering = history.slice(before(t, w).max(pt), t);
                    let unchanged = |parts: &Vec<Vec<_>>| parts.iter().all(Vec::is_empty);
                    if unchanged(&leaving) && unchanged(&entering) {
                        batch(prev)
                    } else {
                        keep(merge(
                            batch(prev),
                            reduce(leaving),
                            reduce(entering),
                            &*f,
                            &inv,
                        ))
                    }
                }
            };
            // What the next window reduces out is after `t - w`.
            history.hold_after(before(t, w));
            *state.last.locked() = Some((t, result.partitions().to_vec()));
            Some(result)
        })
    }

    /// Every `slide`, each key's values over the last `window`, as Spark's Scala
    /// `groupByKeyAndWindow` (a window, then a grouping: no inverse function, so no checkpoint
    /// directory needed and no empty groups).
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let a = || "a".to_string();
    /// let out = cargo_stream_runtime::example(vec![vec![(a(), 1)], vec![(a(), 2)], vec![]], |s| {
    ///     s.group_by_key_and_window(Seconds(2), Seconds(1))
    ///         .map_values(|mut v| { v.sort(); v })
    /// });
    /// assert_eq!(out, vec![vec![(a(), vec![1])], vec![(a(), vec![1, 2])], vec![(a(), vec![2])]]);
    /// ```
    #[track_caller]
    pub fn group_by_key_and_window(
        &self,
        window: impl Into<Duration>,
        slide: impl Into<Duration>,
    ) -> DStream<(K, Vec<V>)> {
        self.windowed("group_by_key_and_window", window.into(), slide.into())
            .group_by_key()
    }
}

/// Scala's merge of a key's values: the previous window's, reduced out with `inv` by those
/// that left and in with `f` by those that entered; a key new to the window takes the entering
/// value alone, one with no previous value and none entering is gone.
fn merge<K: Key, V: StateData>(
    previous: Batch<(K, V)>,
    leaving: Batch<(K, V)>,
    entering: Batch<(K, V)>,
    f: &(impl Fn(V, V) -> V + Send + Sync),
    inv: &(impl Fn(V, V) -> V + Send + Sync),
) -> Batch<(K, V)> {
    previous
        .map(|(k, v)| (k, Side::Previous(v)))
        .union(leaving.map(|(k, v)| (k, Side::Leaving(v))))
        .union(entering.map(|(k, v)| (k, Side::Entering(v))))
        .group_by_key(None)
        .flat_map(|(k, sides)| {
            let (mut previous, mut leaving, mut entering) = (None, None, None);
            for side in sides {
                match side {
                    Side::Previous(v) => previous = Some(v),
                    Side::Leaving(v) => leaving = Some(v),
                    Side::Entering(v) => entering = Some(v),
                }
            }
            let value = match previous {
                Some(mut v) => {
                    if let Some(old) = leaving {
                        v = inv(v, old);
                    }
                    if let Some(new) = entering {
                        v = f(v, new);
                    }
                    Some(v)
                }
                None => entering,
            };
            value.map(|v| (k, v))
        })
}

impl<T: Key + StateData> DStream<T> {
    /// Every `slide`, the count of each distinct record over the last `window`, as Spark's
    /// Scala `countByValueAndWindow`: incremental (needs a checkpoint directory), and a record
    /// whose count fell to zero is dropped from the window's state.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let out = cargo_stream_runtime::example_with(vec![vec![7, 7, 8], vec![8], vec![]], 3, |ssc, s| {
    ///     ssc.checkpoint(tempfile::tempdir().unwrap().keep()).unwrap();
    ///     s.count_by_value_and_window(Seconds(2), Seconds(1))
    /// });
    /// let sorted: Vec<_> = out.into_iter().map(|(i, mut b)| { b.sort(); (i, b) }).collect();
    /// assert_eq!(sorted, vec![(1, vec![(7, 2), (8, 1)]), (2, vec![(7, 2), (8, 2)]), (3, vec![(8, 1)])]);
    /// ```
    #[track_caller]
    pub fn count_by_value_and_window(
        &self,
        window: impl Into<Duration>,
        slide: impl Into<Duration>,
    ) -> DStream<(T, u64)> {
        self.map(|x| (x, 1u64)).incremental(
            "count_by_value_and_window",
            |a, b| a + b,
            |a, b| a - b,
            window.into(),
            slide.into(),
            Some(Arc::new(|(_, n): &(T, u64)| *n != 0)),
        )
    }
}
