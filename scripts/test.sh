#!/usr/bin/env bash
# `make test`: everything the tests need, then every test this machine allows, then a summary.
#
#   1. .venv from requirements.txt
#   2. a Docker engine (Debian's docker.io, started when none answers)   -> integration, infra, drills
#   3. the offline images (Debian packages, no registry)                   -> idem
#   4. QEMU/KVM packages when /dev/kvm exists                              -> VM tests
#   5. the Pulumi toolchain (built from the Go module proxy when missing)  -> end to end
#      and etcd + kube-apiserver + kubectl (then kube-controller-manager) when cached or the
#      budget allows                                                       -> tests/k8s
#   6. a live cluster: `pulumi up` of the ci stack when the toolchain is complete, else the same
#      bootstrap driven by the harness (tests/integration/local_swarm.py)
#   7. one pytest run over tests/ (its -ra summary lists every skip with its reason), with the pulumi
#      cycle on the QEMU VMs (stack vm-ci) when the budget allows
#   8. teardown of that cluster, then the kubeadm cycle (stack ci-kubeadm: up, testinfra, dry-run
#      validation, drills, lifecycle, destroy) when its toolchains are cached or their builds fit the budget
#   9. the hosts cycles (tests/hosts): `pulumi up` on a test bed of machines reached only over SSH
#      (stacks hosts-ci, hosts-ci3, and hosts-kubeadm-ci: kubeadm on bare Debian hosts when the
#      Kubernetes toolchain and plugin are cached), a pytest run of their own, each phase's time in
#      the summary
#  10. the summary of what ran.
# A step that cannot be done here is recorded and its tests skip with the reason; only test
# failures (and a broken unit suite) fail the run.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
summary=()
note() { summary+=("$1"); echo "test.sh: $1" >&2; }
step() {  # step NAME COMMAND...: run, time and record a set-up step
  local name=$1; shift
  local t0=$SECONDS
  if "$@" > "build/step-$name.log" 2>&1; then
    note "$name: ok ($((SECONDS - t0)) s)"; return 0
  fi
  note "$name: FAILED after $((SECONDS - t0)) s, see build/step-$name.log: $(tail -n 3 "build/step-$name.log" | tr '\n' ' ')"
  return 1
}

# CI's budget: PHOENIX_CI_BUDGET seconds from the start of this script (CI gives a fresh 2-core
# machine 90 minutes). Heavy optional work runs only when it fits; what does not is skipped with the
# reason in the summary.
budget=${PHOENIX_CI_BUDGET:-5400}
# The hosts cycles at the end (measured below): what the optional steps before them keep free.
hosts_estimate=${PHOENIX_HOSTS_ESTIMATE:-1300}
fits() {  # fits NAME NEED RESERVE CONSEQUENCE: NEED seconds (0: cached) fit, keeping RESERVE after it
  local name=$1 need=$2 reserve=$3 left=$((budget - SECONDS))
  echo "test.sh: budget ${budget} s, ${SECONDS} s used, ${left} s left; $name needs ~${need} s, ${reserve} s kept for what follows" >&2
  (( need == 0 || left - reserve >= need )) && return 0
  note "$name: skipped, needs ~${need} s but ${left} s of the ${budget} s budget are left and ${reserve} s are kept for what follows ($4)"
  return 1
}

step venv scripts/venv.sh || exit 1
engine=0; step engine scripts/engine.sh && engine=1
[ $engine = 1 ] && step images images/build.sh all
if [ -e /dev/kvm ]; then step vm-deps bash scripts/vm-deps.sh && step vm-image images/vm/build.sh; fi
# No kubernetes plugin: no k3s stack can run here (no k3s binary), and it takes over an hour cold.
export PULUMI_TOOLCHAIN_PIECES=${PULUMI_TOOLCHAIN_PIECES:-cli python command docker}
step toolchain bash scripts/toolchain.sh
# shellcheck source=scripts/pulumi-env.sh
source scripts/pulumi-env.sh

# ---- Kubernetes API-server validation (tests/k8s) --------------------------------------------------
# etcd, kube-apiserver and kubectl from scripts/k8s-toolchain.sh: reused when cached, built cold only
# when the build fits the budget while leaving PHOENIX_TESTS_RESERVE seconds for what runs after it
# (the live cluster, the pytest run and the hosts cycles, about 45 minutes cold).
# Then, the same way, kube-binaries (kube-controller-manager) for tests/k8s/test_controllers.py.
k8s_pieces="etcd kube-apiserver kubectl"
if ! k8s_need=$(bash scripts/k8s-toolchain.sh --estimate $k8s_pieces); then
  note "k8s-toolchain: skipped, scripts/k8s-toolchain.sh --estimate failed (tests/k8s skip)"
elif fits k8s-toolchain "$k8s_need" "${PHOENIX_TESTS_RESERVE:-2700}" "tests/k8s skip; make k8s-toolchain warms the cache" \
    && step k8s-toolchain bash scripts/k8s-toolchain.sh $k8s_pieces \
    && k8s_need=$(bash scripts/k8s-toolchain.sh --estimate kube-binaries) \
    && fits "k8s-toolchain kube-binaries" "$k8s_need" "${PHOENIX_TESTS_RESERVE:-2700}" "tests/k8s/test_controllers.py skips"; then
  step k8s-controllers bash scripts/k8s-toolchain.sh kube-binaries
fi

export PHOENIX_STACK=ci
live=none
if [ $engine = 1 ]; then
  if command -v pulumi >/dev/null 2>&1 && scripts/e2e.sh check > build/step-e2e-check.log 2>&1; then
    step "pulumi-up" scripts/e2e.sh up && live=pulumi
  else
    note "pulumi up: skipped, $(tail -n 1 build/step-e2e-check.log 2>/dev/null || echo 'no pulumi CLI')"
  fi
  if [ $live = none ]; then
    step harness-up .venv/bin/python -m tests.integration.local_swarm up --stack ci \
      && live=harness && export PHOENIX_OUTPUTS=$PWD/build/harness-ci.json
  fi
fi
export PHOENIX_LIVE=$live
note "live cluster for infra tests and drills: $live"

# The pulumi cycle on the VMs (tests/vm/test_pulumi_vms.py, stack vm-ci; under emulation only with
# PHOENIX_VM_CYCLE=1) adds about 10 minutes to the VM tests: it runs when that fits with the hosts
# cycles' time kept after it.
rm -f build/vm-summary.txt
if [ -e /dev/kvm ] || [ "${PHOENIX_VM_ACCEL:-}" = tcg ]; then
  fits "pulumi cycle on the VMs" "${PHOENIX_VM_CYCLE_ESTIMATE:-600}" $((hosts_estimate + 600)) \
    "tests/vm/test_pulumi_vms.py skips" || export PHOENIX_VM_CYCLE=0
fi

.venv/bin/python -m pytest tests/unit tests/k8s tests/integration tests/infra tests/drills tests/vm tests/e2e \
  -p no:cacheprovider --junitxml=build/junit.xml 2>&1 | tee build/pytest.log
rc=${PIPESTATUS[0]}
if [ -s build/vm-summary.txt ]; then
  while read -r line; do note "$line"; done < build/vm-summary.txt
fi

case $live in
  pulumi) scripts/e2e.sh destroy > build/step-destroy.log 2>&1 || note "pulumi destroy FAILED: build/step-destroy.log" ;;
  harness) .venv/bin/python -m tests.integration.local_swarm down --stack ci ;;
esac

# ---- the kubeadm cycle: upstream Kubernetes on container nodes (stack ci-kubeadm) ---------------------
# `pulumi up` of the stack, then the Kubernetes testinfra checks, the server-side dry-run validation of
# every stack's rendered objects against its API, the entry's retries on the Traefik just built, the
# drills and the lifecycle tests (no-op, refresh, stopped node, scale, destroy) on it. It needs the
# pulumi-kubernetes plugin (over an hour cold: `make toolchain`) and the whole Kubernetes toolchain for
# the node image (`make k8s-toolchain`): built only when that fits the budget, so a cold CI run skips
# it with the reason.
kubeadm_rc=0
kubeadm_cycle() {
  local t0=$SECONDS
  PHOENIX_STACK=ci-kubeadm STACK=ci-kubeadm step "kubeadm-up" scripts/e2e.sh up || return 0
  note "kubeadm cycle: pulumi up (1+2 nodes, app answering) $((SECONDS - t0)) s"
  t0=$SECONDS
  PHOENIX_STACK=ci-kubeadm PHOENIX_LIVE=pulumi PHOENIX_OUTPUTS= PHOENIX_VALIDATE_STACK=ci-kubeadm \
    .venv/bin/python -m pytest tests/infra tests/k8s/test_server_validation.py tests/k8s/test_traefik_entry.py \
    tests/drills tests/e2e -p no:cacheprovider --junitxml=build/junit-kubeadm.xml 2>&1 | tee build/pytest-kubeadm.log
  kubeadm_rc=${PIPESTATUS[0]}
  note "kubeadm cycle: testinfra, dry-run validation, entry retries, drills and lifecycle tests $((SECONDS - t0)) s (build/pytest-kubeadm.log)"
  STACK=ci-kubeadm scripts/e2e.sh destroy > build/step-kubeadm-destroy.log 2>&1 \
    || note "kubeadm cycle: pulumi destroy FAILED: build/step-kubeadm-destroy.log"
}
if [ $engine = 1 ]; then
  kubeadm_need=0 why=""
  if ! command -v pulumi-resource-kubernetes >/dev/null 2>&1 && ! ls -d "${PULUMI_HOME:-$HOME/.pulumi}"/plugins/resource-kubernetes-v* >/dev/null 2>&1; then
    kubeadm_need=4500   # scripts/toolchain.sh's cold estimate of the kubernetes piece (docs/airgap.md)
    why="the pulumi-kubernetes plugin"
  fi
  k8s_all=$(bash scripts/k8s-toolchain.sh --estimate 2>/dev/null || echo 3500)
  (( k8s_all > 0 )) && why="${why:+$why and }the Kubernetes toolchain"
  kubeadm_need=$((kubeadm_need + k8s_all + ${PHOENIX_KUBEADM_ESTIMATE:-1200}))
  if fits "kubeadm cycle${why:+ (building $why)}" "$kubeadm_need" $((hosts_estimate + 60)) \
      "stack ci-kubeadm not brought up; make toolchain and make k8s-toolchain warm the caches"; then
    if { [ -z "$why" ] || step kubeadm-toolchains bash -c 'PULUMI_TOOLCHAIN_PIECES="cli python command docker kubernetes" bash scripts/toolchain.sh && bash scripts/k8s-toolchain.sh'; } \
        && step k8s-node-image images/build.sh k8s-node; then
      kubeadm_cycle
    else
      note "kubeadm cycle: not run, its toolchains or node image failed to build (see above)"
    fi
  fi
fi

hosts_rc=0
# Measured: both Swarm cycles about 12 minutes on 2 shared cores (docs/vms.md), the ssh-node image
# 1-2 more; the kubeadm one (hosts-kubeadm-ci, when the Kubernetes toolchain and plugin are cached)
# about 6.5 minutes, its bed image 2-5 the first time.
if [ $engine = 1 ] && fits "hosts cycles" "$hosts_estimate" 60 "tests/hosts not run"; then
  step ssh-node-image images/build.sh ssh-node
  step ssh-k8s-node-image images/build.sh ssh-k8s-node
  rm -f build/hosts-timings.json build/hosts-summary.txt
  .venv/bin/python -m pytest tests/hosts -p no:cacheprovider --junitxml=build/junit-hosts.xml 2>&1 \
    | tee build/pytest-hosts.log
  hosts_rc=${PIPESTATUS[0]}
  if [ -s build/hosts-summary.txt ]; then
    while read -r line; do note "$line"; done < build/hosts-summary.txt
  else
    note "hosts cycles: no phase completed, see build/pytest-hosts.log"
  fi
fi

echo
echo "================ summary ================"
printf '%s\n' "${summary[@]}"
echo "time: ${SECONDS} s of the ${budget} s budget"
.venv/bin/python scripts/junit_summary.py build/junit.xml || true
for junit in build/junit-kubeadm.xml build/junit-hosts.xml; do
  [ -f "$junit" ] && { .venv/bin/python scripts/junit_summary.py "$junit" || true; }
done
[ $rc = 5 ] && rc=0   # "no tests collected" is not a failure of the suite
[ $hosts_rc = 5 ] && hosts_rc=0
[ $kubeadm_rc = 5 ] && kubeadm_rc=0
[ $rc = 0 ] && rc=$kubeadm_rc
[ $rc = 0 ] && rc=$hosts_rc
exit $rc
