#!/usr/bin/env bash
# The end-to-end stack of `make test` (stack ci by default; STACK overrides):
#   e2e.sh check    exit 0 when the Pulumi CLI and every plugin the program needs are here, else
#                   print (last line) what is missing
#   e2e.sh up       pulumi up, its output also in build/e2e-up-<stack>.log (tests/e2e checks it for warnings)
#   e2e.sh destroy  pulumi destroy, then forget the stack's state (its config file stays)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pulumi-env.sh
STACK=${STACK:-ci}
case "${1:-}" in
  check)
    missing=()
    for exe in pulumi pulumi-language-python pulumi-resource-command pulumi-resource-docker; do
      command -v "$exe" >/dev/null 2>&1 || missing+=("$exe")
    done
    if [ ${#missing[@]} -gt 0 ]; then
      echo "the Pulumi toolchain lacks ${missing[*]} (scripts/toolchain.sh, docs/airgap.md)"; exit 1
    fi ;;
  up)
    pulumi stack select --create "$STACK" >/dev/null
    mkdir -p build
    pulumi up --yes --skip-preview --stack "$STACK" 2>&1 | tee "build/e2e-up-$STACK.log" ;;
  destroy)
    pulumi destroy --yes --skip-preview --stack "$STACK"
    pulumi stack rm --yes --preserve-config "$STACK" ;;
  *) echo "usage: e2e.sh check|up|destroy" >&2; exit 2 ;;
esac
