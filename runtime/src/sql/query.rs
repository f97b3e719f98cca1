//! [`Query`]: one SQL query, checked once, run on batch after batch.

use crate::sync::LockExt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemoryCatalogProviderList, MemorySchemaProvider,
    TableProvider,
};
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::batch::{Batch, Data};
use crate::error::{Error, Result};
use crate::sql::block_on::block_on;
use crate::sql::context::SqlContext;
use crate::sql::rows::{Rows, short_type_name};

/// A SQL query over a batch table of `T` rows and the static tables of a [`SqlContext`], its
/// result read as `U` rows. Made by [`SqlContext::prepare`], which checks it; run with
/// [`run`](Self::run) on each batch.
///
/// Each run registers the batch (one Arrow record batch per partition, converted on the worker
/// threads) as the table, plans the query against it and the static tables as they are now,
/// executes it on DataFusion's threads and reads each result partition back into a partition
/// of the output batch.
///
/// # Examples
///
/// ```
/// use cargo_stream_runtime::prelude::*;
/// use cargo_stream_runtime::sql::SqlContext;
///
/// let query = SqlContext::new()
///     .prepare::<String, (String, u64)>(
///         "words",
///         "SELECT value, COUNT(*) FROM words GROUP BY value ORDER BY value",
///     )?;
/// let out = cargo_stream_runtime::example(
///     vec![vec!["b".to_string(), "a".to_string(), "b".to_string()]],
///     move |s| s.transform(move |b: Batch<String>| query.run(&b).unwrap()),
/// );
/// assert_eq!(out, vec![vec![("a".to_string(), 1), ("b".to_string(), 2)]]);
/// # Ok::<(), cargo_stream_runtime::Error>(())
/// ```
pub struct Query<T, U> {
    inner: Arc<Inner<T, U>>,
}

impl<T, U> Clone for Query<T, U> {
    fn clone(&self) -> Self {
        Query {
            inner: self.inner.clone(),
        }
    }
}

impl<T, U> std::fmt::Debug for Query<T, U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query")
            .field("table", &self.inner.table)
            .field("query", &self.inner.query)
            .finish_non_exhaustive()
    }
}

struct Inner<T, U> {
    sql: SqlContext,
    table: String,
    query: String,
    input: Rows<T>,
    output: Rows<U>,
    /// This query's own session: its catalog holds the batch table and, per run, the static
    /// tables, so queries of different streams never see each other's batches. Locked for a
    /// whole run, as the batch table is swapped in and out.
    session: Mutex<SessionContext>,
}

impl<T, U> Query<T, U>
where
    T: Serialize + DeserializeOwned,
    U: Serialize + DeserializeOwned,
{
    pub(crate) fn new(sql: &SqlContext, table: &str, query: &str) -> Result<Self> {
        let fail = |message: String| Error::Sql {
            query: query.to_owned(),
            message,
        };
        let input = Rows::<T>::new()?;
        let output = Rows::<U>::new()?;
        if sql.table_names().iter().any(|t| t == table) {
            return Err(fail(format!(
                "the batch table `{table}` has the name of a static table; rename one of them"
            )));
        }
        let session = isolated_session(sql.session()).map_err(&fail)?;
        let inner = Inner {
            sql: sql.clone(),
            table: table.to_owned(),
            query: query.to_owned(),
            input,
            output,
            session: Mutex::new(session),
        };
        // Plan once on an empty batch: syntax, names and types are checked now, before the
        // stream starts, and the result's columns against `U`.
        let empty = RecordBatch::new_empty(inner.input.schema());
        let schema = inner
            .with_tables(vec![empty], |ctx| {
                block_on(async {
                    let df = ctx
                        .sql_with_options(&inner.query, statements_not_allowed())
                        .await?;
                    Ok(df.schema().as_arrow().clone())
                })
            })
            .map_err(|e: datafusion::error::DataFusionError| fail(df_message(&e)))?;
        inner.output.check_readable(&schema).map_err(|m| {
            fail(format!(
                "its result cannot be read as `{}`: {m}",
                short_type_name::<U>()
            ))
        })?;
        Ok(Query {
            inner: Arc::new(inner),
        })
    }

    /// The query as given.
    pub fn sql(&self) -> &str {
        &self.inner.query
    }

    /// The name the batch is registered under.
    pub fn table(&self) -> &str {
        &self.inner.table
    }
}

impl<T, U> Query<T, U>
where
    T: Data + Serialize + DeserializeOwned,
    U: Data + Serialize + DeserializeOwned,
{
    /// Runs the query on `batch`: one output partition per DataFusion result partition.
    ///
    /// Errors at run time (a failed cast of a value, a division by zero) name the query.
    pub fn run(&self, batch: &Batch<T>) -> Result<Batch<U>> {
        use rayon::prelude::*;
        let inner = &*self.inner;
        let fail = |message: String| Error::Sql {
            query: inner.query.clone(),
            message,
        };
        let exec = batch.exec.clone();
        let input: Vec<RecordBatch> = exec.install(|| {
            batch
                .parts
                .par_iter()
                .map(|p| inner.input.to_record_batch(p))
                .collect::<Result<_>>()
        })?;
        let result = inner
            .with_tables(input, |ctx| {
                block_on(async {
                    ctx.sql_with_options(&inner.query, statements_not_allowed())
                        .await?
                        .collect_partitioned()
                        .await
                })
            })
            .map_err(|e| fail(df_message(&e)))?;
        let parts = exec.install(|| {
            result
                .into_par_iter()
                .map(|part| -> Result<Vec<U>> {
                    let mut rows = Vec::with_capacity(part.iter().map(|b| b.num_rows()).sum());
                    for b in &part {
                        rows.extend(inner.output.from_record_batch(b).map_err(|e| {
                            fail(format!(
                                "its result cannot be read as `{}`: {e}",
                                short_type_name::<U>()
                            ))
                        })?);
                    }
                    Ok(rows)
                })
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(Batch::new(parts, exec))
    }
}

impl<T, U> Inner<T, U> {
    /// Runs `f` on this query's session with `partitions` as the batch table and the static
    /// tables as they are now, then drops the batch so that its rows are not kept.
    fn with_tables<R>(
        &self,
        partitions: Vec<RecordBatch>,
        f: impl FnOnce(&SessionContext) -> datafusion::error::Result<R>,
    ) -> datafusion::error::Result<R>
    where
        T: Serialize + DeserializeOwned,
    {
        let ctx = self.session.locked();
        let schema = self.input.schema();
        let partitions = if partitions.is_empty() {
            vec![vec![RecordBatch::new_empty(schema.clone())]]
        } else {
            partitions.into_iter().map(|b| vec![b]).collect()
        };
        let batch: Arc<dyn TableProvider> = Arc::new(MemTable::try_new(schema, partitions)?);
        let mut tables = self.sql.tables();
        tables.push((self.table.clone(), batch));
        for (name, table) in &tables {
            ctx.deregister_table(name.as_str())?;
            ctx.register_table(name.as_str(), table.clone())?;
        }
        let out = f(&ctx);
        ctx.deregister_table(self.table.as_str())?;
        out
    }
}

/// A session with the settings and functions of `base` and an empty catalog of its own.
fn isolated_session(base: &SessionContext) -> std::result::Result<SessionContext, String> {
    let state = SessionStateBuilder::new_from_existing(base.state())
        .with_catalog_list(Arc::new(MemoryCatalogProviderList::new()))
        .build();
    let options = state.config().options().catalog.clone();
    let catalog = MemoryCatalogProvider::new();
    catalog
        .register_schema(
            &options.default_schema,
            Arc::new(MemorySchemaProvider::new()),
        )
        .map_err(|e| e.to_string())?;
    state
        .catalog_list()
        .register_catalog(options.default_catalog, Arc::new(catalog));
    Ok(SessionContext::new_with_state(state))
}

/// A per-batch query is a query: DDL, DML and `SET` are refused when it is checked.
fn statements_not_allowed() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// DataFusion's message without its backtrace or nested "context" noise.
fn df_message(e: &datafusion::error::DataFusionError) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Executor;

    #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Click {
        user: String,
        page: i32,
    }

    fn clicks() -> Batch<Click> {
        let c = |user: &str, page| Click {
            user: user.into(),
            page,
        };
        Batch::new(
            vec![vec![c("ann", 1), c("bob", 2)], vec![c("ann", 3)]],
            Executor::new(2, 2),
        )
    }

    fn error(query: &str) -> String {
        SqlContext::new()
            .prepare::<Click, (String, i64)>("clicks", query)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn runs_on_every_partition() {
        let sql = SqlContext::new();
        let q = sql
            .prepare::<Click, (String, i64)>(
                "clicks",
                "SELECT user, SUM(page) FROM clicks GROUP BY user ORDER BY user",
            )
            .unwrap();
        let out = q.run(&clicks()).unwrap().collect();
        assert_eq!(out, vec![("ann".into(), 4), ("bob".into(), 2)]);
        // The same query again, on an empty batch.
        let empty = Batch::new(Vec::<Vec<Click>>::new(), Executor::new(1, 1));
        assert!(q.run(&empty).unwrap().collect().is_empty());
    }

    #[test]
    fn errors_name_the_query_and_the_mistake() {
        let e = error("SELEC user FROM clicks");
        assert!(
            e.starts_with("SQL query `SELEC user FROM clicks` failed: "),
            "{e}"
        );
        let e = error("SELECT usr, page FROM clicks");
        assert!(e.contains("usr"), "{e}");
        let e = error("SELECT user, page FROM clickz");
        assert!(e.contains("clickz"), "{e}");
        let e = error("SELECT user, page + 'x' FROM clicks");
        assert!(e.starts_with("SQL query `SELECT user, page + 'x'"), "{e}");
        let e = error("SELECT user FROM clicks");
        assert!(
            e.ends_with(
                "its result cannot be read as `(String, i64)`: the result has 1 column(s) (`user`) but `(String, i64)` reads 2 by position"
            ),
            "{e}"
        );
        let e = error("CREATE TABLE t AS SELECT * FROM clicks");
        assert!(e.contains("not supported") || e.contains("DDL"), "{e}");
    }

    #[test]
    fn a_failing_batch_names_the_query() {
        let q = SqlContext::new()
            .prepare::<Click, (String, i64)>(
                "clicks",
                "SELECT user AS u, CAST(user AS BIGINT) AS n FROM clicks",
            )
            .unwrap();
        let e = q.run(&clicks()).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "SQL query `SELECT user AS u, CAST(user AS BIGINT) AS n FROM clicks` failed: "
            ),
            "{e}"
        );
    }

    #[test]
    fn static_tables_are_joined_and_reloads_are_seen() {
        let sql = SqlContext::new();
        sql.register_rows("banned", &["bob".to_string()]).unwrap();
        let q = sql
            .prepare::<Click, Click>(
                "clicks",
                "SELECT * FROM clicks WHERE user NOT IN (SELECT value FROM banned) ORDER BY page",
            )
            .unwrap();
        let users = |b: Batch<Click>| b.collect().into_iter().map(|c| c.user).collect::<Vec<_>>();
        assert_eq!(users(q.run(&clicks()).unwrap()), vec!["ann", "ann"]);
        sql.register_rows("banned", &["ann".to_string()]).unwrap();
        assert_eq!(users(q.run(&clicks()).unwrap()), vec!["bob"]);
        // The batch table may not shadow a static one.
        let e = sql
            .prepare::<Click, Click>("banned", "SELECT * FROM banned")
            .unwrap_err()
            .to_string();
        assert!(e.contains("rename one of them"), "{e}");
    }

    #[test]
    fn two_queries_keep_their_batches_apart() {
        let sql = SqlContext::new();
        let a = sql
            .prepare::<Click, i64>("t", "SELECT COUNT(*) FROM t")
            .unwrap();
        let b = sql
            .prepare::<i64, i64>("t", "SELECT SUM(value) FROM t")
            .unwrap();
        let nums = Batch::new(vec![vec![10i64, 20]], Executor::new(1, 1));
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..20 {
                    assert_eq!(a.run(&clicks()).unwrap().collect(), vec![3]);
                }
            });
            for _ in 0..20 {
                assert_eq!(b.run(&nums).unwrap().collect(), vec![30]);
            }
        });
    }
}
