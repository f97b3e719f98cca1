//! `stream_wc PORT SECONDS OUT.jsonl [BATCH_MS]`: the socket word count on our runtime, the same
//! shape and output as `shared/bench/wc.py`, master `local[2]`.

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let (port, secs, out, batch_ms) =
        cargo_stream_bench::consumer_args(&a, "stream_wc PORT SECONDS OUT.jsonl [BATCH_MS]");
    if let Err(e) = cargo_stream_bench::stream::run(port, secs, &out, batch_ms) {
        eprintln!("stream_wc: {e}");
        std::process::exit(1);
    }
}
