//! The course's first program (Spark's `NetworkWordCount`): counts words received from a TCP
//! server every second. Try it with `nc -lk 9999` in another terminal:
//!
//! ```text
//! cargo run -p cargo-stream-examples --bin socket_word_count -- localhost 9999
//! ```

use cargo_stream_examples::{args_or_usage, init_logging, port_or_exit, word_counts};
use cargo_stream_runtime::prelude::*;

fn main() -> Result<(), cargo_stream_runtime::Error> {
    init_logging();
    let args = args_or_usage(2, "socket_word_count <host> <port>");
    let port = port_or_exit(&args[1]);
    let conf = StreamingConf::new("NetworkWordCount").master("local[2]");
    let ssc = StreamingContext::new(conf, Seconds(1))?;
    let lines = ssc.socket_text_stream(args[0].clone(), port);
    let word_counts = word_counts(&lines);
    word_counts.print(10)?;
    ssc.start()?;
    ssc.await_termination()
}
