//! SSH as the cluster backends use it: a [`Session`] to one host (host key verified against
//! known_hosts, key authentication only), remote commands with their output, a checked SFTP
//! upload, and reads of growing remote files. Built on libssh2 (the `ssh2` crate), so no `ssh`
//! binary and no terminal are involved: nothing can ever prompt for a password.
//!
//! One concept per file: `known_hosts.rs` verifies host keys as OpenSSH does (`host_cert.rs`
//! reads and checks host certificates, `pattern.rs` matches names), `upload.rs` is the SFTP upload
//! (temporary name, sha256 checked by the host, rename), `tunnel.rs` HTTP through the
//! connection, and [`quote`] (from [`crate::quote`]) the quoting of everything sent to a remote shell.

mod host_cert;
mod known_hosts;
mod lazy;
mod pattern;
mod tunnel;
mod upload;

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::cluster::profile::{SshTarget, expand_home};
use crate::error::with_help;

pub use crate::quote::quote;
pub use lazy::LazySession;
pub use upload::{stage_over, stage_sftp};

/// How long a TCP connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long any one blocking SSH operation may wait for the host.
const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// The most bytes [`Session::read_from`] returns at once.
const READ_CHUNK: u64 = 8 << 20;

/// An authenticated SSH connection to one host.
pub struct Session {
    session: ssh2::Session,
    target: SshTarget,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Say goodbye, so that the host's sshd ends the session at once.
        let _ = self.session.disconnect(None, "cargo-stream is done", None);
    }
}

/// What a remote command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// Its exit code (128 + the signal number if a signal ended it, -1 if the host said
    /// neither).
    pub code: i32,
    /// Its standard output, as text (invalid UTF-8 replaced).
    pub stdout: String,
    /// Its standard error, as text (invalid UTF-8 replaced).
    pub stderr: String,
}

impl Output {
    /// Whether the command exited with code 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

impl Session {
    /// Connects over TCP, verifies the host key against `target.known_hosts` (an unknown or
    /// changed key is refused, with the `ssh-keyscan -p PORT HOST >> FILE` command that would
    /// record it, and for a changed key the warning), then authenticates with the key file, or
    /// without one with the SSH agent and then the default keys (`~/.ssh/id_ed25519`, ...);
    /// never with a password. Errors name the host.
    pub fn connect(target: &SshTarget) -> anyhow::Result<Session> {
        let tcp = tcp_connect(target)?;
        let mut session = ssh2::Session::new().context("failed to start libssh2")?;
        session.set_timeout(IO_TIMEOUT.as_millis() as u32);
        // Offer the host key algorithms as OpenSSH orders them for this host (the types
        // recorded for it first, certificates first when a CA is listed for it).
        if let Ok(supported) = session.supported_algs(ssh2::MethodType::HostKey) {
            let order = known_hosts::order_algorithms(target, &supported);
            let _ = session.method_pref(ssh2::MethodType::HostKey, &order.join(","));
        }
        prefer_fast_ciphers(&session);
        session.set_tcp_stream(tcp);
        session
            .handshake()
            .map_err(anyhow::Error::new)
            .with_context(|| format!("SSH handshake with `{target}` failed"))
            .map_err(|e| {
                with_help(
                    e,
                    format!(
                        "check that `{}` port {} is an SSH server (`host` and `port` in the profile)",
                        target.host, target.port
                    ),
                )
            })?;
        known_hosts::verify(&session, target)
            .with_context(|| format!("refused to log in to `{target}`"))?;
        authenticate(&session, target)?;
        tracing::debug!(%target, "connected");
        Ok(Session {
            session,
            target: target.clone(),
        })
    }

    /// The host this session is connected to.
    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// Runs `command` through the remote user's shell; returns its exit code and output.
    pub fn exec(&self, command: &str) -> anyhow::Result<Output> {
        self.exec_with_input(command, b"")
    }

    /// Runs `command` with `input` on its standard input (then end of file). Scripts sent this
    /// way (`sh -s`) keep the values they carry out of every process's command line.
    pub fn exec_with_input(&self, command: &str, input: &[u8]) -> anyhow::Result<Output> {
        let (code, stdout, stderr) = self.exec_raw(command, input)?;
        Ok(Output {
            code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    fn exec_raw(&self, command: &str, input: &[u8]) -> anyhow::Result<(i32, Vec<u8>, Vec<u8>)> {
        tracing::trace!(target = %self.target, command, "exec");
        let failed = || format!("failed to run a command on `{}`", self.target);
        let mut channel = self.session.channel_session().with_context(failed)?;
        channel.exec(command).with_context(failed)?;
        if !input.is_empty() {
            channel.write_all(input).with_context(failed)?;
        }
        channel.send_eof().with_context(failed)?;
        let mut stdout = Vec::new();
        channel.read_to_end(&mut stdout).with_context(failed)?;
        let mut stderr = Vec::new();
        channel
            .stderr()
            .read_to_end(&mut stderr)
            .with_context(failed)?;
        channel.wait_close().with_context(failed)?;
        let code = match channel.exit_signal() {
            Ok(signal) if signal.exit_signal.is_some() => {
                128 + signal_number(signal.exit_signal.as_deref().unwrap_or(""))
            }
            _ => channel.exit_status().with_context(failed)?,
        };
        Ok((code, stdout, stderr))
    }

    /// The bytes of the remote file `remote_path` from byte `offset` on (at most 8 MiB at a
    /// time): empty if there are no new bytes or the file does not exist.
    pub fn read_from(&self, remote_path: &str, offset: u64) -> anyhow::Result<Vec<u8>> {
        let file = quote(remote_path);
        let command = format!(
            "if [ -f {file} ]; then tail -c +{} -- {file} | head -c {READ_CHUNK}; fi",
            offset.saturating_add(1)
        );
        let (code, stdout, stderr) = self.exec_raw(&command, b"")?;
        if code != 0 {
            anyhow::bail!(
                "failed to read `{remote_path}` on `{}`: {}",
                self.target,
                String::from_utf8_lossy(&stderr).trim()
            );
        }
        Ok(stdout)
    }
}

/// `remote_dir` as the remote shell should see it: `~/x` and `x` are relative to the home
/// folder (where commands start); quoted.
pub(crate) fn shell_dir(remote_dir: &str) -> String {
    let dir = remote_dir
        .strip_prefix("~/")
        .unwrap_or(remote_dir)
        .trim_end_matches('/');
    match dir {
        "" | "~" => ".".to_owned(),
        dir => quote(dir),
    }
}

/// `TERM` as 15, and so on for the signals a job may end with.
fn signal_number(name: &str) -> i32 {
    match name.trim_start_matches("SIG") {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "SEGV" => 11,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "USR1" => 10,
        "USR2" => 12,
        _ => 0,
    }
}

/// chacha20-poly1305 first (as OpenSSH's client also orders it): libssh2 encrypts a packet of
/// that cipher in one call, but AES (GCM or CTR) 16 bytes per call, which costs it a third more
/// CPU per byte uploaded and about 10 % of upload throughput (`upload_bench`). The rest of
/// libssh2's list stays as the fallback.
fn prefer_fast_ciphers(session: &ssh2::Session) {
    const FIRST: &str = "chacha20-poly1305@openssh.com";
    for method in [ssh2::MethodType::CryptCs, ssh2::MethodType::CryptSc] {
        let Ok(supported) = session.supported_algs(method) else {
            continue;
        };
        if !supported.contains(&FIRST) {
            continue;
        }
        let order: Vec<&str> = std::iter::once(FIRST)
            .chain(supported.iter().copied().filter(|a| *a != FIRST))
            .collect();
        let _ = session.method_pref(method, &order.join(","));
    }
}

fn tcp_connect(target: &SshTarget) -> anyhow::Result<TcpStream> {
    let addrs: Vec<_> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .with_context(|| format!("failed to resolve the SSH host `{}`", target.host))
        .map_err(|e| {
            with_help(
                e,
                "check `host` in the cluster profile (a name this machine can resolve, or an address)",
            )
        })?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last = Some(e),
        }
    }
    let err = match last {
        Some(e) => anyhow::Error::new(e),
        None => anyhow::anyhow!("`{}` resolved to no address", target.host),
    };
    Err(with_help(
        err.context(format!("failed to connect to `{target}`")),
        format!(
            "check that sshd runs on `{}` and listens on port {}, and that no firewall is in the way (`host` and `port` in the cluster profile)",
            target.host, target.port
        ),
    ))
}

/// Key authentication only: the profile's key file, else the agent's keys, else the default
/// key files. Passwords and keyboard-interactive are never tried, so nothing can prompt.
fn authenticate(session: &ssh2::Session, target: &SshTarget) -> anyhow::Result<()> {
    let user = target.user.as_str();
    if let Some(key) = &target.identity_file {
        if !key.is_file() {
            return Err(with_help(
                anyhow::anyhow!(
                    "the SSH key `{}` for `{target}` does not exist",
                    key.display()
                ),
                "fix `identity-file` in the cluster profile, or remove it to use the SSH agent",
            ));
        }
        return match session.userauth_pubkey_file(user, None, key, None) {
            Ok(()) if session.authenticated() => Ok(()),
            Err(err) if crate::exit::is_ssh_connection_lost(&err) => {
                Err(lost_while_authenticating(target, err))
            }
            result => Err(key_refused(target, key, result.err())),
        };
    }
    let mut tried: Vec<String> = Vec::new();
    if std::env::var_os("SSH_AUTH_SOCK").is_some()
        && let Ok(mut agent) = session.agent()
        && agent.connect().is_ok()
    {
        let _ = agent.list_identities();
        for identity in agent.identities().unwrap_or_default() {
            match agent.userauth(user, &identity) {
                Ok(()) if session.authenticated() => {
                    let _ = agent.disconnect();
                    return Ok(());
                }
                Err(err) if crate::exit::is_ssh_connection_lost(&err) => {
                    let _ = agent.disconnect();
                    return Err(lost_while_authenticating(target, err));
                }
                _ => {}
            }
            tried.push(format!("the agent's key `{}`", identity.comment()));
        }
        let _ = agent.disconnect();
    }
    for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
        let key = expand_home(&PathBuf::from("~/.ssh").join(name));
        if key.is_file() {
            match session.userauth_pubkey_file(user, None, &key, None) {
                Ok(()) if session.authenticated() => return Ok(()),
                Err(err) if crate::exit::is_ssh_connection_lost(&err) => {
                    return Err(lost_while_authenticating(target, err));
                }
                _ => {}
            }
            tried.push(format!("`{}`", key.display()));
        }
    }
    let tried = if tried.is_empty() {
        "no key was available (no `identity-file`, no SSH agent, no `~/.ssh/id_*`)".to_owned()
    } else {
        format!("tried {}", tried.join(", "))
    };
    Err(with_help(
        anyhow::anyhow!("`{target}` accepted none of our SSH keys: {tried}"),
        "set `identity-file` in the cluster profile to a key whose public half is in the host's `~/.ssh/authorized_keys`, or add one to the agent with `ssh-add`",
    ))
}

/// The connection dropped during authentication: the cause stays in the chain, so that
/// [`crate::exit::is_unreachable`] sees it and a follower reconnects instead of reporting a
/// refused key.
fn lost_while_authenticating(target: &SshTarget, err: ssh2::Error) -> anyhow::Error {
    anyhow::Error::new(err).context(format!(
        "lost the connection to `{target}` while authenticating"
    ))
}

fn key_refused(target: &SshTarget, key: &Path, err: Option<ssh2::Error>) -> anyhow::Error {
    let detail = err.map(|e| e.message().to_owned()).unwrap_or_default();
    let unreadable = detail.contains("passphrase") || detail.contains("Unable to extract");
    let (message, help) = if unreadable {
        (
            format!(
                "could not use the SSH key `{}` for `{target}`: {detail}",
                key.display()
            ),
            format!(
                "a passphrase-protected key is used through the agent: run `ssh-add {}` and remove `identity-file` from the profile",
                quote(&key.display().to_string())
            ),
        )
    } else {
        (
            format!(
                "`{target}` refused the SSH key `{}` (key authentication only; a password is never tried)",
                key.display()
            ),
            format!(
                "add `{}.pub` to `~/.ssh/authorized_keys` of `{}` on `{}` (for example with `ssh-copy-id -i {} -p {} {}@{}`), or fix `identity-file`",
                key.display(),
                target.user,
                target.host,
                quote(&key.display().to_string()),
                target.port,
                target.user,
                target.host
            ),
        )
    };
    with_help(anyhow::anyhow!(message), help)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_lost_while_authenticating_is_unreachable_not_a_refused_key() {
        let target = SshTarget {
            user: "u".into(),
            host: "h".into(),
            port: 22,
            identity_file: None,
            known_hosts: PathBuf::from("/kh"),
        };
        let lost = ssh2::Error::new(ssh2::ErrorCode::Session(-43), "Failure receiving data");
        let err = lost_while_authenticating(&target, lost);
        assert!(crate::exit::is_unreachable(&err), "{err:#}");
        let refused = ssh2::Error::new(ssh2::ErrorCode::Session(-18), "Authentication failed");
        let err = key_refused(&target, Path::new("/k"), Some(refused));
        assert!(!crate::exit::is_unreachable(&err), "{err:#}");
    }

    #[test]
    fn remote_dirs_are_home_relative_and_quoted() {
        assert_eq!(shell_dir("cargo-stream/uploads"), "cargo-stream/uploads");
        assert_eq!(shell_dir("~/jobs/"), "jobs");
        assert_eq!(shell_dir("~"), ".");
        assert_eq!(shell_dir("/srv/my jobs"), "'/srv/my jobs'");
    }
}
