//! The job's statistics as the page, the REST API and `/metrics` read them, rebuilt from
//! events (live from the listener, or replayed from an event log), as Spark's
//! `StreamingJobProgressListener` keeps them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::metrics::{BatchInfo, CheckpointInfo, Counters};
use crate::sync::LockExt;
use crate::time::Time;
use crate::ui::event::Event;

/// Completed batches kept for the page and the API (`spark.streaming.ui.retainedBatches`).
pub(crate) const RETAINED_BATCHES: usize = 1000;

/// Batches allowed to wait (queued, not processing) before `/readyz` says the job is not
/// keeping up.
pub(crate) const READY_MAX_WAITING: usize = 2;

/// The upper bounds, in seconds, of the delay histograms' buckets.
pub(crate) const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// A cumulative histogram of durations over every completed batch.
#[derive(Debug, Clone, Default)]
pub(crate) struct Histogram {
    /// Observations at or under each of `BUCKETS` (not cumulative).
    pub(crate) counts: [u64; BUCKETS.len()],
    pub(crate) count: u64,
    /// Sum in seconds.
    pub(crate) sum: f64,
}

impl Histogram {
    fn observe(&mut self, ms: u64) {
        let secs = ms as f64 / 1000.0;
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += secs;
    }
}

/// A receiver as the page shows it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReceiverRow {
    pub(crate) name: String,
    pub(crate) active: bool,
    /// The last error: when (wall ms) and its message.
    pub(crate) last_error: Option<(u64, String)>,
    pub(crate) errors: u64,
}

/// Everything the page, the API and `/metrics` read.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) app_name: String,
    pub(crate) app_id: String,
    pub(crate) batch_ms: u64,
    /// Wall-clock start, once started.
    pub(crate) start_time: Option<u64>,
    pub(crate) first_batch: Option<Time>,
    pub(crate) stopped_at: Option<u64>,
    /// The newest event's wall-clock time.
    pub(crate) last_updated: u64,
    pub(crate) inputs: Vec<String>,
    /// The job's output operations.
    pub(crate) output_ops: usize,
    pub(crate) receivers: BTreeMap<usize, ReceiverRow>,
    pub(crate) waiting: BTreeMap<Time, BatchInfo>,
    pub(crate) running: BTreeMap<Time, BatchInfo>,
    /// The newest `RETAINED_BATCHES` completed (or failed) batches, oldest first.
    pub(crate) completed: VecDeque<BatchInfo>,
    pub(crate) total_completed: u64,
    pub(crate) total_failed: u64,
    pub(crate) total_processed_records: u64,
    pub(crate) total_received_records: u64,
    /// Records per input stream id over every completed batch.
    pub(crate) records_per_input: BTreeMap<usize, u64>,
    /// Each input's partitions' lag as of the newest batch submitted.
    pub(crate) lag: BTreeMap<usize, Vec<crate::metrics::PartitionLag>>,
    pub(crate) processing: Histogram,
    pub(crate) scheduling: Histogram,
    pub(crate) total_delay: Histogram,
    pub(crate) last_checkpoint: Option<CheckpointInfo>,
    pub(crate) checkpoints: u64,
    /// The first failed batch's reason.
    pub(crate) failure: Option<String>,
    /// The context's own counters (live only; an event log does not hold them).
    pub(crate) counters: Option<Arc<Counters>>,
}

impl Stats {
    pub(crate) fn apply(&mut self, event: &Event, now: u64) {
        self.last_updated = self.last_updated.max(now);
        match event {
            Event::Started {
                app_name,
                app_id,
                batch_ms,
                start_time,
                first_batch,
                inputs,
                receivers,
                output_ops,
            } => {
                self.output_ops = *output_ops;
                self.app_name = app_name.clone();
                self.app_id = app_id.clone();
                self.batch_ms = *batch_ms;
                self.start_time = Some(*start_time);
                self.first_batch = Some(*first_batch);
                self.stopped_at = None;
                self.inputs = inputs.clone();
                for (id, name) in receivers {
                    self.receivers.entry(*id).or_default().name = name.clone();
                }
            }
            Event::BatchSubmitted { batch } => {
                for input in batch.input_infos.iter().filter(|i| !i.lag.is_empty()) {
                    self.lag.insert(input.input_stream_id, input.lag.clone());
                }
                self.waiting.insert(batch.batch_time, batch.clone());
            }
            Event::BatchStarted { batch } => {
                self.waiting.remove(&batch.batch_time);
                self.total_received_records += batch.num_records;
                self.running.insert(batch.batch_time, batch.clone());
            }
            Event::OutputOperationStarted { operation }
            | Event::OutputOperationCompleted { operation } => {
                if let Some(b) = self.running.get_mut(&operation.batch_time) {
                    match b
                        .output_operation_infos
                        .iter_mut()
                        .find(|o| o.id == operation.id)
                    {
                        Some(o) => *o = operation.clone(),
                        None => b.output_operation_infos.push(operation.clone()),
                    }
                }
            }
            Event::BatchCompleted { batch } | Event::BatchFailed { batch } => {
                self.waiting.remove(&batch.batch_time);
                if self.running.remove(&batch.batch_time).is_none() {
                    // Replayed from the event log, which has no start lines.
                    self.total_received_records += batch.num_records;
                }
                self.total_completed += 1;
                self.total_processed_records += batch.num_records;
                if let Some(reason) = &batch.failure_reason {
                    self.total_failed += 1;
                    self.failure.get_or_insert_with(|| reason.clone());
                }
                for input in &batch.input_infos {
                    *self
                        .records_per_input
                        .entry(input.input_stream_id)
                        .or_default() += input.num_records;
                }
                if let Some(d) = batch.processing_delay() {
                    self.processing.observe(d.as_millis() as u64);
                }
                if let Some(d) = batch.scheduling_delay() {
                    self.scheduling.observe(d.as_millis() as u64);
                }
                if let Some(d) = batch.total_delay() {
                    self.total_delay.observe(d.as_millis() as u64);
                }
                self.completed.push_back(batch.clone());
                while self.completed.len() > RETAINED_BATCHES {
                    self.completed.pop_front();
                }
            }
            Event::ReceiverStarted { receiver } => {
                let row = self.receivers.entry(receiver.stream_id).or_default();
                row.name = receiver.name.clone();
                row.active = true;
            }
            Event::ReceiverError { receiver } => {
                let row = self.receivers.entry(receiver.stream_id).or_default();
                row.name = receiver.name.clone();
                row.errors += 1;
                if let Some(message) = &receiver.last_error {
                    row.last_error = Some((receiver.time, message.clone()));
                }
            }
            Event::ReceiverStopped { receiver } => {
                let row = self.receivers.entry(receiver.stream_id).or_default();
                row.name = receiver.name.clone();
                row.active = false;
            }
            Event::Checkpoint { checkpoint } => {
                self.checkpoints += 1;
                self.last_checkpoint = Some(checkpoint.clone());
            }
            Event::Stopped { time } => {
                self.stopped_at = Some(*time);
                self.waiting.clear();
                self.running.clear();
                for r in self.receivers.values_mut() {
                    r.active = false;
                }
            }
        }
    }

    /// The newest completed batch.
    pub(crate) fn last_completed(&self) -> Option<&BatchInfo> {
        self.completed.back()
    }

    /// Records per second of one retained batch (Spark: records × 1000 / batch duration).
    pub(crate) fn rate(&self, records: u64) -> f64 {
        if self.batch_ms == 0 {
            0.0
        } else {
            records as f64 * 1000.0 / self.batch_ms as f64
        }
    }

    /// A receiver's rate per retained batch: (batch time ms, records/s).
    pub(crate) fn event_rates(&self, stream_id: usize) -> Vec<(u64, f64)> {
        self.completed
            .iter()
            .map(|b| {
                let records = b
                    .input_infos
                    .iter()
                    .filter(|i| i.input_stream_id == stream_id)
                    .map(|i| i.num_records)
                    .sum();
                (b.batch_time.millis(), self.rate(records))
            })
            .collect()
    }

    /// Whether `/readyz` answers ready, and why not.
    pub(crate) fn readiness(&self) -> Result<String, String> {
        if self.start_time.is_none() {
            return Err("not started".into());
        }
        if let Some(reason) = &self.failure {
            return Err(format!("a batch failed: {reason}"));
        }
        if self.stopped_at.is_some() {
            return Err("stopped".into());
        }
        if self.waiting.len() > READY_MAX_WAITING {
            return Err(format!(
                "not keeping up: {} batches waiting (more than {READY_MAX_WAITING}); batches take longer than the {} ms interval",
                self.waiting.len(),
                self.batch_ms
            ));
        }
        Ok(format!(
            "ready: {} batches completed, {} waiting",
            self.total_completed,
            self.waiting.len()
        ))
    }
}

/// The statistics behind a lock, shared by the listener and the server.
#[derive(Debug, Default)]
pub(crate) struct Status {
    stats: Mutex<Stats>,
}

impl Status {
    pub(crate) fn new(counters: Option<Arc<Counters>>) -> Status {
        Status {
            stats: Mutex::new(Stats {
                counters,
                ..Stats::default()
            }),
        }
    }

    pub(crate) fn apply(&self, event: &Event) {
        self.stats.locked().apply(event, crate::clock::wall_ms());
    }

    pub(crate) fn read(&self) -> MutexGuard<'_, Stats> {
        self.stats.locked()
    }
}
