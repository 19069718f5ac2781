#!/bin/sh
# Prerequisites of an SSH host or VM, the one copy. Runs first on every host, before anything
# joins, as `sh -c "<this text>" prepare HOST [PREREQUISITE...]` (Pulumi remote command or tests),
# with the orchestrator's host prerequisites (Orchestrator.host_prerequisites):
#   docker  a Docker Engine that answers: Debian/Ubuntu get the distro's docker.io, other systems
#           the official get.docker.com script (needs the host online). A non-root SSH user is added
#           to the docker group (the next SSH session, i.e. the next step, has it).
#   kubeadm what a kubeadm node needs besides the Kubernetes binaries (the orchestrator brings
#           those): Debian/Ubuntu's containerd, runc, CNI plugins, conntrack, socat, iptables,
#           ethtool, etcd-client and openssl; IPv4 forwarding and bridged traffic through iptables;
#           containerd configured from stdin (the systemd cgroup driver where systemd runs);
#           containerd and the kubelet kept running: systemd services, or supervisor loops where
#           there is no systemd (the kubelet starts once kubeadm has written its configuration).
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
    docker|kubeadm) ;;
    *) fail "unknown host prerequisite '$prerequisite' (docker, kubeadm)" ;;
  esac
done

if command -v cloud-init >/dev/null 2>&1; then
  cloud-init status --wait >/dev/null 2>&1 || true
fi

if [ $# -eq 0 ]; then
  echo "$host: ready (nothing to install)"
  exit 0
fi

os=$( (. /etc/os-release 2>/dev/null && echo " ${ID:-} ${ID_LIKE:-} ") || echo unknown)
debian() { case "$os" in *" debian "*|*" ubuntu "*) ;; *) return 1 ;; esac; }
can_install() {
  [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null || fail "$1 is missing and user $(id -un) cannot sudo without a password to install it"
}
apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null 2>&1 \
    || fail "apt-get update failed (no package mirror reachable?)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q "$@" >/dev/null 2>&1 \
    || fail "apt-get install $* failed"
}
systemd_runs() { [ -d /run/systemd/system ]; }

# put FILE MODE: stdin into FILE when its content differs; true only when FILE changed.
put() {
  new=$(mktemp); cat >"$new"
  if as_root cmp -s "$new" "$1" 2>/dev/null; then rm -f "$new"; return 1; fi
  as_root mkdir -p "$(dirname "$1")" && as_root install -m "$2" "$new" "$1" || fail "could not write $1"
  rm -f "$new"
}

# supervise NAME COMMAND...: COMMAND started again whenever it exits, by a loop in a session of its
# own that outlives this SSH session (hosts without systemd, e.g. containers); one loop per NAME.
# Forked off at once (setsid -f), with nothing of this session open: an SSH session lasts as long
# as anything holds its output.
supervise() {
  name=$1; shift
  pidfile=/run/phoenix/$name.supervisor
  if [ -s "$pidfile" ] && as_root kill -0 "$(cat "$pidfile")" 2>/dev/null; then return 0; fi
  as_root mkdir -p /run/phoenix
  # shellcheck disable=SC2016
  as_root setsid -f sh -c 'pidfile=$1 log=$2; shift 2; exec </dev/null >>"$log" 2>&1; echo $$ >"$pidfile"
    while :; do "$@" || true; sleep 1; done' supervise "$pidfile" "/var/log/$name.log" "$@" </dev/null >/dev/null 2>&1
}

# The kubelet as kubeadm's systemd drop-in starts it: once kubeadm has written its configuration,
# with the flags of kubeadm's files. The binary itself comes later, from the Pulumi host.
KUBELET_RUN=/usr/local/sbin/phoenix-kubelet
kubelet_run() {
  cat <<'SH'
#!/bin/sh
[ -x /usr/local/bin/kubelet ] && [ -s /var/lib/kubelet/config.yaml ] || { sleep 2; exit 1; }
KUBELET_KUBEADM_ARGS= KUBELET_EXTRA_ARGS=
[ -f /var/lib/kubelet/kubeadm-flags.env ] && . /var/lib/kubelet/kubeadm-flags.env
[ -f /etc/default/kubelet ] && . /etc/default/kubelet
# shellcheck disable=SC2086
exec /usr/local/bin/kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \
  --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
SH
}
kubelet_unit() {
  cat <<UNIT
[Unit]
Description=kubelet for kubeadm (phoenix)
After=containerd.service
StartLimitIntervalSec=0
[Service]
ExecStart=$KUBELET_RUN
Restart=always
RestartSec=2
[Install]
WantedBy=multi-user.target
UNIT
}

prepare_kubeadm() {
  config=$(cat)
  [ -n "$config" ] || fail "the kubeadm prerequisite needs containerd's configuration on stdin"
  missing=
  for exe in containerd runc conntrack socat iptables ethtool etcdctl openssl; do
    command -v "$exe" >/dev/null 2>&1 || missing="$missing $exe"
  done
  [ -x /usr/lib/cni/bridge ] || missing="$missing CNI-plugins"
  if [ -n "$missing" ]; then
    can_install "what kubeadm needs (${missing# })"
    debian || fail "what kubeadm needs (${missing# }) is missing and the OS ($os) has no apt: install containerd, runc, the CNI plugins in /usr/lib/cni, conntrack, socat, iptables, ethtool, etcdctl and openssl"
    apt_install --no-install-recommends containerd runc containernetworking-plugins conntrack socat iptables ethtool etcd-client openssl
  fi
  # Pod traffic is routed, and bridged traffic goes through iptables (kubeadm's preflight checks).
  as_root modprobe overlay >/dev/null 2>&1 || true
  as_root modprobe br_netfilter >/dev/null 2>&1 || true
  printf 'net.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables = 1\n' | \
    put /etc/sysctl.d/90-phoenix-kubernetes.conf 0644 || true
  as_root sysctl -qw net.ipv4.ip_forward=1 || fail "could not enable IPv4 forwarding"
  if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
    as_root sysctl -qw net.bridge.bridge-nf-call-iptables=1 || fail "could not send bridged traffic through iptables"
  fi
  # Under systemd, containerd (and so the kubelet: kubeadm.sh follows containerd) uses its cgroup driver.
  if systemd_runs; then config=$(printf '%s\n' "$config" | sed 's/SystemdCgroup = false/SystemdCgroup = true/'); fi
  changed=
  printf '%s\n' "$config" | put /etc/containerd/config.toml 0644 && changed=1
  kubelet_run | put "$KUBELET_RUN" 0755 || true
  if systemd_runs; then
    if kubelet_unit | put /etc/systemd/system/kubelet.service 0644; then as_root systemctl daemon-reload; fi
    if [ -n "$changed" ]; then as_root systemctl restart containerd; else as_root systemctl enable --now containerd; fi \
      >/dev/null 2>&1 || fail "containerd does not start: $(as_root systemctl status containerd 2>&1 | tail -n 3)"
    as_root systemctl enable --now kubelet >/dev/null 2>&1 || fail "could not enable the kubelet service"
  else
    # A changed configuration: containerd stops, and its loop starts it again with the new one.
    if [ -n "$changed" ]; then as_root pkill -x containerd 2>/dev/null || true; fi
    supervise containerd containerd
    supervise kubelet "$KUBELET_RUN"
  fi
  i=0
  until as_root ctr version >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -le 120 ] || fail "containerd does not answer after 60 s"
    sleep 0.5
  done
  echo "$host: containerd and the kubelet service ready"
}

case " $* " in *" kubeadm "*) prepare_kubeadm ;; esac
case " $* " in *" docker "*) ;; *) exit 0 ;; esac

# docker
if ! command -v dockerd >/dev/null 2>&1; then
  can_install Docker
  case "$os" in
    *" debian "*|*" ubuntu "*)
      apt_install docker.io ;;
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
