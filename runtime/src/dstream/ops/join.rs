//! Joins of two pair streams, batch by batch.

use crate::batch::{Data, Key};
use crate::dstream::DStream;

macro_rules! join_op {
    ($(#[$doc:meta])* $name:ident, $with:ident, $out:ty) => {
        $(#[$doc])*
        #[track_caller]
        pub fn $name<W: Data>(&self, other: &DStream<(K, W)>) -> DStream<(K, $out)> {
            self.check_join_copartitioned(other, stringify!($name));
            self.derive2(other, stringify!($name), |a, b, _| a.$name(b, None))
        }

        #[doc = concat!("As [`", stringify!($name), "`](Self::", stringify!($name), "), into `partitions` partitions.")]
        #[track_caller]
        pub fn $with<W: Data>(&self, other: &DStream<(K, W)>, partitions: usize) -> DStream<(K, $out)> {
            self.check_join_copartitioned(other, stringify!($name));
            self.derive2(other, stringify!($name), move |a, b, _| a.$name(b, Some(partitions)))
        }
    };
}

impl<K: Key, V: Data> DStream<(K, V)> {
    join_op!(
        /// Each key's values in both streams' batches of the same time, as Spark's `cogroup`.
        cogroup, cogroup_with_partitions, (Vec<V>, Vec<W>)
    );
    join_op!(
        /// Pairs every value of a key with every value of it in `other`'s batch of the same time.
        ///
        /// ```
        /// use cargo_stream_runtime::prelude::*;
        /// let ssc = StreamingContext::new(StreamingConf::new("j").master("local[2]"), Seconds(1))?;
        /// let clicks = ssc.queue_stream(vec![vec![("ad1", 1)]]);
        /// let names = ssc.queue_stream(vec![vec![("ad1", "shoes")]]);
        /// let joined: DStream<(&str, (i32, &str))> = clicks.join(&names);
        /// joined.print(10)?;
        /// # Ok::<(), cargo_stream_runtime::Error>(())
        /// ```
        join, join_with_partitions, (V, W)
    );
    join_op!(
        /// As [`join`](Self::join), keeping this stream's keys that `other` lacks, with `None`.
        left_outer_join, left_outer_join_with_partitions, (V, Option<W>)
    );
    join_op!(
        /// As [`join`](Self::join), keeping `other`'s keys that this stream lacks, with `None`.
        right_outer_join, right_outer_join_with_partitions, (Option<V>, W)
    );
    join_op!(
        /// As [`join`](Self::join), keeping the keys of either side, `None` for the missing one.
        full_outer_join, full_outer_join_with_partitions, (Option<V>, Option<W>)
    );
}
