//! `--demo`: a text server on 127.0.0.1, so that the job has lines to count with nothing else
//! started. It serves [`TEXT`] (Lincoln's Gettysburg Address, in the public domain), a line
//! every [`LINE_EVERY`], from the top again at its end, to each connection in turn; the job
//! reads it through its real socket receiver, as it would read `nc -lk PORT`.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

/// The text served: the Gettysburg Address (Bliss copy), in the public domain.
pub const TEXT: &str = include_str!("demo.txt");

/// How often a line is sent.
pub const LINE_EVERY: Duration = Duration::from_millis(100);

/// Starts the server on a free port of 127.0.0.1 and returns its address; it serves until the
/// process ends.
pub fn serve() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new()
        .name("demo-server".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                // Until the reader goes away (a restart of the receiver reconnects).
                for line in TEXT.lines().cycle() {
                    if writeln!(conn, "{line}").is_err() {
                        break;
                    }
                    std::thread::sleep(LINE_EVERY);
                }
            }
        })?;
    Ok(addr)
}
