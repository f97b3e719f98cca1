//! Writing word counts to PostgreSQL from the worker threads: one transaction per partition,
//! keyed by batch time so that a replayed batch overwrites instead of counting twice, and
//! retried with back-off when the server cannot be reached.

use std::time::Duration;

use postgres::{Client, NoTls};
use r2d2_postgres::PostgresConnectionManager;

/// The table the counts go to: one row per batch and word.
pub(crate) const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS word_counts (
    batch_time BIGINT NOT NULL,
    word TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (batch_time, word)
)";

/// An upsert of a whole partition in one statement (one round trip): replaying a batch
/// writes the same rows again, so a restart after a crash does not count twice.
const UPSERT: &str = "INSERT INTO word_counts (batch_time, word, count)
    SELECT $1, w, c FROM UNNEST($2::text[], $3::bigint[]) AS t(w, c)
    ON CONFLICT (batch_time, word) DO UPDATE SET count = EXCLUDED.count";

/// A pool of connections, shared by the worker threads (`r2d2::Pool` is `Send + Sync`).
pub(crate) type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// How often and how patiently a write is retried.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retry {
    /// Attempts in all, the first included.
    pub(crate) attempts: u32,
    /// The wait after the first failure; it doubles after each further one.
    pub(crate) first_delay: Duration,
    /// The longest wait.
    pub(crate) max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 6,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

/// Where partitions get their connection.
#[derive(Clone)]
pub(crate) enum Connections {
    /// A new connection per partition (and per attempt), to this libpq URL.
    PerPartition(String),
    /// A connection taken from the pool for the partition.
    Pooled(Pool),
}

impl Connections {
    /// A pool of at most `size` connections to `url`, opened as partitions need them.
    pub(crate) fn pooled(url: &str, size: u32) -> Result<Connections, String> {
        let config = url
            .parse()
            .map_err(|e| format!("invalid PostgreSQL URL `{url}`: {e}"))?;
        let pool = r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(5))
            .build_unchecked(PostgresConnectionManager::new(config, NoTls));
        Ok(Connections::Pooled(pool))
    }

    /// Runs `f` on a connection, retrying with back-off while the error is one a retry can
    /// fix (the server unreachable or restarting, a serialization failure). The final error
    /// names what was done, the attempts, and the cause.
    pub(crate) fn with_client<T>(
        &self,
        retry: Retry,
        what: &str,
        mut f: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, String> {
        let mut delay = retry.first_delay;
        let mut attempt = 1;
        loop {
            let result = match self {
                Connections::PerPartition(url) => Client::connect(url, NoTls)
                    .map_err(Failure::Postgres)
                    .and_then(|mut c| f(&mut c).map_err(Failure::Postgres)),
                Connections::Pooled(pool) => pool
                    .get()
                    .map_err(|e| Failure::Pool(e.to_string()))
                    // A connection that broke is closed, and the pool drops it on return
                    // (`has_broken`), so the next attempt gets a new one.
                    .and_then(|mut c| f(&mut c).map_err(Failure::Postgres)),
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if attempt < retry.attempts && e.retryable() => {
                    eprintln!(
                        "warning: {what}: attempt {attempt} of {} failed ({e}); retrying in {} ms",
                        retry.attempts,
                        delay.as_millis()
                    );
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(retry.max_delay);
                    attempt += 1;
                }
                Err(e) => {
                    return Err(format!("{what} failed after {attempt} attempt(s): {e}"));
                }
            }
        }
    }
}

/// Why an attempt failed.
enum Failure {
    Postgres(postgres::Error),
    Pool(String),
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Pool(_) => true,
            Failure::Postgres(e) => match e.as_db_error() {
                // No answer from the server: unreachable, closed, timed out.
                None => true,
                Some(db) => {
                    let code = db.code().code();
                    // Connection exceptions, shutting down, serialization failure, deadlock.
                    code.starts_with("08")
                        || code.starts_with("57P")
                        || code == "40001"
                        || code == "40P01"
                }
            },
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Postgres(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}: {}", db.code().code(), db.message()),
                None => {
                    // The cause (connection refused, reset) is the useful part.
                    write!(f, "{e}")?;
                    let mut cause = std::error::Error::source(e);
                    while let Some(c) = cause {
                        if !e.to_string().contains(&c.to_string()) {
                            write!(f, ": {c}")?;
                        }
                        cause = c.source();
                    }
                    Ok(())
                }
            },
            Failure::Pool(e) => write!(f, "no connection from the pool: {e}"),
        }
    }
}

/// Creates the `word_counts` table if it is not there.
pub(crate) fn create_table(client: &mut Client) -> Result<(), postgres::Error> {
    client.batch_execute(CREATE_TABLE)
}

/// Writes one partition's counts for `batch_time` in one transaction; the number of rows.
pub(crate) fn write_partition(
    client: &mut Client,
    batch_time: u64,
    counts: &[(String, u64)],
) -> Result<u64, postgres::Error> {
    if counts.is_empty() {
        return Ok(0);
    }
    let words: Vec<&str> = counts.iter().map(|(w, _)| w.as_str()).collect();
    let totals: Vec<i64> = counts.iter().map(|(_, c)| *c as i64).collect();
    let mut tx = client.transaction()?;
    let rows = tx.execute(UPSERT, &[&(batch_time as i64), &words, &totals])?;
    tx.commit()?;
    Ok(rows)
}
