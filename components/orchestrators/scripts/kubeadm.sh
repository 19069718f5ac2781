#!/bin/sh
# kubeadm bootstrap, the one copy. Runs on a node as `sh -c "<this text>" kubeadm ACTION ARGS`,
# through `docker exec -i` (container nodes: the local/k8s-node image, whose entrypoint runs
# containerd and supervises the kubelet) or SSH (hosts and VMs: containerd, kubelet, kubeadm and
# kubectl installed by the prepare step, the kubelet a systemd service). Secrets (bootstrap token,
# certificate key, file contents) arrive on stdin, never on the command line; they reach kubeadm
# in a 0600 temporary config file removed on exit. Every action is idempotent. docs/kubeadm.md.
set -eu

KUBERNETES_VERSION=v1.34.4
POD_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/12
# The images of the air-gapped toolchain carry these tags (docs/airgap.md): Debian's etcd, CoreDNS
# newer than kubeadm's pin.
ETCD_IMAGE_TAG=3.4.23-0
DNS_IMAGE_TAG=v1.14.7
CRI_SOCKET=unix:///run/containerd/containerd.sock
ADMIN_CONF=/etc/kubernetes/admin.conf
# Written last by init/join: the node is fully part of the cluster (its content: the role).
DONE_FILE=/etc/kubernetes/phoenix-kubeadm-done
PKI=/etc/kubernetes/pki
POD_RESOLV_CONF=/run/phoenix/pod-resolv.conf

die() { echo "kubeadm.sh: $*" >&2; exit 1; }
log() { echo "kubeadm.sh: $*" >&2; }

# Root for kubeadm, /etc/kubernetes and containerd; passwordless sudo otherwise.
SUDO=
if [ "$(id -u 2>/dev/null || echo 0)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo on $(hostname): connect as root or allow passwordless sudo"
  SUDO="sudo -n"
fi

kc() { $SUDO kubectl --kubeconfig "$ADMIN_CONF" "$@"; }
ctr() { $SUDO env ctr -n k8s.io "$@"; }
api_ready() { kc get --raw=/readyz >/dev/null 2>&1; }

need() {
  for exe in "$@"; do
    command -v "$exe" >/dev/null 2>&1 || die "$exe is not installed on $(hostname) (container nodes: use the local/k8s-node image; hosts: the prepare step installs it)"
  done
}

# read_token / read_certificate_key: the next stdin line, checked (never echoed).
read_token() {
  IFS= read -r token || die "$action needs the bootstrap token on stdin (line 1)"
  printf '%s\n' "$token" | grep -Eqx '[a-z0-9]{6}\.[a-z0-9]{16}' || \
    die "$action: the bootstrap token on stdin is not of the form [a-z0-9]{6}.[a-z0-9]{16}"
}
read_certificate_key() {
  IFS= read -r certificate_key || die "$action needs the certificate key on stdin (line 2)"
  printf '%s\n' "$certificate_key" | grep -Eqx '[0-9a-f]{64}' || \
    die "$action: the certificate key on stdin is not 64 hex digits"
}

# A local/k8s-node container: its image sets PHOENIX_K8S_NODE=1 (docker exec passes it on).
node_image() { [ "${PHOENIX_K8S_NODE:-}" = 1 ]; }
# Any container (those nodes, and hosts that are containers such as the SSH test bed's): all share
# the Docker host's cgroup v1 hierarchy, so each kubelet gets a cgroup root of its own, and the
# kernel checks kubeadm runs cannot see the Docker host's kernel config.
in_container() { node_image || [ -f /.dockerenv ]; }

# The cgroup root of this node's kubelet: the image's entrypoint creates /phoenix-<hostname>; other
# containers add their machine-id (host names repeat between stacks), and the directories are made here.
cgroup_root() {
  if node_image; then echo "/phoenix-$(hostname)"; else echo "/phoenix-$(hostname)-$(cut -c1-12 /etc/machine-id)"; fi
}
make_cgroup_root() {
  if in_container && ! node_image; then
    root=$(cgroup_root)
    for c in /sys/fs/cgroup/*/; do
      [ -L "${c%/}" ] || $SUDO mkdir -p "$c${root#/}" 2>/dev/null || true
    done
  fi
}

# A container node is ready for kubeadm once its entrypoint has started containerd and imported
# the baked images (a fresh node needs some seconds); a host once containerd answers (prepare.sh).
node_prepared() {
  if node_image; then wait_for 300 "the node's containerd and images" test -f /run/phoenix/node-ready; fi
  wait_for 300 "containerd" ctr version
  make_cgroup_root
}

# KubeletConfiguration fields of container nodes, and of hosts that give pods their own resolv.conf.
kubelet_container_config() {
  if [ -s "$POD_RESOLV_CONF" ]; then
    cat <<EOF
# Docker's DNS at the node's address (127.0.0.11 is not reachable from pods): written by the
# entrypoint of local/k8s-node, or the init of a host that is a container (the SSH test bed's).
resolvConf: $POD_RESOLV_CONF
EOF
  fi
  in_container || return 0
  cat <<'EOF'
# The nodes' disk is the Docker host's, shared with everything else on it: its fill level says
# nothing about this node, so neither evictions (DiskPressure) nor image garbage collection (the
# baked images could not be pulled again) act on it.
evictionHard: {memory.available: 100Mi, nodefs.available: 0%, nodefs.inodesFree: 0%, imagefs.available: 0%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
}

# The kubelet's cgroup driver must be containerd's: systemd when containerd uses systemd cgroups.
cgroup_driver() {
  if $SUDO containerd config dump 2>/dev/null | grep -q 'SystemdCgroup = true'; then echo systemd; else echo cgroupfs; fi
}

# nodeRegistration of InitConfiguration and JoinConfiguration (YAML, indented for that key).
node_registration() { # NAME ADDRESS
  cat <<EOF
nodeRegistration:
  name: "$1"
  criSocket: "$CRI_SOCKET"
  kubeletExtraArgs:
  - {name: node-ip, value: "$2"}
EOF
  if in_container; then
    # SystemVerification reads the kernel config and modules of the host, which a container does
    # not see (the checks it makes are warnings or irrelevant here: cgroup v1, kernel modules).
    cat <<EOF
  - {name: cgroup-root, value: "$(cgroup_root)"}
  ignorePreflightErrors: [SystemVerification]
EOF
  fi
}

# work_config: a 0700 temporary directory removed on exit, with $config (kubeadm's config: it
# holds secrets) and $patches (kubeadm patches of the static pod manifests).
work_config() {
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  config=$work/config.yaml patches=$work/patches
  mkdir "$patches"
  # Debian's etcd 3.4 answers /health, not the /readyz and /livez that kubeadm probes (etcd 3.5+).
  cat >"$patches/etcd+json.json" <<'EOF'
[{"op": "replace", "path": "/spec/containers/0/livenessProbe/httpGet/path", "value": "/health"},
 {"op": "replace", "path": "/spec/containers/0/readinessProbe/httpGet/path", "value": "/health"},
 {"op": "replace", "path": "/spec/containers/0/startupProbe/httpGet/path", "value": "/health"}]
EOF
}

# quietly WHAT COMMAND...: kubeadm's own output goes to /var/log/phoenix-kubeadm-WHAT.log on the node,
# not into `pulumi up` (its preflight notes about a node without an init system or on cgroup v1 are
# expected here); when COMMAND fails, the end of that output goes to stderr.
quietly() {
  what=$1; shift
  out=$(mktemp)
  if "$@" >"$out" 2>&1; then rc=0; else rc=$?; fi
  $SUDO cp "$out" "/var/log/phoenix-kubeadm-$what.log" 2>/dev/null || true
  [ "$rc" = 0 ] || tail -n 40 "$out" >&2
  rm -f "$out"
  return "$rc"
}

# A node where kubeadm ran before without finishing (no DONE_FILE) is reset before trying again.
reset_unfinished() {
  if [ ! -f "$DONE_FILE" ] && { [ -f /etc/kubernetes/kubelet.conf ] || [ -f /etc/kubernetes/bootstrap-kubelet.conf ] || \
       [ -n "$(ls -A /etc/kubernetes/manifests 2>/dev/null)" ]; }; then
    log "an earlier kubeadm run on $(hostname) did not finish: kubeadm reset first"
    do_reset
  fi
}

do_reset() {
  # Without an init system kubeadm cannot stop the kubelet, which would restart the pods while
  # kubeadm removes them: its supervisor (the container entrypoint, prepare.sh's loop on hosts
  # without systemd) restarts it only while its config exists.
  if [ ! -d /run/systemd/system ]; then
    $SUDO rm -f /var/lib/kubelet/config.yaml
    for pid in $(pidof kubelet 2>/dev/null || true); do $SUDO kill "$pid" 2>/dev/null || true; done
    wait_for 30 "the end of the kubelet" sh -c '! pidof kubelet'
  fi
  quietly reset $SUDO kubeadm reset -f --cri-socket "$CRI_SOCKET" || die "kubeadm reset failed on $(hostname)"
  # What reset leaves when a pod's network teardown failed: its containers (in Kubernetes's own
  # containerd namespace) and network namespaces.
  for c in $(ctr containers ls -q 2>/dev/null); do
    ctr tasks kill -s KILL "$c" >/dev/null 2>&1 || true
    ctr tasks rm -f "$c" >/dev/null 2>&1 || true
    ctr containers rm "$c" >/dev/null 2>&1 || log "could not remove container $c"
  done
  for ns in $(ls /var/run/netns 2>/dev/null | grep '^cni-' || true); do $SUDO ip netns delete "$ns" 2>/dev/null || true; done
  # kubectl's discovery cache of this script's calls.
  $SUDO rm -rf "${HOME:-/root}/.kube/cache"
  $SUDO rmdir "${HOME:-/root}/.kube" 2>/dev/null || true
  $SUDO rm -rf /etc/cni/net.d/10-flannel.conflist /var/lib/cni /run/flannel "$DONE_FILE"
  # Pods' interfaces on the bridge whose teardown failed (never any other interface).
  for veth in $(ip -o link show master cni0 2>/dev/null | awk -F': ' '{ sub("@.*", "", $2); print $2 }'); do
    $SUDO ip link delete "$veth" 2>/dev/null || true
  done
  $SUDO ip link delete cni0 2>/dev/null || true
  $SUDO ip link delete flannel.1 2>/dev/null || true
  # The kubelet's cgroups of a container host (on the Docker host: they would pile up).
  if in_container && ! node_image; then
    for c in /sys/fs/cgroup/*/; do
      [ -d "$c$(cgroup_root | cut -c2-)" ] && $SUDO find "$c$(cgroup_root | cut -c2-)" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  fi
}

# Images this script imported (hosts): what uninstall removes again, and nothing else.
IMPORTED=/var/lib/phoenix-kubeadm/images
BINARIES="kubeadm kubelet kubectl"
BIN_DIR=/usr/local/bin

# The name containerd gives an image reference (Docker's short names are on docker.io).
full_name() {
  case "$1" in
    */*) case "${1%%/*}" in *.*|*:*|localhost) echo "$1" ;; *) echo "docker.io/$1" ;; esac ;;
    *) echo "docker.io/library/$1" ;;
  esac
}

action=${1:-}; [ $# -gt 0 ] && shift
case "$action" in
  init) # init NAME ADDRESS PUBLIC_ADDRESS; stdin: token, certificate key -> prints NAME
    [ $# -eq 3 ] || die "usage: init NAME ADDRESS PUBLIC_ADDRESS (token and certificate key on stdin)"
    name=$1 address=$2 public=$3
    need kubeadm kubectl kubelet containerd
    read_token; read_certificate_key
    if [ -f "$DONE_FILE" ]; then
      wait_for 300 "the Kubernetes API" api_ready
      log "$name is initialised already"
      echo "$name"; exit 0
    fi
    node_prepared
    reset_unfinished
    work_config
    cat >"$config" <<EOF
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: "$token"
  ttl: 0s
  description: phoenix joins (workers and servers, also scale-out later)
  groups: [system:bootstrappers:kubeadm:default-node-token]
  usages: [signing, authentication]
certificateKey: "$certificate_key"
localAPIEndpoint:
  advertiseAddress: "$address"
  bindPort: 6443
patches:
  directory: "$patches"
$(node_registration "$name" "$address")
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: $KUBERNETES_VERSION
controlPlaneEndpoint: "$address:6443"
apiServer:
  certSANs: ["$address", "$public", "127.0.0.1", "localhost", "$name"]
  extraArgs:
  # Aggregated APIs (metrics-server) reached at their endpoints: through the Service's ClusterIP
  # the aggregator answered 404 here (docs/kubeadm.md).
  - {name: enable-aggregator-routing, value: "true"}
controllerManager:
  extraArgs:
  # A node whose kubelet went silent is marked NotReady (its pods unready, their endpoints dropped,
  # the unreachable taint evicting them) after 8 s instead of 50 s, checked every second: four of
  # the kubelet's lease renewals (nodeLeaseDurationSeconds below) missed in a row.
  - {name: node-monitor-grace-period, value: 8s}
  - {name: node-monitor-period, value: 1s}
networking:
  podSubnet: $POD_CIDR
  serviceSubnet: $SERVICE_CIDR
etcd:
  local:
    imageTag: $ETCD_IMAGE_TAG
dns:
  imageTag: $DNS_IMAGE_TAG
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: $(cgroup_driver)
# The node lease is renewed every quarter of its duration: every 2 s (default 10 s).
nodeLeaseDurationSeconds: 8
$(kubelet_container_config)
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
conntrack:
  # The node may not set the host's nf_conntrack_max (kind does the same).
  maxPerCore: 0
EOF
    unset token certificate_key
    quietly init $SUDO kubeadm init --config "$config" --upload-certs --skip-token-print --skip-certificate-key-print || \
      die "kubeadm init failed on $(hostname) (above: the end of /var/log/phoenix-kubeadm-init.log)"
    wait_for 300 "the Kubernetes API" api_ready
    echo server | $SUDO tee "$DONE_FILE" >/dev/null
    echo "$name" ;;
  upload-certs) # upload-certs; stdin: certificate key -> the control-plane certificates for 2 h more
    # kubeadm keeps the uploaded certificates for two hours: a server joining later needs them again.
    IFS= read -r certificate_key || die "upload-certs needs the certificate key on stdin"
    printf '%s\n' "$certificate_key" | grep -Eqx '[0-9a-f]{64}' || die "upload-certs: the certificate key on stdin is not 64 hex digits"
    work_config
    # (kubernetesVersion given: kubeadm would look the newest release up on the internet.)
    printf 'apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\ncertificateKey: "%s"\n%s\n---\n%s\n%s\n%s\n' \
      "$certificate_key" "$(node_registration "$(hostname)" 127.0.0.1)" \
      'apiVersion: kubeadm.k8s.io/v1beta4' 'kind: ClusterConfiguration' "kubernetesVersion: $KUBERNETES_VERSION" >"$config"
    unset certificate_key
    $SUDO kubeadm init phase upload-certs --upload-certs --config "$config" >/dev/null || \
      die "kubeadm could not upload the certificates on $(hostname)"
    echo ok ;;
  addons) # addons ENTRY_PORT ENTRY_ADDRESS; stdin: the add-on manifests -> prints ok
    [ $# -eq 2 ] || die "usage: addons ENTRY_PORT ENTRY_ADDRESS (manifests on stdin)"
    case "$1" in ''|*[!0-9]*) die "addons: ENTRY_PORT '$1' is not a port number" ;; esac
    printf '%s\n' "$2" | grep -Eqx '[0-9]{1,3}(\.[0-9]{1,3}){3}' || die "addons: ENTRY_ADDRESS '$2' is not an IPv4 address"
    work_config
    wait_for 300 "the Kubernetes API" api_ready
    # The control-plane endpoint (https://HOST:PORT): the pod network's own pods cannot wait for
    # the Service address kube-proxy has yet to route.
    endpoint=$(kc config view -o 'jsonpath={.clusters[0].cluster.server}') || die "no server in $ADMIN_CONF"
    endpoint=${endpoint#https://}
    sed -e "s|@ENTRY_PORT@|$1|g" -e "s|@ENTRY_ADDRESS@|$2|g" -e "s|@POD_CIDR@|$POD_CIDR|g" \
        -e "s|@API_HOST@|${endpoint%:*}|g" -e "s|@API_PORT@|${endpoint##*:}|g" >"$config"
    [ -s "$config" ] || die "addons got no manifests on stdin"
    quietly addons kc apply --server-side --force-conflicts --field-manager=phoenix -f "$config" || \
      die "kubectl apply of the add-ons failed on $(hostname)"
    # The pod network first: nodes are Ready only once flannel wrote their CNI config.
    quietly flannel kc -n kube-flannel rollout status daemonset/kube-flannel --timeout=300s || \
      die "flannel did not roll out in 300 s (kubectl -n kube-flannel get pods)"
    echo ok ;;
  ca-hash) # the discovery hash of the cluster CA: sha256:<hex of its public key (DER)>
    [ -f "$PKI/ca.crt" ] || die "no $PKI/ca.crt on $(hostname): is this the first server?"
    need openssl
    hash=$($SUDO openssl x509 -pubkey -noout -in "$PKI/ca.crt" | openssl pkey -pubin -outform der | \
           sha256sum | cut -d' ' -f1) || die "could not hash the CA's public key"
    echo "sha256:$hash" ;;
  join) # join NAME ADDRESS SERVER_ADDRESS CA_HASH worker|server; stdin: token [, certificate key]
    [ $# -eq 5 ] || die "usage: join NAME ADDRESS SERVER_ADDRESS CA_HASH worker|server (token [and certificate key] on stdin)"
    name=$1 address=$2 server=$3 ca_hash=$4 role=$5
    case "$role" in worker|server) ;; *) die "join: ROLE '$role' is neither worker nor server" ;; esac
    printf '%s\n' "$ca_hash" | grep -Eqx 'sha256:[0-9a-f]{64}' || die "join: CA_HASH '$ca_hash' is not sha256:<64 hex>"
    case "$server" in *:*) ;; *) server=$server:6443 ;; esac
    need kubeadm kubelet containerd
    read_token
    [ "$role" = worker ] || read_certificate_key
    if [ -f "$DONE_FILE" ]; then
      [ "$(cat "$DONE_FILE")" = "$role" ] || die "$(hostname) joined as $(cat "$DONE_FILE") already, not as $role: remove and reset it first"
      log "$name has joined already"
      echo "$name"; exit 0
    fi
    node_prepared
    reset_unfinished
    work_config
    cat >"$config" <<EOF
apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: "$server"
    token: "$token"
    caCertHashes: ["$ca_hash"]
patches:
  directory: "$patches"
$(node_registration "$name" "$address")
EOF
    if [ "$role" = server ]; then
      cat >>"$config" <<EOF
controlPlane:
  certificateKey: "$certificate_key"
  localAPIEndpoint:
    advertiseAddress: "$address"
    bindPort: 6443
EOF
    fi
    unset token certificate_key
    quietly join $SUDO kubeadm join --config "$config" || \
      die "kubeadm join ($role) failed on $(hostname) (above: the end of /var/log/phoenix-kubeadm-join.log)"
    [ "$role" = worker ] || wait_for 300 "the Kubernetes API" api_ready
    echo "$role" | $SUDO tee "$DONE_FILE" >/dev/null
    echo "$name" ;;
  wait-server) # wait-server [SECONDS]: the local API server answers /readyz
    wait_for "${1:-300}" "the admin kubeconfig" $SUDO test -s "$ADMIN_CONF"
    wait_for "${1:-300}" "the Kubernetes API" api_ready
    echo ready ;;
  kubeconfig) # the admin kubeconfig (server https://<first server>:6443; the caller rewrites it)
    $SUDO test -s "$ADMIN_CONF" || die "no $ADMIN_CONF on $(hostname): not a server, or not initialised"
    $SUDO cat "$ADMIN_CONF" ;;
  wait-node) # wait-node NAME [SECONDS] (on a server): node NAME registered and Ready
    [ $# -ge 1 ] || die "usage: wait-node NAME [SECONDS]"
    wait_for "${2:-300}" "node $1" kc get node "$1"
    kc wait --for=condition=Ready "node/$1" --timeout="${2:-300}s" >/dev/null || \
      die "node $1 did not become Ready in ${2:-300} s"
    echo "$1" ;;
  wait-app) # wait-app NAMESPACE SECONDS DEPLOYMENT=MIN... (on a server): each at full strength
    wait_app "$@" ;;
  remove) # remove NAME [SECONDS] (on a server): drain, a server's etcd member out, delete the node
    [ $# -ge 1 ] || die "usage: remove NAME [SECONDS]"
    name=$1 timeout=${2:-120}
    # Gone only when the API says so; any other failure (an API that does not answer) stops here.
    if ! found=$(kc get node "$name" -o name 2>&1); then
      case "$found" in
        *NotFound*) log "node $name is not in the cluster: nothing to remove"; exit 0 ;;
        *) die "cannot ask the Kubernetes API on $(hostname) about node $name, so it stays: $found" ;;
      esac
    fi
    servers=$(kc get nodes -l node-role.kubernetes.io/control-plane --no-headers) || \
      die "cannot list the control-plane nodes: node $name stays in the cluster"
    if printf '%s\n' "$servers" | awk -v node="$name" '$1 == node { found = 1 } END { exit !found }'; then
      [ "$name" != "$(hostname)" ] || die "remove of server $name must run on another server"
      # The other members must keep a Ready majority, or etcd loses its quorum for good.
      left=$(($(printf '%s\n' "$servers" | grep -c .) - 1))
      ready=$(printf '%s\n' "$servers" | awk -v node="$name" '$1 != node && $2 == "Ready"' | wc -l)
      [ "$left" -ge 1 ] && [ "$ready" -gt $((left / 2)) ] || die "removing server $name would leave $ready Ready of $left servers, below a quorum of $((left / 2 + 1)): bring the other servers back (kubectl get nodes) before removing it"
      server=true
    else
      server=false
    fi
    kc drain "$name" --ignore-daemonsets --delete-emptydir-data --force --timeout="${timeout}s" >&2 || \
      die "could not drain node $name in $timeout s (a PodDisruptionBudget or a stuck pod?): it stays in the cluster"
    if [ "$server" = true ]; then
      need etcdctl
      etcdctl_local() {
        $SUDO env ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert="$PKI/etcd/ca.crt" \
          --cert="$PKI/apiserver-etcd-client.crt" --key="$PKI/apiserver-etcd-client.key" "$@"
      }
      members=$(etcdctl_local member list) || die "cannot list the etcd members on $(hostname): node $name stays in the cluster"
      id=$(printf '%s\n' "$members" | awk -F', ' -v node="$name" '$3 == node { print $1 }')
      if [ -n "$id" ]; then
        etcdctl_local member remove "$id" >&2 || die "could not remove the etcd member $id of $name"
      else
        log "$name has no etcd member (any more)"
      fi
    fi
    kc delete node "$name" --wait=false >/dev/null || die "could not delete node $name"
    echo "$name" ;;
  reset) # on the node itself: leave no Kubernetes state behind (hosts, on delete)
    if command -v kubeadm >/dev/null 2>&1; then do_reset; else log "kubeadm is not installed on $(hostname): nothing to reset"; fi ;;
  import) # import IMAGE, its archive (docker save) on stdin -> prints IMAGE
    tmp=$(mktemp)
    trap 'rm -f "$tmp"' EXIT
    cat >"$tmp"
    [ -s "$tmp" ] || die "import of $1 got an empty archive on stdin"
    wait_for 300 "containerd" ctr version
    before=$(ctr images ls -q)
    ctr images import "$tmp" >/dev/null || die "ctr could not import $1 on $(hostname)"
    # Recorded when new here: uninstall removes those (images that were here before stay).
    $SUDO mkdir -p "${IMPORTED%/*}"
    ctr images ls -q | grep -vxF "$before" | $SUDO tee -a "$IMPORTED" >/dev/null || true
    echo "$1" ;;
  install-binary) # install-binary NAME, the executable on stdin: into /usr/local/bin (hosts)
    case " $BINARIES " in *" ${1:-} "*) ;; *) die "install-binary: '${1:-}' is none of $BINARIES" ;; esac
    tmp=$(mktemp)
    trap 'rm -f "$tmp"' EXIT
    cat >"$tmp"
    [ -s "$tmp" ] || die "install-binary $1 got nothing on stdin"
    $SUDO install -m 0755 "$tmp" "$BIN_DIR/$1.new" && $SUDO mv -f "$BIN_DIR/$1.new" "$BIN_DIR/$1" || \
      die "could not install $BIN_DIR/$1 on $(hostname)"
    case "$1" in kubelet) check="--version" ;; kubectl) check="version --client" ;; *) check=version ;; esac
    # shellcheck disable=SC2086
    "$BIN_DIR/$1" $check >/dev/null 2>&1 || die "$BIN_DIR/$1 does not run on $(hostname) (another architecture?)"
    echo "$1" ;;
  uninstall) # (hosts, on delete) reset, then the binaries and the images installed here removed
    if command -v kubeadm >/dev/null 2>&1; then do_reset; fi
    if [ -s "$IMPORTED" ] && ctr version >/dev/null 2>&1; then
      sort -u "$IMPORTED" | while read -r image; do
        # (The app image's own delete may remove it at the same time: gone is what counts.)
        ctr images rm "$image" >/dev/null 2>&1 || [ -z "$(ctr images ls -q "name==$image")" ] || \
          die "ctr could not remove $image"
      done
    fi
    for exe in $BINARIES; do $SUDO rm -f "$BIN_DIR/$exe"; done
    $SUDO rm -rf "${IMPORTED%/*}"
    echo uninstalled ;;
  has-image) # has-image IMAGE -> prints IMAGE when this node's containerd holds it
    [ -n "$(ctr images ls -q "name==$(full_name "$1")")" ] || die "image $1 is not on $(hostname): load it again (pulumi up)"
    echo "$1" ;;
  remove-image) # remove-image IMAGE
    # Nothing to do where containerd is gone; gone already (uninstall at the same time) is fine.
    if ctr version >/dev/null 2>&1 && [ -n "$(ctr images ls -q "name==$(full_name "$1")")" ]; then
      ctr images rm "$(full_name "$1")" >/dev/null 2>&1 || [ -z "$(ctr images ls -q "name==$(full_name "$1")")" ] || \
        die "ctr could not remove $1 on $(hostname)"
    fi ;;
  *) die "unknown action '$action' (init, upload-certs, addons, ca-hash, join, wait-server, kubeconfig, wait-node, remove, reset, import, install-binary, uninstall, has-image, remove-image)" ;;
esac
