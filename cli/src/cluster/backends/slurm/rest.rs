//! slurmrestd's REST API (`/slurm/v0.0.38/...`), the first way of reaching Slurm: requests
//! carrying the user's JWT (`X-SLURM-USER-NAME`, `X-SLURM-USER-TOKEN`), and its answers turned
//! into values or into errors that name the URL, the HTTP status and slurmrestd's own words,
//! with the fix; and the job calls the backend makes (`job/submit`, `job/ID` and its
//! `DELETE`, `jobs`).

use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::state::{Job, NoVal};
use super::{Accepted, DEFAULT_PATH, Request};
use crate::cluster::transport::http::describe;
use crate::error::with_help;

/// Where the JWT comes from (named in messages; the token itself never is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// An environment variable.
    Env(String),
    /// A file.
    File(std::path::PathBuf),
}

impl std::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Env(var) => write!(f, "`${var}`"),
            TokenSource::File(path) => write!(f, "`{}`", path.display()),
        }
    }
}

/// A client of one slurmrestd, for one cluster profile.
#[derive(Debug)]
pub struct Rest {
    /// The profile's name, for messages.
    cluster: String,
    /// `http://host:port`, without a trailing `/`.
    base: String,
    /// `v0.0.38`.
    api: String,
    /// `X-SLURM-USER-NAME`, when the profile names it.
    user: Option<String>,
    /// Where the token is read from.
    source: TokenSource,
    client: reqwest::blocking::Client,
}

/// A token and the user it is for.
struct Credentials {
    user: String,
    token: String,
}

impl Rest {
    /// A client for slurmrestd at `base`, speaking API `api`, as `user` (else the token's own
    /// user) with the token from `source`. Reads nothing yet.
    pub fn new(
        cluster: &str,
        base: &str,
        api: &str,
        user: Option<String>,
        source: TokenSource,
    ) -> anyhow::Result<Rest> {
        Ok(Rest {
            cluster: cluster.to_owned(),
            base: base.trim_end_matches('/').to_owned(),
            api: api.to_owned(),
            user,
            source,
            client: reqwest::blocking::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(60))
                .build()
                .context("failed to set up the HTTP client")?,
        })
    }

    /// The URL of `path` under the API (`job/submit` → `{base}/slurm/v0.0.38/job/submit`).
    pub fn url(&self, path: &str) -> String {
        format!("{}/slurm/{}/{path}", self.base, self.api)
    }

    /// Checks that a token can be read (before anything is uploaded).
    pub fn check_token(&self) -> anyhow::Result<()> {
        self.credentials().map(drop)
    }

    fn credentials(&self) -> anyhow::Result<Credentials> {
        let text = match &self.source {
            TokenSource::Env(var) => std::env::var(var).map_err(|_| {
                with_help(
                    anyhow::anyhow!(
                        "cluster `{}` takes its Slurm token from `${var}`, which is not set",
                        self.cluster
                    ),
                    format!("{}, or set `token-file`", token_help(&self.source)),
                )
            })?,
            TokenSource::File(path) => std::fs::read_to_string(path).map_err(|e| {
                with_help(
                    anyhow::Error::new(e).context(format!(
                        "failed to read the Slurm token file `{}` of cluster `{}`",
                        path.display(),
                        self.cluster
                    )),
                    token_help(&self.source),
                )
            })?,
        };
        // `scontrol token` prints `SLURM_JWT=<token>`: take that line as it is, too.
        let token = text.trim();
        let token = token.strip_prefix("SLURM_JWT=").unwrap_or(token).to_owned();
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err(with_help(
                anyhow::anyhow!(
                    "the Slurm token in {} is {}",
                    self.source,
                    if token.is_empty() {
                        "empty"
                    } else {
                        "not one word"
                    }
                ),
                token_help(&self.source),
            ));
        }
        let user = match &self.user {
            Some(user) => user.clone(),
            None => token_user(&token)
                .or_else(|| {
                    ["USER", "LOGNAME"]
                        .iter()
                        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
                })
                .ok_or_else(|| {
                    with_help(
                        anyhow::anyhow!(
                            "cluster `{}` names no Slurm user, and the token does not either",
                            self.cluster
                        ),
                        format!("set `user = \"NAME\"` under `[clusters.{}]`", self.cluster),
                    )
                })?,
        };
        Ok(Credentials { user, token })
    }

    /// `GET path`: the answer, read as a `T`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call(reqwest::Method::GET, path, None)
    }

    /// `POST path` with a JSON body: the answer, read as a `T`.
    pub fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> anyhow::Result<T> {
        self.call(reqwest::Method::POST, path, Some(body))
    }

    /// Sends a request; the HTTP status and the answer, whatever they are (errors only when
    /// no answer came).
    pub fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let credentials = self.credentials()?;
        let url = self.url(path);
        tracing::debug!(%method, %url, user = %credentials.user, "slurmrestd request");
        let mut request = self
            .client
            .request(method.clone(), &url)
            .header("X-SLURM-USER-NAME", &credentials.user)
            .header("X-SLURM-USER-TOKEN", sensitive(&credentials.token)?)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().map_err(|e| {
            with_help(
                anyhow::anyhow!("{method} {url}: {}", describe(&e)),
                format!(
                    "check that slurmrestd runs and listens at `{}` (`url` under `[clusters.{}]`), and that this machine reaches it",
                    self.base, self.cluster
                ),
            )
        })?;
        let code = response.status().as_u16();
        let text = response
            .text()
            .with_context(|| format!("{method} {url}: failed to read the answer"))?;
        Ok(Answer {
            method,
            url,
            user: credentials.user,
            code,
            errors: slurm_errors(&text),
            text,
        })
    }

    fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<T> {
        let answer = self.send(method, path, body)?;
        self.check(answer)
    }

    /// The answer read as a `T` if it is a success; else an error naming the URL, the
    /// status and slurmrestd's words, with the likely fix.
    pub fn check<T: DeserializeOwned>(&self, answer: Answer) -> anyhow::Result<T> {
        let Answer {
            method,
            url,
            user,
            code,
            errors,
            text,
        } = answer;
        if (200..300).contains(&code) && errors.is_empty() {
            return serde_json::from_str(&text).map_err(|e| {
                with_help(
                    anyhow::anyhow!(
                        "{method} {url}: HTTP {code}, but the answer is not what slurmrestd `{}` gives ({e}): {}",
                        self.api,
                        excerpt(&text)
                    ),
                    format!(
                        "check that `url` under `[clusters.{}]` is slurmrestd's, and that `api-version` names a version it serves",
                        self.cluster
                    ),
                )
            });
        }
        let said = if errors.is_empty() {
            excerpt(&text)
        } else {
            errors
                .iter()
                .map(SlurmError::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        let err = anyhow::anyhow!("{method} {url}: HTTP {code}: slurmrestd said: {said}");
        let refused = errors.iter().any(SlurmError::is_authentication);
        let help = match code {
            401 | 403 => format!(
                "slurmrestd refused the request as `{user}`: {}",
                token_help(&self.source)
            ),
            _ if refused => format!(
                "slurmctld most likely refused the token in {} (tokens expire, and must be signed with the cluster's `jwt_key`): {}",
                self.source,
                token_help(&self.source)
            ),
            404 => format!(
                "slurmrestd does not serve `{}` at `{}`: check `url` and `api-version` under `[clusters.{}]` (slurmrestd must load `-s openapi/{}`)",
                self.api, self.base, self.cluster, self.api
            ),
            400 => "slurmrestd could not read the job description: a `slurm.*` key given with `--conf` or in the profile's `conf` may be malformed; if not, this is a bug in cargo-stream".to_owned(),
            _ => format!(
                "this is Slurm's own refusal: check the job's resources (`driver-cores`, `driver-memory`, `partition`) against `sinfo` on cluster `{}`",
                self.cluster
            ),
        };
        Err(with_help(err, help))
    }
}

impl Rest {
    /// `POST job/submit`: the job's ID and slurmrestd's words about it.
    pub fn submit(&self, request: &Request) -> anyhow::Result<Accepted> {
        let answer: SubmitAnswer = self.post("job/submit", &description(request))?;
        answer.accepted()
    }

    /// `GET job/ID`: the job's entry of the `jobs` list; `None` when Slurm does not know it.
    pub fn job(&self, id: &str) -> anyhow::Result<Option<Job>> {
        let answer = self.send(reqwest::Method::GET, &format!("job/{id}"), None)?;
        if answer.errors.iter().any(|e| e.is_unknown_job()) {
            return Ok(None);
        }
        let jobs: Jobs = self.check(answer)?;
        Ok(jobs.jobs.into_iter().find(|j| j.is(id)))
    }

    /// `GET jobs`: every job the controller knows (pending, running, and ended ones until
    /// its `MinJobAge`), whoever submitted it.
    pub fn jobs(&self) -> anyhow::Result<Vec<Job>> {
        let jobs: Jobs = self.get("jobs")?;
        Ok(jobs.jobs)
    }

    /// `DELETE job/ID` (Slurm's cancel); false when Slurm does not know the job.
    pub fn cancel(&self, id: &str) -> anyhow::Result<bool> {
        let answer = self.send(reqwest::Method::DELETE, &format!("job/{id}"), None)?;
        if answer.errors.iter().any(|e| e.is_unknown_job()) {
            return Ok(false);
        }
        self.check::<serde::de::IgnoredAny>(answer)?;
        Ok(true)
    }
}

impl Rest {
    /// `DELETE job/ID?signal=SIGNAL`: the signal to every process of the job, its batch
    /// script included (slurmrestd sends it with `KILL_FULL_JOB`); false when Slurm does not
    /// know the job.
    pub fn signal(&self, id: &str, signal: &str) -> anyhow::Result<bool> {
        let answer = self.send(
            reqwest::Method::DELETE,
            &format!("job/{id}?signal={signal}"),
            None,
        )?;
        if answer.errors.iter().any(|e| e.is_unknown_job()) {
            return Ok(false);
        }
        self.check::<serde::de::IgnoredAny>(answer)?;
        Ok(true)
    }
}

/// The body of `job/submit` for `request`: `--conf slurm.FIELD=VALUE` options become fields
/// of the job description (numbers and booleans as JSON reads them, anything else a string).
pub fn description(request: &Request) -> Value {
    let dir = &request.dir;
    let mut environment = serde_json::Map::new();
    environment.insert("PATH".into(), DEFAULT_PATH.into());
    for (k, v) in &request.env {
        environment.insert(k.clone(), Value::String(v.clone()));
    }
    let mut description = json!({
        "name": request.name,
        "current_working_directory": dir,
        "standard_output": format!("{dir}/stdout"),
        "standard_error": format!("{dir}/stderr"),
        "standard_input": "/dev/null",
        "tasks": request.tasks.max(1),
        "cpus_per_task": request.cpus,
        "memory_per_node": request.memory_mib,
        "environment": environment,
    });
    if let Some(partition) = &request.partition {
        description["partition"] = Value::String(partition.clone());
    }
    for (field, value) in &request.options {
        let value =
            serde_json::from_str::<Value>(value).unwrap_or_else(|_| Value::String(value.clone()));
        description[field.as_str()] = value;
    }
    json!({ "job": description, "script": request.script })
}

/// An answer of slurmrestd, successful or not.
#[derive(Debug)]
pub struct Answer {
    method: reqwest::Method,
    url: String,
    user: String,
    /// The HTTP status.
    pub code: u16,
    /// The `errors` it listed.
    pub errors: Vec<SlurmError>,
    /// The body.
    pub text: String,
}

/// `job/submit`'s answer: the fields read.
#[derive(Debug, Deserialize)]
struct SubmitAnswer {
    #[serde(default)]
    job_id: Option<JobId>,
    #[serde(default)]
    job_submit_user_msg: Option<String>,
}

impl SubmitAnswer {
    /// The job's ID and slurmrestd's words about it.
    fn accepted(self) -> anyhow::Result<Accepted> {
        let note = self.job_submit_user_msg.filter(|m| !m.is_empty());
        let id = match self.job_id {
            Some(JobId::Number(n)) => match n.get() {
                Some(n) => n.to_string(),
                None => anyhow::bail!("slurmrestd accepted the job but gave an unset job_id"),
            },
            Some(JobId::Text(s)) if !s.is_empty() => s,
            _ => anyhow::bail!(
                "slurmrestd accepted the job but gave no job_id{}",
                note.map(|n| format!(" (it said: {n})")).unwrap_or_default()
            ),
        };
        let mut message = format!("Submitted batch job {id}");
        if let Some(note) = note {
            message.push_str(&format!(" ({note})"));
        }
        Ok(Accepted { id, message })
    }
}

/// A job ID as slurmrestd gives it: a number (plain or `{"set", "number"}`), or a string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum JobId {
    Number(NoVal),
    Text(String),
}

/// `job/ID`'s answer.
#[derive(Debug, Deserialize)]
struct Jobs {
    #[serde(default)]
    jobs: Vec<Job>,
}

/// One entry of an answer's `errors` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlurmError {
    /// Slurm's error number (`error_number` or `error_code`), if given.
    pub number: Option<i64>,
    /// The error's name (`Invalid job id specified`).
    pub error: String,
    /// Its description (`Unable to find JobId=9`), if given.
    pub description: Option<String>,
}

impl SlurmError {
    /// Slurm's `ESLURM_INVALID_JOB_ID`: the controller does not know the job (any more).
    pub fn is_unknown_job(&self) -> bool {
        self.number == Some(2017)
    }

    /// A failure slurmctld gives when it refuses the token (expired, badly signed): the
    /// REST answer only says "Unspecified error" (-1).
    fn is_authentication(&self) -> bool {
        self.number == Some(-1)
            || self.error.contains("Unspecified error")
            || self.error.to_ascii_lowercase().contains("authentication")
    }
}

impl std::fmt::Display for SlurmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)?;
        if let Some(d) = &self.description
            && !d.is_empty()
            && d != &self.error
        {
            write!(f, " ({d})")?;
        }
        if let Some(n) = self.number {
            write!(f, " [error {n}]")?;
        }
        Ok(())
    }
}

/// The `errors` of an answer (v0.0.38 gives `error`, `error_number` or `error_code`,
/// `description`, `source`); none when the body is not JSON or lists none.
pub fn slurm_errors(text: &str) -> Vec<SlurmError> {
    /// An entry of `errors`, each field as lenient as the versions need.
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        error_number: Option<i64>,
        #[serde(default)]
        error_code: Option<i64>,
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        description: Option<String>,
    }
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Option<Vec<Entry>>,
    }
    let entries = serde_json::from_str::<Errors>(text)
        .ok()
        .and_then(|e| e.errors)
        .unwrap_or_default();
    entries
        .into_iter()
        .map(|e| SlurmError {
            number: e.error_number.or(e.error_code),
            error: e
                .error
                .or_else(|| e.description.clone())
                .unwrap_or_else(|| "unknown error".to_owned()),
            description: e.description,
        })
        .collect()
}

/// The user a Slurm JWT is for (its `sun` claim), without checking the signature.
pub fn token_user(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    #[derive(Deserialize)]
    struct Claims {
        sun: Option<String>,
    }
    serde_json::from_slice::<Claims>(&bytes).ok()?.sun
}

/// The token as a header value marked sensitive, so that no debug output shows it.
fn sensitive(token: &str) -> anyhow::Result<reqwest::header::HeaderValue> {
    let mut value = reqwest::header::HeaderValue::from_str(token)
        .map_err(|_| anyhow::anyhow!("the Slurm token holds characters a header cannot"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// How to get a fresh token into `source`.
fn token_help(source: &TokenSource) -> String {
    match source {
        TokenSource::Env(var) if var == "SLURM_JWT" => {
            "get a fresh token on the cluster with `scontrol token` and `export SLURM_JWT=<token>` (`export $(scontrol token)` does both)".to_owned()
        }
        TokenSource::Env(var) => format!(
            "get a fresh token on the cluster with `scontrol token` and `export {var}=<token>` (the part after `SLURM_JWT=`)"
        ),
        TokenSource::File(path) => format!(
            "get a fresh token on the cluster with `scontrol token` and write it to `{}`",
            path.display()
        ),
    }
}

/// The start of a non-JSON answer, on one line.
fn excerpt(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return "(an empty answer)".into();
    }
    let mut out: String = line.chars().take(300).collect();
    if out.len() < line.len() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_of_both_spellings_parse() {
        let errors = slurm_errors(
            r#"{"errors": [
            {"description": "Unable to find JobId=9", "error_number": 2017,
             "error": "Invalid job id specified", "source": "slurm_load_job"},
            {"error_code": 2000, "error": "Invalid partition name specified"}
        ]}"#,
        );
        assert!(errors[0].is_unknown_job());
        assert_eq!(
            errors[0].to_string(),
            "Invalid job id specified (Unable to find JobId=9) [error 2017]"
        );
        assert_eq!(errors[1].number, Some(2000));
        assert!(slurm_errors(r#"{"errors": []}"#).is_empty());
        assert!(slurm_errors("<html>502</html>").is_empty());
    }

    #[test]
    fn descriptions_carry_resources_environment_and_fields() {
        let request = Request {
            tasks: 2,
            name: "wc".into(),
            partition: Some("batch".into()),
            cpus: 2,
            memory_mib: 512,
            dir: "/shared/jobs/wc-1".into(),
            env: [("A".to_owned(), "1".to_owned())].into_iter().collect(),
            options: vec![
                ("time_limit".into(), "60".into()),
                ("qos".into(), "debug".into()),
            ],
            script: "#!/bin/sh\n".into(),
        };
        let body = description(&request);
        let job = &body["job"];
        assert_eq!(job["standard_output"], "/shared/jobs/wc-1/stdout");
        assert_eq!(job["cpus_per_task"], 2);
        assert_eq!(job["tasks"], 2);
        assert_eq!(job["memory_per_node"], 512);
        assert_eq!(job["partition"], "batch");
        assert_eq!(job["environment"]["A"], "1");
        assert_eq!(job["environment"]["PATH"], DEFAULT_PATH);
        assert_eq!(job["time_limit"], 60);
        assert_eq!(job["qos"], "debug");
        assert_eq!(body["script"], "#!/bin/sh\n");
    }

    #[test]
    fn submit_answers_of_every_version_give_the_id() {
        let read = |json: &str| {
            serde_json::from_str::<SubmitAnswer>(json)
                .unwrap()
                .accepted()
        };
        // v0.0.38 (Slurm 22.05).
        let v38 = read(
            r#"{"meta": {}, "errors": [], "job_id": 12, "step_id": "BATCH",
                           "job_submit_user_msg": ""}"#,
        )
        .unwrap();
        assert_eq!(
            (v38.id.as_str(), v38.message.as_str()),
            ("12", "Submitted batch job 12")
        );
        // v0.0.40 and later (`result` holds the same again).
        let v40 = read(
            r#"{"result": {"job_id": 13, "step_id": "batch", "error_code": 0,
                                      "error": "", "job_submit_user_msg": "queued behind 4"},
                           "job_id": 13, "step_id": "batch",
                           "job_submit_user_msg": "queued behind 4", "errors": [],
                           "warnings": []}"#,
        )
        .unwrap();
        assert_eq!(v40.message, "Submitted batch job 13 (queued behind 4)");
        let err = read(r#"{"job_submit_user_msg": "denied"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "slurmrestd accepted the job but gave no job_id (it said: denied)"
        );
        let jobs: Jobs = serde_json::from_str(
            r#"{"jobs": [{"job_id": 5, "job_state": ["RUNNING"]},
                                                      {"job_id": 6, "job_state": "PENDING"}]}"#,
        )
        .unwrap();
        assert_eq!(
            jobs.jobs.iter().find(|j| j.is("6")).unwrap().state(),
            "PENDING"
        );
    }

    #[test]
    fn tokens_name_their_user() {
        // {"exp":1795540542,"iat":1795533342,"sun":"root"}, as `scontrol token` writes it.
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3OTU1NDA1NDIsImlhdCI6MTc5NTUzMzM0Miwic3VuIjoicm9vdCJ9.sig";
        assert_eq!(token_user(token).as_deref(), Some("root"));
        assert_eq!(token_user("garbage"), None);
    }
}
