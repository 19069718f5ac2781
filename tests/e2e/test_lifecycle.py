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


def test_second_up_reports_no_changes():
    done = pulumi("up", "--yes", "--expect-no-changes", "--skip-preview")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_destroy_leaves_no_container_network_or_volume():
    done = pulumi("destroy", "--yes", "--skip-preview")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for kind in ("container", "network", "volume"):
        assert labelled(kind) == [], f"{kind}s with io.phoenix.stack={STACK} left behind"
