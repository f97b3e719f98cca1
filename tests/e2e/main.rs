//! End-to-end tests of the `cargo-stream` binary: a module per verb, each scenario driving the
//! built binary, `cargo`, `java` and the generated jobs against real sockets and files on
//! 127.0.0.1.

mod cargo_flags;
mod driver_ui;
mod exercises;
mod first_run;
mod kafka;
mod new;
mod package;
mod scripts;
mod snapshots;
mod submit;
