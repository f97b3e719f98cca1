//! Cluster profiles: `[clusters.NAME]` tables, merged in layers, low to high: the user's
//! `clusters.toml` (`$XDG_CONFIG_HOME/cargo-stream/`, else `~/.config/cargo-stream/`), the
//! job's `Stream.toml`, `CARGO_STREAM_CLUSTERS_<NAME>_<KEY>` variables, then flags.
//!
//! ```toml
//! [clusters.prod]
//! kind = "spark-rest"                      # spark-rest | spark-ssh | ssh | slurm
//! master = "spark://m1:6066,m2:6066"       # REST gateways, tried in order
//! jwt-secret-env = "SPARK_JWT_SECRET"      # the variable holding the base64 secret
//! driver-cores = 1
//! driver-memory = "1g"
//! supervise = true
//! env = { RUST_LOG = "info" }
//! conf = { "spark.driver.extraJavaOptions" = "-Xss4m" }
//! upload = { to = "sftp", host = "m1", user = "stream", path = "/srv/jobs" }
//! ```
//!
//! A key unknown to every kind is an error naming the file and line; a key that does not apply
//! to the profile's kind, or an unknown kind, is an error naming the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::error::with_help;

/// The kinds of cluster manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A Spark standalone master's REST submission gateway (port 6066).
    SparkRest,
    /// `spark-submit --deploy-mode cluster` run on a host over SSH.
    SparkSsh,
    /// A plain Linux host over SSH: the job runs detached from the bundle's `run.sh`.
    Ssh,
    /// Slurm, through slurmrestd (`url`) or `sbatch` on a login node over SSH (`host`).
    Slurm,
}

impl Kind {
    const ALL: [(Kind, &'static str); 4] = [
        (Kind::SparkRest, "spark-rest"),
        (Kind::SparkSsh, "spark-ssh"),
        (Kind::Ssh, "ssh"),
        (Kind::Slurm, "slurm"),
    ];

    /// The kind's name as written in a profile.
    pub fn name(self) -> &'static str {
        Kind::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .expect("listed")
            .1
    }

    fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.iter().find(|(_, n)| *n == text).map(|(k, _)| *k)
    }

    /// The keys a profile of this kind may have besides the common ones.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::SparkRest => &[
                "master",
                "jwt-secret-env",
                "jwt-secret-file",
                "spark-version",
                "master-ui",
                "upload",
            ],
            Kind::SparkSsh => &[
                "host",
                "port",
                "user",
                "identity-file",
                "known-hosts",
                "master",
                "master-ui",
                "spark-home",
                "remote-dir",
            ],
            Kind::Ssh => &[
                "host",
                "port",
                "user",
                "identity-file",
                "known-hosts",
                "remote-dir",
            ],
            Kind::Slurm => &[
                "url",
                "user",
                "token-env",
                "token-file",
                "partition",
                "api-version",
                "upload",
                "host",
                "port",
                "identity-file",
                "known-hosts",
                "remote-dir",
                "slurm-conf",
            ],
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One `[clusters.NAME]` table, as one layer gives it: every key optional.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProfileLayer {
    /// `spark-rest`, `spark-ssh`, `ssh` or `slurm`.
    pub kind: Option<String>,
    /// Spark: the master (`spark://host:6066` for REST, comma-separated for fail-over).
    pub master: Option<String>,
    /// Spark REST: the environment variable that holds the JWT secret (base64).
    pub jwt_secret_env: Option<String>,
    /// Spark REST: a file that holds the JWT secret (base64).
    pub jwt_secret_file: Option<PathBuf>,
    /// Spark REST: the client version to announce (default 4.3.0).
    pub spark_version: Option<String>,
    /// Spark: the master's web UI, for `logs` (and `status` with spark-ssh); default: the
    /// master's host, port 8080.
    pub master_ui: Option<String>,
    /// spark-ssh: `SPARK_HOME` on the host.
    pub spark_home: Option<String>,
    /// SSH: host name or address.
    pub host: Option<String>,
    /// SSH: port (22).
    pub port: Option<u16>,
    /// SSH: user name.
    pub user: Option<String>,
    /// SSH: private key file; without it the SSH agent is asked.
    pub identity_file: Option<PathBuf>,
    /// SSH: the known_hosts file the host key is checked against (`~/.ssh/known_hosts`).
    pub known_hosts: Option<PathBuf>,
    /// ssh, spark-ssh and slurm over SSH: the folder on the host for uploads and submissions
    /// (`cargo-stream`, relative to the user's home).
    pub remote_dir: Option<String>,
    /// Slurm: slurmrestd's base URL.
    pub url: Option<String>,
    /// Slurm: the environment variable holding the user's JWT (`scontrol token`).
    pub token_env: Option<String>,
    /// Slurm: a file holding the user's JWT.
    pub token_file: Option<PathBuf>,
    /// Slurm: the partition.
    pub partition: Option<String>,
    /// Slurm: the REST API version (`v0.0.38`).
    pub api_version: Option<String>,
    /// Slurm over SSH: the `slurm.conf` Slurm's commands read on the login node
    /// (`SLURM_CONF`), when it is not their default.
    pub slurm_conf: Option<String>,
    /// spark-rest and slurm: where the artifact goes so that the cluster can read it.
    pub upload: Option<UploadLayer>,
    /// Default driver cores.
    pub driver_cores: Option<u32>,
    /// Default driver memory (`512m`, `2g`).
    pub driver_memory: Option<String>,
    /// Whether the cluster restarts a failed driver.
    pub supervise: Option<bool>,
    /// Environment variables for the job.
    pub env: Option<BTreeMap<String, String>>,
    /// Extra properties (Spark's `--conf`).
    pub conf: Option<BTreeMap<String, String>>,
    /// Seconds `kill` waits after SIGTERM before it forces the job down.
    pub kill_grace: Option<u64>,
}

/// `upload = { ... }`: how the artifact reaches a place the cluster reads.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UploadLayer {
    /// `dir` (a folder this machine and the cluster share) or `sftp`.
    pub to: Option<String>,
    /// The folder (on the SFTP host for `sftp`).
    pub path: Option<String>,
    /// The base URL the cluster reads the folder from; default `file://PATH`.
    pub url: Option<String>,
    /// sftp: host.
    pub host: Option<String>,
    /// sftp: port (22).
    pub port: Option<u16>,
    /// sftp: user.
    pub user: Option<String>,
    /// sftp: private key file; without it the SSH agent is asked.
    pub identity_file: Option<PathBuf>,
    /// sftp: known_hosts file.
    pub known_hosts: Option<PathBuf>,
}

const COMMON: [&str; 7] = [
    "kind",
    "driver-cores",
    "driver-memory",
    "supervise",
    "env",
    "conf",
    "kill-grace",
];

/// An SSH endpoint: where to connect, as whom, and how the host is recognised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SshTarget {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Private key file; `None` asks the SSH agent.
    pub identity_file: Option<PathBuf>,
    /// The known_hosts file the host key must be in.
    pub known_hosts: PathBuf,
}

impl std::fmt::Display for SshTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}:{}", self.user, self.host, self.port)
    }
}

/// Where the artifact is put for the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Upload {
    /// Copied into a folder this machine and the cluster share.
    Dir {
        /// The folder.
        path: PathBuf,
        /// The base URL the cluster reads it from, if not `file://`.
        url: Option<String>,
    },
    /// Uploaded over SFTP.
    Sftp {
        /// The SFTP host.
        ssh: SshTarget,
        /// The folder on it.
        path: String,
        /// The base URL the cluster reads it from, if not `file://`.
        url: Option<String>,
    },
}

/// A cluster profile, merged and checked.
#[derive(Clone, Debug)]
pub struct Profile {
    /// Its name, `NAME` in `[clusters.NAME]`.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// The merged keys.
    pub layer: ProfileLayer,
    /// The places it was read from, low to high.
    pub origins: Vec<String>,
}

impl Profile {
    /// A required key, or an error naming the profile, its files and the key.
    pub fn required<'a, T: ?Sized>(
        &'a self,
        key: &str,
        value: Option<&'a T>,
    ) -> anyhow::Result<&'a T> {
        value.ok_or_else(|| {
            with_help(
                anyhow::anyhow!(
                    "cluster `{}` (kind `{}`) has no `{key}`",
                    self.name,
                    self.kind
                ),
                format!(
                    "set `{key}` under `[clusters.{}]` in {}",
                    self.name,
                    self.origins.join(" or ")
                ),
            )
        })
    }

    /// The SSH endpoint of an `ssh` or `spark-ssh` profile, or of a `slurm` profile's login
    /// node.
    pub fn ssh(&self) -> anyhow::Result<SshTarget> {
        let l = &self.layer;
        Ok(SshTarget {
            host: self.required("host", l.host.as_deref())?.to_owned(),
            port: l.port.unwrap_or(22),
            user: match &l.user {
                Some(user) => user.clone(),
                None => std::env::var("USER").unwrap_or_else(|_| "root".into()),
            },
            identity_file: l.identity_file.as_deref().map(expand_home),
            known_hosts: known_hosts(l.known_hosts.as_deref()),
        })
    }

    /// Where the artifact goes: the `upload` table, or for `ssh` and `spark-ssh` profiles an
    /// SFTP upload to the host's `remote-dir/uploads`, for a `slurm` profile over SSH (a `host`,
    /// no `url`) one to the login node's `remote-dir` (whose `jobs/` holds the job folders).
    pub fn upload(&self) -> anyhow::Result<Upload> {
        let fallback_sftp = matches!(self.kind, Kind::Ssh | Kind::SparkSsh);
        let slurm_over_ssh =
            self.kind == Kind::Slurm && self.layer.url.is_none() && self.layer.host.is_some();
        let Some(up) = &self.layer.upload else {
            if fallback_sftp {
                return Ok(Upload::Sftp {
                    ssh: self.ssh()?,
                    path: format!("{}/uploads", self.remote_dir()),
                    url: None,
                });
            }
            if slurm_over_ssh {
                return Ok(Upload::Sftp {
                    ssh: self.ssh()?,
                    path: self.remote_dir(),
                    url: None,
                });
            }
            return Err(with_help(
                anyhow::anyhow!(
                    "cluster `{}` (kind `{}`) does not say where the artifact goes",
                    self.name,
                    self.kind
                ),
                format!(
                    "add `upload = {{ to = \"dir\", path = \"/shared/jobs\" }}` (a folder the cluster reads) or `upload = {{ to = \"sftp\", host = \"...\", path = \"...\" }}` under `[clusters.{}]`",
                    self.name
                ),
            ));
        };
        let path = self.required("upload.path", up.path.as_deref())?.to_owned();
        match up.to.as_deref() {
            Some("dir") | None if up.host.is_none() => Ok(Upload::Dir {
                path: expand_home(Path::new(&path)),
                url: up.url.clone(),
            }),
            Some("sftp") | None => Ok(Upload::Sftp {
                ssh: SshTarget {
                    host: match &up.host {
                        Some(h) => h.clone(),
                        None => self
                            .required("upload.host", self.layer.host.as_ref())?
                            .clone(),
                    },
                    port: up.port.or(self.layer.port).unwrap_or(22),
                    user: up
                        .user
                        .clone()
                        .or_else(|| self.layer.user.clone())
                        .or_else(|| std::env::var("USER").ok())
                        .unwrap_or_else(|| "root".into()),
                    identity_file: up
                        .identity_file
                        .as_deref()
                        .or(self.layer.identity_file.as_deref())
                        .map(expand_home),
                    known_hosts: known_hosts(
                        up.known_hosts
                            .as_deref()
                            .or(self.layer.known_hosts.as_deref()),
                    ),
                },
                path,
                url: up.url.clone(),
            }),
            Some(other) => Err(with_help(
                anyhow::anyhow!("cluster `{}`: unknown `upload.to = \"{other}\"`", self.name),
                "use `dir` (a folder the cluster also reads) or `sftp`",
            )),
        }
    }

    /// The folder on an SSH host for uploads and submissions.
    pub fn remote_dir(&self) -> String {
        self.layer
            .remote_dir
            .clone()
            .unwrap_or_else(|| "cargo-stream".into())
    }

    /// Seconds `kill` waits after SIGTERM (default 30).
    pub fn kill_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.layer.kill_grace.unwrap_or(30))
    }
}

fn known_hosts(path: Option<&Path>) -> PathBuf {
    match path {
        Some(p) => expand_home(p),
        None => expand_home(Path::new("~/.ssh/known_hosts")),
    }
}

/// `~/x` as `$HOME/x`.
pub fn expand_home(path: &Path) -> PathBuf {
    match path.strip_prefix("~") {
        Ok(rest) => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(rest),
            None => path.to_owned(),
        },
        Err(_) => path.to_owned(),
    }
}

/// The user's cluster file: `$CARGO_STREAM_CONFIG_DIR/clusters.toml`, else
/// `$XDG_CONFIG_HOME/cargo-stream/clusters.toml`, else `~/.config/cargo-stream/clusters.toml`.
pub fn user_file() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_STREAM_CONFIG_DIR") {
        return PathBuf::from(dir).join("clusters.toml");
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| expand_home(Path::new("~/.config")));
    base.join("cargo-stream").join("clusters.toml")
}

/// Reads the `[clusters.*]` tables of a TOML file (other tables are ignored).
pub fn read_file(path: &Path) -> anyhow::Result<BTreeMap<String, ProfileLayer>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("failed to read `{}`", path.display()))
            );
        }
    };
    // Only `clusters` is ours to check here; Stream.toml has other tables.
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("failed to parse `{}`", path.display()))?;
    if !table.contains_key("clusters") {
        return Ok(BTreeMap::new());
    }
    // Parse the text itself, not the table, so that errors carry the line.
    let mut file = match toml::from_str::<ClustersFile>(&text) {
        Ok(file) => file,
        Err(e) => {
            return Err(with_help(
                anyhow::anyhow!("{}", e.to_string().trim_end())
                    .context(format!("bad cluster profile in `{}`", path.display())),
                "the keys of `[clusters.NAME]` are described in `cargo stream submit --help`",
            ));
        }
    };
    for (name, layer) in &mut file.clusters {
        if let Some(kind) = &layer.kind {
            check_kind(
                name,
                kind,
                layer,
                &format!("`{}`", path.display()),
                Some(&text),
            )?;
        }
    }
    Ok(file.clusters)
}

/// The `clusters` table of a file, and whatever else it holds (ignored).
#[derive(Deserialize)]
struct ClustersFile {
    #[serde(default)]
    clusters: BTreeMap<String, ProfileLayer>,
    #[serde(flatten)]
    _rest: BTreeMap<String, toml::Value>,
}

/// Where `key` of `[clusters.NAME]` is in a file's text, as `, line N` (empty when the table
/// is written in a way this simple reader does not follow).
fn line_of(text: Option<&str>, name: &str, key: &str) -> String {
    let Some(text) = text else {
        return String::new();
    };
    let header = format!("clusters.{name}");
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(table) = line.strip_prefix('[') {
            let table: String = table
                .trim_end_matches(']')
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '"')
                .collect();
            inside = table == header;
        } else if inside
            && line
                .split_once('=')
                .is_some_and(|(k, _)| k.trim().trim_matches('"') == key)
        {
            return format!(", line {}", i + 1);
        }
    }
    String::new()
}

fn check_kind(
    name: &str,
    kind: &str,
    layer: &ProfileLayer,
    origin: &str,
    text: Option<&str>,
) -> anyhow::Result<Kind> {
    let Some(parsed) = Kind::parse(kind) else {
        let line = line_of(text, name, "kind");
        return Err(with_help(
            anyhow::anyhow!("cluster `{name}` in {origin}{line} has an unknown kind `{kind}`"),
            "use one of `spark-rest`, `spark-ssh`, `ssh`, `slurm`",
        ));
    };
    let value = toml::Value::try_from(layer).context("serialize a profile")?;
    if let Some(table) = value.as_table() {
        for key in table.keys() {
            if !COMMON.contains(&key.as_str()) && !parsed.keys().contains(&key.as_str()) {
                let line = line_of(text, name, key);
                return Err(with_help(
                    anyhow::anyhow!(
                        "cluster `{name}` in {origin}{line}: `{key}` does not apply to kind `{kind}`"
                    ),
                    format!(
                        "a `{kind}` profile takes {}",
                        COMMON
                            .iter()
                            .chain(parsed.keys())
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    Ok(parsed)
}

/// Loads profile `name`: the user file, then `stream_toml` (the job's, if any), then the
/// environment, then `flags`.
pub fn load(
    name: &str,
    stream_toml: Option<&Path>,
    flags: ProfileLayer,
) -> anyhow::Result<Profile> {
    let mut layers: Vec<(String, ProfileLayer)> = Vec::new();
    let user = user_file();
    let mut known: Vec<String> = Vec::new();
    for file in [Some(user.as_path()), stream_toml].into_iter().flatten() {
        let mut all = read_file(file)?;
        known.extend(all.keys().cloned());
        if let Some(layer) = all.remove(name) {
            layers.push((format!("`{}`", file.display()), layer));
        }
    }
    if let Some(env) = env_layer(name)? {
        layers.push((format!("CARGO_STREAM_CLUSTERS_{}_*", env_name(name)), env));
    }
    if layers.is_empty() {
        known.sort();
        known.dedup();
        let searched = [Some(user.as_path()), stream_toml]
            .into_iter()
            .flatten()
            .map(|p| format!("`{}`", p.display()))
            .collect::<Vec<_>>()
            .join(" and ");
        let help = if known.is_empty() {
            format!(
                "add a `[clusters.{name}]` table (with a `kind`) to {searched}; see `cargo stream submit --help`"
            )
        } else {
            format!(
                "the clusters defined are {}; or add `[clusters.{name}]` to {searched}",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(with_help(anyhow::anyhow!("unknown cluster `{name}`"), help));
    }
    layers.push(("the command line".into(), flags));
    let mut merged = ProfileLayer::default();
    let mut origins = Vec::new();
    for (origin, layer) in layers {
        merge(&mut merged, layer);
        origins.push(origin);
    }
    let origin = origins.join(" + ");
    let kind_text = merged.kind.clone().ok_or_else(|| {
        with_help(
            anyhow::anyhow!("cluster `{name}` has no `kind`"),
            format!(
                "set `kind` (`spark-rest`, `spark-ssh`, `ssh` or `slurm`) under `[clusters.{name}]` in {origin}"
            ),
        )
    })?;
    let kind = check_kind(name, &kind_text, &merged, &origin, None)?;
    origins.pop();
    Ok(Profile {
        name: name.to_owned(),
        kind,
        layer: merged,
        origins,
    })
}

/// `prod-eu` as `PROD_EU`.
fn env_name(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// `CARGO_STREAM_CLUSTERS_<NAME>_<KEY>` variables as a layer (`None` when there are none).
/// Scalar keys only; `upload` keys are `UPLOAD_<KEY>`.
fn env_layer(name: &str) -> anyhow::Result<Option<ProfileLayer>> {
    let prefix = format!("CARGO_STREAM_CLUSTERS_{}_", env_name(name));
    let mut table = toml::Table::new();
    let mut upload = toml::Table::new();
    for (key, value) in std::env::vars() {
        let Some(rest) = key.strip_prefix(&prefix) else {
            continue;
        };
        let (target, rest) = match rest.strip_prefix("UPLOAD_") {
            Some(r) => (&mut upload, r),
            None => (&mut table, rest),
        };
        let field = rest.to_ascii_lowercase().replace('_', "-");
        // Numbers and booleans as TOML reads them; anything else a string.
        let parsed = match value.parse::<i64>() {
            Ok(n) => toml::Value::Integer(n),
            Err(_) => match value.as_str() {
                "true" => toml::Value::Boolean(true),
                "false" => toml::Value::Boolean(false),
                _ => toml::Value::String(value.clone()),
            },
        };
        target.insert(field, parsed);
    }
    if !upload.is_empty() {
        table.insert("upload".into(), toml::Value::Table(upload));
    }
    if table.is_empty() {
        return Ok(None);
    }
    let layer: ProfileLayer =
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| {
                with_help(
                    anyhow::anyhow!("{}", e.message()).context(format!("bad `{prefix}*` variable")),
                    "the variable names are the profile's keys in capitals, `-` as `_`",
                )
            })?;
    Ok(Some(layer))
}

/// Overlays `top` on `base`, key by key (`env`, `conf` and `upload` merge their entries).
fn merge(base: &mut ProfileLayer, top: ProfileLayer) {
    macro_rules! over {
        ($($field:ident),*) => { $( if top.$field.is_some() { base.$field = top.$field; } )* };
    }
    over!(
        kind,
        master,
        jwt_secret_env,
        jwt_secret_file,
        spark_version,
        master_ui,
        spark_home,
        host,
        port,
        user,
        identity_file,
        known_hosts,
        remote_dir,
        url,
        token_env,
        token_file,
        partition,
        api_version,
        slurm_conf,
        driver_cores,
        driver_memory,
        supervise,
        kill_grace
    );
    for (field, top) in [(&mut base.env, top.env), (&mut base.conf, top.conf)] {
        if let Some(top) = top {
            field.get_or_insert_with(BTreeMap::new).extend(top);
        }
    }
    if let Some(top) = top.upload {
        let up = base.upload.get_or_insert_with(UploadLayer::default);
        macro_rules! over_up {
            ($($field:ident),*) => { $( if top.$field.is_some() { up.$field = top.$field; } )* };
        }
        over_up!(to, path, url, host, port, user, identity_file, known_hosts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(
            tmp.path(),
            "Stream.toml",
            "[job]\nname = \"x\"\n\n[clusters.prod]\nkind = \"spark-rest\"\nmastr = \"spark://h:6066\"\n",
        );
        let err = read_file(&path).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("Stream.toml"), "{text}");
        assert!(text.contains("line 6"), "{text}");
        assert!(text.contains("mastr"), "{text}");
    }

    #[test]
    fn unknown_kind_and_misplaced_key_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(tmp.path(), "a.toml", "[clusters.x]\nkind = \"yarn\"\n");
        let text = format!("{:#}", read_file(&path).unwrap_err());
        assert!(
            text.contains("unknown kind `yarn`") && text.contains("a.toml"),
            "{text}"
        );
        let path = write(
            tmp.path(),
            "b.toml",
            "[clusters.x]\nkind = \"slurm\"\nmaster = \"spark://h:6066\"\n",
        );
        let text = format!("{:#}", read_file(&path).unwrap_err());
        assert!(
            text.contains("`master` does not apply to kind `slurm`"),
            "{text}"
        );
    }

    #[test]
    fn the_template_examples_are_valid_profiles() {
        // The commented profiles every new job's Stream.toml shows, uncommented.
        let template = include_str!("../../../templates/_common/Stream.toml.tmpl");
        let text: String = template
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.starts_with("[clusters.")
                        || rest.split_once(" = ").is_some_and(|(k, _)| {
                            k.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                        }) =>
                {
                    rest.to_owned()
                }
                _ => l.to_owned(),
            })
            .map(|l| l.replace("{{name}}", "wc") + "\n")
            .collect();
        let tmp = tempfile::tempdir().unwrap();
        let path = write(tmp.path(), "Stream.toml", &text);
        let clusters = read_file(&path).unwrap();
        assert_eq!(
            clusters.keys().collect::<Vec<_>>(),
            ["box", "spark"],
            "{text}"
        );
        assert_eq!(clusters["spark"].driver_memory.as_deref(), Some("512m"));
    }

    #[test]
    fn layers_merge_key_by_key() {
        let mut base: ProfileLayer = toml::from_str(
            "kind = \"spark-rest\"\nmaster = \"spark://a:6066\"\nenv = { A = \"1\" }\nupload = { to = \"dir\", path = \"/x\" }\n",
        )
        .unwrap();
        let top: ProfileLayer = toml::from_str(
            "driver-cores = 2\nenv = { B = \"2\" }\nupload = { url = \"http://h/\" }\n",
        )
        .unwrap();
        merge(&mut base, top);
        assert_eq!(base.master.as_deref(), Some("spark://a:6066"));
        assert_eq!(base.driver_cores, Some(2));
        assert_eq!(base.env.as_ref().unwrap().len(), 2);
        let up = base.upload.unwrap();
        assert_eq!(up.path.as_deref(), Some("/x"));
        assert_eq!(up.url.as_deref(), Some("http://h/"));
    }
}
