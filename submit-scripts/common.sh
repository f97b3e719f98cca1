# The helpers spark-submit.sh and ssh-launch.sh share. Each script sources this file; when
# `cargo stream package` fills a script in, it puts this file in place of that line, so that
# the copies beside the jar and in the bundle stand alone.

me=$(basename "$0")
die() { echo "$me: error: $*" >&2; exit 1; }

# One shell word for any string: single quotes, with each ' written as '\''.
quote() {
    q=$(printf '%sX' "$1" | sed "s/'/'\\\\''/g")
    printf "'%s'" "${q%X}"
}

# need ARGC OPTION: OPTION takes a value, so the arguments left must hold it.
need() { [ "$1" -ge 2 ] || die "$2 needs a value (see --help)"; }
