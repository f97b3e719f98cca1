//! `/metrics`: the statistics in Prometheus' text exposition format (0.0.4), named by its
//! conventions: a `cargo_stream_` prefix, base units (seconds, bytes), `_total` counters.

use std::fmt::Write;

use crate::ui::status::{BUCKETS, Histogram, Stats};

/// The content type Prometheus expects.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            let l: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
                .collect();
            let _ = write!(self.0, "{{{}}}", l.join(","));
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.family(name, "histogram", help);
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(h.counts) {
            cumulative += count;
            self.sample(
                &format!("{name}_bucket"),
                &[("le", &bound.to_string())],
                cumulative as f64,
            );
        }
        self.sample(&format!("{name}_bucket"), &[("le", "+Inf")], h.count as f64);
        self.sample(&format!("{name}_sum"), &[], h.sum);
        self.sample(&format!("{name}_count"), &[], h.count as f64);
    }
}

impl Stats {
    /// The exposition text.
    pub(crate) fn prometheus(&self) -> String {
        let mut o = Out(String::new());
        o.family(
            "cargo_stream_info",
            "gauge",
            "The job: its application name and runtime version.",
        );
        o.sample(
            "cargo_stream_info",
            &[
                ("app", &self.app_name),
                ("version", env!("CARGO_PKG_VERSION")),
            ],
            1.0,
        );
        o.one(
            "cargo_stream_batch_interval_seconds",
            "gauge",
            "The batch interval.",
            self.batch_ms as f64 / 1000.0,
        );
        o.one(
            "cargo_stream_start_time_seconds",
            "gauge",
            "When the streaming context started, in seconds since the Unix epoch.",
            self.start_time.unwrap_or(0) as f64 / 1000.0,
        );
        o.one(
            "cargo_stream_batches_completed_total",
            "counter",
            "Batches processed (failed ones included).",
            self.total_completed as f64,
        );
        o.one(
            "cargo_stream_batches_failed_total",
            "counter",
            "Batches that failed.",
            self.total_failed as f64,
        );
        o.one(
            "cargo_stream_batches_waiting",
            "gauge",
            "Batches whose input is fixed, waiting for the job thread.",
            self.waiting.len() as f64,
        );
        o.one(
            "cargo_stream_batches_processing",
            "gauge",
            "Batches being processed.",
            self.running.len() as f64,
        );
        o.one(
            "cargo_stream_last_completed_batch_time_seconds",
            "gauge",
            "The batch time of the newest completed batch, in seconds on the batch clock (since the Unix epoch on the system clock).",
            self.last_completed()
                .map_or(0.0, |b| b.batch_time.millis() as f64 / 1000.0),
        );
        o.one(
            "cargo_stream_records_processed_total",
            "counter",
            "Records of the completed batches.",
            self.total_processed_records as f64,
        );
        o.histogram(
            "cargo_stream_batch_scheduling_delay_seconds",
            "Time from a batch's time to the start of its processing.",
            &self.scheduling,
        );
        o.histogram(
            "cargo_stream_batch_processing_seconds",
            "Time spent processing a batch.",
            &self.processing,
        );
        o.histogram(
            "cargo_stream_batch_total_delay_seconds",
            "Time from a batch's time to the end of its processing.",
            &self.total_delay,
        );
        o.family(
            "cargo_stream_input_records_total",
            "counter",
            "Records each input gave the completed batches.",
        );
        for (id, name) in self.inputs.iter().enumerate() {
            let records = self.records_per_input.get(&id).copied().unwrap_or(0);
            o.sample(
                "cargo_stream_input_records_total",
                &[("input_stream_id", &id.to_string()), ("source", name)],
                records as f64,
            );
        }
        o.family(
            "cargo_stream_input_lag_records",
            "gauge",
            "Records each partition of an input (Kafka) held past the newest batch's range when it was fixed.",
        );
        for (id, lags) in &self.lag {
            let source = self.inputs.get(*id).map_or("", String::as_str);
            for l in lags {
                o.sample(
                    "cargo_stream_input_lag_records",
                    &[
                        ("input_stream_id", &id.to_string()),
                        ("source", source),
                        ("topic", &l.topic),
                        ("partition", &l.partition.to_string()),
                    ],
                    l.records as f64,
                );
            }
        }
        o.family(
            "cargo_stream_receiver_active",
            "gauge",
            "Whether each receiver runs (1) or not (0).",
        );
        for (id, r) in &self.receivers {
            o.sample(
                "cargo_stream_receiver_active",
                &[("stream_id", &id.to_string()), ("receiver", &r.name)],
                f64::from(u8::from(r.active)),
            );
        }
        o.family(
            "cargo_stream_receiver_errors_total",
            "counter",
            "Errors and restart reasons each receiver reported.",
        );
        for (id, r) in &self.receivers {
            o.sample(
                "cargo_stream_receiver_errors_total",
                &[("stream_id", &id.to_string()), ("receiver", &r.name)],
                r.errors as f64,
            );
        }
        if let Some(c) = &self.counters {
            let c = c.snapshot();
            o.one(
                "cargo_stream_receiver_restarts_total",
                "counter",
                "Receiver restarts, asked for by a receiver or after a failure.",
                c.receiver_restarts as f64,
            );
            o.one(
                "cargo_stream_receiver_failures_total",
                "counter",
                "Receiver failures (panics, blocks the write-ahead log did not take).",
                c.receiver_failures as f64,
            );
            o.one(
                "cargo_stream_receiver_records_total",
                "counter",
                "Records stored by receivers.",
                c.records_received as f64,
            );
            o.one(
                "cargo_stream_non_utf8_lines_total",
                "counter",
                "Input lines that were not valid UTF-8 (kept, decoded with U+FFFD).",
                c.non_utf8_lines as f64,
            );
        }
        o.one(
            "cargo_stream_checkpoints_total",
            "counter",
            "Checkpoints written.",
            self.checkpoints as f64,
        );
        if let Some(c) = &self.last_checkpoint {
            o.one(
                "cargo_stream_last_checkpoint_duration_seconds",
                "gauge",
                "How long writing the newest checkpoint took.",
                c.duration_ms as f64 / 1000.0,
            );
            o.one(
                "cargo_stream_last_checkpoint_size_bytes",
                "gauge",
                "The newest checkpoint's size.",
                c.bytes as f64,
            );
            o.one(
                "cargo_stream_last_checkpoint_batch_time_seconds",
                "gauge",
                "The batch time of the newest checkpoint.",
                c.batch_time.millis() as f64 / 1000.0,
            );
        }
        o.0
    }
}
