//! Runnable cargo-stream jobs, one per capability (see `src/bin/`), and what they share.

/// Logs to stderr under `RUST_LOG` (default `info` for the runtime), as every job should.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("cargo_stream_runtime=info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Splits a line into words on whitespace.
pub fn words(line: String) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

/// The arguments after the program name, or a usage message and exit code 2.
pub fn args_or_usage(count: usize, usage: &str) -> Vec<String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != count {
        eprintln!("usage: {usage}");
        std::process::exit(2);
    }
    args
}
