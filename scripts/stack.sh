#!/usr/bin/env bash
# The stack a make target acts on, printed on stdout: STACK when given, else the one `make up` chose
# last (build/stack, written by scripts/up.sh). Says on stderr which and why; exits 2 when neither.
#   scripts/stack.sh TARGET        e.g. `stack=$(scripts/stack.sh destroy)`
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-make}
if [ -n "${STACK:-}" ]; then
  echo "$target: stack $STACK (from STACK=)" >&2
  echo "$STACK"
elif [ -s build/stack ]; then
  stack=$(cat build/stack)
  echo "$target: stack $stack (the one \`make up\` chose; STACK=<name> for another)" >&2
  echo "$stack"
else
  echo "$target: no stack given and none chosen by \`make up\` yet: run \`make up\` or pass STACK=<name> (stacks/Pulumi.<name>.yaml)" >&2
  exit 2
fi
