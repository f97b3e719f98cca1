//! Running word totals with `update_state_by_key` over files moved into a directory, which
//! survive a crash: restarted with the same checkpoint directory, the job resumes from its
//! last checkpoint and reads again the files of the batches it had not checkpointed, so no
//! word is lost and none counted twice.
//!
//! ```text
//! cargo run -p cargo-stream-examples --bin running_totals -- /tmp/incoming /tmp/checkpoints
//! ```

use cargo_stream_examples::{args_or_usage, init_logging, print_running_totals};
use cargo_stream_runtime::prelude::*;

fn main() -> Result<(), cargo_stream_runtime::Error> {
    init_logging();
    let args = args_or_usage(2, "running_totals <directory> <checkpoint-directory>");
    let (input, checkpoint) = (args[0].clone(), args[1].clone());
    let ssc = StreamingContext::get_or_create(&checkpoint, || {
        let conf = StreamingConf::new("RunningTotals").master("local[2]");
        let ssc = StreamingContext::new(conf, Seconds(1))?;
        print_running_totals(&ssc.text_file_stream(&input))?;
        Ok(ssc)
    })?;
    ssc.start()?;
    ssc.await_termination()
}
