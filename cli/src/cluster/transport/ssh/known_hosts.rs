//! Host-key verification as strict as OpenSSH's `StrictHostKeyChecking yes`: the key (or host
//! certificate) the host presents must be vouched for by the known_hosts files, and nothing is
//! ever added to them. There is no way to skip the check.
//!
//! The rules are OpenSSH's (`hostfile.c`, `sshconnect.c`'s `check_host_key`):
//! - Files: the profile's `known-hosts`, which like OpenSSH's `UserKnownHostsFile` may name
//!   several files separated by spaces (`"double quotes"` around a name with spaces; each `~/`
//!   is the home folder; the default `~/.ssh/known_hosts` brings `~/.ssh/known_hosts2`), then
//!   the `GlobalKnownHostsFile`s `/etc/ssh/ssh_known_hosts` and `/etc/ssh/ssh_known_hosts2`.
//!   Every line of every file is read: none is the answer on its own.
//! - Names: a host on port 22 is looked up as `host`, on another port as `[host]:port` only.
//!   A line's host field is a comma-separated pattern list (`*`, `?`, `!` negation: a negated
//!   match rules the line out whatever else matches), or one hashed name `|1|salt|hmac`
//!   (`HashKnownHosts`).
//! - A plain key is accepted if a matching plain line holds it; refused as revoked if a
//!   matching `@revoked` line holds it (in any file, before or after the line that accepts it);
//!   "changed" if the host has lines but none with this key; "unknown" otherwise.
//! - A host certificate is accepted if its CA's key is on a matching `@cert-authority` line,
//!   the CA's signature verifies, it is a host certificate, valid now, with the host name
//!   (without port) among its principals, and without critical options. The certificate is
//!   refused as revoked if its key or its CA's key is `@revoked`. A certificate that is not
//!   accepted otherwise falls back to its plain key, checked as above (as OpenSSH does).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use aws_lc_rs::hmac;
use base64::Engine as _;
use sha2::Digest as _;

use super::host_cert::{self, Certificate};
use super::pattern::matches_patterns;
use crate::cluster::profile::{SshTarget, expand_home};
use crate::cluster::transport::ssh::quote;
use crate::error::with_help;

/// OpenSSH's `GlobalKnownHostsFile` default.
const GLOBAL_FILES: [&str; 2] = ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];

/// What a line says about its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    /// A host key.
    Key,
    /// `@cert-authority`: a CA whose host certificates are trusted for the hosts.
    CertAuthority,
    /// `@revoked`: never to be accepted for the hosts.
    Revoked,
}

/// One line of a known_hosts file that holds a key.
#[derive(Debug)]
struct Entry {
    file: PathBuf,
    line: usize,
    marker: Marker,
    hosts: String,
    /// The public key blob (decoded base64).
    key: Vec<u8>,
}

impl Entry {
    /// `FILE line N`, for messages.
    fn place(&self) -> String {
        format!("`{}` line {}", self.file.display(), self.line)
    }

    fn key_type(&self) -> &str {
        host_cert::blob_type(&self.key).unwrap_or("unknown")
    }
}

/// The known_hosts files of a target: the user's, then the global ones.
#[derive(Debug, PartialEq, Eq)]
struct Files {
    user: Vec<PathBuf>,
    global: Vec<PathBuf>,
}

impl Files {
    fn of(target: &SshTarget) -> Files {
        let value = target.known_hosts.to_string_lossy();
        let mut user: Vec<PathBuf> = split_files(&value);
        let default = expand_home(Path::new("~/.ssh/known_hosts"));
        if user == [default] {
            user.push(expand_home(Path::new("~/.ssh/known_hosts2")));
        }
        Files {
            user,
            global: GLOBAL_FILES.iter().map(PathBuf::from).collect(),
        }
    }

    fn all(&self) -> impl Iterator<Item = &PathBuf> {
        self.user.iter().chain(&self.global)
    }

    /// The file new keys are recorded in (OpenSSH's first `UserKnownHostsFile`).
    fn first(&self) -> &Path {
        self.user
            .first()
            .or(self.global.first())
            .map_or(Path::new("~/.ssh/known_hosts"), PathBuf::as_path)
    }

    /// The files searched, for messages: the user's, and the global ones that exist.
    fn shown(&self) -> String {
        self.user
            .iter()
            .chain(self.global.iter().filter(|p| p.exists()))
            .map(|p| format!("`{}`", p.display()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `UserKnownHostsFile`'s syntax: names separated by spaces, `"quoted"` when they hold one,
/// `~/` expanded.
fn split_files(value: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in value.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(expand_home(Path::new(&current)));
                }
                current.clear();
                any = false;
            }
            c => {
                current.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(expand_home(Path::new(&current)));
    }
    out
}

/// The key lines of `file` (a missing file has none). Comments, blank lines, lines with an
/// unknown `@marker` and damaged lines are skipped, as OpenSSH skips them.
fn read(file: &Path) -> anyhow::Result<Vec<Entry>> {
    let text = match std::fs::read(file) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
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
        let mut marker = Marker::Key;
        if let Some(word) = fields.peek().filter(|f| f.starts_with('@')) {
            marker = match *word {
                "@cert-authority" => Marker::CertAuthority,
                "@revoked" => Marker::Revoked,
                _ => continue,
            };
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
        // The type named must be the key's own.
        if host_cert::blob_type(&key) != Some(key_type) {
            continue;
        }
        entries.push(Entry {
            file: file.to_owned(),
            line: index + 1,
            marker,
            hosts: hosts.to_owned(),
            key,
        });
    }
    Ok(entries)
}

/// The lines of all `files` whose host field matches `name`, in file and line order.
fn load<'a>(files: impl Iterator<Item = &'a PathBuf>, name: &str) -> anyhow::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for file in files {
        out.extend(
            read(file)?
                .into_iter()
                .filter(|e| host_matches(&e.hosts, name)),
        );
    }
    Ok(out)
}

/// The name a host is recorded under: `host`, or `[host]:port` when the port is not 22.
fn recorded_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Whether a line's host field is for `name`: a hashed name or a pattern list.
fn host_matches(hosts: &str, name: &str) -> bool {
    if hosts.starts_with('|') {
        hashed_matches(hosts, name)
    } else {
        matches_patterns(hosts, name)
    }
}

/// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`, as `HashKnownHosts` writes it.
fn hashed_matches(hosts: &str, name: &str) -> bool {
    let mut parts = hosts.split('|');
    let (Some(""), Some("1"), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else {
        return false;
    };
    if salt.len() != 20 {
        return false;
    }
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
    hmac::verify(&key, name.as_bytes(), &hash).is_ok()
}

/// The host key algorithms to offer, from `supported` (libssh2's, in its order), ordered as
/// OpenSSH's client orders them (`order_hostkeyalgs`): the list as it is if the host has a key
/// of the first one's type; else first the certificate algorithms when a CA is listed for the
/// host and the algorithms of the key types recorded for it, then the rest. So a host with
/// several keys shows the one we know.
pub(super) fn order_algorithms(target: &SshTarget, supported: &[&str]) -> Vec<String> {
    let name = recorded_name(&target.host.to_ascii_lowercase(), target.port);
    let entries = load(Files::of(target).all(), &name).unwrap_or_default();
    order(&entries, supported)
}

fn order(entries: &[Entry], supported: &[&str]) -> Vec<String> {
    let known = |algorithm: &str| {
        let kind = host_cert::plain_type(algorithm);
        entries
            .iter()
            .any(|e| e.marker == Marker::Key && e.key_type() == kind)
    };
    let has_ca = entries.iter().any(|e| e.marker == Marker::CertAuthority);
    if supported.first().is_some_and(|best| known(best)) {
        return supported.iter().map(|a| (*a).to_owned()).collect();
    }
    let (first, last): (Vec<&str>, Vec<&str>) = supported
        .iter()
        .partition(|a| (has_ca && host_cert::is_cert_type(a)) || known(a));
    first.into_iter().chain(last).map(str::to_owned).collect()
}

/// What the known_hosts lines say of a presented key.
#[derive(Debug)]
enum Verdict<'a> {
    /// Accepted by this line (a key line, or the CA line of a valid certificate).
    Trusted(&'a Entry),
    /// Refused by this `@revoked` line; `ca` when it revokes the certificate's CA.
    Revoked { entry: &'a Entry, ca: bool },
    /// The host has these key lines, none with the key presented.
    Changed {
        offending: Vec<&'a Entry>,
        cert: Option<String>,
    },
    /// No line for the host holds the key.
    Unknown { cert: Option<String> },
    /// A certificate that is damaged or whose signature does not verify.
    BadCertificate(String),
}

/// OpenSSH's decision for the key blob `presented` by the host named `host` (for certificate
/// principals), given the lines that match its known_hosts name, at `now` (seconds since the
/// epoch).
fn decide<'a>(entries: &'a [Entry], presented: &[u8], host: &str, now: u64) -> Verdict<'a> {
    let revoked = |key: &[u8]| {
        entries
            .iter()
            .find(|e| e.marker == Marker::Revoked && e.key == key)
    };
    let mut cert_note = None;
    let mut plain = presented.to_vec();
    if host_cert::blob_type(presented).is_some_and(host_cert::is_cert_type) {
        let Some(cert) = Certificate::parse(presented) else {
            return Verdict::BadCertificate("it cannot be parsed".into());
        };
        if let Err(why) = cert.verify_signature() {
            return Verdict::BadCertificate(why);
        }
        if let Some(entry) = revoked(&cert.plain) {
            return Verdict::Revoked { entry, ca: false };
        }
        if let Some(entry) = revoked(&cert.ca) {
            return Verdict::Revoked { entry, ca: true };
        }
        let ca = entries
            .iter()
            .find(|e| e.marker == Marker::CertAuthority && e.key == cert.ca);
        match ca {
            Some(entry) => match cert.check_host(host, now) {
                Ok(()) => return Verdict::Trusted(entry),
                Err(why) => {
                    cert_note = Some(format!(
                        "its host certificate `{}` (principals `{}`), signed by the CA of {}, was not accepted: {why}",
                        cert.key_id(),
                        cert.principals(),
                        entry.place()
                    ));
                }
            },
            None => {
                cert_note = Some(format!(
                    "its host certificate `{}` is signed by the {} CA {}, which no `@cert-authority` line for it lists",
                    cert.key_id(),
                    host_cert::blob_type(&cert.ca).unwrap_or("unknown"),
                    fingerprint(&cert.ca)
                ));
            }
        }
        plain = cert.plain;
    }
    if let Some(entry) = revoked(&plain) {
        return Verdict::Revoked { entry, ca: false };
    }
    let keys: Vec<&Entry> = entries.iter().filter(|e| e.marker == Marker::Key).collect();
    if let Some(entry) = keys.iter().find(|e| e.key == plain) {
        return Verdict::Trusted(entry);
    }
    if keys.is_empty() {
        Verdict::Unknown { cert: cert_note }
    } else {
        Verdict::Changed {
            offending: keys,
            cert: cert_note,
        }
    }
}

/// `SHA256:...`, as `ssh-keygen -l` and OpenSSH's messages show a key.
fn fingerprint(key: &[u8]) -> String {
    let digest = sha2::Sha256::digest(key);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    )
}

/// Checks the key the connected host presented against the target's known_hosts files.
pub(super) fn verify(session: &ssh2::Session, target: &SshTarget) -> anyhow::Result<()> {
    let (presented, _) = session
        .host_key()
        .with_context(|| format!("`{target}` presented no host key"))?;
    let host = target.host.to_ascii_lowercase();
    let name = recorded_name(&host, target.port);
    let files = Files::of(target);
    let entries = load(files.all(), &name)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let verdict = decide(&entries, presented, &host, now);
    let key_type = host_cert::blob_type(presented).unwrap_or("unknown");
    // A certificate is shown by the key it certifies, as OpenSSH shows it.
    let shown_key = Certificate::parse(presented).map_or_else(|| presented.to_vec(), |c| c.plain);
    let fp = fingerprint(&shown_key);
    let first = quote(&files.first().display().to_string());
    let scan = format!(
        "ssh-keyscan -p {} {} >> {first}",
        target.port,
        quote(&target.host)
    );
    match verdict {
        Verdict::Trusted(entry) => {
            tracing::debug!(host = %name, at = %entry.place(), "host key accepted");
            Ok(())
        }
        Verdict::Revoked { entry, ca } => {
            let what = if ca {
                format!(
                    "the certificate authority ({} {}) that signed the {key_type} host certificate of `{name}`",
                    entry.key_type(),
                    fingerprint(&entry.key)
                )
            } else {
                format!("the {key_type} host key of `{name}` ({fp})")
            };
            Err(with_help(
                anyhow::anyhow!(
                    "WARNING: REVOKED HOST KEY DETECTED: {what} is marked `@revoked` in {}; refused",
                    entry.place()
                ),
                "this could mean that a stolen key is being used to impersonate the host; ask the host's administrator for its current key (or a certificate from a CA that is not revoked) and compare its fingerprint before recording it",
            ))
        }
        Verdict::Changed { offending, cert } => {
            let lines: Vec<String> = offending
                .iter()
                .map(|e| format!("{} ({})", e.place(), e.key_type()))
                .collect();
            let remove: Vec<String> = offending
                .iter()
                .map(|e| e.file.display().to_string())
                .fold(Vec::new(), |mut files, f| {
                    if !files.contains(&f) {
                        files.push(f);
                    }
                    files
                })
                .iter()
                .map(|f| format!("`ssh-keygen -R {} -f {}`", quote(&name), quote(f)))
                .collect();
            let cert = cert.map(|c| format!("; {c}")).unwrap_or_default();
            Err(with_help(
                anyhow::anyhow!(
                    "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for `{name}`: it presented the {key_type} key {fp}, not the key recorded in {}{cert}; refused",
                    lines.join(", ")
                ),
                format!(
                    "someone could be eavesdropping on you (a man-in-the-middle attack), or the host's key was replaced; only if you know it was replaced, remove the old key with {} and record the new one with `{scan}`",
                    remove.join(" and ")
                ),
            ))
        }
        Verdict::Unknown { cert } => {
            let cert = cert.map(|c| format!("; {c}")).unwrap_or_default();
            Err(with_help(
                anyhow::anyhow!(
                    "the host key of `{name}` is not known: its {key_type} key {fp} is in none of {}{cert}; refused",
                    files.shown()
                ),
                format!(
                    "if this is the host you mean (compare the fingerprint with the one its administrator gives), record its key with `{scan}`, or trust the CA that signs its host certificate with a line `@cert-authority {} <CA public key>` in {first}",
                    quote(&name)
                ),
            ))
        }
        Verdict::BadCertificate(why) => Err(with_help(
            anyhow::anyhow!(
                "`{name}` presented a {key_type} host certificate that is not valid: {why}; refused"
            ),
            "ask the host's administrator to reissue its host certificate (`ssh-keygen -s CA -h`)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::host_cert::tests::{CA_ED, H1, HOST, JUNE_2026, U1, decode};
    use super::*;

    /// The matching lines of a known_hosts file with `text`, for `name`.
    fn lines_for(text: &str, name: &str) -> (tempfile::TempDir, Vec<Entry>) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(&file, text).unwrap();
        let entries = load([file].iter(), name).unwrap();
        (dir, entries)
    }

    const OTHER: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIGxYqZzs3/RkDP1RfH7qBxoOj6ZVWH2UlH8CXTAZwhc5";

    #[test]
    fn hashed_names_match_only_their_name() {
        // `ssh-keygen -H` of `host.example` and `[127.0.0.1]:2222`.
        let host = "|1|lnj/EXaQlQyJclI9T0sN4xSDZe8=|YGQiNei3H9o5OG7gSO66PvMRtho=";
        let port = "|1|0ocljRtMkXgZEBgQD8G/4VG6z6U=|JdFsT3hzzgA1ffKzH1yRyZjM+z8=";
        assert!(host_matches(host, "host.example"));
        assert!(!host_matches(host, "host.exampl"));
        assert!(host_matches(port, "[127.0.0.1]:2222"));
        assert!(!host_matches(port, "127.0.0.1"));
        assert!(!host_matches("|1|AAAA|BBBB", "host.example"));
        assert!(!host_matches(
            "|2|lnj/EXaQlQyJclI9T0sN4xSDZe8=|YGQiNei3H9o5OG7gSO66PvMRtho=",
            "host.example"
        ));
    }

    #[test]
    fn names_carry_the_port_unless_22() {
        assert_eq!(recorded_name("h", 22), "h");
        assert_eq!(recorded_name("h", 2222), "[h]:2222");
    }

    #[test]
    fn files_are_split_as_user_known_hosts_file() {
        let home = expand_home(Path::new("~"));
        assert_eq!(
            split_files("/a/kh ~/b \"/c d/kh\""),
            vec![
                PathBuf::from("/a/kh"),
                home.join("b"),
                PathBuf::from("/c d/kh")
            ]
        );
        let target = |known_hosts: PathBuf| SshTarget {
            host: "h".into(),
            port: 22,
            user: "u".into(),
            identity_file: None,
            known_hosts,
        };
        let default = Files::of(&target(home.join(".ssh/known_hosts")));
        assert_eq!(
            default.user,
            vec![
                home.join(".ssh/known_hosts"),
                home.join(".ssh/known_hosts2")
            ]
        );
        assert_eq!(default.global[0], PathBuf::from("/etc/ssh/ssh_known_hosts"));
        let own = Files::of(&target("/x/kh /y/kh".into()));
        assert_eq!(
            own.user,
            vec![PathBuf::from("/x/kh"), PathBuf::from("/y/kh")]
        );
        assert_eq!(own.first(), Path::new("/x/kh"));
    }

    #[test]
    fn reads_markers_and_skips_junk() {
        let (_dir, entries) = lines_for(
            &format!(
                "# comment\n\n@cert-authority * ssh-ed25519 {CA_ED}\n@revoked * ssh-ed25519 {HOST}\n\
                 broken\n@unknown * ssh-ed25519 {HOST}\n* ssh-rsa {HOST}\n[h]:2222 ssh-ed25519 {HOST}\n"
            ),
            "[h]:2222",
        );
        let got: Vec<(usize, Marker)> = entries.iter().map(|e| (e.line, e.marker)).collect();
        assert_eq!(
            got,
            [
                (3, Marker::CertAuthority),
                (4, Marker::Revoked),
                (8, Marker::Key)
            ]
        );
        assert!(
            read(Path::new("/nonexistent/known_hosts"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn revoked_on_any_line_wins() {
        // The accepting line first, the revocation after it: still revoked.
        for text in [
            format!("h ssh-ed25519 {HOST}\n@revoked * ssh-ed25519 {HOST}\n"),
            format!("@revoked h ssh-ed25519 {HOST}\nh ssh-ed25519 {HOST}\n"),
        ] {
            let (_dir, entries) = lines_for(&text, "h");
            assert!(
                matches!(
                    decide(&entries, &decode(HOST), "h", JUNE_2026),
                    Verdict::Revoked { ca: false, .. }
                ),
                "{text}"
            );
        }
        // A revocation for other hosts does not apply.
        let (_dir, entries) = lines_for(
            &format!("h ssh-ed25519 {HOST}\n@revoked other ssh-ed25519 {HOST}\n"),
            "h",
        );
        assert!(
            matches!(decide(&entries, &decode(HOST), "h", JUNE_2026), Verdict::Trusted(e) if e.line == 1)
        );
    }

    #[test]
    fn changed_and_unknown_keys() {
        let (_dir, entries) = lines_for(&format!("h ssh-ed25519 {OTHER}\n"), "h");
        assert!(matches!(
            decide(&entries, &decode(HOST), "h", JUNE_2026),
            Verdict::Changed { ref offending, .. } if offending.len() == 1
        ));
        // A line for another host, or a negated one, says nothing about this host.
        let (_dir, entries) = lines_for(
            &format!("other ssh-ed25519 {HOST}\n*,!h ssh-ed25519 {HOST}\n"),
            "h",
        );
        assert!(matches!(
            decide(&entries, &decode(HOST), "h", JUNE_2026),
            Verdict::Unknown { cert: None }
        ));
    }

    #[test]
    fn certificates_need_a_listed_ca_and_a_valid_certificate() {
        let cert = decode(H1);
        let ca_line = format!("@cert-authority *.example ssh-ed25519 {CA_ED}\n");
        let (_dir, entries) = lines_for(&ca_line, "host.example");
        assert!(matches!(
            decide(&entries, &cert, "host.example", JUNE_2026),
            Verdict::Trusted(e) if e.marker == Marker::CertAuthority
        ));
        // Expired: falls back to the plain key, which is not known.
        let expired = decide(&entries, &cert, "host.example", 1_800_000_000);
        assert!(
            matches!(&expired, Verdict::Unknown { cert: Some(c) } if c.contains("expired")),
            "{expired:?}"
        );
        // The principal does not match the name connected to (the CA line does).
        let (_dir, entries) = lines_for(&ca_line, "other.example");
        let wrong = decide(&entries, &cert, "other.example", JUNE_2026);
        assert!(
            matches!(&wrong, Verdict::Unknown { cert: Some(c) } if c.contains("not a listed principal")),
            "{wrong:?}"
        );
        // A user certificate from the same CA is not a host certificate.
        let (_dir, entries) = lines_for(&ca_line, "host.example");
        assert!(matches!(
            decide(&entries, &decode(U1), "host.example", JUNE_2026),
            Verdict::Unknown { cert: Some(c) } if c.contains("not a host certificate")
        ));
        // The CA revoked, in a later line: refused, with no fallback to the plain key.
        let (_dir, entries) = lines_for(
            &format!("{ca_line}host.example ssh-ed25519 {HOST}\n@revoked * ssh-ed25519 {CA_ED}\n"),
            "host.example",
        );
        assert!(matches!(
            decide(&entries, &cert, "host.example", JUNE_2026),
            Verdict::Revoked { ca: true, .. }
        ));
        // No CA listed, but the plain key is: accepted through the plain key, as OpenSSH does.
        let (_dir, entries) = lines_for(
            &format!("host.example ssh-ed25519 {HOST}\n"),
            "host.example",
        );
        assert!(matches!(
            decide(&entries, &cert, "host.example", JUNE_2026),
            Verdict::Trusted(e) if e.marker == Marker::Key
        ));
        // A certificate whose signature was tampered with: refused outright.
        let mut forged = cert.clone();
        let at = forged.len() - 3;
        forged[at] ^= 1;
        assert!(matches!(
            decide(&entries, &forged, "host.example", JUNE_2026),
            Verdict::BadCertificate(_)
        ));
    }

    #[test]
    fn algorithms_are_ordered_as_openssh_orders_them() {
        let supported = [
            "ssh-ed25519-cert-v01@openssh.com",
            "ecdsa-sha2-nistp256-cert-v01@openssh.com",
            "ssh-ed25519",
            "ecdsa-sha2-nistp256",
            "rsa-sha2-512",
        ];
        let (_dir, rsa) = lines_for(&format!("h ssh-rsa {HOST}\n"), "h");
        // The blob is an ed25519 key: the line's type must be the key's own, so it is skipped.
        assert!(rsa.is_empty());
        let (_dir, ed) = lines_for(&format!("h ssh-ed25519 {HOST}\n"), "h");
        assert_eq!(order(&ed, &supported), supported);
        let (_dir, ca) = lines_for(&format!("@cert-authority h ssh-ed25519 {CA_ED}\n"), "h");
        let reordered = ["ecdsa-sha2-nistp256", "rsa-sha2-512"];
        assert_eq!(order(&ca, &reordered), reordered);
        let mixed = [
            "rsa-sha2-512",
            "ssh-ed25519-cert-v01@openssh.com",
            "ssh-ed25519",
        ];
        assert_eq!(
            order(&ca, &mixed),
            [
                "ssh-ed25519-cert-v01@openssh.com",
                "rsa-sha2-512",
                "ssh-ed25519"
            ]
        );
        assert_eq!(
            order(&ed, &mixed),
            [
                "ssh-ed25519-cert-v01@openssh.com",
                "ssh-ed25519",
                "rsa-sha2-512"
            ]
        );
    }
}
