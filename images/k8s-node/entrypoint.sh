#!/bin/sh
# Entrypoint of local/k8s-node: a Kubernetes node in a container that is NOT --privileged (the
# capabilities docker_nodes.py gives: ALL but SYS_RESOURCE, --cgroupns host, /sys/fs/cgroup bound
# read-write, no seccomp/AppArmor, systempaths unconfined). No systemd: this script prepares the
# kernel-facing bits, runs containerd, imports the baked images that containerd lacks and then
# supervises the kubelet the way kubeadm's systemd unit would (restart forever, flags from the
# files kubeadm writes), so `kubeadm init/join` run through components/orchestrators/scripts/kubeadm.sh
# find a kubelet that starts as soon as its configuration exists. Fixed argv, nothing per node.
set -eu

IMAGES_DIR=/opt/phoenix/images
log() { echo "k8s-node: $*" >&2; }

# Mounts made by pods (volumes, the kubelet's own) must propagate: kubelet and CRI need rshared.
mount --make-rshared /
# The kubelet refuses to start without /dev/kmsg (its OOM watcher reads it), which a non-privileged
# container lacks. kind links it to /dev/console (a tty); without a tty, /dev/null: the watcher
# reads end-of-file and stops (OOM kills still show in the pods' status, from containerd).
if [ ! -e /dev/kmsg ]; then
  if [ -e /dev/console ]; then ln -sfn /dev/console /dev/kmsg; else ln -sfn /dev/null /dev/kmsg; fi
fi
# One machine-id per node (cAdvisor, kubelet); kept across restarts in the container's layer.
[ -s /etc/machine-id ] || od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >/etc/machine-id
# Pod traffic is routed and bridged through this network namespace.
sysctl -qw net.ipv4.ip_forward=1
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && sysctl -qw net.bridge.bridge-nf-call-iptables=1
# Docker's resolver (127.0.0.11, this namespace's loopback: a pod would ask itself, and CoreDNS
# would loop) is offered to pods at this node's address: kubeadm.sh points the kubelet's
# resolvConf at /run/phoenix/pod-resolv.conf. Docker NATs 127.0.0.11:53 to ports of its own
# (rules in DOCKER_OUTPUT, renewed at every start); the same ports serve DNS to the node address.
node_ip=$(ip -4 -o addr show dev eth0 | awk '{ sub("/.*", "", $4); print $4; exit }')
mkdir -p /run/phoenix
forwarded=
for proto in udp tcp; do
  port=$(iptables -t nat -S DOCKER_OUTPUT 2>/dev/null |
         sed -n "s/.*-p $proto .*--to-destination 127\.0\.0\.11:\([0-9]*\).*/\1/p")
  [ -n "$port" ] && [ -n "$node_ip" ] || continue
  sysctl -qw net.ipv4.conf.all.route_localnet=1
  iptables -t nat -C PREROUTING -d "$node_ip" -p "$proto" --dport 53 -j DNAT --to-destination "127.0.0.11:$port" 2>/dev/null ||
    iptables -t nat -A PREROUTING -d "$node_ip" -p "$proto" --dport 53 -j DNAT --to-destination "127.0.0.11:$port"
  forwarded=1
done
if [ -n "$forwarded" ]; then
  sed "s/^nameserver 127\.0\.0\.11\$/nameserver $node_ip/" /etc/resolv.conf >/run/phoenix/pod-resolv.conf
else
  cp /etc/resolv.conf /run/phoenix/pod-resolv.conf
fi

# Every node sees the host's cgroup v1 hierarchy (--cgroupns host): the kubelet of this node puts
# its pods under /phoenix-<hostname> (kubeadm.sh passes --cgroup-root), which must exist.
# After a restart the cgroups of the pods that died with the old container are still there (the
# host keeps them): removed (only empty ones can be), else the kubelet's cAdvisor spends a minute
# on them before the kubelet syncs any pod.
cgroup_root=phoenix-$(hostname)
for c in /sys/fs/cgroup/*/; do
  [ -L "${c%/}" ] && continue
  if [ -d "$c$cgroup_root" ]; then
    find "$c$cgroup_root" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
  fi
  mkdir -p "$c$cgroup_root" 2>/dev/null || true
done

rm -f /run/containerd/containerd.sock
containerd >>/var/log/containerd.log 2>&1 &
containerd_pid=$!
i=0
until ctr version >/dev/null 2>&1; do
  kill -0 "$containerd_pid" 2>/dev/null || { tail -n 20 /var/log/containerd.log >&2; log "containerd exited"; exit 1; }
  i=$((i + 1)); [ "$i" -le 60 ] || { log "containerd did not answer in 60 s"; exit 1; }
  sleep 1
done

# Baked images (names in $IMAGES_DIR/names: "<file> <image>"), only those containerd lacks (the
# data volume keeps them across restarts). Unpacked later, on first use, by the CRI plugin.
t0=$(date +%s)
have=$(ctr -n k8s.io images ls -q)
while read -r file image; do
  printf '%s\n' "$have" | grep -qxF "$image" && continue
  ctr -n k8s.io images import --no-unpack "$IMAGES_DIR/$file" >/dev/null || log "import of $image failed"
done <"$IMAGES_DIR/names"
log "images ready in $(( $(date +%s) - t0 )) s"
# kubeadm.sh init/join wait for this (kubeadm would try to pull the images otherwise).
touch /run/phoenix/node-ready

# The kubelet, as kubeadm's systemd drop-in runs it: restarted until kubeadm has written its
# configuration, and again whenever it exits. Its flags come from kubeadm's files.
(
  while :; do
    if [ -s /var/lib/kubelet/config.yaml ]; then
      KUBELET_KUBEADM_ARGS= KUBELET_EXTRA_ARGS=
      # shellcheck disable=SC1091
      [ -f /var/lib/kubelet/kubeadm-flags.env ] && . /var/lib/kubelet/kubeadm-flags.env
      # shellcheck disable=SC1091
      [ -f /etc/default/kubelet ] && . /etc/default/kubelet
      # shellcheck disable=SC2086
      kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \
        --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml \
        $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS >>/var/log/kubelet.log 2>&1 || true
    fi
    sleep 1
  done
) &

# PID 1 lives as long as containerd: when it dies the container stops and Docker restarts it.
trap 'kill -TERM "$containerd_pid" 2>/dev/null' TERM INT
wait "$containerd_pid" || true
