//! [`SqlContext`]: the static tables, functions and settings every SQL query of a job sees
//! (Spark's `SparkSession` as seen from a streaming job).

use crate::sync::RwLockExt;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{SessionConfig, SessionContext};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::batch::{Batch, Data};
use crate::error::{Error, Result};
use crate::sql::query::Query;
use crate::sql::rows::Rows;

/// The tables, functions and settings that every SQL query of a job sees: register static
/// tables (a blacklist, a dimension table) here, then run queries on batches with
/// [`DStream::transform_sql`](crate::DStream::transform_sql) or [`SqlContext::query`].
///
/// Cheap to clone; every clone is the same context. Registering a table under a name that is
/// taken replaces it, and the queries already built see the new rows from their next batch on
/// (reloading a blacklist needs no restart).
///
/// # Examples
///
/// A blacklist joined to every batch (the Spark Streaming guide's `transform` example, in SQL):
///
/// ```
/// use cargo_stream_runtime::sql::SqlContext;
///
/// let sql = SqlContext::new();
/// sql.register_rows("blacklist", &["spam".to_string()])?;
/// let out = cargo_stream_runtime::example(
///     vec![vec!["ham".to_string(), "spam".to_string(), "eggs".to_string()]],
///     |words| {
///         words
///             .transform_sql::<String>(
///                 &sql,
///                 "words",
///                 "SELECT value FROM words WHERE value NOT IN (SELECT value FROM blacklist) ORDER BY value",
///             )
///             .unwrap()
///     },
/// );
/// assert_eq!(out, vec![vec!["eggs".to_string(), "ham".to_string()]]);
/// # Ok::<(), cargo_stream_runtime::Error>(())
/// ```
#[derive(Clone)]
pub struct SqlContext {
    inner: Arc<Inner>,
}

struct Inner {
    /// Holds the settings and functions; queries start from a copy of its state.
    session: SessionContext,
    /// The static tables, by name.
    tables: RwLock<BTreeMap<String, Arc<dyn TableProvider>>>,
}

impl std::fmt::Debug for SqlContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlContext")
            .field("tables", &self.table_names())
            .finish_non_exhaustive()
    }
}

impl Default for SqlContext {
    fn default() -> Self {
        Self::new()
    }
}

impl SqlContext {
    /// A context with DataFusion's default settings: queries run with one partition per core.
    pub fn new() -> Self {
        Self::with_config(SessionConfig::new())
    }

    /// A context with the given DataFusion settings (for example
    /// `SessionConfig::new().with_target_partitions(4)`).
    pub fn with_config(config: SessionConfig) -> Self {
        SqlContext {
            inner: Arc::new(Inner {
                session: SessionContext::new_with_config(config),
                tables: RwLock::new(BTreeMap::new()),
            }),
        }
    }

    /// Registers `rows` as the static table `name`, with the columns of [`Rows<R>`].
    ///
    /// ```
    /// use cargo_stream_runtime::sql::SqlContext;
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Country { code: String, name: String }
    ///
    /// let sql = SqlContext::new();
    /// sql.register_rows("countries", &[Country { code: "fr".into(), name: "France".into() }])?;
    /// assert_eq!(sql.table_names(), vec!["countries"]);
    /// # Ok::<(), cargo_stream_runtime::Error>(())
    /// ```
    pub fn register_rows<R: Serialize + DeserializeOwned>(
        &self,
        name: &str,
        rows: &[R],
    ) -> Result<()> {
        let shape = Rows::<R>::new()?;
        let batch = shape.to_record_batch(rows)?;
        self.register_record_batches(name, shape.schema(), vec![batch])
    }

    /// Registers Arrow record batches of `schema` as the static table `name`.
    pub fn register_record_batches(
        &self,
        name: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<()> {
        let table = MemTable::try_new(schema, vec![batches]).map_err(|e| Error::SqlTable {
            table: name.to_owned(),
            message: e.to_string(),
        })?;
        self.register_table(name, Arc::new(table))
    }

    /// Registers any DataFusion table (a file scan, a view, your own provider) as `name`.
    pub fn register_table(&self, name: &str, table: Arc<dyn TableProvider>) -> Result<()> {
        if name.is_empty() || name.contains(['.', '"', ' ']) {
            return Err(Error::SqlTable {
                table: name.to_owned(),
                message: "a table name is one plain identifier (no dots, quotes or spaces)".into(),
            });
        }
        self.inner
            .tables
            .write_locked()
            .insert(name.to_owned(), table);
        Ok(())
    }

    /// Removes the static table `name`; whether it was there.
    pub fn deregister_table(&self, name: &str) -> bool {
        self.inner.tables.write_locked().remove(name).is_some()
    }

    /// The static tables' names, sorted.
    pub fn table_names(&self) -> Vec<String> {
        self.tables().into_iter().map(|(n, _)| n).collect()
    }

    /// Registers a scalar function for the queries built after this call.
    pub fn register_udf(&self, udf: ScalarUDF) {
        self.inner.session.register_udf(udf);
    }

    /// The DataFusion session holding this context's settings and functions, for what this
    /// type does not wrap (aggregate functions, configuration look-ups). Tables registered on
    /// it directly are not seen by the queries: use [`register_table`](Self::register_table).
    pub fn session(&self) -> &SessionContext {
        &self.inner.session
    }

    /// Checks `query` against the batch table `table` of `T` rows and the static tables, and
    /// returns it ready to run on batches, its result read as `U` rows.
    ///
    /// Fails, naming the query, on bad syntax, unknown tables or columns, type errors, a
    /// statement that is not a query (DDL, DML, `SET`), or a result `U` cannot be read from.
    pub fn prepare<T, U>(&self, table: &str, query: &str) -> Result<Query<T, U>>
    where
        T: Serialize + DeserializeOwned,
        U: Serialize + DeserializeOwned,
    {
        Query::new(self, table, query)
    }

    /// Runs `query` once on `batch`, registered as the table `table`: Spark's
    /// `rdd.toDF().createOrReplaceTempView(table); spark.sql(query)` inside `transform` or
    /// `foreach_rdd`. To run the same query on every batch, [`prepare`](Self::prepare) it once.
    ///
    /// ```
    /// use cargo_stream_runtime::prelude::*;
    /// use cargo_stream_runtime::sql::SqlContext;
    ///
    /// let sql = SqlContext::new();
    /// let out = cargo_stream_runtime::example(vec![vec![3u32, 1, 2]], move |s| {
    ///     s.transform(move |b: Batch<u32>| {
    ///         sql.query::<u32, u64>(&b, "n", "SELECT SUM(value) FROM n").unwrap()
    ///     })
    /// });
    /// assert_eq!(out, vec![vec![6]]);
    /// ```
    pub fn query<T, U>(&self, batch: &Batch<T>, table: &str, query: &str) -> Result<Batch<U>>
    where
        T: Data + Serialize + DeserializeOwned,
        U: Data + Serialize + DeserializeOwned,
    {
        self.prepare::<T, U>(table, query)?.run(batch)
    }

    pub(crate) fn tables(&self) -> Vec<(String, Arc<dyn TableProvider>)> {
        self.inner
            .tables
            .read_locked()
            .iter()
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect()
    }
}
