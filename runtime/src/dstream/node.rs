//! A node of the DStream graph: computes its batch for a time at most once, shared by its
//! consumers, and hands the last consumer the batch itself instead of a copy.

use crate::sync::LockExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::batch::{Batch, Data};
use crate::dstream::pipeline::Lazy;
use crate::engine::AnyNode;
use crate::time::Time;

type ComputeFn<T> = Box<dyn Fn(Time) -> Option<Batch<T>> + Send + Sync>;
pub(crate) type LazyFn<T> = Box<dyn Fn(Time) -> Option<Lazy<T>> + Send + Sync>;

/// How a node makes its batch.
enum Make<T> {
    /// Whole, from its parents' batches.
    Batch(ComputeFn<T>),
    /// As iterators chained onto its parent's (a narrow operation).
    Lazy(LazyFn<T>),
}

pub(crate) struct Node<T> {
    pub(crate) name: String,
    /// How often this node produces a batch (the batch interval, or a window's slide).
    pub(crate) slide: Duration,
    make: Make<T>,
    consumers: AtomicUsize,
    /// The batch of the current time, kept until every consumer has had it.
    cache: Mutex<Option<Cached<T>>>,
}

struct Cached<T> {
    time: Time,
    batch: Option<Batch<T>>,
    remaining: usize,
}

impl<T: Data> Node<T> {
    pub(crate) fn new(name: impl Into<String>, slide: Duration, compute: ComputeFn<T>) -> Self {
        Self::with(name, slide, Make::Batch(compute))
    }

    /// A narrow node, whose records are pipelined into its consumer when it has one.
    pub(crate) fn lazy(name: impl Into<String>, slide: Duration, make: LazyFn<T>) -> Self {
        Self::with(name, slide, Make::Lazy(make))
    }

    fn with(name: impl Into<String>, slide: Duration, make: Make<T>) -> Self {
        Node {
            name: name.into(),
            slide,
            make,
            consumers: AtomicUsize::new(0),
            cache: Mutex::new(None),
        }
    }

    pub(crate) fn add_consumer(&self) {
        self.consumers.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether this node produces a batch at `time`, given the graph's zero time.
    pub(crate) fn is_valid_at(&self, time: Time, zero: Time) -> bool {
        time > zero && (time.0 - zero.0).is_multiple_of(self.slide.as_millis() as u64)
    }

    /// This node's batch at `time`, computed once however many consumers ask.
    pub(crate) fn get(&self, time: Time) -> Option<Batch<T>> {
        let _span =
            tracing::trace_span!("compute", op = %self.name, batch = time.millis()).entered();
        let consumers = self.consumers.load(Ordering::SeqCst);
        if consumers <= 1 {
            return self.compute(time);
        }
        let mut cache = self.cache.locked();
        if let Some(c) = cache.as_mut().filter(|c| c.time == time) {
            c.remaining = c.remaining.saturating_sub(1);
            return if c.remaining == 0 {
                cache.take().and_then(|c| c.batch)
            } else {
                c.batch.clone()
            };
        }
        let batch = self.compute(time);
        *cache = Some(Cached {
            time,
            batch: batch.clone(),
            remaining: consumers - 1,
        });
        batch
    }

    fn compute(&self, time: Time) -> Option<Batch<T>> {
        match &self.make {
            Make::Batch(f) => f(time),
            Make::Lazy(f) => f(time).map(Lazy::materialize),
        }
    }

    /// This node's records at `time` as iterators: its pipeline itself when it is narrow and
    /// has one consumer, else its batch (computed once for all consumers).
    pub(crate) fn get_lazy(&self, time: Time) -> Option<Lazy<T>> {
        match &self.make {
            Make::Lazy(f) if self.consumers.load(Ordering::SeqCst) <= 1 => f(time),
            _ => self.get(time).map(Lazy::from_batch),
        }
    }

    /// Drops what the cache holds (at the end of a batch, whoever did not consume it).
    pub(crate) fn clear(&self) {
        self.cache.locked().take();
    }
}

impl<T: Data> AnyNode for Node<T> {
    fn clear(&self) {
        Node::clear(self)
    }
}
