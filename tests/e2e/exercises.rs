//! Exercises: their tests fail on the skeleton that `cargo stream new --exercise` writes, and
//! pass once the reference solution kept in `templates/exercises/<name>/solution/` is copied
//! over it.

use std::time::Duration;

use cargo_stream_tests::{cargo, cargo_stream, copy_over, run, workspace_root};

#[test]
fn tcp_agent_receiver_fails_on_the_skeleton_and_passes_with_the_solution() {
    let tmp = tempfile::tempdir().unwrap();
    run(
        &mut cargo_stream(
            tmp.path(),
            &["new", "flume-hw", "--exercise", "tcp-agent-receiver"],
        ),
        Duration::from_secs(60),
    )
    .success();
    let project = tmp.path().join("flume-hw");
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    assert!(readme.contains("## The task"), "{readme}");
    assert!(
        !project.join("solution").exists(),
        "the solution must not be handed out"
    );

    let skeleton = run(
        &mut cargo(&project, &["test", "--no-fail-fast"]),
        Duration::from_secs(900),
    )
    .failure();
    let all = format!("{}{}", skeleton.stdout, skeleton.stderr);
    assert!(
        all.contains("error: 2 targets failed"),
        "both test files fail on the skeleton:\n{all}"
    );
    assert!(
        all.contains("not yet implemented"),
        "the skeleton's todo!() is what fails:\n{all}"
    );

    copy_over(
        &workspace_root().join("templates/exercises/tcp-agent-receiver/solution"),
        &project,
    );
    let solved = run(
        &mut cargo(&project, &["test", "--no-fail-fast"]),
        Duration::from_secs(900),
    )
    .success();
    assert!(
        solved.stdout.contains("test result: ok. 3 passed"),
        "{}",
        solved.stdout
    );
    assert!(
        solved.stdout.contains("test result: ok. 1 passed"),
        "{}",
        solved.stdout
    );
}
