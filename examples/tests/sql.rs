//! Runs the SQL examples against a real socket and checks their exact output: the counts of
//! the batch, in the order the query's `ORDER BY` gives.

#[path = "support/job.rs"]
mod job;

use job::{Job, TEXT, nonempty_batches, text_server};

/// The counts of [`TEXT`] in the queries' order: `ORDER BY total DESC, word`.
const COUNTS: [&str; 8] = [
    "(be,3)",
    "(to,3)",
    "(is,1)",
    "(not,1)",
    "(or,1)",
    "(question,1)",
    "(that,1)",
    "(the,1)",
];

fn run(bin: &str, args: &[&str], last: &str) -> Vec<Vec<String>> {
    let (port, go) = text_server(TEXT);
    let port = port.to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["127.0.0.1", &port]);
    let job = Job::spawn(bin, &all);
    job.wait_started();
    go.send(()).unwrap();
    job.wait_printed(last);
    nonempty_batches(&job.terminate())
}

#[test]
fn sql_word_count_prints_the_counts_of_each_batch() {
    let batches = run(env!("CARGO_BIN_EXE_sql_word_count"), &[], "(that,1)");
    assert_eq!(
        batches,
        vec![COUNTS],
        "data written at once lands in one batch, counted in SQL"
    );
}

#[test]
fn sql_blacklist_leaves_out_the_listed_words() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("blacklist.txt");
    std::fs::write(&list, "be\nthe\n\n").unwrap();
    let batches = run(
        env!("CARGO_BIN_EXE_sql_blacklist"),
        &[list.to_str().unwrap()],
        "(that,1)",
    );
    let kept: Vec<&str> = COUNTS
        .into_iter()
        .filter(|c| !["(be,3)", "(the,1)"].contains(c))
        .collect();
    assert_eq!(batches, vec![kept]);
}

#[test]
fn sql_blacklist_reports_a_missing_file() {
    let job = Job::spawn(
        env!("CARGO_BIN_EXE_sql_blacklist"),
        &["/nonexistent/blacklist.txt", "127.0.0.1", "9"],
    );
    let (status, _, stderr) = job.wait_exit();
    assert!(!status.success());
    assert!(
        stderr.contains("failed to read blacklist `/nonexistent/blacklist.txt`"),
        "{stderr}"
    );
}
