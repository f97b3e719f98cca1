//! The status server of a running job: every endpoint of Spark's streaming REST API,
//! `/metrics` through a real Prometheus parser, `/healthz` and `/readyz`, the listener events,
//! and the event log replayed by `ui::serve_history`, checked against what the job did.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cargo_stream_runtime::prelude::*;
use cargo_stream_runtime::{BatchInfo, ManualClock, OutputOperationInfo, ReceiverInfo};
use serde::Deserialize;

use crate::support::wait_for;

/// Records the queue-like input gives each batch: 3 at 1 s, 5 at 2 s, then none.
pub(crate) const DIRECT: [u64; 2] = [3, 5];
/// Records the receiver stores once, all in the first batch.
pub(crate) const RECEIVED: u64 = 10;
/// The error the receiver reports.
pub(crate) const RECEIVER_ERROR: &str = "disk on fire: /data/in.log is unreadable";

/// A receiver that stores `RECEIVED` records, reports `RECEIVER_ERROR`, and idles.
struct Tells;

impl Receiver for Tells {
    type Item = u64;
    fn on_start(&mut self, ctx: ReceiverContext<u64>) {
        ctx.store_many(0..RECEIVED);
        ctx.report_error(RECEIVER_ERROR);
    }
    fn on_stop(&mut self) {}
    fn name(&self) -> String {
        "tells".into()
    }
}

/// A job on a manual clock: a direct input (stream 0), the receiver (stream 1), three output
/// operations, the second of which panics at batch `fail_at` (0: never).
pub(crate) struct Job {
    pub(crate) ssc: StreamingContext,
    pub(crate) clock: ManualClock,
    pub(crate) fail_at: Arc<AtomicU64>,
    pub(crate) events: Events,
    pub(crate) dir: tempfile::TempDir,
}

impl Job {
    pub(crate) fn start(name: &str) -> Job {
        let clock = ManualClock::new();
        let conf = StreamingConf::new(name)
            .master("local[2]")
            .stop_on_signal(false)
            .block_interval(Milliseconds(20))
            .ui_port(0)
            .manual_clock(clock.clone());
        let ssc = StreamingContext::new(conf, Seconds(1)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        ssc.checkpoint(dir.path()).unwrap();
        let direct = ssc.input_stream(|t: Time| {
            let i = (t.millis() / 1000) as usize;
            let n = DIRECT.get(i.wrapping_sub(1)).copied().unwrap_or(0);
            Some((0..n).collect::<Vec<u64>>())
        });
        direct.checkpoint(Seconds(1));
        let received = ssc.receiver_stream(Tells);
        direct.foreach_rdd(|b, _| assert!(b.count() <= 5)).unwrap();
        let fail_at = Arc::new(AtomicU64::new(0));
        let f = fail_at.clone();
        direct
            .foreach_rdd(move |_, t| {
                if t.millis() == f.load(Ordering::SeqCst) {
                    panic!("sink refused batch {}", t.millis());
                }
            })
            .unwrap();
        received
            .foreach_rdd(|b, _| assert!(b.count() <= RECEIVED))
            .unwrap();
        let events = Events::default();
        ssc.add_streaming_listener(events.clone());
        ssc.start().unwrap();
        // The receiver's records are stored and cut into a block before the first batch.
        assert!(wait_for(20, || ssc.counters().records_received == RECEIVED));
        std::thread::sleep(Duration::from_millis(200));
        Job {
            ssc,
            clock,
            fail_at,
            events,
            dir,
        }
    }

    /// Runs the batch at `secs` seconds.
    pub(crate) fn run_batch(&self, secs: u64) -> Result<bool, Error> {
        self.clock.advance(Seconds(1));
        self.ssc
            .await_batch(Time::from_millis(secs * 1000), Duration::from_secs(30))
    }

    pub(crate) fn url(&self) -> String {
        self.ssc.ui_url().expect("the status server runs")
    }
}

/// What a user's listener heard.
#[derive(Clone, Default)]
pub(crate) struct Events(Arc<Mutex<Vec<String>>>, Arc<Mutex<Vec<BatchInfo>>>);

impl Events {
    fn push(&self, e: String) {
        self.0.lock().unwrap().push(e);
    }
    pub(crate) fn names(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl StreamingListener for Events {
    fn on_batch_submitted(&self, i: &BatchInfo) {
        self.push(format!("submitted {}", i.batch_time.millis()));
    }
    fn on_batch_started(&self, i: &BatchInfo) {
        self.push(format!("started {}", i.batch_time.millis()));
    }
    fn on_batch_completed(&self, i: &BatchInfo) {
        self.push(format!("completed {}", i.batch_time.millis()));
        self.1.lock().unwrap().push(i.clone());
    }
    fn on_batch_failed(&self, i: &BatchInfo) {
        self.push(format!(
            "failed {}: {}",
            i.batch_time.millis(),
            i.failure_reason.clone().unwrap_or_default()
        ));
        self.1.lock().unwrap().push(i.clone());
    }
    fn on_output_operation_started(&self, o: &OutputOperationInfo) {
        self.push(format!("op started {} {}", o.batch_time.millis(), o.id));
    }
    fn on_output_operation_completed(&self, o: &OutputOperationInfo) {
        self.push(format!(
            "op completed {} {}{}",
            o.batch_time.millis(),
            o.id,
            o.failure_reason
                .as_ref()
                .map(|r| format!(" failed: {r}"))
                .unwrap_or_default()
        ));
    }
    fn on_receiver_started(&self, r: &ReceiverInfo) {
        self.push(format!("receiver started {} {}", r.stream_id, r.name));
    }
    fn on_receiver_error(&self, r: &ReceiverInfo) {
        self.push(format!(
            "receiver error {} {}",
            r.stream_id,
            r.last_error.clone().unwrap_or_default()
        ));
    }
    fn on_receiver_stopped(&self, r: &ReceiverInfo) {
        self.push(format!("receiver stopped {} {}", r.stream_id, r.name));
    }
}

/// GET `url` (`http://host:port/path`): status and body.
pub(crate) fn get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response head");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// GET and parse JSON into `T`, expecting 200.
pub(crate) fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> T {
    let (status, body) = get(url);
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}\n{body}"))
}

// Spark's shapes, written out from `api.scala` independently of the runtime's own types:
// an unknown or misspelt field fails the test.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct App {
    id: String,
    name: String,
    attempts: Vec<Attempt>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Attempt {
    #[serde(rename = "startTime")]
    start_time: String,
    #[serde(rename = "endTime")]
    end_time: String,
    #[serde(rename = "lastUpdated")]
    last_updated: String,
    duration: u64,
    #[serde(rename = "sparkUser")]
    spark_user: String,
    completed: bool,
    #[serde(rename = "appSparkVersion")]
    app_spark_version: String,
    #[serde(rename = "startTimeEpoch")]
    start_time_epoch: i64,
    #[serde(rename = "endTimeEpoch")]
    end_time_epoch: i64,
    #[serde(rename = "lastUpdatedEpoch")]
    last_updated_epoch: i64,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Statistics {
    #[serde(rename = "startTime")]
    start_time: String,
    #[serde(rename = "batchDuration")]
    batch_duration: u64,
    #[serde(rename = "numReceivers")]
    num_receivers: u64,
    #[serde(rename = "numActiveReceivers")]
    num_active_receivers: u64,
    #[serde(rename = "numInactiveReceivers")]
    num_inactive_receivers: u64,
    #[serde(rename = "numTotalCompletedBatches")]
    pub(crate) num_total_completed_batches: u64,
    #[serde(rename = "numRetainedCompletedBatches")]
    num_retained_completed_batches: u64,
    #[serde(rename = "numActiveBatches")]
    num_active_batches: u64,
    #[serde(rename = "numProcessedRecords")]
    pub(crate) num_processed_records: u64,
    #[serde(rename = "numReceivedRecords")]
    num_received_records: u64,
    #[serde(rename = "avgInputRate")]
    avg_input_rate: Option<f64>,
    #[serde(rename = "avgSchedulingDelay")]
    avg_scheduling_delay: Option<u64>,
    #[serde(rename = "avgProcessingTime")]
    avg_processing_time: Option<u64>,
    #[serde(rename = "avgTotalDelay")]
    avg_total_delay: Option<u64>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Batch {
    #[serde(rename = "batchId")]
    batch_id: u64,
    #[serde(rename = "batchTime")]
    batch_time: String,
    status: String,
    #[serde(rename = "batchDuration")]
    batch_duration: u64,
    #[serde(rename = "inputSize")]
    input_size: u64,
    #[serde(rename = "schedulingDelay")]
    scheduling_delay: Option<u64>,
    #[serde(rename = "processingTime")]
    processing_time: Option<u64>,
    #[serde(rename = "totalDelay")]
    total_delay: Option<u64>,
    #[serde(rename = "numActiveOutputOps")]
    num_active_output_ops: u64,
    #[serde(rename = "numCompletedOutputOps")]
    num_completed_output_ops: u64,
    #[serde(rename = "numFailedOutputOps")]
    num_failed_output_ops: u64,
    #[serde(rename = "numTotalOutputOps")]
    num_total_output_ops: u64,
    #[serde(rename = "firstFailureReason")]
    first_failure_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Operation {
    #[serde(rename = "outputOpId")]
    output_op_id: u64,
    name: String,
    description: String,
    #[serde(rename = "startTime")]
    start_time: Option<String>,
    #[serde(rename = "endTime")]
    end_time: Option<String>,
    duration: Option<u64>,
    #[serde(rename = "failureReason")]
    failure_reason: Option<String>,
    #[serde(rename = "jobIds")]
    job_ids: Vec<u64>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct ApiReceiver {
    #[serde(rename = "streamId")]
    stream_id: u64,
    #[serde(rename = "streamName")]
    stream_name: String,
    #[serde(rename = "isActive")]
    is_active: Option<bool>,
    #[serde(rename = "executorId")]
    executor_id: Option<String>,
    #[serde(rename = "executorHost")]
    executor_host: Option<String>,
    #[serde(rename = "lastErrorTime")]
    last_error_time: Option<String>,
    #[serde(rename = "lastErrorMessage")]
    last_error_message: Option<String>,
    #[serde(rename = "lastError")]
    last_error: Option<String>,
    #[serde(rename = "avgEventRate")]
    avg_event_rate: Option<f64>,
    #[serde(rename = "eventRates")]
    event_rates: Vec<(u64, f64)>,
}

/// A date as Spark's REST API writes them.
fn is_spark_date(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 26
        && s.ends_with("GMT")
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && s[..4].chars().all(|c| c.is_ascii_digit())
}

/// The API root of the job's one application.
pub(crate) fn app_root(url: &str) -> String {
    let apps: Vec<App> = get_json(&format!("{url}api/v1/applications"));
    assert_eq!(apps.len(), 1);
    format!("{url}api/v1/applications/{}", apps[0].id)
}

/// One sample of `/metrics` as the Prometheus parser read it.
#[derive(Debug, Deserialize)]
pub(crate) struct Sample {
    pub(crate) family: String,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// The Python interpreter that has `prometheus_client` (`.ci/run` installs it), if any.
fn prometheus_python() -> Option<std::path::PathBuf> {
    let candidates = [
        std::env::var_os("CARGO_STREAM_PROMETHEUS_PYTHON").map(Into::into),
        std::env::var_os("HOME")
            .map(|h| std::path::Path::new(&h).join(".cache/cargo-stream/promclient/bin/python3")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p: &std::path::PathBuf| {
            std::process::Command::new(p)
                .args(["-c", "import prometheus_client"])
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// `/metrics` parsed by `prometheus_client.parser.text_string_to_metric_families`; `None`
/// (with a note) when the parser is not installed.
pub(crate) fn parse_metrics(text: &str) -> Option<Vec<Sample>> {
    let Some(python) = prometheus_python() else {
        eprintln!("note: prometheus_client not installed (see .ci/run); /metrics not parsed");
        return None;
    };
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
for f in text_string_to_metric_families(sys.stdin.read()):
    for s in f.samples:
        print(json.dumps({"family": f.name, "kind": f.type, "name": s.name, "labels": s.labels, "value": s.value}))
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    )
}

/// The value of the sample `name` with `labels` among them.
pub(crate) fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
        .value
}

#[test]
fn every_endpoint_reports_what_the_job_did() {
    let job = Job::start("ui-api");
    let url = job.url();
    assert_eq!(get(&format!("{url}healthz")), (200, "ok\n".into()));
    // The receiver's error reaches the API with its message before any batch.
    let root = app_root(&url);
    assert!(wait_for(10, || {
        let r: Vec<ApiReceiver> = get_json(&format!("{root}/streaming/receivers"));
        r[0].last_error_message.as_deref() == Some(RECEIVER_ERROR)
    }));
    assert!(job.run_batch(1).unwrap());
    assert!(job.run_batch(2).unwrap());

    // Applications.
    let apps: Vec<App> = get_json(&format!("{url}api/v1/applications"));
    assert_eq!(apps[0].name, "ui-api");
    assert!(apps[0].id.starts_with("local-"), "{}", apps[0].id);
    let a = &apps[0].attempts[0];
    assert!(!a.completed && a.end_time_epoch == -1 && a.end_time == "1969-12-31T23:59:59.999GMT");
    assert!(
        is_spark_date(&a.start_time) && is_spark_date(&a.last_updated),
        "{a:?}"
    );
    let one: App = get_json(&root);
    assert_eq!(one.id, apps[0].id);

    // Statistics: two batches of 3 + 10 and 5 records, 1 s apart.
    let s: Statistics = get_json(&format!("{root}/streaming/statistics"));
    assert!(is_spark_date(&s.start_time), "{}", s.start_time);
    assert_eq!(
        (
            s.batch_duration,
            s.num_receivers,
            s.num_active_receivers,
            s.num_inactive_receivers
        ),
        (1000, 1, 1, 0)
    );
    assert_eq!(
        (
            s.num_total_completed_batches,
            s.num_retained_completed_batches,
            s.num_active_batches
        ),
        (2, 2, 0)
    );
    let fed = DIRECT[0] + RECEIVED + DIRECT[1];
    assert_eq!(
        (s.num_processed_records, s.num_received_records),
        (fed, fed)
    );
    assert_eq!(s.avg_input_rate, Some(fed as f64 / 2.0));
    // On a manual clock that does not move while a batch runs, every delay is 0.
    assert_eq!(
        (
            s.avg_scheduling_delay,
            s.avg_processing_time,
            s.avg_total_delay
        ),
        (Some(0), Some(0), Some(0))
    );

    // Batches, newest first.
    let batches: Vec<Batch> = get_json(&format!("{root}/streaming/batches"));
    let summary: Vec<(u64, &str, u64, u64, u64)> = batches
        .iter()
        .map(|b| {
            (
                b.batch_id,
                b.status.as_str(),
                b.input_size,
                b.num_completed_output_ops,
                b.num_total_output_ops,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (2000, "COMPLETED", DIRECT[1], 3, 3),
            (1000, "COMPLETED", DIRECT[0] + RECEIVED, 3, 3)
        ]
    );
    assert_eq!(batches[1].batch_time, "1970-01-01T00:00:01.000GMT");
    assert!(
        batches
            .iter()
            .all(|b| b.first_failure_reason.is_none() && b.batch_duration == 1000)
    );
    let none: Vec<Batch> = get_json(&format!(
        "{root}/streaming/batches?status=QUEUED&status=PROCESSING"
    ));
    assert!(none.is_empty(), "{none:?}");
    let completed: Vec<Batch> = get_json(&format!("{root}/streaming/batches?status=COMPLETED"));
    assert_eq!(completed, batches);
    assert_eq!(get(&format!("{root}/streaming/batches?status=DONE")).0, 400);
    let one: Batch = get_json(&format!("{root}/streaming/batches/1000"));
    assert_eq!(one, batches[1]);
    assert_eq!(get(&format!("{root}/streaming/batches/1500")).0, 404);

    // Output operations of a batch.
    let ops: Vec<Operation> = get_json(&format!("{root}/streaming/batches/1000/operations"));
    assert_eq!(
        ops.iter().map(|o| o.output_op_id).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    for o in &ops {
        assert_eq!(o.name, "foreach_rdd");
        assert!(
            o.description.starts_with("foreach_rdd at ") && o.description.contains("ui.rs"),
            "{}",
            o.description
        );
        assert!(o.start_time.as_deref().is_some_and(is_spark_date) && o.end_time.is_some());
        assert_eq!(
            (o.duration, &o.failure_reason, o.job_ids.len()),
            (Some(0), &None, 0)
        );
    }

    // Receivers: the error with its message, the rate per batch.
    let receivers: Vec<ApiReceiver> = get_json(&format!("{root}/streaming/receivers"));
    assert_eq!(receivers.len(), 1);
    let r = &receivers[0];
    assert_eq!(
        (r.stream_id, r.stream_name.as_str(), r.is_active),
        (1, "tells", Some(true))
    );
    assert_eq!(r.last_error.as_deref(), Some(RECEIVER_ERROR));
    assert!(r.last_error_time.as_deref().is_some_and(is_spark_date));
    assert_eq!(r.event_rates, vec![(1000, RECEIVED as f64), (2000, 0.0)]);
    assert_eq!(r.avg_event_rate, Some(RECEIVED as f64 / 2.0));
    assert_eq!(
        (r.executor_id.as_deref(), r.executor_host.is_some()),
        (Some("driver"), true)
    );
    let by_id: ApiReceiver = get_json(&format!("{root}/streaming/receivers/1"));
    assert_eq!(&by_id, r);
    assert_eq!(get(&format!("{root}/streaming/receivers/7")).0, 404);
    assert_eq!(
        get(&format!(
            "{url}api/v1/applications/app-nope/streaming/statistics"
        ))
        .0,
        404
    );

    // Ready: started, nothing waiting.
    let (code, body) = get(&format!("{url}readyz"));
    assert_eq!(code, 200, "{body}");

    // /metrics, read by Prometheus' own parser.
    let (code, text) = get(&format!("{url}metrics"));
    assert_eq!(code, 200);
    if let Some(m) = parse_metrics(&text) {
        assert_eq!(value(&m, "cargo_stream_batches_completed_total", &[]), 2.0);
        assert_eq!(value(&m, "cargo_stream_batches_waiting", &[]), 0.0);
        assert_eq!(
            value(&m, "cargo_stream_last_completed_batch_time_seconds", &[]),
            2.0
        );
        assert_eq!(value(&m, "cargo_stream_batch_interval_seconds", &[]), 1.0);
        assert_eq!(
            value(
                &m,
                "cargo_stream_input_records_total",
                &[("input_stream_id", "0")]
            ),
            (DIRECT[0] + DIRECT[1]) as f64
        );
        assert_eq!(
            value(
                &m,
                "cargo_stream_input_records_total",
                &[("input_stream_id", "1"), ("source", "tells")]
            ),
            RECEIVED as f64
        );
        assert_eq!(
            value(&m, "cargo_stream_batch_processing_seconds_count", &[]),
            2.0
        );
        assert_eq!(
            value(
                &m,
                "cargo_stream_batch_total_delay_seconds_bucket",
                &[("le", "0.005")]
            ),
            2.0
        );
        assert_eq!(
            value(
                &m,
                "cargo_stream_batch_scheduling_delay_seconds_bucket",
                &[("le", "+Inf")]
            ),
            2.0
        );
        assert_eq!(
            value(&m, "cargo_stream_receiver_records_total", &[]),
            RECEIVED as f64
        );
        assert_eq!(
            value(
                &m,
                "cargo_stream_receiver_errors_total",
                &[("receiver", "tells")]
            ),
            1.0
        );
        assert_eq!(value(&m, "cargo_stream_receiver_restarts_total", &[]), 0.0);
        assert_eq!(value(&m, "cargo_stream_checkpoints_total", &[]), 2.0);
        assert_eq!(
            value(&m, "cargo_stream_last_checkpoint_batch_time_seconds", &[]),
            2.0
        );
        assert!(value(&m, "cargo_stream_last_checkpoint_size_bytes", &[]) > 0.0);
        let kinds: BTreeMap<&str, &str> = m
            .iter()
            .map(|s| (s.family.as_str(), s.kind.as_str()))
            .collect();
        assert_eq!(kinds["cargo_stream_batch_processing_seconds"], "histogram");
        assert_eq!(kinds["cargo_stream_batches_completed"], "counter");
    }

    // A failed batch: its reason in the batch, the statistics, the listener and /readyz.
    job.fail_at.store(3000, Ordering::SeqCst);
    // (`await_batch` may see the failed batch done before its error.)
    let _ = job.run_batch(3);
    let e = job
        .ssc
        .await_termination_or_timeout(Seconds(10))
        .unwrap_err()
        .to_string();
    assert!(e.contains("sink refused batch 3000"), "{e}");
    let b: Batch = get_json(&format!("{root}/streaming/batches/3000"));
    assert_eq!(b.status, "COMPLETED");
    assert_eq!(
        b.first_failure_reason.as_deref(),
        Some("sink refused batch 3000")
    );
    assert_eq!(
        (
            b.num_completed_output_ops,
            b.num_failed_output_ops,
            b.num_total_output_ops
        ),
        (1, 1, 3)
    );
    let ops: Vec<Operation> = get_json(&format!("{root}/streaming/batches/3000/operations"));
    assert_eq!(ops.len(), 2);
    assert_eq!(
        ops[1].failure_reason.as_deref(),
        Some("sink refused batch 3000")
    );
    let s: Statistics = get_json(&format!("{root}/streaming/statistics"));
    assert_eq!(
        (s.num_total_completed_batches, s.num_active_receivers),
        (3, 0)
    );
    let (code, body) = get(&format!("{url}readyz"));
    assert_eq!(code, 503);
    assert!(body.contains("sink refused batch 3000"), "{body}");
    let apps: Vec<App> = get_json(&format!("{url}api/v1/applications"));
    assert!(apps[0].attempts[0].completed && apps[0].attempts[0].end_time_epoch > 0);

    // The user's listener heard what the API serves.
    let heard = job.events.names();
    for e in [
        "receiver started 1 tells",
        &format!("receiver error 1 {RECEIVER_ERROR}"),
        "submitted 1000",
        "started 1000",
        "op started 1000 0",
        "op completed 1000 2",
        "completed 1000",
        "op completed 3000 1 failed: sink refused batch 3000",
        "failed 3000: sink refused batch 3000",
        "receiver stopped 1 tells",
    ] {
        assert!(heard.iter().any(|h| h == e), "no `{e}` in {heard:#?}");
    }
    let infos = job.events.1.lock().unwrap().clone();
    let first = &infos[0];
    assert_eq!(
        first
            .input_infos
            .iter()
            .map(|i| (i.input_stream_id, i.num_records))
            .collect::<Vec<_>>(),
        vec![(0, DIRECT[0]), (1, RECEIVED)]
    );
    assert!(
        first.input_infos[0].name.starts_with("input_stream at ")
            && first.input_infos[0].name.contains("ui.rs")
    );
    assert_eq!(first.input_infos[1].name, "tells");
    assert_eq!(first.output_operation_infos.len(), 3);
}

#[test]
fn the_event_log_rebuilds_the_same_statistics_after_the_job() {
    let job = Job::start("ui-history");
    let url = job.url();
    let root = app_root(&url);
    for s in 1..=3 {
        assert!(job.run_batch(s).unwrap());
    }
    job.fail_at.store(4000, Ordering::SeqCst);
    let _ = job.run_batch(4);
    assert!(job.ssc.await_termination_or_timeout(Seconds(10)).is_err());
    let live_stats: Statistics = get_json(&format!("{root}/streaming/statistics"));
    let live_batches: Vec<Batch> = get_json(&format!("{root}/streaming/batches"));
    let live_receivers: Vec<ApiReceiver> = get_json(&format!("{root}/streaming/receivers"));
    let app_id = root.rsplit('/').next().unwrap().to_owned();
    let Job { ssc, dir, .. } = job;
    drop(ssc);
    // The live server is gone with its context.
    assert!(TcpStream::connect(url.trim_start_matches("http://").trim_end_matches('/')).is_err());

    let events = dir.path().join("events");
    let files: Vec<_> = std::fs::read_dir(&events).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "one file per run");
    let history = cargo_stream_runtime::ui::serve_history(dir.path(), "127.0.0.1:0").unwrap();
    let hurl = history.url();
    let hroot = format!("{hurl}api/v1/applications/{app_id}");
    let stats: Statistics = get_json(&format!("{hroot}/streaming/statistics"));
    assert_eq!(stats, live_stats);
    assert_eq!(stats.num_total_completed_batches, 4);
    let batches: Vec<Batch> = get_json(&format!("{hroot}/streaming/batches"));
    assert_eq!(batches, live_batches);
    assert_eq!(
        batches[0].first_failure_reason.as_deref(),
        Some("sink refused batch 4000")
    );
    let receivers: Vec<ApiReceiver> = get_json(&format!("{hroot}/streaming/receivers"));
    assert_eq!(receivers, live_receivers);
    let (code, page) = get(&hurl);
    assert_eq!(code, 200);
    assert!(page.contains("sink refused batch 4000") && !page.contains("http-equiv=\"refresh\""));

    // A line cut short at the end (a crash while writing) is skipped; a bad line elsewhere
    // is an error naming the file and line.
    let file = files[0].path();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    f.write_all(b"{\"event\":\"batch_compl").unwrap();
    drop(f);
    drop(cargo_stream_runtime::ui::serve_history(dir.path(), "127.0.0.1:0").unwrap());
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.insert_str(0, "not json\n");
    std::fs::write(&file, text).unwrap();
    let e = cargo_stream_runtime::ui::serve_history(dir.path(), "127.0.0.1:0")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("line 1 of the event log") && e.contains("events-000001.jsonl"),
        "{e}"
    );
}

#[test]
fn readyz_says_when_batches_fall_behind() {
    let clock = ManualClock::new();
    let conf = StreamingConf::new("ui-behind")
        .master("local[2]")
        .stop_on_signal(false)
        .ui_port(0)
        .manual_clock(clock.clone());
    let ssc = StreamingContext::new(conf, Seconds(1)).unwrap();
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let g = gate.clone();
    ssc.queue_stream(vec![vec![1u8]])
        .foreach_rdd(move |_, _| drop(g.lock().unwrap()))
        .unwrap();
    ssc.start().unwrap();
    let url = ssc.ui_url().unwrap();
    assert_eq!(get(&format!("{url}readyz")).0, 200);
    // The first batch blocks; four more queue up behind it.
    for _ in 0..5 {
        clock.advance(Seconds(1));
    }
    assert!(wait_for(10, || get(&format!("{url}readyz")).0 == 503));
    let (_, body) = get(&format!("{url}readyz"));
    assert!(body.contains("not keeping up: 4 batches waiting"), "{body}");
    let root = app_root(&url);
    let s: Statistics = get_json(&format!("{root}/streaming/statistics"));
    assert_eq!(s.num_active_batches, 5);
    let queued: Vec<Batch> = get_json(&format!("{root}/streaming/batches?status=QUEUED"));
    assert_eq!(
        queued.iter().map(|b| b.batch_id).collect::<Vec<_>>(),
        vec![5000, 4000, 3000, 2000]
    );
    let processing: Vec<Batch> = get_json(&format!("{root}/streaming/batches?status=processing"));
    assert_eq!(processing.len(), 1);
    assert_eq!(
        (processing[0].batch_id, processing[0].num_active_output_ops),
        (1000, 1)
    );
    if let Some(m) = parse_metrics(&get(&format!("{url}metrics")).1) {
        assert_eq!(value(&m, "cargo_stream_batches_waiting", &[]), 4.0);
        assert_eq!(value(&m, "cargo_stream_batches_processing", &[]), 1.0);
    }
    drop(held);
    assert!(
        ssc.await_batch(Time::from_millis(5000), Duration::from_secs(20))
            .unwrap()
    );
    assert!(wait_for(10, || get(&format!("{url}readyz")).0 == 200));
    ssc.stop(false).unwrap();
}

#[test]
fn the_server_takes_the_next_free_port_and_can_be_turned_off() {
    // Spark's search: a taken port moves the server to the next one.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let conf = |name: &str| {
        StreamingConf::new(name)
            .master("local[2]")
            .stop_on_signal(false)
            .ui_port(port)
    };
    let ssc = StreamingContext::new(conf("ui-port"), Seconds(1)).unwrap();
    ssc.queue_stream(vec![vec![1u8]]).print(1).unwrap();
    ssc.start().unwrap();
    let url = ssc.ui_url().unwrap();
    let got: u16 = url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(got > port && got <= port + 16, "{url} after {port}");
    assert_eq!(get(&format!("{url}healthz")).0, 200);
    ssc.stop(false).unwrap();
    // Still served after the stop, until the context is dropped.
    assert_eq!(get(&format!("{url}healthz")).0, 200);
    drop(ssc);

    let off = StreamingContext::new(conf("ui-off").ui(false), Seconds(1)).unwrap();
    off.queue_stream(vec![vec![1u8]]).print(1).unwrap();
    off.start().unwrap();
    assert_eq!(off.ui_url(), None);
    off.stop(false).unwrap();
}

#[test]
fn each_batch_says_what_it_read() {
    let clock = ManualClock::new();
    let conf = StreamingConf::new("ui-files")
        .master("local[2]")
        .stop_on_signal(false)
        .ui_port(0)
        .manual_clock(clock.clone());
    let ssc = StreamingContext::new(conf, Seconds(1)).unwrap();
    let input = tempfile::tempdir().unwrap();
    ssc.text_file_stream(input.path()).print(1).unwrap();
    let events = Events::default();
    ssc.add_streaming_listener(events.clone());
    ssc.start().unwrap();
    std::fs::write(input.path().join("clicks-0001.log"), "a\nb\nc\n").unwrap();
    std::fs::write(input.path().join("clicks-0002.log"), "d\n").unwrap();
    clock.advance(Seconds(1));
    assert!(
        ssc.await_batch(Time::from_millis(1000), Duration::from_secs(20))
            .unwrap()
    );
    let infos = events.1.lock().unwrap().clone();
    let input_info = &infos[0].input_infos[0];
    assert_eq!(input_info.num_records, 4);
    assert_eq!(
        input_info.description.as_deref(),
        Some("2 file(s): clicks-0001.log, clicks-0002.log")
    );
    let (_, page) = get(&ssc.ui_url().unwrap());
    let row = &page[page.find("data-batch-id=\"1000\"").unwrap()..];
    assert!(
        row.contains("2 file(s): clicks-0001.log, clicks-0002.log"),
        "{row}"
    );
    ssc.stop(false).unwrap();
}
