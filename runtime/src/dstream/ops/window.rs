//! Windows over a stream: `window`, `reduce_by_window`, `count_by_window`, as Spark's Scala
//! engine has them, and `DStream::checkpoint`.
//!
//! Durations are checked when the operation is called, as Spark's constructors do: a window or
//! slide that is not a multiple of the stream's interval panics there, naming the caller's
//! line. A window's contents are checkpointed (`dstream/history.rs`), so its elements must be
//! [`StateData`].

use std::panic::Location;
use std::time::Duration;

use crate::StateData;
use crate::batch::{Batch, Data};
use crate::dstream::DStream;
use crate::dstream::history::History;
use crate::dstream::node::Node;
use crate::time::{Time, millis};

/// `d` in Spark's format (`"2500 ms"`).
fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// The multiples of `unit` on either side of `d`, as a fix to suggest.
fn nearest_multiples(d: Duration, unit: Duration) -> String {
    let unit = millis(unit).max(1);
    let below = millis(d) / unit * unit;
    if below == 0 {
        format!("{unit} ms")
    } else {
        format!("{below} ms or {} ms", below + unit)
    }
}

impl<T: Data> DStream<T> {
    /// Panics, naming the caller, unless `window` and `slide` are non-zero multiples of this
    /// stream's slide (Spark's `WindowedDStream` constructor check).
    #[track_caller]
    pub(crate) fn check_window(&self, op: &str, window: Duration, slide: Duration) {
        let parent = self.node.slide;
        for (what, d) in [("window", window), ("slide", slide)] {
            if d.is_zero() || !millis(d).is_multiple_of(millis(parent)) {
                panic!(
                    "The {what} duration of windowed DStream ({}) must be a multiple of the slide duration of parent DStream ({}){}: `{op}` at {}\nhelp: use {}",
                    ms(d),
                    ms(parent),
                    if d.is_zero() { " and not zero" } else { "" },
                    Location::caller(),
                    nearest_multiples(d, parent),
                );
            }
        }
    }

    /// Marks this operation as one that needs a checkpoint directory at `start()`.
    #[track_caller]
    pub(crate) fn require_checkpoint(&self, op: &str) {
        let op = format!("{op} at {}", Location::caller());
        self.shared.graph_mut().needs_checkpoint.push(op);
    }

    /// Sets how often this stream's state is checkpointed (Spark's `DStream.checkpoint`): at
    /// least its slide and a multiple of it, else this panics here, with Spark's wording and
    /// the caller's line. The default is the smallest multiple of the slide that is at least
    /// 10 s. The context checkpoints at the shortest interval any stream asks for.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let out = cargo_stream_runtime::example(vec![vec![1], vec![2]], |s| {
    ///     s.checkpoint(Seconds(2));
    ///     s
    /// });
    /// assert_eq!(out, vec![vec![1], vec![2]]);
    /// ```
    #[track_caller]
    pub fn checkpoint(&self, interval: impl Into<Duration>) -> &Self {
        let interval = interval.into();
        let slide = self.node.slide;
        let problem = if interval < slide {
            Some(("which is lower than", "at least"))
        } else if !millis(interval).is_multiple_of(millis(slide)) {
            Some(("which is not a multiple of", "a multiple of"))
        } else {
            None
        };
        if let Some((what, fix)) = problem {
            panic!(
                "The checkpoint interval for DStream `{}` has been set to {} {what} its slide time ({}). Please set it to {fix} {}: `checkpoint` at {}\nhelp: use {}",
                self.node.name,
                ms(interval),
                ms(slide),
                ms(slide),
                Location::caller(),
                nearest_multiples(interval.max(slide), slide),
            );
        }
        self.shared.graph_mut().checkpoint_intervals.push(interval);
        self
    }

    /// A stream that produces a batch every `slide` from `compute`.
    pub(crate) fn sliding<U: Data>(
        &self,
        name: &str,
        slide: Duration,
        compute: impl Fn(Time) -> Option<Batch<U>> + Send + Sync + 'static,
    ) -> DStream<U> {
        DStream::from_node(
            self.shared.clone(),
            Node::new(name, slide, Box::new(compute)),
        )
    }

    /// Every `slide`, the number of records in the last `window`, as Spark's Scala
    /// `countByWindow`: computed incrementally (needs a checkpoint directory), so a window
    /// that emptied gives `[0]`; nothing before the first record.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let out = cargo_stream_runtime::example_with(vec![vec!['a', 'b'], vec![], vec![]], 3, |ssc, s| {
    ///     ssc.checkpoint(tempfile::tempdir().unwrap().keep()).unwrap();
    ///     s.count_by_window(Seconds(2), Seconds(1))
    /// });
    /// assert_eq!(out, vec![(1, vec![2]), (2, vec![2]), (3, vec![0])]);
    /// ```
    #[track_caller]
    pub fn count_by_window(
        &self,
        window: impl Into<Duration>,
        slide: impl Into<Duration>,
    ) -> DStream<u64> {
        self.map(|_| 1u64).reduce_by_window_inv_as(
            "count_by_window",
            |a, b| a + b,
            |a, b| a - b,
            window.into(),
            slide.into(),
        )
    }
}

impl<T: StateData> DStream<T> {
    /// The records of the last `window`, every time this stream produces (Spark's
    /// one-argument `window`: the slide is this stream's own).
    ///
    /// Rust has no overloading: Spark's two-argument form is
    /// [`window_with_slide`](Self::window_with_slide), the way this crate names every form with
    /// an extra argument (`reduce_by_key_with_partitions`), so that `window(len)` reads as in
    /// Spark.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let out = cargo_stream_runtime::example(vec![vec![1], vec![2], vec![3]], |s| s.window(Seconds(2)));
    /// assert_eq!(out, vec![vec![1], vec![1, 2], vec![2, 3]]);
    /// ```
    #[track_caller]
    pub fn window(&self, window: impl Into<Duration>) -> DStream<T> {
        self.windowed("window", window.into(), self.node.slide)
    }

    /// Every `slide`, the records of the last `window` (both multiples of this stream's
    /// interval), as Spark's two-argument `window`.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let out = cargo_stream_runtime::example_with(vec![vec![1], vec![2], vec![3], vec![4]], 4, |_, s| {
    ///     s.window_with_slide(Seconds(2), Seconds(2))
    /// });
    /// assert_eq!(out, vec![(2, vec![1, 2]), (4, vec![3, 4])]);
    /// ```
    #[track_caller]
    pub fn window_with_slide(
        &self,
        window: impl Into<Duration>,
        slide: impl Into<Duration>,
    ) -> DStream<T> {
        self.windowed("window", window.into(), slide.into())
    }

    /// A window named `op` in messages and checkpoints: its parent's batches kept for `window`
    /// (and checkpointed), their union produced every `slide`.
    #[track_caller]
    pub(crate) fn windowed(&self, op: &'static str, window: Duration, slide: Duration) -> Self {
        self.check_window(op, window, slide);
        let history = History::of(self, op, window);
        self.shared.register_checkpointed(history.clone());
        let exec = self.shared.exec.clone();
        self.sliding(op, slide, move |t| {
            let exec = exec.get()?;
            let parts = history.slice(Time(t.0.saturating_sub(millis(window))), t);
            Some(Batch::new(parts, exec.clone()))
        })
    }

    /// Every `slide`, the records of the last `window` reduced with `f` (none when empty), as
    /// Spark's `reduceByWindow`: each batch is reduced first, so the window keeps one value per
    /// batch.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let out = cargo_stream_runtime::example(vec![vec![1, 2], vec![3], vec![]], |s| {
    ///     s.reduce_by_window(|a, b| a + b, Seconds(2), Seconds(1))
    /// });
    /// assert_eq!(out, vec![vec![3], vec![6], vec![3]]);
    /// ```
    #[track_caller]
    pub fn reduce_by_window(
        &self,
        f: impl Fn(T, T) -> T + Send + Sync + 'static,
        window: impl Into<Duration>,
        slide: impl Into<Duration>,
    ) -> DStream<T> {
        let f = std::sync::Arc::new(f);
        let g = f.clone();
        self.reduce(move |a, b| g(a, b))
            .windowed("reduce_by_window", window.into(), slide.into())
            .reduce(move |a, b| f(a, b))
    }

    /// As [`reduce_by_window`](Self::reduce_by_window), computed incrementally as Spark's Scala
    /// engine does: the batches entering the window are reduced in, those leaving it reduced
    /// out with `inv` (`inv(f(a, b), b) == a`), so a window that emptied gives the identity
    /// (`[0]` for a sum) rather than nothing. Needs a checkpoint directory.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let out = cargo_stream_runtime::example_with(vec![vec![1, 2], vec![3], vec![]], 3, |ssc, s| {
    ///     ssc.checkpoint(tempfile::tempdir().unwrap().keep()).unwrap();
    ///     s.reduce_by_window_inv(|a, b| a + b, |a, b| a - b, Seconds(1), Seconds(1))
    /// });
    /// assert_eq!(out, vec![(1, vec![3]), (2, vec![3]), (3, vec![0])]);
    /// ```
    #[track_caller]
    pub fn reduce_by_window_inv(
        &self,
        f: impl Fn(T, T) -> T + Send + Sync + 'static,
        inv: impl Fn(T, T) -> T + Send + Sync + 'static,
        window: impl Into<Duration>,
        slide: impl Into<Duration>,
    ) -> DStream<T> {
        self.reduce_by_window_inv_as("reduce_by_window_inv", f, inv, window.into(), slide.into())
    }

    /// Spark's Scala `reduceByWindow` with an inverse: one key for every record, reduced by
    /// key and window incrementally; `op` names it in messages and checkpoints.
    #[track_caller]
    fn reduce_by_window_inv_as(
        &self,
        op: &'static str,
        f: impl Fn(T, T) -> T + Send + Sync + 'static,
        inv: impl Fn(T, T) -> T + Send + Sync + 'static,
        window: Duration,
        slide: Duration,
    ) -> DStream<T> {
        let f = std::sync::Arc::new(f);
        let g = f.clone();
        self.reduce(move |a, b| g(a, b))
            .map(|x| ((), x))
            .incremental(op, move |a, b| f(a, b), inv, window, slide, None)
            .map(|(_, x)| x)
    }
}
