#!/usr/bin/env bash
# `make context` / `make destroy`: the docker context named after a stack, on its first manager.
#   scripts/context.sh create STACK   create or update it: `docker --context STACK service ls`
#   scripts/context.sh remove STACK   remove it, if it is this project's
# A context of that name that this project did not make (its description says which) is left alone.
# On hosts the engine is reached over mutual TLS: the stack's client certificate goes into docker's
# own context store (docker copies it there); the temporary copy made here is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:?usage: context.sh create|remove STACK}
stack=${2:?usage: context.sh create|remove STACK}
description="phoenix stack $stack"
ours() { docker context ls --format '{{.Name}}|{{.Description}}' | grep -qxF "$stack|$description"; }

case $action in
  remove)
    if ours; then docker context rm -f "$stack" >/dev/null && echo "docker context $stack removed"; fi ;;
  create)
    source scripts/pulumi-env.sh
    if ! host=$(pulumi stack output dockerHost --stack "$stack" 2>/dev/null); then
      if pulumi stack output kubeconfig --stack "$stack" >/dev/null 2>&1; then
        echo "context: stack $stack runs Kubernetes, which has no Docker engine to point a context at; its kubeconfig:" \
          "pulumi stack output kubeconfig --show-secrets --stack $stack > kubeconfig && KUBECONFIG=kubeconfig kubectl get nodes" >&2
      else
        echo "context: stack $stack has no dockerHost output (not up? pulumi stack output --stack $stack)" >&2
      fi
      exit 1
    fi
    endpoint="host=$host"
    if [ "${host#tcp://}" != "$host" ]; then
      tls=$(mktemp -d) && trap 'rm -rf "$tls"' EXIT
      pulumi stack output dockerTls --show-secrets --stack "$stack" | .venv/bin/python -c '
import json, os, sys
for name, pem in json.load(sys.stdin).items():
    os.write(os.open(os.path.join(sys.argv[1], name + ".pem"), os.O_WRONLY | os.O_CREAT, 0o600), pem.encode())
' "$tls"
      endpoint="$endpoint,ca=$tls/ca.pem,cert=$tls/cert.pem,key=$tls/key.pem"
    fi
    if ! docker context inspect "$stack" >/dev/null 2>&1; then
      docker context create "$stack" --description "$description" --docker "$endpoint" >/dev/null
    elif ours; then
      docker context update "$stack" --docker "$endpoint" >/dev/null
    else
      echo "context: a docker context named $stack exists and is not this project's: left alone" >&2; exit 1
    fi
    echo "docker context $stack -> $host: docker --context $stack service ls" ;;
  *) echo "usage: context.sh create|remove STACK" >&2; exit 2 ;;
esac
