//! Naming a stream's state for checkpoints that survive upgrades (`DStream::name`), and
//! starting a named state empty (`StreamingContext::reset_state`). The rules are in
//! `checkpoint/names.rs`.

use std::panic::Location;
use std::sync::Arc;

use crate::batch::Data;
use crate::dstream::DStream;
use crate::state::MapWithStateDStream;

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
    /// [`StreamingContext::reset_state`](crate::StreamingContext::reset_state).
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
