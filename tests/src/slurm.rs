//! A throwaway one-node Slurm cluster on 127.0.0.1, for the `slurm` cluster kind's tests.
//!
//! [`Slurm::start`] runs Debian's Slurm 22.05 (installed by `tests/support/install-slurm.sh`
//! when missing) from a temporary folder that holds everything: `slurm.conf`, the munge and JWT
//! keys, the controller's state, the node's spool, the logs and a `shared/` folder that stands
//! for the file system the cluster and this machine share. Four daemons run:
//!
//! - `munged` as the `munge` user, on a socket in the folder (not the system's);
//! - `slurmctld` and `slurmd` as root (jobs run as the submitting user: root here), on free
//!   ports, with JWT as the alternative authentication so that REST tokens work;
//! - `slurmrestd` as the `slurm` system user (it refuses to run as root), with `rest_auth/jwt`
//!   and the `openapi/v0.0.38` plugin, on a free port.
//!
//! `KillWait`, the time between `scancel`'s SIGTERM and its SIGKILL, is the graceful stop's
//! grace. Everything is stopped on drop: the daemons, and every process whose environment
//! names this cluster's `slurm.conf` (the `slurmstepd`s, which leave slurmd's session, and the
//! jobs under them). Each cluster has its own ports, socket and folders, so several run side by
//! side (test threads, test binaries); clusters left behind by a test process that died are
//! reaped by the next start.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::{free_port, workspace_root};

/// The REST API version the tests speak (Slurm 22.05's newest).
pub const API_VERSION: &str = "v0.0.38";

/// Marks every daemon's environment with its cluster folder, to find leftovers.
const MARKER: &str = "CARGO_STREAM_E2E_SLURM";

/// A running one-node Slurm cluster with slurmrestd; stopped on drop.
pub struct Slurm {
    dir: tempfile::TempDir,
    rest_port: u16,
    user: String,
    daemons: Vec<(&'static str, Child)>,
}

impl Slurm {
    /// Starts a cluster whose `KillWait` is 10 s.
    pub fn start() -> Slurm {
        Slurm::start_with_kill_wait(10)
    }

    /// Starts a cluster whose `KillWait` (seconds between SIGTERM and SIGKILL on cancel) is
    /// `kill_wait`.
    pub fn start_with_kill_wait(kill_wait: u32) -> Slurm {
        assert!(
            current_user() == "root",
            "the Slurm tests run munged as `munge`, slurmrestd as `slurm` and jobs as other users: run them as root"
        );
        install();
        reap_stale();
        // Free ports are picked before the daemons bind them: another process may take one in
        // between, so a failed start is retried with new ports.
        let mut failures = Vec::new();
        for _ in 0..3 {
            match Slurm::try_start(kill_wait) {
                Ok(slurm) => return slurm,
                Err(e) => failures.push(e),
            }
        }
        panic!(
            "could not start Slurm:\n{}",
            failures.join("\n---------- next attempt\n")
        );
    }

    fn try_start(kill_wait: u32) -> Result<Slurm, String> {
        let dir = tempfile::Builder::new()
            .prefix("e2e-slurm-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let root = dir.path().to_owned();
        // The daemons run as three users: every folder on the way must be traversable.
        chmod(&root, 0o755);
        std::fs::write(root.join("owner"), std::process::id().to_string()).unwrap();
        let user = current_user();
        let mut slurm = Slurm {
            dir,
            rest_port: 0,
            user,
            daemons: Vec::new(),
        };
        let (munge_uid, munge_gid) = ids("munge").ok_or("no `munge` user: is munge installed?")?;
        let (rest_uid, rest_gid) = ids("slurm")
            .or_else(|| ids("nobody"))
            .ok_or("no `slurm` or `nobody` user for slurmrestd")?;

        // munge: the key in a private folder, the socket in a world-traversable one.
        let munge_etc = root.join("munge");
        let munge_run = root.join("munge-run");
        for (dir, mode) in [(&munge_etc, 0o700), (&munge_run, 0o755)] {
            std::fs::create_dir(dir).unwrap();
            chown(dir, munge_uid, munge_gid);
            chmod(dir, mode);
        }
        let key = munge_etc.join("munge.key");
        let mut bytes = vec![0u8; 1024];
        random_bytes(&mut bytes);
        std::fs::write(&key, &bytes).unwrap();
        chown(&key, munge_uid, munge_gid);
        chmod(&key, 0o400);
        let socket = munge_run.join("munge.socket");
        let mut munged = Command::new(sbin("munged"));
        munged
            .arg("--foreground")
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--key-file={}", key.display()))
            .arg(format!(
                "--pid-file={}",
                munge_etc.join("munged.pid").display()
            ))
            .arg(format!(
                "--log-file={}",
                munge_etc.join("munged.log").display()
            ))
            .arg(format!(
                "--seed-file={}",
                munge_etc.join("munged.seed").display()
            ))
            .uid(munge_uid)
            .gid(munge_gid);
        slurm.spawn("munged", munged)?;
        slurm.wait_until("munged's socket", Duration::from_secs(10), |_| {
            socket.exists()
        })?;

        // Slurm itself.
        let jwt_key = root.join("jwt.key");
        let mut bytes = vec![0u8; 32];
        random_bytes(&mut bytes);
        std::fs::write(&jwt_key, &bytes).unwrap();
        chmod(&jwt_key, 0o600);
        for sub in ["state", "spool", "shared"] {
            std::fs::create_dir(root.join(sub)).unwrap();
            chmod(&root.join(sub), 0o755);
        }
        let host = hostname();
        // A node that claims more than the machine has is drained: claim what is there.
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
        let memory = (total_memory_mib() / 2).clamp(256, 2000);
        let ctld_port = free_port();
        let slurmd_port = free_port();
        slurm.rest_port = free_port();
        let r = root.display();
        let conf = format!(
            "# A one-node cluster for cargo-stream's end-to-end tests.
ClusterName=e2e
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={socket}
CredType=cred/munge
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key={jwt}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/slurmctld.log
SlurmdLogFile={r}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=100
ReturnToService=2
KillWait={kill_wait}
MinJobAge=3600
NodeName={host} NodeAddr=127.0.0.1 NodeHostname={host} CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=e2e Nodes={host} Default=YES MaxTime=INFINITE State=UP
",
            socket = socket.display(),
            jwt = jwt_key.display(),
        );
        let conf_path = root.join("slurm.conf");
        std::fs::write(&conf_path, conf).unwrap();
        chmod(&conf_path, 0o644);

        let mut ctld = Command::new(sbin("slurmctld"));
        ctld.args(["-D", "-i"]);
        slurm.spawn("slurmctld", ctld)?;
        let mut slurmd = Command::new(sbin("slurmd"));
        slurmd.arg("-D");
        slurm.spawn("slurmd", slurmd)?;
        slurm.wait_until("the node to be idle", Duration::from_secs(60), |s| {
            s.command("sinfo", &["-h", "-o", "%T"])
                .is_ok_and(|o| o.trim() == "idle")
        })?;

        let mut rest = Command::new(sbin("slurmrestd"));
        rest.args([
            "-a",
            "rest_auth/jwt",
            "-s",
            &format!("openapi/{API_VERSION}"),
        ])
        .arg(format!("127.0.0.1:{}", slurm.rest_port))
        .env("SLURM_JWT", "daemon")
        .uid(rest_uid)
        .gid(rest_gid);
        slurm.spawn("slurmrestd", rest)?;
        let token = slurm.try_token()?;
        slurm.wait_until("slurmrestd to answer", Duration::from_secs(60), |s| {
            s.get(&format!("/slurm/{API_VERSION}/ping"), &token)
                .is_ok_and(|(code, _)| code == 200)
        })?;
        Ok(slurm)
    }

    /// slurmrestd's base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rest_port)
    }

    /// The user jobs are submitted as (the one running the tests).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// A fresh JWT for [`Slurm::user`], valid for two hours (`scontrol token`).
    pub fn token(&self) -> String {
        self.try_token().unwrap_or_else(|e| panic!("{e}"))
    }

    /// A fresh JWT for `user` (a user of this machine), valid for two hours: the jobs
    /// submitted with it run as that user.
    pub fn token_for(&self, user: &str) -> String {
        self.try_token_for(user).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_token(&self) -> Result<String, String> {
        self.try_token_for(&self.user)
    }

    fn try_token_for(&self, user: &str) -> Result<String, String> {
        let out = self.command(
            "scontrol",
            &["token", &format!("username={user}"), "lifespan=7200"],
        )?;
        out.trim()
            .strip_prefix("SLURM_JWT=")
            .map(str::to_owned)
            .ok_or_else(|| format!("scontrol token printed {out:?}"))
    }

    /// The folder this machine and the cluster share (uploads, job folders).
    pub fn shared_dir(&self) -> PathBuf {
        self.dir.path().join("shared")
    }

    /// The cluster's `slurm.conf`.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    /// A `[clusters.NAME]` table for this cluster: slurmrestd's URL, the user, partition `e2e`,
    /// uploads to [`Slurm::shared_dir`], 1 core and 256 MiB, then `extra` lines (where the
    /// token comes from: `token-env` or `token-file`).
    pub fn profile(&self, name: &str, extra: &str) -> String {
        format!(
            "[clusters.{name}]\nkind = \"slurm\"\nurl = \"{}\"\nuser = \"{}\"\npartition = \"e2e\"\ndriver-cores = 1\ndriver-memory = \"256m\"\nupload = {{ to = \"dir\", path = \"{}\" }}\n{extra}",
            self.url(),
            self.user,
            self.shared_dir().display()
        )
    }

    /// Runs a Slurm client command (`scontrol`, `squeue`, ...) against this cluster and returns
    /// its stdout; panics if it fails.
    pub fn run(&self, tool: &str, args: &[&str]) -> String {
        self.command(tool, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `cargo stream kill` of a running job through `client`: it must stop by itself on
    /// SIGTERM with a final checkpoint in `checkpoints`, well within this cluster's KillWait
    /// (2 s of batches, then under 9 s), and Slurm must call it CANCELLED.
    pub fn kill_gracefully(&self, client: &Client, id: &str, checkpoints: &Path) {
        let started = Instant::now();
        client.kill_expecting_final_checkpoint(id, checkpoints);
        assert!(
            started.elapsed() < Duration::from_secs(11),
            "kill took {:?}",
            started.elapsed()
        );
        let state = self.run("scontrol", &["show", "job", id]);
        assert!(state.contains("JobState=CANCELLED"), "{state}");
    }

    fn command(&self, tool: &str, args: &[&str]) -> Result<String, String> {
        let out = Command::new(tool)
            .args(args)
            .env("SLURM_CONF", self.conf())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("failed to run {tool}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{tool} {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A GET to slurmrestd with `token`: the status code and body.
    pub fn get(&self, path: &str, token: &str) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.rest_port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        // One write: slurmrestd reads a request split over several segments badly.
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-SLURM-USER-NAME: {}\r\nX-SLURM-USER-TOKEN: {token}\r\nConnection: close\r\n\r\n",
            self.user
        );
        stream.write_all(request.as_bytes())?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((code, body))
    }

    /// The end of every daemon's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let root = self.dir.path();
        for file in [
            "slurmctld.log",
            "slurmd.log",
            "slurmctld.out",
            "slurmd.out",
            "slurmrestd.out",
            "munged.out",
        ] {
            let text = std::fs::read_to_string(root.join(file)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            out.push_str(&format!("--- {file}\n{}\n", tail.join("\n")));
        }
        out
    }

    fn spawn(&mut self, name: &'static str, mut cmd: Command) -> Result<(), String> {
        let out = std::fs::File::create(self.dir.path().join(format!("{name}.out"))).unwrap();
        let err = out.try_clone().unwrap();
        cmd.env("SLURM_CONF", self.conf())
            .env(MARKER, self.dir.path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own process group: a Ctrl-C in the test's terminal is for the test only.
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| format!("failed to start {name}: {e}"))?;
        self.daemons.push((name, child));
        Ok(())
    }

    fn wait_until(
        &mut self,
        what: &str,
        limit: Duration,
        ready: impl Fn(&Slurm) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if ready(self) {
                return Ok(());
            }
            let exited = self
                .daemons
                .iter_mut()
                .find_map(|(name, child)| child.try_wait().ok().flatten().map(|s| (*name, s)));
            if let Some((name, status)) = exited {
                return Err(format!(
                    "{name} exited ({status}) while waiting for {what}\n{}",
                    self.logs()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("no {what} within {limit:?}\n{}", self.logs()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        // slurmrestd first (no new jobs), then the node and the controller, munge last: each
        // gets SIGTERM and, if it lingers, SIGKILL.
        while let Some((_, mut child)) = self.daemons.pop() {
            signal(child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Jobs outlive slurmd by design (their slurmstepd left its session): end them too.
        kill_marked(self.dir.path());
    }
}

/// Runs `tests/support/install-slurm.sh` once per test process: it installs what is missing
/// (as root) and returns at once when everything is there.
fn install() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let script = workspace_root().join("tests/support/install-slurm.sh");
        let status = Command::new("bash").arg(&script).status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "Slurm is not installed: run `{}` as root",
            script.display()
        );
    });
}

fn sbin(name: &str) -> PathBuf {
    Path::new("/usr/sbin").join(name)
}

/// The processes still running for the cluster whose `slurm.conf` is `conf` (daemons, job
/// steps, jobs): empty once its [`Slurm`] is dropped.
pub fn processes_of(conf: &Path) -> Vec<u32> {
    let Some(dir) = conf.parent() else {
        return Vec::new();
    };
    marked_processes()
        .into_iter()
        .filter(|(_, d)| d == dir)
        .map(|(pid, _)| pid)
        .collect()
}

/// Every process (but this one) whose environment names a cluster folder, with that folder.
fn marked_processes() -> Vec<(u32, PathBuf)> {
    let mut out = Vec::new();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        for var in environ.split(|b| *b == 0) {
            let var = String::from_utf8_lossy(var);
            let folder = if let Some(v) = var.strip_prefix(&format!("{MARKER}=")) {
                Some(PathBuf::from(v))
            } else {
                var.strip_prefix("SLURM_CONF=")
                    .map(Path::new)
                    .filter(|p| {
                        p.file_name().is_some_and(|f| f == "slurm.conf")
                            && p.parent()
                                .and_then(|d| d.file_name())
                                .is_some_and(|d| d.to_string_lossy().starts_with("e2e-slurm-"))
                    })
                    .and_then(Path::parent)
                    .map(Path::to_owned)
            };
            if let Some(folder) = folder {
                out.push((pid, folder));
                break;
            }
        }
    }
    out
}

/// SIGKILLs every process of the cluster in `dir` until none is left (5 s at most).
fn kill_marked(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<u32> = marked_processes()
            .into_iter()
            .filter(|(_, d)| d == dir)
            .map(|(pid, _)| pid)
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            return;
        }
        for pid in left {
            signal(pid, "KILL");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops the clusters of test processes that died without dropping theirs.
fn reap_stale() {
    let mut dirs: Vec<PathBuf> = marked_processes()
        .into_iter()
        .map(|(_, d)| d)
        .filter(|d| {
            let owner = std::fs::read_to_string(d.join("owner"))
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok());
            match owner {
                Some(pid) => !alive(pid),
                None => !d.exists(),
            }
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        kill_marked(&dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Whether process `pid` runs (a zombie, dead but not yet reaped, does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().split('.').next().unwrap_or_default().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// The machine's memory in MiB (`MemTotal` of `/proc/meminfo`).
fn total_memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(2048, |kib| kib / 1024)
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A user's uid and primary gid, from `id`.
fn ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn random_bytes(buf: &mut [u8]) {
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .expect("read /dev/urandom");
}
