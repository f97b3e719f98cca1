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

Bindings available to the PySpark case expressions:
    words       = ssc.queueStream(<inputs>)                    (strings)
    other_words = ssc.queueStream(<other>)                     (strings)
    ints        = ssc.queueStream(<inputs>)                    (ints)
    lines       = ssc.queueStream(<inputs>)                    (strings)
    pairs       = ssc.queueStream(<inputs>).map(tuple)         ([key, int] lists -> tuples)
    other_pairs = ssc.queueStream(<other>).map(tuple)
and to the Scala ones: words: DStream[String], ints: DStream[Int], pairs: DStream[(String, Int)].
"""
import json
import os
import shutil
import subprocess
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
# followed by DRAIN empty batches so that every window (max 5 batches wide) fully drains.
# ---------------------------------------------------------------------------------------------
DRAIN = 6

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

INPUTS = {
    "words": WORDS,
    "other_words": OTHER_WORDS,
    "ints": INTS,
    "lines": LINES,
    "pairs": PAIRS,
    "other_pairs": OTHER_PAIRS,
}


def pad(batches):
    return [list(b) for b in batches] + [[] for _ in range(DRAIN)]


# (case, input kind, other kind or None, PySpark expression, batch_seconds)
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
    # --- PySpark only uses the incremental (inverse) window path when window >= 5 * slide
    # (PythonReducedWindowedDStream); these exercise that path.
    ("count_by_window_5_1", "words", None, "words.countByWindow(5,1)", 1),
    ("reduce_by_window_inv_5_1", "ints", None,
     "ints.reduceByWindow(lambda a,b:a+b, lambda a,b:a-b, 5, 1)", 1),
    ("reduce_by_key_and_window_inv_5_1", "pairs", None,
     "pairs.reduceByKeyAndWindow(lambda a,b:a+b, lambda a,b:a-b, 5, 1)", 1),
    ("reduce_by_key_and_window_inv_filter_5_1", "pairs", None,
     "pairs.reduceByKeyAndWindow(lambda a,b:a+b, lambda a,b:a-b, 5, 1, "
     "filterFunc=lambda kv: kv[1] > 0)", 1),
    ("group_by_key_and_window_5_1", "pairs", None, "pairs.groupByKeyAndWindow(5,1)", 1),
]

# Scala cases, run through spark-shell: (case, input kind, Scala expression, batch_seconds).
MWS_FN = ("(k: String, v: Option[Int], s: State[Int]) => "
          "{val n = v.getOrElse(0)+s.getOption.getOrElse(0); s.update(n); (k,n)}")
MWS_TIMEOUT_FN = ("(k: String, v: Option[Int], s: State[Int]) => "
                  "{val n = v.getOrElse(0)+s.getOption.getOrElse(0); "
                  "if (!s.isTimingOut) s.update(n); (k,n,s.isTimingOut)}")
MWS = f"pairs.mapWithState(StateSpec.function({MWS_FN}))"
MWS_TIMEOUT = f"pairs.mapWithState(StateSpec.function({MWS_TIMEOUT_FN}).timeout(Seconds(2)))"
PLUS = "(a: Int, b: Int) => a + b"
MINUS = "(a: Int, b: Int) => a - b"
SCALA_CASES = [
    ("map_with_state_running_sum", "pairs", MWS, 1),
    ("map_with_state_snapshots", "pairs", MWS + ".stateSnapshots()", 1),
    ("map_with_state_timeout", "pairs", MWS_TIMEOUT, 1),
    ("map_with_state_timeout_snapshots", "pairs", MWS_TIMEOUT + ".stateSnapshots()", 1),
    # Timeouts are only processed on batches where the state RDD is checkpointed (default: every
    # 10 batches); these two set the state checkpoint interval to every batch.
    ("map_with_state_timeout_checkpoint_1s", "pairs", MWS_TIMEOUT + ".checkpoint(Seconds(1))", 1),
    ("map_with_state_timeout_checkpoint_1s_snapshots", "pairs",
     f"{{ val m = {MWS_TIMEOUT}; m.checkpoint(Seconds(1)); m.stateSnapshots() }}", 1),
    # Scala twins of cases whose PySpark implementation differs (see README).
    ("count_scala", "words", "words.count()", 1),
    ("reduce_scala", "ints", "ints.reduce(_ + _)", 1),
    ("count_by_window_3_1_scala", "words", "words.countByWindow(Seconds(3), Seconds(1))", 1),
    ("reduce_by_window_inv_3_1_scala", "ints",
     f"ints.reduceByWindow({PLUS}, {MINUS}, Seconds(3), Seconds(1))", 1),
    ("reduce_by_key_and_window_inv_3_1_scala", "pairs",
     f"pairs.reduceByKeyAndWindow({PLUS}, {MINUS}, Seconds(3), Seconds(1))", 1),
    ("reduce_by_key_and_window_inv_filter_3_1_scala", "pairs",
     f"pairs.reduceByKeyAndWindow({PLUS}, {MINUS}, Seconds(3), Seconds(1), 2, "
     "(kv: (String, Int)) => kv._2 > 0)", 1),
    ("count_by_value_and_window_3_1_scala", "words",
     "words.countByValueAndWindow(Seconds(3), Seconds(1))", 1),
    ("course_window_6_4_scala", "words",
     f"words.map(w => (w, 1)).reduceByKeyAndWindow({PLUS}, {MINUS}, Seconds(6), Seconds(4))", 2),
    # The Scala engine on the incremental-window cases recorded with PySpark, and the operations
    # whose Scala implementation is not PySpark's (groupByKeyAndWindow has no inverse function in
    # Scala; window with one argument slides with the parent stream).
    ("window_3_scala", "words", "words.window(Seconds(3))", 1),
    ("count_by_window_5_1_scala", "words", "words.countByWindow(Seconds(5), Seconds(1))", 1),
    ("reduce_by_window_inv_5_1_scala", "ints",
     f"ints.reduceByWindow({PLUS}, {MINUS}, Seconds(5), Seconds(1))", 1),
    ("reduce_by_key_and_window_inv_5_1_scala", "pairs",
     f"pairs.reduceByKeyAndWindow({PLUS}, {MINUS}, Seconds(5), Seconds(1))", 1),
    ("reduce_by_key_and_window_inv_filter_5_1_scala", "pairs",
     f"pairs.reduceByKeyAndWindow({PLUS}, {MINUS}, Seconds(5), Seconds(1), 2, "
     "(kv: (String, Int)) => kv._2 > 0)", 1),
    ("count_by_value_and_window_5_1_scala", "words",
     "words.countByValueAndWindow(Seconds(5), Seconds(1))", 1),
    ("group_by_key_and_window_3_1_scala", "pairs",
     "pairs.groupByKeyAndWindow(Seconds(3), Seconds(1))", 1),
    ("group_by_key_and_window_5_1_scala", "pairs",
     "pairs.groupByKeyAndWindow(Seconds(5), Seconds(1))", 1),
]


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
# Turning what one case observed into a fixture
# ---------------------------------------------------------------------------------------------
def build_fixture(name, expr, batch_seconds, inputs, other, taps, outputs):
    """taps: [(batch millis, input elements)], one per input batch seen by the tap output.
    outputs: {batch millis: encoded elements} of the case's output stream."""
    n = len(inputs)
    interval_ms = batch_seconds * 1000
    taps = sorted(taps, key=lambda x: x[0])
    if len(taps) < n:
        raise RuntimeError(f"{name}: only {len(taps)} of {n} batches ran")
    taps = taps[:n]
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
        out.append({"index": idx, "elements": sorted(outputs[t], key=canon)})

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
    return fixture


def write_fixture(fixture):
    os.makedirs(FIXTURES, exist_ok=True)
    path = os.path.join(FIXTURES, fixture["case"] + ".json")
    lines = ["{"]
    for k in fixture:
        if k == "outputs":
            continue
        v = fixture[k]
        if k in ("inputs", "other"):
            body = ",\n    ".join(json.dumps(b) for b in v)
            lines.append(f'  "{k}": [\n    {body}\n  ],')
        else:
            lines.append(f'  "{k}": {json.dumps(v)},')
    outs = ",\n    ".join(json.dumps(o) for o in fixture["outputs"])
    lines.append(f'  "outputs": [\n    {outs}\n  ]')
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == fixture  # must round-trip
    with open(path, "w") as f:
        f.write(text)
    return path


# ---------------------------------------------------------------------------------------------
# PySpark cases
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
        outputs[millis(t)] = [encode(e) for e in elems]

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
    while len(taps) < n and time.time() < deadline:
        time.sleep(0.05)
    ssc.stop(stopSparkContext=False, stopGraceFully=False)
    elapsed = time.time() - started
    shutil.rmtree(ckpt, ignore_errors=True)
    fixture = build_fixture(name, expr, batch_seconds, inputs, other, list(taps), dict(outputs))
    return fixture, elapsed


def spark_conf():
    return (
        SparkConf()
        .setMaster("local[2]")
        .setAppName("cargo-stream-conformance-recorder")
        .set("spark.driver.host", "127.0.0.1")
        .set("spark.driver.bindAddress", "127.0.0.1")
        .set("spark.ui.enabled", "false")
    )


def record_python(wanted):
    cases = [c for c in CASES if not wanted or c[0] in wanted]
    if not cases:
        return
    sc = SparkContext(conf=spark_conf())
    sc.setLogLevel("ERROR")
    try:
        for name, kind, other_kind, expr, bs in cases:
            fixture, elapsed = run_case(sc, name, kind, other_kind, expr, bs)
            path = write_fixture(fixture)
            print(f"{name}: {len(fixture['outputs'])} output batches in {elapsed:.1f}s -> "
                  f"{os.path.relpath(path)}", flush=True)
    finally:
        sc.stop()


# ---------------------------------------------------------------------------------------------
# Scala cases (spark-shell -i)
# ---------------------------------------------------------------------------------------------
SCALA_KINDS = {
    # kind -> (Scala constant, element type)
    "words": ("WORDS", "String"),
    "ints": ("INTS", "Int"),
    "pairs": ("PAIRS", "(String, Int)"),
}

SCALA_TEMPLATE = r'''
import org.apache.spark.SparkContext
import org.apache.spark.rdd.RDD
import org.apache.spark.streaming._
import org.apache.spark.streaming.dstream.DStream
import scala.reflect.ClassTag

object ConformanceRecorder extends Serializable {
@@INPUTS@@

  def quote(s: String): String = "\"" + s.flatMap {
    case '"' => "\\\""
    case '\\' => "\\\\"
    case c => c.toString
  } + "\""

  def enc(x: Any): String = x match {
    case null => "null"
    case None => "null"
    case Some(v) => enc(v)
    case s: String => quote(s)
    case b: Boolean => b.toString
    case n: Int => n.toString
    case n: Long => n.toString
    case p: Product => p.productIterator.map(enc).mkString("[", ",", "]")
    case it: Iterable[_] => it.map(enc).toSeq.sorted.mkString("[", ",", "]")
    case other => quote(other.toString)
  }

  def collectTo[U](d: DStream[U], tag: String, name: String,
      lines: java.util.concurrent.ConcurrentLinkedQueue[String],
      taps: java.util.concurrent.atomic.AtomicInteger): Unit = {
    d.foreachRDD { (rdd: RDD[U], t: Time) =>
      val elems = rdd.collect().map(e => enc(e)).mkString("[", ",", "]")
      lines.add(tag + "\t" + name + "\t" + t.milliseconds + "\t" + elems)
      if (taps != null) taps.incrementAndGet()
    }
  }

  def runCase[T: ClassTag](sc: SparkContext, out: java.io.PrintWriter, name: String,
      batchSeconds: Int, inputs: Seq[Seq[T]], build: DStream[T] => DStream[_]): Unit = {
    val ssc = new StreamingContext(sc, Seconds(batchSeconds))
    val ckpt = java.nio.file.Files.createTempDirectory("cargo-stream-ckpt-").toFile
    ssc.checkpoint(ckpt.getAbsolutePath)
    val queue = scala.collection.mutable.Queue[RDD[T]]()
    inputs.foreach(b => queue.enqueue(sc.parallelize(b, 2)))
    val in = ssc.queueStream(queue, oneAtATime = true)
    val lines = new java.util.concurrent.ConcurrentLinkedQueue[String]()
    val taps = new java.util.concurrent.atomic.AtomicInteger(0)
    // Registration order == job order within a batch (see record.py).
    collectTo(build(in), "OUT", name, lines, null)
    collectTo(in, "TAP", name, lines, taps)
    val started = System.nanoTime()
    ssc.start()
    val deadline = System.currentTimeMillis() + inputs.size * batchSeconds * 1000L + 120000L
    while (taps.get() < inputs.size && System.currentTimeMillis() < deadline) Thread.sleep(50)
    ssc.stop(stopSparkContext = false, stopGracefully = false)
    val elapsed = (System.nanoTime() - started) / 1e9
    lines.forEach(l => out.println(l))
    out.println("DONE\t" + name + "\t" + elapsed)
    out.flush()
    org.apache.commons.io.FileUtils.deleteQuietly(ckpt)
  }

  def main(sc: SparkContext, outPath: String): Unit = {
    val out = new java.io.PrintWriter(new java.io.FileWriter(outPath))
    try {
@@CASES@@
    } finally out.close()
  }
}

sc.setLogLevel("ERROR")
ConformanceRecorder.main(sc, sys.env("CONFORMANCE_SCALA_OUT"))
sys.exit(0)
'''


def scala_inputs():
    out = []
    for kind, (const, ty) in SCALA_KINDS.items():
        batches = ", ".join(
            "Seq(" + ", ".join(
                f'({json.dumps(e[0])}, {e[1]})' if kind == "pairs" else json.dumps(e) for e in b
            ) + ")"
            for b in pad(INPUTS[kind])
        )
        out.append(f"  val {const}: Seq[Seq[{ty}]] = Seq({batches})")
    return "\n".join(out)


def scala_script(cases):
    calls = []
    for name, kind, expr, bs in cases:
        const, ty = SCALA_KINDS[kind]
        calls.append(
            f'      runCase(sc, out, {json.dumps(name)}, {bs}, {const}, '
            f'({kind}: DStream[{ty}]) => {expr})'
        )
    return (SCALA_TEMPLATE.replace("@@INPUTS@@", scala_inputs())
            .replace("@@CASES@@", "\n".join(calls)))


def spark_home():
    if os.environ.get("SPARK_HOME"):
        return os.environ["SPARK_HOME"]
    import pyspark
    return os.path.dirname(os.path.abspath(pyspark.__file__))


def record_scala(wanted):
    cases = [c for c in SCALA_CASES if not wanted or c[0] in wanted]
    if not cases:
        return
    home = spark_home()
    shell = os.path.join(home, "bin", "spark-shell")
    work = tempfile.mkdtemp(prefix="cargo-stream-scala-")
    script = os.path.join(work, "record.scala")
    result = os.path.join(work, "out.tsv")
    with open(script, "w") as f:
        f.write(scala_script(cases))
    env = dict(os.environ, SPARK_HOME=home, CONFORMANCE_SCALA_OUT=result,
               SPARK_LOCAL_IP="127.0.0.1")
    cmd = [shell, "--master", "local[2]",
           "--conf", "spark.driver.host=127.0.0.1",
           "--conf", "spark.driver.bindAddress=127.0.0.1",
           "--conf", "spark.ui.enabled=false",
           "-i", script]
    started = time.time()
    proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, cwd=work)
    log = proc.stdout
    if not os.path.exists(result):
        sys.stderr.write(log)
        raise RuntimeError("spark-shell produced no output")
    taps, outputs, done = {}, {}, {}
    with open(result) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if parts[0] == "DONE":
                done[parts[1]] = float(parts[2])
                continue
            tag, name, ms, elems = parts
            if tag == "TAP":
                taps.setdefault(name, []).append((int(ms), json.loads(elems)))
            else:
                outputs.setdefault(name, {})[int(ms)] = json.loads(elems)
    failed = []
    for name, kind, expr, bs in cases:
        if name not in done:
            failed.append(name)
            continue
        fixture = build_fixture(name, expr, bs, pad(INPUTS[kind]), None,
                                taps.get(name, []), outputs.get(name, {}))
        path = write_fixture(fixture)
        print(f"{name}: {len(fixture['outputs'])} output batches in {done[name]:.1f}s -> "
              f"{os.path.relpath(path)}", flush=True)
    print(f"spark-shell total: {time.time() - started:.1f}s", flush=True)
    if failed:
        sys.stderr.write(log[-20000:])
        raise RuntimeError(f"scala cases failed: {failed}")
    shutil.rmtree(work, ignore_errors=True)


def main(argv):
    python, scala = True, True
    args = []
    for a in argv:
        if a == "--python-only":
            scala = False
        elif a == "--scala-only":
            python = False
        else:
            args.append(a)
    wanted = set(args)
    unknown = wanted - {c[0] for c in CASES} - {c[0] for c in SCALA_CASES}
    if unknown:
        sys.exit(f"unknown case(s): {sorted(unknown)}")
    t0 = time.time()
    if python:
        record_python(wanted if not wanted else wanted & {c[0] for c in CASES} or {"-"})
    if scala:
        record_scala(wanted if not wanted else wanted & {c[0] for c in SCALA_CASES} or {"-"})
    print(f"total: {time.time() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
