//! `cargo stream submit` and the lifecycle verbs against a plain Linux host: a real OpenSSH
//! server on 127.0.0.1 with a throwaway user (`kind = "ssh"`), and the ways reaching it can
//! go wrong (unknown or changed host key, a key it refuses, a closed port, an upload cut off).

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cargo_stream_tests::client::Client;
use cargo_stream_tests::feed::TextFeed;
use cargo_stream_tests::jobs;
use cargo_stream_tests::sshd::Sshd;
use cargo_stream_tests::{Run, free_port, run};
use sha2::Digest as _;

const MINUTE: Duration = Duration::from_secs(60);

/// A fresh host with its throwaway user, and a client whose only cluster profile, `box`,
/// reaches it.
fn host_box() -> (Sshd, Client) {
    let sshd = Sshd::start();
    let client = Client::new();
    client.set_clusters(&sshd.profile("box"));
    (sshd, client)
}

/// The remote folder a submission made (`~/cargo-stream/<id>`).
fn job_dir(sshd: &Sshd, id: &str) -> PathBuf {
    sshd.home().join("cargo-stream").join(id)
}

/// What is in `~/cargo-stream` on the host: nothing but uploads when a submission failed.
fn remote_entries(sshd: &Sshd) -> Vec<String> {
    sshd.entries("cargo-stream")
}

/// A refused submission left nothing on the host: no upload, no job folder.
fn assert_nothing_on_host(sshd: &Sshd) {
    let left = remote_entries(sshd);
    assert!(left.is_empty(), "{left:?}");
}

/// The jars in `~/cargo-stream/uploads` (temporary `.part` files left out).
fn uploaded_jars(sshd: &Sshd) -> Vec<String> {
    let mut names = sshd.entries("cargo-stream/uploads");
    names.retain(|n| !n.starts_with('.'));
    names
}

fn sha256_hex(path: &Path) -> String {
    format!("{:x}", sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// The name the upload gets: `STEM-<12 hex of the sha256>.jar`.
fn staged_name(jar: &Path) -> String {
    let stem = jar.file_stem().unwrap().to_string_lossy();
    format!("{stem}-{}.jar", &sha256_hex(jar)[..12])
}

/// Waits (5 s at most) until the user runs nothing: the job and its wrapper have ended, and
/// so have sshd's processes of the connections the commands made.
fn assert_no_job_left(sshd: &Sshd) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !sshd.user_pids().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = sshd.user_pids();
    if !left.is_empty() {
        let ps = std::process::Command::new("ps")
            .args(["-o", "pid,sid,args", "-u", sshd.user()])
            .output()
            .unwrap();
        panic!("processes left:\n{}", String::from_utf8_lossy(&ps.stdout));
    }
}

/// The running word count on a fresh host `box`, fed from this machine.
struct WordCountOnBox {
    _feed: TextFeed,
    client: Client,
    sshd: Sshd,
    /// `submit`'s run.
    out: Run,
    /// The job's ID.
    id: String,
}

/// Submits the running word count (packaged before any server starts) to a fresh host `box`,
/// fed `text`, with `extra` arguments for `submit`.
fn word_count_on_box(text: &str, extra: &[&str]) -> WordCountOnBox {
    jobs::running_word_count();
    let (sshd, client) = host_box();
    let feed = TextFeed::start(text);
    let (out, id) = client.submit_word_count("box", &feed.port.to_string(), extra);
    WordCountOnBox {
        _feed: feed,
        client,
        sshd,
        out,
        id,
    }
}

#[test]
fn ssh_kill_checkpoints() {
    let WordCountOnBox {
        sshd,
        client,
        _feed,
        out,
        id,
    } = word_count_on_box(
        "to be or not to be",
        &["--env", "CHECKPOINT_DIR=checkpoints"],
    );
    assert!(out.stderr.contains("Uploaded"), "{}", out.stderr);
    let dir = job_dir(&sshd, &id);
    assert!(
        dir.join("bundle/run.sh").is_file(),
        "not unpacked in {dir:?}"
    );

    let status = client.wait_for_state(&id, "RUNNING", MINUTE);
    assert_eq!(status["kind"], "ssh");
    let log = client.wait_for_log(&id, "(be,", MINUTE);
    assert!(log.contains("Time: "), "{log}");
    // The job outlives the connection that started it, in a session of its own.
    let pid = std::fs::read_to_string(dir.join("pid")).unwrap();
    let sid = std::process::Command::new("ps")
        .args(["-o", "sid=", "-p", pid.trim()])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&sid.stdout).trim(), pid.trim());

    let checkpoints = dir.join("checkpoints");
    let (out, _) = client.kill_expecting_final_checkpoint(&id, &checkpoints);
    assert!(
        out.stderr.contains("gracefully") || out.stdout.contains("gracefully"),
        "not a graceful stop:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    assert_no_job_left(&sshd);
    assert_eq!(client.status(&id)["state"], "KILLED");

    let listed = client.listed(&id);
    assert_eq!(listed["state"], "KILLED");
    assert_eq!(listed["cluster"], "box");
}

#[test]
fn ssh_kill_forces_after_the_grace_period() {
    let WordCountOnBox {
        sshd,
        client,
        _feed,
        id,
        ..
    } = word_count_on_box("to be", &[]);
    client.wait_for_state(&id, "RUNNING", MINUTE);
    // No grace at all: SIGTERM, then SIGKILL to the job's whole process group at once.
    let out = client
        .run(&["kill", &id, "--grace", "0", "--json"])
        .success();
    let killed: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(killed["state"], "KILLED", "{killed}");
    assert!(
        killed["message"].as_str().unwrap().contains("SIGKILL"),
        "{killed}"
    );
    assert_no_job_left(&sshd);
    assert!(!job_dir(&sshd, &id).join("exit-code").exists());
    assert_eq!(client.status(&id)["state"], "KILLED");
}

#[test]
fn ssh_wait_exits_by_how_the_job_ended() {
    let jar = jobs::finite();
    let jar = jar.to_str().unwrap();
    let (sshd, client) = host_box();

    let out = client.submit_finite("box");
    let id = out.stdout.trim();
    assert_eq!(
        std::fs::read_to_string(job_dir(&sshd, id).join("exit-code")).unwrap(),
        "0\n"
    );

    // The same jar again: the upload is reused, not sent twice.
    let out = client.submit("box", jar, &["--wait"], &["fail"]).failure();
    assert!(out.stderr.contains("Reusing"), "{}", out.stderr);
    assert!(out.stderr.contains("FAILED"), "{}", out.stderr);
    let failed = client
        .run(&["list", "--json"])
        .success()
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["state"] == "FAILED")
        .expect("the failed job is listed");
    let failed_id = failed["id"].as_str().unwrap();
    let errors = client.run(&["logs", failed_id, "--stderr"]).success();
    assert!(errors.stdout.contains("asked to fail"), "{}", errors.stdout);
    assert_eq!(uploaded_jars(&sshd).len(), 1, "{:?}", uploaded_jars(&sshd));
}

#[test]
fn ssh_supervise_restarts_a_crashed_job() {
    let jar = jobs::finite();
    let (sshd, client) = host_box();
    let out = client
        .submit(
            "box",
            jar.to_str().unwrap(),
            &["--supervise", "--wait"],
            &["crash-once", "crashed"],
        )
        .success();
    assert!(out.stderr.contains("FINISHED"), "{}", out.stderr);
    let dir = job_dir(&sshd, out.stdout.trim());
    assert_eq!(
        std::fs::read_to_string(dir.join("attempts")).unwrap(),
        "2\n"
    );
    assert!(dir.join("crashed").is_file());
}

/// An `ssh-agent` of the test's own, holding one key; stopped on drop.
struct Agent {
    child: std::process::Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path, key: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start ssh-agent");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "ssh-agent did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let added = std::process::Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &socket)
            .output()
            .unwrap();
        assert!(added.status.success(), "{added:?}");
        Agent { child, socket }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ssh_agent_key_is_used_without_identity_file() {
    let sshd = Sshd::start();
    let client = Client::new();
    let agent = Agent::start(sshd.scratch(), &sshd.identity_file());
    let profile = sshd.profile("box").replace(
        &format!("identity-file = \"{}\"\n", sshd.identity_file().display()),
        "",
    );
    assert!(!profile.contains("identity-file"), "{profile}");
    client.set_clusters(&profile);
    let jar = jobs::finite().to_str().unwrap();
    let out = run(
        client
            .cmd(&["submit", "-c", "box", "--artifact", jar, "--wait"])
            .env("SSH_AUTH_SOCK", &agent.socket)
            // No default key files to fall back on: only the agent can log in.
            .env("HOME", client.dir()),
        MINUTE,
    )
    .success();
    assert!(out.stderr.contains("FINISHED"), "{}", out.stderr);
    // Without the agent there is no key to offer: a clear error, not a password prompt.
    let out = run(
        client
            .cmd(&["submit", "-c", "box", "--artifact", jar])
            .env_remove("SSH_AUTH_SOCK")
            .env("HOME", client.dir()),
        MINUTE,
    )
    .failure();
    out.refused(&["accepted none of our SSH keys", "no key was available"]);
}

/// Submits the finite job to `box` with `known_hosts` in place of the host's own
/// known-hosts file: the refused run.
fn refused_against(sshd: &Sshd, client: &Client, known_hosts: &Path) -> Run {
    client.set_clusters(&sshd.profile("box").replace(
        &sshd.known_hosts().display().to_string(),
        &known_hosts.display().to_string(),
    ));
    client
        .submit("box", jobs::finite().to_str().unwrap(), &[], &[])
        .failure()
}

#[test]
fn ssh_unknown_host_key_is_refused() {
    let sshd = Sshd::start();
    let client = Client::new();
    let known_hosts = sshd.scratch().join("empty_known_hosts");
    std::fs::write(&known_hosts, "").unwrap();
    let out = refused_against(&sshd, &client, &known_hosts);
    let scan = format!(
        "ssh-keyscan -p {} 127.0.0.1 >> {}",
        sshd.port(),
        known_hosts.display()
    );
    out.refused(&["is not known", "SHA256:", &scan]);
    assert_nothing_on_host(&sshd);
    // The hint is the fix: with the key recorded, the same submission goes through.
    std::fs::write(&known_hosts, sshd.known_hosts_line()).unwrap();
    client
        .submit("box", jobs::finite().to_str().unwrap(), &["--wait"], &[])
        .success();
}

#[test]
fn ssh_changed_host_key_is_refused() {
    let sshd = Sshd::start();
    let client = Client::new();
    // Another server's key recorded under this server's name.
    let other = sshd.new_key("other_host_key");
    let public = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut fields = public.split_whitespace();
    let known_hosts = sshd.scratch().join("changed_known_hosts");
    std::fs::write(
        &known_hosts,
        format!(
            "# an old key\n[127.0.0.1]:{} {} {}\n",
            sshd.port(),
            fields.next().unwrap(),
            fields.next().unwrap()
        ),
    )
    .unwrap();
    let out = refused_against(&sshd, &client, &known_hosts);
    out.refused(&[
        "REMOTE HOST IDENTIFICATION HAS CHANGED",
        "line 2",
        "man-in-the-middle",
        "ssh-keygen -R",
        "ssh-keyscan -p",
    ]);
    assert_nothing_on_host(&sshd);
}

#[test]
fn ssh_wrong_key_is_refused_without_a_password_prompt() {
    let sshd = Sshd::start();
    let client = Client::new();
    let stranger = sshd.new_key("stranger_key");
    client.set_clusters(&sshd.profile("box").replace(
        &sshd.identity_file().display().to_string(),
        &stranger.display().to_string(),
    ));
    let start = Instant::now();
    let out = client
        .submit("box", jobs::finite().to_str().unwrap(), &[], &[])
        .failure();
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    out.refused(&["refused the SSH key", "stranger_key", "authorized_keys"]);
    assert!(
        !out.stderr.to_lowercase().contains("password:"),
        "{}",
        out.stderr
    );
    assert!(!sshd.log().contains("Failed password"), "{}", sshd.log());
    // The key's contents never show.
    let secret = std::fs::read_to_string(&stranger).unwrap();
    let body = secret.lines().nth(1).unwrap();
    assert!(!out.stderr.contains(body));
    assert_nothing_on_host(&sshd);
}

#[test]
fn ssh_unreachable_host_is_a_clear_error() {
    let sshd = Sshd::start();
    let client = Client::new();
    let closed = free_port();
    client.set_clusters(&sshd.profile("box").replace(
        &format!("port = {}", sshd.port()),
        &format!("port = {closed}"),
    ));
    let out = client
        .submit("box", jobs::finite().to_str().unwrap(), &[], &[])
        .failure();
    out.refused(&[
        &format!("failed to connect to `{}@127.0.0.1:{closed}`", sshd.user()),
        "refused",
        "sshd runs",
    ]);
    // No record of a submission that did not happen.
    let list = client.run(&["list", "--json"]).success();
    assert!(list.stdout.trim().is_empty(), "{}", list.stdout);
}

#[test]
fn ssh_jar_escaping_its_folder_is_refused() {
    let (sshd, client) = host_box();
    let jar = client.dir().join("evil.jar");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&jar).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    for (name, body) in [
        ("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n\r\n"),
        ("stream-manifest.json", r#"{"name":"evil"}"#),
        ("../../.profile", "echo owned\n"),
    ] {
        zip.start_file(name, options).unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    let out = client
        .submit("box", jar.to_str().unwrap(), &[], &[])
        .failure();
    out.refused(&["refusing to unpack", "../../.profile"]);
    assert_nothing_on_host(&sshd);
}

#[test]
fn ssh_damaged_upload_in_place_is_replaced() {
    let jar = jobs::finite();
    let (sshd, client) = host_box();
    // A file under the upload's own name whose bytes are not the jar's (a copy cut short by
    // another tool): its checksum does not match, so it is uploaded again and replaced.
    let uploads = sshd.home().join("cargo-stream/uploads");
    let bytes = std::fs::read(jar).unwrap();
    let staged = uploads.join(staged_name(jar));
    let out = sshd.run_as_user(&format!("mkdir -p {}", uploads.display()));
    assert!(out.status.success());
    std::fs::write(&staged, &bytes[..bytes.len() / 2]).unwrap();
    let out = client
        .submit("box", jar.to_str().unwrap(), &["--wait"], &[])
        .success();
    assert!(out.stderr.contains("Uploaded"), "{}", out.stderr);
    assert_eq!(sha256_hex(&staged), sha256_hex(jar));
}

/// A TCP relay to `upstream` that cuts both ways after `limit` bytes from the client.
struct CutProxy {
    port: u16,
    forwarded: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl CutProxy {
    fn start(upstream: u16, limit: u64) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let forwarded = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, flag) = (forwarded.clone(), stop.clone());
        std::thread::spawn(move || {
            let Ok((client, _)) = listener.accept() else {
                return;
            };
            let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut s_in, mut c_out) = (server.try_clone().unwrap(), client.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 << 10];
                while let Ok(n) = s_in.read(&mut buf) {
                    if n == 0 || c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
            let mut buf = [0u8; 16 << 10];
            while let Ok(n) = c_in.read(&mut buf) {
                let total = count.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
                if n == 0 || total > limit || flag.load(Ordering::Relaxed) {
                    break;
                }
                if s_out.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
        });
        CutProxy {
            port,
            forwarded,
            stop,
        }
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn ssh_upload_cut_off_halfway_is_not_taken_for_whole() {
    let jar = jobs::finite();
    let size = std::fs::metadata(jar).unwrap().len();
    let sshd = Sshd::start();
    let client = Client::new();
    // The connection dies once half of the jar has gone through.
    let proxy = CutProxy::start(sshd.port(), size / 2);
    client.set_clusters(&sshd.profile_through("box", proxy.port));
    let out = client
        .submit("box", jar.to_str().unwrap(), &[], &[])
        .failure();
    assert!(
        proxy.forwarded.load(Ordering::Relaxed) > size / 2,
        "the proxy did not cut the upload:\n{}",
        out.stderr
    );
    out.refused(&["was cut off", "nothing was put in place of"]);
    // No jar under its real name, no job folder, no record.
    assert!(
        uploaded_jars(&sshd).is_empty(),
        "{:?}",
        uploaded_jars(&sshd)
    );
    assert_eq!(remote_entries(&sshd), ["uploads"]);
    let list = client.run(&["list", "--json"]).success();
    assert!(list.stdout.trim().is_empty(), "{}", list.stdout);

    // Straight to the server, the same submission then goes through whole.
    client.set_clusters(&sshd.profile("box"));
    client
        .submit("box", jar.to_str().unwrap(), &["--wait"], &[])
        .success();
    assert_eq!(uploaded_jars(&sshd), [staged_name(jar)]);
    assert_eq!(
        sha256_hex(
            &sshd
                .home()
                .join("cargo-stream/uploads")
                .join(staged_name(jar))
        ),
        sha256_hex(jar)
    );
}
