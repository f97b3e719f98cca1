//! Running word totals over a TCP source with the receiver write-ahead log on: every block is
//! on disk before it is processed, so words received but not yet checkpointed when the job
//! dies are replayed when it restarts with the same checkpoint directory.
//!
//! ```text
//! cargo run -p cargo-stream-examples --bin socket_running_totals -- localhost 9999 /tmp/checkpoints
//! ```

use cargo_stream_examples::{args_or_usage, init_logging, port_or_exit, print_running_totals};
use cargo_stream_runtime::prelude::*;

fn main() -> Result<(), cargo_stream_runtime::Error> {
    init_logging();
    let args = args_or_usage(
        3,
        "socket_running_totals <host> <port> <checkpoint-directory>",
    );
    let port = port_or_exit(&args[1]);
    let ssc = StreamingContext::get_or_create(&args[2], || {
        let conf = StreamingConf::new("SocketRunningTotals")
            .master("local[2]")
            .write_ahead_log(true);
        let ssc = StreamingContext::new(conf, Seconds(1))?;
        print_running_totals(&ssc.socket_text_stream(args[0].clone(), port))?;
        Ok(ssc)
    })?;
    ssc.start()?;
    ssc.await_termination()
}
