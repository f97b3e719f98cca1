//! Window operations as a Spark user calls them: durations checked at the call (Spark's
//! constructor checks, with its wording), the one-argument `window`, the filtered incremental
//! window without a `None::<fn ...>`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use cargo_stream_runtime::prelude::*;

use crate::support::context;

/// The panic message of `f`, which must panic.
fn panic_of<R>(f: impl FnOnce() -> R) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f))
        .map(|_| ())
        .expect_err("the call must panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap()
}

#[test]
fn a_window_not_a_multiple_of_the_batch_interval_fails_at_the_call() {
    let ssc = context(1000);
    let s = ssc.queue_stream(vec![vec![("a".to_string(), 1u64)]]);
    let line = line!() + 1;
    let err = panic_of(|| s.window_with_slide(Milliseconds(2500), Seconds(1)));
    assert!(
        err.starts_with(
            "The window duration of windowed DStream (2500 ms) must be a multiple of the slide duration of parent DStream (1000 ms): `window` at "
        ),
        "{err}"
    );
    assert!(err.contains(&format!("windows.rs:{line}:")), "{err}");
    assert!(err.contains("help: use 2000 ms or 3000 ms"), "{err}");

    let line = line!() + 1;
    let err = panic_of(|| s.reduce_by_key_and_window(|a, b| a + b, Seconds(3), Milliseconds(1500)));
    assert!(
        err.starts_with(
            "The slide duration of windowed DStream (1500 ms) must be a multiple of the slide duration of parent DStream (1000 ms): `reduce_by_key_and_window` at "
        ),
        "{err}"
    );
    assert!(err.contains(&format!("windows.rs:{line}:")), "{err}");

    let line = line!() + 1;
    let err = panic_of(|| s.count_by_window(Seconds(0), Seconds(1)));
    assert!(
        err.starts_with(
            "The window duration of windowed DStream (0 ms) must be a multiple of the slide duration of parent DStream (1000 ms) and not zero: `count_by_window` at "
        ),
        "{err}"
    );
    assert!(err.contains(&format!("windows.rs:{line}:")), "{err}");
    assert!(err.contains("help: use 1000 ms"), "{err}");

    // Against the stream's own slide: a window of a window slides by the outer window.
    let outer = s.window_with_slide(Seconds(4), Seconds(2));
    let err = panic_of(|| {
        outer.reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, Seconds(6), Seconds(3))
    });
    assert!(
        err.starts_with(
            "The slide duration of windowed DStream (3000 ms) must be a multiple of the slide duration of parent DStream (2000 ms): `reduce_by_key_and_window_inv` at "
        ),
        "{err}"
    );
}

#[test]
fn a_checkpoint_interval_below_or_off_the_slide_fails_at_the_call() {
    let ssc = context(1000);
    let s = ssc.queue_stream(vec![vec![1u64]]);
    let windowed = s.window_with_slide(Seconds(4), Seconds(2));
    let line = line!() + 1;
    let err = panic_of(|| windowed.checkpoint(Seconds(1)));
    assert!(
        err.starts_with(
            "The checkpoint interval for DStream `window` has been set to 1000 ms which is lower than its slide time (2000 ms). Please set it to at least 2000 ms: `checkpoint` at "
        ),
        "{err}"
    );
    assert!(err.contains(&format!("windows.rs:{line}:")), "{err}");
    let err = panic_of(|| windowed.checkpoint(Seconds(3)));
    assert!(
        err.starts_with(
            "The checkpoint interval for DStream `window` has been set to 3000 ms which is not a multiple of its slide time (2000 ms). Please set it to a multiple of 2000 ms: `checkpoint` at "
        ),
        "{err}"
    );
    assert!(err.contains("help: use 2000 ms or 4000 ms"), "{err}");
    windowed.checkpoint(Seconds(4));
}

#[test]
fn window_with_one_argument_slides_with_its_stream() {
    // Spark's `window(windowDuration)`: the slide is the parent's, here the outer window's 2 s.
    let batches: Vec<Vec<u32>> = (1..=6).map(|i| vec![i]).collect();
    let out = cargo_stream_runtime::example_with(batches, 6, |_, s| {
        s.window_with_slide(Seconds(2), Seconds(2))
            .window(Seconds(4))
    });
    let sorted: Vec<(u64, Vec<u32>)> = out
        .into_iter()
        .map(|(i, mut b)| {
            b.sort();
            (i, b)
        })
        .collect();
    assert_eq!(
        sorted,
        vec![
            (2, vec![1, 2]),
            (4, vec![1, 2, 3, 4]),
            (6, vec![3, 4, 5, 6])
        ]
    );
}

#[test]
fn group_by_key_and_window_needs_no_checkpoint_directory() {
    // Scala's groupByKeyAndWindow is a plain window: nothing to reduce out.
    let ssc = context(100);
    ssc.queue_stream(vec![vec![("a".to_string(), 1u64)]])
        .group_by_key_and_window(Milliseconds(300), Milliseconds(100))
        .print(1)
        .unwrap();
    ssc.start().unwrap();
    ssc.stop(false).unwrap();
}

#[test]
fn incremental_windows_without_a_checkpoint_directory_fail_start() {
    let ssc = context(100);
    let line = line!() + 2;
    ssc.queue_stream(vec![vec![("a".to_string(), 1u64)]])
        .reduce_by_key_and_window_inv_with_filter(
            |a, b| a + b,
            |a, b| a - b,
            Milliseconds(300),
            Milliseconds(100),
            |(_, n)| *n > 0,
        )
        .print(1)
        .unwrap();
    let err = ssc.start().unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "`reduce_by_key_and_window_inv` at runtime/tests/it/windows.rs:{line}:"
        )),
        "{err}"
    );
}
