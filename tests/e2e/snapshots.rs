//! Snapshots of what people read: every `--help`, the template list, and the errors of bad
//! inputs. A changed text fails with both versions shown; `CARGO_STREAM_BLESS=1 cargo test -p
//! cargo-stream-tests snapshots` rewrites the files in `tests/snapshots/` for review in the diff.

use std::path::Path;
use std::time::Duration;

use cargo_stream_tests::{cargo_stream, run, workspace_root, write_plain_crate};

const MINUTE: Duration = Duration::from_secs(60);

/// Compares `text` with `tests/snapshots/<name>.txt`, after replacing `tmp` by `[TMP]`.
fn assert_snapshot(name: &str, text: &str, tmp: &Path) {
    let text = text.replace(&tmp.display().to_string(), "[TMP]");
    let path = workspace_root()
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    let bless = std::env::var_os("CARGO_STREAM_BLESS").is_some();
    match std::fs::read_to_string(&path) {
        Ok(expected) if expected == text => {}
        Ok(_) | Err(_) if bless => std::fs::write(&path, &text).unwrap(),
        Ok(expected) => panic!(
            "snapshot `{name}` changed (CARGO_STREAM_BLESS=1 to accept)\n--- expected\n{expected}\n--- actual\n{text}"
        ),
        Err(_) => panic!(
            "no snapshot `{}` (CARGO_STREAM_BLESS=1 to write it):\n{text}",
            path.display()
        ),
    }
}

#[test]
fn help_texts() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, args) in [
        ("help", &["--help"][..]),
        ("new-help", &["new", "--help"]),
        ("package-help", &["package", "--help"]),
        ("submit-help", &["submit", "--help"]),
        ("status-help", &["status", "--help"]),
        ("kill-help", &["kill", "--help"]),
        ("logs-help", &["logs", "--help"]),
        ("ui-help", &["ui", "--help"]),
        ("list-help", &["list", "--help"]),
    ] {
        let out = run(&mut cargo_stream(tmp.path(), args), MINUTE).success();
        assert_snapshot(name, &out.stdout, tmp.path());
    }
}

#[test]
fn template_list() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(&mut cargo_stream(tmp.path(), &["new", "--list"]), MINUTE).success();
    assert_snapshot("new-list", &out.stdout, tmp.path());
}

#[test]
fn error_texts() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("taken")).unwrap();
    let two = tmp.path().join("two");
    write_plain_crate(
        &two,
        "two",
        &[
            ("src/bin/a.rs", "fn main() {}\n"),
            ("src/bin/b.rs", "fn main() {}\n"),
        ],
    );
    let cases: [(&str, &Path, &[&str]); 8] = [
        (
            "error-unknown-template",
            tmp.path(),
            &["new", "job", "--template", "nope"],
        ),
        ("error-existing-dir", tmp.path(), &["new", "taken"]),
        ("error-invalid-name", tmp.path(), &["new", "9lives"]),
        (
            "error-unknown-define",
            tmp.path(),
            &["new", "job", "-d", "colour=red"],
        ),
        (
            "error-bad-define",
            tmp.path(),
            &["new", "job", "-d", "port=99999"],
        ),
        (
            "error-window-not-a-multiple",
            tmp.path(),
            &[
                "new",
                "job",
                "--template",
                "windowed-word-count",
                "-d",
                "window_seconds=5",
            ],
        ),
        ("error-outside-a-crate", tmp.path(), &["package"]),
        ("error-several-bins", &two, &["package", "--dry-run"]),
    ];
    for (name, dir, args) in cases {
        let out = run(&mut cargo_stream(dir, args), MINUTE).failure();
        assert_snapshot(name, &out.stderr, tmp.path());
    }
}
