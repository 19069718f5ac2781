"""The end of the end-to-end run: a converged stack re-applies as a no-op, and destroy leaves nothing.

Runs last (scripts/test.sh orders tests/e2e after the infra tests and drills), against the stack that
scripts/e2e.sh brought up with `pulumi up`; skips when the cluster came from the harness instead.
"""
import os
import subprocess

import pytest

STACK = os.environ.get("PHOENIX_STACK", "ci")
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    os.environ.get("PHOENIX_LIVE") != "pulumi",
    reason="no stack brought up by `pulumi up` (PHOENIX_LIVE is not 'pulumi'; scripts/test.sh sets it "
           "when the Pulumi toolchain is complete, see the set-up summary)")]


def pulumi(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["pulumi", *args, "--stack", STACK], capture_output=True, text=True, timeout=900)


def labelled(kind: str) -> list[str]:
    listing = subprocess.run(["docker", kind, "ls", *(["-a"] if kind == "container" else []), "-q",
                              "--filter", f"label=io.phoenix.stack={STACK}"], capture_output=True, text=True)
    return listing.stdout.split()


def test_re_applying_the_converged_stack_changes_nothing():
    done = pulumi("up", "--yes", "--expect-no-changes", "--skip-preview")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def swarm_nodes() -> list[str]:
    listing = subprocess.run(["docker", "exec", f"{STACK}-m0", "docker", "node", "ls", "--format",
                              "{{.Hostname}} {{.Status}}"], capture_output=True, text=True, timeout=60)
    return sorted(listing.stdout.splitlines())


def test_adding_a_worker_joins_it_and_removing_it_drains_it_out_of_the_swarm():
    workers = int(pulumi("config", "get", "phoenix:workers").stdout.strip() or 2)
    new = f"{STACK}-w{workers + 1}"
    try:
        done = pulumi("up", "--yes", "--skip-preview", "--config", f"phoenix:workers={workers + 1}")
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert f"{new} Ready" in swarm_nodes()
    finally:
        done = pulumi("up", "--yes", "--skip-preview", "--config", f"phoenix:workers={workers}")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert not any(line.startswith(new) for line in swarm_nodes()), "the removed worker is still in the swarm"
    assert labelled("container") and new not in subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True).stdout.split()


def test_destroy_leaves_no_container_network_or_volume():
    done = pulumi("destroy", "--yes", "--skip-preview")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for kind in ("container", "network", "volume"):
        assert labelled(kind) == [], f"{kind}s with io.phoenix.stack={STACK} left behind"
