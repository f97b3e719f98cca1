//! `spark-rest`: a Spark standalone master's REST submission gateway (protocol v1, port 6066).
//!
//! The gateway does not upload anything: the jar is staged first (a shared folder or SFTP, see
//! [`stage`]) and its URL given as `appResource`. Masters listed
//! comma-separated are tried in order, as `spark-submit` does for a standby/active pair. With a
//! JWT secret the requests carry `Authorization: Bearer` (a token that expires in minutes), as
//! Spark's `JWSFilter` demands, to the gateway and to the web UIs `logs` reads; `https://`
//! gateways are checked against the platform's trust store and the profile's `ca-file`, and a
//! token about to travel in clear to another host is warned about.
//! Logs come from the worker's web UI (`/log?driverId=...`), found through the master's
//! `/json/`.

use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cluster::backend::{
    Backend, JobSpec, JobState, Listed, LogStream, Payload, Status, Submitted,
};
use crate::cluster::backends::spark_master::{MasterState, RestAnswer, failure_message};
use crate::cluster::profile::{Profile, SparkRestKeys};
use crate::cluster::record::Record;
use crate::cluster::stage;
use crate::cluster::transport::http::describe;
use crate::cluster::transport::jwt;
use crate::error::with_help;
use crate::exit::Unreachable;
use crate::shell::Shell;

/// What a `spark-rest` record keeps (keys as Spark's REST protocol spells them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Submission {
    /// The gateway that took the job, asked first afterwards.
    pub gateway: String,
    /// The jar's URL as the cluster reads it.
    pub app_resource: String,
    /// The master's Spark version, as it answered.
    pub server_spark_version: Option<String>,
}

/// A Spark standalone cluster reached through its REST gateway.
#[derive(Debug)]
pub struct SparkRest {
    cluster: String,
    /// The `master` value as given (`spark://h1:6066,h2:6066`).
    master: String,
    /// The REST base URLs, in fail-over order.
    gateways: Vec<String>,
    /// The master's web UI (for `logs`).
    ui: String,
    secret: Option<Vec<u8>>,
    secret_source: Option<String>,
    version: String,
    profile: Profile,
    client: reqwest::blocking::Client,
}

impl SparkRest {
    /// The backend for a `spark-rest` profile. Reads the JWT secret now, so that a missing one
    /// is reported before anything is uploaded.
    pub fn new(profile: &Profile, keys: &SparkRestKeys) -> anyhow::Result<SparkRest> {
        let master = profile
            .required("master", keys.master.as_deref())?
            .to_owned();
        let gateways = gateways(&master).map_err(|e| {
            with_help(
                e.context(format!("cluster `{}`: bad `master`", profile.name)),
                "write `master = \"spark://HOST:6066\"` (several comma-separated for fail-over)",
            )
        })?;
        let ui = match &keys.master_ui {
            Some(ui) => ui.trim_end_matches('/').to_owned(),
            None => {
                let host = gateways[0]
                    .trim_start_matches("http://")
                    .trim_start_matches("https://")
                    .rsplit_once(':')
                    .map(|(h, _)| h.to_owned())
                    .unwrap_or_default();
                format!("http://{host}:8080")
            }
        };
        let (secret, secret_source) = secret(&profile.name, keys)?;
        Ok(SparkRest {
            cluster: profile.name.clone(),
            master,
            gateways,
            ui,
            secret,
            secret_source,
            version: keys.spark_version.clone().unwrap_or_else(|| "4.3.0".into()),
            profile: profile.clone(),
            client: crate::cluster::transport::http::client(keys.ca_file.as_deref())
                .with_context(|| format!("cluster `{}`", profile.name))?,
        })
    }

    /// The warning for a token about to travel in clear: a secret is set and a gateway or the
    /// web UI is plain `http://` on another host.
    fn clear_token_warning(&self) -> Option<String> {
        self.secret.as_ref()?;
        let clear: Vec<&str> = self
            .gateways
            .iter()
            .chain(std::iter::once(&self.ui))
            .map(String::as_str)
            .filter(|url| crate::cluster::transport::http::is_plain_remote(url))
            .collect();
        (!clear.is_empty()).then(|| {
            format!(
                "cluster `{}`: the JWT goes in clear to {} (plain HTTP): anyone on the way can read it and replay it until it expires; use `https://` (with `ca-file` for a private CA), or an SSH tunnel",
                self.cluster,
                clear.join(", ")
            )
        })
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::blocking::RequestBuilder {
        let mut request = self.client.request(method, url);
        if let Some(key) = &self.secret {
            let token = jwt::sign(
                key,
                &jwt::Claims::issued("cargo-stream", crate::cluster::record::now()),
            );
            request = request.bearer_auth(token);
        }
        request
    }

    /// Sends a request to each gateway in turn until one answers with `success: true`; the
    /// gateway that did and its answer.
    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        prefer: Option<&str>,
    ) -> anyhow::Result<(String, RestAnswer)> {
        let mut order: Vec<&String> = self.gateways.iter().collect();
        if let Some(first) = prefer
            && let Some(i) = order.iter().position(|g| *g == first)
        {
            let g = order.remove(i);
            order.insert(0, g);
        }
        let mut failures: Vec<anyhow::Error> = Vec::new();
        let mut refusals: Vec<String> = Vec::new();
        for gateway in order {
            let url = format!("{gateway}{path}");
            let mut request = self.request(method.clone(), &url);
            if let Some(body) = body {
                request = request.json(body);
            }
            tracing::debug!(%url, "spark rest request");
            let response = match request.send() {
                Ok(r) => r,
                Err(e) => {
                    failures.push(send_failure(&method, &url, &e));
                    continue;
                }
            };
            let code = response.status();
            let text = response
                .text()
                .with_context(|| format!("{method} {url}: failed to read the answer"))?;
            // Not JSON, or not the protocol's: no fields, and the text is the message.
            let answer: RestAnswer = serde_json::from_str(&text).unwrap_or_default();
            let message = answer
                .message
                .clone()
                .unwrap_or_else(|| text.trim().chars().take(500).collect());
            match code.as_u16() {
                200 if answer.success == Some(true) => {
                    return Ok((gateway.clone(), answer));
                }
                200 => {
                    // A standby master, or an ID this master does not know: try the next.
                    refusals.push(format!(
                        "{method} {url}: the master said: {}",
                        one_line(&message)
                    ));
                }
                400 => {
                    return Err(with_help(
                        anyhow::anyhow!(
                            "{method} {url}: HTTP 400, the master refused the request: {}",
                            one_line(&message)
                        ),
                        "Spark checks that `spark.driver.cores` and `spark.cores.max` are numbers, `spark.driver.memory` and `spark.executor.memory` sizes (`512m`, `2g`) and `spark.driver.supervise` true or false: check those given with `--conf`, `--driver-memory` or in the profile",
                    ));
                }
                401 | 403 => {
                    let help = match &self.secret_source {
                        Some(source) => format!(
                            "the master refused the token signed with the secret from {source}: check that it is the master's `spark.org.apache.spark.ui.JWSFilter.param.secretKey`"
                        ),
                        None => format!(
                            "the master requires a JWT: set `jwt-secret-env = \"VAR\"` (or `jwt-secret-file`) under `[clusters.{}]` and put the master's base64 secret in that variable",
                            self.cluster
                        ),
                    };
                    return Err(with_help(
                        anyhow::anyhow!(
                            "{method} {url}: HTTP {}, forbidden: {}",
                            code.as_u16(),
                            one_line(&message)
                        ),
                        help,
                    ));
                }
                468 => {
                    let highest = answer.highest_protocol_version.as_deref().unwrap_or("?");
                    return Err(with_help(
                        anyhow::anyhow!(
                            "{method} {url}: HTTP 468, the master does not speak this protocol version (it speaks up to {highest}): {}",
                            one_line(&message)
                        ),
                        "cargo-stream speaks Spark's REST protocol v1 (Spark 1.3 and later); check `master` points at a Spark standalone REST gateway",
                    ));
                }
                _ if is_web_page(&text) => {
                    // The master's web UI (8080) answers the gateway's paths with an HTML error
                    // page (HTTP 405 for a POST, 404 for a GET).
                    failures.push(with_help(
                        anyhow::anyhow!(
                            "{method} {url}: HTTP {}: this is a web page, not Spark's REST submission gateway: `master` points at the master's web UI (port 8080 by default)",
                            code.as_u16()
                        ),
                        REST_PORT_HELP,
                    ));
                }
                _ => {
                    failures.push(anyhow::anyhow!(
                        "{method} {url}: HTTP {}: {}",
                        code.as_u16(),
                        one_line(&message)
                    ));
                }
            }
        }
        if failures.is_empty() && !refusals.is_empty() {
            return Err(anyhow::Error::new(Refused(refusals.join("; "))));
        }
        failures.extend(refusals.into_iter().map(|r| anyhow::anyhow!(r)));
        let mut err = failures
            .pop()
            .unwrap_or_else(|| anyhow::anyhow!("no REST gateway to try"));
        for other in failures.into_iter().rev() {
            err = err.context(format!("{other:#}"));
        }
        Err(err)
    }

    fn state_of(answer: RestAnswer) -> Status {
        Status {
            state: answer.state(),
            message: answer.message.filter(|m| !m.is_empty()),
            location: answer.worker_host_port,
        }
    }

    /// The worker's web UI address for a driver, from the master's `/json/`.
    fn worker_ui(&self, record: &Record) -> anyhow::Result<String> {
        let (_, status) = self.call(
            reqwest::Method::GET,
            &format!("/v1/submissions/status/{}", record.id),
            None,
            Some(record.payload::<Submission>()?.gateway.as_str()),
        )?;
        let worker = status
            .worker_id
            .ok_or_else(|| anyhow::anyhow!("driver `{}` is not on a worker yet", record.id))?;
        let master = self.master_state()?;
        master
            .worker_ui(&worker)
            .ok_or_else(|| anyhow::anyhow!("the master at {} lists no worker `{worker}`", self.ui))
    }

    /// The text of a web UI page (the token sent along).
    fn get_text(&self, url: &str) -> anyhow::Result<String> {
        self.request(reqwest::Method::GET, url)
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
            .map_err(|e| http_error(&reqwest::Method::GET, url, &e))
    }

    /// The master's `/json/` (its workers and drivers), from its web UI.
    fn master_state(&self) -> anyhow::Result<MasterState> {
        let url = format!("{}/json/", self.ui);
        self.request(reqwest::Method::GET, &url)
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .map_err(|e| {
                with_help(
                    http_error(&reqwest::Method::GET, &url, &e),
                    format!(
                        "logs and the list of drivers are read through the master's web UI: set `master-ui = \"http://HOST:PORT\"` under `[clusters.{}]`",
                        self.cluster
                    ),
                )
            })
    }
}

impl Backend for SparkRest {
    fn submit(&self, shell: &mut Shell, job: &JobSpec) -> anyhow::Result<Submitted> {
        if let Some(warning) = self.clear_token_warning() {
            shell.warn(warning);
        }
        // The REST gateway uploads nothing: the profile must say where the workers read jars.
        let upload = self.profile.upload()?;
        let staged = stage::stage(shell, &upload, &job.artifact, &job.sha256)?;
        let mut properties = serde_json::Map::new();
        for (k, v) in [
            // The cluster's own URL for the master, whichever scheme reached its gateway.
            ("spark.master", spark_url(&self.master)),
            ("spark.app.name", job.name.clone()),
            ("spark.submit.deployMode", "cluster".into()),
            ("spark.jars", staged.url.clone()),
            ("spark.driver.supervise", job.supervise.to_string()),
            ("spark.driver.memory", job.driver_memory.clone()),
            ("spark.driver.cores", job.driver_cores.to_string()),
        ] {
            properties.insert(k.into(), Value::String(v));
        }
        for (k, v) in &job.conf {
            properties.insert(k.clone(), Value::String(v.clone()));
        }
        let body = json!({
            "action": "CreateSubmissionRequest",
            "appResource": staged.url,
            "mainClass": job.main_class,
            "appArgs": job.args,
            "clientSparkVersion": self.version,
            "environmentVariables": job.env,
            "sparkProperties": properties,
        });
        let (gateway, answer) = self
            .call(
                reqwest::Method::POST,
                "/v1/submissions/create",
                Some(&body),
                None,
            )
            .with_context(|| {
                format!(
                    "failed to submit `{}` to cluster `{}`",
                    job.artifact
                        .file_name()
                        .map(|f| f.to_string_lossy())
                        .unwrap_or_default(),
                    self.cluster
                )
            })?;
        let id = answer.submission_id.ok_or_else(|| {
            anyhow::anyhow!("the master accepted the job but gave no submissionId")
        })?;
        Ok(Submitted {
            id,
            message: answer.message.unwrap_or_default(),
            location: staged.url.clone(),
            data: Payload::SparkRest(Submission {
                gateway,
                app_resource: staged.url,
                server_spark_version: answer.server_spark_version,
            }),
        })
    }

    fn status(&self, record: &Record) -> anyhow::Result<Status> {
        match self.call(
            reqwest::Method::GET,
            &format!("/v1/submissions/status/{}", record.id),
            None,
            Some(record.payload::<Submission>()?.gateway.as_str()),
        ) {
            Ok((_, answer)) => {
                let mut status = SparkRest::state_of(answer);
                // A driver that exited non-zero: Spark says FAILED, the launcher says how.
                if status.state == JobState::Failed && status.message.is_none() {
                    status.message = self.master_state().ok().and_then(|master| {
                        failure_message(|url| self.get_text(url), &master, &record.id)
                    });
                }
                Ok(status)
            }
            Err(e) if e.downcast_ref::<Refused>().is_some() => Ok(Status {
                state: JobState::Unknown,
                message: Some(e.to_string()),
                location: None,
            }),
            Err(e) => Err(e.context(format!(
                "failed to get the status of `{}` from cluster `{}`",
                record.id, self.cluster
            ))),
        }
    }

    fn kill(&self, record: &Record, grace: Duration) -> anyhow::Result<String> {
        // Spark's worker sends the driver SIGTERM (the launcher passes it to the job, which
        // stops gracefully and checkpoints) and forces it after
        // `spark.worker.driverTerminateTimeout`; we wait for the final state.
        let (_, answer) = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/submissions/kill/{}", record.id),
                None,
                Some(record.payload::<Submission>()?.gateway.as_str()),
            )
            .with_context(|| {
                format!(
                    "failed to kill `{}` on cluster `{}`",
                    record.id, self.cluster
                )
            })?;
        let message = answer.message.unwrap_or_default();
        let deadline = std::time::Instant::now() + grace;
        loop {
            let status = self.status(record)?;
            if status.state.is_final() || std::time::Instant::now() >= deadline {
                return Ok(message);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn adopt(&self, _id: &str) -> anyhow::Result<Payload> {
        // The status asks every gateway in turn: the first is as good a guess as any.
        Ok(Payload::SparkRest(Submission {
            gateway: self.gateways[0].clone(),
            app_resource: String::new(),
            server_spark_version: None,
        }))
    }

    fn jobs(&self) -> anyhow::Result<Vec<Listed>> {
        Ok(self.master_state()?.listed())
    }

    fn logs(&self, record: &Record, stream: LogStream, offset: u64) -> anyhow::Result<Vec<u8>> {
        let worker = self.worker_ui(record)?;
        driver_log(
            |url| self.get_text(url),
            &worker,
            &record.id,
            stream,
            offset,
        )
    }
}

/// A driver's log from byte `offset` on, read page by page from the worker's web UI at `ui`
/// (`/log?driverId=...`), `get` fetching each page. Empty when the log does not exist yet.
pub(crate) fn driver_log(
    get: impl Fn(&str) -> anyhow::Result<String>,
    ui: &str,
    id: &str,
    stream: LogStream,
    offset: u64,
) -> anyhow::Result<Vec<u8>> {
    const PAGE: u64 = 100 * 1024;
    let mut out = Vec::new();
    let mut from = offset;
    loop {
        let url = format!(
            "{ui}/log?driverId={id}&logType={}&offset={from}&byteLength={PAGE}",
            stream.name()
        );
        let text = get(&url)?;
        let Some((range, body)) = parse_log_page(&text) else {
            return Ok(out);
        };
        // Spark clamps the offset into the file: a log that shrank (rotated) has nothing new
        // at our offset.
        if range.start != from {
            tracing::debug!(from, ?range, "log range moved");
            return Ok(out);
        }
        out.extend_from_slice(body.as_bytes());
        if range.end >= range.total || range.end <= from {
            return Ok(out);
        }
        from = range.end;
    }
}

/// What to do when `master` is not the REST gateway.
const REST_PORT_HELP: &str = "Spark's REST submission gateway listens on port 6066 by default and must be enabled on the master (`spark.master.rest.enabled=true`, e.g. in `SPARK_MASTER_OPTS`): write `master = \"spark://HOST:6066\"`";

/// A request that got no HTTP answer: the cluster could not be reached ([`Unreachable`],
/// asked again by the following verbs), or, for a connection closed without an answer,
/// probably the master's cluster port (7077), which speaks Spark's RPC, not HTTP.
fn send_failure(method: &reqwest::Method, url: &str, e: &reqwest::Error) -> anyhow::Error {
    let text = describe(e);
    if text.contains("connection closed before message completed") {
        return with_help(
            anyhow::Error::new(Unreachable(format!(
                "{method} {url}: the server closed the connection without an HTTP answer: if this is the master's cluster port (7077 by default), it speaks Spark's RPC, not the REST protocol ({text})"
            ))),
            REST_PORT_HELP,
        );
    }
    with_help(
        http_error(method, url, e),
        "check that the master runs with `spark.master.rest.enabled=true` and that its REST port (6066 by default) is reachable from here, or use a `spark-ssh` profile",
    )
}

/// `METHOD URL: cause`, typed [`Unreachable`] when the request could not connect, timed out or
/// lost its connection.
fn http_error(method: &reqwest::Method, url: &str, e: &reqwest::Error) -> anyhow::Error {
    let text = format!("{method} {url}: {}", describe(e));
    if e.is_connect() || e.is_timeout() || (e.is_request() && e.status().is_none()) {
        anyhow::Error::new(Unreachable(text))
    } else {
        anyhow::anyhow!(text)
    }
}

/// Whether an answer is an HTML page (a web UI's), not the REST protocol's JSON.
fn is_web_page(text: &str) -> bool {
    let head = text.trim_start().get(..64).unwrap_or(text.trim_start());
    let head = head.to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.starts_with("<html") || head.contains("<head")
}

/// Every master reachable answered, with `success: false` (a standby master, an unknown ID, a
/// driver that already ended): the masters' words.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// `==== Bytes START-END of TOTAL of PATH ====`.
#[derive(Debug, PartialEq, Eq)]
struct LogRange {
    start: u64,
    end: u64,
    total: u64,
}

/// Splits the worker's `/log` answer into its byte range and the bytes.
fn parse_log_page(text: &str) -> Option<(LogRange, &str)> {
    let (head, body) = text.split_once('\n').unwrap_or((text, ""));
    let rest = head.strip_prefix("==== Bytes ")?;
    let (range, rest) = rest.split_once(" of ")?;
    let (total, _) = rest.split_once(" of ")?;
    let (start, end) = range.split_once('-')?;
    Some((
        LogRange {
            start: start.parse().ok()?,
            end: end.parse().ok()?,
            total: total.parse().ok()?,
        },
        body,
    ))
}

/// `https://h:6066` (or `http://`) as `spark://h:6066`: what the driver's `spark.master` reads.
fn spark_url(master: &str) -> String {
    match master
        .strip_prefix("https://")
        .or_else(|| master.strip_prefix("http://"))
    {
        Some(rest) => format!("spark://{}", rest.trim_end_matches('/')),
        None => master.to_owned(),
    }
}

/// `spark://h1:6066,h2` as `["http://h1:6066", "http://h2:6066"]`.
fn gateways(master: &str) -> anyhow::Result<Vec<String>> {
    let (scheme, hosts) = if let Some(rest) = master.strip_prefix("spark://") {
        ("http", rest)
    } else if let Some(rest) = master.strip_prefix("http://") {
        ("http", rest)
    } else if let Some(rest) = master.strip_prefix("https://") {
        ("https", rest)
    } else {
        anyhow::bail!("`{master}` is not a `spark://HOST:PORT` URL");
    };
    let list: Vec<String> = hosts
        .trim_end_matches('/')
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            if h.contains(':') {
                format!("{scheme}://{h}")
            } else {
                format!("{scheme}://{h}:6066")
            }
        })
        .collect();
    if list.is_empty() {
        anyhow::bail!("`{master}` names no host");
    }
    Ok(list)
}

/// The JWT secret, and where it came from (for messages; never the secret itself).
fn secret(
    cluster: &str,
    keys: &SparkRestKeys,
) -> anyhow::Result<(Option<Vec<u8>>, Option<String>)> {
    if let Some(var) = &keys.jwt_secret_env {
        let text = std::env::var(var).map_err(|_| {
            with_help(
                anyhow::anyhow!(
                    "cluster `{cluster}` takes its JWT secret from `${var}`, which is not set"
                ),
                format!("export {var}=<the master's base64 secret>"),
            )
        })?;
        let key =
            jwt::decode_secret(&text).with_context(|| format!("bad JWT secret in `${var}`"))?;
        return Ok((Some(key), Some(format!("`${var}`"))));
    }
    if let Some(file) = &keys.jwt_secret_file {
        let file = crate::cluster::profile::expand_home(file);
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("failed to read the JWT secret file `{}`", file.display()))?;
        let key = jwt::decode_secret(&text)
            .with_context(|| format!("bad JWT secret in `{}`", file.display()))?;
        return Ok((Some(key), Some(format!("`{}`", file.display()))));
    }
    Ok((None, None))
}

/// `at a.b.C.m(C.java:12)`, `a.b.C.m(Unknown Source)`, `... 3 more`.
fn is_stack_frame(line: &str) -> bool {
    let line = line.strip_prefix("at ").unwrap_or(line);
    (line.starts_with("...") && line.ends_with("more"))
        || (line.ends_with(')')
            && line
                .split_once('(')
                .is_some_and(|(call, _)| call.contains('.') && !call.contains(' ')))
}

/// A Java exception's text without its stack frames, on one line: Spark's messages are
/// "Exception from the cluster:\n<exception>\n\tat ...", or an exception with its causes.
fn one_line(text: &str) -> String {
    crate::error::one_line(text, " ", is_stack_frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_pages_are_told_from_rest_answers() {
        assert!(is_web_page(
            "<html>\n<head>\n<meta http-equiv=\"Content-Type\"/><title>Error 405</title>"
        ));
        assert!(is_web_page("  <!DOCTYPE html><html>"));
        assert!(!is_web_page(
            r#"{"action": "ErrorResponse", "message": "<html>"}"#
        ));
        assert!(!is_web_page(""));
    }

    #[test]
    fn masters_become_gateways() {
        assert_eq!(
            gateways("spark://a:6066,b").unwrap(),
            ["http://a:6066", "http://b:6066"]
        );
        assert_eq!(gateways("https://a:1/").unwrap(), ["https://a:1"]);
        assert_eq!(spark_url("https://a:1/"), "spark://a:1");
        assert_eq!(spark_url("spark://a:1,b:2"), "spark://a:1,b:2");
        assert!(gateways("yarn").is_err());
    }

    #[test]
    fn log_pages_parse() {
        let (range, body) =
            parse_log_page("==== Bytes 0-5 of 5 of /w/driver-1/stdout ====\nhello").unwrap();
        assert_eq!(
            range,
            LogRange {
                start: 0,
                end: 5,
                total: 5
            }
        );
        assert_eq!(body, "hello");
        assert!(parse_log_page("Error: no log").is_none());
    }

    #[test]
    fn cluster_errors_keep_the_exception_line() {
        assert_eq!(
            one_line(
                "Exception from the cluster:\njava.nio.file.NoSuchFileException: /x.jar\n\tat a.B.c(B.java:3)\n\tsun.nio.Fs.open(Native Method)\n\t... 4 more"
            ),
            "Exception from the cluster: java.nio.file.NoSuchFileException: /x.jar"
        );
    }
}
