# What the Kubernetes bootstrap scripts share: this text goes before k3s.sh's or kubeadm.sh's when they
# run (components/orchestrators/kubernetes.py), and uses their `kc` (kubectl as cluster admin),
# `wait_for` and `die`.

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
