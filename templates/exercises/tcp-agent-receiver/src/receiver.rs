//! The receiver the agent pushes to. This is the part to write: see README.md.

use cargo_stream_runtime::prelude::*;

use crate::event::Event;

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
        // TODO(exercise): listen on `self.host:self.port` on a thread of your own (this method
        // must return at once), accept agents one after another, and for each line they send:
        // parse it with `crate::parse_event`, then `ctx.store(event)` and answer `ok\n`, or
        // answer `error <why>\n` and go on. Stop when `ctx.is_stopped()`; on a failure that
        // needs a fresh start (the port is taken...), `ctx.restart("why")`.
        let _ = ctx;
        todo!("listen on {}:{} and store the agents' events", self.host, self.port)
    }

    fn on_stop(&mut self) {}
}
