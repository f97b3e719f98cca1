#!/usr/bin/env bash
# Installs Debian's Slurm 22.05 (slurmctld, slurmd, the client commands), slurmrestd, the JWT
# authentication plugin, munge and unzip, for the tests that start a throwaway one-node cluster
# (tests/src/slurm.rs). Idempotent, and quick when everything is present; safe to run
# concurrently (flock). The packages' own services are not wanted (each test starts its own
# daemons with its own configuration): they are stopped and disabled if a service manager
# started them.
set -euo pipefail
missing() {
  local tool
  for tool in slurmctld slurmd slurmrestd munged; do
    [ -x "/usr/sbin/$tool" ] || return 0
  done
  for tool in scontrol sbatch squeue sinfo mungekey unzip; do
    command -v "$tool" >/dev/null 2>&1 || return 0
  done
  # slurmctld's JWT authentication (AuthAltTypes=auth/jwt) is a package of its own.
  ls /usr/lib/*/slurm-wlm/auth_jwt.so >/dev/null 2>&1 || return 0
  return 1
}
missing || exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-slurm.sh: Slurm is missing; run this script as root to install it" >&2
  exit 1
fi
exec 9>/var/lock/cargo-stream-install-slurm.lock
flock 9
missing || exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  slurm-wlm slurmctld slurmd slurm-client slurmrestd slurm-wlm-jwt-plugin munge unzip >/dev/null
for service in slurmrestd slurmctld slurmd munge; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
    systemctl stop "$service" || true
    systemctl disable "$service" >/dev/null 2>&1 || true
  fi
done
if missing; then
  echo "install-slurm.sh: Slurm is still incomplete after apt-get install" >&2
  exit 1
fi
