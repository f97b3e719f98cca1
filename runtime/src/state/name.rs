//! Naming a stream's state for checkpoints that survive upgrades (`DStream::name`), and
//! starting a named state empty (`StreamingContext::reset_state`). The rules are in
//! `checkpoint/names.rs`.

use std::panic::Location;
use std::sync::Arc;

use crate::batch::{Data, Key};
use crate::checkpoint::names::Migration;
use crate::context::StreamingContext;
use crate::dstream::DStream;
use crate::state::store::{STORE_KINDS, migration, store_types};
use crate::state::{MapWithStateDStream, StateData};

impl<T: Data> DStream<T> {
    /// Names the state this stream carries in checkpoints (and returns the same stream), so
    /// that a job rebuilt from changed code finds it again: the stream returned by a stateful operation (`update_state_by_key`,
    /// `map_with_state`, a window that keeps state), by `text_file_stream` or by a receiver with
    /// a write-ahead log. Names must be unique in a job; naming a stream that keeps no state is
    /// an error reported by `start()`.
    ///
    /// Unnamed state is saved as `FILE:KIND#N` (the file after its last `src/`, the
    /// operation, its rank among that file's operations of that kind), which adding a `filter`
    /// or an output does not change, but adding an operation of the same kind before it in
    /// the same file does: name what must survive upgrades. On restart, a state whose name,
    /// kind, format and key and value types match is restored; a saved state no operation has
    /// any more is dropped with a warning; a new one starts empty; a changed type is refused
    /// with [`Error::Checkpoint`](crate::Error::Checkpoint) naming it, unless it is reset with
    /// [`StreamingContext::reset_state`].
    ///
    /// ```
    /// let out = cargo_stream_runtime::example_with(vec![vec![("a".to_string(), 1)]], 1, |ssc, s| {
    ///     ssc.checkpoint(std::env::temp_dir().join("doc-name")).unwrap();
    ///     s.update_state_by_key(|v: Vec<i32>, total: Option<i32>| Some(v.iter().sum::<i32>() + total.unwrap_or(0)))
    ///         .name("totals")
    /// });
    /// assert_eq!(out[0].1, vec![("a".to_string(), 1)]);
    /// ```
    #[track_caller]
    pub fn name(&self, name: impl AsRef<str>) -> Self {
        let at = Location::caller();
        self.shared.assert_initialized("`name`");
        let mut graph = self.shared.graph_mut();
        let node = graph
            .nodes
            .iter()
            .position(|n| std::ptr::addr_eq(Arc::as_ptr(n), Arc::as_ptr(&self.node)))
            .unwrap_or(usize::MAX);
        graph.name_state(node, name.as_ref(), at);
        drop(graph);
        self.clone()
    }
}

impl<K: Data, S, M: Data> MapWithStateDStream<K, S, M> {
    /// Names this operation's state in checkpoints, as [`DStream::name`].
    ///
    /// ```
    /// use cargo_stream_runtime::{State, StateSpec};
    /// let out = cargo_stream_runtime::example_with(vec![vec![("a".to_string(), 1)]], 1, |ssc, s| {
    ///     ssc.checkpoint(std::env::temp_dir().join("doc-name-mws")).unwrap();
    ///     let spec = StateSpec::function(|_: &String, v: Option<i32>, st: &mut State<i32>| {
    ///         st.update(v.unwrap_or(0));
    ///         v
    ///     });
    ///     s.map_with_state(spec).name("last").into_dstream()
    /// });
    /// assert_eq!(out[0].1, vec![Some(1)]);
    /// ```
    #[track_caller]
    pub fn name(&self, name: impl AsRef<str>) -> Self {
        self.mapped.name(name);
        self.clone()
    }
}

impl StreamingContext {
    /// Starts the state named `name` empty at this start, whatever the checkpoint holds for
    /// it: the escape hatch when its type changed, or to drop the saved state of an operation
    /// that was removed. The environment variable
    /// [`RESET_STATE_ENV`](crate::RESET_STATE_ENV) (`CARGO_STREAM_RESET_STATE=a,b`) does the
    /// same for a packaged job. A name that is neither in this job nor in its checkpoint makes
    /// `start()` fail, so that a typo is not silently ignored.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let dir = tempfile::tempdir()?;
    /// let ssc = StreamingContext::get_or_create(dir.path(), || {
    ///     let ssc = StreamingContext::new(StreamingConf::new("totals").master("local[2]"), Seconds(1))?;
    ///     ssc.queue_stream(vec![vec![("a".to_string(), 1u64)]])
    ///         .update_state_by_key(|v: Vec<u64>, s: Option<u64>| Some(v.iter().sum::<u64>() + s.unwrap_or(0)))
    ///         .name("totals")
    ///         .print(10)?;
    ///     Ok(ssc)
    /// })?;
    /// ssc.reset_state("totals");
    /// ssc.start()?;
    /// ssc.stop(true)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reset_state(&self, name: impl AsRef<str>) {
        self.shared.graph_mut().checkpointed.reset(name.as_ref());
    }

    /// Converts the saved state named `name` of an `update_state_by_key` or `map_with_state`
    /// whose state type changed from `Old` to `New` (keys of type `K` unchanged), at this
    /// start: `f` gets each key and its old state and returns its new state, or `None` to drop
    /// the key. The alternative to [`reset_state`](Self::reset_state) when the old totals can
    /// be carried over. `start()` refuses, naming the state, when the checkpoint does not
    /// hold `K` and `Old`, or the operation does not hold `K` and `New`.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// let dir = tempfile::tempdir()?;
    /// let job = |dir: &std::path::Path, migrate: bool| -> Result<(), Error> {
    ///     let ssc = StreamingContext::get_or_create(dir, || {
    ///         let ssc = StreamingContext::new(StreamingConf::new("totals").master("local[2]"), Seconds(1))?;
    ///         let pairs = ssc.queue_stream(vec![vec![("a".to_string(), 1u64)]]);
    ///         if migrate {
    ///             // Version 2 keeps the totals as floats.
    ///             pairs.update_state_by_key(|v: Vec<u64>, s: Option<f64>| Some(v.len() as f64 + s.unwrap_or(0.0)))
    ///                 .name("totals")
    ///                 .print(10)?;
    ///         } else {
    ///             pairs.update_state_by_key(|v: Vec<u64>, s: Option<u64>| Some(v.len() as u64 + s.unwrap_or(0)))
    ///                 .name("totals")
    ///                 .print(10)?;
    ///         }
    ///         Ok(ssc)
    ///     })?;
    ///     if migrate {
    ///         ssc.migrate_state("totals", |_: &String, total: u64| Some(total as f64));
    ///     }
    ///     ssc.start()?;
    ///     ssc.stop(true)
    /// };
    /// job(dir.path(), false)?;
    /// job(dir.path(), true)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn migrate_state<K: Key + StateData, Old: StateData, New: StateData>(
        &self,
        name: impl AsRef<str>,
        f: impl Fn(&K, Old) -> Option<New> + Send + Sync + 'static,
    ) {
        let migration = Migration {
            kinds: &STORE_KINDS,
            from: store_types::<K, Old>(),
            to: store_types::<K, New>(),
            convert: Box::new(migration(f)),
            at: Location::caller(),
        };
        self.shared
            .graph_mut()
            .checkpointed
            .migrate(name.as_ref(), migration);
    }
}
