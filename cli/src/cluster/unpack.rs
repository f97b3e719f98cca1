//! Unpacking a bundle on a cluster host, as the `ssh` and `slurm` backends' scripts do: one
//! POSIX shell function, so that both refuse the same entries the same way.

/// Defines `unpack JAR DEST`: unzips the jar into DEST (created) with python3, which creates
/// no symbolic links and refuses any entry that would land outside DEST, or else with `unzip`;
/// the launcher class (`cargostream/`) is left out. It calls the script's own
/// `fail MESSAGE [CODE]`, with code 5 when the host has neither tool.
pub const UNPACK_FN: &str = r#"unpack() {
    mkdir -p -- "$2" || fail "cannot create $2"
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$1" "$2" <<'CARGO_STREAM_PY' || fail "cannot unpack $1"
import os, sys, zipfile
jar, dest = sys.argv[1], os.path.realpath(sys.argv[2])
with zipfile.ZipFile(jar) as z:
    for info in z.infolist():
        if info.filename.startswith("cargostream/"):
            continue
        target = os.path.realpath(os.path.join(dest, info.filename))
        if target != dest and not target.startswith(dest + os.sep):
            sys.exit("refusing the entry %r: it would be written outside %s" % (info.filename, dest))
        z.extract(info, dest)
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(target, mode)
CARGO_STREAM_PY
    elif command -v unzip >/dev/null 2>&1; then
        unzip -q -o "$1" -d "$2" -x 'cargostream/*' </dev/null || fail "cannot unpack $1"
    else
        fail "neither python3 nor unzip is installed on $(hostname 2>/dev/null || echo the host): one is needed to unpack the jar" 5
    fi
}"#;

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

    fn unpack(jar: &std::path::Path, dest: &std::path::Path) -> std::process::Output {
        let script = format!(
            "fail() {{ echo \"cargo-stream: $1\" >&2; exit \"${{2:-1}}\"; }}\n{UNPACK_FN}\nunpack \"$1\" \"$2\"\n"
        );
        std::process::Command::new("sh")
            .args(["-c", &script, "sh"])
            .arg(jar)
            .arg(dest)
            .output()
            .unwrap()
    }

    #[test]
    fn unpacks_and_refuses_escaping_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let good = tmp.path().join("good.jar");
        jar(
            &good,
            &[
                ("bin/job", b"binary"),
                ("cargostream/Launcher.class", b"java"),
            ],
        );
        let out = unpack(&good, &tmp.path().join("a/bundle"));
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            std::fs::read(tmp.path().join("a/bundle/bin/job")).unwrap(),
            b"binary"
        );
        assert!(!tmp.path().join("a/bundle/cargostream").exists());

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
}
