//! `transform_sql`: a SQL query on every batch of a stream.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::batch::Data;
use crate::dstream::DStream;
use crate::error::Result;
use crate::sql::context::SqlContext;

impl<T: Data + Serialize + DeserializeOwned> DStream<T> {
    /// Runs `query` on every batch, with the batch registered as the table `table` next to
    /// `sql`'s static tables, and reads the result as `U` rows: Spark's
    /// `foreachRDD { rdd => rdd.toDF().createOrReplaceTempView(table); spark.sql(query) }` as a
    /// transformation.
    ///
    /// The columns of `table` are those of [`Rows<T>`](crate::sql::Rows): a struct's fields, a
    /// tuple's `0`, `1`, ..., or `value` for a single value. The query is checked here, before
    /// the stream starts: bad syntax, an unknown table or column, a type error, or a result
    /// that cannot be read as `U` is an [`Error::Sql`](crate::Error::Sql) naming the query. A
    /// failure while a batch runs (a value that does not cast) fails that batch's job, with the
    /// same message.
    ///
    /// # Examples
    ///
    /// Word count in SQL:
    ///
    /// ```
    /// use cargo_stream_runtime::sql::SqlContext;
    ///
    /// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    /// struct WordCount {
    ///     word: String,
    ///     count: u64,
    /// }
    ///
    /// let sql = SqlContext::new();
    /// let out = cargo_stream_runtime::example(
    ///     vec![vec!["a b a".to_string()], vec!["c".to_string()]],
    ///     |lines| {
    ///         lines
    ///             .flat_map(|l: String| l.split(' ').map(str::to_owned).collect::<Vec<_>>())
    ///             .transform_sql::<WordCount>(
    ///                 &sql,
    ///                 "words",
    ///                 "SELECT value AS word, COUNT(*) AS count FROM words GROUP BY value ORDER BY word",
    ///             )
    ///             .unwrap()
    ///     },
    /// );
    /// let wc = |w: &str, c| WordCount { word: w.into(), count: c };
    /// assert_eq!(out, vec![vec![wc("a", 2), wc("b", 1)], vec![wc("c", 1)]]);
    /// ```
    ///
    /// A mistake is found when the stream is built, naming the query and the fix:
    ///
    /// ```
    /// use cargo_stream_runtime::sql::SqlContext;
    ///
    /// let sql = SqlContext::new();
    /// cargo_stream_runtime::example(vec![vec!["a".to_string()]], |words| {
    ///     let query = "SELECT wrd, COUNT(*) FROM words GROUP BY wrd";
    ///     let Err(err) = words.transform_sql::<(String, i64)>(&sql, "words", query) else {
    ///         panic!("`wrd` is not a column");
    ///     };
    ///     let message = err.to_string();
    ///     assert!(message.starts_with("SQL query `SELECT wrd, COUNT(*) FROM words GROUP BY wrd` failed: "));
    ///     assert!(message.contains("wrd"), "{message}");
    ///     words
    /// });
    /// ```
    #[track_caller]
    pub fn transform_sql<U: Data + Serialize + DeserializeOwned>(
        &self,
        sql: &SqlContext,
        table: &str,
        query: &str,
    ) -> Result<DStream<U>> {
        let query = sql.prepare::<T, U>(table, query)?;
        Ok(self.derive("transform_sql", move |batch, _| {
            // A batch that fails fails its job, which reports this message and stops the
            // context, as any failed operation does.
            query.run(&batch).unwrap_or_else(|e| panic!("{e}"))
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::sql::SqlContext;
    use crate::{Error, ManualClock, Seconds, StreamingConf, StreamingContext, Time};

    #[test]
    fn a_batch_that_fails_fails_its_job_naming_the_query() {
        let clock = ManualClock::new();
        let conf = StreamingConf::new("sql")
            .master("local[2]")
            .manual_clock(clock.clone())
            .stop_on_signal(false);
        let ssc = StreamingContext::new(conf, Seconds(1)).unwrap();
        let query = "SELECT CAST(value AS BIGINT) AS n FROM words";
        ssc.queue_stream(vec![vec!["1".to_string()], vec!["one".to_string()]])
            .transform_sql::<i64>(&SqlContext::new(), "words", query)
            .unwrap()
            .foreach_rdd(|_, _| {})
            .unwrap();
        ssc.start().unwrap();
        clock.advance(Seconds(1));
        assert!(
            ssc.await_batch(Time::from_millis(1000), Duration::from_secs(60))
                .unwrap()
        );
        clock.advance(Seconds(1));
        // The failed job stops the context, which reports the failure.
        let err = ssc
            .await_termination_or_timeout(Duration::from_secs(60))
            .unwrap_err();
        let Error::JobFailed {
            batch_time,
            message,
            ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!(*batch_time, 2000);
        assert!(
            message.starts_with(&format!("SQL query `{query}` failed: ")),
            "{message}"
        );
        assert!(message.contains("'one'"), "{message}");
        let _ = ssc.stop(false);
    }
}
