#!/bin/sh
# k3s bootstrap, the one copy. Runs on a node as `sh -c "<this text>" k3s ACTION ARGS`, through
# `docker exec` (container nodes: the rancher/k3s image, where k3s is already the container's
# command) or SSH (hosts and VMs: k3s is installed here). Secrets (the cluster token, file contents)
# arrive on stdin, never on the command line. Every action is idempotent. Busybox sh is enough.
set -eu

ROOT=${PHOENIX_K3S_ROOT:-}  # a scratch root for the script's own tests; empty on nodes
TOKEN_FILE=$ROOT/etc/rancher/k3s/phoenix-token
KUBECONFIG_FILE=$ROOT/etc/rancher/k3s/k3s.yaml
IMAGES_DIR=$ROOT/var/lib/rancher/k3s/agent/images
BIN_DIR=$ROOT/usr/local/bin
INSTALL_URL=${PHOENIX_K3S_INSTALL_URL:-https://get.k3s.io}

die() { echo "k3s: $*" >&2; exit 1; }
log() { echo "k3s: $*" >&2; }

# Root for writing /etc, /usr/local/bin and reading the admin kubeconfig; passwordless sudo otherwise.
SUDO=
if [ "$(id -u 2>/dev/null || echo 0)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo on $(hostname): connect as root or allow passwordless sudo"
  SUDO="sudo -n"
fi

kc() { $SUDO k3s kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"; }
ctr() { $SUDO k3s ctr -n k8s.io "$@"; }
# k3s's containerd answers (k3s installed and running); its images are those the kubelet sees.
containerd_up() { command -v k3s >/dev/null 2>&1 && ctr version >/dev/null 2>&1; }

# The name containerd gives an image reference (Docker's short names are on docker.io).
full_name() {
  case "$1" in
    */*) case "${1%%/*}" in *.*|*:*|localhost) echo "$1" ;; *) echo "docker.io/$1" ;; esac ;;
    *) echo "docker.io/library/$1" ;;
  esac
}
# Where an image's archive is kept: k3s imports this directory's archives on every start.
archive_file() { echo "$IMAGES_DIR/phoenix-$(echo "$1" | tr '/:@' '___').tar"; }

etcd_member_removed() {
  [ -n "$(kc get node "$1" -o 'jsonpath={.metadata.annotations.etcd\.k3s\.cattle\.io/removed-node-name}')" ]
}

# put_file PATH MODE: stdin -> PATH (atomic; unchanged files are not touched, so k3s sees no change).
put_file() {
  tmp=$(mktemp)  # mode 0600 until it is in place
  cat >"$tmp"
  if $SUDO cmp -s "$tmp" "$1" 2>/dev/null; then rm -f "$tmp"; return 0; fi
  $SUDO mkdir -p "$(dirname "$1")"
  replace_file "$tmp" "$1" "$2"
  rm -f "$tmp"
}

# replace_file SOURCE TARGET MODE: a copy renamed into place (also over a running binary).
replace_file() {
  $SUDO cp "$1" "$2.phoenix-new"
  $SUDO chmod "$3" "$2.phoenix-new"
  $SUDO mv -f "$2.phoenix-new" "$2"
}

# install_k3s ROLE VERSION AIRGAP_STAGE FLAGS...: the official install script (systemd/openrc
# service), online or from the air-gap files staged on the host. The token is already in TOKEN_FILE.
install_k3s() {
  role=$1 version=$2 stage=$3; shift 3
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  if [ -n "$stage" ]; then
    [ -f "$stage/install.sh" ] && [ -f "$stage/k3s" ] || die "air-gap files missing in $stage (install.sh, k3s)"
    # Air-gap: binary and images tarball in place, install script from the same directory.
    if ! $SUDO cmp -s "$stage/k3s" "$BIN_DIR/k3s" 2>/dev/null; then
      $SUDO mkdir -p "$BIN_DIR"
      replace_file "$stage/k3s" "$BIN_DIR/k3s" 0755
    fi
    have=$("$BIN_DIR/k3s" --version 2>/dev/null | head -n 1 || true)
    case "$have" in
      *" $version "*) ;;
      *) die "the k3s binary from phoenix:k3sAirgapDir reports '$have', phoenix:k3sVersion is $version: use the same release" ;;
    esac
    $SUDO mkdir -p "$IMAGES_DIR"
    for tarball in "$stage"/k3s-airgap-images-*; do
      [ -f "$tarball" ] || die "no k3s-airgap-images-<arch>.tar(.zst|.gz) in $stage"
      $SUDO cmp -s "$tarball" "$IMAGES_DIR/$(basename "$tarball")" 2>/dev/null || \
        $SUDO cp "$tarball" "$IMAGES_DIR/"
    done
    cp "$stage/install.sh" "$work/install.sh"
    skip=true
  else
    if command -v curl >/dev/null 2>&1; then
      curl -sfL "$INSTALL_URL" -o "$work/install.sh" || die "could not download $INSTALL_URL (set phoenix:k3sAirgapDir for offline hosts)"
    elif command -v wget >/dev/null 2>&1; then
      wget -qO "$work/install.sh" "$INSTALL_URL" || die "could not download $INSTALL_URL (set phoenix:k3sAirgapDir for offline hosts)"
    else
      die "neither curl nor wget on $(hostname) to fetch $INSTALL_URL"
    fi
    skip=false
  fi
  # The install script keeps K3S_* variables in the service's env file: none is set here (the token
  # is read from TOKEN_FILE). It restarts k3s only when the binary, unit or env file changed.
  exec_line="$role"
  for flag in "$@" "--token-file=$TOKEN_FILE"; do exec_line="$exec_line $flag"; done
  $SUDO env INSTALL_K3S_VERSION="$version" INSTALL_K3S_SKIP_DOWNLOAD="$skip" \
    INSTALL_K3S_EXEC="$exec_line" sh "$work/install.sh" >&2 || die "the k3s install script failed on $(hostname)"
}

action=${1:-}; [ $# -gt 0 ] && shift
case "$action" in
  put) # put PATH MODE, content on stdin
    put_file "$ROOT$1" "$2"
    echo "$1" ;;
  install) # install server|agent VERSION AIRGAP_STAGE FLAGS..., token on stdin -> prints the node name
    read -r token || die "install needs the cluster token on stdin"
    [ -n "$token" ] || die "install got an empty cluster token"
    printf '%s\n' "$token" | put_file "$TOKEN_FILE" 0600
    unset token
    install_k3s "$@"
    if [ "$1" = server ]; then
      wait_for 300 "the Kubernetes API" kc get --raw=/readyz
    fi
    hostname ;;
  wait-server) # wait-server [SECONDS]: the local API server answers /readyz
    wait_for "${1:-300}" "the k3s kubeconfig" $SUDO test -s "$KUBECONFIG_FILE"
    wait_for "${1:-300}" "the Kubernetes API" kc get --raw=/readyz
    echo ready ;;
  kubeconfig) # the admin kubeconfig (server https://127.0.0.1:6443; the caller rewrites it)
    wait_for 300 "the k3s kubeconfig" $SUDO test -s "$KUBECONFIG_FILE"
    $SUDO cat "$KUBECONFIG_FILE" ;;
  wait-node) # wait-node NAME [SECONDS] (on a server): node NAME registered and Ready
    wait_for "${2:-300}" "node $1" kc get node "$1"
    kc wait --for=condition=Ready "node/$1" --timeout="${2:-300}s" >/dev/null || \
      die "node $1 did not become Ready in ${2:-300} s"
    echo "$1" ;;
  wait-app) # wait-app NAMESPACE SECONDS DEPLOYMENT=MIN... (on a server): each at full strength
    wait_app "$@" ;;
  remove) # remove NAME [SECONDS] (on a server): drain, take a server's etcd member out, delete the node
    # Gone only when the API says so (k3s's node finalizer takes a server's etcd member out before a
    # node object can go). Any other failure, such as an API that does not answer, stops here.
    if ! found=$(kc get node "$1" -o name 2>&1); then
      case "$found" in
        *NotFound*) log "node $1 is not in the cluster: nothing to remove"; exit 0 ;;
        *) die "cannot ask the Kubernetes API on $(hostname) about node $1, so it stays: $found" ;;
      esac
    fi
    etcd=$(kc get node "$1" -o 'jsonpath={.metadata.labels.node-role\.kubernetes\.io/etcd}') || \
      die "cannot tell whether node $1 holds an etcd member: it stays in the cluster"
    if [ "$etcd" = true ]; then
      # The other members must keep a Ready majority, or etcd loses its quorum for good.
      members=$(kc get nodes -l node-role.kubernetes.io/etcd=true --no-headers) || \
        die "cannot list the etcd members: node $1 stays in the cluster"
      left=$(($(printf '%s\n' "$members" | grep -c .) - 1))
      ready=$(printf '%s\n' "$members" | awk -v node="$1" '$1 != node && $2 == "Ready"' | wc -l)
      [ "$left" -ge 1 ] && [ "$ready" -gt $((left / 2)) ] || die "removing server $1 would leave $ready Ready of $left servers, below a quorum of $((left / 2 + 1)): bring the other servers back (kubectl get nodes) before removing it"
    fi
    kc drain "$1" --ignore-daemonsets --delete-emptydir-data --force --timeout=120s >&2 || \
      die "could not drain node $1 in 120 s (a PodDisruptionBudget or a stuck pod?): it stays in the cluster"
    if [ "$etcd" = true ]; then
      # A server with an embedded etcd member: k3s removes the member when asked by this annotation
      # and confirms with removed-node-name; only then does the node go.
      kc annotate node "$1" --overwrite etcd.k3s.cattle.io/remove=true >/dev/null || \
        die "could not ask k3s to remove the etcd member of $1"
      wait_for "${2:-120}" "removal of the etcd member of $1" etcd_member_removed "$1"
    fi
    kc delete node "$1" --wait=false >/dev/null || die "could not delete node $1" ;;
  uninstall) # on a host: the uninstall script the install script left (server or agent)
    found=
    for script in "$BIN_DIR/k3s-uninstall.sh" "$BIN_DIR/k3s-agent-uninstall.sh"; do
      [ -x "$script" ] || continue
      found=1
      $SUDO "$script" >/dev/null 2>&1 || die "$script failed on $(hostname)"
    done
    # No script left: k3s is not installed here (never was, or uninstalled already).
    [ -n "$found" ] || log "k3s is not installed on $(hostname): nothing to uninstall" ;;
  import) # import IMAGE, its archive (docker save) on stdin -> prints IMAGE
    # Kept where k3s imports from on every start (so the image survives restarts and outlasts a
    # node that installs later), and imported now when k3s runs already. No registry is asked.
    file=$(archive_file "$1")
    tmp=$(mktemp)
    cat >"$tmp"
    [ -s "$tmp" ] || { rm -f "$tmp"; die "import of $1 got an empty archive on stdin"; }
    $SUDO mkdir -p "$IMAGES_DIR"
    replace_file "$tmp" "$file" 0600
    rm -f "$tmp"
    if containerd_up; then
      ctr images import "$file" >/dev/null || die "k3s ctr could not import $1 on $(hostname)"
    fi
    echo "$1" ;;
  has-image) # has-image IMAGE -> prints IMAGE when this node holds it
    $SUDO test -s "$(archive_file "$1")" || die "image $1 is not on $(hostname): load it again (pulumi up)"
    if containerd_up; then
      [ -n "$(ctr images ls -q "name==$(full_name "$1")")" ] || die "image $1 is not in k3s's containerd on $(hostname)"
    fi
    echo "$1" ;;
  remove-image) # remove-image IMAGE: its archive, and the image from containerd when k3s runs
    $SUDO rm -f "$(archive_file "$1")"
    if containerd_up && [ -n "$(ctr images ls -q "name==$(full_name "$1")")" ]; then
      ctr images rm "$(full_name "$1")" >/dev/null || die "k3s ctr could not remove $1 on $(hostname)"
    fi ;;
  *) die "unknown action '$action' (put, install, wait-server, kubeconfig, wait-node, remove, uninstall, import, has-image, remove-image)" ;;
esac
