//! A checkpoint that survives an upgrade: states saved by name are restored into a job rebuilt
//! from changed code, removed ones dropped with a warning, changed types refused by name.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cargo_stream_runtime::prelude::*;
use cargo_stream_runtime::{Data, ManualClock, Result};

type Seen<T> = Arc<Mutex<Vec<Vec<T>>>>;

fn context(clock: &ManualClock) -> StreamingContext {
    let conf = StreamingConf::new("upgrade")
        .master("local[2]")
        .stop_on_signal(false)
        .manual_clock(clock.clone());
    StreamingContext::new(conf, Seconds(1)).unwrap()
}

/// Every batch's records of `stream`, sorted.
fn batches<T: Data + Ord>(stream: &DStream<T>) -> Seen<T> {
    let seen: Seen<T> = Arc::default();
    let sink = seen.clone();
    stream
        .foreach_rdd(move |b, _| {
            let mut v = b.collect();
            v.sort();
            sink.lock().unwrap().push(v);
        })
        .unwrap();
    seen
}

fn words(batches: &[&[&str]]) -> Vec<Vec<String>> {
    batches
        .iter()
        .map(|b| b.iter().map(|w| w.to_string()).collect())
        .collect()
}

fn sum(values: Vec<u64>, total: Option<u64>) -> Option<u64> {
    Some(values.iter().sum::<u64>() + total.unwrap_or(0))
}

/// Builds a job with `build` from the checkpoint in `dir`, runs `n` batches (each one
/// checkpointed) and stops it.
fn run<T>(
    dir: &Path,
    n: u64,
    build: impl FnOnce(&StreamingContext) -> Result<T>,
    before_start: impl FnOnce(&StreamingContext),
) -> Result<T> {
    let clock = ManualClock::new();
    let mut out = None;
    let ssc = StreamingContext::get_or_create(dir, || {
        let ssc = context(&clock);
        out = Some(build(&ssc)?);
        Ok(ssc)
    })?;
    before_start(&ssc);
    ssc.start()?;
    for i in 1..=n {
        clock.advance(Seconds(1));
        assert!(ssc.await_batch(Time::from_millis(i * 1000), Duration::from_secs(30))?);
    }
    ssc.stop(false)?;
    Ok(out.expect("built"))
}

/// Version 1 of a word count with running totals.
fn totals_v1(ssc: &StreamingContext, input: &[&[&str]]) -> Result<Seen<(String, u64)>> {
    let totals = ssc
        .queue_stream(words(input))
        .map(|w| (w, 1u64))
        .update_state_by_key(sum);
    totals.checkpoint(Seconds(1));
    Ok(batches(&totals))
}

/// Version 2: a filter above the totals, and a new output, itself stateful, created before them.
fn totals_v2(
    ssc: &StreamingContext,
    input: &[&[&str]],
) -> Result<(Seen<(String, u64)>, Seen<(String, u64)>)> {
    let words = ssc.queue_stream(words(input));
    let kept = words.filter(|w| w != "noise");
    let spec = StateSpec::function(|w: &String, one: Option<u64>, seen: &mut State<u64>| {
        let n = seen.get_option().copied().unwrap_or(0) + one.unwrap_or(0);
        seen.update(n);
        (w.clone(), n)
    });
    let noise = batches(
        &words
            .filter(|w| w == "noise")
            .map(|w| (w, 1u64))
            .map_with_state(spec)
            .into_dstream(),
    );
    let totals = kept.map(|w| (w, 1u64)).update_state_by_key(sum);
    totals.checkpoint(Seconds(1));
    Ok((batches(&totals), noise))
}

fn pairs(v: &[(&str, u64)]) -> Vec<(String, u64)> {
    v.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

#[test]
fn totals_continue_after_a_filter_and_a_new_stateful_output_are_added() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = run(
        dir.path(),
        2,
        |ssc| totals_v1(ssc, &[&["a", "a", "b"], &["a"]]),
        |_| {},
    )
    .unwrap();
    assert_eq!(
        v1.lock().unwrap().last().unwrap(),
        &pairs(&[("a", 3), ("b", 1)])
    );
    let (v2, noise) = run(
        dir.path(),
        2,
        |ssc| totals_v2(ssc, &[&["a", "noise", "c"], &["noise"]]),
        |_| {},
    )
    .unwrap();
    assert_eq!(
        *v2.lock().unwrap(),
        vec![
            pairs(&[("a", 4), ("b", 1), ("c", 1)]),
            pairs(&[("a", 4), ("b", 1), ("c", 1)]),
        ]
    );
    assert_eq!(
        *noise.lock().unwrap(),
        vec![pairs(&[("noise", 1)]), pairs(&[("noise", 2)])],
        "the new operation starts empty"
    );
    // And a third run of the same code continues from the second.
    let (v3, noise) = run(
        dir.path(),
        1,
        |ssc| totals_v2(ssc, &[&["b", "noise"]]),
        |_| {},
    )
    .unwrap();
    assert_eq!(
        *v3.lock().unwrap(),
        vec![pairs(&[("a", 4), ("b", 2), ("c", 1)])]
    );
    assert_eq!(*noise.lock().unwrap(), vec![pairs(&[("noise", 3)])]);
}

/// Version 3: the totals are now text, under the same default name.
fn totals_as_text(ssc: &StreamingContext) -> Result<Seen<(String, String)>> {
    let totals = ssc
        .queue_stream(words(&[&["a"]]))
        .map(|w| (w, 1u64))
        .update_state_by_key(|v: Vec<u64>, s: Option<String>| {
            Some(format!("{}{}", s.unwrap_or_default(), "x".repeat(v.len())))
        });
    totals.checkpoint(Seconds(1));
    Ok(batches(&totals))
}

#[test]
fn a_changed_state_type_is_refused_by_name_until_it_is_reset() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 1, |ssc| totals_v1(ssc, &[&["a"]]), |_| {}).unwrap();
    let err = run(dir.path(), 1, totals_as_text, |_| {})
        .unwrap_err()
        .to_string();
    let name = "runtime/tests/it/upgrade.rs:update_state_by_key#1";
    assert!(
        err.contains(&format!("the type of state `{name}`")),
        "{err}"
    );
    assert!(
        err.contains("state `u64`") && err.contains("state `alloc::string::String`"),
        "{err}"
    );
    assert!(
        err.contains(&format!("CARGO_STREAM_RESET_STATE={name}")),
        "{err}"
    );
    // The escape hatch: the state starts empty, the checkpoint is then rewritten.
    let text = run(dir.path(), 1, totals_as_text, |ssc| ssc.reset_state(name)).unwrap();
    assert_eq!(
        *text.lock().unwrap(),
        vec![vec![("a".to_string(), "x".to_string())]]
    );
    let text = run(dir.path(), 1, totals_as_text, |_| {}).unwrap();
    assert_eq!(
        *text.lock().unwrap(),
        vec![vec![("a".to_string(), "xx".to_string())]]
    );
}

#[test]
fn a_changed_state_type_can_be_migrated() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 1, |ssc| totals_v1(ssc, &[&["a", "a"]]), |_| {}).unwrap();
    let name = "runtime/tests/it/upgrade.rs:update_state_by_key#1";
    // A migration from the wrong old type is refused, naming both.
    let err = run(dir.path(), 1, totals_as_text, |ssc| {
        ssc.migrate_state(name, |_: &String, n: u32| Some(n.to_string()))
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("the migration of state") && err.contains("state `u32`"),
        "{err}"
    );
    assert!(err.contains("the checkpoint holds key"), "{err}");
    let text = run(dir.path(), 1, totals_as_text, |ssc| {
        ssc.migrate_state(name, |_: &String, n: u64| Some("x".repeat(n as usize)))
    })
    .unwrap();
    assert_eq!(
        *text.lock().unwrap(),
        vec![vec![("a".to_string(), "xxx".to_string())]]
    );
}

/// A writer for a tracing subscriber that keeps what it is given.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_removed_operation_s_state_is_dropped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    run(
        dir.path(),
        1,
        |ssc| {
            let pairs = ssc.queue_stream(words(&[&["a", "b"]])).map(|w| (w, 1u64));
            let totals = pairs.update_state_by_key(sum).name("totals");
            totals.checkpoint(Seconds(1));
            let spec = StateSpec::function(|_: &String, v: Option<u64>, s: &mut State<u64>| {
                s.update(v.unwrap_or(0));
                v
            });
            pairs
                .map_with_state(spec)
                .name("last")
                .foreach_rdd(|_, _| {})?;
            Ok(batches(&totals))
        },
        |_| {},
    )
    .unwrap();
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    let totals = tracing::subscriber::with_default(subscriber, || {
        run(
            dir.path(),
            1,
            |ssc| {
                let totals = ssc
                    .queue_stream(words(&[&["a"]]))
                    .map(|w| (w, 1u64))
                    .update_state_by_key(sum)
                    .name("totals");
                totals.checkpoint(Seconds(1));
                Ok(batches(&totals))
            },
            |_| {},
        )
    })
    .unwrap();
    assert_eq!(*totals.lock().unwrap(), vec![pairs(&[("a", 2), ("b", 1)])]);
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("WARN") && logs.contains("dropping the saved state") && logs.contains("last"),
        "{logs}"
    );
}

#[test]
fn names_must_be_unique_and_name_a_state() {
    let clock = ManualClock::new();
    let ssc = context(&clock);
    let dir = tempfile::tempdir().unwrap();
    ssc.checkpoint(dir.path()).unwrap();
    let pairs = ssc.queue_stream(words(&[&["a"]])).map(|w| (w, 1u64));
    pairs
        .update_state_by_key(sum)
        .name("totals")
        .print(1)
        .unwrap();
    pairs
        .update_state_by_key(sum)
        .name("totals")
        .print(1)
        .unwrap();
    let err = ssc.start().unwrap_err().to_string();
    assert!(
        err.contains("already has the name `totals`") && err.contains("upgrade.rs:"),
        "{err}"
    );

    let ssc = context(&clock);
    ssc.queue_stream(words(&[&["a"]]))
        .name("words")
        .print(1)
        .unwrap();
    let err = ssc.start().unwrap_err().to_string();
    assert!(err.contains("this stream keeps no state"), "{err}");
}

#[test]
fn a_reset_of_an_unknown_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 1, |ssc| totals_v1(ssc, &[&["a"]]), |_| {}).unwrap();
    let err = run(
        dir.path(),
        1,
        |ssc| totals_v1(ssc, &[&["a"]]),
        |ssc| ssc.reset_state("totlas"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("cannot reset state `totlas`")
            && err.contains("`runtime/tests/it/upgrade.rs:update_state_by_key#1`"),
        "{err}"
    );
}
