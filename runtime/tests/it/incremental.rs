//! Incremental checkpoints of keyed state through a whole job: `map_with_state` with a large
//! state and few keys per batch writes small deltas between full snapshots, and a restart
//! from a chain of them goes on with exactly the state it had.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cargo_stream_runtime::ManualClock;
use cargo_stream_runtime::prelude::*;

const KEYS: u64 = 20_000;

/// Runs `batches` (keys to add 1 to) from the checkpoint in `dir`, each batch checkpointed;
/// returns the state after the last batch, sorted.
fn run(dir: &Path, batches: Vec<Vec<u64>>) -> Vec<(u64, u64)> {
    let clock = ManualClock::new();
    let last: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let sink = last.clone();
    let n = batches.len() as u64;
    let ssc = StreamingContext::get_or_create(dir, || {
        let conf = StreamingConf::new("incremental")
            .master("local[2]")
            .stop_on_signal(false)
            .ui(false)
            .state_full_snapshot_every(3)
            .manual_clock(clock.clone());
        let ssc = StreamingContext::new(conf, Seconds(1))?;
        let spec = StateSpec::function(|_k: &u64, v: Option<u64>, st: &mut State<u64>| {
            let n = st.get_option().copied().unwrap_or(0) + v.unwrap_or(0);
            st.update(n);
            n
        })
        .initial_state((0..KEYS).map(|k| (k, 0)).collect());
        let counts = ssc
            .queue_stream(batches)
            .map(|k| (k, 1u64))
            .map_with_state(spec);
        counts.checkpoint(Seconds(1));
        let counts = counts.name("counts");
        counts.state_snapshots().foreach_rdd(move |b, _| {
            let mut v = b.collect();
            v.sort();
            *sink.lock().unwrap() = v;
        })?;
        Ok(ssc)
    })
    .unwrap();
    ssc.start().unwrap();
    for i in 1..=n {
        clock.advance(Seconds(1));
        assert!(
            ssc.await_batch(Time::from_millis(i * 1000), Duration::from_secs(30))
                .unwrap()
        );
    }
    ssc.stop(false).unwrap();
    last.lock().unwrap().clone()
}

fn sizes(dir: &Path) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let t = e
                .file_name()
                .to_str()?
                .strip_prefix("checkpoint-")?
                .parse()
                .ok()?;
            Some((t, e.metadata().ok()?.len()))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn map_with_state_writes_deltas_between_full_snapshots_and_restarts_from_the_chain_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let batch = |i: u64| {
        (0..10)
            .map(|j| (i * 7919 + j * 104_729) % (KEYS + 50))
            .collect()
    };
    let first: Vec<Vec<u64>> = (0..5).map(batch).collect();
    let state = run(dir.path(), first.clone());
    // Checkpoints 1 and 4 are full snapshots; 2, 3 and 5 hold the 10 keys of their batch.
    // The newest three are kept, and 1 and 2 too: 3 is a delta of them.
    let files = sizes(dir.path());
    let times: Vec<u64> = files.iter().map(|(t, _)| t / 1000).collect();
    assert_eq!(times, vec![1, 2, 3, 4, 5], "{files:?}");
    let full = files[0].1.min(files[3].1);
    assert!(
        [1, 2, 4].iter().all(|&i| files[i].1 * 50 < full),
        "{files:?}"
    );
    let mut expected: std::collections::BTreeMap<u64, u64> = (0..KEYS).map(|k| (k, 0)).collect();
    for k in first.iter().flatten() {
        *expected.entry(*k).or_default() += 1;
    }
    assert_eq!(state, expected.clone().into_iter().collect::<Vec<_>>());
    // Restarted from 5 = 4 + delta: the state goes on from exactly where it was.
    let second: Vec<Vec<u64>> = (5..9).map(batch).collect();
    let state = run(dir.path(), second.clone());
    for k in second.iter().flatten() {
        *expected.entry(*k).or_default() += 1;
    }
    assert_eq!(state, expected.into_iter().collect::<Vec<_>>());
}
