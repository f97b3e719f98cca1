//! The runtime's integration tests: real sockets, files and threads on 127.0.0.1.

mod backpressure;
mod conformance;
mod lifecycle;
mod outputs;
mod sources;
mod support;
mod window_recovery;
mod windows;
