//! A throwaway OpenSSH server for the tests: Debian's `sshd` (installed by
//! `tests/support/install-sshd.sh` when missing) on a free port of 127.0.0.1, with a host key
//! of its own, one throwaway user (a fresh home, no password, a fresh ed25519 key in its
//! `authorized_keys`) and a known_hosts file holding the host key, so that clients verify it;
//! optionally a host certificate for that key, signed by a test CA of its own.
//! Needs root (to add the user). Stopped, with the user and everything it ran, on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, workspace_root};

/// A running sshd and its throwaway user.
pub struct Sshd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
    user: String,
    home: PathBuf,
    /// A second port it listens on too ([`Sshd::start_on_two_ports`]).
    second_port: Option<u16>,
}

impl Sshd {
    /// Starts a server with a new user; panics (with sshd's log) if it does not come up.
    pub fn start() -> Sshd {
        Sshd::start_with(None)
    }

    /// Starts a server listening on two ports of 127.0.0.1, which the client reaches as two
    /// hosts (an `ssh` profile's `hosts`, [`Sshd::profile_of_two_hosts`]): the same user and
    /// home behind both.
    pub fn start_on_two_ports() -> Sshd {
        let sshd = Sshd::start_with_ports(None, true);
        let second = sshd.second_port.expect("a second port");
        // The host key is known at both ports.
        let line = sshd.known_hosts_line();
        let other = line.replace(&format!("]:{} ", sshd.port), &format!("]:{second} "));
        std::fs::write(sshd.known_hosts(), format!("{line}{other}")).unwrap();
        sshd
    }

    /// A `[clusters.NAME]` table of kind `ssh` whose `hosts` are this server's two ports (see
    /// [`Sshd::start_on_two_ports`]).
    pub fn profile_of_two_hosts(&self, name: &str) -> String {
        let second = self
            .second_port
            .expect("a server started by `start_on_two_ports`");
        self.profile(name).replace(
            &format!("host = \"127.0.0.1\"\nport = {}\n", self.port),
            &format!(
                "hosts = [\"127.0.0.1:{}\", \"127.0.0.1:{second}\"]\n",
                self.port
            ),
        )
    }

    /// Starts a server that presents, with its host key, a host certificate signed by a test
    /// CA of its own ([`Sshd::ca_public_key`]), made by `ssh-keygen -s CA -h -n PRINCIPALS -V
    /// VALIDITY` (for example `"127.0.0.1"` and `"-1h:+1h"`).
    pub fn start_with_host_certificate(principals: &str, validity: &str) -> Sshd {
        Sshd::start_with(Some((principals, validity)))
    }

    fn start_with(certificate: Option<(&str, &str)>) -> Sshd {
        Sshd::start_with_ports(certificate, false)
    }

    fn start_with_ports(certificate: Option<(&str, &str)>, two_ports: bool) -> Sshd {
        let sshd = sshd_binary();
        assert!(
            is_root(),
            "the sshd tests add a throwaway user: run them as root"
        );
        let dir = tempfile::Builder::new()
            .prefix("e2e-sshd-")
            .tempdir()
            .unwrap();
        let user = add_user();
        let home = home_of(&user);
        keygen(&dir.path().join("host_key"), "e2e host key");
        keygen(&dir.path().join("client_key"), "e2e client key");
        let ssh_dir = home.join(".ssh");
        std::fs::create_dir_all(&ssh_dir).unwrap();
        std::fs::copy(
            dir.path().join("client_key.pub"),
            ssh_dir.join("authorized_keys"),
        )
        .unwrap();
        chmod(&ssh_dir, 0o700);
        chmod(&ssh_dir.join("authorized_keys"), 0o600);
        let owned = Command::new("chown")
            .args(["-R", &format!("{user}:{user}")])
            .arg(&ssh_dir)
            .status()
            .unwrap();
        assert!(owned.success(), "chown {}", ssh_dir.display());
        std::fs::create_dir_all("/run/sshd").unwrap();
        let mut host_certificate = String::new();
        if let Some((principals, validity)) = certificate {
            keygen(&dir.path().join("ca_key"), "e2e host CA");
            let out = Command::new("ssh-keygen")
                .args(["-q", "-s"])
                .arg(dir.path().join("ca_key"))
                .args(["-I", "e2e-host", "-h", "-n", principals, "-V", validity])
                .arg(dir.path().join("host_key.pub"))
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "ssh-keygen -s: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            host_certificate = format!(
                "HostCertificate {}\n",
                dir.path().join("host_key-cert.pub").display()
            );
        }

        let port = free_port();
        let second_port = two_ports.then(free_port);
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "{second}Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {pid}\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin no\nAllowUsers {user}\nUsePAM no\n\
                 Subsystem sftp internal-sftp\nLogLevel VERBOSE\n{host_certificate}",
                host_key = dir.path().join("host_key").display(),
                pid = dir.path().join("sshd.pid").display(),
                second = second_port
                    .map(|p| format!("Port {p}\n"))
                    .unwrap_or_default(),
            ),
        )
        .unwrap();
        let check = Command::new(&sshd)
            .arg("-t")
            .arg("-f")
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "sshd -t: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let log = std::fs::File::create(dir.path().join("sshd.log")).unwrap();
        let child = Command::new(&sshd)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {}: {e}", sshd.display()));
        let mut server = Sshd {
            dir,
            child: Some(child),
            port,
            user,
            home,
            second_port,
        };
        std::fs::write(server.known_hosts(), server.known_hosts_line()).unwrap();
        server.wait_listening();
        server
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let up = |port: Option<u16>| {
                port.is_none_or(|p| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok())
            };
            if up(Some(self.port)) && up(self.second_port) {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("sshd exited ({status}) at start:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen within 10 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The throwaway user's name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The throwaway user's home folder.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The private key the user logs in with.
    pub fn identity_file(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// A known_hosts file that records the server's key (and nothing else).
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// The server's known_hosts line: `[127.0.0.1]:PORT ssh-ed25519 AAAA...`.
    pub fn known_hosts_line(&self) -> String {
        let public = std::fs::read_to_string(self.dir.path().join("host_key.pub")).unwrap();
        let mut fields = public.split_whitespace();
        let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
        format!("[127.0.0.1]:{} {kind} {key}\n", self.port)
    }

    /// The server's public host key: `ssh-ed25519 AAAA...`.
    pub fn host_public_key(&self) -> String {
        public_key(&self.dir.path().join("host_key.pub"))
    }

    /// The public key of the CA that signed the host certificate
    /// ([`Sshd::start_with_host_certificate`]): `ssh-ed25519 AAAA...`.
    pub fn ca_public_key(&self) -> String {
        public_key(&self.dir.path().join("ca_key.pub"))
    }

    /// A folder of the test's own, removed on drop (for other keys and known_hosts files).
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// A new ed25519 key pair in the scratch folder (not authorized): returns the private key.
    pub fn new_key(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        keygen(&path, name);
        path
    }

    /// sshd's log so far (`-e`, `LogLevel VERBOSE`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// The names in the folder `rel` of the user's home, sorted (none if it does not exist).
    pub fn entries(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.home.join(rel))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A `[clusters.NAME]` table of kind `ssh` for this server.
    pub fn profile(&self, name: &str) -> String {
        format!(
            "[clusters.{name}]\nkind = \"ssh\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\n\
             identity-file = \"{}\"\nknown-hosts = \"{}\"\nremote-dir = \"cargo-stream\"\nkill-grace = 20\n",
            self.port,
            self.user,
            self.identity_file().display(),
            self.known_hosts().display()
        )
    }

    /// [`Sshd::profile`] reached through a proxy on 127.0.0.1:`port`: the host key listed for
    /// that port in a known_hosts file of its own.
    pub fn profile_through(&self, name: &str, port: u16) -> String {
        let known_hosts = self.dir.path().join(format!("known_hosts_{port}"));
        std::fs::write(
            &known_hosts,
            format!("[127.0.0.1]:{port} {}\n", self.host_public_key()),
        )
        .unwrap();
        self.profile(name)
            .replace(
                &format!("port = {}\n", self.port),
                &format!("port = {port}\n"),
            )
            .replace(
                &self.known_hosts().display().to_string(),
                &known_hosts.display().to_string(),
            )
    }

    /// Runs `command` as the user on the host (directly, not over SSH: for checks).
    pub fn run_as_user(&self, command: &str) -> std::process::Output {
        Command::new("runuser")
            .args(["-u", &self.user, "--", "sh", "-c", command])
            .current_dir(&self.home)
            .output()
            .unwrap()
    }

    /// The pids of every process the user runs (the jobs the tests started).
    pub fn user_pids(&self) -> Vec<u32> {
        let out = Command::new("ps")
            .args(["-u", &self.user, "-o", "pid="])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Whatever the tests left running as the throwaway user, by pid, then the user.
        for _ in 0..3 {
            let pids = self.user_pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("userdel")
            .args(["-r", &self.user])
            .stderr(Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Debian's sshd, installed first if missing.
fn sshd_binary() -> PathBuf {
    let sshd = PathBuf::from("/usr/sbin/sshd");
    if !sshd.is_file() {
        let script = workspace_root().join("tests/support/install-sshd.sh");
        let _ = Command::new("bash").arg(&script).status();
        assert!(
            sshd.is_file(),
            "OpenSSH's server is not installed: run `{}` as root",
            script.display()
        );
    }
    sshd
}

/// Adds a user with a home folder and no password (`*`: with `UsePAM no`, sshd refuses a
/// locked `!` account even for keys). `useradd` waits for its lock; tests add users at once.
fn add_user() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let user = format!("cse2e{:x}{:x}", std::process::id() % 0xfff, nanos % 0xfffff);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", &user])
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("lock") && Instant::now() < deadline,
            "useradd {user}: {err}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ok = Command::new("usermod")
        .args(["-p", "*", &user])
        .status()
        .unwrap();
    assert!(ok.success(), "usermod -p '*' {user}");
    user
}

/// The user's home folder, from the password database.
fn home_of(user: &str) -> PathBuf {
    let out = Command::new("getent")
        .args(["passwd", user])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    let home = line.trim().split(':').nth(5).unwrap_or_default();
    assert!(!home.is_empty(), "no home folder for `{user}`: {line}");
    PathBuf::from(home)
}

/// The `TYPE BASE64` of a `.pub` file (its comment left out).
fn public_key(path: &Path) -> String {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn keygen(path: &Path, comment: &str) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
