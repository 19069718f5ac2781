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
  remove) # remove NODE_ID (on a manager): demote a manager, drain, wait for its tasks to run elsewhere, forget it
    wait_docker
    ids=$(docker node ls -q) || die "$(hostname) is not a swarm manager: cannot remove node $1"
    # Verifiably gone already (a second destroy, a node removed by hand): nothing to do.
    printf '%s\n' "$ids" | grep -qx "$1" || exit 0
    name=$(docker node inspect -f '{{.Description.Hostname}}' "$1")
    if [ "$(docker node inspect -f '{{.Spec.Role}}' "$1")" = manager ]; then
      # The rest must keep a majority of reachable managers, or Raft loses its quorum for good.
      total=$(docker node ls --filter role=manager -q | wc -l)
      up=$(docker node ls --filter role=manager --format '{{.ManagerStatus}}' | grep -cE '^(Leader|Reachable)$' || true)
      [ "$(docker node inspect -f '{{.ManagerStatus.Reachability}}' "$1")" = reachable ] && up=$((up - 1))
      left=$((total - 1))
      [ "$left" -ge 1 ] && [ "$up" -gt $((left / 2)) ] || die "removing manager $name would leave $up reachable of $left managers, below a quorum of $((left / 2 + 1)): bring the unreachable managers back (docker node ls) before removing it"
      docker node demote "$1" >/dev/null || die "could not demote manager $name"
    fi
    docker node update --availability drain "$1" >/dev/null || die "could not drain node $name"
    # A node that is down runs nothing the swarm can wait for (its tasks are rescheduled already).
    if [ "$(docker node inspect -f '{{.Status.State}}' "$1")" != down ]; then
      i=0
      # Desired states flip to shutdown at once; wait until no task of the node is still running.
      while docker node ps --format '{{.Name}} {{.CurrentState}}' "$1" | grep -q ' Running'; do
        i=$((i + 1))
        [ "$i" -le 600 ] || die "node $name still runs tasks after 120 s of draining: $(docker node ps --format '{{.Name}}={{.CurrentState}}' "$1" | grep '=Running' | tr '\n' ' ')"
        sleep 0.2
      done
    fi
    # Its tasks' replacements running (healthy, where a service has a health check) on the other
    # nodes before it goes: a scale-in ends with every replicated service at its replicas.
    i=0
    while short=$(docker service ls --filter mode=replicated --format '{{.Name}} {{.Replicas}}' |
                  awk '{ split($2, r, "/"); if (r[1] != r[2] + 0) printf "%s=%s ", $1, $2 }') && [ -n "$short" ]; do
      i=$((i + 1))
      [ "$i" -le 600 ] || die "after draining $name, services still below their replicas after 120 s: $short(docker service ps NAME says why)"
      sleep 0.2
    done
    docker node rm --force "$1" >/dev/null || die "could not remove node $name from the swarm" ;;
  pull) # pull IMAGE (on any node), while the swarm forms -> prints IMAGE
    wait_docker
    # An image already here (loaded over SSH, or pulled before) is never asked of a registry.
    docker image inspect "$1" >/dev/null 2>&1 || docker pull -q "$1" >/dev/null
    echo "$1" ;;
  load) # load, an image archive (docker save) on stdin -> prints the image's ID
    wait_docker
    loaded=$(docker load -q) || die "docker load failed on $(hostname)"
    ref=${loaded#Loaded image: }; ref=${ref#Loaded image ID: }
    docker image inspect -f '{{.Id}}' "$ref" ;;
  has-image) # has-image IMAGE -> prints IMAGE when this node holds it
    wait_docker
    docker image inspect "$1" >/dev/null 2>&1 || die "image $1 is not on $(hostname): load it again (pulumi up)"
    echo "$1" ;;
  remove-image) # remove-image IMAGE: once no running container uses it (removed services' tasks stop)
    wait_docker
    docker image inspect "$1" >/dev/null 2>&1 || exit 0
    i=0
    while [ -n "$(docker ps -q --filter "ancestor=$1")" ]; do
      i=$((i + 1)); [ "$i" -le 600 ] || die "image $1 is still used by running containers on $(hostname) after 120 s"
      sleep 0.2
    done
    # Stopped containers (Swarm keeps a task history) may still name it: they do not hold it back.
    docker image rm -f "$1" >/dev/null || die "could not remove image $1 from $(hostname)" ;;
  leave) # on the node itself
    wait_docker
    if [ "$(state)" != inactive ]; then
      docker swarm leave --force >/dev/null || die "$(hostname) could not leave the swarm"
    fi
    # The bridge Swarm made for its containers goes with it, once nothing is attached.
    if docker network inspect docker_gwbridge >/dev/null 2>&1 && \
       [ "$(docker network inspect -f '{{len .Containers}}' docker_gwbridge)" = 0 ]; then
      docker network rm docker_gwbridge >/dev/null || die "could not remove docker_gwbridge on $(hostname)"
    fi ;;
  *) die "unknown action '$action' (init, tokens, join, label, remove, pull, load, has-image, remove-image, leave)" ;;
esac
