#!/bin/sh
# Runs a job bundled by `cargo stream package` without Java.
#
#   run.sh [ARGS...]              from inside an unzipped bundle (the bundle ships this file)
#   run.sh BUNDLE.jar [ARGS...]   unzips the bundle into a private temporary folder first
#   run.sh BUNDLE-DIR [ARGS...]   runs an unzipped bundle elsewhere
#
# Like the jar's Java launcher, it sets CARGO_STREAM_DEPLOY_MODE=cluster, passes the arguments
# and environment on, forwards SIGTERM/SIGINT to the job (which stops gracefully; run.sh then
# exits 143), and otherwise exits with the job's exit code. The job dies with it (Linux): killed
# even with SIGKILL, run.sh leaves no job running alone. Needs a POSIX shell, and python3 (or
# `unzip`) for a .jar.
set -eu

fail() { echo "run.sh: $1" >&2; exit "${2:-1}"; }

# The two functions below are also the `ssh` and `slurm` backends' (cargo-stream takes them
# from this file: cli/src/cluster/run_sh.rs), so that every way of starting a bundle unpacks
# and finds it the same way. Each calls the script's own `fail MESSAGE [CODE]`.

# unpack JAR DEST: unzips the jar into DEST (created) with python3, which creates no symbolic
# links and refuses any entry that would land outside DEST, or else with `unzip`, after the
# same check (links refused too); the launcher class (`cargostream/`) is left out. Fails with
# code 5 when the host has neither tool.
unpack() {
    mkdir -p -- "$2" || fail "cannot create $2"
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$1" "$2" <<'CARGO_STREAM_PY' || fail "cannot unpack $1"
import os, sys, zipfile
jar, dest = sys.argv[1], os.path.realpath(sys.argv[2])
with zipfile.ZipFile(jar) as z:
    for info in z.infolist():
        if info.filename.startswith("cargostream/"):
            continue
        target = os.path.realpath(os.path.join(dest, info.filename))
        if target != dest and not target.startswith(dest + os.sep):
            sys.exit("refusing the entry %r: it would be written outside %s" % (info.filename, dest))
        z.extract(info, dest)
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(target, mode)
CARGO_STREAM_PY
    elif command -v unzip >/dev/null 2>&1; then
        # unzip writes `../` entries outside DEST (it only warns) and makes links: refuse both.
        bad=$(unzip -Z1 "$1" </dev/null | grep -E '^/|(^|/)\.\.(/|$)|\\' | head -n 1 || true)
        [ -z "$bad" ] || fail "cannot unpack $1: refusing the entry $bad: it would be written outside $2"
        if unzip -Z "$1" </dev/null | grep -q '^l'; then
            fail "cannot unpack $1: refusing its symbolic links"
        fi
        unzip -q -o "$1" -d "$2" -x 'cargostream/*' </dev/null || fail "cannot unpack $1"
    else
        fail "neither python3 nor unzip is installed on $(hostname 2>/dev/null || echo the host): one is needed to unpack the jar" 5
    fi
}

# bundle_job BUNDLE: sets `exe` to the job's binary in the unzipped BUNDLE (the
# `Cargo-Stream-Binary` line of its META-INF/MANIFEST.MF) and exports the job's environment,
# as the jar's Java launcher sets it.
bundle_job() {
    [ -f "$1/META-INF/MANIFEST.MF" ] || fail "$1 is not an unzipped cargo-stream bundle (no META-INF/MANIFEST.MF)"
    binary=$(tr -d '\r' < "$1/META-INF/MANIFEST.MF" | sed -n 's/^Cargo-Stream-Binary: //p' | head -n 1)
    [ -n "$binary" ] || fail "the bundle's manifest names no Cargo-Stream-Binary"
    case "$binary" in /*|*..*) fail "refusing the binary path $binary";; esac
    exe=$1/$binary
    [ -f "$exe" ] || fail "missing $binary in $1"
    [ -x "$exe" ] || chmod +x "$exe" 2>/dev/null || fail "cannot make $exe executable"
    CARGO_STREAM_DEPLOY_MODE=cluster
    CARGO_STREAM_BUNDLE_DIR=$1
    export CARGO_STREAM_DEPLOY_MODE CARGO_STREAM_BUNDLE_DIR
    if [ -f "$1/Stream.toml" ]; then
        CARGO_STREAM_CONFIG=$1/Stream.toml
        export CARGO_STREAM_CONFIG
    fi
}

here=$(cd "$(dirname "$0")" && pwd)
bundle=$here
tmp=
if [ $# -gt 0 ] && [ -f "$1" ] && case "$1" in *.jar|*.zip) true;; *) false;; esac; then
    jar=$1; shift
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/cargo-stream-XXXXXX")
    chmod 700 "$tmp"
    trap 'rm -rf "$tmp"' EXIT
    unpack "$jar" "$tmp"
    bundle=$tmp
elif [ $# -gt 0 ] && [ -d "$1" ] && [ -f "$1/stream-manifest.json" ]; then
    bundle=$(cd "$1" && pwd); shift
fi
bundle_job "$bundle"

# Run in the background so that this shell can pass SIGTERM on, then wait for the job's code.
# CARGO_STREAM_PARENT_PID tells the job which process launched it: on Linux it then gets
# SIGTERM if this shell dies, even by SIGKILL, and stops gracefully instead of running alone.
CARGO_STREAM_PARENT_PID=$$
export CARGO_STREAM_PARENT_PID
"$exe" "$@" &
job=$!
signalled=0
stopped=0
trap 'signalled=1; stopped=1; kill -TERM "$job" 2>/dev/null' TERM INT
status=0
wait "$job" || status=$?
# A trapped signal interrupts `wait` (status > 128): wait again for the job's own exit code.
while [ "$signalled" = 1 ]; do
    signalled=0
    status=0
    wait "$job" || status=$?
done
# Stopped on request: even a clean graceful stop exits 143 (128 + SIGTERM), as the jar's Java
# launcher does, so that whoever started it can tell a stop from a job that ended by itself.
if [ "$stopped" = 1 ] && [ "$status" = 0 ]; then
    status=143
fi
exit "$status"
