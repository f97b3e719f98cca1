//! Host-key verification against an OpenSSH `known_hosts` file. The key the host presents must
//! be recorded for it: an unknown key or a changed one is refused, with the command that would
//! record it. There is no way to skip the check.
//!
//! Plain entries are matched here, with OpenSSH's rules (`[host]:port` for ports other than 22,
//! comma-separated patterns with `*`, `?` and `!`, `@revoked` lines); hashed entries
//! (`|1|salt|hash`, as `HashKnownHosts` writes them) are matched by libssh2. libssh2's own
//! `check_port` is not used for plain entries because it falls back from `[host]:port` to a plain
//! `host` line, which OpenSSH does not do for ports other than 22.

use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use sha2::Digest as _;

use crate::cluster::profile::SshTarget;
use crate::cluster::transport::ssh::quote;
use crate::error::with_help;

/// One usable line of a known_hosts file.
#[derive(Debug)]
struct Entry {
    line: usize,
    revoked: bool,
    hosts: String,
    key_type: String,
    key: Vec<u8>,
    text: String,
}

/// The entries of `file` (a missing file has none). Lines that are not host keys
/// (`@cert-authority`, comments, damaged lines) are skipped.
fn read(file: &Path) -> anyhow::Result<Vec<Entry>> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "failed to read the known_hosts file `{}`",
                file.display()
            )));
        }
    };
    let mut entries = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace().peekable();
        let mut revoked = false;
        if let Some(marker) = fields.peek().filter(|f| f.starts_with('@')) {
            match *marker {
                "@revoked" => revoked = true,
                // Certificate authorities sign host certificates, which we do not ask for.
                _ => continue,
            }
            fields.next();
        }
        let (Some(hosts), Some(key_type), Some(key)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Ok(key) = base64::engine::general_purpose::STANDARD.decode(key) else {
            continue;
        };
        entries.push(Entry {
            line: index + 1,
            revoked,
            hosts: hosts.to_owned(),
            key_type: key_type.to_owned(),
            key,
            text: line.to_owned(),
        });
    }
    Ok(entries)
}

/// The name a host is recorded under: `host`, or `[host]:port` when the port is not 22.
fn recorded_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Whether `name` matches an OpenSSH pattern list (`a,b*,!c`).
fn matches_patterns(patterns: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob(&negated.to_ascii_lowercase(), &name.to_ascii_lowercase()) {
                return false;
            }
        } else if glob(&pattern.to_ascii_lowercase(), &name.to_ascii_lowercase()) {
            matched = true;
        }
    }
    matched
}

/// `*` and `?` wildcards.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether the entry is for `name`, as a plain or a hashed host field.
fn entry_matches(entry: &Entry, name: &str) -> bool {
    if entry.hosts.starts_with("|1|") {
        // Hashed: HMAC-SHA1 of the name, salted; libssh2 computes it.
        let Ok(session) = ssh2::Session::new() else {
            return false;
        };
        let Ok(mut hosts) = session.known_hosts() else {
            return false;
        };
        let line = entry.text.trim_start_matches("@revoked").trim_start();
        if hosts
            .read_str(line, ssh2::KnownHostFileKind::OpenSSH)
            .is_err()
        {
            return false;
        }
        // Checked with the entry's own key: any answer but "not found" means the name matched.
        !matches!(
            hosts.check(name, &entry.key),
            ssh2::CheckResult::NotFound | ssh2::CheckResult::Failure
        )
    } else {
        matches_patterns(&entry.hosts, name)
    }
}

/// The key types recorded for the host, to be offered first in the key exchange, so that a
/// host with several keys shows the one we know (as OpenSSH's client orders them).
pub(super) fn preferred_algorithms(target: &SshTarget) -> Vec<String> {
    let name = recorded_name(&target.host, target.port);
    let Ok(entries) = read(&target.known_hosts) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for entry in entries
        .iter()
        .filter(|e| !e.revoked && entry_matches(e, &name))
    {
        let algorithms: &[&str] = match entry.key_type.as_str() {
            "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
            other => &[other][..],
        };
        for a in algorithms {
            if !out.iter().any(|o| o == a) {
                out.push((*a).to_owned());
            }
        }
    }
    out
}

/// The wire name of a host key type.
fn type_name(kind: ssh2::HostKeyType) -> &'static str {
    match kind {
        ssh2::HostKeyType::Rsa => "ssh-rsa",
        ssh2::HostKeyType::Dss => "ssh-dss",
        ssh2::HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        ssh2::HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        ssh2::HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        ssh2::HostKeyType::Ed25519 => "ssh-ed25519",
        ssh2::HostKeyType::Unknown => "unknown",
    }
}

/// `SHA256:...`, as `ssh-keygen -l` and OpenSSH's prompts show a key.
fn fingerprint(key: &[u8]) -> String {
    let digest = sha2::Sha256::digest(key);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    )
}

/// Checks the key the connected host presented against `target.known_hosts`.
pub(super) fn verify(session: &ssh2::Session, target: &SshTarget) -> anyhow::Result<()> {
    let (key, kind) = session
        .host_key()
        .with_context(|| format!("`{target}` presented no host key"))?;
    let key_type = type_name(kind);
    let file = &target.known_hosts;
    let shown_file = quote(&file.display().to_string());
    let name = recorded_name(&target.host, target.port);
    let scan = format!(
        "ssh-keyscan -p {} {} >> {shown_file}",
        target.port,
        quote(&target.host)
    );
    let entries = read(file)?;
    let mut changed: Option<&Entry> = None;
    let mut other_types: Vec<&str> = Vec::new();
    for entry in entries.iter().filter(|e| entry_matches(e, &name)) {
        if entry.key == key {
            if entry.revoked {
                return Err(with_help(
                    anyhow::anyhow!(
                        "the host key of `{name}` ({key_type} {}) is marked `@revoked` in `{}` line {}: refused",
                        fingerprint(key),
                        file.display(),
                        entry.line
                    ),
                    "ask the host's administrator for its current key",
                ));
            }
            if entry.key_type == key_type {
                tracing::debug!(host = %name, line = entry.line, "host key matches known_hosts");
                return Ok(());
            }
        } else if entry.revoked {
            continue;
        } else if entry.key_type == key_type {
            changed.get_or_insert(entry);
        } else {
            other_types.push(&entry.key_type);
        }
    }
    if let Some(entry) = changed {
        return Err(with_help(
            anyhow::anyhow!(
                "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for `{name}`: it presented the {key_type} key {}, not the one recorded in `{}` line {}; refused",
                fingerprint(key),
                file.display(),
                entry.line
            ),
            format!(
                "someone could be eavesdropping on you (a man-in-the-middle attack), or the host's key was replaced; only if you know it was replaced, remove the old key with `ssh-keygen -R {} -f {shown_file}` and record the new one with `{scan}`",
                quote(&name)
            ),
        ));
    }
    let also = if other_types.is_empty() {
        String::new()
    } else {
        format!(
            " (only a {} key is recorded for it)",
            other_types.join(" and a ")
        )
    };
    Err(with_help(
        anyhow::anyhow!(
            "the host key of `{name}` is not known: its {key_type} key {} is not in `{}`{also}; refused",
            fingerprint(key),
            file.display()
        ),
        format!(
            "if this is the host you mean (compare the fingerprint with the one its administrator gives), record its key with `{scan}`"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_follow_openssh() {
        assert!(matches_patterns("a.example,b.example", "b.example"));
        assert!(matches_patterns("*.example", "x.example"));
        assert!(matches_patterns("[127.0.0.1]:2222", "[127.0.0.1]:2222"));
        assert!(!matches_patterns("127.0.0.1", "[127.0.0.1]:2222"));
        assert!(!matches_patterns("*.example,!bad.example", "bad.example"));
        assert!(matches_patterns("h?st", "HOST"));
        assert!(!matches_patterns("h?st", "hoost"));
    }

    #[test]
    fn names_carry_the_port_unless_22() {
        assert_eq!(recorded_name("h", 22), "h");
        assert_eq!(recorded_name("h", 2222), "[h]:2222");
    }

    #[test]
    fn reads_markers_and_skips_junk() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(
            &file,
            "# comment\n\n@cert-authority *.x ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==\n\
             @revoked h ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==\nbroken\n\
             [h]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==\n",
        )
        .unwrap();
        let entries = read(&file).unwrap();
        assert_eq!(entries.len(), 2);
        assert!(entries[0].revoked && entries[0].line == 4);
        assert_eq!(entries[1].hosts, "[h]:2222");
        assert!(read(&dir.path().join("missing")).unwrap().is_empty());
    }
}
