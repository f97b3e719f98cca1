//! The SFTP upload: written under a temporary name, checked by the host (`openssl dgst`, else
//! `sha256sum`), then
//! renamed into place, so that a cut-off upload is never taken for a whole one.
//!
//! Throughput: libssh2 sends a write in 30,000-byte SFTP packets and reports them as the host
//! acknowledges each one. Handing it one large window of the file at a time (and the unacknowledged
//! rest again on the next call, as libssh2 expects) keeps megabytes in flight instead of
//! waiting for each packet's acknowledgement, as OpenSSH's `sftp`/`scp` do with their 64
//! outstanding requests.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;

use crate::cluster::profile::SshTarget;
use crate::cluster::stage::{Staged, staged_name};
use crate::cluster::transport::ssh::{Session, quote, shell_dir};
use crate::error::with_help;
use crate::shell::Shell;

/// Bytes kept in flight: at least the SFTP channel's window (2 MiB with OpenSSH), so that the
/// host is never idle waiting for us.
const IN_FLIGHT: usize = 4 << 20;

/// Stages `artifact` over SFTP (the `Upload::Sftp` branch of [`crate::cluster::stage::stage`]):
/// connects to `ssh`, uploads it into `path` under its staged name, checked, and returns where
/// it is and the URL the cluster reads it from (`url` + name, else `file://` + path).
pub fn stage_sftp(
    shell: &mut Shell,
    ssh: &SshTarget,
    path: &str,
    url: Option<&str>,
    artifact: &Path,
    sha256: &str,
) -> anyhow::Result<Staged> {
    stage_over(&Session::connect(ssh)?, shell, path, url, artifact, sha256)
}

/// [`stage_sftp`] over a session already open (a backend's one connection to the host).
pub fn stage_over(
    session: &Session,
    shell: &mut Shell,
    path: &str,
    url: Option<&str>,
    artifact: &Path,
    sha256: &str,
) -> anyhow::Result<Staged> {
    let name = staged_name(artifact, sha256);
    let remote = session.upload(shell, artifact, path, &name, sha256)?;
    Ok(Staged {
        url: match url {
            Some(base) => format!("{}/{name}", base.trim_end_matches('/')),
            None => format!("file://{remote}"),
        },
        path: remote,
    })
}

/// A shell function, `sum FILE`: the file's sha256 in hex. `openssl dgst` first: it uses the
/// CPU's SHA instructions, about three times as fast as coreutils' `sha256sum`, which the check
/// of a large upload waits for.
const SUM: &str = r#"sum() {
    if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r "$1"; else sha256sum "$1"; fi | cut -c1-64
}"#;

/// How long a partial upload must have gone unwritten before the next upload of the same job
/// takes it for one cut off and removes it (a live upload writes to its file all the time).
const STALE_PARTIAL_MINUTES: u32 = 1;

/// The `find -name` glob of the partial uploads of the job `file_name` belongs to: for a staged
/// name `STEM-<12 hex>.EXT` ([`staged_name`]) every build of `STEM` (and not of another job
/// whose name starts with `STEM-`), else `file_name` alone.
/// The name's own glob characters are matched literally.
fn partials_of(file_name: &str) -> String {
    let literal = |text: &str| -> String {
        text.chars()
            .flat_map(|c| match c {
                '*' | '?' | '[' | ']' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect()
    };
    let build = file_name.rsplit_once('.').and_then(|(base, ext)| {
        let (stem, sha) = base.rsplit_once('-')?;
        (sha.len() == 12 && sha.bytes().all(|b| b.is_ascii_hexdigit()) && !stem.is_empty()).then(
            || {
                let sha = "[0-9a-fA-F]".repeat(12);
                format!(".{}-{sha}.{}.part-*", literal(stem), literal(ext))
            },
        )
    });
    build.unwrap_or_else(|| format!(".{}.part-*", literal(file_name)))
}

/// A name unlikely to be used twice at once.
fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}-{nanos:08x}", std::process::id())
}

impl Session {
    /// Uploads `local` as `remote_dir/file_name`: creates the folder, writes under a temporary
    /// name with a progress bar (plain lines when stderr is not a terminal), has the host
    /// compute the copy's sha256 (as it arrives with python3, else afterwards with `openssl` or
    /// `sha256sum`) and compare it with `sha256`, then renames it into place. A cut-off or mismatching upload is removed and is an error; a file already there
    /// with the right checksum is reused without uploading. `remote_dir` may be relative to the
    /// remote user's home (`cargo-stream/uploads`, `~/x`). Returns the remote absolute path.
    pub fn upload(
        &self,
        shell: &mut Shell,
        local: &Path,
        remote_dir: &str,
        file_name: &str,
        sha256: &str,
    ) -> anyhow::Result<String> {
        let target = &self.target;
        if file_name.is_empty() || file_name.contains('/') || file_name.starts_with('.') {
            anyhow::bail!("`{file_name}` is not a plain file name to upload as");
        }
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            anyhow::bail!("`{sha256}` is not a sha256 in hex");
        }
        let sha256 = sha256.to_ascii_lowercase();
        let mut input = std::fs::File::open(local)
            .with_context(|| format!("failed to open `{}`", local.display()))?;
        let size = input
            .metadata()
            .with_context(|| format!("failed to read `{}`", local.display()))?
            .len();

        // One round trip: the folder, its absolute path, the checksum of a copy already there.
        // Temporary files that cut-off uploads of this job (this build or any other) left are
        // cleared on the way, once untouched for a minute (a live upload writes to its own all
        // the time).
        let dir = shell_dir(remote_dir);
        let name = quote(file_name);
        let prepare = format!(
            "{SUM}\n\
             command -v openssl >/dev/null 2>&1 || command -v sha256sum >/dev/null 2>&1 || exit 127\n\
             mkdir -p -- {dir} && cd -- {dir} && pwd || exit 1\n\
             find . -maxdepth 1 -name {} -mmin +{STALE_PARTIAL_MINUTES} -exec rm -f -- {{}} + 2>/dev/null\n\
             if [ -f ./{name} ]; then sum ./{name}; fi\n",
            quote(&partials_of(file_name)),
        );
        let out = self.exec_with_input("sh -s", prepare.as_bytes())?;
        if out.code == 127 {
            return Err(with_help(
                anyhow::anyhow!(
                    "`{target}` has neither `openssl` nor `sha256sum`, one of which checks uploads"
                ),
                format!("install OpenSSL or GNU coreutils on `{}`", target.host),
            ));
        }
        if !out.success() {
            return Err(with_help(
                anyhow::anyhow!(
                    "failed to create the folder `{remote_dir}` on `{target}`: {}",
                    out.stderr.trim()
                ),
                "check `remote-dir` (or `upload.path`) in the cluster profile, and that the user may write there",
            ));
        }
        let mut lines = out.stdout.lines();
        let abs_dir = lines
            .next()
            .filter(|l| l.starts_with('/'))
            .with_context(|| format!("`{target}` did not say where `{remote_dir}` is"))?
            .to_owned();
        let remote_path = format!("{}/{file_name}", abs_dir.trim_end_matches('/'));
        if lines.next().map(str::trim) == Some(sha256.as_str()) {
            shell.status(
                "Reusing",
                format!("`{remote_path}` on `{target}` (same sha256)"),
            );
            return Ok(remote_path);
        }

        let tmp = format!("{abs_dir}/.{file_name}.part-{}", unique_suffix());
        let start = Instant::now();
        let written =
            write_file(self, shell, &mut input, size, &tmp, &remote_path).inspect_err(|_| {
                // Best effort: the connection may be what failed.
                if let Ok(sftp) = self.session.sftp() {
                    let _ = sftp.unlink(Path::new(&tmp));
                }
            })?;
        let elapsed = start.elapsed().as_secs_f64();
        if written.acked != size {
            if let Ok(sftp) = self.session.sftp() {
                let _ = sftp.unlink(Path::new(&tmp));
            }
            anyhow::bail!(
                "`{}` changed while it was uploaded ({} bytes sent, {size} expected)",
                local.display(),
                written.acked
            );
        }

        // The host checks its copy (or did, as it arrived); only a whole, matching copy gets the
        // real name.
        let got = match &written.host_sum {
            Some(sum) => format!("got={}", quote(sum)),
            None => format!("got=$(sum {})", quote(&tmp)),
        };
        let check = format!(
            "{SUM}\n\
             cd -- {} || exit 1\n\
             {got}\n\
             if [ \"$got\" = {sha256} ]; then chmod 644 -- {tmp} && mv -f -- {tmp} {name}; exit $?; fi\n\
             rm -f -- {tmp}\n\
             echo \"$got\"\n\
             exit 3\n",
            quote(&abs_dir),
            tmp = quote(&tmp),
        );
        let out = self.exec_with_input("sh -s", check.as_bytes())?;
        match out.code {
            0 => {}
            3 => {
                return Err(with_help(
                    anyhow::anyhow!(
                        "the uploaded copy of `{}` on `{target}` has sha256 {}, not {sha256}; it was removed and `{remote_path}` left as it was",
                        local.display(),
                        out.stdout.trim()
                    ),
                    "the upload was damaged or cut off: submit again",
                ));
            }
            _ => {
                anyhow::bail!(
                    "failed to check and rename the upload into `{remote_path}` on `{target}`: {}",
                    out.stderr.trim()
                );
            }
        }
        let rate = size as f64 / elapsed.max(1e-6) / (1024.0 * 1024.0);
        shell.status(
            "Uploaded",
            format!(
                "`{remote_path}` on `{target}` ({:.1} MiB in {elapsed:.1} s, {rate:.0} MiB/s; sha256 checked by the host)",
                size as f64 / (1024.0 * 1024.0)
            ),
        );
        Ok(remote_path)
    }
}

/// What [`write_file`] did.
struct Written {
    /// The bytes the host acknowledged.
    acked: u64,
    /// The sha256 the host computed as the bytes arrived, if it could ([`HASHER`]).
    host_sum: Option<String>,
}

/// Hashes the temporary file on the host while it is being written, so that the check after
/// the upload does not wait for the whole file to be read again: reads `FILE` as it grows, up
/// to `SIZE` bytes, and prints their sha256. The SFTP server writes the file in order, and a
/// read never returns bytes past what was written. Exits when its stdin closes (the upload was
/// abandoned).
const HASHER: &str = r#"import hashlib, os, select, sys
path, size = sys.argv[1], int(sys.argv[2])
h, done, fd, closed = hashlib.sha256(), 0, os.open(path, os.O_RDONLY), False
while done < size:
    data = os.read(fd, min(4 << 20, size - done))
    if data:
        h.update(data)
        done += len(data)
    elif closed:
        sys.exit(3)
    elif select.select([0], [], [], 0.005)[0] and not os.read(0, 1):
        closed = True  # read once more: the last bytes may have come just before
print(h.hexdigest())
"#;

/// Starts [`HASHER`] on `tmp`. Without python3 on the host it exits 127, and the file is
/// hashed after the upload instead.
fn start_hasher(session: &Session, tmp: &str, size: u64) -> Option<ssh2::Channel> {
    let command = format!(
        "command -v python3 >/dev/null 2>&1 || exit 127; exec python3 -c {} {} {size}",
        quote(HASHER),
        quote(tmp)
    );
    let mut channel = session.session.channel_session().ok()?;
    channel.exec(&command).ok()?;
    Some(channel)
}

/// The hasher's answer: the sha256 it printed, if it ran to the end.
fn hasher_result(mut channel: ssh2::Channel) -> Option<String> {
    let mut out = String::new();
    channel.read_to_string(&mut out).ok()?;
    channel.wait_close().ok()?;
    let code = channel.exit_status().ok()?;
    let sum = out.trim();
    let valid = code == 0 && sum.len() == 64 && sum.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        tracing::debug!(code, "the host did not hash the upload as it arrived");
    }
    valid.then(|| sum.to_owned())
}

/// Writes `input` to the new remote file `tmp`, keeping [`IN_FLIGHT`] bytes in flight, while
/// the host hashes it.
fn write_file(
    session: &Session,
    shell: &mut Shell,
    input: &mut std::fs::File,
    size: u64,
    tmp: &str,
    remote_path: &str,
) -> anyhow::Result<Written> {
    let target = &session.target;
    let sftp = session
        .session
        .sftp()
        .with_context(|| format!("failed to start SFTP on `{target}`"))
        .map_err(|e| {
            with_help(
                e,
                "the host's sshd needs an SFTP subsystem (`Subsystem sftp internal-sftp` or `sftp-server` in sshd_config)",
            )
        })?;
    let mut remote = sftp
        .open_mode(
            Path::new(tmp),
            ssh2::OpenFlags::WRITE | ssh2::OpenFlags::CREATE | ssh2::OpenFlags::EXCLUSIVE,
            0o600,
            ssh2::OpenType::File,
        )
        .with_context(|| format!("failed to create `{tmp}` on `{target}`"))?;
    let hasher = start_hasher(session, tmp, size);
    let file_name = remote_path.rsplit('/').next().unwrap_or(remote_path);
    let progress = shell.transfer("Uploading", format!("`{file_name}` to `{target}`"), size);
    // `buf[start..end]` is what the host has not acknowledged yet (the front of it is in
    // flight). libssh2 skips the part it already sent, so the same bytes are passed again
    // until acknowledged, with new bytes appended behind them.
    let mut buf = vec![0u8; 2 * IN_FLIGHT];
    let (mut start, mut end) = (0usize, 0usize);
    let mut eof = false;
    let mut acked: u64 = 0;
    // Why an upload stopped short, on top of what libssh2 said.
    let cut_off = |acked: u64, cause: Option<anyhow::Error>| {
        let message = format!(
            "the upload to `{target}` was cut off (the host had acknowledged {acked} of {size} bytes); nothing was put in place of `{remote_path}`"
        );
        let err = match cause {
            Some(cause) => cause.context(message),
            None => anyhow::anyhow!(message),
        };
        with_help(
            err,
            "check the connection to the host and its free disk space, then submit again",
        )
    };
    loop {
        if start >= IN_FLIGHT {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        while !eof && end - start < IN_FLIGHT {
            let n = input
                .read(&mut buf[end..])
                .context("failed to read the artifact")?;
            if n == 0 {
                eof = true;
            }
            end += n;
        }
        if start == end {
            break;
        }
        let n = match remote.write(&buf[start..end]) {
            Ok(0) => return Err(cut_off(acked, None)),
            Ok(n) => n,
            Err(e) => return Err(cut_off(acked, Some(e.into()))),
        };
        start += n;
        acked += n as u64;
        progress.inc(n as u64);
    }
    remote.close().map_err(|e| cut_off(acked, Some(e.into())))?;
    drop(progress);
    Ok(Written {
        acked,
        host_sum: hasher.and_then(hasher_result),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partials_of_a_staged_jar_match_every_build_of_that_job_only() {
        let glob = partials_of("word-count-0123456789ab.jar");
        assert_eq!(
            glob,
            format!(".word-count-{}.jar.part-*", "[0-9a-fA-F]".repeat(12))
        );
        // Not a staged name: only its own partials.
        assert_eq!(partials_of("notes.txt"), ".notes.txt.part-*");
        // Glob characters in the name are taken literally.
        assert_eq!(partials_of("a*b.jar"), ".a\\*b.jar.part-*");
    }
    use sha2::Digest as _;

    fn sha256_hex(bytes: &[u8]) -> String {
        format!("{:x}", sha2::Sha256::digest(bytes))
    }

    #[test]
    fn the_sum_function_prints_the_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a file");
        std::fs::write(&file, b"some bytes").unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{SUM}\nsum {}", quote(&file.display().to_string())))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap().trim(),
            sha256_hex(b"some bytes")
        );
    }

    /// The hasher follows a file that grows in pieces, and gives up when its stdin closes.
    #[test]
    fn the_hasher_follows_a_growing_file() {
        use std::process::{Command, Stdio};
        if Command::new("python3").arg("-V").output().is_err() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("part");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&file, b"").unwrap();
        let child = Command::new("python3")
            .args(["-c", HASHER])
            .arg(&file)
            .arg(data.len().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        for piece in data.chunks(700_000) {
            std::thread::sleep(std::time::Duration::from_millis(30));
            out.write_all(piece).unwrap();
        }
        let result = child.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8(result.stdout).unwrap().trim(),
            sha256_hex(&data),
            "{:?}",
            result.status
        );

        // Abandoned halfway: stdin closes, the hasher stops with code 3.
        let mut child = Command::new("python3")
            .args(["-c", HASHER])
            .arg(&file)
            .arg((data.len() * 2).to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(child.stdin.take());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(3));
    }
}
