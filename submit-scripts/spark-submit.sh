#!/bin/sh
# Submits a job bundled by `cargo stream package` to a Spark standalone cluster, in cluster
# mode, with the cluster's own `spark-submit`. `cargo stream package` writes a filled-in copy
# beside the jar (target/stream/NAME-spark-submit.sh) and into the bundle.
#
#   NAME-spark-submit.sh --master spark://HOST:6066 [OPTIONS] [-- JOB ARGS...]
#
# Prints the driver ID (driver-...) on stdout; spark-submit's own messages go to stderr.
set -eu

# The job's values, filled in by `cargo stream package` (each one shell-quoted).
APP_NAME=@@NAME@@
APP_VERSION=@@VERSION@@
JAR_FILE=@@JAR_FILE@@
MAIN_CLASS=@@MAIN_CLASS@@
DRIVER_CORES=@@DRIVER_CORES@@
DRIVER_MEMORY=@@DRIVER_MEMORY@@

usage() {
    cat <<EOF
Submits $APP_NAME $APP_VERSION to a Spark standalone cluster in cluster mode, with the
cluster's own spark-submit (found in \$SPARK_HOME/bin, else on PATH).

Usage: $me --master spark://HOST:PORT [OPTIONS] [-- JOB ARGS...]

Options:
  --master URL         spark://HOST:PORT[,HOST2:PORT2...]: port 6066 is the master's REST
                       gateway (spark.master.rest.enabled=true is passed on), 7077 the legacy one
  --rest               the master URL is a REST gateway on a port other than 6066
  --supervise          the cluster restarts the driver when it fails
  --driver-memory M    driver memory (default: $DRIVER_MEMORY)
  --driver-cores N     driver cores (default: $DRIVER_CORES)
  --conf K=V           a Spark property (repeatable)
  --name NAME          the application name (default: $APP_NAME)
  --jar PATH|URL       the bundle (default: $JAR_FILE beside this script); the workers read
                       it themselves: a path they share, or an http(s):// or hdfs:// URL
  --print              print the spark-submit command instead of running it
  -h, --help           print this help
EOF
}

case $JAR_FILE in
    @@*) echo "$(basename "$0"): error: this is the unfilled template: run the copy that \`cargo stream package\` wrote beside the jar" >&2; exit 1 ;;
esac
# `me`, `die`, `quote` and `need` (put in here by `cargo stream package`).
. "$(dirname "$0")/common.sh"

master=
rest=0
supervise=0
driver_memory=$DRIVER_MEMORY
driver_cores=$DRIVER_CORES
name=$APP_NAME
jar=
print=0
confs=
conf=
while [ $# -gt 0 ]; do
    case $1 in
        --master) need $# "$1"; master=$2; shift 2 ;;
        --master=*) master=${1#*=}; shift ;;
        --rest) rest=1; shift ;;
        --supervise) supervise=1; shift ;;
        --driver-memory) need $# "$1"; driver_memory=$2; shift 2 ;;
        --driver-memory=*) driver_memory=${1#*=}; shift ;;
        --driver-cores) need $# "$1"; driver_cores=$2; shift 2 ;;
        --driver-cores=*) driver_cores=${1#*=}; shift ;;
        --conf) need $# "$1"; conf=$2; shift 2 ;;
        --conf=*) conf=${1#*=}; shift ;;
        --name) need $# "$1"; name=$2; shift 2 ;;
        --name=*) name=${1#*=}; shift ;;
        --jar) need $# "$1"; jar=$2; shift 2 ;;
        --jar=*) jar=${1#*=}; shift ;;
        --print) print=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        -*) die "unknown option \`$1\` (see --help)" ;;
        *) break ;;
    esac
    if [ -n "${conf:-}" ]; then
        case $conf in
            ?*=*) confs="$confs --conf $(quote "$conf")" ;;
            *) die "\`--conf $conf\` is not KEY=VALUE" ;;
        esac
        case $conf in spark.master.rest.enabled=true) rest=1 ;; esac
        conf=
    fi
done

[ -n "$master" ] || die "no master: pass --master spark://HOST:6066 (REST) or spark://HOST:7077"
case $master in
    spark://?*:[0-9]*) ;;
    *) die "\`$master\` is not a standalone master URL: expected spark://HOST:PORT" ;;
esac
case ",${master#spark://}," in *:6066,*) rest=1 ;; esac
case $driver_cores in
    ''|*[!0-9]*|0) die "\`--driver-cores $driver_cores\` is not a positive number" ;;
esac
case $driver_memory in
    [0-9]*) ;;
    *) die "\`--driver-memory $driver_memory\` is not a size such as 512m or 2g" ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
[ -n "$jar" ] || jar=$here/$JAR_FILE
case $jar in
    *://*) ;;
    *)
        [ -f "$jar" ] || die "no bundle at $jar: pass --jar PATH (or run \`cargo stream package\`)"
        jar=$(cd "$(dirname "$jar")" && pwd)/$(basename "$jar")
        ;;
esac

if [ -n "${SPARK_HOME:-}" ]; then
    submit=$SPARK_HOME/bin/spark-submit
    [ -x "$submit" ] || [ "$print" = 1 ] ||
        die "no spark-submit in \$SPARK_HOME/bin ($SPARK_HOME): point SPARK_HOME at a Spark installation"
elif submit=$(command -v spark-submit 2>/dev/null); then
    :
elif [ "$print" = 1 ]; then
    submit=spark-submit
else
    die "spark-submit not found: set SPARK_HOME to a Spark installation, or put its bin/ on PATH"
fi

args="--master $(quote "$master") --deploy-mode cluster --name $(quote "$name")"
args="$args --class $(quote "$MAIN_CLASS")"
args="$args --driver-memory $(quote "$driver_memory") --driver-cores $driver_cores"
[ "$supervise" = 0 ] || args="$args --supervise"
# spark-submit only tries the REST gateway when the client is told it is enabled too.
[ "$rest" = 0 ] || args="$args --conf spark.master.rest.enabled=true"
args="$args$confs $(quote "$jar")"
for arg in "$@"; do
    args="$args $(quote "$arg")"
done

if [ "$print" = 1 ]; then
    echo "$(quote "$submit") $args"
    exit 0
fi

# Both files made by mktemp (new, private, unpredictable names): a name derived from another,
# such as "$log.rc", could be created first by another user of /tmp as a link to any file of
# ours, which the exit code would then overwrite.
log=$(mktemp "${TMPDIR:-/tmp}/spark-submit-XXXXXX")
rc_file=$(mktemp "${TMPDIR:-/tmp}/spark-submit-rc-XXXXXX") || { rm -f "$log"; die "cannot create a temporary file"; }
trap 'rm -f "$log" "$rc_file"' EXIT
eval "set -- $args"
# spark-submit's messages go on to stderr as they come, and are kept to find the driver ID.
{
    "$submit" "$@" 2>&1 && rc=0 || rc=$?
    echo "$rc" >"$rc_file"
} | tee "$log" >&2
rc=$(cat "$rc_file" 2>/dev/null || echo 1)
if [ "$rc" != 0 ]; then
    echo "$me: error: spark-submit failed (exit code $rc): see its messages above" >&2
    exit "$rc"
fi
driver=$(sed -n 's/.*\(driver-[0-9]\{14\}-[0-9]\{4,\}\).*/\1/p' "$log" | head -n 1)
[ -n "$driver" ] || die "spark-submit printed no driver ID: see its messages above"
echo "$driver"
