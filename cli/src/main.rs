//! `cargo-stream`: parse the command line, start logging, run the verb, exit with its code.
//! The work lives in the `cargo_stream` library.

use std::process::ExitCode;

fn main() -> ExitCode {
    cargo_stream::run(std::env::args_os())
}
