"""Deletes on nodes fail loudly, except where the machine is verifiably gone or stopped (DockerExec.gone_or)."""
import os
import subprocess
from pathlib import Path

import pulumi
import pytest

from components.nodes.node import DockerExec, Ssh
from tests.unit.conftest import settled

# Fake docker: `ps` answers the container's state from $PS ("fail" makes it fail), `exec` fails when
# $EXEC is "fail".
FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "$LOG"
case "$1" in
  ps) [ "$PS" = fail ] && exit 1; [ -n "$PS" ] && echo "$PS"; exit 0 ;;
  exec) [ "$EXEC" = fail ] && exit 1; exit 0 ;;
esac
"""


@pytest.fixture
def run_delete(tmp_path: Path):
    (tmp_path / "docker").write_text(FAKE_DOCKER)
    (tmp_path / "docker").chmod(0o755)
    line = DockerExec.gone_or("name=^n1$", "docker exec -i n1 sh -c 'leave'")

    def go(ps: str, exec_result: str = "ok"):
        log = tmp_path / "log"
        log.write_text("")
        env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "LOG": str(log), "PS": ps,
               "EXEC": exec_result}
        done = subprocess.run(["/bin/sh", "-c", line], env=env, capture_output=True, text=True, timeout=10)
        return done.returncode, log.read_text().split("\n")[:-1]
    return go


def test_a_container_that_is_gone_has_nothing_to_undo(run_delete):
    rc, calls = run_delete(ps="")
    assert rc == 0 and calls == ["ps -a --filter name=^n1$ --format {{.State}}"]


def test_a_failing_step_on_an_existing_container_fails_the_delete(run_delete):
    rc, calls = run_delete(ps="running", exec_result="fail")
    assert rc != 0 and calls[-1].startswith("exec -i n1")


def test_an_engine_that_does_not_answer_is_no_proof_the_container_is_gone(run_delete):
    rc, calls = run_delete(ps="fail")
    assert rc != 0 and not any(c.startswith("exec") for c in calls)


def test_a_step_on_a_running_container_runs(run_delete):
    rc, calls = run_delete(ps="running")
    assert rc == 0 and calls[-1].startswith("exec -i n1")


def test_a_stopped_container_skips_its_own_step(run_delete):
    rc, calls = run_delete(ps="exited", exec_result="fail")
    assert rc == 0 and not any(c.startswith("exec") for c in calls)


@pulumi.runtime.test
def test_remote_deletes_are_not_made_to_pass(mocks):
    conn = Ssh(host="192.0.2.10", user="root", port=22, private_key=pulumi.Output.secret("KEY"))
    cmd = conn.command("c", ["sh", "-c", "true"], delete=["sh", "-c", "exit 1"])

    def check(_):
        delete = mocks.of("command:remote:Command")["c"]["delete"]
        assert delete == "sh -c 'exit 1'", delete
    return settled(cmd).apply(check)


@pulumi.runtime.test
def test_a_delete_acts_on_the_container_it_was_made_for_not_on_a_successor_of_the_same_name(mocks):
    # A replaced node container keeps its name: the old join's `leave` must not reach the new one.
    conn = DockerExec("n1", pulumi.Output.from_input("0123456789abcdef"))
    cmd = conn.command("c", ["true"], delete=["sh", "-c", "leave"])

    def check(_):
        delete = mocks.of("command:local:Command")["c"]["delete"]
        assert "--filter id=0123456789abcdef " in delete, delete
        assert "running) docker exec -i 0123456789abcdef sh -c leave ;;" in delete, delete
        assert "n1" not in delete, delete
    return settled(cmd).apply(check)


SCRIPT = 'set -eu\necho "action=$1 args=$# last=${2:-}"\n[ "$1" != fail ] || { echo "failing on purpose" >&2; exit 3; }\n'


@pulumi.runtime.test
def test_a_script_reaches_its_container_through_the_environment_not_the_command_line(mocks):
    from components.nodes.node import script_argv
    made = DockerExec("n1", "n1-id").command("c", script_argv(SCRIPT, "prog", "go", "two words"),
                                             delete=script_argv(SCRIPT, "prog", "undo"))

    def check(_):
        inputs = mocks.of("command:local:Command")["c"]
        assert SCRIPT not in inputs["create"] and SCRIPT not in inputs["delete"], "a failure would print it whole"
        assert inputs["environment"] == {"PHOENIX_SCRIPT": SCRIPT}
        assert "docker exec -i -e PHOENIX_SCRIPT n1 " in inputs["create"]
        # What `docker exec -i -e PHOENIX_SCRIPT n1 ...` runs in the container, run here instead.
        inner = inputs["create"].split(" n1 ", 1)[1]
        done = subprocess.run(["/bin/sh", "-c", inner], env={**os.environ, **inputs["environment"]},
                              capture_output=True, text=True, timeout=10)
        assert (done.returncode, done.stdout) == (0, "action=go args=2 last=two words\n")
        failed = subprocess.run(["/bin/sh", "-c", inner.replace(" go ", " fail ")], env={**os.environ, **inputs["environment"]},
                                capture_output=True, text=True, timeout=10)
        assert (failed.returncode, failed.stderr) == (3, "failing on purpose\n")
    return settled(made).apply(check)
