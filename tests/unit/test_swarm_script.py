"""The Swarm bootstrap script's logic, run by sh against a fake `docker` that logs its calls."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from components.orchestrators.swarm import swarm_argv

FAKE_DOCKER = r"""#!/bin/sh
# Fake docker: appends its argv to $LOG; answers from files in $STATE.
echo "$*" >> "$LOG"
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
  "swarm join-token") echo "TOKEN-$4" ;;
  "node inspect") [ -f "$STATE/node" ] || exit 1; [ "$3" = -f ] && cat "$STATE/node" ; exit 0 ;;
  "node ps") : ;;
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

    def go(*args, stdin="", state=None, node_role=None):
        if state:
            (tmp_path / "state").write_text(state + "\n")
        if node_role:
            (tmp_path / "node").write_text(node_role + "\n")
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


def test_remove_drains_before_removing(run):
    done, calls = run("remove", "node-1", node_role="worker")
    assert done.returncode == 0, done.stderr
    assert calls[1] == "node update --availability drain node-1"
    assert calls[-1] == "node rm --force node-1"
    assert "node demote node-1" not in calls


def test_remove_demotes_a_manager_first(run):
    _, calls = run("remove", "node-1", node_role="manager")
    assert calls.index("node demote node-1") < calls.index("node rm --force node-1")


def test_remove_of_an_unknown_node_is_a_no_op(run):
    done, calls = run("remove", "node-1")
    assert done.returncode == 0 and calls == ["node inspect node-1"]


def test_unknown_action_fails(run):
    done, _ = run("explode")
    assert done.returncode != 0 and "unknown action" in done.stderr


def test_pull_fetches_the_image_and_prints_it(run):
    done, calls = run("pull", "reg:5000/app:1")
    assert done.returncode == 0 and calls == ["pull -q reg:5000/app:1"]
    assert done.stdout.strip() == "reg:5000/app:1"
