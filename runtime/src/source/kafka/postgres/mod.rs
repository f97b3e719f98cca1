//! Exactly-once output of a Kafka direct stream into PostgreSQL (features `kafka` and
//! `postgres`), beyond what Spark gives: a batch's results *and* its offset ranges are written
//! in one transaction, guarded by the end stored for each partition: a batch replayed after a
//! crash (or run twice by a zombie driver) writes nothing, and a batch regenerated with other
//! ranges than the ones written writes only the records after the stored ends. With no
//! checkpoint, the stream starts where the stored offsets end.
//!
//! Public as `cargo_stream_runtime::kafka::postgres`.
//!
//! # The offsets table
//!
//! One row per job and partition, created if absent (`kafka_offsets` unless
//! [`OffsetStoreBuilder::table`] names another):
//!
//! ```sql
//! CREATE TABLE kafka_offsets (
//!     job TEXT NOT NULL,          -- the name given to the store (e.g. the consumer group)
//!     topic TEXT NOT NULL,
//!     partition INT NOT NULL,
//!     until_offset BIGINT NOT NULL, -- the end (exclusive) of the last batch written
//!     updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
//!     PRIMARY KEY (job, topic, partition)
//! )
//! ```
//!
//! # How a batch is written
//!
//! [`OffsetStore::write_batch`] opens a transaction (READ COMMITTED), locks the rows of the
//! batch's partitions (`SELECT ... FOR UPDATE`, in one order, so two writers of one job queue
//! up instead of deadlocking) and compares each stored end with the batch's start:
//!
//! - all equal (a partition never written counts as equal): the write given runs in the same
//!   transaction, the ends are set to the batch's `until_offset`s, and it commits:
//!   [`BatchWrite::Applied`];
//! - all at or past the batch's ends: the batch was written before (a replay after a restart
//!   from the checkpoint, a zombie, a retried commit whose answer was lost), nothing is written:
//!   [`BatchWrite::Skipped`], logged at `info`;
//! - some inside a range: the batch was regenerated with other ranges than the batches written
//!   (a restart from a checkpoint older than the last batch written); the write is given the
//!   records still to write ([`Unwritten`], from each stored end to the range's end) and must
//!   take its results from those only;
//! - a stored end before a start: the records between would never be written, so the batch
//!   is refused ([`OffsetStoreError::Gap`]), nothing written.
//!
//! Stored ends only move forward.
//!
//! A failed connection, a serialization failure (`40001`), a deadlock (`40P01`) or a lock
//! timeout (`55P03`) rolls the transaction back and runs it again, a bounded number of times
//! with back-off ([`OffsetStoreBuilder::attempts`]); the guard makes that safe.
//!
//! The results of a batch have to reach the driver to be written in one transaction: collect
//! them in `foreach_rdd` (small results, like counts per key, are what this fits).
//! [`Unwritten`] shows a whole job; `examples/src/bin/kafka_exactly_once.rs` is a word count
//! into running totals, with its SIGKILL test.

mod error;
mod guard;
#[cfg(test)]
mod tests;
mod unwritten;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use postgres::{Client, NoTls, Transaction};

use super::range::{OffsetRange, TopicPartition};
use crate::failpoint::failpoint;
pub use error::OffsetStoreError;
use error::{describe, retryable};
use guard::Verdict;
pub use unwritten::Unwritten;

/// The offsets of a job's Kafka partitions in PostgreSQL, and the one-transaction writes that
/// keep them with the results: see the [module docs](self).
///
/// `Send + Sync`: move it into `foreach_rdd`. It keeps one connection (opened again when it
/// breaks); writes through one store run one at a time.
///
/// ```no_run
/// use cargo_stream_runtime::kafka::postgres::{BatchWrite, OffsetStore};
/// use cargo_stream_runtime::kafka::OffsetRange;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = OffsetStore::connect("host=127.0.0.1 user=postgres dbname=stream", "word-count")?;
/// // Where the stream starts when there is no checkpoint: the ends of the batches written.
/// let starts = store.starting_offsets(["lines"])?;
/// # let _ = starts;
/// // In `foreach_rdd`: the batch's ranges and its results, in one transaction.
/// let ranges = [OffsetRange::new("lines", 0, 0, 3)];
/// let counts = vec![("to".to_string(), 2i64), ("be".to_string(), 1)];
/// let written = store.write_batch(&ranges, |tx, unwritten| {
///     // A batch written in part before would take its counts from `unwritten`'s records.
///     assert!(unwritten.is_whole());
///     for (word, n) in &counts {
///         tx.execute(
///             "INSERT INTO totals (word, n) VALUES ($1, $2)
///              ON CONFLICT (word) DO UPDATE SET n = totals.n + EXCLUDED.n",
///             &[word, n],
///         )?;
///     }
///     Ok(counts.len())
/// })?;
/// match written {
///     BatchWrite::Applied(rows) => println!("wrote {rows} count(s)"),
///     BatchWrite::Skipped { .. } => println!("written before: nothing to do"),
/// }
/// # Ok(())
/// # }
/// ```
pub struct OffsetStore {
    config: postgres::Config,
    server: String,
    job: String,
    table: String,
    attempts: u32,
    first_delay: Duration,
    max_delay: Duration,
    lock_timeout: Duration,
    client: Mutex<Option<Client>>,
}

/// The settings of an [`OffsetStore`], then [`connect`](OffsetStoreBuilder::connect).
///
/// ```no_run
/// use std::time::Duration;
/// use cargo_stream_runtime::kafka::postgres::OffsetStore;
///
/// # fn main() -> Result<(), cargo_stream_runtime::kafka::postgres::OffsetStoreError> {
/// let store = OffsetStore::builder("host=db.internal user=jobs dbname=stream", "word-count")
///     .table("streaming.kafka_offsets")
///     .attempts(10)
///     .lock_timeout(Duration::from_secs(5))
///     .connect()?;
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct OffsetStoreBuilder {
    url: String,
    job: String,
    table: String,
    attempts: u32,
    first_delay: Duration,
    max_delay: Duration,
    lock_timeout: Duration,
}

/// What [`OffsetStore::write_batch`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchWrite<R> {
    /// The write ran and committed with the batch's offsets; what it returned.
    Applied(R),
    /// The batch was written before (every stored end is at or past the batch's end): nothing
    /// was written.
    Skipped {
        /// The batch's non-empty ranges, each with the end stored for its partition.
        stored: Vec<(OffsetRange, i64)>,
    },
}

impl<R> BatchWrite<R> {
    /// Whether the write ran and committed.
    pub fn is_applied(&self) -> bool {
        matches!(self, BatchWrite::Applied(_))
    }
}

/// Why one attempt failed: a PostgreSQL error (retried when a retry can fix it), or the guard's
/// refusal (final).
enum Failure {
    Postgres(postgres::Error),
    Refused(OffsetStoreError),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        Failure::Postgres(e)
    }
}

impl OffsetStoreBuilder {
    /// The table of offsets: `name` or `schema.name` (lowercase letters, digits, `_`);
    /// `kafka_offsets` unless set.
    pub fn table(mut self, name: impl Into<String>) -> Self {
        self.table = name.into();
        self
    }

    /// How many times a transaction is tried in all before its error is returned (at least 1;
    /// 5 unless set). The wait between attempts starts at 100 ms and doubles up to 2 s.
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The wait after the first failed attempt (it doubles after each further one, up to
    /// `max`); 100 ms and 2 s unless set.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.first_delay = first;
        self.max_delay = max.max(first);
        self
    }

    /// How long a write waits for the lock on its partitions' offsets (held by another writer
    /// of the same job), or for any lock its statements need, before the attempt fails
    /// (`55P03`) and is retried; 30 s unless set.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Connects (retrying as [`attempts`](Self::attempts) says) and creates the offsets table
    /// if it is absent.
    ///
    /// A connection string without `connect_timeout` gets 10 s, and TCP keepalives every 30 s,
    /// so that no call waits forever on a server that went away.
    pub fn connect(self) -> Result<OffsetStore, OffsetStoreError> {
        let mut config: postgres::Config = self.url.parse().map_err(|e: postgres::Error| {
            OffsetStoreError::InvalidConfig(format!(
                "PostgreSQL connection string: {}",
                describe(&e)
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_keepalives_idle() > Duration::from_secs(30) {
            config.keepalives_idle(Duration::from_secs(30));
        }
        if self.job.is_empty() {
            return Err(OffsetStoreError::InvalidConfig(
                "the job name is empty; name the job, e.g. by its consumer group id".into(),
            ));
        }
        let table = checked_table(&self.table)?;
        let store = OffsetStore {
            server: server_of(&config),
            config,
            job: self.job,
            table,
            attempts: self.attempts,
            first_delay: self.first_delay,
            max_delay: self.max_delay,
            lock_timeout: self.lock_timeout,
            client: Mutex::new(None),
        };
        let create = store.create_table_sql();
        store.run(
            || format!("creating the offsets table `{}`", store.table),
            |client| {
                match client.batch_execute(&create) {
                    // Two jobs creating the table at once: one loses on the catalog's unique
                    // index; the table is there.
                    Err(e) if matches!(e.code().map(|c| c.code()), Some("23505" | "42P07")) => {
                        Ok(())
                    }
                    other => other.map_err(Failure::Postgres),
                }
            },
        )?;
        Ok(store)
    }
}

impl OffsetStore {
    /// Connects to the PostgreSQL server of `url` (a libpq connection string,
    /// `host=127.0.0.1 user=postgres dbname=stream`, or a `postgresql://` URL) and keeps the
    /// offsets of the job `job` (one name per job: the consumer group id is a good one) in
    /// `kafka_offsets`, created if absent. [`builder`](Self::builder) sets more.
    ///
    /// ```no_run
    /// use cargo_stream_runtime::kafka::postgres::OffsetStore;
    /// let store = OffsetStore::connect("postgresql://postgres@127.0.0.1/stream", "word-count");
    /// # let _ = store;
    /// ```
    pub fn connect(url: &str, job: &str) -> Result<OffsetStore, OffsetStoreError> {
        Self::builder(url, job).connect()
    }

    /// The settings for a store of the job `job` on the server of `url`, to change before
    /// [`connect`](OffsetStoreBuilder::connect).
    pub fn builder(url: impl Into<String>, job: impl Into<String>) -> OffsetStoreBuilder {
        OffsetStoreBuilder {
            url: url.into(),
            job: job.into(),
            table: "kafka_offsets".into(),
            attempts: 5,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            lock_timeout: Duration::from_secs(30),
        }
    }

    /// The job the offsets are stored under.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// The offsets table.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Where the stream should start on each stored partition of `topics`: the end of the last
    /// batch written. Give it to `ConsumerStrategy::with_offsets`; the checkpoint, when the job
    /// resumes from one, still takes precedence (its batches are then guarded), and partitions
    /// never written start at the group's committed offset or `auto.offset.reset`.
    ///
    /// ```no_run
    /// use cargo_stream_runtime::kafka::ConsumerStrategy;
    /// use cargo_stream_runtime::kafka::postgres::OffsetStore;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = OffsetStore::connect("host=127.0.0.1 user=postgres dbname=stream", "word-count")?;
    /// let strategy = ConsumerStrategy::subscribe(["lines"])
    ///     .with_offsets(store.starting_offsets(["lines"])?);
    /// # let _ = strategy;
    /// # Ok(())
    /// # }
    /// ```
    pub fn starting_offsets<S: AsRef<str>>(
        &self,
        topics: impl IntoIterator<Item = S>,
    ) -> Result<BTreeMap<TopicPartition, i64>, OffsetStoreError> {
        let topics: Vec<String> = topics.into_iter().map(|t| t.as_ref().to_owned()).collect();
        let sql = format!(
            "SELECT topic, partition, until_offset FROM {} WHERE job = $1 AND topic = ANY($2)",
            self.table
        );
        self.read_offsets(&sql, &[&self.job, &topics])
    }

    /// Every partition stored for the job, with its end (for a `subscribe_pattern` stream, or
    /// to look).
    pub fn stored_offsets(&self) -> Result<BTreeMap<TopicPartition, i64>, OffsetStoreError> {
        let sql = format!(
            "SELECT topic, partition, until_offset FROM {} WHERE job = $1",
            self.table
        );
        self.read_offsets(&sql, &[&self.job])
    }

    /// Writes a batch: runs `write` in a transaction that also moves the stored offsets of the
    /// batch's partitions from the `from_offset`s of `ranges` to their `until_offset`s, and
    /// commits, when PostgreSQL holds none of the batch's records yet (each stored end equals
    /// the batch's start). `write` gets the transaction and the records to write
    /// ([`Unwritten`]: the whole batch, unless part of it was written before under other
    /// ranges). A batch written before writes nothing ([`BatchWrite::Skipped`]); a stored end
    /// before the batch's start fails ([`OffsetStoreError::Gap`]); no ranges at all write
    /// nothing (skipped: there is nothing to guard the write with). See the
    /// [module docs](self). `write` runs again on each retried attempt, so it must only write
    /// through the transaction it is given.
    ///
    /// ```no_run
    /// use cargo_stream_runtime::kafka::postgres::OffsetStore;
    /// use cargo_stream_runtime::kafka::OffsetRange;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = OffsetStore::connect("host=127.0.0.1 user=postgres dbname=stream", "clicks")?;
    /// let ranges = vec![OffsetRange::new("clicks", 0, 100, 250), OffsetRange::new("clicks", 1, 90, 240)];
    /// let per_user: Vec<(String, i64)> = vec![("ada".into(), 3), ("bob".into(), 1)];
    /// let written = store.write_batch(&ranges, |tx, _unwritten| {
    ///     let (users, clicks): (Vec<&str>, Vec<i64>) =
    ///         per_user.iter().map(|(u, n)| (u.as_str(), *n)).unzip();
    ///     tx.execute(
    ///         "INSERT INTO clicks_per_user (user_id, clicks)
    ///          SELECT * FROM UNNEST($1::text[], $2::bigint[])
    ///          ON CONFLICT (user_id) DO UPDATE SET clicks = clicks_per_user.clicks + EXCLUDED.clicks",
    ///         &[&users, &clicks],
    ///     )
    /// })?;
    /// println!("applied: {}", written.is_applied());
    /// # Ok(())
    /// # }
    /// ```
    pub fn write_batch<R>(
        &self,
        ranges: &[OffsetRange],
        mut write: impl FnMut(&mut Transaction<'_>, &Unwritten) -> Result<R, postgres::Error>,
    ) -> Result<BatchWrite<R>, OffsetStoreError> {
        let ranges = self.sorted(ranges)?;
        if ranges.is_empty() {
            // Nothing to guard: writing would not be exactly-once. A direct stream's batch with
            // no partitions has nothing to write; a transformed stream's batch has no ranges.
            tracing::info!(
                job = %self.job,
                "no offset ranges given, nothing written (for a transformed stream's batch, take them from `DirectKafkaStream::offset_ranges_at(time)`)"
            );
            return Ok(BatchWrite::Skipped { stored: Vec::new() });
        }
        let what = || format!("writing batch {}", list(&ranges));
        let written = self.run(what, |client| self.try_write(client, &ranges, &mut write))?;
        if let BatchWrite::Skipped { stored } = &written {
            tracing::info!(
                job = %self.job,
                "batch {} written before (stored ends: {}): skipped, nothing written",
                list(&ranges),
                stored
                    .iter()
                    .map(|(r, end)| format!("{}-{} at {end}", r.topic, r.partition))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(written)
    }

    /// One attempt of [`write_batch`](Self::write_batch).
    fn try_write<R>(
        &self,
        client: &mut Client,
        ranges: &[OffsetRange],
        write: &mut impl FnMut(&mut Transaction<'_>, &Unwritten) -> Result<R, postgres::Error>,
    ) -> Result<BatchWrite<R>, Failure> {
        let topics: Vec<&str> = ranges.iter().map(|r| r.topic.as_str()).collect();
        let partitions: Vec<i32> = ranges.iter().map(|r| r.partition).collect();
        let froms: Vec<i64> = ranges.iter().map(|r| r.from_offset).collect();
        let untils: Vec<i64> = ranges.iter().map(|r| r.until_offset).collect();
        let mut tx = client.transaction()?;
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = {}",
            self.lock_timeout.as_millis().max(1)
        ))?;
        // A row for each partition never written, at the batch's start (so it passes the
        // guard): the insert waits for a concurrent writer's uncommitted row of the same
        // partition, then leaves it be. Rolled back with the rest when the batch is not
        // written. Partitions in one order (sorted) in every writer: no deadlock.
        tx.execute(
            &format!(
                "INSERT INTO {} (job, topic, partition, until_offset)
                 SELECT $1, t, p, f FROM UNNEST($2::text[], $3::int[], $4::bigint[]) AS u(t, p, f)
                 ON CONFLICT (job, topic, partition) DO NOTHING",
                self.table
            ),
            &[&self.job, &topics, &partitions, &froms],
        )?;
        // Lock the rows: a second writer of this batch waits here until the first commits,
        // then reads the ends it committed.
        let rows = tx.query(
            &format!(
                "SELECT o.topic, o.partition, o.until_offset FROM {} o
                 JOIN UNNEST($2::text[], $3::int[]) AS u(t, p) ON o.topic = u.t AND o.partition = u.p
                 WHERE o.job = $1 ORDER BY o.topic, o.partition FOR UPDATE OF o",
                self.table
            ),
            &[&self.job, &topics, &partitions],
        )?;
        let stored: BTreeMap<TopicPartition, i64> = rows
            .iter()
            .map(|row| {
                (
                    TopicPartition::new(row.get::<_, String>(0), row.get(1)),
                    row.get(2),
                )
            })
            .collect();
        let unwritten = match self.verdict(ranges, &stored) {
            Verdict::Write(unwritten) => Unwritten::new(unwritten, ranges),
            Verdict::Written(stored) => return Ok(BatchWrite::Skipped { stored }),
            Verdict::Gap(range, stored_until) => {
                return Err(Failure::Refused(OffsetStoreError::Gap {
                    job: self.job.clone(),
                    table: self.table.clone(),
                    topic: range.topic,
                    partition: range.partition,
                    stored_until,
                    from_offset: range.from_offset,
                    until_offset: range.until_offset,
                }));
            }
        };
        if !unwritten.is_whole() {
            tracing::info!(
                job = %self.job,
                "batch {} partly written before (under other ranges): writing {} only",
                list(ranges),
                list(unwritten.ranges())
            );
        }
        let result = write(&mut tx, &unwritten)?;
        let moved = tx.execute(
            &format!(
                "UPDATE {} o SET until_offset = GREATEST(o.until_offset, u.e), updated_at = now()
                 FROM UNNEST($2::text[], $3::int[], $4::bigint[]) AS u(t, p, e)
                 WHERE o.job = $1 AND o.topic = u.t AND o.partition = u.p",
                self.table
            ),
            &[&self.job, &topics, &partitions, &untils],
        )?;
        debug_assert_eq!(
            moved as usize,
            ranges.len(),
            "every partition's row is locked"
        );
        tx.commit()?;
        Ok(BatchWrite::Applied(result))
    }

    /// The guard's verdict; the `kafka::postgres::no_guard` failpoint (tests only, feature
    /// `failpoints`) writes every batch whole, to prove that the exactly-once test catches its loss.
    fn verdict(&self, ranges: &[OffsetRange], stored: &BTreeMap<TopicPartition, i64>) -> Verdict {
        failpoint!("kafka::postgres::no_guard", |_| Verdict::Write(
            ranges.to_vec()
        ));
        guard::check(ranges, stored)
    }

    /// The ranges sorted by partition (the lock order), refusing a partition given twice or a
    /// range that ends before it starts.
    fn sorted(&self, ranges: &[OffsetRange]) -> Result<Vec<OffsetRange>, OffsetStoreError> {
        let mut sorted = ranges.to_vec();
        sorted.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        let invalid = |message: String| OffsetStoreError::InvalidRanges {
            job: self.job.clone(),
            message,
        };
        for pair in sorted.windows(2) {
            if (&pair[0].topic, pair[0].partition) == (&pair[1].topic, pair[1].partition) {
                return Err(invalid(format!(
                    "partition {}-{} is given twice ({} and {}); give a batch's ranges, one per partition",
                    pair[0].topic, pair[0].partition, pair[0], pair[1]
                )));
            }
        }
        if let Some(r) = sorted
            .iter()
            .find(|r| r.until_offset < r.from_offset || r.from_offset < 0)
        {
            return Err(invalid(format!(
                "range {r} is not a range of offsets (it must start at 0 or more and end at or after its start)"
            )));
        }
        Ok(sorted)
    }

    fn read_offsets(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<BTreeMap<TopicPartition, i64>, OffsetStoreError> {
        self.run(
            || {
                format!(
                    "reading the offsets of job `{}` from {}",
                    self.job, self.table
                )
            },
            |client| {
                Ok(client
                    .query(sql, params)?
                    .iter()
                    .map(|row| {
                        (
                            TopicPartition::new(row.get::<_, String>(0), row.get(1)),
                            row.get(2),
                        )
                    })
                    .collect())
            },
        )
    }

    fn create_table_sql(&self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {} (
                job TEXT NOT NULL,
                topic TEXT NOT NULL,
                partition INT NOT NULL,
                until_offset BIGINT NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                PRIMARY KEY (job, topic, partition)
            )",
            self.table
        )
    }

    /// Runs `attempt` on the connection (opened first when there is none or it broke), again
    /// with back-off while it fails with an error a retry can fix, at most `attempts` times.
    fn run<T>(
        &self,
        what: impl Fn() -> String,
        mut attempt: impl FnMut(&mut Client) -> Result<T, Failure>,
    ) -> Result<T, OffsetStoreError> {
        // A panic in a write given by the user poisons the lock; the connection is still a
        // connection (its transaction was rolled back when dropped).
        let mut slot = self.client.lock().unwrap_or_else(|p| p.into_inner());
        let mut delay = self.first_delay;
        let mut tried = 1;
        loop {
            let outcome = match slot.as_mut().filter(|c| !c.is_closed()) {
                Some(client) => attempt(client).map_err(|f| (f, false)),
                None => match self.config.connect(NoTls) {
                    Ok(client) => attempt(slot.insert(client)).map_err(|f| (f, false)),
                    Err(e) => Err((Failure::Postgres(e), true)),
                },
            };
            let (failure, connecting) = match outcome {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            let e = match failure {
                Failure::Refused(refused) => return Err(refused),
                Failure::Postgres(e) => e,
            };
            if slot.as_ref().is_some_and(|c| c.is_closed()) || connecting {
                *slot = None;
            }
            if tried < self.attempts && retryable(&e) {
                tracing::warn!(
                    job = %self.job,
                    "{} on PostgreSQL at {}: attempt {tried} of {} failed ({}); retrying in {} ms",
                    what(),
                    self.server,
                    self.attempts,
                    describe(&e),
                    delay.as_millis()
                );
                std::thread::sleep(delay);
                delay = (delay * 2).min(self.max_delay);
                tried += 1;
                continue;
            }
            return Err(if connecting {
                OffsetStoreError::Connect {
                    server: self.server.clone(),
                    attempts: tried,
                    cause: describe(&e),
                }
            } else {
                OffsetStoreError::Postgres {
                    what: what(),
                    server: self.server.clone(),
                    attempts: tried,
                    code: e.code().map(|c| c.code().to_owned()),
                    cause: describe(&e),
                }
            });
        }
    }
}

/// `host:port` of the first host of `config` (the socket folder for a Unix socket), for
/// messages; never the user or password.
fn server_of(config: &postgres::Config) -> String {
    let port = config.get_ports().first().copied().unwrap_or(5432);
    match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(host)) => format!("{host}:{port}"),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(dir)) => format!("{}/.s.PGSQL.{port}", dir.display()),
        None => match config.get_hostaddrs().first() {
            Some(addr) => format!("{addr}:{port}"),
            None => format!("localhost:{port}"),
        },
    }
}

/// `name` or `schema.name` checked for SQL: lowercase letters, digits and `_` only, so that it
/// is the same quoted or not (and nothing else can be slipped into the statements).
fn checked_table(name: &str) -> Result<String, OffsetStoreError> {
    let valid = |p: &str| {
        !p.is_empty()
            && !p.starts_with(|c: char| c.is_ascii_digit())
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 || !parts.iter().all(|p| valid(p)) {
        return Err(OffsetStoreError::InvalidConfig(format!(
            "table name `{name}`: use `name` or `schema.name`, of lowercase letters, digits and `_`"
        )));
    }
    Ok(name.to_owned())
}

/// The ranges for messages: `lines-0 [0, 10), lines-1 [4, 9)`.
fn list(ranges: &[OffsetRange]) -> String {
    if ranges.is_empty() {
        return "(no partitions)".into();
    }
    ranges
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
