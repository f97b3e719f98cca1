//! `handwritten_wc PORT SECONDS OUT.jsonl [BATCH_MS]`: the practical limit, a hand-written
//! single-pass word count over the feeder's bytes, one JSONL record per batch window.
//! `handwritten_wc --in-memory` prints the single-core in-memory counting rate.

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.first().map(String::as_str) == Some("--in-memory") {
        let rate = cargo_stream_bench::handwritten::in_memory_rate(400);
        println!("in-memory single-pass count: {:.1} M words/s", rate / 1e6);
        return;
    }
    let (port, secs, out, batch_ms) =
        cargo_stream_bench::consumer_args(&a, "handwritten_wc PORT SECONDS OUT.jsonl [BATCH_MS]");
    if let Err(e) = cargo_stream_bench::handwritten::run(port, secs, &out, batch_ms) {
        eprintln!("handwritten_wc: {e}");
        std::process::exit(1);
    }
}
