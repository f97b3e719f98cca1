//! `foreach_rdd`: run any code on each batch, on the driver side.

use crate::batch::{Batch, Data};
use crate::dstream::DStream;
use crate::error::Result;
use crate::time::Time;

impl<T: Data> DStream<T> {
    /// Runs `f` on each batch and its time, on the job thread (Spark's driver side). Work on
    /// records belongs in [`Batch::foreach_partition`], which runs on the worker threads.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// use std::sync::{Arc, Mutex};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// cargo_stream_runtime::example(vec![vec![1, 2], vec![3]], move |s| {
    ///     s.foreach_rdd(move |b: &Batch<i32>, _time| sink.lock().unwrap().push(b.count())).unwrap();
    ///     s
    /// });
    /// assert_eq!(*seen.lock().unwrap(), vec![2, 1]);
    /// ```
    ///
    /// # Panics
    ///
    /// When called after `start()` or `stop()`, naming the caller's file and line.
    #[track_caller]
    pub fn foreach_rdd(&self, f: impl Fn(&Batch<T>, Time) + Send + Sync + 'static) -> Result<()> {
        self.register_output("foreach_rdd", move |batch, time| f(&batch, time))
    }
}
