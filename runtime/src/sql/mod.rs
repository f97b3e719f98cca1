//! SQL on every batch, on Apache DataFusion (feature `sql`): each batch becomes a table of
//! Arrow record batches, a query runs on it next to static tables, and the result comes back
//! as typed rows, as Spark Streaming jobs do with `rdd.toDF()`, a temp view and `spark.sql`.
//!
//! - [`Rows<T>`]: the columns of a `serde` row type; rows to and from Arrow record batches.
//! - [`SqlContext`]: static tables (a blacklist, a dimension table), functions and settings.
//! - [`DStream::transform_sql`](crate::DStream::transform_sql): a query on every batch, checked
//!   when the stream is built; [`Query`] and [`SqlContext::query`] for the same inside
//!   `transform` or `foreach_rdd`.
//!
//! Queries run on a Tokio runtime of their own (one thread per core, started on first use);
//! converting rows to and from Arrow runs on the context's worker threads, a partition each.
//!
//! ```
//! use cargo_stream_runtime::sql::SqlContext;
//!
//! let sql = SqlContext::new();
//! let out = cargo_stream_runtime::example(vec![vec![4i64, 5, 6]], |s| {
//!     s.transform_sql::<i64>(&sql, "n", "SELECT value * 10 FROM n WHERE value > 4 ORDER BY 1")
//!         .unwrap()
//! });
//! assert_eq!(out, vec![vec![50, 60]]);
//! ```
//!
//! # Writing to a database: a connection per partition
//!
//! The output operation that jobs really use is `foreach_rdd` writing each partition to a
//! database. [`Batch::foreach_partition`](crate::Batch::foreach_partition) runs its closure on
//! the worker threads, so it must be `Send + Sync`; a connection opened once on the driver
//! side and captured by it does not compile when the connection cannot be shared between
//! threads (as `postgres::Client` cannot). Spark finds this mistake at run time, as a
//! `NotSerializableException` on the first batch; here the compiler finds it:
//!
//! ```compile_fail
//! use cargo_stream_runtime::prelude::*;
//!
//! /// A client connection: usable from one thread at a time, as database clients are.
//! struct Connection {
//!     sent: std::cell::RefCell<Vec<String>>,
//! }
//! impl Connection {
//!     fn connect() -> Self {
//!         Connection { sent: Default::default() }
//!     }
//!     fn execute(&self, statement: String) {
//!         self.sent.borrow_mut().push(statement);
//!     }
//! }
//!
//! cargo_stream_runtime::example(vec![vec!["a".to_string()]], |words| {
//!     words
//!         .foreach_rdd(|batch: &Batch<String>, _time| {
//!             let conn = Connection::connect(); // on the driver
//!             batch.foreach_partition(|words| {
//!                 // error[E0277]: `RefCell<Vec<String>>` cannot be shared between threads safely
//!                 for w in words {
//!                     conn.execute(format!("INSERT INTO words VALUES ('{w}')"));
//!                 }
//!             })
//!         })
//!         .unwrap();
//!     words
//! });
//! ```
//!
//! Open the connection inside the partition's closure instead (or take one from a pool that
//! is itself `Sync`, such as `r2d2::Pool`), and write the partition in one transaction:
//!
//! ```
//! use cargo_stream_runtime::prelude::*;
//! # struct Connection { sent: std::cell::RefCell<Vec<String>> }
//! # impl Connection {
//! #     fn connect() -> Self { Connection { sent: Default::default() } }
//! #     fn execute(&self, statement: String) { self.sent.borrow_mut().push(statement); }
//! # }
//! cargo_stream_runtime::example(vec![vec!["a".to_string()]], |words| {
//!     words
//!         .foreach_rdd(|batch: &Batch<String>, _time| {
//!             batch.foreach_partition(|words| {
//!                 let conn = Connection::connect(); // on the worker, one per partition
//!                 for w in words {
//!                     conn.execute(format!("INSERT INTO words VALUES ('{w}')"));
//!                 }
//!             })
//!         })
//!         .unwrap();
//!     words
//! });
//! ```
//!
//! The `postgres_word_count` example writes word counts to PostgreSQL this way, with a pooled
//! variant, retries with back-off, and writes keyed by batch time so that a replayed batch
//! does not count twice.

mod block_on;
mod context;
mod query;
mod rows;
mod transform;

pub use context::SqlContext;
pub use query::Query;
pub use rows::{Rows, VALUE_COLUMN};

/// The DataFusion crate this module runs on, for its types ([`datafusion::prelude::SessionConfig`],
/// `TableProvider`, `ScalarUDF`) without a second dependency to keep in step.
pub use datafusion;
