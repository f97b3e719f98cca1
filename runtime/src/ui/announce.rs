//! The line a job run by a cluster launcher prints on standard error when it starts, so that
//! whoever submitted it (`cargo stream status`, `cargo stream ui`) learns where its status
//! server listens and where its event log is, by reading the job's log as the cluster keeps
//! it (a Spark worker's `stderr`, an SSH host's or a Slurm job's file): the prefix
//! [`PREFIX`] and an [`Announcement`] as one JSON object.
//!
//! ```text
//! cargo-stream-ui {"url":"http://node7:4040/","host":"node7","bind":"0.0.0.0","port":4040,"events":"/data/clicks/checkpoint/events"}
//! ```
//!
//! On a cluster, `CARGO_STREAM_UI_HOST` and `CARGO_STREAM_UI_PORT` in the job's environment
//! override [`StreamingConf::ui_host`](crate::StreamingConf::ui_host) and
//! [`ui_port`](crate::StreamingConf::ui_port) (`submit --env CARGO_STREAM_UI_HOST=0.0.0.0`), as
//! the environment's master overrides the code's.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What starts the line, a space included.
pub const PREFIX: &str = "cargo-stream-ui ";
/// The environment variable overriding the status server's address.
pub const HOST_ENV: &str = "CARGO_STREAM_UI_HOST";
/// The environment variable overriding the status server's first port.
pub const PORT_ENV: &str = "CARGO_STREAM_UI_PORT";

/// Where a job's status server and event log are, as the job announces them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// The status page's URL as other machines reach it: the host's name when the server is
    /// bound to every interface, else the address it is bound to. `None` without a server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The name of the host the job runs on.
    pub host: String,
    /// The address the server is bound to (`127.0.0.1`: only from `host` itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// The port it listens on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The event log's folder on `host`, absolute; `None` without a checkpoint directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<PathBuf>,
}

impl Announcement {
    /// The announcement of a server listening on `addr` (if any) and an event log in
    /// `events` (if any), on this host.
    pub fn new(addr: Option<SocketAddr>, events: Option<&Path>) -> Announcement {
        let host = host_name();
        let url = addr.map(|a| {
            let ip = a.ip();
            let shown = if ip.is_unspecified() {
                host.clone()
            } else if a.is_ipv6() {
                format!("[{ip}]")
            } else {
                ip.to_string()
            };
            format!("http://{shown}:{}/", a.port())
        });
        let events = events.map(|d| {
            if d.is_absolute() {
                d.to_owned()
            } else {
                std::env::current_dir().map_or_else(|_| d.to_owned(), |cwd| cwd.join(d))
            }
        });
        Announcement {
            url,
            host,
            bind: addr.map(|a| a.ip().to_string()),
            port: addr.map(|a| a.port()),
            events,
        }
    }

    /// Whether the server accepts connections from `host` only.
    pub fn loopback_only(&self) -> bool {
        self.bind
            .as_deref()
            .and_then(|b| b.parse::<std::net::IpAddr>().ok())
            .is_some_and(|ip| ip.is_loopback())
    }

    /// The line, without its newline.
    pub fn line(&self) -> String {
        format!(
            "{PREFIX}{}",
            serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
        )
    }

    /// The newest announcement in a job's log (a relaunched job announces again), if any.
    ///
    /// ```
    /// use cargo_stream_runtime::ui::announce::Announcement;
    /// let log = "starting\ncargo-stream-ui {\"url\":\"http://n1:4040/\",\"host\":\"n1\"}\nbatch\n";
    /// let found = Announcement::newest_in(log).unwrap();
    /// assert_eq!(found.url.as_deref(), Some("http://n1:4040/"));
    /// ```
    pub fn newest_in(log: &str) -> Option<Announcement> {
        log.lines()
            .rev()
            .filter_map(|l| l.trim_end_matches('\r').strip_prefix(PREFIX))
            .find_map(|json| serde_json::from_str(json).ok())
    }
}

/// This host's name (the kernel's, else `HOSTNAME`, else `localhost`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "localhost".into())
}

/// Whether a cluster launcher started this process (`CARGO_STREAM_DEPLOY_MODE=cluster`, or a
/// cluster build).
pub(crate) fn on_cluster() -> bool {
    cfg!(cargo_stream_cluster)
        || std::env::var(crate::DEPLOY_MODE_ENV).is_ok_and(|m| m == "cluster")
}

/// The server's host and first port with the environment's overrides (on a cluster only).
pub(crate) fn bind_with_env(bind: Option<(String, u16)>) -> Option<(String, u16)> {
    let (mut host, mut port) = bind?;
    if on_cluster() {
        if let Some(h) = std::env::var(HOST_ENV)
            .ok()
            .filter(|h| !h.trim().is_empty())
        {
            host = h.trim().to_owned();
        }
        match std::env::var(PORT_ENV).map(|p| p.trim().parse::<u16>()) {
            Ok(Ok(p)) => port = p,
            Ok(Err(_)) => tracing::warn!(
                "`{PORT_ENV}` is not a port number (0 to 65535): ignored, the status server tries {port} and up"
            ),
            Err(_) => {}
        }
    }
    Some((host, port))
}

/// Prints the announcement on standard error, on a cluster only: a job run locally has its
/// URL in its log already. A closed standard error is no error of the job.
pub(crate) fn announce(addr: Option<SocketAddr>, events: Option<&Path>) {
    if !on_cluster() || (addr.is_none() && events.is_none()) {
        return;
    }
    let line = Announcement::new(addr, events).line();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_announcement_reads_back_and_the_newest_wins() {
        let a = Announcement::new(
            Some("0.0.0.0:4041".parse().unwrap()),
            Some(Path::new("/c/events")),
        );
        assert_eq!(a.url, Some(format!("http://{}:4041/", host_name())));
        assert!(!a.loopback_only());
        let b = Announcement::new(Some("127.0.0.1:4042".parse().unwrap()), None);
        assert_eq!(b.url.as_deref(), Some("http://127.0.0.1:4042/"));
        assert!(b.loopback_only());
        let log = format!(
            "x\n{}\nINFO batch\n{}\r\ncargo-stream-ui {{broken\n",
            a.line(),
            b.line()
        );
        assert_eq!(Announcement::newest_in(&log), Some(b));
        assert_eq!(Announcement::newest_in("nothing"), None);
    }
}
