#!/usr/bin/env bash
# `make up`: from a fresh machine to a running local cluster with the sample app.
#   venv -> Docker engine -> stack -> the Pulumi toolchain pieces that stack needs (built offline when
#   missing), and meanwhile the images when air-gapped -> stack select/create -> pulumi up.
# STACK picks the stack (stacks/Pulumi.<STACK>.yaml). Unset, it is `local` when the official
# docker:dind image can be had, else `local-airgap` (images built from Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "up.sh: $*" >&2; }

scripts/venv.sh
scripts/engine.sh   # an engine (installed and started when root), and inotify limits for Kubernetes nodes
# shellcheck source=scripts/pulumi-env.sh
source scripts/pulumi-env.sh

if [ -z "${STACK:-}" ]; then
  if docker image inspect docker:27-dind >/dev/null 2>&1 || timeout 60 docker pull -q docker:27-dind >/dev/null 2>&1; then
    STACK=local
  else
    STACK=local-airgap
    say "docker:27-dind cannot be pulled here: using the air-gapped stack $STACK"
  fi
fi
[ -f "stacks/Pulumi.$STACK.yaml" ] || { say "no stacks/Pulumi.$STACK.yaml"; exit 2; }
mkdir -p build

orchestrator=$(sed -n 's/^ *phoenix:orchestrator: *"\{0,1\}\([a-z0-9]*\).*/\1/p' "stacks/Pulumi.$STACK.yaml")
# The offline images build while the toolchain does (a first run: minutes each). A kubeadm node carries
# Kubernetes itself: its image needs the Kubernetes toolchain (scripts/k8s-toolchain.sh, cached).
images=""
if grep -q 'local/' "stacks/Pulumi.$STACK.yaml"; then
  node=node; [ "$orchestrator" = kubeadm ] && node=k8s-node
  say "images for $STACK: building in the background when missing (log: build/up-images.log)"
  images/build.sh "$node" base registry > build/up-images.log 2>&1 &
  images=$!
fi

# A Pulumi of the user's own fetches its plugins itself; else the air-gapped toolchain, only the pieces
# this stack loads: the kubernetes plugin (over an hour to build) only for Kubernetes stacks.
if ! command -v pulumi >/dev/null 2>&1 || [ "$(command -v pulumi)" = "$PULUMI_TOOLCHAIN_DIR/bin/pulumi" ]; then
  pieces="cli python command docker"
  case $orchestrator in k3s|kubeadm) pieces="$pieces kubernetes" ;; esac
  plugins=$(for p in $pieces; do case $p in cli|python) ;; *) printf ' pulumi-resource-%s' "$p" ;; esac; done)
  say "Pulumi toolchain for $STACK: $pieces (cached pieces are reused; docs/airgap.md)"
  PULUMI_TOOLCHAIN_PIECES=$pieces PULUMI_TOOLCHAIN_REQUIRED="pulumi pulumi-language-python$plugins" \
    bash scripts/toolchain.sh || { say "the Pulumi toolchain is incomplete (see above)"; exit 1; }
  source scripts/pulumi-env.sh
fi
if [ -n "$images" ] && ! wait "$images"; then
  tail -n 5 build/up-images.log >&2; say "the images failed to build (build/up-images.log)"; exit 1
fi

pulumi stack select --create "$STACK" >/dev/null
# destroy, status, drills act on this stack from now on (scripts/stack.sh).
echo "$STACK" > build/stack
say "pulumi up --stack $STACK"
pulumi up --yes --skip-preview --stack "$STACK" "$@"
pulumi stack output --stack "$STACK"
