//! Word count in SQL: every batch of words received from a TCP server becomes the table
//! `words`, and a `GROUP BY` counts them (Spark's `SqlNetworkWordCount`). Try it with
//! `nc -lk 9999` in another terminal:
//!
//! ```text
//! cargo run -p cargo-stream-examples --features sql --bin sql_word_count -- localhost 9999
//! ```

use cargo_stream_examples::{args_or_usage, init_logging, port_or_exit, words};
use cargo_stream_runtime::prelude::*;
use cargo_stream_runtime::sql::SqlContext;

fn main() {
    init_logging();
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), cargo_stream_runtime::Error> {
    let args = args_or_usage(2, "sql_word_count <host> <port>");
    let port = port_or_exit(&args[1]);
    let conf = StreamingConf::new("SqlNetworkWordCount").master("local[2]");
    let ssc = StreamingContext::new(conf, Seconds(1))?;
    let sql = SqlContext::new();
    let lines = ssc.socket_text_stream(args[0].clone(), port);
    // A stream of `String`s is a table with one column, `value`; the result is read into
    // `(word, count)` tuples by position.
    let word_counts = lines.flat_map(words).transform_sql::<(String, u64)>(
        &sql,
        "words",
        "SELECT value AS word, COUNT(*) AS total FROM words GROUP BY value ORDER BY total DESC, word",
    )?;
    word_counts.print(10)?;
    ssc.start()?;
    ssc.await_termination()
}
