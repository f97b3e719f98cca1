//! `DStream<T>`: a typed handle to a node of the graph. Transformations add nodes; output
//! operations register jobs run at every batch. Operations are grouped by family in [`ops`].

pub(crate) mod history;
pub(crate) mod node;
mod ops;
pub(crate) mod pipeline;

use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use crate::batch::{Batch, Data};
use crate::engine::Output;
use crate::engine::Shared;
use crate::error::Result;
use crate::time::Time;
use node::Node;
use pipeline::{Lazy, Records};

/// A discretized stream: a sequence of batches, one per batch interval, as Spark's DStream.
/// Cheap to clone; every clone is the same stream.
///
/// The graph is fixed once the context starts: any operation on a stream (a transformation,
/// a window, state, an output) after `start()` or `stop()` panics, as Spark throws
/// `IllegalStateException`, with Spark's message and the file and line of the call.
pub struct DStream<T> {
    pub(crate) node: Arc<Node<T>>,
    pub(crate) shared: Arc<Shared>,
}

impl<T> Clone for DStream<T> {
    fn clone(&self) -> Self {
        DStream {
            node: self.node.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<T: Data> DStream<T> {
    pub(crate) fn from_node(shared: Arc<Shared>, node: Node<T>) -> Self {
        let node = Arc::new(node);
        shared.graph_mut().nodes.push(node.clone());
        DStream { node, shared }
    }

    /// The one node builder every transformation goes through: checks the graph is still open
    /// (panicking at the caller's line otherwise), that every other parent belongs to the same
    /// context, counts this stream as a consumer of its parent, and adds the node `make` builds
    /// (from the parent and its slide) to the graph.
    #[track_caller]
    fn child<U: Data>(
        &self,
        name: &str,
        others: &[&Arc<Shared>],
        make: impl FnOnce(Arc<Node<T>>, Duration) -> Node<U>,
    ) -> DStream<U> {
        self.shared.assert_initialized(&format!("`{name}`"));
        for other in others {
            assert!(
                Arc::ptr_eq(&self.shared, other),
                "`{name}` needs two streams of the same streaming context"
            );
        }
        let parent = self.node.clone();
        parent.add_consumer();
        let parent_id = crate::tasks::lineage::node_id(&parent);
        let node = make(parent, self.node.slide);
        let child = DStream::from_node(self.shared.clone(), node);
        self.shared.graph_mut().lineage.edge(
            crate::tasks::lineage::node_id(&child.node),
            parent_id,
            name,
            Location::caller(),
        );
        child
    }

    /// A new stream computed from this one's batch at each time by `f`.
    #[track_caller]
    pub(crate) fn derive<U: Data>(
        &self,
        name: &str,
        f: impl Fn(Batch<T>, Time) -> Batch<U> + Send + Sync + 'static,
    ) -> DStream<U> {
        self.child(name, &[], |parent, slide| {
            let compute = Box::new(move |t| parent.get(t).map(|b| f(b, t)));
            Node::new(name, slide, compute)
        })
    }

    /// A narrow operation: `f` turns each partition's records into the new stream's, pipelined
    /// with the operations before and after it.
    #[track_caller]
    pub(crate) fn derive_narrow<U: Data>(
        &self,
        name: &str,
        f: impl Fn(Records<T>) -> Records<U> + Send + Sync + 'static,
    ) -> DStream<U> {
        self.child(name, &[], |parent, slide| {
            let make = Box::new(move |t| parent.get_lazy(t).map(|l| l.then(&f)));
            Node::lazy(name, slide, make)
        })
    }

    /// A new stream computed from this one's records, as iterators, by `f` (a shuffle's map
    /// side consumes the pipeline directly).
    #[track_caller]
    pub(crate) fn derive_from_lazy<U: Data>(
        &self,
        name: &str,
        f: impl Fn(Lazy<T>, Time) -> Batch<U> + Send + Sync + 'static,
    ) -> DStream<U> {
        self.child(name, &[], |parent, slide| {
            let compute = Box::new(move |t| parent.get_lazy(t).map(|l| f(l, t)));
            Node::new(name, slide, compute)
        })
    }

    /// A new stream computed from this one's and `other`'s batches at each time by `f`.
    #[track_caller]
    pub(crate) fn derive2<U: Data, V: Data>(
        &self,
        other: &DStream<U>,
        name: &str,
        f: impl Fn(Batch<T>, Batch<U>, Time) -> Batch<V> + Send + Sync + 'static,
    ) -> DStream<V> {
        self.child(name, &[&other.shared], |a, slide| {
            let b = other.node.clone();
            b.add_consumer();
            let compute = Box::new(move |t| {
                let (x, y) = (a.get(t), b.get(t));
                Some(f(x?, y?, t))
            });
            Node::new(name, slide, compute)
        })
    }

    /// Registers an output operation that runs `f` on this stream's batch at each of its times.
    /// Its `Result` is for the output's own errors; after `start()` it panics, as every
    /// operation does (Spark throws `IllegalStateException` for all of them).
    #[track_caller]
    pub(crate) fn register_output(
        &self,
        name: &str,
        f: impl Fn(Batch<T>, Time) + Send + Sync + 'static,
    ) -> Result<()> {
        self.register(name, false, f)
    }

    /// Registers `f` to see this stream's batch at each of its times, before the outputs run
    /// (windows keep their parent's batches this way).
    #[track_caller]
    pub(crate) fn register_hook(
        &self,
        name: &str,
        f: impl Fn(Batch<T>, Time) + Send + Sync + 'static,
    ) {
        // Cannot fail: `register` panics after `start()` and has no other error.
        let _ = self.register(name, true, f);
    }

    /// Registers an output (or, with `hook`, a hook). After `start()` it panics, as every
    /// operation does, naming the caller's file and line.
    #[track_caller]
    fn register(
        &self,
        name: &str,
        hook: bool,
        f: impl Fn(Batch<T>, Time) + Send + Sync + 'static,
    ) -> Result<()> {
        let at = Location::caller();
        self.shared.assert_initialized(&format!("`{name}`"));
        let node = self.node.clone();
        node.add_consumer();
        let run = Box::new(move |time: Time, zero: Time| {
            if node.is_valid_at(time, zero)
                && let Some(batch) = node.get(time)
            {
                f(batch, time);
            }
        });
        let output = Output {
            name: format!("{name} at {at}"),
            run,
        };
        let mut graph = self.shared.graph_mut();
        if hook {
            graph.hooks.push(output);
        } else {
            graph.outputs.push(output);
        }
        Ok(())
    }
}
