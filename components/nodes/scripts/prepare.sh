#!/bin/sh
# Prerequisites of an SSH host or VM, the one copy. Runs first on every host, before anything
# joins, as `sh -c "<this text>" prepare HOST [PREREQUISITE...]` (Pulumi remote command or tests),
# with the orchestrator's host prerequisites (Orchestrator.host_prerequisites):
#   docker  a Docker Engine that answers: Debian/Ubuntu get the distro's docker.io, other systems
#           the official get.docker.com script (needs the host online). A non-root SSH user is added
#           to the docker group (the next SSH session, i.e. the next step, has it).
# None at all (k3s installs itself): the host only has to answer.
# Waits for cloud-init first where there is one (cloud VMs install docker.io from their user data).
# Idempotent. On failure: one line `prepare: HOST: reason` on stderr and exit 1.
set -eu

host=${1:-$(hostname)}; [ $# -gt 0 ] && shift
fail() { echo "prepare: $host: $*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else fail "user $(id -un) is not root and there is no sudo to install with"; fi
}

docker_ok() { docker info >/dev/null 2>&1 || as_root docker info >/dev/null 2>&1; }

for prerequisite in "$@"; do
  case "$prerequisite" in
    docker) ;;
    *) fail "unknown host prerequisite '$prerequisite' (docker)" ;;
  esac
done

if command -v cloud-init >/dev/null 2>&1; then
  cloud-init status --wait >/dev/null 2>&1 || true
fi

if [ $# -eq 0 ]; then
  echo "$host: ready (nothing to install)"
  exit 0
fi

# docker, the one prerequisite there is.
if ! command -v dockerd >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null || fail "Docker is missing and user $(id -un) cannot sudo without a password to install it"
  os=$( (. /etc/os-release 2>/dev/null && echo " ${ID:-} ${ID_LIKE:-} ") || echo unknown)
  case "$os" in
    *" debian "*|*" ubuntu "*)
      as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null 2>&1 \
        || fail "apt-get update failed (no package mirror reachable?)"
      as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q docker.io >/dev/null 2>&1 \
        || fail "apt-get install docker.io failed" ;;
    *)
      command -v curl >/dev/null 2>&1 || fail "Docker is missing, the OS ($os) has no apt and curl is missing for get.docker.com"
      curl -fsSL https://get.docker.com -o /tmp/get-docker.sh || fail "could not download https://get.docker.com"
      as_root sh /tmp/get-docker.sh >/dev/null 2>&1 || fail "the get.docker.com install script failed"
      rm -f /tmp/get-docker.sh ;;
  esac
fi

if ! docker_ok; then
  if command -v systemctl >/dev/null 2>&1; then
    as_root systemctl enable --now docker >/dev/null 2>&1 || true
  else
    as_root service docker start >/dev/null 2>&1 || true
  fi
fi
i=0
until docker_ok; do
  i=$((i + 1)); [ "$i" -le 120 ] || fail "the Docker engine does not answer after 60 s: $(as_root docker info 2>&1 | tail -n 1)"
  sleep 0.5
done
if [ "$(id -u)" != 0 ] && ! docker info >/dev/null 2>&1; then
  as_root usermod -aG docker "$(id -un)" || fail "could not add $(id -un) to the docker group"
fi
echo "$host: docker $(as_root docker version -f '{{.Server.Version}}' 2>/dev/null) ready"
