#!/usr/bin/env bash
# Installs the PyPI `pyspark` wheel (Spark + PySpark, 4.3.0) into a cached venv and prints its
# SPARK_HOME. Idempotent and safe to run concurrently (flock). Used by the conformance
# recorder, the benchmark peer and the cluster tests.
set -euo pipefail
version="${PYSPARK_VERSION:-4.3.0}"
cache="${CARGO_STREAM_CACHE:-$HOME/.cache/cargo-stream}"
venv="$cache/pyspark-$version"
mkdir -p "$cache"
exec 9>"$cache/pyspark.lock"
flock 9
if [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --cache-dir "$cache/pip" "pyspark==$version" >&2
  touch "$venv/.complete"
fi
"$venv/bin/python" -c "import os, pyspark; print(os.path.dirname(pyspark.__file__))"
