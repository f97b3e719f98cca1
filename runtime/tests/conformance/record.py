#!/usr/bin/env python3
"""Record Spark Streaming (DStream) per-batch outputs with PySpark as JSON conformance fixtures.

Usage (see README.md in this directory):
    SPARK_LOCAL_IP=127.0.0.1 ~/.cache/cargo-stream/pyspark-4.3.0/bin/python \
        runtime/tests/conformance/record.py [--python-only | --scala-only] [case ...]

With no case arguments every case is recorded.

PySpark cases: one SparkContext (local[2]) is shared; each case gets its own StreamingContext,
fed by ssc.queueStream(..., oneAtATime=True) with one RDD per batch (sc.parallelize(batch, 2),
empty batches included).

Scala cases (mapWithState, which PySpark lacks, and Scala twins of the inverse-window cases):
this script generates a Scala script with the same inputs and runs it with
`$SPARK_HOME/bin/spark-shell -i` (one SparkContext, local[2], one StreamingContext per case,
ssc.queueStream(queue, oneAtATime = true) of sc.parallelize(batch, 2)).

Bindings available to the case expressions:
    words       = ssc.queueStream(<inputs>)                    (strings)
    other_words = ssc.queueStream(<other>)                     (strings)
    ints        = ssc.queueStream(<inputs>)                    (ints)
    lines       = ssc.queueStream(<inputs>)                    (strings)
    pairs       = ssc.queueStream(<inputs>).map(tuple)         ([key, int] lists -> tuples)
    other_pairs = ssc.queueStream(<other>).map(tuple)
"""
import json
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

from pyspark import SparkConf, SparkContext  # noqa: E402
from pyspark.resultiterable import ResultIterable  # noqa: E402
from pyspark.streaming import StreamingContext  # noqa: E402

SPARK_VERSION = "4.3.0"
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")

# ---------------------------------------------------------------------------------------------
# Inputs.  8 "real" batches (keys appear, vanish and come back; empty batches in the middle),
# followed by DRAIN empty batches so that every window (max 4 batches wide) fully drains.
# ---------------------------------------------------------------------------------------------
DRAIN = 4

WORDS = [
    ["a", "b", "a"],
    ["b", "c"],
    [],
    ["a", "a", "d"],
    ["c"],
    [],
    [],
    ["b", "a", "b", "e"],
]
OTHER_WORDS = [
    ["a", "x"],
    [],
    ["b", "b"],
    ["y"],
    [],
    ["c"],
    ["a"],
    [],
]
INTS = [
    [1, 2, 3],
    [4],
    [],
    [5, 6],
    [],
    [7],
    [],
    [8, 9, 10],
]
LINES = [
    ["a b a", "", "c  d"],
    ["b"],
    [],
    ["a  a", " d "],
    ["", "c b"],
    [],
    ["e"],
    ["a b c d e", "a"],
]
PAIRS = [
    [["a", 1], ["b", 2], ["a", 3]],
    [["b", 4], ["c", 5]],
    [],
    [["a", 6], ["a", 7], ["d", 8]],
    [["c", 9]],
    [],
    [],
    [["b", 10], ["a", 11], ["b", 12], ["e", 13]],
]
OTHER_PAIRS = [
    [["a", 100], ["x", 101]],
    [["b", 102], ["b", 103]],
    [["y", 104]],
    [],
    [["c", 105], ["d", 106]],
    [["a", 107]],
    [],
    [["a", 108], ["e", 109], ["z", 110]],
]


def pad(batches):
    return [list(b) for b in batches] + [[] for _ in range(DRAIN)]


# (case, input kind, other kind or None, expression, batch_seconds)
CASES = [
    # --- core ------------------------------------------------------------------------------
    ("count", "words", None, "words.count()", 1),
    ("count_by_value", "words", None, "words.countByValue()", 1),
    ("reduce", "ints", None, "ints.reduce(lambda a,b:a+b)", 1),
    ("flat_map_filter", "lines", None,
     'lines.flatMap(lambda l: l.split(" ")).filter(lambda w: w != "")', 1),
    ("reduce_by_key", "pairs", None, "pairs.reduceByKey(lambda a,b:a+b)", 1),
    ("group_by_key", "pairs", None, "pairs.groupByKey()", 1),
    ("combine_by_key", "pairs", None,
     "pairs.combineByKey(lambda v:(v,1), lambda c,v:(c[0]+v,c[1]+1), "
     "lambda a,b:(a[0]+b[0],a[1]+b[1]))", 1),
    ("map_values", "pairs", None, "pairs.mapValues(lambda v: v*10)", 1),
    ("flat_map_values", "pairs", None, "pairs.flatMapValues(lambda v: [v, v+1])", 1),
    ("join", "pairs", "other_pairs", "pairs.join(other_pairs)", 1),
    ("left_outer_join", "pairs", "other_pairs", "pairs.leftOuterJoin(other_pairs)", 1),
    ("right_outer_join", "pairs", "other_pairs", "pairs.rightOuterJoin(other_pairs)", 1),
    ("full_outer_join", "pairs", "other_pairs", "pairs.fullOuterJoin(other_pairs)", 1),
    ("cogroup", "pairs", "other_pairs", "pairs.cogroup(other_pairs)", 1),
    ("union", "words", "other_words", "words.union(other_words).countByValue()", 1),
    # --- windows / state -------------------------------------------------------------------
    ("window_3_1", "words", None, "words.window(3,1)", 1),
    ("window_4_2", "words", None, "words.window(4,2)", 1),
    ("count_by_window_3_1", "words", None, "words.countByWindow(3,1)", 1),
    ("reduce_by_window_3_1", "ints", None, "ints.reduceByWindow(lambda a,b:a+b, None, 3, 1)", 1),
    ("reduce_by_window_inv_3_1", "ints", None,
     "ints.reduceByWindow(lambda a,b:a+b, lambda a,b:a-b, 3, 1)", 1),
    ("reduce_by_key_and_window_3_1", "pairs", None,
     "pairs.reduceByKeyAndWindow(lambda a,b:a+b, None, 3, 1)", 1),
    ("reduce_by_key_and_window_inv_3_1", "pairs", None,
     "pairs.reduceByKeyAndWindow(lambda a,b:a+b, lambda a,b:a-b, 3, 1)", 1),
    ("reduce_by_key_and_window_inv_filter_3_1", "pairs", None,
     "pairs.reduceByKeyAndWindow(lambda a,b:a+b, lambda a,b:a-b, 3, 1, "
     "filterFunc=lambda kv: kv[1] > 0)", 1),
    ("count_by_value_and_window_3_1", "words", None, "words.countByValueAndWindow(3,1)", 1),
    ("group_by_key_and_window_3_1", "pairs", None, "pairs.groupByKeyAndWindow(3,1)", 1),
    ("course_window_6_4", "words", None,
     "words.map(lambda w:(w,1)).reduceByKeyAndWindow(lambda a,b:a+b, lambda a,b:a-b, 6, 4)", 2),
    ("update_state_running_sum", "pairs", None,
     "pairs.updateStateByKey(lambda vals, st: sum(vals) + (st or 0))", 1),
    ("update_state_remove_idle", "pairs", None,
     "pairs.updateStateByKey(lambda vals, st: None if len(vals)==0 else sum(vals)+(st or 0))", 1),
]

INPUTS = {
    "words": WORDS,
    "other_words": OTHER_WORDS,
    "ints": INTS,
    "lines": LINES,
    "pairs": PAIRS,
    "other_pairs": OTHER_PAIRS,
}


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------
def canon(e):
    return json.dumps(e, sort_keys=True)


def encode(v):
    if isinstance(v, tuple):
        return [encode(x) for x in v]
    if isinstance(v, (ResultIterable, list)):
        return sorted((encode(x) for x in v), key=canon)
    if isinstance(v, dict):
        return {str(k): encode(x) for k, x in v.items()}
    return v


def millis(t):
    return int(round(t.timestamp() * 1000))


# ---------------------------------------------------------------------------------------------
# Running one case
# ---------------------------------------------------------------------------------------------
def make_stream(ssc, sc, kind, batches):
    rdds = [sc.parallelize(b, 2) for b in batches]
    s = ssc.queueStream(rdds, oneAtATime=True)
    if kind in ("pairs", "other_pairs"):
        return s, s.map(tuple)
    return s, s


def run_case(sc, name, kind, other_kind, expr, batch_seconds):
    inputs = pad(INPUTS[kind])
    other = pad(INPUTS[other_kind]) if other_kind else None
    n = len(inputs)
    interval_ms = batch_seconds * 1000

    ssc = StreamingContext(sc, batch_seconds)
    ckpt = tempfile.mkdtemp(prefix="cargo-stream-ckpt-")
    ssc.checkpoint(ckpt)

    raw_in, stream = make_stream(ssc, sc, kind, inputs)
    env = {kind: stream}
    if other_kind:
        _, other_stream = make_stream(ssc, sc, other_kind, other)
        env[other_kind] = other_stream
    result = eval(expr, {"__builtins__": __builtins__}, env)

    outputs = {}  # batch millis -> encoded elements
    taps = []  # (batch millis, raw input elements)

    def collect(t, rdd):
        elems = [] if rdd is None else rdd.collect()
        outputs[millis(t)] = sorted((encode(e) for e in elems), key=canon)

    def tap(t, rdd):
        elems = [] if rdd is None else rdd.collect()
        taps.append((millis(t), elems))

    # Registration order == job order within a batch: when the tap has seen batch k, the case's
    # output job for batch k has already finished.
    result.foreachRDD(collect)
    raw_in.foreachRDD(tap)

    started = time.time()
    ssc.start()
    deadline = started + n * batch_seconds + 120
    while len(taps) < n:
        if time.time() > deadline:
            ssc.stop(stopSparkContext=False, stopGraceFully=False)
            raise RuntimeError(f"{name}: timed out after {len(taps)} of {n} batches")
        time.sleep(0.05)
    ssc.stop(stopSparkContext=False, stopGraceFully=False)
    elapsed = time.time() - started
    shutil.rmtree(ckpt, ignore_errors=True)

    taps = sorted(taps)[:n]
    first = taps[0][0]
    zero = first - interval_ms
    # sanity: batches are consecutive and the queue delivered the inputs in order
    for i, (t, elems) in enumerate(taps):
        if t != first + i * interval_ms:
            raise RuntimeError(f"{name}: non-consecutive batch times {[x for x, _ in taps]}")
        if sorted(map(canon, elems)) != sorted(map(canon, inputs[i])):
            raise RuntimeError(f"{name}: batch {i + 1} input mismatch: {elems} vs {inputs[i]}")

    out = []
    for t in sorted(outputs):
        diff = t - zero
        if diff % interval_ms:
            raise RuntimeError(f"{name}: output time {t} not aligned to zero time {zero}")
        idx = diff // interval_ms
        if idx < 1:
            raise RuntimeError(f"{name}: output before first batch")
        if idx > n:
            continue  # a batch generated after the last input batch, before stop()
        out.append({"index": idx, "elements": outputs[t]})

    fixture = {
        "case": name,
        "spark_version": SPARK_VERSION,
        "batch_seconds": batch_seconds,
        "description": expr,
        "inputs": inputs,
    }
    if other is not None:
        fixture["other"] = other
    fixture["outputs"] = out
    return fixture, elapsed


def write_fixture(fixture):
    os.makedirs(FIXTURES, exist_ok=True)
    path = os.path.join(FIXTURES, fixture["case"] + ".json")
    lines = ["{"]
    head = [(k, fixture[k]) for k in fixture if k != "outputs"]
    for k, v in head:
        if k in ("inputs", "other"):
            body = ",\n    ".join(json.dumps(b) for b in v)
            lines.append(f'  "{k}": [\n    {body}\n  ],')
        else:
            lines.append(f'  "{k}": {json.dumps(v)},')
    outs = ",\n    ".join(json.dumps(o) for o in fixture["outputs"])
    lines.append(f'  "outputs": [\n    {outs}\n  ]')
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # must round-trip
    with open(path, "w") as f:
        f.write(text)
    return path


def main(argv):
    wanted = set(argv)
    unknown = wanted - {c[0] for c in CASES}
    if unknown:
        sys.exit(f"unknown case(s): {sorted(unknown)}")
    conf = (
        SparkConf()
        .setMaster("local[2]")
        .setAppName("cargo-stream-conformance-recorder")
        .set("spark.driver.host", "127.0.0.1")
        .set("spark.driver.bindAddress", "127.0.0.1")
        .set("spark.ui.enabled", "false")
    )
    t0 = time.time()
    sc = SparkContext(conf=conf)
    sc.setLogLevel("ERROR")
    try:
        for name, kind, other_kind, expr, bs in CASES:
            if wanted and name not in wanted:
                continue
            fixture, elapsed = run_case(sc, name, kind, other_kind, expr, bs)
            path = write_fixture(fixture)
            print(f"{name}: {len(fixture['outputs'])} output batches in {elapsed:.1f}s -> "
                  f"{os.path.relpath(path)}", flush=True)
    finally:
        sc.stop()
    print(f"total: {time.time() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
