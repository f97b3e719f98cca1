//! Spark's API forms a job may need, checked against the expected outputs of Spark's own
//! `BasicOperationsSuite` (updateStateByKey with time stamps, the iterator form, the object
//! lifecycle with input streams returning None, `StreamingContext.union` / `.transform`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cargo_stream_runtime::prelude::*;
use cargo_stream_runtime::{Data, ManualClock, UpdateInput};

type Out<T> = Vec<(u64, Vec<T>)>;

/// Runs `build` on a custom input giving `inputs[i]` at batch i + 1 (`None`: no batch, as
/// `null` in Spark's `TestInputStream`), for `batches` one-second batches; each output batch
/// sorted, with its index. The error of the first failed batch, if any.
fn run<I: Data, O: Data + Ord>(
    inputs: Vec<Option<Vec<I>>>,
    batches: u64,
    build: impl FnOnce(&StreamingContext, DStream<I>) -> DStream<O>,
) -> Result<Out<O>, Error> {
    let clock = ManualClock::new();
    let conf = StreamingConf::new("spark-api")
        .master("local[2]")
        .stop_on_signal(false)
        .manual_clock(clock.clone());
    let ssc = StreamingContext::new(conf, Seconds(1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    ssc.checkpoint(dir.path()).unwrap();
    let input = ssc.input_stream(move |t: Time| {
        let i = (t.millis() / 1000) as usize;
        inputs.get(i - 1).cloned().unwrap_or(Some(Vec::new()))
    });
    let out = build(&ssc, input);
    let seen: Arc<Mutex<Out<O>>> = Arc::default();
    let sink = seen.clone();
    out.foreach_rdd(move |b, t| {
        let mut v = b.collect();
        v.sort();
        sink.lock().unwrap().push((t.millis() / 1000, v));
    })
    .unwrap();
    ssc.start().unwrap();
    for i in 1..=batches {
        clock.advance(Seconds(1));
        if let Err(e) = ssc.await_batch(Time::from_millis(i * 1000), Duration::from_secs(30)) {
            let _ = ssc.stop(false);
            return Err(e);
        }
    }
    ssc.stop(false).unwrap();
    // A failed batch stopped the context with its error.
    ssc.await_termination()?;
    let out = std::mem::take(&mut *seen.lock().unwrap());
    Ok(out)
}

fn words(batches: &[&[&str]]) -> Vec<Option<Vec<String>>> {
    batches
        .iter()
        .map(|b| Some(b.iter().map(|w| w.to_string()).collect()))
        .collect()
}

fn pairs<S: Clone>(v: &[(&str, S)]) -> Vec<(String, S)> {
    v.iter().map(|(k, s)| (k.to_string(), s.clone())).collect()
}

fn indexed<T>(batches: Vec<Vec<T>>) -> Out<T> {
    (1..).zip(batches).collect()
}

/// Asserts that `out` has a batch a second from the first, `batches[i]` (the keys as `&str`)
/// at batch i + 1.
#[track_caller]
fn assert_pairs<S: Clone + PartialEq + std::fmt::Debug>(
    out: Out<(String, S)>,
    batches: &[&[(&str, S)]],
) {
    assert_eq!(out, indexed(batches.iter().map(|b| pairs(b)).collect()));
}

/// The input of Spark's `StreamingContext.union` and `.transform` tests: four numbers a batch,
/// which the tests read three times, shifted by 0, 4 and 8.
fn three_batches() -> Vec<Option<Vec<i32>>> {
    vec![
        Some((1..=4).collect()),
        Some((101..=104).collect()),
        Some((201..=204).collect()),
    ]
}

/// What the three shifted readings of [`three_batches`] hold together.
fn three_batches_shifted() -> Out<i32> {
    indexed(vec![
        (1..=12).collect(),
        (101..=112).collect(),
        (201..=212).collect(),
    ])
}

/// The input of Spark's `updateStateByKey` tests.
fn abc() -> Vec<Option<Vec<String>>> {
    words(&[
        &["a"],
        &["a", "b"],
        &["a", "b", "c"],
        &["a", "b"],
        &["a"],
        &[],
    ])
}

#[test]
fn update_state_by_key_testing_time_stamps_as_input() {
    let out = run(abc(), 6, |_, s| {
        s.map(|w| (w, 1)).update_state_by_key_with_time(
            |time: Time, _: &String, values: Vec<i32>, state: Option<u64>| {
                // Update only if we receive values for this key during the batch.
                if values.is_empty() {
                    Some(state.unwrap_or(0))
                } else {
                    Some(time.millis() + state.unwrap_or(0))
                }
            },
            None,
            pairs(&[("a", 0u64), ("c", 0)]),
        )
    })
    .unwrap();
    assert_pairs(
        out,
        &[
            &[("a", 1000u64), ("c", 0)],
            &[("a", 3000), ("b", 2000), ("c", 0)],
            &[("a", 6000), ("b", 5000), ("c", 3000)],
            &[("a", 10000), ("b", 9000), ("c", 3000)],
            &[("a", 15000), ("b", 9000), ("c", 3000)],
            &[("a", 15000), ("b", 9000), ("c", 3000)],
        ],
    );
}

#[test]
fn update_state_by_key_iterator_form_with_initial_value() {
    let out = run(abc(), 6, |_, s| {
        s.map(|w| (w, 1)).update_state_by_key_iter(
            |keys: UpdateInput<String, i32, i32>| {
                keys.map(|(k, values, state)| (k, values.iter().sum::<i32>() + state.unwrap_or(0)))
            },
            Some(3),
            pairs(&[("a", 1), ("c", 2)]),
        )
    })
    .unwrap();
    assert_pairs(
        out,
        &[
            &[("a", 2), ("c", 2)],
            &[("a", 3), ("b", 1), ("c", 2)],
            &[("a", 4), ("b", 2), ("c", 3)],
            &[("a", 5), ("b", 3), ("c", 3)],
            &[("a", 6), ("b", 3), ("c", 3)],
            &[("a", 6), ("b", 3), ("c", 3)],
        ],
    );
}

#[test]
fn the_iterator_form_may_return_keys_of_other_partitions() {
    // Each key is renamed: the new keys hash to other partitions and must be found there.
    let out = run(words(&[&["a", "b", "c", "d"], &["a1"]]), 2, |_, s| {
        s.map(|w| (w, 1)).update_state_by_key_iter(
            |keys: UpdateInput<String, i32, i32>| {
                keys.map(|(k, values, state)| {
                    let k = if k.len() == 1 { format!("{k}1") } else { k };
                    (k, values.len() as i32 + state.unwrap_or(0))
                })
            },
            Some(4),
            Vec::new(),
        )
    })
    .unwrap();
    assert_eq!(
        out[1],
        (2, pairs(&[("a1", 2), ("b1", 1), ("c1", 1), ("d1", 1)]))
    );
}

#[test]
fn update_state_by_key_object_lifecycle_with_input_stream_returning_none() {
    let mut input = words(&[&["a", "b"], &[], &["a", "c", "a"], &["c"]]);
    input[1] = None;
    input.push(None);
    input.push(None);
    let out = run(input, 6, |_, s| {
        // (counter, expire counter): a state is dropped when seen twice in a row without
        // new values.
        s.map(|w| (w, 1))
            .update_state_by_key(|values: Vec<i32>, state: Option<(i32, i32)>| {
                let (mut counter, mut expire) = state.unwrap_or((0, 0));
                match values.iter().sum::<i32>() {
                    0 => expire += 1,
                    n => {
                        counter += n;
                        expire = 0;
                    }
                }
                (expire != 2).then_some((counter, expire))
            })
            .map_values(|(counter, _)| counter)
    })
    .unwrap();
    assert_pairs(
        out,
        &[
            &[("a", 1), ("b", 1)],
            &[("a", 1), ("b", 1)],
            &[("a", 3), ("c", 1)],
            &[("a", 3), ("c", 2)],
            &[("c", 2)],
            &[],
        ],
    );
}

#[test]
fn no_batch_before_any_state_gives_no_state_batch() {
    // Spark's StateDStream: no previous state and no parent batch: nothing at all.
    let out = run(vec![None, Some(vec![1])], 2, |_, s| {
        s.map(|x| (x, 1))
            .update_state_by_key(|v: Vec<i32>, s: Option<i32>| {
                Some(v.len() as i32 + s.unwrap_or(0))
            })
    })
    .unwrap();
    assert_eq!(out, vec![(2, vec![(1, 1)])]);
}

#[test]
fn downstream_of_an_input_with_no_batch_produces_nothing_for_that_time() {
    let out = run(vec![Some(vec![1, 2]), None, Some(vec![3])], 3, |_, s| {
        s.map(|x| x * 10).filter(|x| *x > 0)
    })
    .unwrap();
    assert_eq!(out, vec![(1, vec![10, 20]), (3, vec![30])]);
}

#[test]
fn map_with_state_sees_the_time_and_drops_none() {
    let out = run(
        words(&[&["a"], &["a", "b"], &["a", "b"], &["b"]]),
        4,
        |_, s| {
            // Emit a word with the batch time when it has been seen twice; nothing otherwise.
            let spec = StateSpec::function_with_time(
                |time: Time, w: &String, _: Option<i32>, seen: &mut State<u32>| {
                    let n = seen.get_option().copied().unwrap_or(0) + 1;
                    seen.update(n);
                    (n == 2).then(|| (w.clone(), time.millis()))
                },
            );
            s.map(|w| (w, 1)).map_with_state(spec).into_dstream()
        },
    )
    .unwrap();
    assert_pairs(out, &[&[], &[("a", 2000u64)], &[("b", 3000)], &[]]);
}

#[test]
fn map_with_state_takes_no_batch_as_an_empty_one() {
    // Spark's InternalMapWithStateDStream: no parent batch is an empty one; the state stays.
    let out = run(vec![Some(vec!["a".to_string()]), None], 2, |_, s| {
        let spec = StateSpec::function(|_: &String, v: Option<i32>, st: &mut State<i32>| {
            st.update(v.unwrap_or(0));
            v
        });
        s.map(|w| (w, 1)).map_with_state(spec).state_snapshots()
    })
    .unwrap();
    assert_pairs(out, &[&[("a", 1)], &[("a", 1)]]);
}

#[test]
fn streaming_context_union() {
    let input = three_batches();
    let out = run(input, 3, |ssc, s| {
        ssc.union(vec![s.clone(), s.map(|x| x + 4), s.map(|x| x + 8)])
    })
    .unwrap();
    assert_eq!(out, three_batches_shifted());
}

#[test]
fn streaming_context_union_with_input_stream_return_none_fails() {
    let input = vec![Some(vec![1]), Some(vec![101]), Some(vec![201]), None];
    let err = run(input, 4, |ssc, s| {
        ssc.union(vec![s.clone(), s.map(|x| x + 4)])
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("Could not generate RDD from a parent for unifying at time 4000 ms"),
        "{err}"
    );
}

#[test]
fn streaming_context_transform() {
    let input = three_batches();
    let out = run(input.clone(), 3, |ssc, s| {
        ssc.transform(
            vec![s.clone(), s.map(|x| x + 4), s.map(|x| x + 8)],
            |batches: Vec<Batch<i32>>, _| {
                let mut all = batches[0].empty();
                for b in batches {
                    all = all.union(b);
                }
                all
            },
        )
    })
    .unwrap();
    assert_eq!(out, three_batches_shifted());
    let mut none = input;
    none.push(None);
    let err = run(none, 4, |ssc, s| {
        ssc.transform(vec![s.clone()], |mut b: Vec<Batch<i32>>, _| b.remove(0))
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("Couldn't generate RDD from parent at time 4000 ms"),
        "{err}"
    );
}

#[test]
#[should_panic(expected = "requirement failed: List of DStreams to union is empty")]
fn an_empty_union_fails_where_it_is_built() {
    let ssc =
        StreamingContext::new(StreamingConf::new("u").master("local[2]"), Seconds(1)).unwrap();
    let _ = ssc.union(Vec::<DStream<i32>>::new());
}

#[test]
#[should_panic(
    expected = "requirement failed: Some of the DStreams have different slide durations"
)]
fn a_union_of_different_slides_fails_where_it_is_built() {
    let ssc =
        StreamingContext::new(StreamingConf::new("u").master("local[2]"), Seconds(1)).unwrap();
    let s = ssc.queue_stream(vec![vec![1]]);
    let _ = ssc.union(vec![s.clone(), s.window_with_slide(Seconds(2), Seconds(2))]);
}

#[test]
fn reference_data_made_once_joins_every_batch() {
    let out = run(words(&[&["fr", "de"], &["fr", "it"]]), 2, |ssc, s| {
        let names = ssc.parallelize(
            vec![("fr".to_string(), "France"), ("de".to_string(), "Germany")],
            2,
        );
        assert_eq!((names.count(), names.num_partitions()), (2, 2));
        s.map(|w| (w, 1))
            .transform(move |b| b.join(names.batch(), None).map(|(_, (_, n))| n))
    })
    .unwrap();
    assert_eq!(
        out,
        indexed(vec![vec!["France", "Germany"], vec!["France"]])
    );
}

#[test]
fn sort_by_key_in_transform_gives_a_sorted_batch() {
    let out = run(
        vec![Some(vec![(3, "c"), (1, "a"), (2, "b"), (5, "e"), (4, "d")])],
        1,
        |_, s| {
            s.transform(|b| {
                b.sort_by_key_with_partitions(false, 2)
                    .glom()
                    .map(|p| p.into_iter().map(|(k, _)| k).collect::<Vec<_>>())
            })
        },
    )
    .unwrap();
    // Partitions are consecutive ranges of the descending order.
    assert_eq!(out, vec![(1, vec![vec![3, 2, 1], vec![5, 4]])]);
}

#[test]
fn state_get_without_state_fails_the_batch_naming_what_to_call() {
    let err = run(words(&[&["a"]]), 1, |_, s| {
        let spec = StateSpec::function(|_: &String, v: Option<i32>, st: &mut State<i32>| {
            let before = *st.get();
            st.update(before + v.unwrap_or(0));
            before
        });
        s.map(|w| (w, 1)).map_with_state(spec).into_dstream()
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("State is not set") && err.contains("call `state.get_option()`"),
        "{err}"
    );
}
