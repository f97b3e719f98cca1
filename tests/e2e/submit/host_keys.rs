//! Host keys checked as strictly as OpenSSH checks them (`StrictHostKeyChecking yes`), against
//! a real sshd: every line of every known_hosts file counts (a later `@revoked` line, or one in
//! a second file, refuses a key an earlier line accepts), host certificates signed by a CA on
//! an `@cert-authority` line are accepted only when valid for the host, and changed or unknown
//! keys are refused with the host, the file and line, and the fix.

use std::path::{Path, PathBuf};

use cargo_stream_tests::Run;
use cargo_stream_tests::client::Client;
use cargo_stream_tests::jobs;
use cargo_stream_tests::sshd::Sshd;

/// Writes `text` to the known_hosts file `name` in the server's scratch folder.
fn known_hosts(sshd: &Sshd, name: &str, text: &str) -> PathBuf {
    let path = sshd.scratch().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `host = HOST` and `known-hosts = FILES` (space-separated, as OpenSSH's
/// `UserKnownHostsFile`) in `box`'s profile; submits the finite job to it.
fn submit(sshd: &Sshd, client: &Client, host: &str, files: &[&Path]) -> Run {
    let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    client.set_clusters(
        &sshd
            .profile("box")
            .replace(&sshd.known_hosts().display().to_string(), &files.join(" "))
            .replace("host = \"127.0.0.1\"", &format!("host = \"{host}\"")),
    );
    client.submit("box", jobs::finite().to_str().unwrap(), &[], &[])
}

/// The submission went through: the host was trusted.
fn accepted(run: Run) {
    run.success();
}

/// The submission was refused, with each of `needles` and a help line in its error.
fn refused(run: Run, needles: &[&str]) {
    run.refused(needles);
}

/// `ssh-keygen -H` of a known_hosts file: its names replaced by their salted hashes.
fn hash_names(file: &Path) {
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-H", "-f"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(file.with_extension("old"));
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
}

#[test]
fn ssh_revoked_host_key_is_refused_wherever_it_is_revoked() {
    let sshd = Sshd::start();
    let client = Client::new();
    let key = sshd.host_public_key();
    let name = format!("[127.0.0.1]:{}", sshd.port());
    let good = known_hosts(&sshd, "good", &sshd.known_hosts_line());

    // Revoked on a later line than the one that accepts the key (a wildcard pattern).
    let later = known_hosts(
        &sshd,
        "later",
        &format!("{name} {key}\n# revoked on 2026-11-29\n@revoked [127.0.0.?]:* {key}\n"),
    );
    refused(
        submit(&sshd, &client, "127.0.0.1", &[&later]),
        &[
            "REVOKED HOST KEY",
            &format!("`{}` line 3", later.display()),
            &format!("`{name}`"),
            "stolen key",
        ],
    );

    // Revoked in a second file: the first file accepts the key.
    let revocations = known_hosts(&sshd, "revocations", &format!("@revoked * {key}\n"));
    refused(
        submit(&sshd, &client, "127.0.0.1", &[&good, &revocations]),
        &[
            "REVOKED HOST KEY",
            &format!("`{}` line 1", revocations.display()),
        ],
    );

    // Hashed names (`HashKnownHosts`): accepted, and revoked the same way.
    let hashed = known_hosts(&sshd, "hashed", &sshd.known_hosts_line());
    hash_names(&hashed);
    accepted(submit(&sshd, &client, "127.0.0.1", &[&hashed]));
    // `ssh-keygen -H` leaves marker lines alone: the revocation under the same hashed name.
    let hashed_name = std::fs::read_to_string(&hashed).unwrap();
    let hashed_name = hashed_name.split_whitespace().next().unwrap();
    let hashed_revoked = known_hosts(
        &sshd,
        "hashed_revoked",
        &format!("@revoked {hashed_name} {key}\n"),
    );
    refused(
        submit(&sshd, &client, "127.0.0.1", &[&hashed, &hashed_revoked]),
        &[
            "REVOKED HOST KEY",
            &format!("`{}` line 1", hashed_revoked.display()),
        ],
    );

    // A revocation negated for this host does not apply to it; nor does a plain `127.0.0.1`
    // line (the port is not 22, so only `[127.0.0.1]:PORT` names it).
    let negated = known_hosts(
        &sshd,
        "negated",
        &format!("{name} {key}\n@revoked *,!{name} {key}\n@revoked 127.0.0.1 {key}\n"),
    );
    accepted(submit(&sshd, &client, "127.0.0.1", &[&negated]));
}

#[test]
fn ssh_changed_and_unknown_host_keys_are_refused_naming_files_and_lines() {
    let sshd = Sshd::start();
    let client = Client::new();
    let name = format!("[127.0.0.1]:{}", sshd.port());

    // Only a key of another type recorded for the host: OpenSSH calls that changed.
    let ecdsa = sshd.scratch().join("ecdsa_host_key");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-N", "", "-f"])
        .arg(&ecdsa)
        .output()
        .unwrap();
    assert!(made.status.success());
    let other = std::fs::read_to_string(ecdsa.with_extension("pub")).unwrap();
    let other: Vec<&str> = other.split_whitespace().take(2).collect();
    let empty = known_hosts(&sshd, "empty", "# nothing yet\n");
    let changed = known_hosts(
        &sshd,
        "changed",
        &format!(
            "other.example {}\n{name} {}\n",
            sshd.host_public_key(),
            other.join(" ")
        ),
    );
    refused(
        submit(&sshd, &client, "127.0.0.1", &[&empty, &changed]),
        &[
            "REMOTE HOST IDENTIFICATION HAS CHANGED",
            &format!("`{name}`"),
            &format!("`{}` line 2 (ecdsa-sha2-nistp256)", changed.display()),
            "man-in-the-middle",
            &format!("ssh-keygen -R '{name}' -f {}", changed.display()),
        ],
    );

    // Unknown: every file searched is named, and the fix records the key in the first one.
    let unknown = known_hosts(
        &sshd,
        "unknown",
        &format!("*,!{name} {}\n", sshd.host_public_key()),
    );
    refused(
        submit(&sshd, &client, "127.0.0.1", &[&empty, &unknown]),
        &[
            &format!("the host key of `{name}` is not known"),
            "SHA256:",
            &format!("`{}`, `{}`", empty.display(), unknown.display()),
            &format!(
                "ssh-keyscan -p {} 127.0.0.1 >> {}",
                sshd.port(),
                empty.display()
            ),
        ],
    );
    // Nothing was recorded on the way (no trust on first use).
    assert_eq!(std::fs::read_to_string(&empty).unwrap(), "# nothing yet\n");
}

#[test]
fn ssh_host_certificate_is_accepted_only_when_valid_for_the_host() {
    let sshd = Sshd::start_with_host_certificate("127.0.0.1", "-1h:+1h");
    let client = Client::new();
    let ca = sshd.ca_public_key();
    let name = format!("[127.0.0.1]:{}", sshd.port());

    // Only the CA is known, for a wildcard of names: the certificate is accepted.
    let trusted = known_hosts(
        &sshd,
        "ca",
        &format!("@cert-authority [127.0.0.*]:* {ca}\n"),
    );
    accepted(submit(&sshd, &client, "127.0.0.1", &[&trusted]));

    // The CA revoked in a second file.
    let revocations = known_hosts(&sshd, "revoked_ca", &format!("# old CA\n@revoked * {ca}\n"));
    refused(
        submit(&sshd, &client, "127.0.0.1", &[&trusted, &revocations]),
        &[
            "REVOKED HOST KEY",
            "certificate authority",
            &format!("`{}` line 2", revocations.display()),
        ],
    );

    // Reached as `localhost`, which the certificate does not name (the CA line does).
    let any = known_hosts(&sshd, "ca_any", &format!("@cert-authority * {ca}\n"));
    refused(
        submit(&sshd, &client, "localhost", &[&any]),
        &[
            "not a listed principal",
            "principals `127.0.0.1`",
            &format!("`{}` line 1", any.display()),
            "is not known",
        ],
    );

    // The CA listed for every host but this one.
    let negated = known_hosts(
        &sshd,
        "ca_negated",
        &format!("@cert-authority *,!{name} {ca}\n"),
    );
    refused(
        submit(&sshd, &client, "127.0.0.1", &[&negated]),
        &[
            "is not known",
            "which no `@cert-authority` line for it lists",
        ],
    );

    // An expired certificate from the same kind of CA.
    let expired = Sshd::start_with_host_certificate("127.0.0.1", "20200101:20200102");
    let expired_ca = known_hosts(
        &expired,
        "ca",
        &format!("@cert-authority * {}\n", expired.ca_public_key()),
    );
    refused(
        submit(&expired, &client, "127.0.0.1", &[&expired_ca]),
        &["Certificate invalid: expired", "is not known"],
    );
}
