//! The runtime's integration tests: real sockets, files and threads on 127.0.0.1.

mod backpressure;
mod conformance;
mod faults;
mod incremental;
#[cfg(feature = "kafka")]
mod kafka;
mod lifecycle;
mod memory;
mod outputs;
mod receiver_failures;
#[cfg(feature = "kafka")]
mod scale;
mod sources;
mod spark_api;
mod support;
mod ui;
mod ui_page;
mod upgrade;
mod window_recovery;
mod windows;
