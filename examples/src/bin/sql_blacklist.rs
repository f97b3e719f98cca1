//! Blacklist filtering by a SQL join, the Spark Streaming guide's `transform` example
//! (`wordCounts.transform(rdd => rdd.join(spamInfoRDD).filter(...))`) in SQL: words listed in
//! a file, one per line, are a static table, and each batch's word counts leave them out.
//!
//! ```text
//! printf 'be\nthe\n' > blacklist.txt
//! cargo run -p cargo-stream-examples --features sql --bin sql_blacklist -- blacklist.txt localhost 9999
//! ```

use cargo_stream_examples::{args_or_usage, init_logging, port_or_exit, words};
use cargo_stream_runtime::prelude::*;
use cargo_stream_runtime::sql::SqlContext;

/// One row of the `blacklist` table.
#[derive(serde::Serialize, serde::Deserialize)]
struct Blacklisted {
    word: String,
}

fn main() {
    init_logging();
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), cargo_stream_runtime::Error> {
    let args = args_or_usage(3, "sql_blacklist <blacklist-file> <host> <port>");
    let port = port_or_exit(&args[2]);
    let blacklist: Vec<Blacklisted> = std::fs::read_to_string(&args[0])
        .map_err(|e| cargo_stream_runtime::Error::Io {
            action: "failed to read blacklist",
            path: args[0].clone().into(),
            source: e,
        })?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|word| Blacklisted { word: word.into() })
        .collect();

    let conf = StreamingConf::new("SqlBlacklist").master("local[2]");
    let ssc = StreamingContext::new(conf, Seconds(1))?;
    let sql = SqlContext::new();
    sql.register_rows("blacklist", &blacklist)?;
    let lines = ssc.socket_text_stream(args[1].clone(), port);
    let clean_counts = lines.flat_map(words).transform_sql::<(String, u64)>(
        &sql,
        "words",
        "SELECT w.value, COUNT(*) AS total \
         FROM words w LEFT ANTI JOIN blacklist b ON w.value = b.word \
         GROUP BY w.value ORDER BY total DESC, w.value",
    )?;
    clean_counts.print(10)?;
    ssc.start()?;
    ssc.await_termination()
}
