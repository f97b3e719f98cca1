//! How far each partition's range may go at a batch: Spark's
//! `DirectKafkaInputDStream.maxMessagesPerPartition` and `clamp`, with
//! `maxRatePerPartition`, `minRatePerPartition` and the backpressure rate split by lag.

use std::collections::BTreeMap;

use super::range::TopicPartition;

/// The rate settings of a direct stream.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Records per second per partition at most (`spark.streaming.kafka.maxRatePerPartition`).
    pub(crate) max_rate_per_partition: Option<u64>,
    /// Records per second per partition at least, with backpressure
    /// (`spark.streaming.kafka.minRatePerPartition`, default 1).
    pub(crate) min_rate_per_partition: u64,
    /// The batch interval in seconds.
    pub(crate) batch_secs: f64,
}

/// The most records each partition may give the batch, `None` for no limit: the backpressure
/// `rate` (records/s for the whole stream) split across partitions by their lag, each capped
/// by the maximum rate per partition, else the maximum rate alone; times the batch interval,
/// never below the minimum rate (which Spark's code compares with the batch's count as is,
/// not times the interval: so does this).
pub(crate) fn max_messages_per_partition(
    latest: &BTreeMap<TopicPartition, i64>,
    current: &BTreeMap<TopicPartition, i64>,
    rate: Option<f64>,
    limits: &Limits,
) -> Option<BTreeMap<TopicPartition, i64>> {
    let max_rate = limits.max_rate_per_partition.map_or(0.0, |r| r as f64);
    let per_partition: BTreeMap<&TopicPartition, f64> = match rate.filter(|r| *r > 0.0) {
        Some(rate) => {
            let lag: BTreeMap<&TopicPartition, i64> = latest
                .iter()
                .map(|(tp, end)| (tp, (end - current.get(tp).copied().unwrap_or(*end)).max(0)))
                .collect();
            let total: i64 = lag.values().sum();
            lag.into_iter()
                .map(|(tp, l)| {
                    let share = if total > 0 {
                        l as f64 / total as f64 * rate
                    } else {
                        0.0
                    };
                    let limited = if max_rate > 0.0 {
                        share.min(max_rate)
                    } else {
                        share
                    };
                    (tp, limited)
                })
                .collect()
        }
        None => latest.keys().map(|tp| (tp, max_rate)).collect(),
    };
    if per_partition.values().sum::<f64>() <= 0.0 {
        return None;
    }
    let min = limits.min_rate_per_partition as i64;
    Some(
        per_partition
            .into_iter()
            .map(|(tp, limit)| (tp.clone(), ((limit * limits.batch_secs) as i64).max(min)))
            .collect(),
    )
}

/// The end of each partition's range: its latest offset, no further than `max` records past
/// its current one.
pub(crate) fn clamp(
    latest: &BTreeMap<TopicPartition, i64>,
    current: &BTreeMap<TopicPartition, i64>,
    max: Option<&BTreeMap<TopicPartition, i64>>,
) -> BTreeMap<TopicPartition, i64> {
    latest
        .iter()
        .map(|(tp, end)| {
            let from = current.get(tp).copied().unwrap_or(*end);
            let until = match max.and_then(|m| m.get(tp)) {
                Some(n) => (*end).min(from.saturating_add(*n)),
                None => *end,
            };
            (tp.clone(), until)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tps(v: &[(i32, i64)]) -> BTreeMap<TopicPartition, i64> {
        v.iter()
            .map(|(p, o)| (TopicPartition::new("t", *p), *o))
            .collect()
    }

    fn limits(max: Option<u64>, min: u64, secs: f64) -> Limits {
        Limits {
            max_rate_per_partition: max,
            min_rate_per_partition: min,
            batch_secs: secs,
        }
    }

    #[test]
    fn no_rate_no_limit() {
        let latest = tps(&[(0, 100), (1, 50)]);
        let current = tps(&[(0, 0), (1, 0)]);
        assert_eq!(
            max_messages_per_partition(&latest, &current, None, &limits(None, 1, 1.0)),
            None
        );
        assert_eq!(clamp(&latest, &current, None), latest);
    }

    #[test]
    fn max_rate_per_partition_times_the_batch_interval() {
        let latest = tps(&[(0, 100), (1, 5)]);
        let current = tps(&[(0, 10), (1, 0)]);
        let max =
            max_messages_per_partition(&latest, &current, None, &limits(Some(20), 1, 2.0)).unwrap();
        assert_eq!(max, tps(&[(0, 40), (1, 40)]));
        assert_eq!(
            clamp(&latest, &current, Some(&max)),
            tps(&[(0, 50), (1, 5)])
        );
    }

    #[test]
    fn backpressure_rate_is_split_by_lag_and_capped() {
        // Lags 300 and 100: a rate of 200/s gives 150 and 50; the cap of 100 holds the first.
        let latest = tps(&[(0, 300), (1, 100)]);
        let current = tps(&[(0, 0), (1, 0)]);
        let max =
            max_messages_per_partition(&latest, &current, Some(200.0), &limits(Some(100), 1, 1.0))
                .unwrap();
        assert_eq!(max, tps(&[(0, 100), (1, 50)]));
        // Without a cap, the split alone; a partition without lag still gets the minimum.
        let latest = tps(&[(0, 300), (1, 0)]);
        let max = max_messages_per_partition(&latest, &current, Some(200.0), &limits(None, 5, 1.0))
            .unwrap();
        assert_eq!(max, tps(&[(0, 200), (1, 5)]));
    }
}
