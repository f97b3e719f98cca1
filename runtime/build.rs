//! Turns `CARGO_STREAM_CLUSTER_BUILD=1`, which `cargo stream package` sets, into
//! `--cfg cargo_stream_cluster` for this crate alone: a local master set in code is then
//! ignored (`conf.rs`). Through `RUSTFLAGS` the cfg would change every crate's flags and
//! rebuild the whole graph (DataFusion included) next to `cargo build --release`; here only
//! this crate and the crates above it rebuild. The cfg also shows in cargo's
//! `build-script-executed` message, which `cargo stream package` reads to check that the
//! binary really is a cluster build.

/// The variable `cargo stream package` sets (`cli/src/package/cargo_build.rs`).
const CLUSTER_BUILD_ENV: &str = "CARGO_STREAM_CLUSTER_BUILD";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(cargo_stream_cluster)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed={CLUSTER_BUILD_ENV}");
    if std::env::var(CLUSTER_BUILD_ENV).is_ok_and(|v| v == "1") {
        println!("cargo::rustc-cfg=cargo_stream_cluster");
    }
}
