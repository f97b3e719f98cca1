//! The course's first program (Spark's `NetworkWordCount`): counts words received from a TCP
//! server every second. Try it with `nc -lk 9999` in another terminal:
//!
//! ```text
//! cargo run -p cargo-stream-examples --bin socket_word_count -- localhost 9999
//! ```

use cargo_stream_examples::{args_or_usage, init_logging, words};
use cargo_stream_runtime::prelude::*;

fn main() -> Result<(), cargo_stream_runtime::Error> {
    init_logging();
    let args = args_or_usage(2, "socket_word_count <host> <port>");
    let port: u16 = args[1].parse().unwrap_or_else(|_| {
        eprintln!("error: port `{}` is not a number from 1 to 65535", args[1]);
        std::process::exit(2)
    });
    let conf = StreamingConf::new("NetworkWordCount").master("local[2]");
    let ssc = StreamingContext::new(conf, Seconds(1))?;
    let lines = ssc.socket_text_stream(args[0].clone(), port);
    let word_counts = lines
        .flat_map(words)
        .map(|w| (w, 1u64))
        .reduce_by_key(|a, b| a + b);
    word_counts.print(10)?;
    ssc.start()?;
    ssc.await_termination()
}
