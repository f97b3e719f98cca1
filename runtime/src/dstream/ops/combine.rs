//! `ssc.union` and `ssc.transform`: operations over several streams of the same context and
//! interval, as Spark's `StreamingContext.union` and `StreamingContext.transform`.

use std::panic::Location;
use std::sync::Arc;

use crate::batch::{Batch, Data};
use crate::context::StreamingContext;
use crate::dstream::DStream;
use crate::dstream::node::Node;
use crate::time::Time;

impl StreamingContext {
    /// The records of all `streams`, batch by batch (each batch's partitions one stream after
    /// the other), as Spark's `StreamingContext.union`.
    ///
    /// # Panics
    /// As Spark fails: when `streams` is empty, or holds streams of another context or with
    /// different intervals (slides). A stream that gives no batch at a time (a custom
    /// [`input_stream`](Self::input_stream) returning `None`) fails that batch, as in Spark.
    ///
    /// ```
    /// let out = cargo_stream_runtime::example_with(vec![vec![1, 2]], 1, |ssc, s| {
    ///     ssc.union(vec![s.clone(), s.map(|x| x + 10), s.map(|x| x + 20)])
    /// });
    /// let mut all = out[0].1.clone();
    /// all.sort();
    /// assert_eq!(all, vec![1, 2, 11, 12, 21, 22]);
    /// ```
    #[track_caller]
    pub fn union<T: Data>(&self, streams: Vec<DStream<T>>) -> DStream<T> {
        let at = Location::caller();
        self.combine("union", streams, at, move |batches, time| {
            let mut parts = Vec::new();
            let mut exec = None;
            for (i, b) in batches.into_iter().enumerate() {
                let Some(b) = b else {
                    panic!(
                        "Could not generate RDD from a parent for unifying at time {} ms: stream {} of the `union` created at {at} gave no batch",
                        time.millis(),
                        i + 1
                    );
                };
                exec.get_or_insert_with(|| b.exec.clone());
                parts.extend(b.parts);
            }
            exec.map(|e| Batch::new(parts, e))
        })
    }

    /// Applies `f` to the batches of all `streams` at each time, as Spark's
    /// `StreamingContext.transform` (whose streams may differ in type, which here is one
    /// `T`: map them to an enum first for mixed streams).
    ///
    /// # Panics
    /// As [`union`](Self::union): when `streams` is empty, mixes contexts or intervals; and a
    /// stream that gives no batch at a time fails that batch.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let out = cargo_stream_runtime::example_with(vec![vec![1, 2, 3]], 1, |ssc, s| {
    ///     ssc.transform(vec![s.clone(), s.map(|x| x * 10)], |batches: Vec<Batch<i32>>, _time| {
    ///         let mut all: Vec<i32> = batches.iter().flat_map(|b| b.collect()).collect();
    ///         all.sort();
    ///         batches[0].parallelize(all, 1)
    ///     })
    /// });
    /// assert_eq!(out[0].1, vec![1, 2, 3, 10, 20, 30]);
    /// ```
    #[track_caller]
    pub fn transform<T: Data, U: Data>(
        &self,
        streams: Vec<DStream<T>>,
        f: impl Fn(Vec<Batch<T>>, Time) -> Batch<U> + Send + Sync + 'static,
    ) -> DStream<U> {
        let at = Location::caller();
        self.combine("transform", streams, at, move |batches, time| {
            let batches = batches
                .into_iter()
                .enumerate()
                .map(|(i, b)| {
                    b.unwrap_or_else(|| {
                        panic!(
                            "Couldn't generate RDD from parent at time {} ms: stream {} of the `transform` created at {at} gave no batch",
                            time.millis(),
                            i + 1
                        )
                    })
                })
                .collect();
            Some(f(batches, time))
        })
    }

    /// A node computed from the batches of `streams` at each time, after Spark's checks.
    fn combine<T: Data, U: Data>(
        &self,
        op: &str,
        streams: Vec<DStream<T>>,
        at: &'static Location<'static>,
        f: impl Fn(Vec<Option<Batch<T>>>, Time) -> Option<Batch<U>> + Send + Sync + 'static,
    ) -> DStream<U> {
        self.shared.assert_initialized(&format!("`{op}`"));
        let Some(first) = streams.first() else {
            panic!("requirement failed: List of DStreams to {op} is empty (`ssc.{op}` at {at})");
        };
        if streams
            .iter()
            .any(|s| !Arc::ptr_eq(&s.shared, &self.shared))
        {
            panic!(
                "requirement failed: Some of the DStreams have different contexts (`ssc.{op}` at {at})"
            );
        }
        let slide = first.node.slide;
        if let Some(other) = streams.iter().find(|s| s.node.slide != slide) {
            panic!(
                "requirement failed: Some of the DStreams have different slide durations (`ssc.{op}` at {at}: {} ms and {} ms)",
                slide.as_millis(),
                other.node.slide.as_millis()
            );
        }
        let parents: Vec<_> = streams.iter().map(|s| s.node.clone()).collect();
        parents.iter().for_each(|p| p.add_consumer());
        let compute = Box::new(move |t| f(parents.iter().map(|p| p.get(t)).collect(), t));
        DStream::from_node(self.shared.clone(), Node::new(op, slide, compute))
    }
}
