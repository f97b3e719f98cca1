//! Windows across a restart: a job stopped in the middle of its windows and restarted from its
//! checkpoint produces what a run without a restart produces. Spark's `CheckpointSuite` window
//! cases, then every window fixture of the conformance suite restarted after each batch.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cargo_stream_runtime::prelude::*;
use cargo_stream_runtime::{Data, ManualClock, Time};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::conformance::{Pair, canonical, load, sorted, typed};

type Outputs = Vec<(u64, Vec<Value>)>;

/// The newest batch a checkpoint in `dir` covers, as a batch index (0: none).
fn checkpointed_batch(dir: &Path, interval_ms: u64) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("checkpoint-")?.parse::<u64>().ok()
        })
        .max()
        .map_or(0, |ms| ms / interval_ms)
}

/// A job replayed across restarts: its batch interval, its input (a replayable source, as
/// Spark's suite assumes; `inputs[i]` is batch i + 1), how many batches apart it checkpoints,
/// and its pipeline.
struct Job<'a, I, O> {
    interval: Duration,
    inputs: &'a [Vec<I>],
    every: u32,
    build: &'a dyn Fn(DStream<I>) -> DStream<O>,
}

impl<I: Data, O: Data + Serialize> Job<'_, I, O> {
    /// One life of the job: restored from `dir` if it holds a checkpoint, fed from batch
    /// `first` on, run through batch `last`, then stopped without draining (a crash: what was
    /// not checkpointed is lost). Returns (batch index, canonical elements) per output.
    fn life(&self, dir: &Path, first: u64, last: u64) -> Outputs {
        let interval = self.interval;
        let ms = interval.as_millis() as u64;
        let clock = ManualClock::new();
        clock.advance(Duration::from_millis((first - 1) * ms));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let ssc = StreamingContext::get_or_create(dir, || {
            let conf = StreamingConf::new("window-recovery")
                .master("local[2]")
                .manual_clock(clock.clone())
                .stop_on_signal(false);
            let ssc = StreamingContext::new(conf, interval)?;
            let input = ssc.queue_stream(self.inputs[(first - 1) as usize..].to_vec());
            input.checkpoint(interval * self.every);
            (self.build)(input).foreach_rdd(move |b, t| {
                let elements = b
                    .collect()
                    .iter()
                    .map(|o| serde_json::to_value(o).unwrap())
                    .collect();
                sink.lock()
                    .unwrap()
                    .push((t.millis() / ms, canonical(elements)));
            })?;
            Ok(ssc)
        })
        .unwrap();
        ssc.start().unwrap();
        for i in first..=last {
            clock.advance(interval);
            let done = ssc
                .await_batch(Time::from_millis(i * ms), Duration::from_secs(60))
                .unwrap();
            assert!(done, "batch {i} did not complete");
        }
        ssc.stop(false).unwrap();
        std::mem::take(&mut *seen.lock().unwrap())
    }

    /// Runs batches 1..=`stop_after`, crashes, restarts from the newest checkpoint and runs to
    /// `total`; checks each life's outputs against `expected` (a run without a restart).
    /// Returns the batch the second life started from.
    fn restarted(&self, what: &str, total: u64, stop_after: u64, expected: &Outputs) -> u64 {
        let every = self.every;
        let dir = tempfile::tempdir().unwrap();
        let before = self.life(dir.path(), 1, stop_after);
        let resumed = checkpointed_batch(dir.path(), self.interval.as_millis() as u64) + 1;
        let after = self.life(dir.path(), resumed, total);
        let part = |from: u64, to: u64| -> Outputs {
            expected
                .iter()
                .filter(|(i, _)| (from..=to).contains(i))
                .map(|(i, e)| (*i, canonical(e.clone())))
                .collect()
        };
        assert_eq!(
            before,
            part(1, stop_after),
            "{what}: before the crash after batch {stop_after} (checkpointed every {every})"
        );
        assert_eq!(
            after,
            part(resumed, total),
            "{what}: after the crash after batch {stop_after}, restarted at batch {resumed} (checkpointed every {every})"
        );
        resumed
    }
}

fn json<T: Serialize>(outputs: Vec<(u64, Vec<T>)>) -> Outputs {
    outputs
        .into_iter()
        .map(|(i, e)| {
            (
                i,
                e.iter().map(|x| serde_json::to_value(x).unwrap()).collect(),
            )
        })
        .collect()
}

// Spark's CheckpointSuite, "recovery with invertible reduceByKeyAndWindow operation": ten
// batches of one "a", a 4-batch incremental window checkpointed every 2 batches, the job
// failing after batch 7; the batch not checkpointed (7) is processed again after the restart.
#[test]
fn recovery_with_invertible_reduce_by_key_and_window() {
    let interval = Duration::from_millis(500);
    let (n, w) = (10u64, 4u64);
    let input: Vec<Vec<String>> = (0..n).map(|_| vec!["a".to_string()]).collect();
    let mut output: Vec<Vec<(String, i64)>> =
        (1..w).map(|i| vec![("a".into(), i as i64)]).collect();
    output.extend((0..=n - w).map(|_| vec![("a".to_string(), w as i64)]));
    let expected = json((1..=n).zip(output).collect());
    let job = Job {
        interval,
        inputs: &input,
        every: 2,
        build: &|s: DStream<String>| {
            let out = s.map(|x| (x, 1i64)).reduce_by_key_and_window_inv(
                |a, b| a + b,
                |a, b| a - b,
                interval * w as u32,
                interval,
            );
            out.checkpoint(interval * 2);
            out
        },
    };
    let resumed = job.restarted(
        "recovery with invertible reduceByKeyAndWindow",
        n,
        7,
        &expected,
    );
    assert_eq!(
        resumed, 7,
        "the last batch before the failure is processed again"
    );
}

// Spark's CheckpointSuite, "recovery with file input stream": a window of 30 batches summing
// the numbers in new files (file `i` holds `i`, one a batch); the job fails while processing
// batch 3, so after the restart the window must still hold files 1 and 2 (checkpointed) and
// read file 3 again. Spark asserts the set {1, 3, 6, 10, 15, 21, 28, 36, 45}; here the files
// come one a batch after the restart too (Spark's variant also writes files while the driver
// is down, which tests the batches a restarted Spark makes up for the downtime, not windows),
// so the outputs are exactly that sequence.
#[test]
fn recovery_with_file_input_stream() {
    let interval = Duration::from_secs(1);
    let files = tempfile::tempdir().unwrap();
    let checkpoints = tempfile::tempdir().unwrap();
    let run = |first: u64, last: u64, fail_on_3: bool| {
        let clock = ManualClock::new();
        clock.advance(interval * (first - 1) as u32);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let ssc = StreamingContext::get_or_create(checkpoints.path(), || {
            let conf = StreamingConf::new("window-recovery-files")
                .master("local[2]")
                .manual_clock(clock.clone())
                .stop_on_signal(false);
            let ssc = StreamingContext::new(conf, interval)?;
            let sums = ssc
                .text_file_stream(files.path())
                .map(move |line: String| {
                    let i: u64 = line.trim().parse().unwrap();
                    assert!(!(fail_on_3 && i == 3), "the driver fails during batch 3");
                    i
                })
                .reduce_by_window(|a, b| a + b, interval * 30, interval);
            sums.checkpoint(interval);
            sums.foreach_rdd(move |b, t| {
                sink.lock().unwrap().push((t.millis() / 1000, b.collect()))
            })?;
            Ok(ssc)
        })
        .unwrap();
        ssc.start().unwrap();
        for batch in first..=last {
            let file = files.path().join(batch.to_string());
            if !file.exists() {
                let tmp = files.path().join(format!(".{batch}"));
                let mut f = std::fs::File::create(&tmp).unwrap();
                writeln!(f, "{batch}").unwrap();
                drop(f);
                std::fs::rename(&tmp, &file).unwrap();
            }
            clock.advance(interval);
            let done = ssc.await_batch(Time::from_millis(batch * 1000), Duration::from_secs(60));
            if fail_on_3 && batch == 3 {
                let failed = ssc.await_termination_or_timeout(Duration::from_secs(60));
                let err = failed.unwrap_err().to_string();
                assert!(err.contains("the driver fails during batch 3"), "{err}");
                break;
            }
            assert!(done.unwrap(), "batch {batch} did not complete");
        }
        let _ = ssc.stop(false);
        std::mem::take(&mut *seen.lock().unwrap())
    };
    let before = run(1, 3, true);
    assert_eq!(before, vec![(1, vec![1]), (2, vec![3])]);
    assert_eq!(checkpointed_batch(checkpoints.path(), 1000), 2);
    let after = run(3, 9, false);
    let expected: Vec<(u64, Vec<u64>)> = [6, 10, 15, 21, 28, 36, 45]
        .into_iter()
        .zip(3..)
        .map(|(sum, batch)| (batch, vec![sum]))
        .collect();
    assert_eq!(after, expected);
}

/// A conformance case stopped after each batch in turn, checkpointed every batch and then every
/// two, restarted: both lives' outputs must be Spark's, recorded without a restart.
fn every_restart<I, O>(case: &str, build: impl Fn(DStream<I>) -> DStream<O>)
where
    I: Data + DeserializeOwned,
    O: Data + Serialize,
{
    let f = load(case);
    let inputs: Vec<Vec<I>> = typed(&f.inputs);
    let total = inputs.len() as u64;
    let interval = Duration::from_secs(f.batch_seconds);
    for every in [1, 2] {
        let job = Job {
            interval,
            inputs: &inputs,
            every,
            build: &build,
        };
        for stop_after in 1..total {
            job.restarted(case, total, stop_after, &f.outputs);
        }
    }
}

fn sum(a: i64, b: i64) -> i64 {
    a + b
}

fn minus(a: i64, b: i64) -> i64 {
    a - b
}

#[test]
fn incremental_windows_restart_anywhere() {
    every_restart("count_by_window_3_1_scala", |s: DStream<String>| {
        s.count_by_window(Seconds(3), Seconds(1))
    });
    every_restart("reduce_by_window_inv_3_1_scala", |s: DStream<i64>| {
        s.reduce_by_window_inv(sum, minus, Seconds(3), Seconds(1))
    });
    every_restart(
        "reduce_by_key_and_window_inv_3_1_scala",
        |s: DStream<Pair>| s.reduce_by_key_and_window_inv(sum, minus, Seconds(3), Seconds(1)),
    );
    every_restart(
        "reduce_by_key_and_window_inv_filter_5_1_scala",
        |s: DStream<Pair>| {
            s.reduce_by_key_and_window_inv_with_filter(sum, minus, Seconds(5), Seconds(1), |kv| {
                kv.1 > 0
            })
        },
    );
    every_restart(
        "count_by_value_and_window_5_1_scala",
        |s: DStream<String>| s.count_by_value_and_window(Seconds(5), Seconds(1)),
    );
}

#[test]
fn windows_sliding_slower_than_the_batches_keep_their_times_across_a_restart() {
    // 2 s batches, a 6 s window every 4 s: outputs only at even batches, before and after a
    // restart at an odd one.
    every_restart("course_window_6_4_scala", |s: DStream<String>| {
        s.map(|w| (w, 1i64))
            .reduce_by_key_and_window_inv(sum, minus, Seconds(6), Seconds(4))
    });
    every_restart("window_4_2", |s: DStream<String>| {
        s.window_with_slide(Seconds(4), Seconds(2))
    });
}

#[test]
fn plain_windows_restart_anywhere() {
    every_restart("window_3_scala", |s: DStream<String>| s.window(Seconds(3)));
    every_restart("reduce_by_window_3_1", |s: DStream<i64>| {
        s.reduce_by_window(sum, Seconds(3), Seconds(1))
    });
    every_restart("reduce_by_key_and_window_3_1", |s: DStream<Pair>| {
        s.reduce_by_key_and_window(sum, Seconds(3), Seconds(1))
    });
    every_restart("group_by_key_and_window_5_1_scala", |s: DStream<Pair>| {
        s.group_by_key_and_window(Seconds(5), Seconds(1))
            .map_values(sorted)
    });
}

#[test]
fn a_restart_long_after_the_checkpoint_reduces_out_every_batch_that_left() {
    // Batches 7 to 20 never ran (the job was down): the first window after the restart holds
    // batch 21 only, so what the restored window held is reduced out, keys kept at zero.
    let interval = Duration::from_secs(1);
    let mut inputs: Vec<Vec<String>> = vec![vec!["a".into(), "b".into()]];
    inputs.extend((2..=6).map(|_| vec!["a".to_string()]));
    inputs.extend((7..=20).map(|_| Vec::new()));
    inputs.push(vec!["a".into()]);
    inputs.push(Vec::new());
    let build = |s: DStream<String>| {
        s.map(|x| (x, 1i64))
            .reduce_by_key_and_window_inv(sum, minus, Seconds(4), Seconds(1))
    };
    let job = Job {
        interval,
        inputs: &inputs,
        every: 2,
        build: &build,
    };
    let dir = tempfile::tempdir().unwrap();
    let before = job.life(dir.path(), 1, 6);
    assert_eq!(before.last().unwrap().0, 6);
    assert_eq!(checkpointed_batch(dir.path(), 1000), 6);
    let after = job.life(dir.path(), 21, 22);
    let expected = json(vec![
        (21, vec![("a".to_string(), 1i64), ("b".to_string(), 0)]),
        (22, vec![("a".to_string(), 1i64), ("b".to_string(), 0)]),
    ]);
    assert_eq!(after, expected);
}
