//! A Spark-Streaming-style micro-batch runtime: DStreams, receivers, a `local[N]` scheduler and
//! outputs, for jobs written like Spark Streaming jobs and run without a JVM.
//!
//! # A tour
//!
//! A job builds a graph of [`DStream`]s on a [`StreamingContext`], registers output operations,
//! and starts it. Every batch interval the context fixes each input's records for that batch
//! (receivers cut what they received into one block, a partition, per block interval), then
//! runs the output operations, which compute the batch through the graph on the worker threads.
//!
//! ```no_run
//! use cargo_stream_runtime::prelude::*;
//!
//! fn main() -> Result<(), cargo_stream_runtime::Error> {
//!     let conf = StreamingConf::new("NetworkWordCount").master("local[2]");
//!     let ssc = StreamingContext::new(conf, Seconds(1))?;
//!     let lines = ssc.socket_text_stream("localhost", 9999);
//!     let counts = lines
//!         .flat_map(|line: String| line.split(' ').map(str::to_owned).collect::<Vec<_>>())
//!         .map(|word| (word, 1u64))
//!         .reduce_by_key(|a, b| a + b);
//!     counts.print(10)?;
//!     ssc.start()?;
//!     ssc.await_termination()
//! }
//! ```
//!
//! Every operation is also a [`Batch`] operation, so tests and docs can run a stream on fixed
//! input with [`example`]:
//!
//! ```
//! let out = cargo_stream_runtime::example(vec![vec!["a b a".to_string()]], |lines| {
//!     lines
//!         .flat_map(|l: String| l.split(' ').map(str::to_owned).collect::<Vec<_>>())
//!         .count_by_value()
//! });
//! let mut counts = out[0].clone();
//! counts.sort();
//! assert_eq!(counts, vec![("a".to_string(), 2), ("b".to_string(), 1)]);
//! ```
//!
//! # Feature flags
//!
//! - `sql`: SQL on every batch with Apache DataFusion (the `sql` module,
//!   `DStream::transform_sql`): batches of `serde` rows as Arrow tables, static tables joined
//!   per batch, queries checked when the stream is built. Needs Rust 1.94.
//! - `kafka`: Spark's Kafka 0-10 direct stream (the `kafka` module), with rdkafka and
//!   librdkafka built from its bundled sources, linked statically.
//! - `postgres`: exactly-once output of a Kafka stream into PostgreSQL.
//! - `full`: every optional part (`sql`, `kafka`, `postgres`).
//! - `logging` (default): `logging::init`, the log subscriber a job's `main` installs
//!   (`RUST_LOG`, JSON lines with `CARGO_STREAM_LOG_FORMAT=json`), with `tracing-subscriber`.
//!
//! A cluster build is not a feature but `--cfg cargo_stream_cluster`, which
//! `cargo stream package` passes: a local master set in code is then ignored with a logged
//! notice (as it is at run time with `CARGO_STREAM_DEPLOY_MODE=cluster`).
#![warn(missing_docs, unreachable_pub)]
#![doc(test(attr(deny(warnings))))]

mod batch;
mod checkpoint;
mod clock;
mod conf;
mod context;
mod dstream;
mod engine;
mod error;
mod example;
mod failpoint;
pub mod logging;
mod metrics;
mod output;
mod render;
mod scheduler;
mod signals;
mod source;
#[cfg(feature = "sql")]
pub mod sql;
#[cfg(feature = "kafka")]
pub use source::kafka;
mod state;
mod sync;
pub mod tasks;
pub mod text;
mod time;
pub mod ui;
mod warning;

pub use batch::{Batch, Data, Key, StaticBatch};
pub use checkpoint::names::RESET_STATE_ENV;
pub use clock::ManualClock;
pub use conf::{DEPLOY_MODE_ENV, MASTER_ENV, Master, StreamingConf};
pub use context::StreamingContext;
pub use dstream::DStream;
pub use error::{Error, Result};
pub use example::{example, example_every, example_with};
pub use metrics::{
    BatchInfo, CheckpointInfo, CounterSnapshot, OutputOperationInfo, PartitionLag, ReceiverInfo,
    StreamInputInfo, StreamingListener,
};
pub use render::Render;
pub use source::receiver::{Receiver, ReceiverContext};
pub use state::{MapWithStateDStream, State, StateData, StateSpec, UpdateInput};
pub use time::{Milliseconds, Minutes, Seconds, Time};

/// The names a job needs: `use cargo_stream_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::text::{Line, Word};
    pub use crate::{
        Batch, DStream, Error, Milliseconds, Minutes, Receiver, ReceiverContext, Render, Seconds,
        State, StateSpec, StreamingConf, StreamingContext, StreamingListener, Time,
    };
}
