//! The course's window example: every 4 seconds, the word counts of the last 6 seconds, on
//! 2-second batches of lines from a TCP server, computed incrementally (counts of the batches
//! entering the window added, of those leaving it subtracted; words whose count falls to zero
//! dropped). The window is checkpointed at every slide and every received block logged
//! before it is counted (the write-ahead log), so a job killed with SIGKILL and restarted with
//! the same checkpoint directory goes on with the windows it had.
//!
//! ```text
//! cargo run -p cargo-stream-examples --bin windowed_word_count -- localhost 9999 /tmp/checkpoints
//! ```

use cargo_stream_examples::{args_or_usage, init_logging, port_or_exit, words};
use cargo_stream_runtime::prelude::*;

fn main() -> Result<(), cargo_stream_runtime::Error> {
    init_logging();
    let args = args_or_usage(
        3,
        "windowed_word_count <host> <port> <checkpoint-directory>",
    );
    let port = port_or_exit(&args[1]);
    let ssc = StreamingContext::get_or_create(&args[2], || {
        // The socket cannot send again what a killed job had received: every block is logged
        // before it is counted, and those no checkpoint covers are counted after a restart.
        let conf = StreamingConf::new("WindowedWordCount")
            .master("local[2]")
            .write_ahead_log(true);
        let ssc = StreamingContext::new(conf, Seconds(2))?;
        let counts = ssc
            .socket_text_stream(args[0].clone(), port)
            .flat_map(words)
            .map(|w| (w, 1u64))
            .reduce_by_key_and_window_inv_with_filter(
                |a, b| a + b,
                |a, b| a - b,
                Seconds(6),
                Seconds(4),
                |(_, n): &(String, u64)| *n > 0,
            );
        // At every window (Spark's default would be every 12 s): a restart has at most one
        // slide of logged blocks to count again.
        counts.checkpoint(Seconds(4));
        counts.print(10)?;
        Ok(ssc)
    })?;
    ssc.start()?;
    ssc.await_termination()
}
