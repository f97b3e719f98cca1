//! Runs `postgres_word_count` against a throwaway PostgreSQL server (Debian's, started on
//! 127.0.0.1 by `cargo_stream_tests::postgres`, in `tests/src/postgres.rs`) and checks the rows
//! it wrote: per-partition and pooled connections, idempotent replays, retries while the server
//! restarts, and a clear error when it stays down.

#[path = "support/job.rs"]
mod job;
#[path = "../src/bin/postgres_word_count/sink.rs"]
#[allow(dead_code)]
mod sink;

use std::time::Duration;

use cargo_stream_tests::postgres::Postgres;
use job::{Job, TEXT, text_server};
use postgres::{Client, NoTls};

fn expected() -> Vec<(String, i64)> {
    [
        ("be", 3),
        ("is", 1),
        ("not", 1),
        ("or", 1),
        ("question", 1),
        ("that", 1),
        ("the", 1),
        ("to", 3),
    ]
    .into_iter()
    .map(|(w, c)| (w.to_owned(), c))
    .collect()
}

/// Every row of `word_counts`: (batch time, word, count), ordered.
fn rows(db: &Postgres) -> Vec<(i64, String, i64)> {
    let mut client = Client::connect(&db.url(), NoTls).unwrap();
    client
        .query(
            "SELECT batch_time, word, count FROM word_counts ORDER BY batch_time, word",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// The rows of the one batch that has any, without its time.
fn one_batch(db: &Postgres) -> Vec<(String, i64)> {
    let rows = rows(db);
    let times: std::collections::BTreeSet<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(times.len(), 1, "text sent at once is one batch: {rows:?}");
    assert_eq!(
        times.iter().next().unwrap() % 1000,
        0,
        "keyed by batch time"
    );
    rows.into_iter().map(|(_, w, c)| (w, c)).collect()
}

fn run_job(db: &Postgres, extra: &[&str]) -> Vec<(String, i64)> {
    let (port, go) = text_server(TEXT);
    let (url, port) = (db.url(), port.to_string());
    let mut args = vec![url.as_str(), "127.0.0.1", &port];
    args.extend(extra);
    let job = Job::spawn(env!("CARGO_BIN_EXE_postgres_word_count"), &args);
    job.wait_started();
    go.send(()).unwrap();
    job.wait_printed("wrote 8 word count(s)");
    job.terminate();
    one_batch(db)
}

#[test]
fn postgres_word_count_writes_the_counts_of_each_batch() {
    let db = Postgres::start("stream");
    assert_eq!(run_job(&db, &[]), expected());
}

#[test]
fn postgres_word_count_writes_the_same_rows_through_a_pool() {
    let db = Postgres::start("stream");
    assert_eq!(run_job(&db, &["--pool"]), expected());
}

#[test]
fn a_replayed_batch_does_not_count_twice() {
    let db = Postgres::start("replay");
    let retry = sink::Retry::default();
    let counts = vec![("a".to_string(), 2u64), ("b".to_string(), 1)];
    for connections in [
        sink::Connections::PerPartition(db.url()),
        sink::Connections::pooled(&db.url(), 2).unwrap(),
    ] {
        connections
            .with_client(retry, "create", sink::create_table)
            .unwrap();
        // The batch at 5000 ms written, then written again as a restart replays it.
        for _ in 0..2 {
            let n = connections
                .with_client(retry, "write", |c| sink::write_partition(c, 5000, &counts))
                .unwrap();
            assert_eq!(n, 2);
        }
    }
    assert_eq!(
        rows(&db),
        vec![(5000, "a".to_string(), 2), (5000, "b".to_string(), 1)]
    );
}

#[test]
fn writes_are_retried_while_the_server_restarts() {
    let db = Postgres::start("stream");
    let (port, go) = text_server(TEXT);
    let (url, port) = (db.url(), port.to_string());
    let job = Job::spawn(
        env!("CARGO_BIN_EXE_postgres_word_count"),
        &[&url, "127.0.0.1", &port, "--attempts", "10"],
    );
    job.wait_started();
    db.stop();
    go.send(()).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    db.start_again();
    job.wait_printed("wrote 8 word count(s)");
    assert!(job.stderr().contains("retrying in"), "{}", job.stderr());
    job.terminate();
    assert_eq!(one_batch(&db), expected());
}

#[test]
fn a_server_that_stays_down_fails_the_job_with_a_clear_error() {
    let db = Postgres::start("stream");
    let (port, go) = text_server(TEXT);
    let (url, port) = (db.url(), port.to_string());
    let job = Job::spawn(
        env!("CARGO_BIN_EXE_postgres_word_count"),
        &[&url, "127.0.0.1", &port, "--attempts", "3"],
    );
    job.wait_started();
    db.stop();
    go.send(()).unwrap();
    let (status, stdout, stderr) = job.wait_exit();
    assert!(!status.success(), "{stdout}");
    assert!(
        !stdout.contains("wrote"),
        "no batch is done before its writes: {stdout}"
    );
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(
        error.starts_with("error: job for batch ") && error.contains("failed in `foreach_rdd"),
        "{error}"
    );
    assert!(
        error.contains(" word count(s) of batch ")
            && error.contains("failed after 3 attempt(s): error connecting to server: "),
        "{error}"
    );
    assert!(
        stderr.contains("help: check that PostgreSQL is up"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_server_at_start_is_a_clear_error() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("host=127.0.0.1 port={free} user=postgres dbname=none");
    let job = Job::spawn(
        env!("CARGO_BIN_EXE_postgres_word_count"),
        &[&url, "127.0.0.1", "9", "--attempts", "2"],
    );
    let (status, _, stderr) = job.wait_exit();
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains(
            "error: creating table `word_counts` failed after 2 attempt(s): error connecting to server: "
        ),
        "{stderr}"
    );
}
