#!/usr/bin/env bash
# Installs Debian's OpenSSH server for the tests that start a throwaway sshd on a loopback port
# (tests/src/sshd.rs). Idempotent. The package's own service is not needed: the tests run
# `sshd -D` with their own configuration, so a service the package starts is stopped again.
set -euo pipefail
if [ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null 2>&1 && command -v scp >/dev/null 2>&1; then
  exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server openssh-client >/dev/null
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet ssh 2>/dev/null; then
  systemctl stop ssh 2>/dev/null || true
fi
