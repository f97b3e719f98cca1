//! The shell functions the `ssh` and `slurm` backends' scripts share with the bundle's own
//! `run.sh`, taken from `submit-scripts/run.sh` itself, so that every way of starting a bundle
//! unpacks it and finds its binary the same way: [`unpack_fn`] and [`bundle_job_fn`]. Each
//! calls the script's own `fail MESSAGE [CODE]`.

/// `submit-scripts/run.sh`, where the functions are defined.
const RUN_SH: &str = include_str!("../../../submit-scripts/run.sh");

/// Defines `unpack JAR DEST`: unzips the jar into DEST (created) with python3, which creates
/// no symbolic links and refuses any entry that would land outside DEST, or else with `unzip`;
/// the launcher class (`cargostream/`) is left out. It calls the script's own
/// `fail MESSAGE [CODE]`, with code 5 when the host has neither tool.
pub fn unpack_fn() -> &'static str {
    function("unpack")
}

/// Defines `bundle_job BUNDLE`: sets `exe` to the job's binary in the unzipped bundle (its
/// manifest's `Cargo-Stream-Binary`, refused if it leaves the folder) and exports the job's
/// environment (`CARGO_STREAM_DEPLOY_MODE=cluster`, `CARGO_STREAM_BUNDLE_DIR`, and
/// `CARGO_STREAM_CONFIG` when the bundle has a `Stream.toml`), as the jar's Java launcher does.
pub fn bundle_job_fn() -> &'static str {
    function("bundle_job")
}

/// The definition of function `name` in `run.sh`: from its `name() {` line to the first line
/// that is only `}`.
fn function(name: &'static str) -> &'static str {
    let open = format!("\n{name}() {{\n");
    let start = RUN_SH
        .find(&open)
        .unwrap_or_else(|| panic!("submit-scripts/run.sh defines no `{name}()`"))
        + 1;
    let end = RUN_SH[start..]
        .find("\n}\n")
        .unwrap_or_else(|| panic!("`{name}()` in submit-scripts/run.sh has no closing `}}` line"));
    &RUN_SH[start..start + end + 3]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn jar(path: &std::path::Path, entries: &[(&str, &[u8])]) {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        for (name, data) in entries {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
    }

    /// Runs `sh -c SCRIPT sh ARGS...` with the scripts' own `fail MESSAGE [CODE]` defined
    /// before `script`, and `PATH` set to `path` if given.
    fn sh(
        script: &str,
        args: &[&std::path::Path],
        path: Option<&std::path::Path>,
    ) -> std::process::Output {
        let script =
            format!("fail() {{ echo \"cargo-stream: $1\" >&2; exit \"${{2:-1}}\"; }}\n{script}");
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.args(["-c", &script, "sh"]).args(args);
        if let Some(path) = path {
            cmd.env("PATH", path);
        }
        cmd.env_remove("CARGO_STREAM_CONFIG").output().unwrap()
    }

    /// `unpack JAR DEST`, with `PATH` set to `path` if given.
    fn unpack_on(
        jar: &std::path::Path,
        dest: &std::path::Path,
        path: Option<&std::path::Path>,
    ) -> std::process::Output {
        let script = format!("{}\nunpack \"$1\" \"$2\"\n", unpack_fn());
        sh(&script, &[jar, dest], path)
    }

    fn unpack(jar: &std::path::Path, dest: &std::path::Path) -> std::process::Output {
        unpack_on(jar, dest, None)
    }

    /// Unpacks a jar with a binary and the launcher class into `tmp/a/bundle`: the binary is
    /// there, the launcher is left out.
    fn unpacks_a_good_jar(
        tmp: &std::path::Path,
        unpack: fn(&std::path::Path, &std::path::Path) -> std::process::Output,
    ) {
        let good = tmp.join("good.jar");
        jar(
            &good,
            &[
                ("bin/job", b"binary"),
                ("cargostream/Launcher.class", b"java"),
            ],
        );
        let out = unpack(&good, &tmp.join("a/bundle"));
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            std::fs::read(tmp.join("a/bundle/bin/job")).unwrap(),
            b"binary"
        );
        assert!(!tmp.join("a/bundle/cargostream").exists());
    }

    #[test]
    fn unpacks_and_refuses_escaping_entries() {
        let tmp = tempfile::tempdir().unwrap();
        unpacks_a_good_jar(tmp.path(), unpack);

        let evil = tmp.path().join("evil.jar");
        jar(&evil, &[("../../escaped", b"no")]);
        let out = unpack(&evil, &tmp.path().join("b/bundle"));
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("refusing the entry"),
            "{out:?}"
        );
        assert!(!tmp.path().join("escaped").exists());
    }

    /// `unpack` on a host without python3: `PATH` holds only the tools the `unzip` branch
    /// uses.
    fn unpack_with_unzip(jar: &std::path::Path, dest: &std::path::Path) -> std::process::Output {
        let bin = dest.with_extension("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for tool in ["unzip", "grep", "head", "mkdir"] {
            let found = std::process::Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap();
            let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
            assert!(!path.is_empty(), "`{tool}` is needed for this test");
            std::os::unix::fs::symlink(path, bin.join(tool)).unwrap();
        }
        unpack_on(jar, dest, Some(&bin))
    }

    /// issue 14: without python3, `unzip` unpacks, after the same check: an escaping entry or
    /// a symbolic link is refused before anything is written.
    #[test]
    fn unzip_fallback_refuses_escaping_entries_and_links() {
        let tmp = tempfile::tempdir().unwrap();
        unpacks_a_good_jar(tmp.path(), unpack_with_unzip);

        let evil = tmp.path().join("evil.jar");
        jar(&evil, &[("ok", b"ok"), ("../../escaped", b"no")]);
        let out = unpack_with_unzip(&evil, &tmp.path().join("b/bundle"));
        assert!(!out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("refusing the entry ../../escaped"),
            "{stderr}"
        );
        assert!(
            !tmp.path().join("b/bundle/ok").exists(),
            "nothing is unpacked"
        );

        let linked = tmp.path().join("linked.jar");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&linked).unwrap());
        zip.add_symlink("home", "/root", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.finish().unwrap();
        let out = unpack_with_unzip(&linked, &tmp.path().join("c/bundle"));
        assert!(!out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("refusing its symbolic links"),
            "{out:?}"
        );
        assert!(!tmp.path().join("c/bundle/home").exists());
    }

    #[test]
    fn the_functions_are_run_shs_own() {
        for (f, name) in [(unpack_fn(), "unpack"), (bundle_job_fn(), "bundle_job")] {
            assert!(f.starts_with(&format!("{name}() {{\n")), "{f}");
            assert!(f.ends_with("\n}\n"), "{f}");
            assert!(RUN_SH.contains(f));
            // The function is the only thing taken: it holds no other definition.
            assert_eq!(f.matches("() {").count(), 1, "{f}");
        }
    }

    /// Runs `bundle_job` on `bundle`, then prints `exe` and the exported environment.
    fn bundle_job(bundle: &std::path::Path) -> std::process::Output {
        let script = format!(
            "set -eu\n{}\nbundle_job \"$1\"\nsh -c 'echo \"$0|$CARGO_STREAM_DEPLOY_MODE|$CARGO_STREAM_BUNDLE_DIR|${{CARGO_STREAM_CONFIG:-}}\"' \"$exe\"\n",
            bundle_job_fn()
        );
        sh(&script, &[bundle], None)
    }

    #[test]
    fn bundle_job_finds_the_binary_and_sets_the_environment() {
        let tmp = tempfile::tempdir().unwrap();
        let bundle = tmp.path().join("bundle");
        std::fs::create_dir_all(bundle.join("META-INF")).unwrap();
        std::fs::create_dir_all(bundle.join("bin")).unwrap();
        let manifest = |binary: &str| {
            std::fs::write(
                bundle.join("META-INF/MANIFEST.MF"),
                format!("Manifest-Version: 1.0\r\nCargo-Stream-Binary: {binary}\r\n\r\n"),
            )
            .unwrap()
        };
        manifest("bin/job");
        std::fs::write(bundle.join("bin/job"), "").unwrap();
        let out = bundle_job(&bundle);
        assert!(out.status.success(), "{out:?}");
        let b = bundle.display();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{b}/bin/job|cluster|{b}|\n")
        );
        std::fs::write(bundle.join("Stream.toml"), "").unwrap();
        let out = bundle_job(&bundle);
        assert!(
            String::from_utf8_lossy(&out.stdout).ends_with(&format!("|{b}/Stream.toml\n")),
            "{out:?}"
        );
        // A binary outside the bundle is refused, and so is a missing one.
        manifest("../../bin/sh");
        let out = bundle_job(&bundle);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("refusing the binary path ../../bin/sh"),
            "{out:?}"
        );
        manifest("bin/nope");
        let out = bundle_job(&bundle);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("missing bin/nope in"),
            "{out:?}"
        );
    }
}
