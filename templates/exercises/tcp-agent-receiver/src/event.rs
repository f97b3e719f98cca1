//! The events an agent sends: one per line, `<timestamp-ms> <source> <body>`.

/// One event pushed by an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// When the agent saw it, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Where it comes from (a host, a log file...): one word.
    pub source: String,
    /// The payload: the rest of the line, spaces included; it may be empty.
    pub body: String,
}

/// Parses one line sent by an agent, without its line ending:
/// `<timestamp-ms> <source> <body>`, separated by single spaces.
///
/// `"1700000000000 web-1 GET /index.html"` is the event of `web-1` at 1700000000000 ms with the
/// body `GET /index.html`. A line without a numeric timestamp, without a source, or without the
/// space that starts the body is an error saying what is wrong.
pub fn parse_event(line: &str) -> Result<Event, String> {
    // TODO(exercise): split the line, parse the timestamp, and build the `Event`.
    todo!("parse the event line {line:?}")
}
