#!/bin/sh
# Docker Swarm bootstrap, the one copy. Runs on a node as `sh -c "<this text>" swarm ACTION ARGS`,
# through `docker exec` (container nodes) or SSH (hosts and VMs), from Pulumi or from tests.
# Secrets (join tokens) arrive on stdin, never on the command line. Every action is idempotent.
set -eu

die() { echo "swarm: $*" >&2; exit 1; }

wait_docker() {
  i=0
  until docker info >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -le 600 ] || die "the Docker engine on $(hostname) did not answer in 120 s"
    sleep 0.2
  done
}

state() { docker info --format '{{.Swarm.LocalNodeState}}'; }

# engine_join ADVERTISE_ADDR MANAGER_ADDR:PORT TOKEN: POST /swarm/join through `docker system
# dial-stdio` (the engine's own socket, any image with a docker CLI: Alpine dind has no curl). The
# token goes into the request body from printf, a shell builtin, down a pipe: unlike
# `docker swarm join --token`, no process shows it in its argv (ps) while the join is retried.
engine_join() {
  body=$(printf '{"ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"%s","RemoteAddrs":["%s"],"JoinToken":"%s"}' \
    "$1" "$2" "$3")
  reply=$(printf 'POST /swarm/join HTTP/1.0\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: %s\r\n\r\n%s' \
    "${#body}" "$body" | docker system dial-stdio) || return 1
  case "$reply" in
    "HTTP/1."?" 200 "*) return 0 ;;
  esac
  echo "swarm: join $2: $(printf '%s\n' "$reply" | tail -n 1)" >&2
  return 1
}
node_id() { docker info --format '{{.Swarm.NodeID}}'; }

action=${1:-}; [ $# -gt 0 ] && shift
case "$action" in
  init) # init ADVERTISE_ADDR -> prints this node's swarm ID
    wait_docker
    # Heartbeat 1 s (default 5 s): a lost node is declared down after ~3 missed beats, i.e. in about
    # 3 s instead of 15 s, and its tasks are rescheduled that much sooner.
    [ "$(state)" = active ] || docker swarm init --advertise-addr "$1" --listen-addr "$1:2377" \
      --dispatcher-heartbeat 1s >/dev/null
    node_id ;;
  tokens) # -> {"worker": ..., "manager": ...}
    wait_docker
    printf '{"worker": "%s", "manager": "%s"}\n' \
      "$(docker swarm join-token -q worker)" "$(docker swarm join-token -q manager)" ;;
  join) # join ADVERTISE_ADDR MANAGER_ADDR, token on stdin -> prints this node's swarm ID
    read -r token || die "join needs the join token on stdin"
    case "$token" in ''|*[!A-Za-z0-9-]*) die "the join token on stdin is not a swarm join token" ;; esac
    wait_docker
    if [ "$(state)" != active ]; then
      i=0
      until engine_join "$1" "$2:2377" "$token"; do
        i=$((i + 1)); [ "$i" -le 10 ] || die "could not join the swarm at $2:2377"
        sleep 1
      done
    fi
    node_id ;;
  label) # label NODE_ID KEY=VALUE... (on a manager)
    wait_docker
    id=$1; shift
    set -- $(for kv in "$@"; do printf -- '--label-add %s ' "$kv"; done)
    i=0
    until docker node update "$@" "$id" >/dev/null 2>&1; do
      i=$((i + 1)); [ "$i" -le 50 ] || die "node $id did not appear in the swarm"
      sleep 0.2
    done
    echo "$id" ;;
  remove) # remove NODE_ID (on a manager): drain, wait for its tasks to move, then forget it
    docker node inspect "$1" >/dev/null 2>&1 || exit 0
    docker node update --availability drain "$1" >/dev/null
    i=0
    # Desired states flip to shutdown at once; wait until no task of the node is still running.
    while docker node ps --format '{{.CurrentState}}' "$1" | grep -q '^Running' && [ "$i" -lt 150 ]; do
      i=$((i + 1)); sleep 0.2
    done
    if [ "$(docker node inspect -f '{{.Spec.Role}}' "$1")" = manager ]; then
      docker node demote "$1" >/dev/null
    fi
    docker node rm --force "$1" >/dev/null ;;
  pull) # pull IMAGE (on any node), while the swarm forms -> prints IMAGE
    wait_docker
    docker pull -q "$1" >/dev/null
    echo "$1" ;;
  leave) # on the node itself
    docker swarm leave --force >/dev/null 2>&1 || true ;;
  *) die "unknown action '$action' (init, tokens, join, label, remove, pull, leave)" ;;
esac
