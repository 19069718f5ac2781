#!/usr/bin/env bash
# scripts/k8s-toolchain.sh: build (or reuse from cache) an air-gapped Kubernetes toolchain.
#
# Kubernetes binaries are compiled from k8s.io/kubernetes in the Go module proxy, etcd comes from
# Debian, the cluster add-ons (CoreDNS, metrics-server, flannel, Traefik) from their Go modules, and
# images are written as docker-archive tarballs (scripts/image_tar.py) under the names kubeadm
# expects. Nothing comes from a container registry or a release site. docs/airgap.md says what is
# served, how each piece builds and how long it takes cold.
#
# Usage:  bash scripts/k8s-toolchain.sh [PIECE...]        # build what is missing (default: all, in the order below)
#         bash scripts/k8s-toolchain.sh --list            # pieces, their keys, cached or not
#         bash scripts/k8s-toolchain.sh --estimate [PIECE...]  # seconds a 2-core machine needs for the uncached ones
# Then:   $K8S_TOOLCHAIN_DIR/bin holds the executables, $K8S_TOOLCHAIN_DIR/images the image tarballs.
#
# Layout (K8S_TOOLCHAIN_DIR, default ~/.cache/k8s-airgap):
#   src/kubernetes-<key>/          k8s.io/kubernetes prepared for building (shared by the kube pieces)
#   pieces/<piece>-<key>/          one build per piece, <key> = hash of every version it is made of;
#                                  bin/ (executables), images/ (tarballs), .built (wall and CPU seconds)
#   bin/<exe>, images/<tar>        symlinks to the current pieces (stable paths)
#   logs/<piece>-<key>.log         full output of each build; logs/timings.tsv one line per build
#
# Pieces (priority order): etcd kube-apiserver kubectl kube-binaries pause debian-base
# control-plane-images coredns metrics-server flannel traefik. A piece needs the pieces it builds on
# (images need their binaries); asking for it builds those first.
#
# Exit codes: 0 every asked piece is available; 1 some failed (each named with its reason and log);
#             2 bad usage.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
TC_DIR=${K8S_TOOLCHAIN_DIR:-$HOME/.cache/k8s-airgap}
# Bump when a build recipe below changes, so that cached pieces are rebuilt.
RECIPE=1
ALL_PIECES="etcd kube-apiserver kubectl kube-binaries pause debian-base control-plane-images coredns metrics-server flannel traefik"

# ---- pinned versions (docs/airgap.md explains each) ------------------------------------------------
KUBE_VERSION=${KUBE_VERSION:-v1.34.4}
KUBE_STAGING_VERSION=${KUBE_STAGING_VERSION:-v0.34.4}   # the 31 k8s.io/* staging modules of that release
COREDNS_VERSION=${COREDNS_VERSION:-v1.14.7}
METRICS_SERVER_VERSION=${METRICS_SERVER_VERSION:-v0.8.0}
FLANNEL_VERSION=${FLANNEL_VERSION:-v0.28.10}
TRAEFIK_VERSION=${TRAEFIK_VERSION:-v3.7.10}             # v3.7.11+: dependencies the proxy refuses
DEBIAN_SUITE=${DEBIAN_SUITE:-bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Userland of the images that run iptables (kube-proxy, flannel) or link libc (Debian's etcd).
DEBIAN_BASE_PACKAGES=iptables,conntrack,ipset,kmod,ca-certificates

# Cold wall seconds of each piece on an otherwise idle 2-core machine with empty Go caches, from the CPU
# seconds measured here plus downloads (docs/airgap.md, timings; pieces in the order of this file, so
# later kube pieces reuse what earlier ones compiled). scripts/test.sh decides with them whether a
# build fits CI's time budget.
declare -A COLD_SECONDS=(
  [etcd]=10 [kube-apiserver]=600 [kubectl]=150 [kube-binaries]=300 [pause]=10 [debian-base]=120
  [control-plane-images]=10 [coredns]=250 [metrics-server]=300 [flannel]=400 [traefik]=900
)

# ---- helpers ----------------------------------------------------------------------------------------
T0=$(date +%s)
say() { printf 'k8s-toolchain [%4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
hash_of() { printf '%s\n' "$@" | sha256sum | cut -c1-12; }

GO=$(command -v go 2>/dev/null || true)
[ -z "$GO" ] && [ -x /usr/local/go/bin/go ] && GO=/usr/local/go/bin/go
GO_VERSION=unknown
[ -n "$GO" ] && GO_VERSION=$("$GO" env GOVERSION 2>/dev/null || echo unknown)
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
BUILD_FLAGS=(-p 2 -trimpath)
IMAGE_TAR=(python3 "$REPO/scripts/image_tar.py")

MISSING=()      # "piece: reason" lines
declare -A PIECE_DIR=()

# deb_version PACKAGE: the candidate version apt would install (empty when apt does not know it).
deb_version() { apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: *//p' | grep -v '(none)' || true; }
ETCD_DEB_VERSION=$(deb_version etcd-server)
# A fresh machine may have no package lists yet.
if [ -z "$ETCD_DEB_VERSION" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq >/dev/null 2>&1 || true
  ETCD_DEB_VERSION=$(deb_version etcd-server)
fi
# etcd's own version (3.4.23 for 3.4.23-4+b4): the tag of the etcd image.
ETCD_VERSION=${ETCD_DEB_VERSION%%-*}; ETCD_VERSION=${ETCD_VERSION#*:}

# module_dir MODULE VERSION: its directory in the module cache (downloaded when missing).
module_dir() {
  local dir
  dir=$("$GO" mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -d "$dir" ] || { echo "module $1@$2 could not be downloaded:"; "$GO" mod download -json "$1@$2"; return 1; }
  echo "$dir"
}
# module_copy MODULE VERSION DEST: a writable scratch copy (the module cache is read-only).
module_copy() {
  local dir; dir=$(module_dir "$1" "$2") || { echo "$dir"; return 1; }
  rm -rf "$3"; cp -r "$dir" "$3"; chmod -R u+w "$3"
}

# ---- the kubernetes source, shared by kube-apiserver, kubectl, kube-binaries and pause -------------
KUBE_SRC_KEY=$(hash_of "$RECIPE" "$KUBE_VERSION" "$KUBE_STAGING_VERSION")
KUBE_SRC="$TC_DIR/src/kubernetes-$KUBE_SRC_KEY"

# kube_src: prepare $KUBE_SRC once. The module's go.work and `./staging/...` replaces point at
# directories its zip does not contain (and vendor/ is empty): every required staging module is
# taken from the proxy at the matching v0.x version instead.
kube_src() {
  [ -f "$KUBE_SRC/.complete" ] && return 0
  local tmp="$KUBE_SRC.tmp.$$" m args=()
  mkdir -p "$TC_DIR/src"
  module_copy k8s.io/kubernetes "$KUBE_VERSION" "$tmp"
  cd "$tmp"
  rm -f go.work go.work.sum
  for m in $(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => \./staging/.*#\1#p' go.mod); do
    args+=("-dropreplace=$m")
    # Only the required ones: sample-cli-plugin and sample-controller are replaced but never
    # required, and the proxy does not serve them.
    if grep -q "^[[:space:]]$m v0.0.0$" go.mod; then args+=("-require=$m@$KUBE_STAGING_VERSION"); fi
  done
  "$GO" mod edit "${args[@]}"
  "$GO" mod download
  touch .complete
  cd "$TC_DIR"
  # Another run may have prepared it meanwhile (and be building in it): keep that one.
  if [ -f "$KUBE_SRC/.complete" ]; then rm -rf "$tmp"; else rm -rf "$KUBE_SRC"; mv "$tmp" "$KUBE_SRC"; fi
}

# The version ldflags of hack/lib/version.sh (kubectl version, kubeadm's default image tags, /version).
kube_ldflags() {
  local date pkg ld="-s -w"
  # The release's own time (from the proxy), so that the same inputs give the same binaries.
  date=$(cd / && "$GO" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "k8s.io/kubernetes@$KUBE_VERSION" 2>/dev/null)
  local major=${KUBE_VERSION#v}; major=${major%%.*}
  local minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=${date:-1970-01-01T00:00:00Z}"
  done
  echo "$ld"
}

# kube_build OUT CMD...: the named commands of k8s.io/kubernetes into OUT/bin, in one `go build`
# (packages they share are compiled once).
kube_build() {
  local out=$1; shift
  kube_src
  cd "$KUBE_SRC"
  local pkgs=() c
  for c in "$@"; do pkgs+=("./cmd/$c"); done
  "$GO" build "${BUILD_FLAGS[@]}" -tags selinux,notest,grpcnotrace -ldflags "$(kube_ldflags)" -o "$out/bin/" "${pkgs[@]}"
  for c in "$@"; do "$out/bin/$c" --version 2>/dev/null || "$out/bin/$c" version --client 2>/dev/null || true; done
}

# piece_bin PIECE EXE: path of EXE in the (already built) piece.
piece_bin() { echo "${PIECE_DIR[$1]}/bin/$2"; }

# ---- recipes (each runs in a subshell with set -e; $1 = output dir) --------------------------------
recipe_etcd() {
  # Debian's etcd-server, unpacked (no service is installed or started).
  [ -n "$ETCD_DEB_VERSION" ] || { echo "apt knows no etcd-server package (apt-get update?)"; return 1; }
  mkdir -p "$1/deb"; cd "$1/deb"
  apt-get download "etcd-server=$ETCD_DEB_VERSION"
  dpkg-deb -x etcd-server_*.deb root
  install -m 0755 root/usr/bin/etcd "$1/bin/etcd"
  cd "$1"; rm -rf "$1/deb"
  "$1/bin/etcd" --version
}
recipe_kube-apiserver() { kube_build "$1" kube-apiserver; }
recipe_kubectl() { kube_build "$1" kubectl; }
recipe_kube-binaries() { kube_build "$1" kubeadm kubelet kube-controller-manager kube-scheduler kube-proxy; }

recipe_pause() {
  kube_src
  local tag
  tag=$(sed -n 's/^[[:space:]]*PauseVersion = "\(.*\)"/\1/p' "$KUBE_SRC/cmd/kubeadm/app/constants/constants.go")
  gcc -Os -Wall -Werror -static "-DVERSION=v$tag-$KUBE_VERSION" -o "$1/bin/pause" "$KUBE_SRC/build/pause/linux/pause.c"
  mkdir -p "$1/images"
  "${IMAGE_TAR[@]}" "$1/images/pause-$tag.tar" --tag "registry.k8s.io/pause:$tag" \
    --file "$1/bin/pause=/pause" --entrypoint '["/pause"]'
  "$1/bin/pause" -v
}

recipe_debian-base() {
  command -v debootstrap >/dev/null || { echo "debootstrap missing: apt-get install debootstrap"; return 1; }
  [ "$(id -u)" = 0 ] || { echo "debootstrap needs root"; return 1; }
  local root="$1/rootfs"
  debootstrap --variant=minbase --include="$DEBIAN_BASE_PACKAGES" "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR"
  # Package caches and lists are not needed in an image.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*
  tar -C "$root" --numeric-owner -cf "$1/layer.tar" .
  rm -rf "$root"
}

# image TAR TAG PIECE:EXE=DEST... [-- IMAGE_TAR OPTIONS]: an image of binaries from built pieces.
image() {
  local out=$1 tag=$2; shift 2
  local files=() spec
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    spec=$1; shift
    files+=(--file "$(piece_bin "${spec%%:*}" "$(echo "${spec#*:}" | cut -d= -f1)")=${spec#*=}")
  done
  [ "${1:-}" = -- ] && shift
  "${IMAGE_TAR[@]}" "$out" --tag "$tag" "${files[@]}" "$@"
}

recipe_control-plane-images() {
  local kubeadm list name d="$1/images" base="${PIECE_DIR[debian-base]}/layer.tar"
  kubeadm=$(piece_bin kube-binaries kubeadm)
  mkdir -p "$d"
  list=$("$kubeadm" config images list --kubernetes-version "$KUBE_VERSION")
  echo "kubeadm $KUBE_VERSION expects: $list"
  for name in $list; do
    case $name in
      */kube-apiserver:*) image "$d/kube-apiserver.tar" "$name" kube-apiserver:kube-apiserver=/usr/local/bin/kube-apiserver -- --entrypoint '["/usr/local/bin/kube-apiserver"]' ;;
      */kube-controller-manager:*|*/kube-scheduler:*)
        local c=${name##*/}; c=${c%%:*}
        image "$d/$c.tar" "$name" "kube-binaries:$c=/usr/local/bin/$c" -- --entrypoint "[\"/usr/local/bin/$c\"]" ;;
      */kube-proxy:*)
        # kube-proxy runs iptables, conntrack and ipset: the Debian userland below it.
        image "$d/kube-proxy.tar" "$name" kube-binaries:kube-proxy=/usr/local/bin/kube-proxy -- \
          --layer "$base" --entrypoint '["/usr/local/bin/kube-proxy"]' ;;
      */etcd:*)
        # Debian's etcd under its own version (kubeadm: etcd.local.imageTag), not the one kubeadm pins.
        image "$d/etcd.tar" "${name%:*}:$ETCD_VERSION-0" etcd:etcd=/usr/local/bin/etcd -- \
          --layer "$base" --entrypoint '["/usr/local/bin/etcd"]' ;;
      */pause:*|*/coredns:*) ;;   # pieces of their own
      *) echo "kubeadm expects an image this recipe does not know: $name"; return 1 ;;
    esac
  done
}

# go_piece OUT MODULE VERSION PACKAGE EXE LDFLAGS [EDIT_FUNCTION]: a command from a served module,
# built inside a scratch copy of the module (so that its own go.mod, replaces included, applies).
go_piece() {
  local out=$1 mod=$2 ver=$3 pkg=$4 exe=$5 ld=$6 edit=${7:-}
  local src="$out/src"
  module_copy "$mod" "$ver" "$src"
  cd "$src"
  [ -z "$edit" ] || "$edit"
  "$GO" build "${BUILD_FLAGS[@]}" -ldflags "-s -w $ld" -o "$out/bin/$exe" "$pkg"
  cd "$out"; rm -rf "$src"
  mkdir -p "$out/images"
}

recipe_coredns() {
  local tag=$COREDNS_VERSION
  go_piece "$1" github.com/coredns/coredns "$tag" . coredns ""
  "${IMAGE_TAR[@]}" "$1/images/coredns.tar" --tag "registry.k8s.io/coredns/coredns:$tag" \
    --file "$1/bin/coredns=/coredns" --entrypoint '["/coredns"]'
  "$1/bin/coredns" -version
}

recipe_metrics-server() {
  go_piece "$1" sigs.k8s.io/metrics-server "$METRICS_SERVER_VERSION" ./cmd/metrics-server metrics-server \
    "-X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"
  "${IMAGE_TAR[@]}" "$1/images/metrics-server.tar" --tag "registry.k8s.io/metrics-server/metrics-server:$METRICS_SERVER_VERSION" \
    --file "$1/bin/metrics-server=/metrics-server" --entrypoint '["/metrics-server"]'
}

# flannel's Tencent Cloud backend imports an SDK the proxy refuses; that backend is dropped.
flannel_drop_tencent() {
  local f
  f=$(grep -rl --include=*.go '^[[:space:]]*_ "github.com/flannel-io/flannel/pkg/backend/tencentvpc"' . || true)
  [ -n "$f" ] || { echo "no blank import of the tencentvpc backend found (recipe outdated?)"; return 1; }
  # Only the import goes: go.mod may keep requiring the SDK, whose go.mod (not its zip) is served.
  sed -i '/_ "github.com\/flannel-io\/flannel\/pkg\/backend\/tencentvpc"/d' $f
}
recipe_flannel() {
  # The udp backend's proxy is C (cgo): built as upstream does, with cgo and linked statically.
  CGO_ENABLED=1 go_piece "$1" github.com/flannel-io/flannel "$FLANNEL_VERSION" . flanneld \
    "-X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_VERSION -extldflags -static" flannel_drop_tencent
  "${IMAGE_TAR[@]}" "$1/images/flannel.tar" --tag "ghcr.io/flannel-io/flannel:$FLANNEL_VERSION" \
    --layer "${PIECE_DIR[debian-base]}/layer.tar" \
    --file "$1/bin/flanneld=/opt/bin/flanneld" --entrypoint '["/opt/bin/flanneld"]'
  "$1/bin/flanneld" --version
}

# Two parts of the source tree are missing from the module zip and are made here:
# - the dashboard's assets (webui/static, embedded), built upstream by a Node build of webui/ that the
#   zip does not contain: a one-page placeholder takes their place; routing and the API are complete;
# - the nested module github.com/traefik/traefik/dynamic/ext (go.mod replaces it with a local folder
#   that the zip leaves out, and the proxy does not serve it): the open-source build's extension point
#   for the dynamic configuration, two empty structs embedded in dynamic.HTTP and dynamic.Router.
traefik_missing_sources() {
  mkdir -p webui/static
  echo '<!doctype html><title>Traefik</title><p>Dashboard not built (air-gapped build, docs/airgap.md).' >webui/static/index.html
  local ext; ext=$(sed -n 's#^replace github.com/traefik/traefik/dynamic/ext => \(\./.*\)#\1#p' go.mod)
  [ -z "$ext" ] && return 0
  [ -f "$ext/go.mod" ] && return 0
  mkdir -p "$ext"
  printf 'module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24\n' >"$ext/go.mod"
  printf '%s\n' 'package ext' '' '// HTTP holds no extension of the dynamic HTTP configuration in this build.' 'type HTTP struct{}' \
    '' '// Router holds no extension of a router in this build.' 'type Router struct{}' >"$ext/ext.go"
}
recipe_traefik() {
  go_piece "$1" github.com/traefik/traefik/v3 "$TRAEFIK_VERSION" ./cmd/traefik traefik \
    "-X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" traefik_missing_sources
  "${IMAGE_TAR[@]}" "$1/images/traefik.tar" --tag "docker.io/library/traefik:$TRAEFIK_VERSION" \
    --file "$1/bin/traefik=/traefik" --entrypoint '["/traefik"]'
  "$1/bin/traefik" version
}

# ---- pieces: dependencies and cache keys ------------------------------------------------------------
piece_deps() {
  case $1 in
    control-plane-images) echo etcd kube-apiserver kube-binaries debian-base ;;
    flannel) echo debian-base ;;
  esac
}
piece_key() {
  local img; img=$(sha256sum <"$REPO/scripts/image_tar.py" | cut -c1-12)
  case $1 in
    etcd) hash_of "$RECIPE" "$ETCD_DEB_VERSION" ;;
    kube-apiserver|kubectl|kube-binaries) hash_of "$RECIPE" "$GO_VERSION" "$KUBE_SRC_KEY" ;;
    pause) hash_of "$RECIPE" "$KUBE_SRC_KEY" "$img" ;;
    debian-base) hash_of "$RECIPE" "$DEBIAN_SUITE" "$DEBIAN_MIRROR" "$DEBIAN_BASE_PACKAGES" ;;
    control-plane-images) hash_of "$RECIPE" "$img" "$(piece_key etcd)" "$(piece_key kube-apiserver)" \
                            "$(piece_key kube-binaries)" "$(piece_key debian-base)" ;;
    coredns) hash_of "$RECIPE" "$GO_VERSION" "$COREDNS_VERSION" "$img" ;;
    metrics-server) hash_of "$RECIPE" "$GO_VERSION" "$METRICS_SERVER_VERSION" "$img" ;;
    flannel) hash_of "$RECIPE" "$GO_VERSION" "$FLANNEL_VERSION" "$(piece_key debian-base)" "$img" ;;
    traefik) hash_of "$RECIPE" "$GO_VERSION" "$TRAEFIK_VERSION" "$img" ;;
    *) return 1 ;;
  esac
}
cached() { [ -f "$TC_DIR/pieces/$1-$(piece_key "$1")/.complete" ]; }

# link_piece PIECE: point bin/ and images/ at the piece's files.
link_piece() {
  local f
  mkdir -p "$TC_DIR/bin" "$TC_DIR/images"
  for f in "${PIECE_DIR[$1]}"/bin/* "${PIECE_DIR[$1]}"/images/*; do
    [ -e "$f" ] || continue
    case $f in */bin/*) ln -sfn "$f" "$TC_DIR/bin/$(basename "$f")" ;; *) ln -sfn "$f" "$TC_DIR/images/$(basename "$f")" ;; esac
  done
}

# build_piece PIECE: its dependencies, then the piece (reused when cached).
build_piece() {
  local piece=$1 dep
  [ -n "${PIECE_DIR[$piece]:-}" ] && return 0
  for dep in $(piece_deps "$piece"); do
    build_piece "$dep" || { MISSING+=("$piece: needs $dep, which is missing"); return 1; }
  done
  local key; key=$(piece_key "$piece")
  local out="$TC_DIR/pieces/$piece-$key" log="$TC_DIR/logs/$piece-$key.log"
  if [ -f "$out/.complete" ]; then
    say "$piece: cached ($out)"
    PIECE_DIR[$piece]=$out; link_piece "$piece"
    return 0
  fi
  case $piece in etcd|debian-base|control-plane-images) ;; *)
    [ -n "$GO" ] || { MISSING+=("$piece: not cached and no Go toolchain found (need go >= 1.25 on PATH)"); return 1; } ;;
  esac
  local t=$(date +%s) tmp="$out.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp/bin" "$TC_DIR/logs"
  say "$piece: building (log: $log; about ${COLD_SECONDS[$piece]} s cold on 2 cores)"
  # Not inside `if`: bash ignores set -e in a tested command, and a recipe must stop at its first error.
  # `times` (of this subshell) gives the CPU seconds of everything the recipe ran.
  ( set -e; "recipe_$piece" "$tmp"; times >"$tmp/.times" ) >"$log" 2>&1
  local st=$? wall=$(( $(date +%s) - t ))
  if [ $st -eq 0 ]; then
    local cpu
    cpu=$(tail -n 1 "$tmp/.times" | awk '{ n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] } printf "%d", n }')
    echo "$wall $cpu" >"$tmp/.built"; rm -f "$tmp/.times"
    touch "$tmp/.complete"
    rm -rf "$out"; mv "$tmp" "$out"
    printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$piece" "$key" "$wall" "$cpu" >>"$TC_DIR/logs/timings.tsv"
    say "$piece: built in ${wall}s wall, ${cpu} CPU-s"
    PIECE_DIR[$piece]=$out; link_piece "$piece"
    return 0
  fi
  rm -rf "$tmp"
  local why
  why=$(grep -v '^go: downloading' "$log" | grep -iE 'error|not available|cannot|refus|404|403|failed|undefined|missing|needs' | head -n 3 | tr '\n' ' ' | cut -c1-400)
  [ -n "$why" ] || why=$(tail -n 3 "$log" | tr '\n' ' ' | cut -c1-400)
  MISSING+=("$piece: build failed after ${wall}s: $why (full log: $log)")
  say "$piece: FAILED (see $log)"
  return 1
}

valid_piece() { case " $ALL_PIECES " in *" $1 "*) return 0 ;; esac; echo "unknown piece: $1 (pieces: $ALL_PIECES)" >&2; return 1; }

case "${1:-}" in
  --list)
    for p in $ALL_PIECES; do
      st="not built (~${COLD_SECONDS[$p]} s cold)"; cached "$p" && st="cached"
      printf '%-21s key=%s  %s\n' "$p" "$(piece_key "$p")" "$st"
    done
    exit 0 ;;
  --estimate)
    # Seconds (wall, 2 cores) to build the named pieces (default: all) and their dependencies: 0 for cached ones.
    shift; total=0; declare -A seen=()
    [ $# -gt 0 ] || set -- $ALL_PIECES
    add() { local d; for d in $(piece_deps "$1"); do add "$d"; done
            [ -n "${seen[$1]:-}" ] && return; seen[$1]=1; cached "$1" || total=$(( total + COLD_SECONDS[$1] )); }
    for p in "$@"; do valid_piece "$p" || exit 2; add "$p"; done
    echo "$total"; exit 0 ;;
  -*) echo "usage: $0 [--list | --estimate PIECE... | PIECE...]" >&2; exit 2 ;;
esac

PIECES=${*:-$ALL_PIECES}
for p in $PIECES; do valid_piece "$p" || exit 2; done
mkdir -p "$TC_DIR/pieces" "$TC_DIR/logs"
say "dir $TC_DIR, go: ${GO:-none} ($GO_VERSION), kubernetes $KUBE_VERSION, pieces: $PIECES"
for p in $PIECES; do build_piece "$p"; done

rc=0
for m in "${MISSING[@]}"; do say "missing piece: $m"; rc=1; done
say "bin: $TC_DIR/bin ($(ls "$TC_DIR/bin" 2>/dev/null | tr '\n' ' '))"
say "images: $TC_DIR/images ($(ls "$TC_DIR/images" 2>/dev/null | tr '\n' ' '))"
say "done, exit $rc"
exit $rc
