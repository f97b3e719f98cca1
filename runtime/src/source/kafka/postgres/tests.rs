//! The store against a real PostgreSQL (`cargo_stream_tests::postgres`, a throwaway server
//! on 127.0.0.1 per test).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use cargo_stream_tests::postgres::Postgres;
use postgres::{Client, NoTls, Transaction};

use super::*;

const TOTALS: &str = "CREATE TABLE totals (word TEXT PRIMARY KEY, n BIGINT NOT NULL)";

/// Adds `counts` to the totals: an additive, not idempotent, write, which only the guard keeps
/// exactly-once.
fn add(tx: &mut Transaction<'_>, counts: &[(&str, i64)]) -> Result<usize, postgres::Error> {
    for (word, n) in counts {
        tx.execute(
            "INSERT INTO totals (word, n) VALUES ($1, $2)
             ON CONFLICT (word) DO UPDATE SET n = totals.n + EXCLUDED.n",
            &[word, n],
        )?;
    }
    Ok(counts.len())
}

fn totals(db: &Postgres) -> Vec<(String, i64)> {
    let mut client = Client::connect(&db.url(), NoTls).unwrap();
    client
        .query("SELECT word, n FROM totals ORDER BY word", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn fast(db: &Postgres, job: &str) -> OffsetStore {
    OffsetStore::builder(db.url(), job)
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .connect()
        .unwrap()
}

fn started(name: &str) -> Postgres {
    let db = Postgres::start(name);
    db.query(TOTALS);
    db
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

#[test]
fn a_batch_is_applied_once_and_its_replay_skipped() {
    let db = started("applied");
    let store = fast(&db, "wc");
    let first = [
        OffsetRange::new("lines", 0, 0, 3),
        OffsetRange::new("lines", 1, 0, 2),
    ];
    let written = store
        .write_batch(&first, |tx, _| add(tx, &[("to", 2), ("be", 1)]))
        .unwrap();
    assert_eq!(written, BatchWrite::Applied(2));
    assert_eq!(
        store.stored_offsets().unwrap(),
        BTreeMap::from([(tp("lines", 0), 3), (tp("lines", 1), 2)])
    );
    // The next batch starts where the first ended (partition 1 had nothing new).
    let second = [
        OffsetRange::new("lines", 0, 3, 5),
        OffsetRange::new("lines", 1, 2, 2),
    ];
    let written = store
        .write_batch(&second, |tx, _| add(tx, &[("to", 1)]))
        .unwrap();
    assert!(written.is_applied());
    assert_eq!(totals(&db), vec![("be".into(), 1), ("to".into(), 3)]);

    // Both replayed (a restart from a checkpoint regenerates them): nothing written, and the
    // write is not even run.
    for batch in [&first, &second] {
        let mut ran = false;
        let written = store
            .write_batch(batch, |tx, _| {
                ran = true;
                add(tx, &[("to", 100)])
            })
            .unwrap();
        assert!(matches!(written, BatchWrite::Skipped { .. }), "{written:?}");
        assert!(!ran);
    }
    let replay = store.write_batch(&first, |_, _| Ok(())).unwrap();
    assert_eq!(
        replay,
        BatchWrite::Skipped {
            stored: vec![
                (OffsetRange::new("lines", 0, 0, 3), 5),
                (OffsetRange::new("lines", 1, 0, 2), 2)
            ]
        }
    );
    assert_eq!(totals(&db), vec![("be".into(), 1), ("to".into(), 3)]);
    assert_eq!(
        store.stored_offsets().unwrap(),
        BTreeMap::from([(tp("lines", 0), 5), (tp("lines", 1), 2)])
    );
}

#[test]
fn a_gap_is_refused_with_the_fix() {
    let db = started("gap");
    let store = fast(&db, "wc");
    store
        .write_batch(&[OffsetRange::new("lines", 2, 0, 5)], |tx, _| {
            add(tx, &[("a", 1)])
        })
        .unwrap();
    let gap = store
        .write_batch(&[OffsetRange::new("lines", 2, 8, 12)], |tx, _| {
            add(tx, &[("a", 1)])
        })
        .unwrap_err();
    assert!(matches!(
        gap,
        OffsetStoreError::Gap {
            stored_until: 5,
            from_offset: 8,
            ..
        }
    ));
    let message = gap.to_string();
    for part in [
        "job `wc`",
        "lines-2 was written up to offset 5, but this batch reads [8, 12)",
        "records 5 to 8 would never be written",
        "starting_offsets",
        "UPDATE kafka_offsets SET until_offset = 8 WHERE job = 'wc' AND topic = 'lines' AND partition = 2",
    ] {
        assert!(message.contains(part), "{part:?} not in: {message}");
    }
    assert_eq!(totals(&db), vec![("a".into(), 1)]);
    // The fix given works: the stored end moved by hand, the batch is written.
    db.query("UPDATE kafka_offsets SET until_offset = 8 WHERE job = 'wc' AND topic = 'lines' AND partition = 2");
    assert!(
        store
            .write_batch(&[OffsetRange::new("lines", 2, 8, 12)], |tx, _| add(
                tx,
                &[("a", 1)]
            ))
            .unwrap()
            .is_applied()
    );
    assert_eq!(totals(&db), vec![("a".into(), 2)]);
    // A refused batch leaves no row behind for a partition it would have started.
    let e = store.write_batch(
        &[
            OffsetRange::new("lines", 0, 0, 3),
            OffsetRange::new("lines", 2, 20, 22),
        ],
        |_, _| Ok(()),
    );
    assert!(matches!(e, Err(OffsetStoreError::Gap { .. })), "{e:?}");
    assert_eq!(
        store.stored_offsets().unwrap(),
        BTreeMap::from([(tp("lines", 2), 12)])
    );
}

#[test]
fn a_batch_regenerated_with_other_ranges_writes_only_the_records_not_written() {
    let db = started("partly");
    let store = fast(&db, "wc");
    // Two batches written: lines-0 [0, 4) then [4, 6); lines-1 [0, 3).
    for ranges in [
        vec![
            OffsetRange::new("lines", 0, 0, 4),
            OffsetRange::new("lines", 1, 0, 3),
        ],
        vec![
            OffsetRange::new("lines", 0, 4, 6),
            OffsetRange::new("lines", 1, 3, 3),
        ],
    ] {
        store
            .write_batch(&ranges, |_, u| {
                assert!(u.is_whole());
                Ok(())
            })
            .unwrap();
    }
    // A restart from a checkpoint taken after the first regenerates from its end with one
    // longer batch, and a new partition appears.
    let regenerated = [
        OffsetRange::new("lines", 0, 4, 9),
        OffsetRange::new("lines", 1, 3, 5),
        OffsetRange::new("lines", 2, 0, 2),
    ];
    let written = store
        .write_batch(&regenerated, |_, unwritten| Ok(unwritten.clone()))
        .unwrap();
    let BatchWrite::Applied(unwritten) = written else {
        panic!("{written:?}")
    };
    assert!(!unwritten.is_whole());
    assert_eq!(
        unwritten.ranges(),
        [
            OffsetRange::new("lines", 0, 6, 9),
            OffsetRange::new("lines", 1, 3, 5),
            OffsetRange::new("lines", 2, 0, 2)
        ]
    );
    assert!(!unwritten.contains("lines", 0, 5) && unwritten.contains("lines", 0, 6));
    assert!(!unwritten.contains("lines", 0, 9) && !unwritten.contains("other", 0, 6));
    assert_eq!(
        store.stored_offsets().unwrap(),
        BTreeMap::from([
            (tp("lines", 0), 9),
            (tp("lines", 1), 5),
            (tp("lines", 2), 2)
        ])
    );
    // An older batch whose partitions are all written further: skipped, and no end moves back.
    let old = store
        .write_batch(
            &[
                OffsetRange::new("lines", 0, 0, 4),
                OffsetRange::new("lines", 1, 0, 3),
            ],
            |_, _| Ok(()),
        )
        .unwrap();
    assert!(!old.is_applied());
    assert_eq!(store.stored_offsets().unwrap()[&tp("lines", 0)], 9);
}

#[test]
fn two_writers_of_one_batch_apply_it_exactly_once() {
    let db = started("zombie");
    // Both for a batch never written (the placeholder rows race), then for a later one.
    for ranges in [
        vec![
            OffsetRange::new("lines", 0, 0, 10),
            OffsetRange::new("lines", 1, 0, 7),
        ],
        vec![
            OffsetRange::new("lines", 0, 10, 20),
            OffsetRange::new("lines", 1, 7, 9),
        ],
    ] {
        let barrier = Arc::new(Barrier::new(2));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let (store, barrier, ranges) = (fast(&db, "wc"), barrier.clone(), ranges.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store
                        .write_batch(&ranges, |tx, _| {
                            let n = add(tx, &[("x", 1)])?;
                            // Hold the transaction open: the other writer is waiting or about
                            // to read the old ends.
                            std::thread::sleep(Duration::from_millis(300));
                            Ok(n)
                        })
                        .unwrap()
                })
            })
            .collect();
        let outcomes: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        assert_eq!(
            outcomes.iter().filter(|o| o.is_applied()).count(),
            1,
            "{outcomes:?}"
        );
    }
    assert_eq!(totals(&db), vec![("x".into(), 2)]);
}

#[test]
fn the_starting_offsets_are_the_stored_ends_of_the_job() {
    let db = started("restore");
    let store = fast(&db, "wc");
    assert!(store.starting_offsets(["lines"]).unwrap().is_empty());
    store
        .write_batch(
            &[
                OffsetRange::new("lines", 0, 0, 10),
                OffsetRange::new("lines", 2, 4, 9),
                OffsetRange::new("other", 0, 0, 1),
            ],
            |_, _| Ok(()),
        )
        .unwrap();
    // Another job's offsets, in the same table, are its own.
    fast(&db, "another")
        .write_batch(&[OffsetRange::new("lines", 0, 0, 99)], |_, _| Ok(()))
        .unwrap();
    // A new store (a restarted job without its checkpoint) reads them back.
    let restarted = fast(&db, "wc");
    assert_eq!(
        restarted.starting_offsets(["lines", "missing"]).unwrap(),
        BTreeMap::from([(tp("lines", 0), 10), (tp("lines", 2), 9)])
    );
    assert_eq!(restarted.stored_offsets().unwrap().len(), 3);
    let strategy = crate::kafka::ConsumerStrategy::subscribe(["lines"])
        .with_offsets(restarted.starting_offsets(["lines"]).unwrap());
    assert_eq!(strategy.offsets()[&tp("lines", 2)], 9);
}

#[test]
fn serialization_failures_are_retried_and_then_reported() {
    let db = started("retry");
    let store = fast(&db, "wc");
    let calls = AtomicU32::new(0);
    let conflict =
        "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$";
    let written = store
        .write_batch(&[OffsetRange::new("lines", 0, 0, 4)], |tx, _| {
            // Written, then the transaction fails: the first attempt is rolled back whole.
            add(tx, &[("a", 1)])?;
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                tx.batch_execute(conflict)?;
            }
            Ok(())
        })
        .unwrap();
    assert!(written.is_applied());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(totals(&db), vec![("a".into(), 1)]);

    let store = OffsetStore::builder(db.url(), "wc")
        .attempts(3)
        .backoff(Duration::from_millis(10), Duration::from_millis(10))
        .connect()
        .unwrap();
    let e = store
        .write_batch(&[OffsetRange::new("lines", 0, 4, 8)], |tx, _| {
            tx.batch_execute(conflict)
        })
        .unwrap_err();
    assert_eq!(e.code(), Some("40001"));
    assert!(
        e.to_string().starts_with(&format!(
            "writing batch lines-0 [4, 8) on PostgreSQL at 127.0.0.1:{} failed after 3 attempt(s): 40001: conflict",
            db.port()
        )),
        "{e}"
    );
    // An error a retry cannot fix fails at once, nothing written.
    let calls = AtomicU32::new(0);
    let e = store
        .write_batch(&[OffsetRange::new("lines", 0, 4, 8)], |tx, _| {
            calls.fetch_add(1, Ordering::SeqCst);
            tx.execute("INSERT INTO missing VALUES (1)", &[])
        })
        .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(
        e.to_string()
            .contains("after 1 attempt(s): 42P01: relation \"missing\" does not exist"),
        "{e}"
    );
    assert_eq!(store.stored_offsets().unwrap()[&tp("lines", 0)], 4);
}

#[test]
fn a_server_restart_is_retried_and_a_server_down_is_a_clear_error() {
    let db = started("restart");
    let store = fast(&db, "wc");
    store
        .write_batch(&[OffsetRange::new("lines", 0, 0, 2)], |tx, _| {
            add(tx, &[("a", 1)])
        })
        .unwrap();
    // The store's connection dies with the server; the next write opens a new one.
    db.stop();
    db.start_again();
    store
        .write_batch(&[OffsetRange::new("lines", 0, 2, 3)], |tx, _| {
            add(tx, &[("a", 1)])
        })
        .unwrap();
    assert_eq!(totals(&db), vec![("a".into(), 2)]);

    db.stop();
    let e = store
        .write_batch(&[OffsetRange::new("lines", 0, 3, 4)], |tx, _| {
            add(tx, &[("a", 1)])
        })
        .unwrap_err();
    let message = e.to_string();
    assert!(
        message.starts_with(&format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{} after 5 attempt(s): error connecting to server: Connection refused",
            db.port()
        )),
        "{message}"
    );
    assert!(message.contains("check that the server is up"), "{message}");
    db.start_again();
    assert_eq!(totals(&db), vec![("a".into(), 2)]);

    // At start: the same error, and a bad table name or connection string is named.
    let url = format!(
        "host=127.0.0.1 port={} user=postgres dbname=none",
        free_port()
    );
    let e = OffsetStore::builder(url, "wc")
        .attempts(2)
        .connect()
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .contains("after 2 attempt(s): error connecting to server: Connection refused"),
        "{e}"
    );
    let e = OffsetStore::builder(db.url(), "wc")
        .table("x; DROP TABLE totals")
        .connect()
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("table name `x; DROP TABLE totals`"),
        "{e}"
    );
    let e = OffsetStore::connect("port=notanumber", "wc").err().unwrap();
    assert!(
        e.to_string().starts_with(
            "invalid offset store setting: PostgreSQL connection string: invalid connection string"
        ),
        "{e}"
    );
}

#[test]
fn invalid_ranges_are_refused_and_a_named_table_is_used() {
    let db = started("named");
    db.query("CREATE SCHEMA jobs");
    let store = OffsetStore::builder(db.url(), "wc")
        .table("jobs.offsets")
        .connect()
        .unwrap();
    let e = store
        .write_batch(
            &[
                OffsetRange::new("lines", 0, 0, 2),
                OffsetRange::new("lines", 0, 2, 4),
            ],
            |_, _| Ok(()),
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("partition lines-0 is given twice"),
        "{e}"
    );
    let e = store
        .write_batch(&[OffsetRange::new("lines", 0, 5, 2)], |_, _| Ok(()))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("range lines-0 [5, 2) is not a range"),
        "{e}"
    );
    // No ranges (a transformed stream's batch has none): nothing to guard with, so nothing
    // written.
    let none = store
        .write_batch(&[], |tx, _| add(tx, &[("a", 1)]))
        .unwrap();
    assert_eq!(none, BatchWrite::Skipped { stored: vec![] });
    assert!(totals(&db).is_empty());
    store
        .write_batch(&[OffsetRange::new("lines", 0, 0, 2)], |_, _| Ok(()))
        .unwrap();
    assert_eq!(
        db.query("SELECT until_offset FROM jobs.offsets").trim(),
        "2"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
