//! Spark's `CustomReceiver` example: a hand-written receiver of lines from a TCP server,
//! restarting itself when the connection fails, fed into a word count.
//!
//! ```text
//! cargo run -p cargo-stream-examples --bin custom_receiver -- localhost 9999
//! ```

use std::io::{BufRead, BufReader};
use std::net::TcpStream;

use cargo_stream_examples::{args_or_usage, init_logging, port_or_exit, word_counts};
use cargo_stream_runtime::prelude::*;

/// Receives lines from `host:port`.
struct LineReceiver {
    host: String,
    port: u16,
}

impl Receiver for LineReceiver {
    type Item = String;

    fn on_start(&mut self, ctx: ReceiverContext<String>) {
        let (host, port) = (self.host.clone(), self.port);
        // on_start must not block: receive on a thread of our own.
        std::thread::spawn(move || {
            let socket = match TcpStream::connect((host.as_str(), port)) {
                Ok(s) => s,
                Err(e) => return ctx.restart(format!("error connecting to {host}:{port}: {e}")),
            };
            for line in BufReader::new(socket).lines() {
                if ctx.is_stopped() {
                    return;
                }
                match line {
                    Ok(line) => ctx.store(line),
                    Err(e) => return ctx.restart(format!("error receiving data: {e}")),
                }
            }
            ctx.restart("server closed the connection; trying to connect again");
        });
    }

    fn on_stop(&mut self) {
        // The thread above checks `is_stopped()` and ends by itself.
    }

    fn name(&self) -> String {
        format!("LineReceiver({}:{})", self.host, self.port)
    }
}

fn main() -> Result<(), cargo_stream_runtime::Error> {
    init_logging();
    let args = args_or_usage(2, "custom_receiver <host> <port>");
    let port = port_or_exit(&args[1]);
    let conf = StreamingConf::new("CustomReceiver").master("local[2]");
    let ssc = StreamingContext::new(conf, Seconds(1))?;
    let lines = ssc.receiver_stream(LineReceiver {
        host: args[0].clone(),
        port,
    });
    let word_counts = word_counts(&lines);
    word_counts.print(10)?;
    ssc.start()?;
    ssc.await_termination()
}
