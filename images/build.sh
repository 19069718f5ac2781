#!/usr/bin/env bash
# Build the project's images offline, from Debian packages (no registry needed).
#
#   images/build.sh node|ssh-node|k8s-node|base|registry|app|all [...]
#
#   node      local/swarm-node:bookworm     docker-in-docker node (dockerd + docker CLI)
#   k8s-node  local/k8s-node:bookworm       Kubernetes node for kubeadm (containerd, kubelet, kubeadm,
#                                           kubectl, the cluster's images baked in; docs/kubeadm.md)
#   ssh-node  local/ssh-node:bookworm       the node plus sshd: a host of the tests' SSH test bed
#   ssh-k8s-node local/ssh-k8s-node:bookworm a bare Debian host plus sshd: the bed's kubeadm hosts
#   base      local/python-base:bookworm    python3 and /bin/sh, no distribution (FROM of the sample app offline)
#   registry  local/registry:bookworm       Debian's docker-registry (distribution 2.8) on :5000
#   app       local/sample-app:$APP_TAG     images/app built on local/python-base:bookworm
#   all       node, base, registry and app, in that order (ssh-node, ssh-k8s-node on demand)
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
SSH_K8S_NODE_IMAGE=local/ssh-k8s-node:$SUITE
K8S_NODE_IMAGE=local/k8s-node:$SUITE
K8S_TOOLCHAIN_DIR=${K8S_TOOLCHAIN_DIR:-$HOME/.cache/k8s-airgap}
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
# sshd of a bed host: keys only, root allowed. Host keys are removed (every container would share
# them): the test fixture puts generated ones and the authorized key in place before the start.
bed_sshd() {
  local r=$1
  rm -f "$r"/etc/ssh/ssh_host_*
  cat >"$r/etc/ssh/sshd_config.d/phoenix-bed.conf" <<'CFG'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
HostKey /etc/ssh/ssh_host_ed25519_key
CFG
}

# The node image's packages plus openssh-server (bed_sshd).
ssh_node_hook() {
  local r=$1
  node_hook "$r"
  bed_sshd "$r"
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
    "LABEL io.phoenix.bed-sshd=$(declare -f bed_sshd | sha)" \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'EXPOSE 22' \
    'CMD ["/usr/local/bin/ssh-node-init"]'
}

# --- ssh-k8s-node: a kubeadm host of the SSH test bed (tests/hosts) -----------------------------
# What a fresh Debian host has, plus sshd: containerd and the rest come from the prepare step
# (apt-get), Kubernetes from `pulumi up`. Its init does for the kubelet what a machine's kernel and
# init system give it but a non-privileged container lacks: / shared for mount propagation,
# /dev/kmsg, a machine-id of its own, a DNS server that pods can reach (iptables for that). sshd as in ssh-node (bed_sshd).
ssh_k8s_node_hook() {
  local r=$1
  bed_sshd "$r"
  cat >"$r/usr/local/bin/ssh-k8s-node-init" <<'SH'
#!/bin/sh
set -e
mount --make-rshared /
[ -e /dev/kmsg ] || ln -sfn /dev/null /dev/kmsg
[ -s /etc/machine-id ] || od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >/etc/machine-id
# Docker's DNS (127.0.0.11) is on this namespace's loopback, where a pod would ask itself: it is
# offered at the host's address too, in the resolv.conf kubeadm.sh gives pods (as on local/k8s-node).
ip=$(hostname -i | cut -d' ' -f1)
iptables -t nat -S DOCKER_OUTPUT 2>/dev/null |
  sed -n 's/.*-p \([a-z]*\) .*--to-destination 127\.0\.0\.11:\([0-9]*\).*/\1 \2/p' |
  while read -r proto port; do
    rule="PREROUTING -d $ip -p $proto --dport 53 -j DNAT --to-destination 127.0.0.11:$port"
    iptables -t nat -C $rule 2>/dev/null || iptables -t nat -A $rule
  done
sysctl -qw net.ipv4.conf.all.route_localnet=1
mkdir -p /run/phoenix /run/sshd
sed "s/^nameserver 127\.0\.0\.11\$/nameserver $ip/" /etc/resolv.conf >/run/phoenix/pod-resolv.conf
exec /usr/sbin/sshd -D -e
SH
  chmod 0755 "$r/usr/local/bin/ssh-k8s-node-init"
}

build_ssh_k8s_node() {
  debootstrap_image "$SSH_K8S_NODE_IMAGE" iproute2,iptables,procps,kmod,ca-certificates,openssh-server \
    ssh_k8s_node_hook \
    "LABEL io.phoenix.bed-sshd=$(declare -f bed_sshd | sha)" \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'EXPOSE 22' \
    'CMD ["/usr/local/bin/ssh-k8s-node-init"]'
}

# --- k8s-node: a kubeadm node (docs/kubeadm.md) ----------------------------------------------
# Debian's containerd, runc, CNI plugins and etcd-client; kubeadm, kubelet, kubectl and the image
# tarballs from the Kubernetes toolchain (scripts/k8s-toolchain.sh, cached: it only links here).
K8S_NODE_PIECES="kube-binaries kubectl control-plane-images pause coredns metrics-server flannel traefik"

k8s_node_hook() {
  local r=$1 tar name
  install -m 0755 "$HERE/k8s-node/entrypoint.sh" "$r/usr/local/bin/k8s-node-entrypoint"
  install -D -m 0644 "$HERE/k8s-node/containerd.toml" "$r/etc/containerd/config.toml"
  install -m 0755 "$K8S_TOOLCHAIN_DIR"/bin/{kubeadm,kubelet,kubectl} "$r/usr/bin/"
  mkdir -p "$r/opt/phoenix/images" "$r/etc/kubernetes/manifests" "$r/etc/cni/net.d" "$r/var/lib/kubelet"
  # "<file> <image name>" per tarball, pause first: the entrypoint imports what containerd lacks.
  for tar in "$K8S_TOOLCHAIN_DIR"/images/pause-*.tar "$K8S_TOOLCHAIN_DIR"/images/*.tar; do
    [ -e "$r/opt/phoenix/images/${tar##*/}" ] && continue
    cp -L "$tar" "$r/opt/phoenix/images/"
    name=$(tar -xOf "$tar" manifest.json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["RepoTags"][0])')
    echo "${tar##*/} $name" >>"$r/opt/phoenix/images/names"
  done
}

build_k8s_node() {
  bash "$ROOT_DIR/scripts/k8s-toolchain.sh" $K8S_NODE_PIECES >&2 || die "the Kubernetes toolchain lacks a piece (see above)"
  # Inputs beyond the recipe: the toolchain pieces (their keys name their versions) and shipped files.
  local pieces files
  pieces=$(cd "$K8S_TOOLCHAIN_DIR" && readlink bin/kubeadm bin/kubelet bin/kubectl images/*.tar | sha)
  files=$(cat "$HERE"/k8s-node/* | sha)
  debootstrap_image "$K8S_NODE_IMAGE" \
    containerd,runc,containernetworking-plugins,iptables,conntrack,socat,ethtool,iproute2,kmod,ca-certificates,openssl,procps,curl,etcd-client,tini \
    k8s_node_hook \
    "LABEL io.phoenix.k8s-pieces=$pieces" "LABEL io.phoenix.k8s-node-files=$files" \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'ENV PHOENIX_K8S_NODE=1' \
    'ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/k8s-node-entrypoint"]'
}

# --- base: python3 ---------------------------------------------------------------------------
# The app's base is the interpreter and what it loads, not a distribution: python3, its standard
# library less the parts no service imports, /bin/sh (dash, for shell-form health checks and `docker
# exec`), the shared libraries these link (as ldd resolves them in the rootfs), the CA bundle and the
# account files. No package manager, no utilities: every node unpacks this once per app image, which
# was most of the extra time of 1+5 nodes over 1+2.
base_hook() {
  local r=$1 keep py sh lib f d
  local stdlib_drop="test idlelib tkinter turtledemo turtle.py ensurepip lib2to3 pydoc_data distutils venv
    sqlite3 curses dbm config-*"
  local dynload_drop="_tkinter _curses _curses_panel readline _dbm _gdbm _sqlite3 _test* xx*"
  py=$(chroot "$r" readlink -f /usr/bin/python3)              # /usr/bin/python3.X
  sh=$(chroot "$r" readlink -f /bin/sh)                       # /usr/bin/dash
  lib=/usr/lib/$(basename "$py")
  keep=$(mktemp /var/tmp/keep.XXXXXX)
  for f in $stdlib_drop; do rm -rf "$r$lib"/$f; done
  for f in $dynload_drop; do rm -f "$r$lib"/lib-dynload/$f.*so; done
  { echo "$py"; echo /usr/bin/python3; echo "$sh"; echo /usr/bin/sh
    (cd "$r" && find ".$lib" "./etc/$(basename "$py")" \( -type f -o -type l \) | cut -c2-)
    echo /etc/ssl/certs/ca-certificates.crt; echo /etc/ssl/openssl.cnf; echo /etc/passwd; echo /etc/group
    # Each library an executable or extension module links: its name as linked, in its real
    # directory (/lib is a link to /usr/lib), and the file that name resolves to.
    for f in "$py" "$sh" "$r$lib"/lib-dynload/*.so; do chroot "$r" ldd "${f#$r}" || true; done |
      grep -o '/[^ ]*' | sort -u | while read -r f; do
        d=$(chroot "$r" readlink -f "$(dirname "$f")")
        echo "$d/$(basename "$f")"; chroot "$r" readlink -f "$f"
      done; } | sort -u >"$keep"
  local slim; slim=$(mktemp -d /var/tmp/slim.XXXXXX)
  # The kept files into a fresh tree, which then replaces the rootfs.
  (cd "$r" && sed 's#^/#./#' "$keep" | tar --no-recursion -cf - -T -) | tar -C "$slim" -xf -
  # usrmerge's links (/lib64/ld-linux-x86-64.so.2 is every executable's loader), and /tmp.
  for d in bin sbin lib lib32 lib64 libx32; do [ -L "$r/$d" ] && cp -a "$r/$d" "$slim/"; done
  mkdir -p -m 1777 "$slim/tmp"
  find "$r" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} +
  (cd "$slim" && tar -cf - .) | tar -C "$r" -xf -
  rm -rf "$slim" "$keep"
}

build_base() {
  debootstrap_image "$BASE_IMAGE" python3,ca-certificates base_hook \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'ENV LANG=C.UTF-8' \
    'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
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

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] || usage
if [ "${ENSURE_ENGINE:-1}" = 1 ]; then "$ROOT_DIR/scripts/engine.sh"; fi
for what in "$@"; do
  case $what in
    node) build_node ;;
    ssh-node) build_ssh_node ;;
    ssh-k8s-node) build_ssh_k8s_node ;;
    k8s-node) build_k8s_node ;;
    base) build_base ;;
    registry) build_registry ;;
    app) build_app ;;
    all) build_node; build_base; build_registry; build_app ;;
    -h|--help|help) usage ;;
    *) log "unknown image '$what'"; usage ;;
  esac
done
