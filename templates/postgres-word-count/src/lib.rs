//! The job's logic: counting, and writing the counts of each batch to PostgreSQL.

use cargo_stream_runtime::prelude::*;
use postgres::{Client, NoTls};

/// The table the counts go to, one row per batch and word.
pub const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS word_counts (
    batch_time BIGINT NOT NULL,
    word TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (batch_time, word)
)";

/// Keyed by batch time: a batch written again (a retried write) overwrites its rows.
const UPSERT: &str = "INSERT INTO word_counts (batch_time, word, count) VALUES ($1, $2, $3)
    ON CONFLICT (batch_time, word) DO UPDATE SET count = EXCLUDED.count";

/// Counts each word of each batch of lines.
pub fn word_counts(lines: DStream<String>) -> DStream<(String, u64)> {
    lines
        .flat_map(|line: String| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .map(|word| (word, 1u64))
        .reduce_by_key(|a, b| a + b)
}

/// Writes one partition's counts of the batch at `batch_time_ms`, in one transaction.
pub fn write_partition(client: &mut Client, batch_time_ms: i64, counts: &[(String, u64)]) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    let upsert = tx.prepare(UPSERT)?;
    for (word, count) in counts {
        let count = i64::try_from(*count).unwrap_or(i64::MAX);
        tx.execute(&upsert, &[&batch_time_ms, word, &count])?;
    }
    tx.commit()
}

/// Creates the table if needed.
pub fn create_table(url: &str) -> Result<(), SetupError> {
    Client::connect(url, NoTls)
        .and_then(|mut client| client.batch_execute(CREATE_TABLE))
        .map_err(|source| SetupError { server: server_of(url), source })
}

/// The table could not be created: which server (never the password), with the driver's error
/// (e.g. `error connecting to server: Connection refused`) as its cause.
#[derive(Debug)]
pub struct SetupError {
    server: String,
    source: postgres::Error,
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot create the table `word_counts` in PostgreSQL at {}; start PostgreSQL there, or set DATABASE_URL to a server that runs",
            self.server
        )
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// `host:port` (database `db`, user `u`) from a connection string, without its password.
pub fn server_of(url: &str) -> String {
    let Ok(config) = url.parse::<postgres::Config>() else {
        return "the address in DATABASE_URL (which does not parse)".to_owned();
    };
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                postgres::config::Host::Unix(dir) => format!("{}/.s.PGSQL.{port}", dir.display()),
            }
        })
        .collect();
    let mut out = if hosts.is_empty() { "localhost:5432".to_owned() } else { hosts.join(", ") };
    if let Some(db) = config.get_dbname() {
        out.push_str(&format!(" (database `{db}`"));
        if let Some(user) = config.get_user() {
            out.push_str(&format!(", user `{user}`"));
        }
        out.push(')');
    }
    out
}

/// Saves every batch's counts: on the worker threads, each partition opens its own connection
/// (a `postgres::Client` cannot be shared between threads, so one opened on the driver side
/// and captured here would not compile) and writes its rows in one transaction. A failed write
/// fails the batch's job, which stops the job with the error.
pub fn save_to_postgres(counts: &DStream<(String, u64)>, url: String) -> Result<(), cargo_stream_runtime::Error> {
    counts.foreach_rdd(move |batch: &Batch<(String, u64)>, time: Time| {
        batch.foreach_partition_ref(|part| {
            if part.is_empty() {
                return;
            }
            let written = Client::connect(&url, NoTls)
                .and_then(|mut client| write_partition(&mut client, time.millis() as i64, part));
            if let Err(err) = written {
                panic!("writing {} word count(s) of batch {} ms to PostgreSQL failed: {err}", part.len(), time.millis());
            }
        });
    })
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    /// A refused connection names the server and keeps the driver's cause; no password shows.
    #[test]
    fn a_refused_connection_names_the_server_and_its_cause() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("host=127.0.0.1 port={port} user=job password=hunter2 dbname=stream connect_timeout=5");
        let err = super::create_table(&url).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&format!("127.0.0.1:{port} (database `stream`, user `job`)")), "{message}");
        // The driver's error and its own cause, the refused connection: `main` prints them all.
        let mut causes = Vec::new();
        let mut source = err.source();
        while let Some(e) = source {
            causes.push(e.to_string());
            source = e.source();
        }
        let cause = causes.join(": ");
        assert!(cause.starts_with("error connecting to server"), "{cause}");
        assert!(cause.to_lowercase().contains("connection refused"), "{cause}");
        assert!(!format!("{message}{cause}").contains("hunter2"));
    }
}
