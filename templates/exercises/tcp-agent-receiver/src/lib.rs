//! An agent (think of a Flume agent with an Avro sink) pushes events to this job over TCP; the
//! job counts the events of each source per batch. See README.md for the task.

pub mod event;
pub mod receiver;

use cargo_stream_runtime::prelude::*;

pub use event::{Event, parse_event};
pub use receiver::AgentReceiver;

/// Counts the events of each source in each batch.
pub fn events_per_source(events: DStream<Event>) -> DStream<(String, u64)> {
    events.map(|event: Event| (event.source, 1u64)).reduce_by_key(|a, b| a + b)
}
