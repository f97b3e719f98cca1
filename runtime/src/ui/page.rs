//! The status page, in the spirit of Spark's Streaming tab: a header, the timelines and
//! histograms of input rate, scheduling delay, processing time and total delay, the
//! receivers, the inputs with what each batch read, the active and completed batches and the
//! latest checkpoint. Plain HTML with inline SVG and CSS: nothing is fetched from elsewhere.
//! It reloads itself while the job runs.

use std::fmt::Write;

use crate::metrics::BatchInfo;
use crate::ui::api::{BatchStatus, date};
use crate::ui::status::Stats;
use crate::ui::svg::{esc, histogram, short, timeline};

/// Batches drawn on the charts (the newest).
const CHART_BATCHES: usize = 200;
/// Completed batches listed (the newest).
const TABLE_BATCHES: usize = 100;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.2em;color:#222}\
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.2em 0 .4em}\
table{border-collapse:collapse;margin:.3em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.num{text-align:right}.err{color:#b00}.ok{color:#070}.muted{color:#777}\
.stats td{border:none;vertical-align:middle}.header span{margin-right:1.4em}";

fn ms(v: Option<std::time::Duration>) -> String {
    v.map_or("-".into(), |d| format!("{} ms", d.as_millis()))
}

/// "1 h 2 min 3 s".
fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, m, s) => format!("{h} h {m} min {s} s"),
    }
}

impl Stats {
    /// The page; `live` adds the self-refresh.
    pub(crate) fn page(&self, live: bool) -> String {
        let mut h = String::new();
        let refresh = (self.batch_ms / 1000).clamp(1, 10);
        let _ = write!(
            h,
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} - Streaming Statistics</title>",
            esc(&self.app_name)
        );
        if live && self.stopped_at.is_none() {
            let _ = write!(h, "<meta http-equiv=\"refresh\" content=\"{refresh}\">");
        }
        let _ = write!(h, "<style>{STYLE}</style></head><body>");
        self.header(&mut h, live);
        self.charts(&mut h);
        self.receivers_table(&mut h);
        self.inputs_table(&mut h);
        self.active_table(&mut h);
        self.completed_table(&mut h);
        self.checkpoint_section(&mut h);
        let app = esc(&self.app_id);
        let _ = write!(
            h,
            "<p class=\"muted\">API: <a href=\"/api/v1/applications/{app}/streaming/statistics\">statistics</a>, \
<a href=\"/api/v1/applications/{app}/streaming/batches\">batches</a>, \
<a href=\"/api/v1/applications/{app}/streaming/receivers\">receivers</a>; \
<a href=\"/metrics\">metrics</a>, <a href=\"/readyz\">readyz</a>. Updated {}.</p></body></html>",
            date(self.last_updated as i64)
        );
        h
    }

    fn header(&self, h: &mut String, live: bool) {
        let start = self.start_time.unwrap_or(self.last_updated);
        let end = self.stopped_at.unwrap_or(self.last_updated);
        let state = match (&self.failure, self.stopped_at, self.start_time) {
            (Some(reason), _, _) => format!(
                "<span class=\"err\" id=\"state\">failed: {}</span>",
                esc(reason)
            ),
            (None, Some(_), _) => "<span id=\"state\">stopped</span>".into(),
            (None, None, None) => "<span id=\"state\">starting</span>".into(),
            (None, None, Some(_)) if live => {
                "<span class=\"ok\" id=\"state\">running</span>".into()
            }
            (None, None, Some(_)) => "<span id=\"state\">history (no end recorded)</span>".into(),
        };
        let _ = write!(
            h,
            "<h1>Streaming Statistics: {}</h1><p class=\"header\">{state} \
<span>Running batches of <b id=\"batch-interval\">{} ms</b></span>\
<span>for <b id=\"uptime\">{}</b> since {}</span>\
<span>(<b id=\"completed-batches-count\">{}</b> completed batches, <b id=\"records-count\">{}</b> records)</span></p>",
            esc(&self.app_name),
            self.batch_ms,
            duration(end.saturating_sub(start)),
            date(start as i64),
            self.total_completed,
            self.total_processed_records
        );
    }

    fn charts(&self, h: &mut String) {
        let batches: Vec<&BatchInfo> = self
            .completed
            .iter()
            .skip(self.completed.len().saturating_sub(CHART_BATCHES))
            .collect();
        let series = |f: &dyn Fn(&BatchInfo) -> Option<f64>| -> Vec<(u64, f64)> {
            batches
                .iter()
                .filter_map(|b| f(b).map(|v| (b.batch_time.millis(), v)))
                .collect()
        };
        let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_millis() as f64);
        let stats = self.statistics();
        let rows: [(&str, &str, &str, Vec<(u64, f64)>, Option<f64>, String); 4] = [
            (
                "input-rate",
                "Input Rate",
                "records/s",
                series(&|b| Some(self.rate(b.num_records))),
                None,
                stats
                    .avg_input_rate
                    .map_or("-".into(), |r| format!("{} records/s", short(r))),
            ),
            (
                "scheduling-delay",
                "Scheduling Delay",
                "ms",
                series(&|b| ms(b.scheduling_delay())),
                None,
                stats
                    .avg_scheduling_delay
                    .map_or("-".into(), |v| format!("{v} ms")),
            ),
            (
                "processing-time",
                "Processing Time",
                "ms",
                series(&|b| ms(b.processing_delay())),
                Some(self.batch_ms as f64),
                stats
                    .avg_processing_time
                    .map_or("-".into(), |v| format!("{v} ms")),
            ),
            (
                "total-delay",
                "Total Delay",
                "ms",
                series(&|b| ms(b.total_delay())),
                None,
                stats
                    .avg_total_delay
                    .map_or("-".into(), |v| format!("{v} ms")),
            ),
        ];
        h.push_str("<table class=\"stats\"><tr><th></th><th>Timelines (newest batches)</th><th>Histograms</th></tr>");
        for (id, title, unit, points, threshold, avg) in rows {
            let values: Vec<f64> = points.iter().map(|p| p.1).collect();
            let _ = write!(
                h,
                "<tr><td><b>{title}</b><br>Avg: <span id=\"avg-{id}\">{}</span></td><td>{}</td><td>{}</td></tr>",
                esc(&avg),
                timeline(&format!("timeline-{id}"), unit, &points, threshold),
                histogram(&format!("histogram-{id}"), unit, &values)
            );
        }
        h.push_str("</table>");
    }

    fn receivers_table(&self, h: &mut String) {
        if self.receivers.is_empty() {
            return;
        }
        h.push_str("<h2>Receivers</h2><table id=\"receivers\"><tr><th>Stream</th><th>Receiver</th><th>Status</th><th>Avg rate</th><th>Last error time</th><th>Last error</th></tr>");
        for r in self.receiver_infos() {
            let status = if r.is_active == Some(true) {
                "<span class=\"ok\">ACTIVE</span>"
            } else {
                "<span class=\"muted\">INACTIVE</span>"
            };
            let _ = write!(
                h,
                "<tr data-stream-id=\"{}\"><td class=\"num\">{}</td><td>{}</td><td>{status}</td><td class=\"num\">{}</td><td>{}</td><td class=\"err\">{}</td></tr>",
                r.stream_id,
                r.stream_id,
                esc(&r.stream_name),
                r.avg_event_rate
                    .map_or("-".into(), |v| format!("{} records/s", short(v))),
                esc(r.last_error_time.as_deref().unwrap_or("-")),
                esc(r.last_error_message.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</table>");
    }

    fn inputs_table(&self, h: &mut String) {
        if self.inputs.is_empty() {
            return;
        }
        h.push_str("<h2>Inputs</h2><table id=\"inputs\"><tr><th>Stream</th><th>Input</th><th>Records</th><th>Newest batch read</th><th>Lag (records)</th></tr>");
        for (id, name) in self.inputs.iter().enumerate() {
            let latest = self
                .completed
                .iter()
                .rev()
                .find_map(|b| {
                    b.input_infos
                        .iter()
                        .find(|i| i.input_stream_id == id)
                        .and_then(|i| i.description.clone())
                })
                .unwrap_or_default();
            let lag: Vec<String> = self
                .lag
                .get(&id)
                .into_iter()
                .flatten()
                .map(|l| format!("{}-{}: {}", l.topic, l.partition, l.records))
                .collect();
            let _ = write!(
                h,
                "<tr><td class=\"num\">{id}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"lag\">{}</td></tr>",
                esc(name),
                self.records_per_input.get(&id).copied().unwrap_or(0),
                esc(&latest),
                esc(&lag.join(", "))
            );
        }
        h.push_str("</table>");
    }

    fn batch_row(&self, h: &mut String, status: BatchStatus, b: &BatchInfo) {
        let api = self.batch_info(status, b);
        let inputs: Vec<String> = b
            .input_infos
            .iter()
            .filter_map(|i| i.description.as_ref().map(|d| format!("{}: {d}", i.name)))
            .collect();
        let _ = write!(
            h,
            "<tr data-batch-id=\"{}\"><td>{}</td><td class=\"num records\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num ops\">{}/{}</td><td>{}</td><td class=\"err\">{}</td></tr>",
            api.batch_id,
            esc(&api.batch_time),
            api.input_size,
            ms(b.scheduling_delay()),
            ms(b.processing_delay()),
            ms(b.total_delay()),
            api.num_completed_output_ops,
            api.num_total_output_ops,
            esc(&inputs.join("; ")),
            esc(api.first_failure_reason.as_deref().unwrap_or(""))
        );
    }

    const BATCH_HEAD: &str = "<tr><th>Batch time</th><th>Records</th><th>Scheduling delay</th><th>Processing time</th><th>Total delay</th><th>Output ops: succeeded/total</th><th>Input</th><th>Error</th></tr>";

    fn active_table(&self, h: &mut String) {
        let _ = write!(
            h,
            "<h2>Active Batches ({})</h2><table id=\"active-batches\">{}",
            self.waiting.len() + self.running.len(),
            Self::BATCH_HEAD
        );
        for b in self.running.values().rev() {
            self.batch_row(h, BatchStatus::Processing, b);
        }
        for b in self.waiting.values().rev() {
            self.batch_row(h, BatchStatus::Queued, b);
        }
        h.push_str("</table>");
    }

    fn completed_table(&self, h: &mut String) {
        let _ = write!(
            h,
            "<h2>Completed Batches (last {} out of {})</h2><table id=\"completed-batches\">{}",
            self.completed.len().min(TABLE_BATCHES),
            self.total_completed,
            Self::BATCH_HEAD
        );
        for b in self.completed.iter().rev().take(TABLE_BATCHES) {
            self.batch_row(h, BatchStatus::Completed, b);
        }
        h.push_str("</table>");
    }

    fn checkpoint_section(&self, h: &mut String) {
        h.push_str("<h2>Latest Checkpoint</h2>");
        match &self.last_checkpoint {
            None => h.push_str("<p id=\"checkpoint\" class=\"muted\">none written</p>"),
            Some(c) => {
                let _ = write!(
                    h,
                    "<p id=\"checkpoint\">batch <b>{}</b> ({}), {} bytes, written in {} ms to <code>{}</code>; {} checkpoints written</p>",
                    c.batch_time.millis(),
                    date(c.batch_time.millis() as i64),
                    c.bytes,
                    c.duration_ms,
                    esc(&c.dir),
                    self.checkpoints
                );
            }
        }
    }
}
