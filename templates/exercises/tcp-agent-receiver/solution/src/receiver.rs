//! The receiver the agent pushes to.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use cargo_stream_runtime::prelude::*;

use crate::event::{Event, parse_event};

/// Listens on `host:port` for agents and stores the events they push.
pub struct AgentReceiver {
    host: String,
    port: u16,
}

impl AgentReceiver {
    /// A receiver that listens on `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        AgentReceiver { host: host.into(), port }
    }
}

impl Receiver for AgentReceiver {
    type Item = Event;

    fn on_start(&mut self, ctx: ReceiverContext<Event>) {
        let (host, port) = (self.host.clone(), self.port);
        std::thread::spawn(move || listen(&host, port, &ctx));
    }

    fn on_stop(&mut self) {}
}

fn is_timeout(err: &std::io::Error) -> bool {
    matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted)
}

fn listen(host: &str, port: u16, ctx: &ReceiverContext<Event>) {
    let listener = match TcpListener::bind((host, port)).and_then(|l| l.set_nonblocking(true).map(|()| l)) {
        Ok(listener) => listener,
        Err(err) => {
            ctx.restart(&format!("cannot listen on {host}:{port}: {err}"));
            return;
        }
    };
    while !ctx.is_stopped() {
        match listener.accept() {
            Ok((agent, _)) => {
                if let Err(err) = serve(agent, ctx) {
                    ctx.report_error(&format!("an agent's connection failed: {err}"));
                }
            }
            Err(err) if is_timeout(&err) => std::thread::sleep(Duration::from_millis(20)),
            Err(err) => {
                ctx.restart(&format!("accepting agents on {host}:{port} failed: {err}"));
                return;
            }
        }
    }
}

/// Reads one agent's events until it disconnects or the receiver stops.
fn serve(agent: TcpStream, ctx: &ReceiverContext<Event>) -> std::io::Result<()> {
    agent.set_nonblocking(false)?;
    agent.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut answers = agent.try_clone()?;
    let mut reader = BufReader::new(agent);
    let mut line = Vec::new();
    while !ctx.is_stopped() {
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return Ok(()),
            Ok(_) if line.ends_with(b"\n") => {
                let text = String::from_utf8_lossy(&line);
                match parse_event(text.trim_end_matches(['\r', '\n'])) {
                    Ok(event) => {
                        ctx.store(event);
                        answers.write_all(b"ok\n")?;
                    }
                    Err(why) => answers.write_all(format!("error {why}\n").as_bytes())?,
                }
                line.clear();
            }
            Ok(_) => {}
            Err(err) if is_timeout(&err) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
