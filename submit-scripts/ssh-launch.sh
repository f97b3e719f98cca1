#!/bin/sh
# Launches a job bundled by `cargo stream package` on a plain Linux host over SSH, detached, so
# that it outlives the connection. `cargo stream package` writes a filled-in copy beside the
# jar (target/stream/NAME-ssh-launch.sh) and into the bundle.
#
#   NAME-ssh-launch.sh [-p PORT] [-i KEY] [-o OPTION]... USER@HOST [-- JOB ARGS...]
#
# Prints the job's folder on the host. Uses the user's ssh and scp in batch mode (keys only,
# never a password prompt) with host keys checked against known_hosts, never skipped.
set -eu

# The job's values, filled in by `cargo stream package` (each one shell-quoted). JAR_SHA256 is
# empty in the copy inside the bundle, which cannot hold its own jar's checksum.
APP_NAME=@@NAME@@
APP_VERSION=@@VERSION@@
JAR_FILE=@@JAR_FILE@@
JAR_SHA256=@@JAR_SHA256@@

usage() {
    cat <<EOF
Launches $APP_NAME $APP_VERSION on a Linux host over SSH: copies the jar (under a temporary
name, its sha256 checked on the host, then renamed), unpacks it into a new folder
DIR/$APP_NAME-TIME-XXXXXX (refusing entries that would escape it) and starts the bundle's
run.sh there in its own session, detached. That folder then holds \`pid\`, \`stdout\`, \`stderr\`,
and \`exit-code\` once the job ends; stop the job with \`kill -TERM \$(cat pid)\` (it stops
gracefully). Prints the folder on stdout.

Usage: $me [OPTIONS] USER@HOST [-- JOB ARGS...]

Options:
  -p PORT          the host's SSH port
  -i KEY           the private key file (default: ssh's own, or the agent)
  -o OPTION        an ssh option, e.g. -o UserKnownHostsFile=FILE (repeatable)
  --dir DIR        the folder on the host for launches (default: cargo-stream, in the home)
  --jar PATH       the bundle (default: $JAR_FILE beside this script)
  -h, --help       print this help

ssh runs with BatchMode=yes and StrictHostKeyChecking=yes: an unknown host is refused until
its key is in known_hosts.
EOF
}

case $JAR_FILE in
    @@*) echo "$(basename "$0"): error: this is the unfilled template: run the copy that \`cargo stream package\` wrote beside the jar" >&2; exit 1 ;;
esac
# `me`, `die`, `quote` and `need` (put in here by `cargo stream package`).
. "$(dirname "$0")/common.sh"

# BatchMode: keys only, no prompt. StrictHostKeyChecking=yes: never add or skip a host key.
# ssh keeps the first value given for an option, so these come before the user's.
opts="-o BatchMode=yes -o StrictHostKeyChecking=yes"
port=
dir=cargo-stream
jar=
dest=
while [ $# -gt 0 ]; do
    case $1 in
        -p) need $# "$1"; port=$2; shift 2 ;;
        -i) need $# "$1"; [ -f "$2" ] || die "no key file $2"; opts="$opts -i $(quote "$2")"; shift 2 ;;
        -o) need $# "$1"
            case $(printf '%s' "$2" | tr 'A-Z' 'a-z' | tr -d ' ') in
                stricthostkeychecking=yes|stricthostkeychecking=true) ;;
                stricthostkeychecking*) die "refusing \`-o $2\`: host keys are always checked; add the host's key to known_hosts instead" ;;
                batchmode*) die "refusing \`-o $2\`: ssh-launch never prompts for passwords" ;;
            esac
            opts="$opts -o $(quote "$2")"; shift 2 ;;
        --dir) need $# "$1"; dir=$2; shift 2 ;;
        --dir=*) dir=${1#*=}; shift ;;
        --jar) need $# "$1"; jar=$2; shift 2 ;;
        --jar=*) jar=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option \`$1\` (see --help)" ;;
        *) dest=$1; shift; break ;;
    esac
done
[ "${1:-}" != -- ] || shift
[ -n "$dest" ] || die "no host: pass USER@HOST (see --help)"
case $dest in
    -*|*[!A-Za-z0-9@._:-]*) die "\`$dest\` is not USER@HOST" ;;
esac
case $port in
    '') ;;
    *[!0-9]*) die "\`-p $port\` is not a port number" ;;
esac
# The folder goes into scp's remote path as is: keep it to plain characters.
dir=${dir#\~/}
case $dir in
    ''|*[!A-Za-z0-9._/-]*) die "\`--dir $dir\` must be a path of letters, digits, \`.\`, \`_\`, \`-\` and \`/\`" ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
[ -n "$jar" ] || jar=$here/$JAR_FILE
[ -f "$jar" ] || die "no bundle at $jar: pass --jar PATH (or run \`cargo stream package\`)"

sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d ' ' -f 1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d ' ' -f 1
    else
        die "need sha256sum or shasum to check the bundle"
    fi
}
# The checksum to hold the jar to: its .sha256 file, else the one filled in for this jar.
have=$(sha256 "$jar")
want=
if [ -f "$jar.sha256" ]; then
    want=$(cut -d ' ' -f 1 <"$jar.sha256")
elif [ "$(basename "$jar")" = "$JAR_FILE" ]; then
    want=$JAR_SHA256
fi
[ -z "$want" ] || [ "$want" = "$have" ] ||
    die "$jar does not match its checksum ($want): package it again"

ssh_opts=$opts
scp_opts=$opts
if [ -n "$port" ]; then
    ssh_opts="$ssh_opts -p $port"
    scp_opts="$scp_opts -P $port"
fi
err=$(mktemp "${TMPDIR:-/tmp}/ssh-launch-XXXXXX")
trap 'rm -f "$err"' EXIT

# Runs the script on stdin on the host with `sh -s`; on failure shows ssh's message and a hint.
remote() {
    rc=0
    eval "ssh $ssh_opts $(quote "$dest") 'sh -s'" 2>"$err" || rc=$?
    cat "$err" >&2
    [ "$rc" != 0 ] || return 0
    if grep -q 'Host key verification failed\|REMOTE HOST IDENTIFICATION HAS CHANGED' "$err"; then
        echo "help: check the host's key fingerprint, then add it: ssh-keyscan ${port:+-p $port }${dest#*@} >> ~/.ssh/known_hosts" >&2
    elif grep -q 'Permission denied' "$err"; then
        echo "help: pass the right key with -i KEY, or load it into ssh-agent" >&2
    fi
    return "$rc"
}

# 1. A new folder for this launch.
prepare() {
    cat <<EOF
set -eu
mkdir -p $(quote "$dir")
cd $(quote "$dir")
mktemp -d "\$PWD/"$(quote "$APP_NAME")"-\$(date -u +%Y%m%d-%H%M%S)-XXXXXX"
EOF
}
launch=$(prepare | remote) || die "could not create a launch folder on $dest"
case $launch in
    /*) ;;
    *) die "unexpected answer from $dest: $launch" ;;
esac
abandon() {
    echo "rm -rf $(quote "$launch")" | remote >/dev/null 2>&1 || true
    die "$1"
}

# 2. The jar, under a temporary name: a copy cut off is never taken for a whole one.
part=$launch/.$JAR_FILE.part
eval "scp -q $scp_opts $(quote "$jar") $(quote "$dest:$part")" ||
    abandon "failed to copy $jar to $dest (the launch folder is removed)"

# 3. On the host: check, rename, unpack, start.
args=
for arg in "$@"; do
    args="$args $(quote "$arg")"
done
start() {
    cat <<EOF
set -eu
cd $(quote "$launch")
fail() { echo "ssh-launch on \$(hostname): \$*" >&2; exit 1; }
command -v sha256sum >/dev/null 2>&1 || fail "needs sha256sum"
got=\$(sha256sum $(quote "$part") | cut -d ' ' -f 1)
[ "\$got" = $(quote "$have") ] || fail "the copy's sha256 is \$got, not $have: copy it again"
mv $(quote "$part") $(quote "$JAR_FILE")
mkdir bundle
if command -v unzip >/dev/null 2>&1; then
    bad=\$(unzip -Z1 $(quote "$JAR_FILE") | grep -E '^/|(^|/)\.\.(/|\$)|\\\\' | head -n 1 || true)
    [ -z "\$bad" ] || fail "refusing the entry \$bad: it would be written outside \$PWD/bundle"
    if unzip -Z $(quote "$JAR_FILE") | grep -q '^l'; then fail "refusing a bundle with symbolic links"; fi
    unzip -q $(quote "$JAR_FILE") -d bundle
elif command -v python3 >/dev/null 2>&1; then
    python3 - $(quote "$JAR_FILE") bundle <<'PY'
import os, stat, sys, zipfile
jar, dest = sys.argv[1], os.path.realpath(sys.argv[2])
with zipfile.ZipFile(jar) as z:
    for info in z.infolist():
        target = os.path.realpath(os.path.join(dest, info.filename))
        if not target.startswith(dest + os.sep) or stat.S_ISLNK(info.external_attr >> 16):
            sys.exit("refusing the entry %r: it would be written outside %s" % (info.filename, dest))
    for info in z.infolist():
        z.extract(info, dest)
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(os.path.join(dest, info.filename), mode)
PY
else
    fail "needs unzip or python3 to unpack the bundle"
fi
[ -f bundle/run.sh ] || fail "the bundle has no run.sh"
# Its own session (setsid), immune to the connection's hangup (nohup), every stream a file.
setsid nohup sh -c '
    cd "\$1/bundle"; shift
    sh ./run.sh "\$@" >../stdout 2>../stderr </dev/null &
    echo \$! >../pid.tmp && mv ../pid.tmp ../pid
    code=0
    wait \$! || code=\$?
    echo \$code >../exit-code.tmp && mv ../exit-code.tmp ../exit-code
' ssh-launch "\$PWD"$args >/dev/null 2>&1 </dev/null &
i=0
while [ ! -f pid ] && [ \$i -lt 50 ]; do sleep 0.1; i=\$((i + 1)); done
[ -f pid ] || fail "the job did not start"
echo "started pid \$(cat pid) in \$PWD on \$(hostname)" >&2
EOF
}
start | remote || abandon "the job was not started on $dest (its launch folder is removed)"

echo "$me: stop it with: ssh${port:+ -p $port} $dest 'kill -TERM \$(cat $launch/pid)'" >&2
echo "$launch"
