//! Runs the SQL examples against a real socket and checks their exact output: the counts of
//! the batch, in the order the query's `ORDER BY` gives.

#[path = "support/job.rs"]
mod job;

use job::{COUNTS, Job, TEXT, nonempty_batches, text_server};

/// The counts of [`TEXT`] in the queries' order: `ORDER BY total DESC, word`.
fn by_total() -> Vec<&'static str> {
    let total = |count: &str| -> u32 {
        let (_, n) = count.trim_end_matches(')').rsplit_once(',').unwrap();
        n.parse().unwrap()
    };
    let mut counts = COUNTS.to_vec();
    counts.sort_by_key(|&c| (std::cmp::Reverse(total(c)), c.trim_start_matches('(')));
    counts
}

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
        vec![by_total()],
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
    let kept: Vec<&str> = by_total()
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
