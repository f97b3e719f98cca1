//! Spark's `HdfsWordCount`: counts the words of each new file moved into a directory, every
//! two seconds. Files must be moved in whole (write elsewhere, then `mv`).
//!
//! ```text
//! cargo run -p cargo-stream-examples --bin directory_word_count -- /tmp/incoming
//! ```

use cargo_stream_examples::{args_or_usage, init_logging, word_counts};
use cargo_stream_runtime::prelude::*;

fn main() -> Result<(), cargo_stream_runtime::Error> {
    init_logging();
    let args = args_or_usage(1, "directory_word_count <directory>");
    let conf = StreamingConf::new("HdfsWordCount").master("local[2]");
    let ssc = StreamingContext::new(conf, Seconds(2))?;
    let lines = ssc.text_file_stream(&args[0]);
    let word_counts = word_counts(&lines);
    word_counts.print(10)?;
    ssc.start()?;
    ssc.await_termination()
}
