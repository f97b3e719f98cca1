//! The `cargo stream` toolchain: scaffold a micro-batch streaming job from a template
//! (`cargo stream new`) and bundle it into one self-contained artifact that runs on a cluster
//! (`cargo stream package`).
//!
//! The binary is thin: `main.rs` calls [`run`], which parses the flags ([`commands`]), sets up the
//! [`Shell`] and logging, and hands over to one module per verb in [`commands`]. The work
//! itself lives in modules named for the thing they own: [`templates`] (the embedded template
//! table and the renderer), [`package`] (locating the binary, the cluster build, the
//! local-master report, the bundle and its manifest) and [`config`] (settings merged from
//! Cargo.toml, Stream.toml, the environment and the flags). Errors carry a `help:` line
//! ([`error`]); all terminal output goes through the [`Shell`].

#![warn(missing_docs, unreachable_pub)]

pub mod cluster;
pub mod commands;
pub mod config;
pub mod error;
pub mod exit;
pub mod layers;
pub mod machine_message;
pub mod package;
pub mod quote;
pub mod shell;
pub mod templates;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

pub use error::{HelpExt, WithHelp};
pub use shell::Shell;

/// Runs `cargo stream` with the given arguments (the first one is the program name) and returns
/// the process's exit code: 0 on success, 2 on a usage error, else the outcome's code
/// ([`exit`]: 3 job FAILED/ERROR, 4 KILLED, 5 cluster unreachable, 6 `--wait-timeout`, 1 any
/// other error).
///
/// Accepts both `cargo-stream stream <verb>` (as cargo runs it) and `cargo-stream <verb>`.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let mut args: Vec<OsString> = args.into_iter().collect();
    if args.get(1).map(|a| a != "stream").unwrap_or(true) {
        args.insert(1.min(args.len()), OsString::from("stream"));
    }
    let commands::Cargo::Stream(args) = match commands::Cargo::try_parse_from(args) {
        Ok(parsed) => parsed,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { 2 } else { 0 });
        }
    };
    let mut shell = Shell::new(args.global.verbosity(), args.global.color);
    init_tracing(args.global.verbose, shell.colored());
    let json = args.command.json();
    match commands::exec(&mut shell, &args.global, args.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if error::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            shell.print_error(&err, json);
            exit::exit_code(&err)
        }
    }
}

/// Diagnostics go to stderr through `tracing`: off unless `-v`/`-vv`, `RUST_LOG` or
/// `CARGO_STREAM_LOG` asks for them.
fn init_tracing(verbose: u8, ansi: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("CARGO_STREAM_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| match verbose {
            0 | 1 => "off".into(),
            2 => "cargo_stream=debug".into(),
            _ => "cargo_stream=trace".into(),
        });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .without_time()
        .try_init();
}
