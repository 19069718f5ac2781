"""The Swarm bootstrap script's logic, run by sh against a fake `docker` that logs its calls."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from components.orchestrators.swarm import swarm_argv

FAKE_DOCKER = r"""#!/bin/sh
# Fake docker: appends its argv to $LOG; answers from files in $STATE; `fail-WHAT` files make the
# matching call fail (e.g. fail-demote).
echo "$*" >> "$LOG"
has() { [ -f "$STATE/$1" ]; }
case "$1 $2" in
  "info ") exit 0 ;;
  "info --format")
    case "$3" in
      *LocalNodeState*) cat "$STATE/state" 2>/dev/null || echo inactive ;;
      *NodeID*) echo node-abc ;;
    esac ;;
  "swarm init") echo active > "$STATE/state" ;;
  "system dial-stdio")  # the Engine API: keeps the request, fails while $STATE/refusals counts down
    cat > "$STATE/request"
    n=$(cat "$STATE/refusals" 2>/dev/null || echo 0)
    if [ "$n" -gt 0 ]; then
      echo $((n - 1)) > "$STATE/refusals"
      printf 'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\r\n{"message":"manager unreachable"}\n'
    else
      echo active > "$STATE/state"; printf 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'
    fi ;;
  "swarm leave") has fail-leave && exit 1; echo inactive > "$STATE/state" ;;
  "swarm join-token") echo "TOKEN-$4" ;;
  "node ls")
    has fail-ls && { echo "This node is not a swarm manager." >&2; exit 1; }
    case "$*" in
      *ManagerStatus*) cat "$STATE/manager-status" 2>/dev/null ;;
      *role=manager*) sed -n '/ manager$/s/ .*//p' "$STATE/nodes" 2>/dev/null ;;
      *) sed 's/ .*//' "$STATE/nodes" 2>/dev/null ;;
    esac ;;
  "node inspect")
    has node || exit 1
    case "$4" in
      *Hostname*) echo host-1 ;;
      *Role*) cat "$STATE/node" ;;
      *Reachability*) cat "$STATE/reachability" 2>/dev/null || echo reachable ;;
      *Status.State*) cat "$STATE/node-state" 2>/dev/null || echo ready ;;
    esac ;;
  "node demote") has fail-demote && exit 1 ;;
  "node update") case "$*" in *drain*) has fail-drain && exit 1 ;; esac ;;
  "node ps") cat "$STATE/tasks" 2>/dev/null ;;
  "node rm") has fail-rm && exit 1 ;;
  "service ls")  # answers `services`, which `services-next` then replaces
    cat "$STATE/services" 2>/dev/null
    if has services-next; then mv "$STATE/services-next" "$STATE/services"; fi ;;
  "image inspect"|"image rm")
    eval "ref=\${$#}"; image="$STATE/image-$(echo "$ref" | tr -c 'a-z0-9\n' _)"
    [ -f "$image" ] || exit 1
    [ "$2" = rm ] && { has fail-rmi && exit 1; rm "$image"; }
    echo sha256:abc ;;
  "load -q") cat >/dev/null; touch "$STATE/image-app_1"; echo "Loaded image: app:1" ;;
  "ps -q") cat "$STATE/running" 2>/dev/null ;;
  "network inspect")
    has gwbridge || exit 1
    case "$*" in *len*) cat "$STATE/gwbridge" ;; esac ;;
  "network rm") rm -f "$STATE/gwbridge" ;;
esac
exit 0
"""


@pytest.fixture
def run(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "LOG": str(tmp_path / "log"),
           "STATE": str(tmp_path)}

    def go(*args, stdin="", state=None, node_role=None, files=None):
        if state:
            (tmp_path / "state").write_text(state + "\n")
        if node_role:
            (tmp_path / "node").write_text(node_role + "\n")
        for name, content in (files or {}).items():
            (tmp_path / name).write_text(content)
        (tmp_path / "log").write_text("")
        done = subprocess.run(swarm_argv(*args), input=stdin, env=env, capture_output=True, text=True, timeout=20)
        calls = (tmp_path / "log").read_text().splitlines()
        return done, [c for c in calls if not c.startswith("info")]
    return go


def test_init_creates_a_swarm_and_prints_the_node_id(run):
    done, calls = run("init", "10.0.0.10")
    assert done.returncode == 0, done.stderr
    assert calls == ["swarm init --advertise-addr 10.0.0.10 --listen-addr 10.0.0.10:2377 --dispatcher-heartbeat 1s"]
    assert done.stdout.strip() == "node-abc"


def test_init_is_idempotent(run):
    done, calls = run("init", "10.0.0.10", state="active")
    assert done.returncode == 0 and calls == []


def test_join_sends_the_token_from_stdin_in_the_api_request_body_never_in_argv(run, tmp_path):
    done, calls = run("join", "10.0.0.100", "10.0.0.10", stdin="SWMTKN-1-SECRET\n")
    assert done.returncode == 0, done.stderr
    assert calls == ["system dial-stdio"]
    head, body = (tmp_path / "request").read_bytes().decode().split("\r\n\r\n")
    assert head.startswith("POST /swarm/join HTTP/1.0\r\n") and f"Content-Length: {len(body)}" in head
    assert json.loads(body) == {"ListenAddr": "0.0.0.0:2377", "AdvertiseAddr": "10.0.0.100",
                                "RemoteAddrs": ["10.0.0.10:2377"], "JoinToken": "SWMTKN-1-SECRET"}


def test_join_retries_a_refused_join_and_reports_the_engine_message(run, tmp_path):
    (tmp_path / "refusals").write_text("1\n")
    done, calls = run("join", "10.0.0.100", "10.0.0.10", stdin="SWMTKN-1-SECRET\n")
    assert done.returncode == 0, done.stderr
    assert calls == ["system dial-stdio"] * 2
    assert 'swarm: join 10.0.0.10:2377: {"message":"manager unreachable"}' in done.stderr


def test_join_refuses_what_is_not_a_token(run):
    done, calls = run("join", "10.0.0.100", "10.0.0.10", stdin='x","RemoteAddrs":["evil:2377"]\n')
    assert done.returncode != 0 and "not a swarm join token" in done.stderr and calls == []


def test_join_without_token_fails_clearly(run):
    done, _ = run("join", "10.0.0.100", "10.0.0.10", stdin="")
    assert done.returncode != 0 and "join token on stdin" in done.stderr


def test_join_when_already_a_member_does_nothing(run):
    done, calls = run("join", "10.0.0.100", "10.0.0.10", stdin="SECRET\n", state="active")
    assert done.returncode == 0 and calls == []


def test_tokens_are_printed_as_json(run):
    done, _ = run("tokens", state="active")
    assert done.stdout.strip() == '{"worker": "TOKEN-worker", "manager": "TOKEN-manager"}'


def test_label_adds_every_label(run):
    done, calls = run("label", "node-1", "phoenix.node=w1", "phoenix.role=worker")
    assert calls == ["node update --label-add phoenix.node=w1 --label-add phoenix.role=worker node-1"]


# A swarm of the first manager m0, managers m1 and m2, and worker node-1 (id, role).
NODES = "m0 manager\nm1 manager\nm2 manager\nnode-1 worker\n"
THREE_UP = {"nodes": NODES, "manager-status": "Leader\nReachable\nReachable\n"}


def test_remove_drains_before_removing(run):
    done, calls = run("remove", "node-1", node_role="worker", files={"nodes": NODES})
    assert done.returncode == 0, done.stderr
    assert calls.index("node update --availability drain node-1") < calls.index("node rm --force node-1")
    assert "node demote node-1" not in calls


def test_remove_waits_for_the_drained_tasks_to_run_elsewhere_before_removing(run):
    done, calls = run("remove", "node-1", node_role="worker",
                      files={"nodes": NODES, "services": "api 2/2\nweb 2/3\n", "services-next": "api 2/2\nweb 3/3\n"})
    assert done.returncode == 0, done.stderr
    asked = [i for i, c in enumerate(calls) if c.startswith("service ls")]
    assert len(asked) == 2 and "--filter mode=replicated" in calls[asked[0]]
    assert calls.index("node update --availability drain node-1") < asked[0] < asked[1] < calls.index("node rm --force node-1")


def test_remove_demotes_a_manager_before_draining_it(run):
    done, calls = run("remove", "m1", node_role="manager", files=THREE_UP)
    assert done.returncode == 0, done.stderr
    assert calls.index("node demote m1") < calls.index("node update --availability drain m1") < \
        calls.index("node rm --force m1")


def test_remove_refuses_to_take_the_managers_below_quorum(run):
    # m2 is unreachable: without m1, one of two managers would be left reachable, not a majority.
    done, calls = run("remove", "m1", node_role="manager",
                      files={**THREE_UP, "manager-status": "Leader\nReachable\nUnreachable\n"})
    assert done.returncode != 0
    assert "removing manager host-1 would leave 1 reachable of 2 managers, below a quorum of 2" in done.stderr
    assert not any(c.startswith(("node demote", "node update", "node rm")) for c in calls)


def test_removing_an_unreachable_manager_keeps_the_quorum_of_the_rest(run):
    done, calls = run("remove", "m2", node_role="manager",
                      files={**THREE_UP, "manager-status": "Leader\nReachable\nUnreachable\n",
                             "reachability": "unreachable\n", "node-state": "down\n"})
    assert done.returncode == 0, done.stderr
    assert "node demote m2" in calls and "node rm --force m2" in calls
    assert not any(c.startswith("node ps") for c in calls), "waited for tasks of a node that is down"


@pytest.mark.parametrize("step", ["demote", "drain", "rm"])
def test_a_failed_demote_drain_or_rm_fails_the_removal(run, step):
    done, _ = run("remove", "m1", node_role="manager", files={**THREE_UP, f"fail-{step}": ""})
    assert done.returncode != 0 and "host-1" in done.stderr


def test_remove_of_a_node_no_longer_in_the_swarm_is_a_no_op(run):
    done, calls = run("remove", "node-9", files={"nodes": NODES})
    assert done.returncode == 0 and calls == ["node ls -q"]


def test_remove_on_a_node_that_is_no_manager_fails_instead_of_passing(run):
    done, _ = run("remove", "node-1", files={"fail-ls": ""})
    assert done.returncode != 0 and "not a swarm manager" in done.stderr


def test_leave_leaves_and_removes_the_swarm_bridge(run):
    done, calls = run("leave", state="active", files={"gwbridge": "0\n"})
    assert done.returncode == 0, done.stderr
    assert calls[0] == "swarm leave --force" and calls[-1] == "network rm docker_gwbridge"


def test_leave_when_already_out_of_the_swarm_does_not_call_leave(run):
    done, calls = run("leave", state="inactive")
    assert done.returncode == 0 and not any(c.startswith("swarm leave") for c in calls)


def test_a_failed_leave_fails(run):
    done, _ = run("leave", state="active", files={"fail-leave": ""})
    assert done.returncode != 0 and "could not leave the swarm" in done.stderr


def test_unknown_action_fails(run):
    done, _ = run("explode")
    assert done.returncode != 0 and "unknown action" in done.stderr


def test_pull_fetches_a_missing_image_and_prints_it(run):
    done, calls = run("pull", "reg:5000/app:1")
    assert done.returncode == 0 and calls == ["image inspect reg:5000/app:1", "pull -q reg:5000/app:1"]
    assert done.stdout.strip() == "reg:5000/app:1"


def test_pull_of_an_image_already_on_the_node_asks_no_registry(run):
    # An image loaded over SSH exists only in the node's store: `docker pull` would ask Docker Hub.
    done, calls = run("pull", "sha256:abc", files={"image-sha256_abc": ""})
    assert done.returncode == 0, done.stderr
    assert not any(c.startswith("pull") for c in calls)


def test_load_reads_the_archive_and_prints_the_image_id(run):
    done, calls = run("load", stdin="ARCHIVE")
    assert done.returncode == 0, done.stderr
    assert calls[0] == "load -q" and done.stdout.strip() == "sha256:abc"


def test_has_image_fails_naming_the_image_when_it_is_missing(run):
    done, _ = run("has-image", "sha256:abc")
    assert done.returncode != 0 and "image sha256:abc is not on" in done.stderr
    done, _ = run("has-image", "sha256:abc", files={"image-sha256_abc": ""})
    assert done.returncode == 0 and done.stdout.strip() == "sha256:abc"


def test_remove_image_waits_for_no_running_container_then_removes_it(run):
    done, calls = run("remove-image", "sha256:abc", files={"image-sha256_abc": ""})
    assert done.returncode == 0, done.stderr
    assert calls[-1] == "image rm -f sha256:abc"
    done, calls = run("remove-image", "sha256:abc")
    assert done.returncode == 0 and not any(c.startswith("image rm") for c in calls)
    done, _ = run("remove-image", "sha256:abc", files={"image-sha256_abc": "", "fail-rmi": ""})
    assert done.returncode != 0 and "could not remove image sha256:abc" in done.stderr
