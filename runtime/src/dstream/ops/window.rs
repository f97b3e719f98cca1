//! Windows over a stream: `window`, `reduce_by_window`, `count_by_window`.

use std::panic::Location;
use std::time::Duration;

use crate::batch::{Batch, Data};
use crate::dstream::DStream;
use crate::dstream::history::History;
use crate::dstream::node::Node;
use crate::error::Error;
use crate::time::{Time, millis};

impl<T: Data> DStream<T> {
    /// Checks that `window` and `slide` are non-zero multiples of this stream's interval;
    /// a violation is reported by `start()`.
    #[track_caller]
    pub(crate) fn check_window(&self, op: &str, window: Duration, slide: Duration) {
        let interval = self.node.slide;
        let bad = |what: &str, d: Duration| {
            (d.is_zero() || !millis(d).is_multiple_of(millis(interval))).then(|| {
                format!(
                    "the {what} ({} ms) must be a non-zero multiple of the stream's interval ({} ms)",
                    d.as_millis(),
                    interval.as_millis()
                )
            })
        };
        if let Some(message) = bad("window length", window).or_else(|| bad("slide", slide)) {
            let operation = format!("`{op}` at {}", Location::caller());
            self.shared
                .graph_mut()
                .problems
                .push(Error::InvalidWindow { operation, message });
        }
    }

    /// Marks this operation as one that needs a checkpoint directory at `start()`.
    #[track_caller]
    pub(crate) fn require_checkpoint(&self, op: &str) {
        let op = format!("{op} at {}", Location::caller());
        self.shared.graph_mut().needs_checkpoint.push(op);
    }

    /// Sets how often this stream's state is checkpointed (Spark's `DStream.checkpoint`); a
    /// multiple of its interval. The default is the smallest multiple of the slide that is at
    /// least 10 s. The context checkpoints at the shortest interval any stream asks for.
    #[track_caller]
    pub fn checkpoint(&self, interval: impl Into<Duration>) -> &Self {
        let interval = interval.into();
        self.check_window("checkpoint", interval, self.node.slide);
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

    /// Every `slide`, the records of the last `window` (both multiples of the batch interval),
    /// as Spark's `window`.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let out = cargo_stream_runtime::example(vec![vec![1], vec![2], vec![3]], |s| s.window(Seconds(2), Seconds(1)));
    /// assert_eq!(out, vec![vec![1], vec![1, 2], vec![2, 3]]);
    /// ```
    #[track_caller]
    pub fn window(&self, window: impl Into<Duration>, slide: impl Into<Duration>) -> DStream<T> {
        let (window, slide) = (window.into(), slide.into());
        self.check_window("window", window, slide);
        let history = History::of(self, "window", window);
        let exec = self.shared.exec.clone();
        self.sliding("window", slide, move |t| {
            let exec = exec.get()?;
            let slices = history.slice(Time(t.0.saturating_sub(millis(window))), t);
            let parts = slices
                .into_iter()
                .flat_map(Batch::into_partitions)
                .collect();
            Some(Batch::new(parts, exec.clone()))
        })
    }

    /// Every `slide`, the records of the last `window` reduced with `f` (none when empty).
    #[track_caller]
    pub fn reduce_by_window(
        &self,
        f: impl Fn(T, T) -> T + Send + Sync + 'static,
        window: impl Into<Duration>,
        slide: impl Into<Duration>,
    ) -> DStream<T> {
        self.window(window, slide).reduce(f)
    }

    /// As [`reduce_by_window`](Self::reduce_by_window), computed incrementally: the batches
    /// entering the window are reduced in, those leaving it reduced out with `inv`. Needs a
    /// checkpoint directory.
    #[track_caller]
    pub fn reduce_by_window_inv(
        &self,
        f: impl Fn(T, T) -> T + Send + Sync + 'static,
        inv: impl Fn(T, T) -> T + Send + Sync + 'static,
        window: impl Into<Duration>,
        slide: impl Into<Duration>,
    ) -> DStream<T> {
        let f = std::sync::Arc::new(f);
        let g = f.clone();
        self.reduce(move |a, b| g(a, b))
            .map(|x| (0u8, x))
            .reduce_by_key_and_window_inv(
                move |a, b| f(a, b),
                inv,
                window,
                slide,
                None::<fn(&(u8, T)) -> bool>,
            )
            .map(|(_, x)| x)
    }

    /// Every `slide`, the number of records in the last `window` (computed incrementally;
    /// needs a checkpoint directory). Nothing for an empty window, as in PySpark.
    #[track_caller]
    pub fn count_by_window(
        &self,
        window: impl Into<Duration>,
        slide: impl Into<Duration>,
    ) -> DStream<u64> {
        self.map(|_| 1u64)
            .reduce_by_window_inv(|a, b| a + b, |a, b| a - b, window, slide)
    }
}
