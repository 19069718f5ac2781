# What the Kubernetes bootstrap scripts share: this text goes before k3s.sh's or kubeadm.sh's when they
# run (components/orchestrators/kubernetes.py), and uses their `kc` (kubectl as cluster admin) and
# `die`.

# wait_for SECONDS WHAT COMMAND...: retry COMMAND every second until it succeeds or time runs out.
wait_for() {
  limit=$1 what=$2; shift 2
  i=0
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -le "$limit" ] || die "$what on $(hostname) not reached in ${limit} s"
    sleep 1
  done
}

# full_strength NAMESPACE DEPLOYMENT MIN: it wants at least MIN pods and all it wants are available.
full_strength() {
  counts=$(kc -n "$1" get deployment "$2" -o 'jsonpath={.spec.replicas} {.status.availableReplicas}') || return 1
  set -- "$3" $counts
  [ $# -eq 3 ] && [ "$2" -ge "$1" ] && [ "$3" -ge "$2" ]
}

# wait_app NAMESPACE SECONDS DEPLOYMENT=MIN...: each Deployment at full strength. A Deployment starts
# at one pod; its autoscaler raises it to MIN a little later.
wait_app() {
  [ $# -ge 3 ] || die "usage: wait-app NAMESPACE SECONDS DEPLOYMENT=MIN..."
  ns=$1 limit=$2; shift 2
  for want in "$@"; do
    wait_for "$limit" "Deployment $ns/${want%%=*} at ${want#*=} available pods or more" \
      full_strength "$ns" "${want%%=*}" "${want#*=}"
  done
  echo ok
}
