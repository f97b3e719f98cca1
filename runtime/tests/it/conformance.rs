//! Per-batch outputs equal Spark's: each case replays a fixture recorded with Spark 4.3
//! (PySpark or spark-shell, `tests/conformance/record.py`) through the same operation here and
//! compares every batch. The cases are one table, `conformance!`, one test per fixture named
//! after it; `every_fixture_is_in_the_table` keeps the table and the fixtures folder in step.

use std::path::Path;

use cargo_stream_runtime::{DStream, Seconds, State, StateSpec, StreamingContext, example_every};
use serde::Serialize;
use serde_json::Value;

pub(crate) type Pair = (String, i64);

pub(crate) struct Fixture {
    pub(crate) batch_seconds: u64,
    pub(crate) inputs: Vec<Value>,
    other: Vec<Value>,
    /// (batch index, elements) for every batch Spark produced.
    pub(crate) outputs: Vec<(u64, Vec<Value>)>,
}

pub(crate) fn load(case: &str) -> Fixture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/conformance/fixtures/{case}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).unwrap();
    let batches = |key: &str| {
        v.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let outputs = batches("outputs")
        .iter()
        .map(|o| {
            (
                o["index"].as_u64().unwrap(),
                o["elements"].as_array().unwrap().clone(),
            )
        })
        .collect();
    Fixture {
        batch_seconds: v.get("batch_seconds").and_then(Value::as_u64).unwrap_or(1),
        inputs: batches("inputs"),
        other: batches("other"),
        outputs,
    }
}

pub(crate) fn typed<T: serde::de::DeserializeOwned>(batches: &[Value]) -> Vec<Vec<T>> {
    batches
        .iter()
        .map(|b| serde_json::from_value(b.clone()).unwrap())
        .collect()
}

/// Sorts a batch's elements canonically (by their compact JSON), as both sides must.
pub(crate) fn canonical(mut elements: Vec<Value>) -> Vec<Value> {
    elements.sort_by_key(|e| e.to_string());
    elements
}

/// Runs `build` on the fixture's input (and `other` as a second queue stream) and checks
/// every output batch against Spark's.
fn check<I, O>(
    case: &str,
    build: impl FnOnce(&StreamingContext, DStream<I>, Vec<Vec<I>>) -> DStream<O>,
) where
    I: cargo_stream_runtime::Data + serde::de::DeserializeOwned,
    O: cargo_stream_runtime::Data + Serialize,
{
    let f = load(case);
    let other: Vec<Vec<I>> = typed(&f.other);
    let runs = f.outputs.last().map_or(f.inputs.len() as u64, |o| o.0) as usize;
    let ours = example_every(
        Seconds(f.batch_seconds),
        typed::<I>(&f.inputs),
        runs,
        |ssc, s| build(ssc, s, other),
    );
    let ours: Vec<(u64, Vec<Value>)> = ours
        .into_iter()
        .map(|(i, out)| {
            (
                i,
                canonical(
                    out.iter()
                        .map(|o| serde_json::to_value(o).unwrap())
                        .collect(),
                ),
            )
        })
        .collect();
    let spark: Vec<(u64, Vec<Value>)> = f
        .outputs
        .into_iter()
        .map(|(i, e)| (i, canonical(e)))
        .collect();
    assert_eq!(
        ours, spark,
        "case `{case}`: (batch index, elements) differ from Spark's"
    );
}

/// Grouped values in the fixtures' order: by their JSON text.
pub(crate) fn sorted<T: Serialize>(mut v: Vec<T>) -> Vec<T> {
    v.sort_by_cached_key(|x| serde_json::to_string(x).unwrap());
    v
}

/// A checkpoint directory for operations that need one, kept for the test's duration.
fn checkpointed(ssc: &StreamingContext) {
    let dir = tempfile::tempdir().unwrap().keep();
    ssc.checkpoint(dir).unwrap();
}

// The incremental windows, over `window` one-second slides: the 3- and 5-slide cases share
// them (checkpointed, as Spark requires for an inverse function).

fn count_by_window(ssc: &StreamingContext, s: DStream<String>, window: u64) -> DStream<u64> {
    checkpointed(ssc);
    s.count_by_window(Seconds(window), Seconds(1))
}

fn reduce_by_window_inv(ssc: &StreamingContext, s: DStream<i64>, window: u64) -> DStream<i64> {
    checkpointed(ssc);
    s.reduce_by_window_inv(|a, b| a + b, |a, b| a - b, Seconds(window), Seconds(1))
}

fn reduce_by_key_and_window_inv(
    ssc: &StreamingContext,
    s: DStream<Pair>,
    window: u64,
) -> DStream<Pair> {
    checkpointed(ssc);
    s.reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, Seconds(window), Seconds(1))
}

fn inv_with_filter(ssc: &StreamingContext, s: DStream<Pair>, window: u64) -> DStream<Pair> {
    checkpointed(ssc);
    s.reduce_by_key_and_window_inv_with_filter(
        |a, b| a + b,
        |a, b| a - b,
        Seconds(window),
        Seconds(1),
        |kv: &Pair| kv.1 > 0,
    )
}

fn count_by_value_and_window(
    ssc: &StreamingContext,
    s: DStream<String>,
    window: u64,
) -> DStream<(String, u64)> {
    checkpointed(ssc);
    s.count_by_value_and_window(Seconds(window), Seconds(1))
}

// mapWithState is not in PySpark: its cases were recorded with the Scala API (spark-shell).

#[allow(clippy::ptr_arg)] // `StateSpec` passes `&K`, here `&String`
fn running_sum(k: &String, v: Option<i64>, s: &mut State<i64>) -> Pair {
    let n = v.unwrap_or(0) + s.get_option().copied().unwrap_or(0);
    s.update(n);
    (k.clone(), n)
}

#[allow(clippy::ptr_arg)]
fn running_sum_with_timeout(k: &String, v: Option<i64>, s: &mut State<i64>) -> (String, i64, bool) {
    let n = v.unwrap_or(0) + s.get_option().copied().unwrap_or(0);
    if !s.is_timing_out() {
        s.update(n);
    }
    (k.clone(), n, s.is_timing_out())
}

/// The table: each row is one or more fixture names (files in `tests/conformance/fixtures/`)
/// and the pipeline their inputs go through. Every name becomes a `#[test]` of that name that
/// replays its fixture with [`check`], and is listed in `ASSERTED` for
/// [`every_fixture_is_in_the_table`].
macro_rules! conformance {
    ($( $($case:ident),+ => $build:expr; )*) => {
        $($(
            #[test]
            fn $case() {
                check(stringify!($case), $build);
            }
        )+)*

        /// The fixtures replayed by a test of the same name.
        const ASSERTED: &[&str] = &[$($(stringify!($case),)+)*];
    };
}

conformance! {
    // PySpark and Scala agree on these; where a `_scala` twin was recorded both are asserted.
    count, count_scala => |_, s: DStream<String>, _| s.count();
    count_by_value => |_, s: DStream<String>, _| s.count_by_value();
    reduce, reduce_scala => |_, s: DStream<i64>, _| s.reduce(|a, b| a + b);
    flat_map_filter => |_, s: DStream<String>, _| {
        s.flat_map(|l: String| l.split(' ').map(str::to_owned).collect::<Vec<_>>())
            .filter(|w| !w.is_empty())
    };
    reduce_by_key => |_, s: DStream<Pair>, _| s.reduce_by_key(|a, b| a + b);
    group_by_key => |_, s: DStream<Pair>, _| s.group_by_key().map_values(sorted);
    combine_by_key => |_, s: DStream<Pair>, _| {
        s.combine_by_key(
            |v| (v, 1),
            |c, v| (c.0 + v, c.1 + 1),
            |a, b| (a.0 + b.0, a.1 + b.1),
        )
    };
    map_values => |_, s: DStream<Pair>, _| s.map_values(|v| v * 10);
    flat_map_values => |_, s: DStream<Pair>, _| s.flat_map_values(|v| [v, v + 1]);
    join => |ssc, s: DStream<Pair>, other| s.join(&ssc.queue_stream(other));
    left_outer_join => |ssc, s: DStream<Pair>, other| s.left_outer_join(&ssc.queue_stream(other));
    right_outer_join => |ssc, s: DStream<Pair>, other| {
        s.right_outer_join(&ssc.queue_stream(other))
    };
    full_outer_join => |ssc, s: DStream<Pair>, other| s.full_outer_join(&ssc.queue_stream(other));
    cogroup => |ssc, s: DStream<Pair>, other| {
        s.cogroup(&ssc.queue_stream(other))
            .map_values(|(a, b)| (sorted(a), sorted(b)))
    };
    union => |ssc, s: DStream<String>, other| s.union(&ssc.queue_stream(other)).count_by_value();

    window_3_1 => |_, s: DStream<String>, _| s.window_with_slide(Seconds(3), Seconds(1));
    window_4_2 => |_, s: DStream<String>, _| s.window_with_slide(Seconds(4), Seconds(2));
    window_3_scala => |_, s: DStream<String>, _| s.window(Seconds(3));
    reduce_by_window_3_1 => |_, s: DStream<i64>, _| {
        s.reduce_by_window(|a, b| a + b, Seconds(3), Seconds(1))
    };
    reduce_by_key_and_window_3_1 => |_, s: DStream<Pair>, _| {
        s.reduce_by_key_and_window(|a, b| a + b, Seconds(3), Seconds(1))
    };
    // Scala's groupByKeyAndWindow is a window then a grouping; PySpark's agrees on windows
    // shorter than five slides.
    group_by_key_and_window_3_1, group_by_key_and_window_3_1_scala => |_, s: DStream<Pair>, _| {
        s.group_by_key_and_window(Seconds(3), Seconds(1))
            .map_values(sorted)
    };
    // PySpark keeps keys whose group emptied, as `(k, [])` (`group_by_key_and_window_5_1`,
    // index 7 `["b", []]`); Scala has no such keys.
    group_by_key_and_window_5_1_scala => |_, s: DStream<Pair>, _| {
        s.group_by_key_and_window(Seconds(5), Seconds(1))
            .map_values(sorted)
    };

    // With an inverse function windows are incremental, as in Spark's Scala engine: keys at
    // zero are kept unless filtered, and an emptied `count_by_window` gives `[0]`. PySpark
    // recomputes windows shorter than five slides instead, so for those the `_scala` twins are
    // asserted (see `PYSPARK_RECORDS`); for five slides or more both engines agree and both
    // fixtures are.
    count_by_window_3_1_scala => |ssc, s, _| count_by_window(ssc, s, 3);
    reduce_by_window_inv_3_1_scala => |ssc, s, _| reduce_by_window_inv(ssc, s, 3);
    reduce_by_key_and_window_inv_3_1_scala => |ssc, s, _| reduce_by_key_and_window_inv(ssc, s, 3);
    reduce_by_key_and_window_inv_filter_3_1,
    reduce_by_key_and_window_inv_filter_3_1_scala => |ssc, s, _| inv_with_filter(ssc, s, 3);
    count_by_value_and_window_3_1,
    count_by_value_and_window_3_1_scala => |ssc, s, _| count_by_value_and_window(ssc, s, 3);
    course_window_6_4_scala => |ssc, s: DStream<String>, _| {
        checkpointed(ssc);
        s.map(|w| (w, 1i64)).reduce_by_key_and_window_inv(
            |a, b| a + b,
            |a, b| a - b,
            Seconds(6),
            Seconds(4),
        )
    };
    count_by_window_5_1, count_by_window_5_1_scala => |ssc, s, _| count_by_window(ssc, s, 5);
    reduce_by_window_inv_5_1, reduce_by_window_inv_5_1_scala => |ssc, s, _| {
        reduce_by_window_inv(ssc, s, 5)
    };
    reduce_by_key_and_window_inv_5_1,
    reduce_by_key_and_window_inv_5_1_scala => |ssc, s, _| reduce_by_key_and_window_inv(ssc, s, 5);
    reduce_by_key_and_window_inv_filter_5_1,
    reduce_by_key_and_window_inv_filter_5_1_scala => |ssc, s, _| inv_with_filter(ssc, s, 5);
    count_by_value_and_window_5_1_scala => |ssc, s, _| count_by_value_and_window(ssc, s, 5);

    update_state_running_sum => |ssc, s: DStream<Pair>, _| {
        checkpointed(ssc);
        s.update_state_by_key(|vals: Vec<i64>, st: Option<i64>| {
            Some(vals.iter().sum::<i64>() + st.unwrap_or(0))
        })
    };
    update_state_remove_idle => |ssc, s: DStream<Pair>, _| {
        checkpointed(ssc);
        s.update_state_by_key(|vals: Vec<i64>, st: Option<i64>| {
            (!vals.is_empty()).then(|| vals.iter().sum::<i64>() + st.unwrap_or(0))
        })
    };

    map_with_state_running_sum => |ssc, s: DStream<Pair>, _| {
        checkpointed(ssc);
        s.map_with_state(StateSpec::function(running_sum)).into_dstream()
    };
    map_with_state_snapshots => |ssc, s: DStream<Pair>, _| {
        checkpointed(ssc);
        s.map_with_state(StateSpec::function(running_sum)).state_snapshots()
    };
    map_with_state_timeout => |ssc, s: DStream<Pair>, _| {
        checkpointed(ssc);
        s.map_with_state(StateSpec::function(running_sum_with_timeout).timeout(Seconds(2)))
            .into_dstream()
    };
    map_with_state_timeout_snapshots => |ssc, s: DStream<Pair>, _| {
        checkpointed(ssc);
        s.map_with_state(StateSpec::function(running_sum_with_timeout).timeout(Seconds(2)))
            .state_snapshots()
    };
    map_with_state_timeout_checkpoint_1s => |ssc, s: DStream<Pair>, _| {
        checkpointed(ssc);
        let mapped =
            s.map_with_state(StateSpec::function(running_sum_with_timeout).timeout(Seconds(2)));
        mapped.checkpoint(Seconds(1));
        mapped.into_dstream()
    };
    map_with_state_timeout_checkpoint_1s_snapshots => |ssc, s: DStream<Pair>, _| {
        checkpointed(ssc);
        let mapped =
            s.map_with_state(StateSpec::function(running_sum_with_timeout).timeout(Seconds(2)));
        mapped.checkpoint(Seconds(1));
        mapped.state_snapshots()
    };
}

/// PySpark fixtures kept as a record of where PySpark's engine differs from Scala's, which the
/// runtime follows (see `tests/conformance/README.md`, "Spark behaviour worth knowing"): each
/// with its asserted Scala twin, recorded from the same inputs.
const PYSPARK_RECORDS: &[(&str, &str)] = &[
    // PySpark recomputes windows shorter than five slides: no inverse, no zero keys, `[]`.
    ("count_by_window_3_1", "count_by_window_3_1_scala"),
    ("reduce_by_window_inv_3_1", "reduce_by_window_inv_3_1_scala"),
    (
        "reduce_by_key_and_window_inv_3_1",
        "reduce_by_key_and_window_inv_3_1_scala",
    ),
    ("course_window_6_4", "course_window_6_4_scala"),
    // PySpark's groupByKeyAndWindow keeps emptied groups as `(k, [])`.
    (
        "group_by_key_and_window_5_1",
        "group_by_key_and_window_5_1_scala",
    ),
];

/// The fixture names (file stems) in `tests/conformance/fixtures/`, sorted.
fn fixture_names() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/fixtures");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut names: Vec<String> = entries
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A newly recorded fixture cannot be skipped silently: every file in the fixtures folder is
/// either replayed by a test of its name or a PySpark record of a difference, and every name
/// in the table has its file.
#[test]
fn every_fixture_is_in_the_table() {
    let files = fixture_names();
    let mut table: Vec<&str> = ASSERTED.to_vec();
    table.extend(PYSPARK_RECORDS.iter().map(|(case, _)| *case));
    let uncovered: Vec<&String> = files
        .iter()
        .filter(|f| !table.contains(&f.as_str()))
        .collect();
    assert!(
        uncovered.is_empty(),
        "fixtures not in the conformance table: {uncovered:?}; add a row to `conformance!` in \
         tests/it/conformance.rs (or, for a PySpark record of a difference, to `PYSPARK_RECORDS`)"
    );
    let missing: Vec<&&str> = table
        .iter()
        .filter(|c| !files.iter().any(|f| f == *c))
        .collect();
    assert!(
        missing.is_empty(),
        "conformance table rows without a file in tests/conformance/fixtures/: {missing:?}"
    );
    let mut seen = table.clone();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        seen.len(),
        table.len(),
        "a fixture is in the conformance table twice"
    );
}

/// A PySpark record is left unasserted only while it really differs from its asserted Scala
/// twin on the same inputs; if a re-recording makes them agree, it must be asserted too.
#[test]
fn pyspark_records_differ_from_their_asserted_scala_twin() {
    for (case, twin) in PYSPARK_RECORDS {
        assert!(
            ASSERTED.contains(twin),
            "PySpark record `{case}`: its twin `{twin}` is not asserted by the conformance table"
        );
        let (pyspark, scala) = (load(case), load(twin));
        assert_eq!(
            (pyspark.batch_seconds, &pyspark.inputs),
            (scala.batch_seconds, &scala.inputs),
            "PySpark record `{case}`: inputs differ from its twin `{twin}`'s"
        );
        let outputs = |f: Fixture| -> Vec<(u64, Vec<Value>)> {
            f.outputs
                .into_iter()
                .map(|(i, e)| (i, canonical(e)))
                .collect()
        };
        assert_ne!(
            outputs(pyspark),
            outputs(scala),
            "PySpark record `{case}` now agrees with `{twin}`: move it to `conformance!`"
        );
    }
}
