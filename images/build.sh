#!/usr/bin/env bash
# Build the project's images offline, from Debian packages (no registry needed).
#
#   images/build.sh node|ssh-node|base|registry|app|all [...]
#
#   node      local/swarm-node:bookworm     docker-in-docker node (dockerd + docker CLI)
#   ssh-node  local/ssh-node:bookworm       the node plus sshd: a host of the tests' SSH test bed
#   base      local/python-base:bookworm    minbase + python3 (FROM of the sample app offline)
#   registry  local/registry:bookworm       Debian's docker-registry (distribution 2.8) on :5000
#   app       local/sample-app:$APP_TAG     images/app built on local/python-base:bookworm
#   all       node, base, registry and app, in that order (ssh-node is built on demand)
#
# Caching: every image carries the label io.phoenix.inputs=<sha256 of its inputs>
# (the recipe text of this script for that image, the rootfs function, the files it ships;
# for app: the files under images/app, the base image's ID and the build args). A build is
# skipped when NAME:TAG exists with the same label. FORCE=1 rebuilds anyway. Debian package
# updates on the mirror are not inputs: use FORCE=1 to pick them up.
#
# Environment:
#   SUITE (bookworm)  MIRROR (http://deb.debian.org/debian)
#   APP_TAG (1)       tag of local/sample-app; APP_VERSION (= APP_TAG) is baked in as default env
#   DEB_CACHE (/var/cache/phoenix/debootstrap)  .deb cache shared by the rootfs builds
#   FORCE=1           rebuild even when the inputs label matches
#   ENSURE_ENGINE=0   do not run scripts/engine.sh first
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$HERE/.." && pwd)
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
DEB_CACHE=${DEB_CACHE:-/var/cache/phoenix/debootstrap}
APP_TAG=${APP_TAG:-1}
APP_VERSION=${APP_VERSION:-$APP_TAG}
LABEL_KEY=io.phoenix.inputs

NODE_IMAGE=local/swarm-node:$SUITE
SSH_NODE_IMAGE=local/ssh-node:$SUITE
BASE_IMAGE=local/python-base:$SUITE
REGISTRY_IMAGE=local/registry:$SUITE
APP_IMAGE=local/sample-app:$APP_TAG

log() { echo "build.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

sha() { sha256sum | cut -c1-64; }

# Current value of the inputs label of an image, empty when the image is missing.
image_inputs() {
  docker image inspect -f "{{ index .Config.Labels \"$LABEL_KEY\" }}" "$1" 2>/dev/null || true
}

# up_to_date NAME:TAG SHA -> 0 when the image exists with that inputs label (and FORCE is not set)
up_to_date() {
  [ "${FORCE:-0}" != 1 ] && [ "$(image_inputs "$1")" = "$2" ]
}

# ---------------------------------------------------------------------------------------------
# The one rootfs builder used by every debootstrap image.
#   debootstrap_image NAME:TAG PACKAGES HOOK CHANGE...
# PACKAGES: comma-separated --include list. HOOK: a function called with the rootfs path after
# debootstrap (writes config files etc.). CHANGE: `docker import -c` instructions (CMD, ENV...).
# The inputs label is computed from this function's text, the hook's text and the arguments.
# ---------------------------------------------------------------------------------------------
debootstrap_image() {
  local image=$1 packages=$2 hook=$3; shift 3
  local inputs
  inputs=$({ echo "$SUITE $MIRROR $image $packages"; printf '%s\n' "$@"
             declare -f debootstrap_image clean_rootfs "$hook"; } | sha)
  if up_to_date "$image" "$inputs"; then
    log "$image is up to date (inputs ${inputs:0:12})"; return 0
  fi
  command -v debootstrap >/dev/null || die "debootstrap missing: run scripts/engine.sh (as root) or apt-get install debootstrap"
  [ "$(id -u)" = 0 ] || die "debootstrap needs root"

  local t0=$SECONDS rootfs
  rootfs=$(mktemp -d /var/tmp/rootfs.XXXXXX)
  # shellcheck disable=SC2064
  trap "cleanup_rootfs '$rootfs'" EXIT
  mkdir -p "$DEB_CACHE"
  log "$image: debootstrap --variant=minbase --include=$packages $SUITE"
  if ! debootstrap --variant=minbase --cache-dir="$DEB_CACHE" --include="$packages" \
        "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1; then
    tail -n 30 "$rootfs.log" >&2
    [ -f "$rootfs/debootstrap/debootstrap.log" ] && tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
    die "debootstrap failed for $image"
  fi
  "$hook" "$rootfs"
  clean_rootfs "$rootfs"

  local changes=() c
  for c in "$@"; do changes+=(-c "$c"); done
  changes+=(-c "LABEL $LABEL_KEY=$inputs")
  log "$image: docker import ($(du -sh "$rootfs" | cut -f1) rootfs)"
  tar -C "$rootfs" --numeric-owner -c . | docker import "${changes[@]}" - "$image" >/dev/null
  cleanup_rootfs "$rootfs"; trap - EXIT
  log "$image built in $((SECONDS - t0)) s ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%d MB", $1/1e6}'))"
}

# Shrink a rootfs: no package caches, lists, docs, man pages, locales, logs. Later apt-get
# installs inside the image skip docs too (dpkg path-exclude).
clean_rootfs() {
  local r=$1
  mkdir -p "$r/etc/dpkg/dpkg.cfg.d" "$r/etc/apt/apt.conf.d"
  cat >"$r/etc/dpkg/dpkg.cfg.d/01-nodoc" <<'CFG'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
CFG
  cat >"$r/etc/apt/apt.conf.d/01-clean" <<'CFG'
APT::Install-Recommends "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
CFG
  rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/* \
         "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/lintian/* \
         "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old "$r"/tmp/* "$r"/var/tmp/* \
         "$r"/etc/resolv.conf "$r"/etc/hostname
  find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  find "$r/var/log" -type f -delete 2>/dev/null || true
  # Debian's chroot defaults: let services start normally in the container.
  rm -f "$r/usr/sbin/policy-rc.d"
}

# Unmount anything debootstrap left mounted (proc, sys) before deleting the tree.
cleanup_rootfs() {
  local r=$1
  [ -d "$r" ] || return 0
  awk -v r="$r" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$r" "$r.log"
}

# --- node: docker-in-docker ------------------------------------------------------------------
node_hook() {
  local r=$1
  # Entrypoint in the spirit of docker:dind's: a leading flag means "dockerd <flags>";
  # nests cgroup v2 when the container has its own cgroup namespace; picks the iptables
  # backend that works on this kernel (nft, else legacy); then execs the command.
  cat >"$r/usr/local/bin/dind-entrypoint" <<'SH'
#!/bin/sh
set -e
case "${1:-}" in ''|-*) set -- dockerd "$@" ;; esac
if [ "$1" = dockerd ]; then
  # securityfs (AppArmor detection) if the runtime did not mount it
  if [ -d /sys/kernel/security ] && ! mountpoint -q /sys/kernel/security 2>/dev/null; then
    mount -t securityfs none /sys/kernel/security 2>/dev/null || true
  fi
  # cgroup v2 in a private cgroup namespace: move ourselves out of the root group so that
  # dockerd can enable controllers for its children (as docker:dind's hack/dind does).
  if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qx '0::/' /proc/self/cgroup; then
    mkdir -p /sys/fs/cgroup/init
    xargs -rn1 < /sys/fs/cgroup/cgroup.procs > /sys/fs/cgroup/init/cgroup.procs 2>/dev/null || true
    sed -e 's/ / +/g' -e 's/^/+/' < /sys/fs/cgroup/cgroup.controllers \
      > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
  fi
  # iptables backend: DIND_IPTABLES=nft|legacy forces one; otherwise keep the image default
  # (nft) when it works, else fall back to legacy.
  want=${DIND_IPTABLES:-}
  if [ -z "$want" ] && ! iptables -t nat -nL >/dev/null 2>&1 && iptables-legacy -t nat -nL >/dev/null 2>&1; then
    want=legacy
  fi
  if [ -n "$want" ]; then
    for t in iptables ip6tables; do update-alternatives --set "$t" "/usr/sbin/$t-$want" >/dev/null 2>&1 || true; done
  fi
  rm -f /var/run/docker.pid
fi
exec "$@"
SH
  chmod 0755 "$r/usr/local/bin/dind-entrypoint"
}

build_node() {
  debootstrap_image "$NODE_IMAGE" docker.io,iproute2,iptables,ca-certificates,procps,python3,curl node_hook \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'ENTRYPOINT ["/usr/local/bin/dind-entrypoint"]' \
    'CMD ["dockerd"]'
}

# --- ssh-node: a host of the SSH test bed (tests/hosts) ---------------------------------------
# The node image's packages plus openssh-server. Host keys are removed (every container would share
# them): the test fixture puts generated ones and the authorized key in place before the start.
ssh_node_hook() {
  local r=$1
  node_hook "$r"
  rm -f "$r"/etc/ssh/ssh_host_*
  cat >"$r/etc/ssh/sshd_config.d/phoenix-bed.conf" <<'CFG'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
HostKey /etc/ssh/ssh_host_ed25519_key
CFG
  # Its own dockerd in the background (through the node's entrypoint), sshd in the foreground.
  cat >"$r/usr/local/bin/ssh-node-init" <<'SH'
#!/bin/sh
set -e
mkdir -p /run/sshd
/usr/local/bin/dind-entrypoint dockerd >/var/log/dockerd.log 2>&1 &
exec /usr/sbin/sshd -D -e
SH
  chmod 0755 "$r/usr/local/bin/ssh-node-init"
}

build_ssh_node() {
  debootstrap_image "$SSH_NODE_IMAGE" docker.io,iproute2,iptables,ca-certificates,procps,python3,curl,openssh-server \
    ssh_node_hook \
    "LABEL io.phoenix.node-hook=$(declare -f node_hook | sha)" \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'EXPOSE 22' \
    'CMD ["/usr/local/bin/ssh-node-init"]'
}

# --- base: python3 ---------------------------------------------------------------------------
base_hook() { :; }

build_base() {
  debootstrap_image "$BASE_IMAGE" python3,ca-certificates base_hook \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'ENV LANG=C.UTF-8' \
    'CMD ["python3"]'
}

# --- registry: distribution 2.8 from Debian --------------------------------------------------
registry_hook() {
  local r=$1
  mkdir -p "$r/etc/docker/registry" "$r/var/lib/docker-registry"
  cat >"$r/etc/docker/registry/config.yml" <<'YML'
version: 0.1
log:
  level: info
  formatter: text
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
YML
}

build_registry() {
  debootstrap_image "$REGISTRY_IMAGE" docker-registry,ca-certificates registry_hook \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'EXPOSE 5000' \
    'CMD ["/usr/bin/docker-registry", "serve", "/etc/docker/registry/config.yml"]'
}

# --- app: the sample microservices on the local python base ----------------------------------
build_app() {
  local ctx="$HERE/app" base_id inputs t0=$SECONDS
  base_id=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE" 2>/dev/null) ||
    die "$BASE_IMAGE missing: run images/build.sh base"
  inputs=$({ echo "$APP_IMAGE $base_id APP_VERSION=$APP_VERSION"
             (cd "$ctx" && find . -type f -not -path '*/__pycache__/*' -not -name '*.pyc' | LC_ALL=C sort |
               while read -r f; do echo "$f $(sha256sum <"$f" | cut -c1-64)"; done); } | sha)
  if up_to_date "$APP_IMAGE" "$inputs"; then
    log "$APP_IMAGE is up to date (inputs ${inputs:0:12})"; return 0
  fi
  log "$APP_IMAGE: docker build on $BASE_IMAGE"
  local out
  if ! out=$(docker build --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "APP_VERSION=$APP_VERSION" \
               --label "$LABEL_KEY=$inputs" -t "$APP_IMAGE" "$ctx" 2>&1); then
    echo "$out" >&2; die "docker build failed for $APP_IMAGE"
  fi
  log "$APP_IMAGE built in $((SECONDS - t0)) s"
}

usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] || usage
if [ "${ENSURE_ENGINE:-1}" = 1 ]; then "$ROOT_DIR/scripts/engine.sh"; fi
for what in "$@"; do
  case $what in
    node) build_node ;;
    ssh-node) build_ssh_node ;;
    base) build_base ;;
    registry) build_registry ;;
    app) build_app ;;
    all) build_node; build_base; build_registry; build_app ;;
    -h|--help|help) usage ;;
    *) log "unknown image '$what'"; usage ;;
  esac
done
