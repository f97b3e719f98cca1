//! HTTP through the SSH connection: a `direct-tcpip` channel from the host to a web server it
//! reaches (a Spark master's or worker's UI), so that nothing but SSH needs to be open between
//! this machine and the cluster.

use std::io::{Read as _, Write as _};

use anyhow::Context as _;

use super::Session;

impl Session {
    /// The body of `GET url` (`http://HOST:PORT/PATH`, as the SSH host reaches it), fetched
    /// through this connection, following up to three redirects. Anything else but HTTP 200
    /// is an error with the status line.
    pub fn http_get(&self, url: &str) -> anyhow::Result<String> {
        let mut url = url.to_owned();
        for _ in 0..3 {
            match self.http_get_once(&url)? {
                Answer::Body(body) => return Ok(body),
                Answer::Redirect(location) => {
                    url = if location.starts_with("http://") {
                        location
                    } else {
                        let base = url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
                        format!("{base}{location}")
                    };
                }
            }
        }
        anyhow::bail!("GET {url}: too many redirects")
    }

    /// [`http_get`](Self::http_get) with each wait bounded by `timeout` instead of the
    /// session's (a web server that accepts but never answers, say a stopped process).
    pub fn http_get_within(
        &self,
        url: &str,
        timeout: std::time::Duration,
    ) -> anyhow::Result<String> {
        let before = self.session.timeout();
        self.session
            .set_timeout(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
        let result = self.http_get(url);
        self.session.set_timeout(before);
        result
    }

    fn http_get_once(&self, url: &str) -> anyhow::Result<Answer> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow::anyhow!("`{url}` is not an http:// URL"))?;
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, format!("/{p}")),
            None => (rest, "/".to_owned()),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .with_context(|| format!("bad port in `{url}`"))?,
            ),
            None => (authority, 80),
        };
        let target = self.target().clone();
        let mut channel = self
            .session
            .channel_direct_tcpip(host, port, None)
            .with_context(|| format!("{target} could not open a connection to {host}:{port} for us (is `AllowTcpForwarding` off?)"))?;
        write!(
            channel,
            "GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
        )
        .with_context(|| format!("GET {url} through {target}"))?;
        channel.send_eof().ok();
        let mut bytes = Vec::new();
        channel
            .read_to_end(&mut bytes)
            .with_context(|| format!("GET {url} through {target}"))?;
        let _ = channel.wait_close();
        let text = String::from_utf8_lossy(&bytes);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| anyhow::anyhow!("GET {url} through {target}: no HTTP answer"))?;
        let status = head.lines().next().unwrap_or_default();
        match status.split_whitespace().nth(1) {
            Some("200") => Ok(Answer::Body(body.to_owned())),
            Some("301" | "302" | "303" | "307" | "308") => head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("location")
                        .then(|| value.trim().to_owned())
                })
                .map(Answer::Redirect)
                .ok_or_else(|| {
                    anyhow::anyhow!("GET {url} through {target}: {status} without a Location")
                }),
            _ => anyhow::bail!("GET {url} through {target}: {status}"),
        }
    }
}

/// A body, or where to look instead.
enum Answer {
    Body(String),
    Redirect(String),
}
