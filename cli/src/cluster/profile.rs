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
//! A profile is typed by its kind ([`ProfileKeys`], one key struct per kind). Every layer is
//! read as its kind's keys and merged by [`crate::layers::overlay`]; a key unknown to the kind,
//! an unknown kind or a bad value is an error naming the file, line and column (the TOML
//! parser's spans), and environment values are parsed as their key's type.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::DeValue;

use crate::config::{StreamToml, UserConfig};
use crate::error::with_help;
use crate::layers::{self, TomlFile, table_of};

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

    /// The kind named `text` (`spark-rest`, ...).
    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.iter().find(|(_, n)| *n == text).map(|(k, _)| *k)
    }

    /// The keys a profile of this kind takes besides `kind`, as its key struct declares them.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::SparkRest => layers::keys_of::<SparkRestKeys>(),
            Kind::SparkSsh => layers::keys_of::<SparkSshKeys>(),
            Kind::Ssh => layers::keys_of::<SshHostKeys>(),
            Kind::Slurm => layers::keys_of::<SlurmKeys>(),
        }
    }

    /// A profile of this kind with no key set.
    pub fn empty(self) -> ProfileKeys {
        match self {
            Kind::SparkRest => ProfileKeys::SparkRest(SparkRestKeys::default()),
            Kind::SparkSsh => ProfileKeys::SparkSsh(SparkSshKeys::default()),
            Kind::Ssh => ProfileKeys::Ssh(SshHostKeys::default()),
            Kind::Slurm => ProfileKeys::Slurm(SlurmKeys::default()),
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Declares [`CommonKeys`] and each kind's key struct: its own keys, then the common ones
/// (serde's `deny_unknown_fields` does not work through `flatten`, so they are spelled into
/// each).
macro_rules! kind_keys {
    (@common { $($(#[$cdoc:meta])* $cfield:ident: $cty:ty,)* }) => {
        /// The keys every kind of profile takes, all optional: `cargo stream submit`'s flags
        /// are a layer of these.
        #[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub struct CommonKeys {
            $($(#[$cdoc])* #[serde(skip_serializing_if = "Option::is_none")] pub $cfield: Option<$cty>,)*
        }
    };
    (@one { $($(#[$cdoc:meta])* $cfield:ident: $cty:ty,)* }
     $(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub struct $name {
            $($(#[$fdoc])* #[serde(skip_serializing_if = "Option::is_none")] pub $field: Option<$ty>,)*
            $($(#[$cdoc])* #[serde(skip_serializing_if = "Option::is_none")] pub $cfield: Option<$cty>,)*
        }

        impl $name {
            /// The keys every kind takes.
            pub fn common(&self) -> CommonKeys {
                CommonKeys { $($cfield: self.$cfield.clone(),)* }
            }
        }
    };
    ($common:tt $($(#[$doc:meta])* $name:ident { $($body:tt)* })*) => {
        kind_keys!(@common $common);
        $(kind_keys!(@one $common $(#[$doc])* $name { $($body)* });)*
    };
}

kind_keys! {
    {
        /// Default driver cores.
        driver_cores: u32,
        /// Default driver memory (`512m`, `2g`).
        driver_memory: String,
        /// Whether the cluster restarts a failed driver.
        supervise: bool,
        /// Environment variables for the job.
        env: BTreeMap<String, String>,
        /// Extra properties (Spark's `--conf`).
        conf: BTreeMap<String, String>,
        /// Seconds `kill` waits after SIGTERM before it forces the job down.
        kill_grace: u64,
    }

    /// A `spark-rest` profile's keys.
    SparkRestKeys {
        /// The master (`spark://host:6066`, comma-separated for fail-over).
        master: String,
        /// The environment variable that holds the JWT secret (base64).
        jwt_secret_env: String,
        /// A file that holds the JWT secret (base64).
        jwt_secret_file: PathBuf,
        /// The client version to announce (default 4.3.0).
        spark_version: String,
        /// The master's web UI, for `logs`; default: the master's host, port 8080.
        master_ui: String,
        /// A PEM file of CA certificates trusted for `https://` gateways and UIs, besides the
        /// platform's trust store.
        ca_file: PathBuf,
        /// Where the artifact goes so that the cluster can read it.
        upload: UploadKeys,
    }

    /// A `spark-ssh` profile's keys.
    SparkSshKeys {
        /// Host name or address.
        host: String,
        /// SSH port (22).
        port: u16,
        /// User name.
        user: String,
        /// Private key file; without it the SSH agent is asked.
        identity_file: PathBuf,
        /// The known_hosts file the host key is checked against (`~/.ssh/known_hosts`).
        known_hosts: PathBuf,
        /// The master (`spark://HOST:7077`, as the host reaches it).
        master: String,
        /// The master's web UI, for `logs` and `status`; default: the master's host, port 8080.
        master_ui: String,
        /// `SPARK_HOME` on the host.
        spark_home: String,
        /// The folder on the host for uploads and submissions (`cargo-stream`, relative to the
        /// user's home).
        remote_dir: String,
    }

    /// An `ssh` profile's keys.
    SshHostKeys {
        /// Host name or address.
        host: String,
        /// The hosts a job's instances are placed on, round-robin (`--instances N`): each
        /// `HOST` or `HOST:PORT`, with the profile's `port`, `user` and keys; in place of
        /// `host`.
        hosts: Vec<String>,
        /// SSH port (22).
        port: u16,
        /// User name.
        user: String,
        /// Private key file; without it the SSH agent is asked.
        identity_file: PathBuf,
        /// The known_hosts file the host key is checked against (`~/.ssh/known_hosts`).
        known_hosts: PathBuf,
        /// The folder on the host for uploads and submissions (`cargo-stream`, relative to the
        /// user's home).
        remote_dir: String,
    }

    /// A `slurm` profile's keys: slurmrestd's (`url`) or a login node's over SSH (`host`).
    SlurmKeys {
        /// slurmrestd's base URL.
        url: String,
        /// The user name (for slurmrestd and for SSH).
        user: String,
        /// The environment variable holding the user's JWT (`scontrol token`).
        token_env: String,
        /// A file holding the user's JWT.
        token_file: PathBuf,
        /// The partition.
        partition: String,
        /// The REST API version (`v0.0.38`).
        api_version: String,
        /// Where the artifact goes so that the nodes can read it.
        upload: UploadKeys,
        /// The login node's host name or address.
        host: String,
        /// SSH port (22).
        port: u16,
        /// Private key file; without it the SSH agent is asked.
        identity_file: PathBuf,
        /// The known_hosts file the host key is checked against (`~/.ssh/known_hosts`).
        known_hosts: PathBuf,
        /// The folder on the login node for uploads and job folders (`cargo-stream`, relative
        /// to the user's home), shared with the nodes.
        remote_dir: String,
        /// The `slurm.conf` Slurm's commands read on the login node (`SLURM_CONF`), when it is
        /// not their default.
        slurm_conf: String,
    }
}

/// The SSH keys of the kinds that reach a host over SSH.
#[derive(Clone, Debug, Default)]
struct SshKeys {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    identity_file: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    remote_dir: Option<String>,
}

macro_rules! ssh_keys {
    ($($name:ident),*) => {$(
        impl $name {
            fn ssh(&self) -> SshKeys {
                SshKeys {
                    host: self.host.clone(),
                    port: self.port,
                    user: self.user.clone(),
                    identity_file: self.identity_file.clone(),
                    known_hosts: self.known_hosts.clone(),
                    remote_dir: self.remote_dir.clone(),
                }
            }
        }
    )*};
}

ssh_keys!(SparkSshKeys, SshHostKeys, SlurmKeys);

/// A profile's keys, typed by its kind: a `kind` key picks the variant, whose struct takes
/// only the keys that apply to it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ProfileKeys {
    /// `spark-rest`.
    SparkRest(SparkRestKeys),
    /// `spark-ssh`.
    SparkSsh(SparkSshKeys),
    /// `ssh`.
    Ssh(SshHostKeys),
    /// `slurm`.
    Slurm(SlurmKeys),
}

/// `match` over every kind with the same body.
macro_rules! each_kind {
    ($keys:expr, $k:ident => $body:expr) => {
        match $keys {
            ProfileKeys::SparkRest($k) => $body,
            ProfileKeys::SparkSsh($k) => $body,
            ProfileKeys::Ssh($k) => $body,
            ProfileKeys::Slurm($k) => $body,
        }
    };
}

impl ProfileKeys {
    /// The kind.
    pub fn kind(&self) -> Kind {
        match self {
            ProfileKeys::SparkRest(_) => Kind::SparkRest,
            ProfileKeys::SparkSsh(_) => Kind::SparkSsh,
            ProfileKeys::Ssh(_) => Kind::Ssh,
            ProfileKeys::Slurm(_) => Kind::Slurm,
        }
    }

    /// The keys every kind takes.
    pub fn common(&self) -> CommonKeys {
        each_kind!(self, k => k.common())
    }

    /// The keys with the job's `env` values replaced by `***` (the names kept): what a record
    /// keeps and output shows.
    pub fn without_secrets(&self) -> ProfileKeys {
        let mut keys = self.clone();
        each_kind!(&mut keys, k => {
            if let Some(env) = &mut k.env {
                *env = crate::cluster::secret::names_only(env);
            }
        });
        keys
    }

    fn ssh(&self) -> SshKeys {
        match self {
            ProfileKeys::SparkRest(_) => SshKeys::default(),
            ProfileKeys::SparkSsh(k) => k.ssh(),
            ProfileKeys::Ssh(k) => k.ssh(),
            ProfileKeys::Slurm(k) => k.ssh(),
        }
    }

    fn upload(&self) -> Option<&UploadKeys> {
        match self {
            ProfileKeys::SparkRest(k) => k.upload.as_ref(),
            ProfileKeys::Slurm(k) => k.upload.as_ref(),
            ProfileKeys::SparkSsh(_) | ProfileKeys::Ssh(_) => None,
        }
    }

    /// A record's profile: written by this version, or by an older one that wrote every key
    /// of every kind, unset ones as `null` (the other kinds' keys must be `null`).
    pub fn from_record<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ProfileKeys, D::Error> {
        Ok(match RecordedProfile::deserialize(d)? {
            RecordedProfile::SparkRest(r) => ProfileKeys::SparkRest(r.keys),
            RecordedProfile::SparkSsh(r) => ProfileKeys::SparkSsh(r.keys),
            RecordedProfile::Ssh(r) => ProfileKeys::Ssh(r.keys),
            RecordedProfile::Slurm(r) => ProfileKeys::Slurm(r.keys),
        })
    }
}

/// A profile as a record holds it, tagged by its kind like [`ProfileKeys`].
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum RecordedProfile {
    SparkRest(Recorded<SparkRestKeys>),
    SparkSsh(Recorded<SparkSshKeys>),
    Ssh(Recorded<SshHostKeys>),
    Slurm(Recorded<SlurmKeys>),
}

/// A kind's keys in a record, and the keys of the other kinds, which records written before
/// the typed profiles hold, each `null` (`()` reads only `null`).
#[derive(Deserialize)]
struct Recorded<T> {
    #[serde(flatten)]
    keys: T,
    #[serde(flatten)]
    _other_kinds: BTreeMap<String, ()>,
}

/// A kind reads the keys of its profiles.
impl<'de> serde::de::DeserializeSeed<'de> for Kind {
    type Value = ProfileKeys;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<ProfileKeys, D::Error> {
        Ok(match self {
            Kind::SparkRest => ProfileKeys::SparkRest(SparkRestKeys::deserialize(d)?),
            Kind::SparkSsh => ProfileKeys::SparkSsh(SparkSshKeys::deserialize(d)?),
            Kind::Ssh => ProfileKeys::Ssh(SshHostKeys::deserialize(d)?),
            Kind::Slurm => ProfileKeys::Slurm(SlurmKeys::deserialize(d)?),
        })
    }
}

/// `upload = { ... }`: how the artifact reaches a place the cluster reads.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UploadKeys {
    /// `dir` (a folder this machine and the cluster share) or `sftp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The folder (on the SFTP host for `sftp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The base URL the cluster reads the folder from; default `file://PATH`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// sftp: host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// sftp: port (22).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// sftp: user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// sftp: private key file; without it the SSH agent is asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<PathBuf>,
    /// sftp: known_hosts file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<PathBuf>,
}

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
    /// The merged keys, typed by kind.
    pub keys: ProfileKeys,
    /// The places it was read from, low to high.
    pub origins: Vec<String>,
}

impl Profile {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        self.keys.kind()
    }

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
                    self.kind()
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
        let l = self.keys.ssh();
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

    /// The hosts of an `ssh` profile, in the order instances are placed on them: its `hosts`
    /// (each `HOST` or `HOST:PORT`; the profile's `port`, `user` and keys for the rest), else
    /// its one `host`.
    pub fn ssh_hosts(&self) -> anyhow::Result<Vec<SshTarget>> {
        let hosts = match &self.keys {
            ProfileKeys::Ssh(keys) => keys.hosts.clone().unwrap_or_default(),
            _ => Vec::new(),
        };
        if hosts.is_empty() {
            return Ok(vec![self.ssh()?]);
        }
        if self.keys.ssh().host.is_some() {
            return Err(with_help(
                anyhow::anyhow!(
                    "cluster `{}` sets both `host` and `hosts` ({})",
                    self.name,
                    self.origins.join(" + ")
                ),
                "keep one: `hosts = [\"h1\", \"h2\"]` for several, `host = \"h\"` for one",
            ));
        }
        let l = self.keys.ssh();
        let mut targets = Vec::new();
        for entry in hosts {
            let (host, port) = match entry.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') || host.starts_with('[') => {
                    let port = port.parse::<u16>().map_err(|_| {
                        with_help(
                            anyhow::anyhow!(
                                "`{entry}` in `hosts` of cluster `{}` has no valid port",
                                self.name
                            ),
                            "write each host as `HOST` or `HOST:PORT` (a port from 1 to 65535)",
                        )
                    })?;
                    (host.trim_matches(['[', ']']).to_owned(), port)
                }
                _ => (entry.clone(), l.port.unwrap_or(22)),
            };
            if host.is_empty() {
                anyhow::bail!("`hosts` of cluster `{}` has an empty entry", self.name);
            }
            targets.push(SshTarget {
                host,
                port,
                user: match &l.user {
                    Some(user) => user.clone(),
                    None => std::env::var("USER").unwrap_or_else(|_| "root".into()),
                },
                identity_file: l.identity_file.as_deref().map(expand_home),
                known_hosts: known_hosts(l.known_hosts.as_deref()),
            });
        }
        Ok(targets)
    }

    /// Where the artifact goes: the `upload` table, or for `ssh` and `spark-ssh` profiles an
    /// SFTP upload to the host's `remote-dir/uploads`, for a `slurm` profile over SSH (a `host`,
    /// no `url`) one to the login node's `remote-dir` (whose `jobs/` holds the job folders).
    pub fn upload(&self) -> anyhow::Result<Upload> {
        let ssh = self.keys.ssh();
        let fallback_sftp = matches!(self.kind(), Kind::Ssh | Kind::SparkSsh);
        let slurm_over_ssh =
            matches!(&self.keys, ProfileKeys::Slurm(k) if k.url.is_none() && k.host.is_some());
        let Some(up) = self.keys.upload() else {
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
                    self.kind()
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
                        None => self.required("upload.host", ssh.host.as_ref())?.clone(),
                    },
                    port: up.port.or(ssh.port).unwrap_or(22),
                    user: up
                        .user
                        .clone()
                        .or_else(|| ssh.user.clone())
                        .or_else(|| std::env::var("USER").ok())
                        .unwrap_or_else(|| "root".into()),
                    identity_file: up
                        .identity_file
                        .as_deref()
                        .or(ssh.identity_file.as_deref())
                        .map(expand_home),
                    known_hosts: known_hosts(
                        up.known_hosts.as_deref().or(ssh.known_hosts.as_deref()),
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
        self.keys
            .ssh()
            .remote_dir
            .unwrap_or_else(|| "cargo-stream".into())
    }

    /// Seconds `kill` waits after SIGTERM (default 30).
    pub fn kill_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.keys.common().kill_grace.unwrap_or(30))
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

/// The `[clusters.NAME]` tables of a file, each with its `kind` (taken out of the table)
/// when it names one.
fn tables(
    file: &TomlFile,
) -> anyhow::Result<BTreeMap<String, (Option<Kind>, Spanned<DeValue<'_>>)>> {
    let document = file.document()?;
    let mut tables = BTreeMap::new();
    for (name, mut value) in table_of(file, &document, "clusters")? {
        let mut kind = None;
        if let DeValue::Table(table) = value.get_mut()
            && let Some(text) = table.remove("kind")
        {
            let DeValue::String(written) = text.get_ref() else {
                return Err(with_help(
                    anyhow::anyhow!(
                        "cluster `{name}` in {}: `kind` is not a string",
                        file.at(text.span())
                    ),
                    "use one of `spark-rest`, `spark-ssh`, `ssh`, `slurm`",
                ));
            };
            kind = Some(Kind::parse(written).ok_or_else(|| {
                with_help(
                    anyhow::anyhow!(
                        "cluster `{name}` in {} has an unknown kind `{written}`",
                        file.at(text.span())
                    ),
                    "use one of `spark-rest`, `spark-ssh`, `ssh`, `slurm`",
                )
            })?);
        }
        tables.insert(name, (kind, value));
    }
    Ok(tables)
}

/// Reads `[clusters.NAME]` of a file as a layer of kind `kind`: a key of another kind, or of
/// none, is an error naming the file, line and column.
fn typed(
    file: &TomlFile,
    name: &str,
    kind: Kind,
    value: Spanned<DeValue<'_>>,
) -> anyhow::Result<ProfileKeys> {
    if let DeValue::Table(table) = value.get_ref() {
        for key in table.keys() {
            let known_elsewhere = Kind::ALL
                .iter()
                .any(|(k, _)| k.keys().contains(&key.get_ref().as_ref()));
            if known_elsewhere && !kind.keys().contains(&key.get_ref().as_ref()) {
                return Err(with_help(
                    anyhow::anyhow!(
                        "cluster `{name}` in {}: `{}` does not apply to kind `{kind}`",
                        file.at(key.span()),
                        key.get_ref()
                    ),
                    format!(
                        "a `{kind}` profile takes `kind`, {}",
                        kind.keys()
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    file.seeded(kind, value, "bad cluster profile")
        .map_err(|e| {
            with_help(
                e,
                "the keys of `[clusters.NAME]` are described in `cargo stream submit --help`",
            )
        })
}

/// Reads the `[clusters.*]` tables of a TOML file (other tables are ignored here): each with
/// its keys when it names its kind, `None` when its kind comes from another layer.
pub fn read_file(path: &Path) -> anyhow::Result<BTreeMap<String, Option<ProfileKeys>>> {
    let Some(file) = TomlFile::read(path)? else {
        return Ok(BTreeMap::new());
    };
    let mut profiles = BTreeMap::new();
    for (name, (kind, value)) in tables(&file)? {
        let keys = kind
            .map(|kind| typed(&file, &name, kind, value))
            .transpose()?;
        profiles.insert(name, keys);
    }
    Ok(profiles)
}

/// Loads profile `name`: the user file, then `stream_toml` (the job's, if any), then the
/// environment, then `flags`. Every layer is typed by the kind the highest one names, and
/// merged by [`layers::overlay`].
pub fn load(name: &str, stream_toml: Option<&Path>, flags: &CommonKeys) -> anyhow::Result<Profile> {
    let user = user_file();
    let paths: Vec<&Path> = [Some(user.as_path()), stream_toml]
        .into_iter()
        .flatten()
        .collect();
    let mut files = Vec::new();
    for path in &paths {
        if let Some(file) = TomlFile::read(path)? {
            // Every table is checked, not only `[clusters]`.
            if Some(*path) == stream_toml {
                StreamToml::parse(&file)?;
            } else {
                UserConfig::parse(&file)?;
            }
            files.push(file);
        }
    }
    let mut known: Vec<String> = Vec::new();
    let mut found = Vec::new();
    let mut kind = None;
    for file in &files {
        let mut all = tables(file)?;
        for (other, (k, value)) in &all {
            if let Some(k) = k {
                typed(file, other, *k, value.clone())?;
            }
        }
        known.extend(all.keys().cloned());
        if let Some((k, value)) = all.remove(name) {
            if let (Some(&(user, _)), Some(project)) = (found.first(), k)
                && kind.is_some_and(|k| k != project)
            {
                return Err(redirected(name, user, file, None, "kind"));
            }
            if let Some(&(user, _)) = found.first() {
                check_project_layer(name, user, file, &value)?;
            }
            kind = k.or(kind);
            found.push((file, value));
        }
    }
    let prefix = format!("CARGO_STREAM_CLUSTERS_{}_", env_name(name));
    let kind_var = format!("{prefix}KIND");
    let mut env = layers::env_vars(&prefix);
    let env_used = !env.is_empty();
    if let Some(i) = env.iter().position(|(var, _)| *var == kind_var) {
        let (_, text) = env.remove(i);
        kind = Some(Kind::parse(&text).ok_or_else(|| {
            with_help(
                anyhow::anyhow!("cluster `{name}` in `{kind_var}` has an unknown kind `{text}`"),
                "use one of `spark-rest`, `spark-ssh`, `ssh`, `slurm`",
            )
        })?);
    }
    let env_origin = format!("CARGO_STREAM_CLUSTERS_{}_*", env_name(name));
    if found.is_empty() && !env_used {
        known.sort();
        known.dedup();
        let searched = paths
            .iter()
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
    let mut origins: Vec<String> = found
        .iter()
        .map(|(file, _)| format!("`{}`", file.path.display()))
        .collect();
    if env_used {
        origins.push(env_origin);
    }
    let Some(kind) = kind else {
        return Err(with_help(
            anyhow::anyhow!("cluster `{name}` has no `kind`"),
            format!(
                "set `kind` (`spark-rest`, `spark-ssh`, `ssh` or `slurm`) under `[clusters.{name}]` in {} + the command line",
                origins.join(" + ")
            ),
        ));
    };
    let mut keys = kind.empty();
    for (file, value) in found {
        keys = layers::overlay(&keys, &typed(file, name, kind, value)?)?;
    }
    let from_env = layers::from_vars(kind, &prefix, &["UPLOAD"], env).map_err(|e| {
        with_help(
            e,
            "the variable names are the profile's keys in capitals, `-` as `_`",
        )
    })?;
    if let Some(from_env) = from_env {
        keys = layers::overlay(&keys, &from_env)?;
    }
    keys = layers::overlay(&keys, flags)?;
    Ok(Profile {
        name: name.to_owned(),
        keys,
        origins,
    })
}

/// The keys a job's `Stream.toml` may set on a profile that the user's own file defines: the
/// job's shape, never where the job and its credentials go (`master`, `host`, `url`,
/// `known-hosts`, `upload`, ...), so that a cloned repository cannot redirect the user's
/// cluster.
pub const PROJECT_KEYS: &[&str] = &[
    "driver-cores",
    "driver-memory",
    "supervise",
    "env",
    "conf",
    "kill-grace",
];

/// Refuses a `[clusters.NAME]` table of the job's file (`project`) that sets, on the user's
/// profile `name` (defined in `user`), a key other than [`PROJECT_KEYS`].
fn check_project_layer(
    name: &str,
    user: &TomlFile,
    project: &TomlFile,
    value: &Spanned<DeValue<'_>>,
) -> anyhow::Result<()> {
    if let DeValue::Table(table) = value.get_ref() {
        for key in table.keys() {
            if !PROJECT_KEYS.contains(&key.get_ref().as_ref()) {
                return Err(redirected(
                    name,
                    user,
                    project,
                    Some(key.span()),
                    key.get_ref(),
                ));
            }
        }
    }
    Ok(())
}

/// The error for a job's file that would change `key` of the user's own profile `name`.
fn redirected(
    name: &str,
    user: &TomlFile,
    project: &TomlFile,
    span: Option<std::ops::Range<usize>>,
    key: &str,
) -> anyhow::Error {
    let at = match span {
        Some(span) => project.at(span),
        None => format!("`{}`", project.path.display()),
    };
    with_help(
        anyhow::anyhow!(
            "cluster `{name}` is defined in your `{}`, and the job's {at} sets its `{key}`: a project's file may not change where your own profile sends the job",
            user.path.display()
        ),
        format!(
            "remove `{key}` from `[clusters.{name}]` in `{}` (on your own profiles it may only set {}), change it in `{}` yourself, or give the project's profile another name",
            project.path.display(),
            PROJECT_KEYS
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            user.path.display()
        ),
    )
}

/// `prod-eu` as `PROD_EU`.
fn env_name(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
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
        let spark = clusters["spark"].as_ref().unwrap().common();
        assert_eq!(spark.driver_memory.as_deref(), Some("512m"));
    }

    #[test]
    fn layers_merge_key_by_key() {
        let base: ProfileKeys = toml::from_str(
            "kind = \"spark-rest\"\nmaster = \"spark://a:6066\"\nenv = { A = \"1\" }\nupload = { to = \"dir\", path = \"/x\" }\n",
        )
        .unwrap();
        let top: SparkRestKeys = toml::from_str(
            "driver-cores = 2\nenv = { B = \"2\" }\nupload = { url = \"http://h/\" }\n",
        )
        .unwrap();
        let ProfileKeys::SparkRest(base) =
            layers::overlay(&base, &ProfileKeys::SparkRest(top)).unwrap()
        else {
            panic!("the kind is kept");
        };
        assert_eq!(base.master.as_deref(), Some("spark://a:6066"));
        assert_eq!(base.driver_cores, Some(2));
        assert_eq!(base.env.as_ref().unwrap().len(), 2);
        let up = base.upload.unwrap();
        assert_eq!(up.path.as_deref(), Some("/x"));
        assert_eq!(up.url.as_deref(), Some("http://h/"));
    }

    #[test]
    fn env_values_are_parsed_with_the_key_type() {
        // `CARGO_STREAM_CLUSTERS_PROD_SPARK_VERSION=4` is the string "4", not an integer.
        let vars = [
            ("P_SPARK_VERSION", "4"),
            ("P_DRIVER_CORES", "3"),
            ("P_SUPERVISE", "true"),
            ("P_UPLOAD_PORT", "2222"),
            ("P_UPLOAD_PATH", "1234"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let keys = layers::from_vars(Kind::SparkRest, "P_", &["UPLOAD"], vars.to_vec())
            .unwrap()
            .unwrap();
        let ProfileKeys::SparkRest(keys) = keys else {
            panic!("{keys:?}")
        };
        assert_eq!(keys.spark_version.as_deref(), Some("4"));
        assert_eq!(keys.driver_cores, Some(3));
        assert_eq!(keys.supervise, Some(true));
        let upload = keys.upload.unwrap();
        assert_eq!(
            (upload.port, upload.path.as_deref()),
            (Some(2222), Some("1234"))
        );
        let bad = [("P_PORT".to_owned(), "ssh".to_owned())];
        let err = layers::from_vars(Kind::Ssh, "P_", &[], bad.to_vec()).unwrap_err();
        assert!(format!("{err:#}").contains("`P_PORT=ssh`"), "{err:#}");
    }

    #[test]
    fn unknown_key_names_its_column() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(
            tmp.path(),
            "c.toml",
            "[clusters.x]\nkind = \"ssh\"\n  hots = \"h\"\n",
        );
        let text = format!("{:#}", read_file(&path).unwrap_err());
        assert!(text.contains("c.toml`, line 3, column 3"), "{text}");
        assert!(text.contains("unknown field `hots`"), "{text}");
    }

    #[test]
    fn records_keep_their_kinds_keys_and_only_null_other_keys() {
        let read = |json: &str| {
            ProfileKeys::from_record(&mut serde_json::Deserializer::from_str(json))
                .map_err(|e| e.to_string())
        };
        // This version: the kind's own keys.
        let keys = ProfileKeys::Ssh(SshHostKeys {
            host: Some("h".into()),
            port: Some(2222),
            env: Some(BTreeMap::from([("K".into(), "***".into())])),
            ..SshHostKeys::default()
        });
        assert_eq!(read(&serde_json::to_string(&keys).unwrap()), Ok(keys));
        // An older one: every kind's keys, the others' `null`, nested `null`s too.
        let old = read(
            r#"{"kind": "slurm", "url": "http://s:6820", "master": null, "spark-home": null,
                "upload": {"to": "dir", "path": "/shared", "host": null}, "env": null}"#,
        )
        .unwrap();
        let ProfileKeys::Slurm(slurm) = &old else {
            panic!("{old:?}")
        };
        assert_eq!(slurm.url.as_deref(), Some("http://s:6820"));
        assert_eq!(
            slurm.upload.as_ref().unwrap().path.as_deref(),
            Some("/shared")
        );
        assert_eq!(slurm.env, None);
        // Another kind's key with a value is not the record's: refused, not dropped.
        let err = read(r#"{"kind": "slurm", "url": "http://s:6820", "master": "spark://m:7077"}"#)
            .unwrap_err();
        assert!(err.contains("expected unit"), "{err}");
        assert!(read(r#"{"kind": "yarn"}"#).is_err());
    }
}
