#!/usr/bin/env bash
# Make sure a Docker Engine answers on this machine (and the kernel's inotify limits suit Kubernetes
# nodes in containers). Idempotent:
#  - `docker info` already answers            -> nothing to do
#  - no dockerd binary                        -> install Debian's docker.io (+ debootstrap for images/build.sh)
#  - start `dockerd` detached, log in $DOCKERD_LOG, wait up to $ENGINE_WAIT seconds.
# Needs root (apt-get, dockerd). Works where /usr/local/bin/docker is only a client.
set -euo pipefail

LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
WAIT=${ENGINE_WAIT:-60}

say() { echo "engine.sh: $*" >&2; }

# Kubernetes nodes in containers share this kernel's inotify limits (the kubelet, containerd and their
# pods each hold instances): the default 128 per user runs out with two kubeadm clusters up (kind
# documents the same). Raised for root, as kind advises; otherwise said.
want_inotify=512
have_inotify=$(cat /proc/sys/fs/inotify/max_user_instances 2>/dev/null || echo "$want_inotify")
if [ "$have_inotify" -lt "$want_inotify" ]; then
  if [ "$(id -u)" = 0 ] && sysctl -qw fs.inotify.max_user_instances=$want_inotify 2>/dev/null; then
    say "fs.inotify.max_user_instances raised from $have_inotify to $want_inotify (Kubernetes nodes)"
  else
    say "fs.inotify.max_user_instances is $have_inotify: kubeadm stacks want $want_inotify (sudo sysctl -w fs.inotify.max_user_instances=$want_inotify)"
  fi
fi

if docker info >/dev/null 2>&1; then
  say "engine already answers"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  say "no engine answers and not root: cannot install/start dockerd"; exit 1
fi

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  say "installing ${need_pkgs[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
# Debian's docker.io puts its client at /usr/bin/docker; /usr/local/bin/docker (28.x) may win on PATH,
# which is fine: it negotiates the API version down.

if ! pgrep -x dockerd >/dev/null 2>&1; then
  say "starting dockerd (log: $LOG)"
  mkdir -p "$(dirname "$LOG")"
  setsid dockerd >"$LOG" 2>&1 < /dev/null &
fi

for _ in $(seq 1 $((WAIT * 2))); do
  if docker info >/dev/null 2>&1; then
    say "engine answers: $(docker version -f '{{.Server.Version}}' 2>/dev/null)"
    exit 0
  fi
  sleep 0.5
done

say "dockerd did not answer within ${WAIT}s; tail of $LOG:"
tail -n 40 "$LOG" >&2 || true
exit 1
