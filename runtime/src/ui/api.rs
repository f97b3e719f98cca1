//! Spark's streaming REST API (`/api/v1/applications/{app}/streaming/...`): its JSON shapes,
//! with Spark's field names (`streaming/src/main/scala/org/apache/spark/status/api/v1/
//! streaming/api.scala`), dates as Spark writes them (`2026-11-29T13:14:00.000GMT`), and absent
//! values left out as Spark's Jackson writer does.

use serde::{Deserialize, Serialize};

use crate::metrics::BatchInfo as Batch;
use crate::ui::status::Stats;

/// One application (`/api/v1/applications`), as Spark's `ApplicationInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationInfo {
    /// The application id (`local-<start ms>`).
    pub id: String,
    /// The application name (`StreamingConf::new`).
    pub name: String,
    /// Its one attempt.
    pub attempts: Vec<ApplicationAttemptInfo>,
}

/// An attempt of an application, as Spark's `ApplicationAttemptInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationAttemptInfo {
    /// When it started.
    pub start_time: String,
    /// When it ended (`1969-12-31T23:59:59.999GMT`, Spark's -1, while it runs).
    pub end_time: String,
    /// The newest event.
    pub last_updated: String,
    /// Milliseconds it ran, or has been running.
    pub duration: u64,
    /// The user running it (`USER`).
    pub spark_user: String,
    /// Whether it ended.
    pub completed: bool,
    /// The runtime's version.
    pub app_spark_version: String,
    /// `start_time` in ms since the Unix epoch.
    pub start_time_epoch: i64,
    /// `end_time` in ms since the Unix epoch (-1 while it runs).
    pub end_time_epoch: i64,
    /// `last_updated` in ms since the Unix epoch.
    pub last_updated_epoch: i64,
}

/// `/streaming/statistics`, as Spark's `StreamingStatistics`: averages over the retained
/// completed batches, in records per second and milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamingStatistics {
    /// When the streaming context started.
    pub start_time: String,
    /// The batch interval in ms.
    pub batch_duration: u64,
    /// Receivers of the job.
    pub num_receivers: usize,
    /// Receivers running.
    pub num_active_receivers: usize,
    /// Receivers not running.
    pub num_inactive_receivers: usize,
    /// Batches completed since the start (failed ones included, as Spark counts them).
    pub num_total_completed_batches: u64,
    /// Completed batches kept for the page and the API (the newest 1000).
    pub num_retained_completed_batches: u64,
    /// Batches waiting or processing.
    pub num_active_batches: u64,
    /// Records of the completed batches.
    pub num_processed_records: u64,
    /// Records of the batches that started.
    pub num_received_records: u64,
    /// Mean input rate of the retained batches, records per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_input_rate: Option<f64>,
    /// Mean scheduling delay, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_scheduling_delay: Option<u64>,
    /// Mean processing time, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_processing_time: Option<u64>,
    /// Mean total delay, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_total_delay: Option<u64>,
}

/// `/streaming/receivers`, as Spark's `ReceiverInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverInfo {
    /// The input stream id of the receiver's stream.
    pub stream_id: usize,
    /// The receiver's name.
    pub stream_name: String,
    /// Whether it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    /// Where it runs: `driver` (receivers run in the job's process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<String>,
    /// The host it runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_host: Option<String>,
    /// When it last reported an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_time: Option<String>,
    /// Its last error's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_message: Option<String>,
    /// Its last error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Mean records per second over the retained batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_event_rate: Option<f64>,
    /// `[batch time ms, records per second]` per retained batch.
    pub event_rates: Vec<(u64, f64)>,
}

/// `/streaming/batches`, as Spark's `BatchInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchInfo {
    /// The batch time in ms.
    pub batch_id: u64,
    /// The batch time.
    pub batch_time: String,
    /// `QUEUED`, `PROCESSING` or `COMPLETED`.
    pub status: String,
    /// The batch interval in ms.
    pub batch_duration: u64,
    /// Records of the batch.
    pub input_size: u64,
    /// Ms from the batch time to the start of processing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_delay: Option<u64>,
    /// Ms of processing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_time: Option<u64>,
    /// Ms from the batch time to the end of processing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_delay: Option<u64>,
    /// Output operations running.
    pub num_active_output_ops: usize,
    /// Output operations that succeeded.
    pub num_completed_output_ops: usize,
    /// Output operations that failed.
    pub num_failed_output_ops: usize,
    /// Output operations of the job.
    pub num_total_output_ops: usize,
    /// Why the batch failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure_reason: Option<String>,
}

/// `/streaming/batches/{id}/operations`, as Spark's `OutputOperationInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputOperationInfo {
    /// The operation's id.
    pub output_op_id: usize,
    /// The operation (`print`, `foreach_rdd`).
    pub name: String,
    /// The operation and where the job registered it.
    pub description: String,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Ms it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Spark job ids: none here (batches run in the job's process, not as Spark jobs).
    pub job_ids: Vec<u64>,
}

/// A batch's status, as Spark's `BatchStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchStatus {
    Queued,
    Processing,
    Completed,
}

impl BatchStatus {
    pub(crate) fn parse(s: &str) -> Option<BatchStatus> {
        match s.to_ascii_uppercase().as_str() {
            "QUEUED" => Some(BatchStatus::Queued),
            "PROCESSING" => Some(BatchStatus::Processing),
            "COMPLETED" => Some(BatchStatus::Completed),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            BatchStatus::Queued => "QUEUED",
            BatchStatus::Processing => "PROCESSING",
            BatchStatus::Completed => "COMPLETED",
        }
    }
}

/// A time in ms since the Unix epoch as Spark's REST API writes dates:
/// `yyyy-MM-dd'T'HH:mm:ss.SSS'GMT'`.
pub(crate) fn date(ms: i64) -> String {
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{milli:03}GMT",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn mean_ms(values: impl Iterator<Item = std::time::Duration>) -> Option<u64> {
    let v: Vec<u64> = values.map(|d| d.as_millis() as u64).collect();
    (!v.is_empty()).then(|| v.iter().sum::<u64>() / v.len() as u64)
}

impl Stats {
    /// `/api/v1/applications`.
    pub(crate) fn application(&self) -> ApplicationInfo {
        let start = self.start_time.unwrap_or(self.last_updated) as i64;
        let end = self.stopped_at.map_or(-1, |t| t as i64);
        let last = self.last_updated as i64;
        ApplicationInfo {
            id: self.app_id.clone(),
            name: self.app_name.clone(),
            attempts: vec![ApplicationAttemptInfo {
                start_time: date(start),
                end_time: date(end),
                last_updated: date(last),
                duration: (if end >= 0 { end } else { last })
                    .saturating_sub(start)
                    .max(0) as u64,
                spark_user: std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
                completed: self.stopped_at.is_some(),
                app_spark_version: env!("CARGO_PKG_VERSION").into(),
                start_time_epoch: start,
                end_time_epoch: end,
                last_updated_epoch: last,
            }],
        }
    }

    /// `/streaming/statistics`, computed as Spark's `StreamingStatisticsResource`.
    pub(crate) fn statistics(&self) -> StreamingStatistics {
        let batches = &self.completed;
        let active = self.receivers.values().filter(|r| r.active).count();
        StreamingStatistics {
            start_time: date(self.start_time.unwrap_or(0) as i64),
            batch_duration: self.batch_ms,
            num_receivers: self.receivers.len(),
            num_active_receivers: active,
            num_inactive_receivers: self.receivers.len() - active,
            num_total_completed_batches: self.total_completed,
            num_retained_completed_batches: batches.len() as u64,
            num_active_batches: (self.waiting.len() + self.running.len()) as u64,
            num_processed_records: self.total_processed_records,
            num_received_records: self.total_received_records,
            avg_input_rate: (!batches.is_empty()).then(|| {
                batches
                    .iter()
                    .map(|b| self.rate(b.num_records))
                    .sum::<f64>()
                    / batches.len() as f64
            }),
            avg_scheduling_delay: mean_ms(batches.iter().filter_map(Batch::scheduling_delay)),
            avg_processing_time: mean_ms(batches.iter().filter_map(Batch::processing_delay)),
            avg_total_delay: mean_ms(batches.iter().filter_map(Batch::total_delay)),
        }
    }

    /// `/streaming/receivers`, by stream id.
    pub(crate) fn receiver_infos(&self) -> Vec<ReceiverInfo> {
        self.receivers
            .iter()
            .map(|(&id, r)| {
                let rates = self.event_rates(id);
                ReceiverInfo {
                    stream_id: id,
                    stream_name: r.name.clone(),
                    is_active: Some(r.active),
                    executor_id: Some("driver".into()),
                    executor_host: Some("localhost".into()),
                    last_error_time: r.last_error.as_ref().map(|(t, _)| date(*t as i64)),
                    last_error_message: r.last_error.as_ref().map(|(_, m)| m.clone()),
                    last_error: r.last_error.as_ref().map(|(_, m)| m.clone()),
                    avg_event_rate: (!rates.is_empty())
                        .then(|| rates.iter().map(|r| r.1).sum::<f64>() / rates.len() as f64),
                    event_rates: rates,
                }
            })
            .collect()
    }

    /// Every batch the API knows, newest first, with its status.
    pub(crate) fn batches(&self) -> Vec<(BatchStatus, &Batch)> {
        let mut all: Vec<(BatchStatus, &Batch)> = self
            .waiting
            .values()
            .map(|b| (BatchStatus::Queued, b))
            .chain(self.running.values().map(|b| (BatchStatus::Processing, b)))
            .chain(self.completed.iter().map(|b| (BatchStatus::Completed, b)))
            .collect();
        all.sort_by_key(|b| std::cmp::Reverse(b.1.batch_time));
        all
    }

    /// One batch in Spark's shape.
    pub(crate) fn batch_info(&self, status: BatchStatus, b: &Batch) -> BatchInfo {
        let ops = &b.output_operation_infos;
        BatchInfo {
            batch_id: b.batch_time.millis(),
            batch_time: date(b.batch_time.millis() as i64),
            status: status.name().into(),
            batch_duration: self.batch_ms,
            input_size: b.num_records,
            scheduling_delay: b.scheduling_delay().map(|d| d.as_millis() as u64),
            processing_time: b.processing_delay().map(|d| d.as_millis() as u64),
            total_delay: b.total_delay().map(|d| d.as_millis() as u64),
            num_active_output_ops: ops.iter().filter(|o| o.end_time.is_none()).count(),
            num_completed_output_ops: ops
                .iter()
                .filter(|o| o.end_time.is_some() && o.failure_reason.is_none())
                .count(),
            num_failed_output_ops: ops.iter().filter(|o| o.failure_reason.is_some()).count(),
            num_total_output_ops: self.output_ops.max(ops.len()),
            first_failure_reason: b.failure_reason.clone(),
        }
    }

    /// A batch's output operations in Spark's shape.
    pub(crate) fn operations(&self, b: &Batch) -> Vec<OutputOperationInfo> {
        b.output_operation_infos
            .iter()
            .map(|o| OutputOperationInfo {
                output_op_id: o.id,
                name: o.name.clone(),
                description: o.description.clone(),
                start_time: o.start_time.map(|t| date(t as i64)),
                end_time: o.end_time.map(|t| date(t as i64)),
                duration: o.duration().map(|d| d.as_millis() as u64),
                failure_reason: o.failure_reason.clone(),
                job_ids: Vec::new(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_as_spark_writes_them() {
        assert_eq!(date(0), "1970-01-01T00:00:00.000GMT");
        assert_eq!(date(-1), "1969-12-31T23:59:59.999GMT");
        assert_eq!(date(1_764_422_040_123), "2025-11-29T13:14:00.123GMT");
        assert_eq!(date(951_782_400_000), "2000-02-29T00:00:00.000GMT");
    }
}
