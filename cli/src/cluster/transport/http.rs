//! What the HTTP backends share: a client that checks `https://` servers against the
//! platform's trust store plus a profile's own CA file, the warning for a token about to travel
//! in clear, and errors told with their causes.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

use crate::error::with_help;

/// A blocking HTTP client with bounded waits that trusts the platform's certificate store and,
/// with `ca_file`, the CA certificates (PEM) in that file too.
pub fn client(ca_file: Option<&Path>) -> anyhow::Result<reqwest::blocking::Client> {
    let mut builder = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60));
    if let Some(file) = ca_file {
        let file = crate::cluster::profile::expand_home(file);
        let pem = std::fs::read(&file).with_context(|| {
            format!("failed to read the CA file `{}` (ca-file)", file.display())
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                with_help(
                    anyhow::anyhow!("`{}` (ca-file) holds no PEM certificate", file.display()),
                    "give the CA's certificate, `-----BEGIN CERTIFICATE-----` and all",
                )
            })?;
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().context("failed to set up the HTTP client")
}

/// Whether `url` is plain `http://` to a host other than this machine (`localhost`, 127.0.0.0/8,
/// `::1`): a bearer token sent there can be read on the way.
pub fn is_plain_remote(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !loopback
}

/// A reqwest error with its causes ("connection refused" sits a few levels down).
pub fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let message = s.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_remote_urls_are_told_apart() {
        assert!(is_plain_remote("http://master:6066"));
        assert!(is_plain_remote("http://10.0.0.5:8080/json/"));
        assert!(!is_plain_remote("https://master:6066"));
        assert!(!is_plain_remote("http://127.0.0.1:6066"));
        assert!(!is_plain_remote("http://127.8.0.1:6066/v1"));
        assert!(!is_plain_remote("http://localhost:6066"));
        assert!(!is_plain_remote("http://[::1]:6066"));
        assert!(is_plain_remote("http://[2001:db8::1]:6066"));
    }
}
