//! Exercises: their tests fail on the skeleton that `cargo stream new --exercise` writes, and
//! pass once the reference solution kept in `templates/exercises/<name>/solution/` is copied
//! over it.

use std::time::Duration;

use cargo_stream_tests::{cargo, cargo_stream, copy_over, run, workspace_root};

const BUILD: Duration = Duration::from_secs(900);

fn exercises() -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(
        &mut cargo_stream(tmp.path(), &["new", "--list", "--json"]),
        Duration::from_secs(60),
    )
    .success();
    out.stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|t| t["kind"] == "exercise")
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_course_exercises_are_there() {
    let names = exercises();
    for expected in [
        "tcp-agent-receiver",
        "trending-words",
        "running-totals",
        "kafka-user-totals",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[test]
fn every_exercise_fails_on_its_skeleton_and_passes_with_its_solution() {
    let tmp = tempfile::tempdir().unwrap();
    for name in exercises() {
        let dir = format!("ex-{name}");
        run(
            &mut cargo_stream(tmp.path(), &["new", &dir, "--exercise", &name]),
            Duration::from_secs(60),
        )
        .success();
        let project = tmp.path().join(&dir);
        let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
        assert!(
            readme.contains("## The task"),
            "{name}: README has no task\n{readme}"
        );
        assert!(
            !project.join("solution").exists(),
            "{name}: the solution must not be handed out"
        );

        let skeleton = run(&mut cargo(&project, &["test", "--no-fail-fast"]), BUILD);
        let all = format!("{}{}", skeleton.stdout, skeleton.stderr);
        assert_ne!(
            skeleton.code,
            Some(0),
            "{name}: the skeleton's tests must fail\n{all}"
        );
        assert!(
            all.contains("not yet implemented"),
            "{name}: the skeleton's unfinished `todo` is what fails\n{all}"
        );
        assert!(
            !all.contains("error[E"),
            "{name}: the skeleton must compile\n{all}"
        );

        let solution = workspace_root()
            .join("templates/exercises")
            .join(&name)
            .join("solution");
        assert!(
            solution.is_dir(),
            "{name}: no reference solution in {}",
            solution.display()
        );
        copy_over(&solution, &project);
        let solved = run(&mut cargo(&project, &["test", "--no-fail-fast"]), BUILD);
        assert_eq!(
            solved.code,
            Some(0),
            "{name}: the solution must pass\n{}\n{}",
            solved.stdout,
            solved.stderr
        );
        assert!(
            !solved.stdout.contains("FAILED"),
            "{name}\n{}",
            solved.stdout
        );
        assert!(
            solved.stdout.contains("test result: ok. 1 passed")
                || solved.stdout.contains("test result: ok. 2 passed"),
            "{name}: its tests ran\n{}",
            solved.stdout
        );
    }
}
