//! The table of files embedded at build time by `cli/build.rs`: every template and exercise,
//! and the runtime's sources for `--portable`.

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
