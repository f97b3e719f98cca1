//! A submitted job's status server, as this machine reaches it: where the job announced it
//! (the `cargo-stream-ui` line its log starts with, [`Announcement`]), the way there (directly,
//! or through the SSH connection of `ssh`, `spark-ssh` and `slurm`-over-SSH profiles, so that a
//! server bound to the driver's 127.0.0.1 is reachable too), and what `status` shows of it:
//! Spark's streaming statistics and receivers (the runtime's own typed shapes,
//! `cargo_stream_runtime::ui::api`) and the Kafka lag from `/metrics`.

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use anyhow::Context as _;
use cargo_stream_runtime::ui::announce::{self, Announcement};
use cargo_stream_runtime::ui::api::{ApplicationInfo, ReceiverInfo, StreamingStatistics};
use serde::Serialize;

use crate::cluster::backend::{Backend, JobState, LogStream, Status};
use crate::cluster::follow;
use crate::cluster::profile::{Kind, Profile};
use crate::cluster::record::Record;
use crate::cluster::transport::ssh::Session;
use crate::error::with_help;
use crate::machine_message;
use crate::shell::Shell;

/// How long one request to the driver may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The announcement in the job's log, `None` when the job has printed none (yet).
pub fn announcement(
    backend: &dyn Backend,
    record: &Record,
) -> anyhow::Result<Option<Announcement>> {
    let log = backend
        .logs(record, LogStream::Stderr, 0)
        .with_context(|| format!("failed to read the log of `{}`", record.id))?;
    Ok(Announcement::newest_in(&String::from_utf8_lossy(&log)))
}

/// The profile a job was submitted with, as its record keeps it.
pub fn profile_of(record: &Record) -> Profile {
    Profile {
        name: record.cluster.clone(),
        keys: record.profile.clone(),
        origins: vec![format!("the record of `{}`", record.id)],
    }
}

/// The SSH connection of a profile that has one (`ssh`, `spark-ssh`, `slurm` with a `host`).
pub fn ssh_of(record: &Record) -> Option<anyhow::Result<Session>> {
    let profile = profile_of(record);
    if profile.kind() == Kind::SparkRest {
        return None;
    }
    let target = profile.ssh().ok()?;
    Some(Session::connect(&target))
}

/// The way to a job's status server.
pub struct Route {
    /// The base URL as the requests' last hop sees it (`http://127.0.0.1:4040`).
    base: String,
    /// The page's URL for the user.
    pub url: String,
    /// How it is reached, for the user (`directly`, `through SSH to user@host:22`).
    pub via: String,
    way: Way,
}

enum Way {
    Direct(reqwest::blocking::Client),
    Ssh(Session),
}

impl Route {
    /// The way to the server `ann` announced: through the profile's SSH connection when it has
    /// one, else directly. Fails, with what to change, when the server cannot be reached from
    /// here (bound to the driver's loopback on another host).
    pub fn to(record: &Record, ann: &Announcement) -> anyhow::Result<Route> {
        let (Some(url), Some(port)) = (&ann.url, ann.port) else {
            return Err(with_help(
                anyhow::anyhow!("`{}` runs without a status server", record.id),
                "the job turned it off (`StreamingConf::ui(false)`), or no port was free: see its log (`cargo stream logs ID --stderr`)",
            ));
        };
        let url = url.trim_end_matches('/').to_owned();
        let loopback_help = || {
            format!(
                "the driver on `{}` listens on its 127.0.0.1 only: submit with `--env {}=0.0.0.0` (its page has no authentication: on a trusted network only)",
                ann.host,
                announce::HOST_ENV
            )
        };
        if let Some(session) = ssh_of(record) {
            let session = session?;
            let base = if ann.loopback_only() {
                let same_host = profile_of(record).kind() == Kind::Ssh || {
                    let out = session.exec("hostname")?;
                    out.stdout.trim() == ann.host
                };
                if !same_host {
                    return Err(with_help(
                        anyhow::anyhow!(
                            "the status server of `{}` is not reachable from `{}`",
                            record.id,
                            session.target()
                        ),
                        loopback_help(),
                    ));
                }
                format!("http://127.0.0.1:{port}")
            } else {
                url.clone()
            };
            return Ok(Route {
                base,
                url: format!("{url}/"),
                via: format!("through SSH to {}", session.target()),
                way: Way::Ssh(session),
            });
        }
        if ann.loopback_only() && ann.host != announce::host_name() {
            return Err(with_help(
                anyhow::anyhow!(
                    "the status server of `{}` is not reachable from this machine",
                    record.id
                ),
                loopback_help(),
            ));
        }
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT)
            .build()
            .context("failed to set up the HTTP client")?;
        Ok(Route {
            base: url.clone(),
            url: format!("{url}/"),
            via: "directly".into(),
            way: Way::Direct(client),
        })
    }

    /// The body of `GET path` (`/api/v1/...`).
    pub fn get(&self, path: &str) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.base);
        match &self.way {
            Way::Direct(client) => client
                .get(&url)
                .send()
                .and_then(|r| r.error_for_status())
                .and_then(|r| r.text())
                .map_err(|e| {
                    anyhow::anyhow!(
                        "GET {url}: {}",
                        crate::cluster::transport::http::describe(&e)
                    )
                }),
            Way::Ssh(session) => session.http_get_within(&url, TIMEOUT),
        }
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let body = self.get(path)?;
        serde_json::from_str(&body).with_context(|| {
            format!(
                "`{}{path}` did not answer in the shape of Spark's REST API",
                self.base
            )
        })
    }

    /// The streaming statistics, receivers and Kafka lag now.
    pub fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let apps: Vec<ApplicationInfo> = self.get_json("/api/v1/applications")?;
        let app = apps
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("`{}` serves no application", self.url))?;
        let base = format!("/api/v1/applications/{}/streaming", app.id);
        let statistics = self.get_json(&format!("{base}/statistics"))?;
        let receivers = self.get_json(&format!("{base}/receivers"))?;
        let lag = lag_of(&self.get("/metrics")?);
        Ok(Snapshot {
            url: self.url.clone(),
            app_id: app.id,
            statistics,
            receivers,
            lag,
        })
    }
}

/// What `status` shows of a running job's driver.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// The status page.
    pub url: String,
    /// The application's id.
    pub app_id: String,
    /// Spark's `/streaming/statistics`.
    pub statistics: StreamingStatistics,
    /// Spark's `/streaming/receivers`.
    pub receivers: Vec<ReceiverInfo>,
    /// Records each Kafka partition holds past the newest batch.
    pub lag: Vec<PartitionLag>,
}

/// One partition's lag, from `cargo_stream_input_lag_records` in `/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Records past the newest batch's range.
    pub records: u64,
}

/// The lag samples of a Prometheus text exposition.
fn lag_of(metrics: &str) -> Vec<PartitionLag> {
    metrics
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("cargo_stream_input_lag_records{")?;
            let (labels, value) = rest.rsplit_once("} ")?;
            let label = |name: &str| {
                labels.split("\",").find_map(|kv| {
                    let (k, v) = kv.split_once("=\"")?;
                    (k == name).then(|| v.trim_end_matches('"').to_owned())
                })
            };
            Some(PartitionLag {
                topic: label("topic")?,
                partition: label("partition")?.parse().ok()?,
                records: value.trim().parse::<f64>().ok()? as u64,
            })
        })
        .collect()
}

/// What `status` reports of the driver: its numbers, or why there are none.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriverReport {
    /// The numbers, when the driver answered.
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    pub snapshot: Option<Snapshot>,
    /// Why there are no numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<String>,
}

/// Asks a job's driver for its numbers; never fails: an unreachable driver is a report too.
pub fn report(backend: &dyn Backend, record: &Record, route: &mut Option<Route>) -> DriverReport {
    let unreachable = |e: anyhow::Error| DriverReport {
        snapshot: None,
        unreachable: Some(one_line(&e)),
    };
    if route.is_none() {
        match announcement(backend, record) {
            Ok(Some(ann)) => match Route::to(record, &ann) {
                Ok(r) => *route = Some(r),
                Err(e) => return unreachable(e),
            },
            Ok(None) => {
                return unreachable(anyhow::anyhow!(
                    "the driver has not announced a status page (no `{}` line in its log yet)",
                    announce::PREFIX.trim()
                ));
            }
            Err(e) => return unreachable(e),
        }
    }
    let Some(r) = route.as_ref() else {
        return unreachable(anyhow::anyhow!("no route to the driver"));
    };
    match r.snapshot() {
        Ok(snapshot) => DriverReport {
            snapshot: Some(snapshot),
            unreachable: None,
        },
        Err(e) => {
            // A relaunched driver announces another port: look again next time.
            let via = r.via.clone();
            *route = None;
            unreachable(e.context(format!("the driver's status server ({via}) did not answer")))
        }
    }
}

/// An error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    let mut text = crate::error::messages(e).join(": ");
    if let Some(help) = crate::error::help_of(e) {
        text.push_str(&format!(" (help: {help})"));
    }
    text
}

/// The report as `status` prints it: `(label, text)` lines.
pub fn lines(report: &DriverReport) -> Vec<(&'static str, String)> {
    let Some(s) = &report.snapshot else {
        return vec![(
            "Unreachable",
            format!(
                "driver: {}",
                report.unreachable.as_deref().unwrap_or("no answer")
            ),
        )];
    };
    let st = &s.statistics;
    let ms = |v: Option<u64>| v.map_or("-".to_owned(), |v| format!("{v} ms"));
    let mut out = vec![
        ("Status page", s.url.clone()),
        (
            "Batches",
            format!(
                "{} completed, {} pending or running ({} ms interval), {} records processed",
                st.num_total_completed_batches,
                st.num_active_batches,
                st.batch_duration,
                st.num_processed_records
            ),
        ),
        (
            "Input rate",
            st.avg_input_rate
                .map_or("-".to_owned(), |r| format!("{r:.1} records/s")),
        ),
        (
            "Delays",
            format!(
                "scheduling {}, processing {}, total {}",
                ms(st.avg_scheduling_delay),
                ms(st.avg_processing_time),
                ms(st.avg_total_delay)
            ),
        ),
    ];
    for r in &s.receivers {
        let mut text = format!(
            "{} {}: {}",
            r.stream_id,
            r.stream_name,
            if r.is_active == Some(true) {
                "active"
            } else {
                "inactive"
            }
        );
        if let Some(rate) = r.avg_event_rate {
            text.push_str(&format!(", {rate:.1} records/s"));
        }
        if let Some(err) = &r.last_error_message {
            text.push_str(&format!(", last error: {err}"));
        }
        out.push(("Receiver", text));
    }
    for l in &s.lag {
        out.push((
            "Kafka lag",
            format!("{}/{}: {} records", l.topic, l.partition, l.records),
        ));
    }
    out
}

/// How often `status --watch` refreshes.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

/// `status --watch`: the job's state and its driver's numbers every [`WATCH_EVERY`] until the
/// job ends, redrawn in place on a terminal, else printed again each time (a `status` line
/// each time with `json`). Each refresh is bounded (the cluster's and the driver's timeouts);
/// the job's end, or Ctrl-C, ends it. Returns the final status.
pub fn watch(
    shell: &mut Shell,
    backend: &dyn Backend,
    record: &mut Record,
    json: bool,
) -> anyhow::Result<Status> {
    let tty = !json && std::io::stderr().is_terminal();
    let mut route = None;
    let mut drawn = 0usize;
    loop {
        let status = follow::refresh(backend, record)?;
        let driver =
            (status.state == JobState::Running).then(|| report(backend, record, &mut route));
        if json {
            emit_status(record, &status, driver.as_ref())?;
        } else {
            let mut block = vec![("State", format!("`{}` is {}", record.id, status.state))];
            if let Some(location) = &status.location {
                block.push(("On", location.clone()));
            }
            block.extend(driver.iter().flat_map(lines));
            if tty && drawn > 0 {
                // Up to the first line of the previous block, and clear to the end.
                let _ = write!(std::io::stderr(), "\x1b[{drawn}A\x1b[J");
            }
            for (label, text) in &block {
                shell.status(label, text);
            }
            drawn = block.len();
        }
        if status.state.is_final() {
            return Ok(status);
        }
        std::thread::sleep(WATCH_EVERY);
    }
}

/// The `status` line of `--json`, with the driver's numbers when asked for.
pub fn emit_status(
    record: &Record,
    status: &Status,
    driver: Option<&DriverReport>,
) -> anyhow::Result<()> {
    machine_message::emit(&machine_message::Status {
        job: machine_message::Job::from(record),
        state: status.state,
        message: status.message.as_deref(),
        location: status.location.as_deref(),
        submitted_at: record.submitted_at,
        driver,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_read_from_the_metrics() {
        let text = "# TYPE cargo_stream_input_lag_records gauge\n\
            cargo_stream_input_lag_records{input_stream_id=\"0\",source=\"kafka\",topic=\"a,\\\"b\",partition=\"3\"} 42\n\
            cargo_stream_batches_waiting 0\n";
        assert_eq!(
            lag_of(text),
            vec![PartitionLag {
                topic: "a,\\\"b".into(),
                partition: 3,
                records: 42
            }]
        );
    }
}
