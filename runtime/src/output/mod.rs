//! Output operations: what makes a batch run. `print`, `save_as_text_files` and `foreach_rdd`.
//!
//! As every operation, an output added after `start()` (or after `stop()`) panics with Spark's
//! message ("Adding new inputs, transformations, and output operations after starting a
//! context is not supported") and the caller's file and line, as Spark throws
//! `IllegalStateException`; their `Result` is for the output's own errors.

mod foreach;
mod print;
mod save;
